"""``fanin.composite``: fanin's own composite schemes (per-gate blocks, padded rows, the LSUV start and mark).

The public face of :mod:`fanin.frameworks.fanin`, which defines them.

>>> import torch, fanin.frameworks.fanin
>>> gate_constant_ is fanin.frameworks.fanin.gate_constant_
True
>>> gate_constant_(torch.empty(4), values=[0.0, 1.0]).tolist()
[0.0, 0.0, 1.0, 1.0]
"""

from fanin.frameworks.fanin import (
    LSUV_MARK,
    gate_constant_,
    gate_uniform_,
    gatewise_orthogonal_,
    is_marked,
    lsuv_scheme,
    padded_normal_,
    zeros_after_uniform_,
)

__all__ = [
    "LSUV_MARK",
    "gate_constant_",
    "gate_uniform_",
    "gatewise_orthogonal_",
    "is_marked",
    "lsuv_scheme",
    "padded_normal_",
    "zeros_after_uniform_",
]
