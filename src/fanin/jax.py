"""``fanin.jax``: ``jax.nn.initializers`` (which Flax re-exports) with JAX semantics, applied to torch tensors.

The public face of :mod:`fanin.frameworks.jax`, which defines them: in-place functions
(``lecun_normal_``) and builders named as in ``jax.nn.initializers`` (``lecun_normal()``) that
return a :class:`fanin.Scheme`.

>>> import fanin.frameworks.jax
>>> lecun_normal_ is fanin.frameworks.jax.lecun_normal_
True
>>> lecun_normal()
fanin.get('jax.lecun_normal')
"""

from fanin.frameworks.jax import (
    constant,
    constant_,
    delta_orthogonal,
    delta_orthogonal_,
    glorot_normal,
    glorot_normal_,
    glorot_uniform,
    glorot_uniform_,
    he_normal,
    he_normal_,
    he_uniform,
    he_uniform_,
    lecun_normal,
    lecun_normal_,
    lecun_uniform,
    lecun_uniform_,
    normal,
    normal_,
    ones,
    ones_,
    orthogonal,
    orthogonal_,
    truncated_normal,
    truncated_normal_,
    uniform,
    uniform_,
    variance_scaling,
    variance_scaling_,
    zeros,
    zeros_,
)

__all__ = [
    "constant",
    "constant_",
    "delta_orthogonal",
    "delta_orthogonal_",
    "glorot_normal",
    "glorot_normal_",
    "glorot_uniform",
    "glorot_uniform_",
    "he_normal",
    "he_normal_",
    "he_uniform",
    "he_uniform_",
    "lecun_normal",
    "lecun_normal_",
    "lecun_uniform",
    "lecun_uniform_",
    "normal",
    "normal_",
    "ones",
    "ones_",
    "orthogonal",
    "orthogonal_",
    "truncated_normal",
    "truncated_normal_",
    "uniform",
    "uniform_",
    "variance_scaling",
    "variance_scaling_",
    "zeros",
    "zeros_",
]
