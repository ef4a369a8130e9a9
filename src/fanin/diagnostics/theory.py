r"""Exact signal propagation for the classic case: the variance recursion beside a real network.

For a network of ``depth`` layers of ``width`` units, layer :math:`l` computing
:math:`h_l = W_l a_{l-1} + b_l`, :math:`a_l = f(h_l)`, :math:`a_0 = x`, with i.i.d. zero-mean
weights of variance :math:`\sigma_w^2`, biases of variance :math:`\sigma_b^2` and inputs of second
moment :math:`E[x^2]`, the pre-activations are (for wide layers) Gaussian with second moment

.. math::
    q_1 = n\,\sigma_w^2\,E[x^2] + \sigma_b^2, \qquad
    q_{l+1} = n\,\sigma_w^2\,E\!\left[f\!\left(\sqrt{q_l}\,z\right)^2\right] + \sigma_b^2,
    \quad z \sim \mathcal{N}(0, 1)

(Poole et al. 2016, Schoenholz et al. 2017; He et al. 2015 for ReLU). :math:`n` is the fan-in:
``width`` for an MLP, ``width * k * k`` for a convolution of ``width`` channels and a k x k kernel
(circular padding in the measured run, so every output sees the same number of inputs). Layers are
counted from 0 here: ``q[0]`` is the pre-activation of the first layer. The post-activation
second moment is :math:`m_l = E[f(\sqrt{q_l} z)^2]`, computed by the quadrature of
:func:`fanin.gain` (a Gauss-Legendre panel rule, 1e-9 relative, cut at the activation's kinks
scaled by :math:`1/\sqrt{q_l}`): :math:`m = 1/\text{gain}(z \mapsto f(\sqrt{q}\,z))^2`.

:math:`\sigma_w^2` comes from the scheme (:func:`weight_variance`, read from the draw model
:func:`fanin.frameworks.draws.draw_of`): Kaiming :math:`g^2/\text{fan}`, Xavier
:math:`g^2\cdot 2/(\text{fan\_in}+\text{fan\_out})`, ``normal(std)`` :math:`\text{std}^2`,
orthogonal :math:`g^2/\max(\text{rows}, \text{cols})`, variance scaling ``scale / fan``, ...

Closed forms the recursion reproduces: ReLU with Kaiming (:math:`\sigma_w^2 = 2/n`) keeps
:math:`q_l = 2E[x^2]` at every depth; no activation with :math:`\sigma_w^2 = 1/n` keeps
:math:`q_l = E[x^2]`.

The recursion is for the expectation over weights. One network of finite width fluctuates
around it, more with depth: for ReLU the log of :math:`q_l` has a variance of roughly
:math:`\sum_l 2\rho_l^2/n`, :math:`\rho_l` the cosine between two inputs' activations (which ReLU
drives towards 1), about 10% relative at depth 10 and width 1024 (measured: 1.41 to 2.02 for the
predicted 2 over eight seeds). :func:`signal_propagation` therefore averages the measurement over
``repeats`` independent networks and reports its standard error.

Examples:
    >>> p = predict_second_moments(3, 1024, "relu", "kaiming_normal(nonlinearity='relu')")
    >>> [round(x.pre, 12) for x in p], [round(x.post, 12) for x in p]
    ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from fanin.activations import ACTIVATIONS, ALIASES, activation_function, gain
from fanin.diagnostics.serialize import nonfinite_as_none, record_dict
from fanin.errors import SchemeArgumentError, describe_choice
from fanin.frameworks import draws
from fanin.frameworks.fanin import lsuv_scheme
from fanin.rng.threads import one_thread
from fanin.schemes import Scheme, get

if TYPE_CHECKING:  # rich is imported by the renderer only
    from rich.table import Table

__all__ = [
    "KINDS",
    "LayerMoments",
    "Prediction",
    "SignalPropagation",
    "predict_second_moments",
    "signal_propagation",
    "weight_variance",
]

KINDS = ("cnn", "mlp")
_LINEAR = (None, "linear", "identity")


def weight_variance(scheme: str | Scheme, shape: tuple[int, ...]) -> float:
    r"""The variance :math:`\sigma_w^2` of one weight entry that ``scheme`` draws for a torch-layout ``shape``.

    Read from the one draw model (:func:`fanin.frameworks.draws.draw_of`: the scheme's own code at
    this shape, nothing drawn), so every scheme that draws one uniform, normal, truncated-normal or
    sparse-normal distribution, or an orthogonal matrix, over the whole tensor is known, with the
    arguments it is given (fan modes, axes, layouts). Zero-mean schemes only (the recursion assumes
    zero-mean weights); for the orthogonal schemes the per-entry variance
    :math:`g^2/\max(\text{rows}, \text{cols})`, which gives the same :math:`n\sigma_w^2` as an
    i.i.d. draw (rows of norm g, or columns).

    Args:
        scheme: A :func:`fanin.get` spec or a :class:`fanin.Scheme`.
        shape: The weight's shape in torch's layout, ``(out, in, *kernel)`` (2 or more dims).

    Returns:
        The variance of one entry.

    Raises:
        SchemeArgumentError: The scheme's variance is not known in closed form (LSUV, constant,
            identity, structured or several draws), or its draw is not zero-mean.
        ValueError: ``shape`` has fewer than 2 dimensions.

    Examples:
        >>> round(weight_variance("kaiming_normal(nonlinearity='relu')", (256, 128)) * 128, 12)
        2.0
        >>> round(weight_variance("xavier_uniform", (30, 10)), 15)
        0.05
        >>> weight_variance("uniform", (3, 3))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        fanin.errors.SchemeArgumentError: The variance recursion needs zero-mean weights;
        scheme 'uniform' has mean 0.5 (uniform low=0, high=1)
    """
    s = get(scheme)
    shape = tuple(int(d) for d in shape)
    if len(shape) < 2:
        raise ValueError(f"weight_variance needs a weight shape (out, in, *kernel), got shape={shape!r}")
    draw = None if s.entry.fn is lsuv_scheme else draws.draw_of(s, shape)
    if draw is None or draw.kind == "constant":
        raise SchemeArgumentError(
            f"The weight variance of scheme {str(s)!r} is not known in closed form (data-dependent, constant, "
            "identity, structured or several draws); known for the schemes whose draw over the whole tensor is "
            f"one of: {', '.join(k for k in draws.KINDS if k != 'constant')}. "
            "Pass weight_var= to give the variance directly."
        )
    if abs(draw.mean) > 1e-12:
        drawn = ", ".join(f"{k}={v:g}" for k, v in draw.parameters.items())
        raise SchemeArgumentError(
            f"The variance recursion needs zero-mean weights; scheme {str(s)!r} has mean {draw.mean:g} "
            f"({draw.kind} {drawn})"
        )
    return draw.variance


def _second_moment(activation: str | None, param: float | None, q: float) -> float:
    """:math:`E[f(\\sqrt{q} z)^2]` by :func:`fanin.gain`'s quadrature."""
    if activation in _LINEAR or not math.isfinite(q):
        return q
    f = activation_function(activation, param)
    if q == 0.0:
        return float(f(torch.zeros(1, dtype=torch.float64))[0]) ** 2
    root = math.sqrt(q)
    name = ALIASES.get(activation, activation)
    spec = ACTIVATIONS[name]
    kinks = () if spec.kinks is None else spec.kinks(spec.default if param is None else float(param))

    def scaled(x: torch.Tensor) -> torch.Tensor:
        return f(x * root)

    scaled.__name__ = f"{activation}(sqrt({q:.6g}) z)"
    return 1.0 / gain(scaled, breakpoints=[k / root for k in kinks]) ** 2


@dataclass(frozen=True)
class Prediction:
    """Predicted second moments of layer ``layer``: pre-activation :math:`q_l`, post-activation :math:`m_l`."""

    layer: int
    pre: float
    post: float


def _check_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {name}={value!r}")
    return value


def _check_real(name: str, value: object, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    if positive and value == 0:
        raise ValueError(f"{name} must be > 0, got {name}={value!r}")
    return float(value)


def _weight_shape(kind: str, width: int, kernel_size: int) -> tuple[int, ...]:
    if kind not in KINDS:
        raise ValueError(describe_choice("kind", kind, KINDS))
    return (width, width) if kind == "mlp" else (width, width, kernel_size, kernel_size)


def predict_second_moments(
    depth: int,
    width: int,
    activation: str | None = None,
    scheme: str | Scheme | None = None,
    *,
    param: float | None = None,
    kind: str = "mlp",
    kernel_size: int = 3,
    weight_var: float | None = None,
    bias_std: float = 0.0,
    input_second_moment: float = 1.0,
) -> tuple[Prediction, ...]:
    r"""The recursion :math:`q_{l+1} = n\sigma_w^2 E[f(\sqrt{q_l}z)^2] + \sigma_b^2`, layer by layer.

    ``activation`` is ``None`` (none) or a :func:`fanin.activations.activation_names` name (``param``
    its parameter); ``scheme`` a :func:`fanin.get` spec whose variance :func:`weight_variance`
    knows, or ``weight_var`` the variance itself. ``kind="cnn"``: ``width`` channels and a
    ``kernel_size`` square kernel, :math:`n` = width * k * k.

    Args:
        depth: The number of layers (>= 1).
        width: The units of each layer (>= 1), or the channels for ``kind="cnn"``.
        activation: The activation after each layer: ``None``, ``"linear"`` or ``"identity"`` for
            none, else a :func:`fanin.activations.activation_names` name.
        scheme: The weights' scheme (a :func:`fanin.get` spec whose variance
            :func:`weight_variance` knows, at the shape of one layer); exactly one of ``scheme``
            and ``weight_var``.
        param: The activation's parameter (a leaky ReLU's slope, ...); ``None`` for its default.
        kind: ``"mlp"`` (weights ``(width, width)``) or ``"cnn"`` (weights
            ``(width, width, kernel_size, kernel_size)``).
        kernel_size: The side k of the square kernel (>= 1; only for ``kind="cnn"``).
        weight_var: The variance :math:`\sigma_w^2` of one weight entry, given directly (finite, >= 0).
        bias_std: The standard deviation :math:`\sigma_b` of the biases (finite, >= 0).
        input_second_moment: The inputs' second moment :math:`E[x^2]` (finite, >= 0).

    Returns:
        One :class:`Prediction` per layer, layer 0 first: ``pre`` is :math:`q_l`, ``post`` :math:`m_l`.

    Raises:
        ValueError: A count or number is out of its range, ``kind`` is unknown, the activation or
            its parameter is unknown, or not exactly one of ``scheme`` and ``weight_var`` is given.
        SchemeArgumentError: The scheme's variance is not known (see :func:`weight_variance`).

    Examples:
        >>> [round(p.pre, 12) for p in predict_second_moments(3, 100, None, "normal(std=0.1)")]
        [1.0, 1.0, 1.0]
        >>> round(predict_second_moments(1, 64, "tanh", weight_var=1 / 64)[0].post, 12)  # E[tanh(z)^2]
        0.394294490398
    """
    _check_int("depth", depth, 1)
    _check_int("width", width, 1)
    _check_int("kernel_size", kernel_size, 1)
    shape = _weight_shape(kind, width, kernel_size)
    if (scheme is None) == (weight_var is None):
        raise ValueError(
            f"give the weights' distribution as scheme= (a fanin.get spec) or weight_var= (a variance), "
            f"exactly one; got scheme={scheme!r}, weight_var={weight_var!r}"
        )
    var_w = _check_real("weight_var", weight_var) if scheme is None else weight_variance(scheme, shape)
    if activation not in _LINEAR:
        activation_function(activation, param)  # unknown names and bad params fail here, with the list
    var_b = _check_real("bias_std", bias_std) ** 2
    q_in = _check_real("input_second_moment", input_second_moment)
    chi = math.prod(shape[1:]) * var_w  # n * Var(W), n = fan_in
    out, moment = [], q_in
    for layer in range(depth):
        q = chi * moment + var_b
        moment = _second_moment(activation, param, q)
        out.append(Prediction(layer, q, moment))
    return tuple(out)


@dataclass(frozen=True)
class LayerMoments:
    r"""Predicted and measured second moments of one layer (measured: mean over ``repeats`` networks).

    ``pre_sem`` is the standard error of ``measured_pre`` across the networks (``None`` for one).
    ``one_step_pre`` is the recursion applied to each network's *measured* previous layer,
    :math:`n\sigma_w^2 \hat E[f(h_{l-1})^2] + \sigma_b^2` (the measured input for layer 0),
    averaged over the networks: it checks one step of the recursion without the compounded
    finite-width fluctuations of the layers before (see the module docs).
    """

    layer: int
    predicted_pre: float
    measured_pre: float
    predicted_post: float
    measured_post: float
    pre_sem: float | None
    one_step_pre: float

    @property
    def one_step_error(self) -> float:
        """``measured_pre / one_step_pre - 1``."""
        return self.measured_pre / self.one_step_pre - 1.0

    @property
    def relative_error(self) -> float:
        """``measured_pre / predicted_pre - 1``."""
        return self.measured_pre / self.predicted_pre - 1.0

    def to_dict(self) -> dict[str, object]:
        return record_dict(
            self,
            floats=nonfinite_as_none,
            computed={"relative_error": self.relative_error if self.predicted_pre else None},
        )


@dataclass(frozen=True)
class SignalPropagation:
    """The recursion's prediction beside a real network's measurement, layer by layer."""

    kind: str
    depth: int
    width: int
    activation: str | None
    scheme: str
    weight_var: float
    bias_std: float
    batch: int
    repeats: int
    seed: int
    layers: tuple[LayerMoments, ...]

    @property
    def max_relative_error(self) -> float:
        """The largest ``|measured / predicted - 1|`` of the pre-activation second moment."""
        return max(abs(x.relative_error) for x in self.layers)

    def to_dict(self) -> dict[str, object]:
        return record_dict(self, floats=nonfinite_as_none, head={"experiment": "signal_propagation"})

    def title(self) -> str:
        """The table's title: the experiment's settings (:func:`fanin.report.theory.signal_propagation_title`)."""
        from fanin.report.theory import signal_propagation_title

        return signal_propagation_title(self)

    def to_markdown(self) -> str:
        """A Markdown table, one row a layer (:func:`fanin.report.theory.signal_propagation_markdown`)."""
        from fanin.report.theory import signal_propagation_markdown

        return signal_propagation_markdown(self)

    def to_table(self) -> Table:
        """A rich table (:func:`fanin.report.theory.signal_propagation_table`)."""
        from fanin.report.theory import signal_propagation_table

        return signal_propagation_table(self)

    def __rich__(self) -> Table:
        return self.to_table()


def signal_propagation(
    depth: int,
    width: int,
    activation: str | None,
    scheme: str | Scheme,
    *,
    param: float | None = None,
    kind: str = "mlp",
    kernel_size: int = 3,
    image_size: int = 8,
    batch: int = 64,
    repeats: int = 1,
    bias_std: float = 0.0,
    seed: int = 0,
) -> SignalPropagation:
    r"""Predict the second moments (:func:`predict_second_moments`) and measure them in real networks.

    Each of ``repeats`` networks: a torch.Generator seeded with ``seed`` draws, per network and in
    this order, the input :math:`x \sim \mathcal{N}(0, 1)` (``(batch, width)``, or
    ``(batch, width, image_size, image_size)`` for ``kind="cnn"``), then for each layer the weight
    (``scheme``) and, when ``bias_std > 0``, the bias :math:`\mathcal{N}(0, \text{bias\_std}^2)`.
    The layers run in float32 (``F.linear``, or ``F.conv2d`` after circular padding); the second
    moments :math:`E[h^2]` and :math:`E[f(h)^2]` are means over every element, in float64, then
    averaged over the networks.

    Args:
        depth: The number of layers (>= 1).
        width: The units of each layer (>= 1), or the channels for ``kind="cnn"``.
        activation: The activation after each layer: ``None``, ``"linear"`` or ``"identity"`` for
            none, else a :func:`fanin.activations.activation_names` name.
        scheme: The weights' scheme, a :func:`fanin.get` spec whose variance
            :func:`weight_variance` knows; it draws every layer's weight.
        param: The activation's parameter; ``None`` for its default.
        kind: ``"mlp"`` or ``"cnn"`` (convolutions padded circularly by ``kernel_size // 2``).
        kernel_size: The side of the square kernel (odd, >= 1; only for ``kind="cnn"``).
        image_size: The side of the square input images (>= 1; only for ``kind="cnn"``).
        batch: The number of inputs per network (>= 1).
        repeats: The number of independent networks the measurement is averaged over (>= 1).
        bias_std: The standard deviation of the biases (finite, >= 0; 0 for no bias).
        seed: The seed of the one torch.Generator that draws inputs, weights and biases.

    Returns:
        The experiment's settings and, per layer, the predicted and measured second moments
        (:class:`LayerMoments`).

    Raises:
        ValueError: A count or number is out of its range, ``kind`` is unknown, ``kernel_size`` is
            even for ``kind="cnn"``, or the activation or its parameter is unknown.
        TypeError: ``seed`` is not an int.
        SchemeArgumentError: The scheme's variance is not known (see :func:`weight_variance`).

    Examples:
        >>> r = signal_propagation(2, 256, "relu", "kaiming_normal(nonlinearity='relu')", batch=32)
        >>> [round(x.predicted_pre, 9) for x in r.layers], r.max_relative_error < 0.1
        ([2.0, 2.0], True)
    """
    _check_int("batch", batch, 1)
    _check_int("repeats", repeats, 1)
    _check_int("image_size", image_size, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got seed={seed!r}")
    if kind == "cnn" and kernel_size % 2 == 0:
        raise ValueError(
            f"the measured CNN pads circularly by k // 2 and needs an odd kernel_size, got kernel_size={kernel_size}"
        )
    s = get(scheme)
    predicted = predict_second_moments(
        depth, width, activation, s, param=param, kind=kind, kernel_size=kernel_size, bias_std=bias_std
    )
    shape = _weight_shape(kind, width, kernel_size)
    f = None if activation in _LINEAR else activation_function(activation, param)
    pad = kernel_size // 2
    # One thread, as in fanin.diagnostics.depth: on a shared, loaded machine torch's parallel
    # regions wait for descheduled workers (measured on 2 busy cores: 3x slower than one thread).
    with one_thread():
        pre, post, one_step = _measure(s, f, shape, kind, depth, width, image_size, batch, repeats, bias_std, seed, pad)
    mean_pre, mean_post = pre.mean(0), post.mean(0)
    sem = pre.std(0) / math.sqrt(repeats) if repeats > 1 else None
    layers = tuple(
        LayerMoments(
            p.layer,
            p.pre,
            mean_pre[p.layer].item(),
            p.post,
            mean_post[p.layer].item(),
            None if sem is None else sem[p.layer].item(),
            one_step.mean(0)[p.layer].item(),
        )
        for p in predicted
    )
    return SignalPropagation(
        kind, depth, width, activation, str(s), weight_variance(s, shape), float(bias_std), batch, repeats, seed, layers
    )


def _measure(s, f, shape, kind, depth, width, image_size, batch, repeats, bias_std, seed, pad):
    generator = torch.Generator().manual_seed(seed)
    pre = torch.zeros(repeats, depth, dtype=torch.float64)
    post = torch.zeros(repeats, depth, dtype=torch.float64)
    one_step = torch.zeros(repeats, depth, dtype=torch.float64)
    chi = math.prod(shape[1:]) * weight_variance(s, shape)
    with torch.no_grad():
        for r in range(repeats):
            x_shape = (batch, width) if kind == "mlp" else (batch, width, image_size, image_size)
            x = torch.randn(x_shape, generator=generator)
            for layer in range(depth):
                one_step[r, layer] = chi * x.double().square().mean() + float(bias_std) ** 2
                w = s(torch.empty(shape), generator=generator)
                b = torch.randn(width, generator=generator) * bias_std if bias_std > 0 else None
                if kind == "mlp":
                    h = F.linear(x, w, b)
                else:
                    h = F.conv2d(F.pad(x, (pad, pad, pad, pad), mode="circular"), w, b)
                x = h if f is None else f(h)
                pre[r, layer] = h.double().square().mean()
                post[r, layer] = x.double().square().mean()
    return pre, post, one_step
