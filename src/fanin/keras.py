"""``fanin.keras``: Keras 3 initializers with Keras semantics, applied to torch tensors.

The public face of :mod:`fanin.frameworks.keras`, which defines them: in-place functions
(``glorot_uniform_``) and constructors named as in ``keras.initializers`` (``GlorotUniform``)
that build a :class:`fanin.Scheme`.

>>> import torch, fanin.frameworks.keras
>>> glorot_uniform_ is fanin.frameworks.keras.glorot_uniform_
True
>>> str(VarianceScaling(scale=2.0))
'keras.variance_scaling(scale=2.0)'
"""

from fanin.frameworks.keras import (
    Constant,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    LecunNormal,
    LecunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
    constant_,
    glorot_normal_,
    glorot_uniform_,
    he_normal_,
    he_uniform_,
    identity_,
    lecun_normal_,
    lecun_uniform_,
    ones_,
    orthogonal_,
    random_normal_,
    random_uniform_,
    truncated_normal_,
    variance_scaling_,
    zeros_,
)

__all__ = [
    "Constant",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "LecunNormal",
    "LecunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "TruncatedNormal",
    "VarianceScaling",
    "Zeros",
    "constant_",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "identity_",
    "lecun_normal_",
    "lecun_uniform_",
    "ones_",
    "orthogonal_",
    "random_normal_",
    "random_uniform_",
    "truncated_normal_",
    "variance_scaling_",
    "zeros_",
]
