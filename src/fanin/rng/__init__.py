"""The random source: every scheme draws through these primitives, never from torch directly.

Today the source is a ``torch.Generator`` (or ``None`` for torch's global generator), drawn
exactly as ``torch.nn.init`` draws. Keeping every draw behind this seam is what lets a
counter-based stream replace the generator without touching the schemes.
"""

from fanin.rng.sampling import (
    check_generator,
    normal_,
    standard_normal,
    truncated_normal_,
    uniform_,
)

__all__ = ["check_generator", "normal_", "standard_normal", "truncated_normal_", "uniform_"]
