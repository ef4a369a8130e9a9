r"""A drop-in for :mod:`torch.nn.init`, bit-identical to the installed torch.

The same 15 public names, signatures, defaults, return values and errors. Given the same
``torch.Generator`` (or the same global seed), every function makes the same sampler calls on the
same tensors in the same order as torch, with bounds computed by the same Python-float expressions,
so the values are identical bit for bit (tests/frameworks/test_torch.py checks this over a grid of shapes,
dtypes, layouts, modes and nonlinearities, and checks the generator state afterwards).

Every function also accepts a :class:`fanin.Stream` as ``generator``: the values are then the
counter-based stream's (docs/stream.md), the same on any device, thread count or sharding.

Two places do better than torch without breaking parity where torch works:

- :func:`sparse_` with an explicit ``generator`` draws the zero pattern from that generator too
  (torch's ``randperm`` ignores it and advances the global RNG). With ``generator=None`` it is
  bit-identical to torch.
- :func:`orthogonal_` works for float16/bfloat16 (torch's CPU QR does not): the result is
  ``torch.nn.init.orthogonal_`` of a float32 tensor of the same shape, with the same generator,
  rounded once to the tensor's dtype.

``trunc_normal_`` mirrors the algorithm of the installed torch: rejection sampling from torch 2.12
on, the inverse-CDF-and-clamp algorithm before.

Arguments: called directly, these functions accept what torch accepts, non-finite values
included (``constant_(t, float("nan"))`` fills NaN, ``normal_(t, std=float("inf"))`` infinities,
``trunc_normal_(t, a=-inf, b=inf)`` is untruncated), as a drop-in must. A scheme built from them
(:func:`fanin.get`, rules, presets, the CLI) is validated when it is built
(:mod:`fanin.schemes.checks`): every argument finite and in its domain (``std >= 0``,
``a <= b``, ``gain >= 0`` for the Xavier schemes, a sparsity in [0, 1), ...).

>>> import torch
>>> g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
>>> torch.equal(kaiming_normal_(torch.empty(4, 3), generator=g1),
...             torch.nn.init.kaiming_normal_(torch.empty(4, 3), generator=g2))
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import cast

import torch
from torch import Tensor, nn
from torch.torch_version import TorchVersion

from fanin import rng
from fanin.errors import SchemeArgumentError, describe_choice, shown
from fanin.formulas.fans import compute_fans
from fanin.formulas.gains import TABLE_NONLINEARITIES, calculate_gain
from fanin.frameworks.layers import Entries, LayerDefaults, own_parameters
from fanin.frameworks.record import ELEMENTWISE, Framework
from fanin.schemes.checks import check_int, check_number
from fanin.schemes.scheme import Scheme

__all__ = [
    "TORCH",
    "TorchLayers",
    "calculate_gain",
    # deprecated aliases, as in torch.nn.init
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

# torch 2.12 replaced trunc_normal_'s inverse-CDF algorithm by rejection sampling (PR #174997).
_TRUNC_NORMAL_REJECTION = TorchVersion(torch.__version__) >= "2.12"


# --- what each built-in layer gets: reset_parameters ------------------------------------------


def _kaiming_uniform_sqrt5() -> Scheme:
    # Linear.reset_parameters and _ConvNd.reset_parameters: bound 1/sqrt(fan_in) to within an ulp.
    return Scheme("kaiming_uniform", a=math.sqrt(5))


def _bias_bound(weight: Tensor) -> float:
    # torch.nn.init._calculate_fan_in_and_fan_out: size(1) times the receptive field; 0 for fan_in 0.
    fan_in = weight.shape[1] * math.prod(weight.shape[2:])
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0


def _uniform(bound: float) -> Scheme:
    return Scheme("uniform", a=-bound, b=bound)


class TorchLayers(LayerDefaults):
    r"""``reset_parameters`` (and the constructor) of every built-in layer, in the order they draw
    from the RNG (the ``"torch"`` preset).

    Applied in ``model.named_modules()`` order with one ``torch.Generator`` seeded ``s`` (or the
    global RNG after ``torch.manual_seed(s)``), the values are bit-identical to building the model
    under ``torch.manual_seed(s)``, for models whose construction order equals their module order
    (``KU√5`` is ``kaiming_uniform(a=sqrt(5))``, bound :math:`1/\sqrt{\text{fan\_in}}` to within an ulp):

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
    - ``nn.Transformer`` ends its constructor with ``xavier_uniform_`` on every parameter of more
      than one dimension, on top of the copies above. Here its layers get their own layers'
      defaults (KU√5 Linear weights, xavier in-projections); apply an explicit xavier rule for
      torch's values.
    - A module that builds its children in another order than it registers them (``a =
      Linear(...); b = Linear(...); self.b = b; self.a = a``) draws in construction order in torch
      and in registration order here.
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

    >>> [(n, str(s)) for n, s in TorchLayers()(torch.nn.Linear(256, 64))]
    [('weight', 'kaiming_uniform(a=2.23606797749979)'), ('bias', 'uniform(a=-0.0625, b=0.0625)')]
    """

    def linear(self, module: nn.Module) -> Entries:
        entries = [("weight", _kaiming_uniform_sqrt5())]
        if module.bias is not None:
            entries.append(("bias", _uniform(_bias_bound(cast(nn.Linear, module).weight))))
        return entries

    def out_proj(self, module: nn.Module) -> Entries:
        # torch draws the Linear defaults of MultiheadAttention.out_proj, then _reset_parameters
        # zeroes the bias (a layer built with bias=True has in_proj_bias too; both are zeroed).
        entries = [("weight", _kaiming_uniform_sqrt5())]
        if module.bias is not None:
            bound = _bias_bound(cast(nn.Linear, module).weight)
            entries.append(("bias", Scheme("fanin.zeros_after_uniform", a=-bound, b=bound)))
        return entries

    def bilinear(self, module: nn.Module) -> Entries:
        in1_features = cast(nn.Bilinear, module).weight.size(1)
        if in1_features <= 0:
            raise ValueError(f"in1_features must be > 0, but got (in1_features={in1_features})")
        bound = 1 / math.sqrt(in1_features)  # in1 only, not in1*in2 (Bilinear.reset_parameters)
        entries = [("weight", _uniform(bound))]
        if module.bias is not None:
            entries.append(("bias", _uniform(bound)))
        return entries

    def embedding(self, module: nn.Module) -> Entries:
        padding_idx = cast(nn.Embedding, module).padding_idx
        if padding_idx is None:
            return [("weight", Scheme("normal"))]
        return [("weight", Scheme("fanin.padded_normal", padding_idx=int(padding_idx)))]

    def rnn(self, module: nn.Module) -> Entries:
        # RNNBase/RNNCellBase.reset_parameters: every parameter, in registration order.
        hidden_size = cast(nn.RNNBase, module).hidden_size
        stdv = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0
        return [(name, _uniform(stdv)) for name in own_parameters(module)]

    def mha(self, module: nn.Module) -> Entries:
        own = own_parameters(module)
        # out_proj is constructed (and draws its Linear defaults) before _reset_parameters runs.
        entries: Entries = [
            (f"out_proj.{n}", s) for n, s in self.out_proj(cast(nn.MultiheadAttention, module).out_proj)
        ]
        for name in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if own.get(name) is not None:
                entries.append((name, Scheme("xavier_uniform")))
        if own.get("in_proj_bias") is not None:
            entries.append(("in_proj_bias", Scheme("zeros")))
        for name in ("bias_k", "bias_v"):
            if own.get(name) is not None:
                entries.append((name, Scheme("xavier_normal")))
        return entries

    def prelu(self, module: nn.Module) -> Entries:
        return [("weight", Scheme("constant", val=float(cast(nn.PReLU, module).init)))]


#: PyTorch: weights (out, in, *kernel), fans by ``torch.nn.init``; the scalar fills run shard-locally too.
TORCH = Framework(
    name="torch",
    title="PyTorch",
    prefix="",
    layout="torch",
    element_local=ELEMENTWISE | {"constant"},
    orthogonal=frozenset({"orthogonal", "lsuv"}),
    preset="torch",
    layer_defaults=TorchLayers(),
    default_kernel="kaiming_uniform(a=sqrt(5))",
    default_kernel_note="PyTorch's default for nn.Linear / nn.Conv weights",
    name_order=("torch", "fanin", "keras", "tf1", "jax"),
)


# --- validation of scheme arguments, run when a Scheme is built --------------------------------
# Every number is also checked finite, for every scheme, by fanin.schemes.checks.check_arguments.


def _check_mode(scheme: str, mode: object) -> None:
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):  # torch lower-cases it
        raise SchemeArgumentError(f"{scheme}: " + describe_choice("mode", mode, ["fan_in", "fan_out"]))


def _check_nonlinearity(scheme: str, nonlinearity: object, param: object) -> None:
    if nonlinearity not in TABLE_NONLINEARITIES:
        raise SchemeArgumentError(f"{scheme}: " + describe_choice("nonlinearity", nonlinearity, TABLE_NONLINEARITIES))
    try:
        calculate_gain(nonlinearity, param)  # type: ignore[arg-type]
    except ValueError as err:
        raise SchemeArgumentError(f"{scheme}: {err} (a={shown(param)})") from None


def _validate_uniform(a, b):
    check_number("uniform", "a", a)
    check_number("uniform", "b", b)
    if a > b:
        raise SchemeArgumentError(f"uniform: needs a <= b, got a={shown(a)}, b={shown(b)}")


def _validate_normal(mean, std):
    check_number("normal", "mean", mean)
    check_number("normal", "std", std, minimum=0)


def _validate_trunc_normal(mean, std, a, b):
    for name, value in (("mean", mean), ("a", a), ("b", b)):
        check_number("trunc_normal", name, value)
    check_number("trunc_normal", "std", std, above=0)
    if not a < b:
        raise SchemeArgumentError(f"trunc_normal: needs a < b, got a={shown(a)}, b={shown(b)}")


def _validate_constant(val):
    check_number("constant", "val", val)


def _validate_gain(scheme, *, minimum=None):
    # Xavier's bound and std are gain times a positive number: a negative gain would ask for
    # U(a, -a) or a negative std, which torch refuses only when the scheme runs.
    def validate(gain):
        check_number(scheme, "gain", gain, minimum=minimum)

    return validate


def _validate_kaiming(scheme):
    def validate(a, mode, nonlinearity):
        check_number(scheme, "a", a)
        _check_mode(scheme, mode)
        _check_nonlinearity(scheme, nonlinearity, a)

    return validate


def _validate_dirac(groups):
    check_int("dirac", "groups", groups, minimum=1)


def _validate_sparse(sparsity, std):
    # sparsity 1 (or more) would zero every element: not a sparse matrix.
    check_number("sparse", "sparsity", sparsity, minimum=0, below=1)
    check_number("sparse", "std", std, minimum=0)


def _no_validation():
    return None


# --- the functions ------------------------------------------------------------------------------


@TORCH.register("uniform", family="uniform", aliases=("uniform_",), validate=_validate_uniform)
def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill the input Tensor with values drawn from the uniform distribution.

    .. math:: \mathcal{U}(a, b)

    Args:
        tensor: The tensor to fill, in place.
        a: The lower bound of the uniform distribution.
        b: The upper bound of the uniform distribution.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None`` for
            torch's global RNG.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> uniform_(torch.empty(2, 3), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([2, 3])
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(uniform_, (tensor,), tensor=tensor, a=a, b=b, generator=generator)
    with torch.no_grad():
        return rng.uniform_(tensor, a, b, generator)


@TORCH.register("normal", family="normal", aliases=("normal_",), validate=_validate_normal)
def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill the input Tensor with values drawn from the normal distribution.

    .. math:: \mathcal{N}(\text{mean}, \text{std}^2)

    Args:
        tensor: The tensor to fill, in place.
        mean: The mean of the normal distribution.
        std: The standard deviation of the normal distribution.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None`` for
            torch's global RNG.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> normal_(torch.empty(2, 3), std=0.02, generator=torch.Generator().manual_seed(0)).abs().max() < 0.1
        tensor(True)
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(
            normal_, (tensor,), tensor=tensor, mean=mean, std=std, generator=generator
        )
    with torch.no_grad():
        return rng.normal_(tensor, mean, std, generator)


@TORCH.register(
    "trunc_normal",
    family="truncated_normal",
    aliases=("trunc_normal_",),
    validate=_validate_trunc_normal,
)
def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with values drawn from a truncated normal distribution.

    .. math:: \mathcal{N}(\text{mean}, \text{std}^2) \text{ restricted to } [a, b]

    ``a`` and ``b`` are absolute values, not multiples of ``std``: with ``std=0.02`` and the
    defaults the cut is at ±100σ. No variance correction is applied. A ``mean`` more than 2 std
    outside [a, b] warns, as torch does.

    Args:
        tensor: The tensor to fill, in place.
        mean: The mean of the normal distribution before truncation.
        std: The standard deviation of the normal distribution before truncation.
        a: The lower cut (an absolute value).
        b: The upper cut (an absolute value).
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream` (exact inverse
            CDF), or ``None`` for torch's global RNG.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> w = trunc_normal_(torch.empty(1000), a=-1.0, b=1.0, generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= 1.0)
        True
    """
    if tensor.is_meta:
        return tensor
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )
    with torch.no_grad():
        if isinstance(generator, rng.Stream):
            # Exact inverse CDF, element-local: no rejection loop, no data-dependent consumption.
            return generator.truncated_normal_(tensor, mean, std, a, b)
        if _TRUNC_NORMAL_REJECTION:
            return _trunc_normal_rejection(tensor, mean, std, a, b, generator)
        return _trunc_normal_inverse_cdf(tensor, mean, std, a, b, generator)


def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def _trunc_normal_rejection(tensor, mean, std, a, b, generator):
    # torch >= 2.12: normal + redraw when the acceptance mass is large, uniform proposal otherwise.
    p = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
    if p > 0.3:
        lo = tensor.new_tensor(a, device="cpu").item()
        hi = tensor.new_tensor(b, device="cpu").item()
        result = tensor.normal_(mean, std, generator=generator)
        while True:
            mask = (result < lo) | (result > hi)
            if not mask.any():
                break
            result = torch.where(mask, torch.empty_like(result).normal_(mean, std, generator=generator), result)
        if tensor is not result:
            tensor.copy_(result)
        return tensor
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2
    candidates = torch.empty_like(tensor)
    accept_buf = torch.empty_like(tensor)
    tensor.uniform_(a, b, generator=generator)
    candidates.copy_(tensor)
    candidates.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)
    pending = accept_buf.uniform_(generator=generator).log_().gt(candidates)
    if pending.any():
        result = tensor
        while True:
            candidates.uniform_(a, b, generator=generator)
            result = torch.where(pending, candidates, result)
            candidates.sub_(mean).div_(std).pow_(2).mul_(-0.5).sub_(log_peak)
            pending = torch.where(pending, accept_buf.uniform_(generator=generator).log_().gt(candidates), pending)
            if not pending.any():
                break
        tensor.copy_(result)
    return tensor


def _trunc_normal_inverse_cdf(tensor, mean, std, a, b, generator):
    # torch <= 2.11: uniform in [2l-1, 2u-1], erfinv, scale, clamp.
    lo = _norm_cdf((a - mean) / std)
    hi = _norm_cdf((b - mean) / std)
    tensor.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)
    tensor.erfinv_()
    tensor.mul_(std * math.sqrt(2.0))
    tensor.add_(mean)
    tensor.clamp_(min=a, max=b)
    return tensor


@TORCH.register("constant", family="constant", aliases=("constant_",), validate=_validate_constant)
def constant_(tensor: Tensor, val: float) -> Tensor:
    r"""Fill the input Tensor with the value :math:`\text{val}`.

    Args:
        tensor: The tensor to fill, in place.
        val: The value every element gets.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> constant_(torch.empty(2), 0.3)
        tensor([0.3000, 0.3000])
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(constant_, (tensor,), tensor=tensor, val=val)
    with torch.no_grad():
        return tensor.fill_(val)


@TORCH.register("ones", family="constant", aliases=("ones_",), validate=_no_validation)
def ones_(tensor: Tensor) -> Tensor:
    """Fill the input Tensor with the scalar value 1.

    Args:
        tensor: The tensor to fill, in place.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> ones_(torch.empty(2))
        tensor([1., 1.])
    """
    with torch.no_grad():
        return tensor.fill_(1.0)


@TORCH.register("zeros", family="constant", aliases=("zeros_",), validate=_no_validation)
def zeros_(tensor: Tensor) -> Tensor:
    """Fill the input Tensor with the scalar value 0.

    Args:
        tensor: The tensor to fill, in place.

    Returns:
        ``tensor``, filled.

    Examples:
        >>> zeros_(torch.empty(2))
        tensor([0., 0.])
    """
    with torch.no_grad():
        return tensor.zero_()


@TORCH.register("eye", family="identity", aliases=("eye_",), validate=_no_validation)
def eye_(tensor: Tensor) -> Tensor:
    """Fill the 2-dimensional input Tensor with the identity matrix (ones on the main diagonal).

    Args:
        tensor: The 2-D tensor to fill, in place.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``tensor`` does not have 2 dimensions.

    Examples:
        >>> eye_(torch.empty(2, 3))
        tensor([[1., 0., 0.],
                [0., 1., 0.]])
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    with torch.no_grad():
        torch.eye(*tensor.shape, out=tensor, requires_grad=tensor.requires_grad)
    return tensor


@TORCH.register("dirac", family="identity", aliases=("dirac_",), validate=_validate_dirac)
def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill the {3, 4, 5}-dimensional input Tensor with the Dirac delta function.

    Each group's first ``min(out/groups, in)`` channels pass through unchanged: the tap at the
    kernel centre ``k // 2`` is 1, every other tap 0.

    Args:
        tensor: The 3-, 4- or 5-D convolution weight (out, in, *kernel) to fill, in place.
        groups: The number of groups of the convolution; ``out`` must be divisible by it.

    Returns:
        ``tensor``, filled (a meta tensor is returned unchanged).

    Raises:
        ValueError: ``tensor`` does not have 3, 4 or 5 dimensions, or its first dimension is not
            divisible by ``groups``.

    Examples:
        >>> dirac_(torch.empty(2, 2, 3))[:, :, 1]
        tensor([[1., 0.],
                [0., 1.]])
    """
    dimensions = tensor.ndimension()
    if dimensions not in [3, 4, 5]:
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    sizes = tensor.size()
    if sizes[0] % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    if tensor.is_meta:
        return tensor
    out_chans_per_grp = sizes[0] // groups
    min_dim = min(out_chans_per_grp, sizes[1])
    centre = tuple(s // 2 for s in sizes[2:])
    with torch.no_grad():
        tensor.zero_()
        for g in range(groups):
            for d in range(min_dim):
                index = (g * out_chans_per_grp + d, d, *centre)
                tensor[index] = 1
    return tensor


def _fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    fans = compute_fans(tuple(tensor.shape), "torch")
    return int(fans.fan_in), int(fans.fan_out)


def _correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


@TORCH.register(
    "xavier_uniform",
    family="uniform",
    aliases=("xavier_uniform_",),
    validate=_validate_gain("xavier_uniform", minimum=0),
)
def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill the input Tensor with Xavier/Glorot uniform values (Glorot & Bengio, 2010).

    .. math:: \mathcal{U}(-a, a), \quad a = \text{gain} \times \sqrt{\frac{6}{\text{fan\_in} + \text{fan\_out}}}

    Args:
        tensor: The tensor to fill, in place (2 or more dims; fans by torch's rule).
        gain: The scaling factor.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None`` for
            torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``tensor`` has fewer than 2 dimensions.

    Examples:
        >>> w = xavier_uniform_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= (6 / 8) ** 0.5)
        True
    """
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std
    with torch.no_grad():
        return rng.uniform_(tensor, -a, a, generator)


@TORCH.register(
    "xavier_normal",
    family="normal",
    aliases=("xavier_normal_",),
    validate=_validate_gain("xavier_normal", minimum=0),
)
def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill the input Tensor with Xavier/Glorot normal values (Glorot & Bengio, 2010), untruncated.

    .. math:: \mathcal{N}(0, \text{std}^2), \quad
              \text{std} = \text{gain} \times \sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}}

    Args:
        tensor: The tensor to fill, in place (2 or more dims; fans by torch's rule).
        gain: The scaling factor.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None`` for
            torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``tensor`` has fewer than 2 dimensions.

    Examples:
        >>> xavier_normal_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0)).shape
        torch.Size([3, 5])
    """
    fan_in, fan_out = _fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    with torch.no_grad():
        return rng.normal_(tensor, 0.0, std, generator)


@TORCH.register(
    "kaiming_uniform",
    family="uniform",
    aliases=("kaiming_uniform_",),
    validate=_validate_kaiming("kaiming_uniform"),
)
def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with Kaiming/He uniform values (He et al., 2015).

    .. math:: \mathcal{U}(-\text{bound}, \text{bound}), \quad
              \text{bound} = \text{gain} \times \sqrt{\frac{3}{\text{fan\_mode}}}

    PyTorch's Linear and Conv layers use ``a=sqrt(5)``, i.e. bound 1/sqrt(fan_in). A tensor with a
    zero-size dimension is returned unchanged, with a warning (as in torch).

    Args:
        tensor: The tensor to fill, in place (2 or more dims; fans by torch's rule).
        a: The negative slope of the rectifier after this layer (only for ``"leaky_relu"``); the
            default 0 gives the ReLU gain sqrt(2).
        mode: ``"fan_in"`` (keeps the variance of the forward pass) or ``"fan_out"`` (of the backward
            pass); case-insensitive.
        nonlinearity: The name of the nonlinearity, as :func:`calculate_gain` takes it.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None`` for
            torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``mode`` is not fan_in or fan_out, ``nonlinearity`` is not in torch's table, or
            ``tensor`` has fewer than 2 dimensions.

    Examples:
        >>> w = kaiming_uniform_(torch.empty(4, 9), a=5 ** 0.5, generator=torch.Generator().manual_seed(0))
        >>> bool(w.abs().max() <= 1 / 3)
        True
    """
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(
            kaiming_uniform_, (tensor,), tensor=tensor, a=a, mode=mode, nonlinearity=nonlinearity, generator=generator
        )
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    with torch.no_grad():
        return rng.uniform_(tensor, -bound, bound, generator)


@TORCH.register(
    "kaiming_normal",
    family="normal",
    aliases=("kaiming_normal_",),
    validate=_validate_kaiming("kaiming_normal"),
)
def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: torch.Generator | None = None,
) -> Tensor:
    r"""Fill the input Tensor with Kaiming/He normal values (He et al., 2015), untruncated.

    .. math:: \mathcal{N}(0, \text{std}^2), \quad \text{std} = \frac{\text{gain}}{\sqrt{\text{fan\_mode}}}

    A tensor with a zero-size dimension is returned unchanged, with a warning (as in torch).

    Args:
        tensor: The tensor to fill, in place (2 or more dims; fans by torch's rule).
        a: The negative slope of the rectifier after this layer (only for ``"leaky_relu"``).
        mode: ``"fan_in"`` (keeps the variance of the forward pass) or ``"fan_out"`` (of the backward
            pass); case-insensitive.
        nonlinearity: The name of the nonlinearity, as :func:`calculate_gain` takes it.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream`, or ``None`` for
            torch's global RNG.

    Returns:
        ``tensor``, filled.

    Raises:
        ValueError: ``mode`` is not fan_in or fan_out, ``nonlinearity`` is not in torch's table, or
            ``tensor`` has fewer than 2 dimensions.

    Examples:
        >>> kaiming_normal_(torch.empty(4, 9), mode="fan_out", nonlinearity="relu").shape
        torch.Size([4, 9])
    """
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=2)
        return tensor
    fan = _correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)
    with torch.no_grad():
        return rng.normal_(tensor, 0, std, generator)


_LOW_PRECISION = (torch.float16, torch.bfloat16)


@TORCH.register(
    "orthogonal",
    family="orthogonal",
    aliases=("orthogonal_",),
    validate=_validate_gain("orthogonal"),
)
def orthogonal_(tensor: Tensor, gain: float = 1, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill the input Tensor with a (semi-)orthogonal matrix (Saxe et al., 2013).

    The tensor is viewed as (shape[0], prod(shape[1:])); the result has orthonormal rows if
    rows <= cols, else orthonormal columns, times ``gain``:

    .. math:: W W^\top = \text{gain}^2 I \quad (\text{rows} \le \text{cols})

    float16/bfloat16 tensors (which torch's CPU QR rejects) are computed exactly as torch computes
    a float32 tensor of the same shape (the same single ``normal_`` draw, in float32, and the same
    QR), and the float32 result is rounded once to the tensor's dtype.

    Args:
        tensor: The tensor to fill, in place (2 or more dims).
        gain: The scaling factor.
        generator: The random source: a ``torch.Generator``, a :class:`fanin.Stream` (its own
            orthogonal matrix, factorized in float64), or ``None`` for torch's global RNG.

    Returns:
        ``tensor``, filled (an empty or meta tensor is returned unchanged).

    Raises:
        ValueError: ``tensor`` has fewer than 2 dimensions.

    Examples:
        >>> w = orthogonal_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0))
        >>> torch.allclose(w @ w.T, torch.eye(3), atol=1e-6)
        True
    """
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0 or tensor.is_meta:
        return tensor
    if isinstance(generator, rng.Stream):
        # The stream's Gaussian, factorized in float64 on one thread: bits independent of threads.
        return generator.orthogonal_(tensor, gain)
    rows, cols = TORCH.orthogonal_shape(tensor.shape)
    # torch's CPU QR has no float16/bfloat16 kernel: draw and factorize exactly as torch does for a
    # float32 tensor, so the result is torch's float32 result (times gain) rounded once.
    work = torch.float32 if tensor.dtype in _LOW_PRECISION else tensor.dtype
    flattened = rng.standard_normal((rows, cols), dtype=work, device=tensor.device, generator=generator)
    if rows < cols:
        flattened.t_()
    q, r = torch.linalg.qr(flattened)
    q *= torch.diag(r, 0).sign()
    if rows < cols:
        q.t_()
    with torch.no_grad():
        if q.dtype == tensor.dtype:
            tensor.view_as(q).copy_(q)
            tensor.mul_(gain)
        else:
            # Scale in float32 (torch's `tensor.mul_(gain)` on a float32 tensor), then round once.
            tensor.copy_(q.mul_(gain).reshape(tensor.shape))
    return tensor


@TORCH.register("sparse", family="sparse", aliases=("sparse_",), validate=_validate_sparse)
def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator: torch.Generator | None = None) -> Tensor:
    r"""Fill the 2D input Tensor as a sparse matrix (Martens, 2010).

    Values are :math:`\mathcal{N}(0, \text{std}^2)`; then in each column
    :math:`\lceil \text{sparsity} \cdot \text{rows} \rceil` rows, chosen by a random permutation,
    are set to zero.

    The one difference from torch: torch draws the permutations from the global RNG even when a
    ``generator`` is given. fanin draws them from ``generator`` when one is given, so the whole
    result is reproducible from the generator alone; with ``generator=None`` both use the global
    RNG and the result is bit-identical to torch. As in torch, ``sparsity`` is not validated here
    (values of 1 and above zero everything); a scheme built with ``fanin.get`` requires it in [0, 1).

    Args:
        tensor: The 2-D tensor to fill, in place.
        sparsity: The fraction of elements in each column to set to zero.
        std: The standard deviation of the normal distribution of the other elements.
        generator: The random source of the values and of the zero pattern: a ``torch.Generator``,
            a :class:`fanin.Stream` (a keyed permutation per column), or ``None`` for torch's global
            RNG.

    Returns:
        ``tensor``, filled (a meta tensor is returned unchanged).

    Raises:
        ValueError: ``tensor`` does not have 2 dimensions.

    Examples:
        >>> w = sparse_(torch.empty(10, 4), sparsity=0.3, generator=torch.Generator().manual_seed(0))
        >>> (w == 0).sum(0).tolist()
        [3, 3, 3, 3]
    """
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if tensor.is_meta:
        return tensor
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    with torch.no_grad():
        rng.normal_(tensor, 0, std, generator)
        if isinstance(generator, rng.Stream):
            # A keyed permutation per column: element-local. The count per column is what torch's
            # `randperm(rows)[:num_zeros]` selects, Python slicing included (a negative
            # sparsity counts from the end, as it does in torch).
            count = len(range(rows)[:num_zeros])
            mask = generator.sparse_mask((rows, cols), count, device=tensor.device)
            return tensor.masked_fill_(mask, 0)
        for col_idx in range(cols):
            row_indices = torch.randperm(rows) if generator is None else torch.randperm(rows, generator=generator)
            tensor[row_indices[:num_zeros], col_idx] = 0
    return tensor


def _deprecated(fn: Callable) -> Callable:
    new_name = fn.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args, **kwargs):
        warnings.warn(
            f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
            FutureWarning,
            stacklevel=2,
        )
        return fn(*args, **kwargs)

    deprecated_init.__name__ = old_name
    deprecated_init.__doc__ = f"Deprecated alias of :func:`{new_name}` (as in torch.nn.init)."
    return deprecated_init


uniform = _deprecated(uniform_)
normal = _deprecated(normal_)
constant = _deprecated(constant_)
eye = _deprecated(eye_)
dirac = _deprecated(dirac_)
xavier_uniform = _deprecated(xavier_uniform_)
xavier_normal = _deprecated(xavier_normal_)
kaiming_uniform = _deprecated(kaiming_uniform_)
kaiming_normal = _deprecated(kaiming_normal_)
orthogonal = _deprecated(orthogonal_)
sparse = _deprecated(sparse_)
