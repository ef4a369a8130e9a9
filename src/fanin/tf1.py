"""``fanin.tf1``: TensorFlow 1.x initializers (``tf.*_initializer``, r1.15), applied to torch tensors.

The public face of :mod:`fanin.frameworks.tf1`, which defines them: in-place functions
(``glorot_uniform_initializer_``) and constructors named as in TF 1.x
(``glorot_uniform_initializer``) that build a :class:`fanin.Scheme`.

>>> import fanin.frameworks.tf1
>>> truncated_normal_initializer_ is fanin.frameworks.tf1.truncated_normal_initializer_
True
>>> str(variance_scaling_initializer(scale=2.0))
'tf1.variance_scaling_initializer(scale=2.0)'
"""

from fanin.frameworks.tf1 import (
    constant_initializer,
    constant_initializer_,
    convolutional_delta_orthogonal,
    convolutional_delta_orthogonal_,
    glorot_normal_initializer,
    glorot_normal_initializer_,
    glorot_uniform_initializer,
    glorot_uniform_initializer_,
    identity_initializer,
    identity_initializer_,
    ones_initializer,
    ones_initializer_,
    orthogonal_initializer,
    orthogonal_initializer_,
    random_normal_initializer,
    random_normal_initializer_,
    random_uniform_initializer,
    random_uniform_initializer_,
    truncated_normal_initializer,
    truncated_normal_initializer_,
    uniform_unit_scaling_initializer,
    uniform_unit_scaling_initializer_,
    variance_scaling_initializer,
    variance_scaling_initializer_,
    zeros_initializer,
    zeros_initializer_,
)

__all__ = [
    "constant_initializer",
    "constant_initializer_",
    "convolutional_delta_orthogonal",
    "convolutional_delta_orthogonal_",
    "glorot_normal_initializer",
    "glorot_normal_initializer_",
    "glorot_uniform_initializer",
    "glorot_uniform_initializer_",
    "identity_initializer",
    "identity_initializer_",
    "ones_initializer",
    "ones_initializer_",
    "orthogonal_initializer",
    "orthogonal_initializer_",
    "random_normal_initializer",
    "random_normal_initializer_",
    "random_uniform_initializer",
    "random_uniform_initializer_",
    "truncated_normal_initializer",
    "truncated_normal_initializer_",
    "uniform_unit_scaling_initializer",
    "uniform_unit_scaling_initializer_",
    "variance_scaling_initializer",
    "variance_scaling_initializer_",
    "zeros_initializer",
    "zeros_initializer_",
]
