r"""What a framework gives each built-in torch layer by default: the part the frameworks share.

A framework's :class:`LayerDefaults` (one subclass in each framework module, held by its
:class:`~fanin.frameworks.record.Framework` record) maps one module to ``[(local name, Scheme),
...]``, in the order that framework initializes the module's own parameters and the buffers that
need values. The schemes are ordinary registry schemes with their arguments resolved from the
module at hand, so a plan shows concrete numbers. :func:`fanin.rules.defaults.default_schemes` is
the public entry (it also refuses lazy modules); the presets ``"torch"``, ``"keras"``, ``"tf1"``
and ``"flax"`` apply it to every module.

The layer types are told apart here, once for every framework (:func:`layer_kind`, first match
along the MRO): each kind is one method of :class:`LayerDefaults`. The base class holds what
Keras, TF 1.x and Flax share (a kernel from the framework's default initializer, zero biases,
unit/zero norms, per-parameter RNN and attention rules with hooks for their differences);
torch's subclass replaces each kind by ``reset_parameters``.

>>> import torch
>>> from fanin.frameworks import get_framework
>>> [(n, str(s)) for n, s in get_framework("flax").layer_defaults(torch.nn.Conv2d(3, 8, 3))]
[('weight', 'jax.lecun_normal'), ('bias', 'jax.zeros')]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear
from torch.nn.modules.rnn import RNNBase, RNNCellBase

from fanin.formulas.variance import scaled_variance, uniform_limit
from fanin.schemes.scheme import Scheme

__all__ = ["Entries", "LayerDefaults", "glorot_limit", "layer_kind", "own_parameters", "rnn_gates"]

Entries = list[tuple[str, Scheme]]

# First match along the MRO wins; NonDynamicallyQuantizableLinear before Linear.
_KINDS: dict[type, str] = {
    NonDynamicallyQuantizableLinear: "out_proj",
    nn.Linear: "linear",
    nn.Bilinear: "bilinear",
    _ConvNd: "linear",
    _NormBase: "norm",
    nn.LayerNorm: "norm",
    nn.GroupNorm: "norm",
    nn.RMSNorm: "norm",
    nn.Embedding: "embedding",
    nn.EmbeddingBag: "embedding",
    RNNBase: "rnn",
    RNNCellBase: "rnn",
    nn.MultiheadAttention: "mha",
    nn.PReLU: "prelu",
}

# Gate blocks of the first dimension of weight_ih/weight_hh/bias_*, as torch packs them:
#   LSTM  i, f, g, o   (Keras i, f, c, o: the same order, c = g is the cell candidate; Flax i, f, g, o;
#                       TF 1.x i, j, f, o with j the candidate: its forget gate is torch's block 1)
#   GRU   r, z, n      (Keras z, r, h; Flax r, z, n; TF 1.x gates r, u(=z) then candidate)
#   RNN   one block
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def layer_kind(cls: type) -> str | None:
    """The kind of layer (a :class:`LayerDefaults` method name) of module type ``cls``, or ``None``.

    A subclass outside torch that defines its own ``reset_parameters`` initializes itself its
    own way: ``None``.

    >>> layer_kind(torch.nn.Conv2d), layer_kind(torch.nn.ReLU)
    ('linear', None)
    """
    for klass in cls.__mro__:
        if klass in _KINDS:
            return _KINDS[klass]
        if not klass.__module__.startswith("torch.") and (
            "reset_parameters" in vars(klass) or "_reset_parameters" in vars(klass)
        ):
            return None
    return None


def own_parameters(module: nn.Module) -> dict[str, torch.Tensor]:
    """The module's own parameters (not its children's), in registration order."""
    return dict(module.named_parameters(recurse=False))


def rnn_gates(module: nn.Module) -> int:
    """How many gate blocks the first dimension of an RNN's weights stacks (LSTM 4, GRU 3, RNN 1)."""
    if isinstance(module, RNNBase):
        return _GATES[module.mode]
    if isinstance(module, nn.LSTMCell):
        return 4
    if isinstance(module, nn.GRUCell):
        return 3
    return 1


def glorot_limit(fan_in: float, fan_out: float) -> float:
    r"""Glorot's uniform bound as Keras and TF 1.x compute it: variance_scaling(1.0, "fan_avg", "uniform"),
    :math:`\sqrt{3 / \max(1, (n_{in} + n_{out}) / 2)}`.

    >>> glorot_limit(30, 10) == (6 / 40) ** 0.5
    True
    """
    return uniform_limit(scaled_variance(1.0, (fan_in + fan_out) / 2))


class LayerDefaults:
    """What one framework gives each kind of built-in torch layer; calling it maps a module.

    Returns ``None`` for a module whose type has no rule (or no counterpart in the framework).
    Subclasses name their framework's ``zeros``/``ones`` schemes and implement :meth:`kernel`
    and :meth:`embedding`; the other kinds have the rules Keras, TF 1.x and Flax share, with
    hooks (:meth:`rnn_weight`, :meth:`rnn_input_bias`, :meth:`in_projection`) for their
    differences.
    """

    zeros_name = "zeros"
    ones_name = "ones"

    def __call__(self, module: nn.Module) -> Entries | None:
        kind = layer_kind(type(module))
        if kind is None:
            return None
        rule: Callable[[nn.Module], Entries | None] = getattr(self, kind)
        return rule(module)

    def zeros(self) -> Scheme:
        return Scheme(self.zeros_name)

    def ones(self) -> Scheme:
        return Scheme(self.ones_name)

    def kernel(self, transposed: bool = False) -> Scheme:
        """The framework's default kernel initializer of a dense or convolution layer."""
        raise NotImplementedError

    def linear(self, module: nn.Module) -> Entries | None:
        """Linear, Conv*, ConvTranspose*: the kernel initializer, a zero bias."""
        entries = [("weight", self.kernel(bool(getattr(module, "transposed", False))))]
        if module.bias is not None:
            entries.append(("bias", self.zeros()))
        return entries

    def out_proj(self, module: nn.Module) -> Entries | None:
        """MultiheadAttention's out_proj (NonDynamicallyQuantizableLinear): a Linear."""
        return self.linear(module)

    def bilinear(self, module: nn.Module) -> Entries | None:
        """No bilinear layer in Keras, TF 1.x or Flax."""
        return None

    def norm(self, module: nn.Module) -> Entries | None:
        """Batch, instance, layer, group and RMS norms: running mean 0 and variance 1, weight 1, bias 0."""
        entries: Entries = []
        buffers = dict(module.named_buffers(recurse=False))
        # _NormBase.reset_running_stats runs before the affine parameters; none of it draws.
        if buffers.get("running_mean") is not None:
            entries.append(("running_mean", self.zeros()))
        if buffers.get("running_var") is not None:
            entries.append(("running_var", self.ones()))
        if buffers.get("num_batches_tracked") is not None:
            entries.append(("num_batches_tracked", Scheme("zeros")))  # torch's int64 counter: torch's zeros
        own = own_parameters(module)
        if own.get("weight") is not None:
            entries.append(("weight", self.ones()))
        if own.get("bias") is not None:
            entries.append(("bias", self.zeros()))
        return entries or None

    def embedding(self, module: nn.Module) -> Entries | None:
        """Embedding, EmbeddingBag: the table's initializer."""
        raise NotImplementedError

    def rnn(self, module: nn.Module) -> Entries | None:
        """RNN, LSTM, GRU and their cells, parameter by parameter in registration order."""
        own = own_parameters(module)
        gates = rnn_gates(module)
        entries: Entries = []
        for name in own:
            if name.startswith("weight_hr"):
                # LSTM projection: a plain Dense (h -> proj) in each framework's terms.
                entries.append((name, self.kernel()))
            elif name.startswith(("weight_ih", "weight_hh")):
                entries.append((name, self.rnn_weight(name, own, gates)))
            elif name.startswith("bias_ih"):
                entries.append((name, self.rnn_input_bias(gates)))
            else:
                entries.append((name, self.zeros()))
        return entries

    def rnn_weight(self, name: str, own: dict[str, torch.Tensor], gates: int) -> Scheme:
        """``weight_ih*`` (input) or ``weight_hh*`` (recurrent) of an RNN with ``gates`` gate blocks."""
        raise NotImplementedError

    def rnn_input_bias(self, gates: int) -> Scheme:
        """``bias_ih*``; torch adds ``bias_ih`` and ``bias_hh``, so a framework's one bias goes here."""
        return self.zeros()

    def mha(self, module: nn.Module) -> Entries | None:
        """MultiheadAttention: its ``out_proj`` child's tensors first (named relative to the module),
        then the in-projections and zero biases."""
        own = own_parameters(module)
        entries: Entries = []
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if own.get(name) is None:
                continue
            entries.append((name, self.in_projection(module) if name == "in_proj_weight" else self.kernel()))
        for name in ("in_proj_bias", "bias_k", "bias_v"):
            if own.get(name) is not None:
                entries.append((name, self.zeros()))
        out_proj = cast(nn.MultiheadAttention, module).out_proj
        return [*((f"out_proj.{n}", s) for n, s in self.out_proj(out_proj) or []), *entries]

    def in_projection(self, module: nn.Module) -> Scheme:
        """The stacked (3E, E) ``in_proj_weight`` of q, k and v."""
        return self.kernel()

    def prelu(self, module: nn.Module) -> Entries | None:
        """PReLU's slope: 0 (Keras's ``alpha_initializer="zeros"``)."""
        return [("weight", self.zeros())]
