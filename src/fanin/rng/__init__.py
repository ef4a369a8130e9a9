"""The random source: every scheme draws through these primitives, never from torch directly.

The source is a ``torch.Generator`` (or ``None`` for torch's global generator), drawn exactly as
``torch.nn.init`` draws, or a :class:`Stream`: counter-based, keyed by (seed, parameter name),
element ``i`` a pure function of its flat index (docs/stream.md). Keeping every draw behind this
seam is what lets the stream replace the generator without touching the schemes.
"""

from fanin.rng.sampling import (
    check_generator,
    normal_,
    standard_normal,
    truncated_normal_,
    uniform_,
)
from fanin.rng.stream import STREAM_VERSION, Stream, canonical_name, streams_for
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

__all__ = [
    "STREAM_VERSION",
    "Normal",
    "Stream",
    "TruncatedNormal",
    "Uniform",
    "canonical_name",
    "check_generator",
    "normal_",
    "standard_normal",
    "streams_for",
    "truncated_normal_",
    "uniform_",
]
