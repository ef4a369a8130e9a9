r"""What each framework gives a layer by default, as schemes: the content of the presets
"torch", "keras", "tf1" and "flax".

:func:`default_schemes` maps one module (its own parameters and the buffers that need values) to
``[(local name, Scheme), ...]`` in the order that framework initializes them. The schemes are
ordinary registry schemes with their arguments resolved from the module at hand, so a plan shows
concrete numbers: a ``Linear(256, 64)`` bias is ``uniform(a=-0.0625, b=0.0625)``.

**"torch"** reproduces ``reset_parameters`` (and the constructor) of every built-in layer, in the
order they draw from the RNG. Applied in ``model.named_modules()`` order with one
``torch.Generator`` seeded ``s`` (or the global RNG after ``torch.manual_seed(s)``), the values are
bit-identical to building the model under ``torch.manual_seed(s)`` -- for models whose
construction order equals their module order. Summary of the rules (``KU√5`` is
``kaiming_uniform(a=sqrt(5))``, bound :math:`1/\sqrt{\text{fan\_in}}` to within an ulp):

=====================================  ==========================================================
Linear, Conv*, ConvTranspose*          weight KU√5; bias :math:`\mathcal{U}(\pm 1/\sqrt{\text{fan\_in}})`
                                       (fan_in of the weight: (in/groups)·prod(k), (out/groups)·prod(k)
                                       for transposed convolutions; 0 when fan_in = 0)
Bilinear                               weight and bias :math:`\mathcal{U}(\pm 1/\sqrt{\text{in1}})`
BatchNorm*, InstanceNorm*, SyncBN      running_mean 0, running_var 1, num_batches_tracked 0, then
                                       weight 1, bias 0
LayerNorm, GroupNorm, RMSNorm          weight 1, bias 0
Embedding, EmbeddingBag                :math:`\mathcal{N}(0, 1)`, then the ``padding_idx`` row 0
RNN/LSTM/GRU and their cells           every parameter :math:`\mathcal{U}(\pm 1/\sqrt{\text{hidden}})`,
                                       projections ``weight_hr`` included
MultiheadAttention                     out_proj.weight KU√5; out_proj.bias drawn then zeroed;
                                       in_proj_weight (or q, k, v) xavier_uniform on the stacked
                                       (3E, E) matrix; in_proj_bias 0; bias_k, bias_v xavier_normal
PReLU                                  the module's ``init`` (0.25)
=====================================  ==========================================================

Exceptions, where applying "torch" is *not* the same as construction under the seed:

- ``nn.TransformerEncoder`` / ``nn.TransformerDecoder`` deep-copy their layer, so in torch all
  layers start equal. Here each layer is drawn afresh in module order: layer 0 equals torch's,
  the others are independent draws of the same distribution.
- ``nn.Transformer`` ends its constructor with ``xavier_uniform_`` on every parameter of more than
  one dimension, on top of the copies above. Here its layers get their own layers' defaults
  (KU√5 Linear weights, xavier in-projections); apply an explicit xavier rule for torch's values.
- A module that builds its children in another order than it registers them (``a = Linear(...);
  b = Linear(...); self.b = b; self.a = a``) draws in construction order in torch and in
  registration order here.
- ``nn.MultiheadAttention`` builds ``out_proj`` before drawing its in-projection, although it
  comes after it in module order. Its list therefore starts with ``out_proj.weight`` and
  ``out_proj.bias`` (its child's tensors, named relative to it): a caller that honours such
  dotted names applies them at the parent's position and skips the child's own entries for
  those tensors, and gets torch's values bit for bit. The ``out_proj`` submodule
  (``NonDynamicallyQuantizableLinear``, which torch uses only there) also lists its own two
  tensors (Linear weight, bias drawn then zeroed), so a caller that looks at own tensors only
  still covers them, with torch's distribution but not its draw order.
- Embedding built from ``_weight`` / ``from_pretrained`` and lazy modules draw nothing at
  construction; channels-last convolution weights are drawn contiguous by torch.

**"keras"** (Keras 3), **"tf1"** (``tf.layers`` / ``tf.nn.rnn_cell``) and **"flax"** (Flax linen):
what a layer of the same architecture gets in that framework, with fans computed as that framework
computes them for the equivalent kernel (``layout="torch"`` schemes). Values follow the same
distributions; they cannot follow those frameworks' random streams.

======================  =====================================  ==============================  ===============================
layer                   keras                                  tf1                             flax
======================  =====================================  ==============================  ===============================
Linear / Conv           glorot_uniform, bias 0                 glorot_uniform, bias 0          lecun_normal, bias 0
ConvTranspose           glorot_uniform (fan_in = out·rf)       glorot_uniform                  lecun_normal, fan_in = **in**·rf
Embedding               U(±0.05); no padding row               glorot_uniform (get_variable)   N(0, 1/features), untruncated
Norms                   1 / 0, running 0 / 1                   1 / 0, running 0 / 1            1 / 0, running 0 / 1
RNN input weight        glorot_uniform                         U(±L) of the joint [in+h, G·h]  lecun_normal
RNN recurrent weight    orthogonal on the whole (G·h, h)       the same U(±L)                  orthogonal per gate block
RNN bias                0, LSTM forget gate 1 (bias_ih)        0, LSTM forget 1, GRU r/z 1      0
MHA in-projection       glorot per projection (E, E)           glorot per projection           lecun_normal (fan_in E)
PReLU                   0                                      0                               0.01
Bilinear, Transformer*  ``None`` (no counterpart)              ``None``                        ``None``
======================  =====================================  ==============================  ===============================

>>> import torch
>>> [(n, str(s)) for n, s in default_schemes(torch.nn.Linear(256, 64), "torch")]
[('weight', 'kaiming_uniform(a=2.23606797749979)'), ('bias', 'uniform(a=-0.0625, b=0.0625)')]
>>> [(n, str(s)) for n, s in default_schemes(torch.nn.LSTM(4, 3), "keras")][1:3]
[('weight_hh_l0', 'keras.orthogonal'), ('bias_ih_l0', 'fanin.gate_constant(values=[0.0, 1.0, 0.0, 0.0])')]
>>> default_schemes(torch.nn.ReLU(), "flax") is None
True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.linear import NonDynamicallyQuantizableLinear
from torch.nn.modules.rnn import RNNBase, RNNCellBase
from torch.nn.parameter import is_lazy

# The composite schemes the presets name ("fanin.gate_constant", ...) are defined with the other
# scheme namespaces, left of the rules; re-exported here, where they were first defined.
from fanin.composite import gate_constant_, gate_uniform_, gatewise_orthogonal_, padded_normal_, zeros_after_uniform_
from fanin.errors import FaninError, describe_choice
from fanin.schemes.scheme import Scheme

__all__ = [
    "FRAMEWORKS",
    "default_schemes",
    "gate_constant_",
    "gate_uniform_",
    "gatewise_orthogonal_",
    "padded_normal_",
    "zeros_after_uniform_",
]

FRAMEWORKS = ("flax", "keras", "tf1", "torch")

Entries = list[tuple[str, Scheme]]


# --- per-framework rules ------------------------------------------------------------------------


def _scheme(name: str, **args) -> Scheme:
    return Scheme(name, **args)


def _own(module: nn.Module) -> dict[str, torch.Tensor]:
    return dict(module.named_parameters(recurse=False))


def _fan_in_torch(weight: torch.Tensor) -> int:
    # torch.nn.init._calculate_fan_in_and_fan_out: size(1) times the receptive field.
    return weight.shape[1] * math.prod(weight.shape[2:])


def _torch_bias_bound(weight: torch.Tensor) -> float:
    fan_in = _fan_in_torch(weight)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0


def _uniform(bound: float) -> Scheme:
    return _scheme("uniform", a=-bound, b=bound)


def _torch_linear_like(weight: torch.Tensor, bias: torch.Tensor | None, prefix: str = "") -> Entries:
    # Linear.reset_parameters and _ConvNd.reset_parameters (torch/nn/modules/linear.py, conv.py).
    entries = [(prefix + "weight", _scheme("kaiming_uniform", a=math.sqrt(5)))]
    if bias is not None:
        entries.append((prefix + "bias", _uniform(_torch_bias_bound(weight))))
    return entries


def _framework_kernel(framework: str, transposed: bool = False) -> Scheme:
    if framework == "keras":
        return _scheme("keras.glorot_uniform")
    if framework == "tf1":
        return _scheme("tf1.glorot_uniform_initializer")
    if transposed:
        # Flax ConvTranspose kernel (*k, in, features): fan_in counts the INPUT channels. The torch
        # weight (in, out/g, *k) maps to the kernel (*k, out/g, in), whose in is axis -1.
        return _scheme("jax.lecun_normal", in_axis=-1, out_axis=-2)
    return _scheme("jax.lecun_normal")


def _zeros(framework: str) -> Scheme:
    return _scheme({"torch": "zeros", "keras": "keras.zeros", "tf1": "tf1.zeros_initializer", "flax": "jax.zeros"}[framework])


def _ones(framework: str) -> Scheme:
    return _scheme({"torch": "ones", "keras": "keras.ones", "tf1": "tf1.ones_initializer", "flax": "jax.ones"}[framework])


def _linear(module: nn.Linear | _ConvNd, framework: str) -> Entries:
    if framework == "torch":
        return _torch_linear_like(module.weight, module.bias)
    entries = [("weight", _framework_kernel(framework, getattr(module, "transposed", False)))]
    if module.bias is not None:
        entries.append(("bias", _zeros(framework)))
    return entries


def _bilinear(module: nn.Bilinear, framework: str) -> Entries | None:
    if framework != "torch":
        return None  # no bilinear layer in Keras, TF 1.x or Flax
    if module.weight.size(1) <= 0:
        raise ValueError(f"in1_features must be > 0, but got (in1_features={module.weight.size(1)})")
    bound = 1 / math.sqrt(module.weight.size(1))  # in1 only, not in1*in2 (Bilinear.reset_parameters)
    entries = [("weight", _uniform(bound))]
    if module.bias is not None:
        entries.append(("bias", _uniform(bound)))
    return entries


def _norm(module: nn.Module, framework: str) -> Entries | None:
    entries: Entries = []
    buffers = dict(module.named_buffers(recurse=False))
    # _NormBase.reset_running_stats runs before the affine parameters; none of it draws.
    if buffers.get("running_mean") is not None:
        entries.append(("running_mean", _zeros(framework)))
    if buffers.get("running_var") is not None:
        entries.append(("running_var", _ones(framework)))
    if buffers.get("num_batches_tracked") is not None:
        entries.append(("num_batches_tracked", _scheme("zeros")))  # a torch-only int64 counter
    own = _own(module)
    if own.get("weight") is not None:
        entries.append(("weight", _ones(framework)))
    if own.get("bias") is not None:
        entries.append(("bias", _zeros(framework)))
    return entries or None


def _embedding(module: nn.Embedding | nn.EmbeddingBag, framework: str) -> Entries:
    if framework == "torch":
        if module.padding_idx is None:
            return [("weight", _scheme("normal"))]
        return [("weight", _scheme("fanin.padded_normal", padding_idx=int(module.padding_idx)))]
    if framework == "keras":
        return [("weight", _scheme("keras.random_uniform"))]  # "uniform": U(-0.05, 0.05); mask_zero keeps it
    if framework == "tf1":
        # tf.get_variable's default initializer; the table (vocab, dim) is already in TF's layout.
        return [("weight", _scheme("tf1.glorot_uniform_initializer", layout="keras"))]
    # Flax Embed: variance_scaling(1.0, 'fan_in', 'normal', out_axis=0) on (num, features), the
    # layout of the torch table: in_axis -2 and out_axis 0 are the same axis, fan_in = features.
    return [("weight", _scheme("jax.variance_scaling", scale=1.0, mode="fan_in", distribution="normal",
                               out_axis=0, layout="jax"))]


# Gate blocks of the first dimension of weight_ih/weight_hh/bias_*, as torch packs them:
#   LSTM  i, f, g, o   (Keras i, f, c, o: the same order, c = g is the cell candidate; Flax i, f, g, o;
#                       TF 1.x i, j, f, o with j the candidate: its forget gate is torch's block 1)
#   GRU   r, z, n      (Keras z, r, h; Flax r, z, n; TF 1.x gates r, u(=z) then candidate)
#   RNN   one block
# Keras's orthogonal covers the whole recurrent kernel (h, G·h). Permuting column blocks of a
# Haar-orthogonal matrix leaves it Haar-orthogonal with orthonormal rows, so the Keras GRU's z/r
# swap needs no remapping of the recurrent weight; only biases (the LSTM forget block) must land in
# the right block, and the forget gate is block 1 in both packings.
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def _rnn_gates(module: nn.Module) -> int:
    if isinstance(module, RNNBase):
        return _GATES[module.mode]
    if isinstance(module, nn.LSTMCell):
        return 4
    if isinstance(module, nn.GRUCell):
        return 3
    return 1


def _tf1_limit(fan_in: int, fan_out: int) -> float:
    # variance_scaling(1.0, "fan_avg", "uniform"): scale /= max(1., (fan_in + fan_out) / 2.)
    return math.sqrt(3.0 * (1.0 / max(1.0, (fan_in + fan_out) / 2.0)))


def _rnn(module: nn.Module, framework: str) -> Entries:
    own = _own(module)
    if framework == "torch":
        # RNNBase/RNNCellBase.reset_parameters: every parameter, in registration order.
        stdv = 1.0 / math.sqrt(module.hidden_size) if module.hidden_size > 0 else 0
        return [(name, _uniform(stdv)) for name in own]
    gates = _rnn_gates(module)
    lstm = gates == 4
    entries: Entries = []
    for name, p in own.items():
        if name.startswith("weight_hr"):
            # LSTM projection: a plain Dense (h -> proj) in each framework's terms.
            entries.append((name, _framework_kernel(framework)))
        elif name.startswith("weight_ih") or name.startswith("weight_hh"):
            recurrent = name.startswith("weight_hh")
            if framework == "tf1":
                # One kernel [input_depth + h_depth, G·h] (glorot_uniform, the get_variable default)
                # multiplies concat(x, h); torch splits it into weight_ih and weight_hh. GRU keeps
                # gates (r, z) and candidate in two kernels, hence two limits.
                suffix = name[len("weight_ih"):]
                depth = own["weight_ih" + suffix].shape[1] + own["weight_hh" + suffix].shape[1]
                h = p.shape[0] // gates
                if gates == 3:
                    lg, lc = _tf1_limit(depth, 2 * h), _tf1_limit(depth, h)
                    entries.append((name, _scheme("fanin.gate_uniform", bounds=[lg, lg, lc])))
                else:
                    limit = _tf1_limit(depth, gates * h)
                    entries.append((name, _scheme("tf1.random_uniform_initializer", minval=-limit, maxval=limit)))
            elif not recurrent:
                entries.append((name, _framework_kernel(framework)))
            elif framework == "keras":
                entries.append((name, _scheme("keras.orthogonal")))
            elif gates == 1:
                entries.append((name, _scheme("jax.orthogonal")))
            else:
                entries.append((name, _scheme("fanin.gatewise_orthogonal", gates=gates)))
        elif name.startswith("bias_ih") and framework in ("keras", "tf1") and lstm:
            # Keras unit_forget_bias=True; TF 1.x adds forget_bias=1.0 at run time. torch sums
            # bias_ih and bias_hh, so the 1 goes in one of them.
            entries.append((name, _scheme("fanin.gate_constant", values=[0.0, 1.0, 0.0, 0.0])))
        elif name.startswith("bias_ih") and framework == "tf1" and gates == 3:
            # TF 1.x GRUCell: gates/bias constant_initializer(1.0), candidate/bias zeros.
            entries.append((name, _scheme("fanin.gate_constant", values=[1.0, 1.0, 0.0])))
        else:
            entries.append((name, _zeros(framework)))
    return entries


def _mha(module: nn.MultiheadAttention, framework: str) -> Entries:
    own = _own(module)
    out = module.out_proj
    entries: Entries = []
    if framework == "torch":
        # out_proj is constructed (and draws its Linear defaults) before _reset_parameters runs.
        entries.extend((f"out_proj.{n}", s) for n, s in _out_proj(out, framework))
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if own.get(name) is not None:
                entries.append((name, _scheme("xavier_uniform")))
        if own.get("in_proj_bias") is not None:
            entries.append(("in_proj_bias", _scheme("zeros")))
        for name in ("bias_k", "bias_v"):
            if own.get(name) is not None:
                entries.append((name, _scheme("xavier_normal")))
        return entries
    for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
        if own.get(name) is None:
            continue
        if name == "in_proj_weight" and framework != "flax":
            # Three (E, E) projections stacked: Glorot on each, fan_in = fan_out = E (Keras's
            # EinsumDense axes give H·Dk = E too), not on the stacked (3E, E).
            e = module.embed_dim
            limit = _tf1_limit(e, e)
            spec = "keras.random_uniform" if framework == "keras" else "tf1.random_uniform_initializer"
            entries.append((name, _scheme(spec, minval=-limit, maxval=limit)))
        else:
            # flax: lecun_normal depends on fan_in only (E or kdim/vdim), stacked or not.
            entries.append((name, _framework_kernel(framework)))
    for name in ("in_proj_bias", "bias_k", "bias_v"):
        if own.get(name) is not None:
            entries.append((name, _zeros(framework)))
    return [*((f"out_proj.{n}", s) for n, s in _out_proj(out, framework)), *entries]


def _out_proj(module: nn.Linear, framework: str) -> Entries:
    # NonDynamicallyQuantizableLinear exists only as MultiheadAttention.out_proj. torch draws its
    # Linear defaults, then MultiheadAttention._reset_parameters zeroes the bias (a layer built
    # with bias=True has in_proj_bias too, and both are zeroed together).
    if framework != "torch":
        return _linear(module, framework)
    entries = [("weight", _scheme("kaiming_uniform", a=math.sqrt(5)))]
    if module.bias is not None:
        bound = _torch_bias_bound(module.weight)
        entries.append(("bias", _scheme("fanin.zeros_after_uniform", a=-bound, b=bound)))
    return entries


def _prelu(module: nn.PReLU, framework: str) -> Entries:
    if framework == "torch":
        return [("weight", _scheme("constant", val=float(module.init)))]
    if framework == "flax":
        return [("weight", _scheme("jax.constant", value=0.01))]  # linen.PReLU negative_slope_init
    return [("weight", _zeros(framework))]  # Keras PReLU alpha_initializer="zeros"


# First match along the MRO wins; NonDynamicallyQuantizableLinear before Linear.
_RULES: list[tuple[type, Callable[[nn.Module, str], Entries | None]]] = [
    (NonDynamicallyQuantizableLinear, _out_proj),
    (nn.Linear, _linear),
    (nn.Bilinear, _bilinear),
    (_ConvNd, _linear),
    (_NormBase, _norm),
    (nn.LayerNorm, _norm),
    (nn.GroupNorm, _norm),
    (nn.RMSNorm, _norm),
    (nn.Embedding, _embedding),
    (nn.EmbeddingBag, _embedding),
    (RNNBase, _rnn),
    (RNNCellBase, _rnn),
    (nn.MultiheadAttention, _mha),
    (nn.PReLU, _prelu),
]
_TABLE = dict(_RULES)


def _rule_for(cls: type) -> Callable[[nn.Module, str], Entries | None] | None:
    for klass in cls.__mro__:
        if klass in _TABLE:
            return _TABLE[klass]
        # A subclass outside torch with its own reset_parameters initializes itself its own way.
        if not klass.__module__.startswith("torch.") and (
            "reset_parameters" in vars(klass) or "_reset_parameters" in vars(klass)
        ):
            return None
    return None


def default_schemes(module: nn.Module, framework: str) -> list[tuple[str, Scheme]] | None:
    """The schemes ``framework`` applies by default to ``module``'s own parameters and buffers.

    Returns ``[(local name, Scheme), ...]`` in the order the framework initializes them, or
    ``None`` when the module has nothing of its own to initialize or its type is unknown (for a
    subclass outside torch that defines its own ``reset_parameters``, too). Local names are those
    of ``module.named_parameters(recurse=False)`` / ``named_buffers(recurse=False)``, except for
    ``nn.MultiheadAttention``, whose list starts with its child's ``out_proj.weight`` /
    ``out_proj.bias`` (see the module docstring): resolve a name with
    ``module.get_parameter(name)`` (or ``get_buffer``); an entry a parent lists for a
    descendant's tensor takes precedence over the descendant's own entry.

    ``framework`` is one of "torch", "keras", "tf1", "flax".

    >>> import torch
    >>> [(n, str(s)) for n, s in default_schemes(torch.nn.Embedding(10, 4, padding_idx=0), "torch")]
    [('weight', 'fanin.padded_normal(padding_idx=0)')]
    >>> [(n, str(s)) for n, s in default_schemes(torch.nn.Conv2d(3, 8, 3), "flax")]
    [('weight', 'jax.lecun_normal'), ('bias', 'jax.zeros')]
    """
    if framework not in FRAMEWORKS:
        raise ValueError(f"default_schemes: {describe_choice('framework', framework, FRAMEWORKS)}")
    rule = _rule_for(type(module))
    if rule is None:
        return None
    lazy = [name for name, p in module.named_parameters(recurse=False) if is_lazy(p)]
    if lazy:
        raise LazyModuleError(
            f"default_schemes: {type(module).__name__} has uninitialized lazy parameters "
            f"({', '.join(lazy)}); their shapes are known only after a first forward pass. "
            "Run one (or use the non-lazy layer) before planning its initialization."
        )
    return rule(module, framework)


class LazyModuleError(FaninError, ValueError):
    """A lazy module whose parameters have no shape yet."""
