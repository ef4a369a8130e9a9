r"""Exact gains of activations: :math:`g = 1/\sqrt{E[f(z)^2]}`, :math:`z \sim \mathcal{N}(0, 1)`.

Why this number: a layer :math:`h = W a` with i.i.d. zero-mean weights of variance :math:`g^2/n`
and inputs :math:`a = f(z)` has :math:`\operatorname{Var}(h_i) = n \operatorname{Var}(W) E[a^2] =
g^2 E[f(z)^2]`. With :math:`g = 1/\sqrt{E[f(z)^2]}` unit-variance pre-activations stay at unit
variance from layer to layer (He et al. 2015 derive :math:`\sqrt 2` for ReLU this way). The
recursion uses the second moment :math:`E[a^2]`, not the variance, because the weights have zero
mean; it holds for any activation.

:func:`gain` computes it by quadrature to 1e-9 relative or raises. Smooth named activations use
Gauss-Hermite (``numpy.polynomial.hermite_e.hermegauss``); activations with kinks or jumps (ReLU
at 0, ReLU6 at 0 and 6, hardtanh at ±1, ...) would make Gauss-Hermite converge slowly, so the line
[-40, 40] is cut at their known kinks and at a grid of panels, and each panel gets a Gauss-Legendre
rule (the Gaussian weight beyond ±40 is below 1e-300). Arbitrary callables and modules fanin does
not know get the panel rule on a grid of half-integers (where kinks usually are) plus the
``breakpoints`` given; every result is checked against a second, refined rule and an error is
raised when the two disagree.

Where PyTorch's table (:func:`fanin.calculate_gain`) differs from the exact value
(:func:`compare_gains` returns both, with these notes):

========  ===========  ==========  =========================================================
name      torch table  exact       why
========  ===========  ==========  =========================================================
tanh      5/3          1.5925374   torch's docs give no derivation for 5/3, and we know of no
                                   published one. Asked on the PyTorch forum
                                   (discuss.pytorch.org/t/calculate-gain-tanh/20854), the
                                   answers were empirical: under 5/3 the std of a deep tanh
                                   net settles (near 0.65) whatever the depth. 5/3 is about
                                   4.7% above the exact value; the pre-activation variance
                                   then settles at E[h^2] ≈ 1.18 rather than 1.
selu      3/4          1.0000      0.75 is empirical: suggested in the same forum thread, added
                                   by pull request pytorch/pytorch#50664 (for issue #24991),
                                   whose author checked that gradients stay stable through a
                                   100-layer net. SELU's constants make E[selu(z)^2] = 1, so
                                   the exact gain is 1: self-normalizing nets use
                                   LeCun-scaled weights, and torch's docstring says to pass
                                   ``nonlinearity='linear'`` for them (3/4 "sacrifices the
                                   normalization effect for more stable gradient flow").
sigmoid   1            1.8462285   torch's docs give no derivation. Sigmoid's output is not
                                   zero-mean: 85% of E[sigmoid(z)^2] is the squared mean 1/4,
                                   which every unit shares; a gain that preserves the second
                                   moment mostly preserves that offset. The slope at 0 (1/4)
                                   would suggest 4; the std ratio gives about 4.8.
========  ===========  ==========  =========================================================

``relu`` (sqrt 2), ``leaky_relu`` (sqrt(2/(1+a^2))) and ``linear`` (1) are exact in the table.

Two Monte-Carlo estimates from ``samples`` draws :math:`z_i \sim \mathcal{N}(0, 1)` seeded with
``seed`` (a private ``torch.Generator``):

- ``method="monte_carlo"``: the definition itself, :math:`\hat g = 1/\sqrt{\hat m}` with
  :math:`\hat m = \frac1n \sum f(z_i)^2` (float64 draws). :func:`compare_gains` gives its standard
  error by the delta method, :math:`\operatorname{se}(\hat g) = \tfrac12 \hat m^{-3/2}
  \operatorname{se}(\hat m)`, :math:`\operatorname{se}(\hat m) = s_{f^2}/\sqrt n`: a check of the
  exact value that any activation passes within a few standard errors.
- ``method="std_ratio"``: the measurement of the depth-experiment document, ``std(z) / std(f(z))``
  over float32 draws. It equals the gain only when :math:`E[f(z)] = 0` (odd activations such as
  tanh: about 1.59 either way), because :math:`E[f^2] = \operatorname{Var} f + (E f)^2`; otherwise
  it overstates it (ReLU: about 1.72 against :math:`\sqrt 2`; :func:`compare_gains` reports the
  estimated mean of :math:`f(z)` to show which case applies).

>>> round(gain("relu"), 12)
1.414213562373
>>> round(gain("tanh"), 7)
1.5925374
>>> round(gain("leaky_relu", param=0.2) ** 2 * (1 + 0.2**2), 12)
2.0
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fanin.errors import FaninError, describe_choice
from fanin.formulas.gains import TABLE_NONLINEARITIES, calculate_gain

__all__ = [
    "ACTIVATIONS",
    "ALIASES",
    "GainComparison",
    "GainError",
    "MonteCarlo",
    "UnknownActivationError",
    "activation_function",
    "activation_names",
    "compare_gains",
    "gain",
]

METHODS = ("exact", "monte_carlo", "std_ratio")
SAMPLES = 100_000  # default draws of the Monte-Carlo estimates

# Relative agreement demanded of E[f(z)^2] between a rule and its refinement. The gain is its
# inverse square root, so its relative error is half of this: well inside the promised 1e-9.
_RTOL = 1e-10
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_HALF_WIDTH = 40.0  # exp(-40^2/2) ~ 1e-348: nothing of the Gaussian weight lies beyond ±40
_TAIL = 30.0  # what lies beyond ±30 must be negligible, or f grows too fast for the truncation
_GAUSS_HERMITE = (128, 256)  # tanh, the slowest smooth one, is at 3e-13 with 128 nodes
_PANELS = (0.5, 0.25)  # panel widths of the rule and its refinement
_LEGENDRE = 20  # Gauss-Legendre nodes per panel


class UnknownActivationError(FaninError, ValueError):
    """An activation name that fanin does not know."""


class GainError(FaninError, ValueError):
    """A gain that cannot be computed to the promised accuracy (non-finite or unresolved values)."""


@dataclass(frozen=True)
class _Named:
    # The second argument is the activation's param: a float for those that take one (``param``
    # names it), None for the others.
    fn: Callable[[torch.Tensor, Any], torch.Tensor]
    param: str | None = None  # what ``param`` means for this activation
    default: float | None = None
    kinks: Callable[[Any], tuple[float, ...]] | None = None  # None: smooth (Gauss-Hermite)


def _at(*points: float) -> Callable[[Any], tuple[float, ...]]:
    return lambda p: points


def _softplus_kink(beta: float) -> tuple[float, ...]:
    # torch returns x itself once beta*x > threshold (20): a jump of log1p(exp(-20))/beta there.
    return (20.0 / beta,)


def _symmetric(lambd: float) -> tuple[float, ...]:
    return (-lambd, lambd)


# torch.nn.functional names. Each function is evaluated by torch in the caller's dtype.
ACTIVATIONS: dict[str, _Named] = {
    "linear": _Named(lambda x, p: x),
    "relu": _Named(lambda x, p: F.relu(x), kinks=_at(0.0)),
    "leaky_relu": _Named(lambda x, p: F.leaky_relu(x, p), "negative_slope", 0.01, _at(0.0)),
    "tanh": _Named(lambda x, p: torch.tanh(x)),
    "sigmoid": _Named(lambda x, p: torch.sigmoid(x)),
    "gelu": _Named(lambda x, p: F.gelu(x)),
    "gelu_tanh": _Named(lambda x, p: F.gelu(x, approximate="tanh")),
    "silu": _Named(lambda x, p: F.silu(x)),
    "mish": _Named(lambda x, p: F.mish(x)),
    "elu": _Named(lambda x, p: F.elu(x, p), "alpha", 1.0, _at(0.0)),
    "selu": _Named(lambda x, p: F.selu(x), kinks=_at(0.0)),
    "celu": _Named(lambda x, p: F.celu(x, p), "alpha", 1.0, _at(0.0)),
    "softplus": _Named(lambda x, p: F.softplus(x, p), "beta", 1.0, _softplus_kink),
    "hardtanh": _Named(lambda x, p: F.hardtanh(x), kinks=_at(-1.0, 1.0)),
    "relu6": _Named(lambda x, p: F.relu6(x), kinks=_at(0.0, 6.0)),
    "hardswish": _Named(lambda x, p: F.hardswish(x), kinks=_at(-3.0, 3.0)),
    "hardsigmoid": _Named(lambda x, p: F.hardsigmoid(x), kinks=_at(-3.0, 3.0)),
    "softsign": _Named(lambda x, p: F.softsign(x), kinks=_at(0.0)),  # |x| in the denominator
    "tanhshrink": _Named(lambda x, p: F.tanhshrink(x)),
    "logsigmoid": _Named(lambda x, p: F.logsigmoid(x)),
    "softshrink": _Named(lambda x, p: F.softshrink(x, p), "lambd", 0.5, _symmetric),
    "hardshrink": _Named(lambda x, p: F.hardshrink(x, p), "lambd", 0.5, _symmetric),
}

ALIASES = {
    "identity": "linear",
    "swish": "silu",
    **{name: "linear" for name in TABLE_NONLINEARITIES if name.startswith("conv")},
}

# Module classes whose configuration is captured by (name, param). Exact types: ReLU6 subclasses
# Hardtanh, and a subclass may change forward().
_MODULES: dict[type, tuple[str, str | None]] = {
    nn.Identity: ("linear", None),
    nn.ReLU: ("relu", None),
    nn.LeakyReLU: ("leaky_relu", "negative_slope"),
    nn.Tanh: ("tanh", None),
    nn.Sigmoid: ("sigmoid", None),
    nn.SiLU: ("silu", None),
    nn.Mish: ("mish", None),
    nn.ELU: ("elu", "alpha"),
    nn.SELU: ("selu", None),
    nn.CELU: ("celu", "alpha"),
    nn.ReLU6: ("relu6", None),
    nn.Hardswish: ("hardswish", None),
    nn.Hardsigmoid: ("hardsigmoid", None),
    nn.Softsign: ("softsign", None),
    nn.Tanhshrink: ("tanhshrink", None),
    nn.LogSigmoid: ("logsigmoid", None),
    nn.Softshrink: ("softshrink", "lambd"),
    nn.Hardshrink: ("hardshrink", "lambd"),
}

# Plain torch functions recognised as named activations (their defaults).
_FUNCTIONS: dict[Callable[..., Any], str] = {
    torch.tanh: "tanh",
    torch.sigmoid: "sigmoid",
    torch.relu: "relu",
    F.relu: "relu",
    F.leaky_relu: "leaky_relu",
    F.gelu: "gelu",
    F.silu: "silu",
    F.mish: "mish",
    F.elu: "elu",
    F.selu: "selu",
    torch.selu: "selu",
    F.celu: "celu",
    F.softplus: "softplus",
    F.hardtanh: "hardtanh",
    F.relu6: "relu6",
    F.hardswish: "hardswish",
    F.hardsigmoid: "hardsigmoid",
    F.softsign: "softsign",
    F.tanhshrink: "tanhshrink",
    F.logsigmoid: "logsigmoid",
}

_NOTES = {
    "tanh": (
        "torch's docs give no derivation for 5/3 and we know of no published one (the answers on "
        "the PyTorch forum, discuss.pytorch.org/t/calculate-gain-tanh/20854, are empirical: the std "
        "of a deep tanh net settles under 5/3); it is about 4.7% above the exact gain, and under "
        "5/3 the variance recursion settles at E[h^2] ≈ 1.18 instead of 1."
    ),
    "selu": (
        "torch's 3/4 is empirical (suggested on the PyTorch forum, added by pytorch/pytorch#50664 "
        "for issue #24991 after checking gradients through 100 layers); SELU's constants make "
        "E[selu(z)^2] = 1, so the exact gain is 1 (self-normalizing nets use LeCun-scaled weights; "
        "torch's docstring says to pass nonlinearity='linear' for them)."
    ),
    "sigmoid": (
        "torch's docs give no derivation for 1; sigmoid's output is not zero-mean and 85% of "
        "E[sigmoid(z)^2] is the squared mean 1/4 shared by all units, so the second-moment gain "
        "mostly preserves that offset (the slope at 0 would suggest 4, the std ratio about 4.8)."
    ),
}


def activation_names() -> list[str]:
    """Sorted names (and aliases) that :func:`gain` accepts.

    Returns:
        The names, sorted.

    Examples:
        >>> "gelu_tanh" in activation_names() and "swish" in activation_names()
        True
    """
    return sorted([*ACTIVATIONS, *ALIASES])


def activation_function(name: str, param: float | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The torch function behind an activation name, ``param`` bound (for any dtype).

    Args:
        name: An activation name or alias (:func:`activation_names`).
        param: The activation's one parameter where it has one (``None``: its default).

    Returns:
        A function of one tensor.

    Raises:
        TypeError: ``name`` is not a string, or ``param`` is not a finite real number.
        UnknownActivationError: ``name`` is not a known activation.
        ValueError: ``param`` is given for an activation that takes none, or is out of its domain.

    Examples:
        >>> activation_function("leaky_relu", 0.5)(torch.tensor([-2.0, 3.0]))
        tensor([-1.,  3.])
    """
    if not isinstance(name, str):
        raise TypeError(f"activation_function takes an activation name, got name={name!r}")
    return _resolve(name, param, None).fn


@dataclass(frozen=True)
class _Resolved:
    label: str  # what the caller gave, for messages and records
    name: str | None  # canonical activation name, when fanin knows the function
    param: float | None
    fn64: Callable[[torch.Tensor], torch.Tensor]
    fn: Callable[[torch.Tensor], torch.Tensor]
    breakpoints: tuple[float, ...]
    smooth: bool


def _resolve(activation: object, param: object, breakpoints: Sequence[float] | None) -> _Resolved:
    extra = _check_breakpoints(breakpoints)
    if isinstance(activation, str):
        name = ALIASES.get(activation, activation)
        if name not in ACTIVATIONS:
            raise UnknownActivationError(describe_choice("activation", activation, activation_names()))
        return _named(activation, name, param, extra)
    if isinstance(activation, nn.Module):
        known = _MODULES.get(type(activation))
        if known is not None:
            _no_param(activation, param, "it is read from the module")
            name, attribute = known
            value = None if attribute is None else float(getattr(activation, attribute))
            return _named(type(activation).__name__, name, value, extra)
        if type(activation) is nn.GELU:
            _no_param(activation, param, "it is read from the module")
            name = "gelu_tanh" if activation.approximate == "tanh" else "gelu"
            return _named(type(activation).__name__, name, None, extra)
        _no_param(activation, param, "fanin calls the module as it is")
        # A double copy, so modules with float32 parameters (PReLU) evaluate in float64.
        double = copy.deepcopy(activation).double()
        return _Resolved(type(activation).__name__, None, None, double, activation, extra, False)
    if callable(activation):
        try:
            function_name = _FUNCTIONS.get(activation)
        except TypeError:  # an unhashable callable object
            function_name = None
        label = getattr(activation, "__name__", None) or repr(activation)
        if function_name is not None:
            return _named(label, function_name, param, extra)
        _no_param(activation, param, "fanin calls the function with one tensor")
        return _Resolved(label, None, None, activation, activation, extra, False)
    raise TypeError(
        "activation must be a name such as 'tanh', a callable on tensors or an nn.Module instance "
        f"such as nn.Tanh(); got activation={activation!r} ({type(activation).__name__})"
    )


def _named(label: str, name: str, param: object, extra: tuple[float, ...]) -> _Resolved:
    spec = ACTIVATIONS[name]
    if spec.param is None:
        if param is not None:
            raise ValueError(f"Activation {name!r} takes no param, got param={param!r}")
        value = None
    elif param is None:
        value = spec.default
    elif isinstance(param, bool) or not isinstance(param, (int, float)) or not math.isfinite(param):
        raise TypeError(f"param ({spec.param} of {name!r}) must be a finite real number, got param={param!r}")
    else:
        value = float(param)
    if name == "softplus" and value == 0:
        raise ValueError("param (beta of 'softplus') must be non-zero, got param=0")
    if name in ("softshrink", "hardshrink") and value is not None and value < 0:
        raise ValueError(f"param (lambd of {name!r}) must be >= 0, got param={param!r}")

    def fn(x: torch.Tensor) -> torch.Tensor:
        return spec.fn(x, value)

    kinks = () if spec.kinks is None else spec.kinks(value)
    return _Resolved(label, name, value, fn, fn, tuple(kinks) + extra, spec.kinks is None and not extra)


def _no_param(activation: object, param: object, why: str) -> None:
    if param is not None:
        raise ValueError(f"param is only for activation names ({why}); got param={param!r} with {activation!r}")


def _check_breakpoints(breakpoints: Sequence[float] | None) -> tuple[float, ...]:
    if breakpoints is None:
        return ()
    try:
        points = tuple(float(b) for b in breakpoints)
    except (TypeError, ValueError):
        raise TypeError(f"breakpoints must be a sequence of real numbers, got breakpoints={breakpoints!r}") from None
    if not all(math.isfinite(b) for b in points):
        raise ValueError(f"breakpoints must be finite, got breakpoints={breakpoints!r}")
    return points


def gain(
    activation: str | Callable[[torch.Tensor], torch.Tensor] | nn.Module,
    *,
    method: str = "exact",
    param: float | None = None,
    samples: int = SAMPLES,
    seed: int = 0,
    breakpoints: Sequence[float] | None = None,
) -> float:
    r"""The gain of ``activation``: :math:`1/\sqrt{E[f(z)^2]}`, :math:`z \sim \mathcal{N}(0, 1)`.

    ``method="exact"`` (the default) integrates by quadrature, evaluating f on float64 tensors,
    to 1e-9 relative. ``method="monte_carlo"`` estimates the same definition from ``samples``
    float64 draws seeded with ``seed``; ``method="std_ratio"`` is the document's
    ``std(z) / std(f(z))`` over float32 draws, the gain only when :math:`E[f(z)] = 0` (see the
    module docs).

    Args:
        activation: A ``torch.nn.functional`` name (``"relu"``, ``"leaky_relu"``, ``"gelu_tanh"``,
            ``"swish"``, ...; see :func:`activation_names`), a callable on tensors, or an
            ``nn.Module`` instance (``nn.LeakyReLU(0.2)``).
        method: ``"exact"``, ``"monte_carlo"`` or ``"std_ratio"``.
        param: The activation's one parameter, for a name that has one (``leaky_relu``: negative
            slope, default 0.01; ``elu``/``celu``: alpha; ``softplus``: beta;
            ``softshrink``/``hardshrink``: lambd).
        samples: The number of draws of the two estimates (at least 2).
        seed: The seed of the estimates' private ``torch.Generator``.
        breakpoints: Where a callable has kinks or jumps, to cut the quadrature there.

    Returns:
        The gain.

    Raises:
        UnknownActivationError: An activation name fanin does not know.
        GainError: f returns inf/NaN, or a callable's kinks keep the quadrature from converging
            (pass their locations as ``breakpoints``).
        ValueError: An unknown ``method``, or a ``param`` the activation does not take.
        TypeError: ``activation`` is not a name, a callable or a module, or ``param`` is not a
            finite real number.

    Examples:
        >>> round(gain("linear"), 12), round(gain(torch.nn.Tanh(), method="std_ratio"), 1)
        (1.0, 1.6)
        >>> round(gain("relu", method="monte_carlo"), 2), round(gain("relu", method="std_ratio"), 2)
        (1.41, 1.72)
        >>> gain("tanhh")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fanin.activations.UnknownActivationError: Unknown activation 'tanhh'. Did you mean 'tanh' or ... Accepted: ...
    """
    if method not in METHODS:
        raise ValueError(describe_choice("method", method, METHODS))
    resolved = _resolve(activation, param, breakpoints)
    if method == "std_ratio":
        return _std_ratio(resolved, samples, seed)
    if method == "monte_carlo":
        return _monte_carlo(resolved, samples, seed).gain
    return 1.0 / math.sqrt(_second_moment(resolved))


# -- exact --------------------------------------------------------------------------------------


@cache
def _hermite(n: int) -> tuple[np.ndarray, np.ndarray]:
    from numpy.polynomial.hermite_e import hermegauss

    x, w = hermegauss(n)
    return x, w / _SQRT_2PI  # weights of exp(-x^2/2): normalised, they integrate against φ


@cache
def _legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(n)


def _panel_rule(width: float, kinks: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and φ-weights on [-40, 40], panels of ``width`` cut at kinks."""
    grid = np.arange(-_HALF_WIDTH, _HALF_WIDTH + width / 2, width)
    inside = [k for k in kinks if -_HALF_WIDTH < k < _HALF_WIDTH]
    edges = np.unique(np.concatenate([grid, np.asarray(inside, dtype=np.float64)]))
    t, w = _legendre(_LEGENDRE)
    left, right = edges[:-1, None], edges[1:, None]
    half = (right - left) / 2
    x = (left + right) / 2 + half * t
    weights = half * w * np.exp(-x * x / 2) / _SQRT_2PI
    return x.ravel(), weights.ravel()


def _evaluate(r: _Resolved, x: np.ndarray) -> np.ndarray:
    given = torch.from_numpy(x)
    with torch.no_grad():
        out = r.fn64(given.clone())
    if isinstance(out, torch.Tensor) and out.dtype != torch.float64:
        raise GainError(
            f"activation {r.label!r} returned {out.dtype} for a float64 input; the exact gain needs f "
            "evaluated in float64 to reach 1e-9"
        )
    try:
        y = torch.as_tensor(out, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"activation {r.label!r} must return a tensor of its input's shape, got {type(out).__name__}"
        ) from None
    if y.shape != given.shape:
        raise GainError(
            f"activation {r.label!r} must return a tensor of its input's shape {tuple(given.shape)}, "
            f"got shape {tuple(y.shape)}"
        )
    bad = ~torch.isfinite(y)
    if bad.any():
        i = int(bad.nonzero()[0, 0])
        raise GainError(
            f"activation {r.label!r} returned a non-finite value, f({float(x[i])!r}) = {y[i].item()!r}; "
            "E[f(z)^2] needs finite values on [-40, 40]"
        )
    return y.numpy()


def _estimate(r: _Resolved, rule: tuple[np.ndarray, np.ndarray]) -> float:
    x, w = rule
    y = _evaluate(r, x)
    with np.errstate(over="ignore"):  # an overflow becomes inf, reported just below
        terms = w * y * y
        total = float(terms.sum())
    if not math.isfinite(total):
        raise GainError(f"E[f(z)^2] of activation {r.label!r} overflows float64 (f(z)^2 is too large)")
    tail = float(terms[np.abs(x) > _TAIL].sum())
    if tail > _RTOL * total:
        # Truncating at ±40 is only exact when f(z)^2 φ(z) has died out well before it.
        raise GainError(
            f"f(z)^2·φ(z) of activation {r.label!r} is not negligible beyond |z| = {_TAIL:g} "
            f"({tail:.3g} of {total:.3g}): f grows too fast for E[f(z)^2] to be computed (or to exist)"
        )
    return total


def _second_moment(r: _Resolved) -> float:
    if r.smooth:
        rules = [_hermite(n) for n in _GAUSS_HERMITE]
        how = f"Gauss-Hermite with {_GAUSS_HERMITE[0]} and {_GAUSS_HERMITE[1]} nodes"
    else:
        rules = [_panel_rule(h, r.breakpoints) for h in _PANELS]
        how = f"Gauss-Legendre panels of width {_PANELS[0]} and {_PANELS[1]} on [-40, 40]"
    coarse, fine = (_estimate(r, rule) for rule in rules)
    if fine <= 0:
        raise GainError(
            f"activation {r.label!r} has E[f(z)^2] = {fine!r}: it is zero almost everywhere, no gain exists"
        )
    if abs(coarse - fine) > _RTOL * fine:
        raise GainError(
            f"E[f(z)^2] of activation {r.label!r} did not converge to 1e-9: {how} give {coarse!r} "
            f"and {fine!r}. If f has kinks or jumps, pass their locations, e.g. "
            "fanin.gain(f, breakpoints=[0.3])"
        )
    return fine


# -- Monte-Carlo -------------------------------------------------------------------------------


def _check_draws(samples: object, seed: object) -> None:
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 2:
        raise ValueError(f"samples must be an int >= 2, got samples={samples!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got seed={seed!r}")


def _apply(r: _Resolved, fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = fn(x.clone())  # an in-place f must not change x
    try:
        y = torch.as_tensor(out)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(
            f"activation {r.label!r} must return a tensor of its input's shape, got {type(out).__name__}"
        ) from None
    if y.shape != x.shape:
        raise GainError(
            f"activation {r.label!r} must return a tensor of its input's shape {tuple(x.shape)}, "
            f"got shape {tuple(y.shape)}"
        )
    return y


@dataclass(frozen=True)
class MonteCarlo:
    """The Monte-Carlo estimate of the gain and of :math:`E[f(z)]`, each with its standard error."""

    gain: float
    gain_se: float
    mean: float
    mean_se: float


def _monte_carlo(r: _Resolved, samples: int, seed: int) -> MonteCarlo:
    _check_draws(samples, seed)
    z = torch.randn(samples, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = _apply(r, r.fn64, z).to(torch.float64)
    if not bool(torch.isfinite(y).all()):
        raise GainError(f"activation {r.label!r} returned non-finite values on the draws; no estimate of E[f(z)^2]")
    squares = y * y
    m = float(squares.mean())
    if not m > 0:
        raise GainError(f"activation {r.label!r} is 0 on every draw: mean of f(z)^2 is {m!r}, no gain exists")
    root_n = math.sqrt(samples)
    m_se = float(squares.std()) / root_n
    return MonteCarlo(m**-0.5, 0.5 * m**-1.5 * m_se, float(y.mean()), float(y.std()) / root_n)


def _std_ratio(r: _Resolved, samples: int, seed: int) -> float:
    _check_draws(samples, seed)
    x = torch.randn(samples, generator=torch.Generator().manual_seed(seed))
    y = _apply(r, r.fn, x)
    ratio = (x.std() / y.std()).item()
    if not math.isfinite(ratio):
        raise GainError(f"std(z)/std(f(z)) of activation {r.label!r} is {ratio!r} (f constant or non-finite)")
    return ratio


# -- comparison ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GainComparison:
    """The exact gain of one activation beside PyTorch's table value and two Monte-Carlo estimates.

    ``table`` is ``None`` where torch's ``calculate_gain`` has no entry (it raises for 'gelu').
    ``monte_carlo`` ± ``monte_carlo_se`` estimates the exact definition; ``mean`` ± ``mean_se``
    estimates :math:`E[f(z)]` from the same draws; ``std_ratio`` is ``std(z)/std(f(z))``, the gain
    only when :math:`E[f(z)] = 0`. ``note`` explains a difference between ``table`` and ``exact``
    (tanh, selu, sigmoid).
    """

    activation: str
    param: float | None
    exact: float
    table: float | None
    monte_carlo: float
    monte_carlo_se: float
    mean: float
    mean_se: float
    std_ratio: float
    samples: int
    seed: int
    note: str | None

    @property
    def std_ratio_valid(self) -> bool:
        """Whether the draws are consistent with :math:`E[f(z)] = 0` (the estimated mean within 3
        of its standard errors of 0), the one case where the std ratio estimates the gain."""
        return abs(self.mean) <= 3 * self.mean_se

    def to_dict(self) -> dict[str, object]:
        """The fields, and :attr:`std_ratio_valid`, as a plain dict (for JSON).

        Returns:
            A dict of the fields.
        """
        return {
            "activation": self.activation,
            "param": self.param,
            "exact": self.exact,
            "table": self.table,
            "monte_carlo": self.monte_carlo,
            "monte_carlo_se": self.monte_carlo_se,
            "mean": self.mean,
            "mean_se": self.mean_se,
            "std_ratio": self.std_ratio,
            "std_ratio_valid": self.std_ratio_valid,
            "samples": self.samples,
            "seed": self.seed,
            "note": self.note,
        }


def compare_gains(
    activation: str | Callable[[torch.Tensor], torch.Tensor] | nn.Module,
    param: float | None = None,
    *,
    samples: int = SAMPLES,
    seed: int = 0,
) -> GainComparison:
    """Exact gain, torch's table value (or ``None``), the Monte-Carlo estimate with its standard
    error and the std ratio, side by side.

    Args:
        activation: A name, a callable on tensors or an ``nn.Module`` instance, as :func:`gain`
            takes it.
        param: The activation's one parameter, for a name that has one.
        samples: The number of draws of the two estimates (at least 2).
        seed: The seed of the estimates' private ``torch.Generator``.

    Returns:
        The comparison, with a note where torch's table differs from the exact gain.

    Raises:
        UnknownActivationError: An activation name fanin does not know.
        GainError: The gain cannot be computed to the promised accuracy.

    Examples:
        >>> c = compare_gains("relu")
        >>> round(c.exact, 4), round(c.monte_carlo, 2), round(c.std_ratio, 2), c.std_ratio_valid
        (1.4142, 1.41, 1.72, False)
        >>> abs(c.monte_carlo - c.exact) < 4 * c.monte_carlo_se
        True
        >>> compare_gains("gelu").table is None
        True
    """
    r = _resolve(activation, param, None)
    exact = 1.0 / math.sqrt(_second_moment(r))
    table = None
    if r.name in TABLE_NONLINEARITIES:
        table = float(calculate_gain(r.name, r.param))
    note = None
    if table is not None and abs(table - exact) > 1e-9 * exact:
        note = _NOTES.get(r.name or "")
    label = r.label if r.name is None or r.label == r.name else f"{r.name} ({r.label})"
    mc = _monte_carlo(r, samples, seed)
    return GainComparison(
        label,
        r.param,
        exact,
        table,
        mc.gain,
        mc.gain_se,
        mc.mean,
        mc.mean_se,
        _std_ratio(r, samples, seed),
        samples,
        seed,
        note,
    )
