r"""What each framework gives a layer by default, as schemes: the content of the presets
"torch", "keras", "tf1" and "flax".

:func:`default_schemes` maps one module (its own parameters and the buffers that need values) to
``[(local name, Scheme), ...]`` in the order that framework initializes them. The rules live with
each framework (:class:`~fanin.frameworks.layers.LayerDefaults`, held by its record:
:class:`fanin.frameworks.torch.TorchLayers`, :class:`~fanin.frameworks.keras.KerasLayers`,
:class:`~fanin.frameworks.tf1.TF1Layers`, :class:`~fanin.frameworks.jax.FlaxLayers`). The schemes
are ordinary registry schemes with their arguments resolved from the module at hand, so a plan
shows concrete numbers: a ``Linear(256, 64)`` bias is ``uniform(a=-0.0625, b=0.0625)``.

**"torch"** reproduces ``reset_parameters`` (and the constructor) of every built-in layer, in the
order they draw from the RNG: applied in module order with one generator, bit-identical to
construction under the seed, with the exceptions :class:`~fanin.frameworks.torch.TorchLayers`
lists (deep-copied Transformer layers, construction order other than registration order).

**"keras"** (Keras 3), **"tf1"** (``tf.layers`` / ``tf.nn.rnn_cell``) and **"flax"** (Flax linen, the
framework ``"jax"``): what a layer of the same architecture gets in that framework, with fans
computed as that framework computes them for the equivalent kernel (``layout="torch"`` schemes).
Values follow the same distributions; they cannot follow those frameworks' random streams.

====================== ================================ ============================== ================================
layer                  keras                            tf1                            flax
====================== ================================ ============================== ================================
Linear / Conv          glorot_uniform, bias 0           glorot_uniform, bias 0         lecun_normal, bias 0
ConvTranspose          glorot_uniform (fan_in = out·rf) glorot_uniform                 lecun_normal, fan_in = **in**·rf
Embedding              U(±0.05); no padding row         glorot_uniform (get_variable)  N(0, 1/features), untruncated
Norms                  1 / 0, running 0 / 1             1 / 0, running 0 / 1           1 / 0, running 0 / 1
RNN input weight       glorot_uniform                   U(±L) of the joint [in+h, G·h] lecun_normal
RNN recurrent weight   orthogonal on the whole (G·h, h) the same U(±L)                 orthogonal per gate block
RNN bias               0, LSTM forget gate 1 (bias_ih)  0, LSTM forget 1, GRU r/z 1    0
MHA in-projection      glorot per projection (E, E)     glorot per projection          lecun_normal (fan_in E)
PReLU                  0                                0                              0.01
Bilinear, Transformer* ``None`` (no counterpart)        ``None``                       ``None``
====================== ================================ ============================== ================================

>>> import torch
>>> [(n, str(s)) for n, s in default_schemes(torch.nn.Linear(256, 64), "torch")]
[('weight', 'kaiming_uniform(a=2.23606797749979)'), ('bias', 'uniform(a=-0.0625, b=0.0625)')]
>>> [(n, str(s)) for n, s in default_schemes(torch.nn.LSTM(4, 3), "keras")][1:3]
[('weight_hh_l0', 'keras.orthogonal'), ('bias_ih_l0', 'fanin.gate_constant(values=[0.0, 1.0, 0.0, 0.0])')]
>>> default_schemes(torch.nn.ReLU(), "flax") is None
True
"""

from __future__ import annotations

from torch import nn
from torch.nn.parameter import is_lazy

from fanin.errors import FaninError, UnknownFrameworkError
from fanin.frameworks import get_framework
from fanin.frameworks.layers import layer_kind
from fanin.schemes.scheme import Scheme

__all__ = ["LazyModuleError", "default_schemes"]


def default_schemes(module: nn.Module, framework: str) -> list[tuple[str, Scheme]] | None:
    """The schemes ``framework`` applies by default to ``module``'s own parameters and buffers.

    Returns ``[(local name, Scheme), ...]`` in the order the framework initializes them, or
    ``None`` when the module has nothing of its own to initialize or its type is unknown (for a
    subclass outside torch that defines its own ``reset_parameters``, too). Local names are those
    of ``module.named_parameters(recurse=False)`` / ``named_buffers(recurse=False)``, except for
    ``nn.MultiheadAttention``, whose list starts with its child's ``out_proj.weight`` /
    ``out_proj.bias`` (see :class:`~fanin.frameworks.torch.TorchLayers`): resolve a name with
    ``module.get_parameter(name)`` (or ``get_buffer``); an entry a parent lists for a
    descendant's tensor takes precedence over the descendant's own entry.

    ``framework`` names a framework that has layer defaults: "torch", "keras", "tf1", "jax"
    (or its alias "flax").

    >>> import torch
    >>> [(n, str(s)) for n, s in default_schemes(torch.nn.Embedding(10, 4, padding_idx=0), "torch")]
    [('weight', 'fanin.padded_normal(padding_idx=0)')]
    >>> [(n, str(s)) for n, s in default_schemes(torch.nn.Conv2d(3, 8, 3), "flax")]
    [('weight', 'jax.lecun_normal'), ('bias', 'jax.zeros')]
    """
    try:
        layers = get_framework(framework, with_layer_defaults=True).layer_defaults
    except UnknownFrameworkError as err:
        raise UnknownFrameworkError(f"default_schemes: {err}") from None
    if layers is None or layer_kind(type(module)) is None:
        return None
    lazy = [name for name, p in module.named_parameters(recurse=False) if is_lazy(p)]
    if lazy:
        raise LazyModuleError(
            f"default_schemes: {type(module).__name__} has uninitialized lazy parameters "
            f"({', '.join(lazy)}); their shapes are known only after a first forward pass. "
            "Run one (or use the non-lazy layer) before planning its initialization."
        )
    return layers(module)


class LazyModuleError(FaninError, ValueError):
    """A lazy module whose parameters have no shape yet."""
