"""``fanin.init``: a drop-in for :mod:`torch.nn.init`, bit-identical to the installed torch.

The public face of :mod:`fanin.frameworks.torch`, which defines these functions (and documents
where they do better than torch without breaking parity): the same 15 public names as
``torch.nn.init`` and its deprecated aliases, each of which also accepts a :class:`fanin.Stream`
as ``generator``.

>>> import torch, fanin.frameworks.torch
>>> kaiming_normal_ is fanin.frameworks.torch.kaiming_normal_
True
>>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
>>> torch.equal(kaiming_normal_(torch.empty(4, 3), generator=g1),
...             torch.nn.init.kaiming_normal_(torch.empty(4, 3), generator=g2))
True
"""

from fanin.frameworks.torch import (
    calculate_gain,
    constant,
    constant_,
    dirac,
    dirac_,
    eye,
    eye_,
    kaiming_normal,
    kaiming_normal_,
    kaiming_uniform,
    kaiming_uniform_,
    normal,
    normal_,
    ones_,
    orthogonal,
    orthogonal_,
    sparse,
    sparse_,
    trunc_normal_,
    uniform,
    uniform_,
    xavier_normal,
    xavier_normal_,
    xavier_uniform,
    xavier_uniform_,
    zeros_,
)

__all__ = [
    "calculate_gain",
    "constant",
    "constant_",
    "dirac",
    "dirac_",
    "eye",
    "eye_",
    "kaiming_normal",
    "kaiming_normal_",
    "kaiming_uniform",
    "kaiming_uniform_",
    "normal",
    "normal_",
    "ones_",
    "orthogonal",
    "orthogonal_",
    "sparse",
    "sparse_",
    "trunc_normal_",
    "uniform",
    "uniform_",
    "xavier_normal",
    "xavier_normal_",
    "xavier_uniform",
    "xavier_uniform_",
    "zeros_",
]
