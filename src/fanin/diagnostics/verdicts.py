r"""Verdicts on a signal through depth: the thresholds, and each verdict with its evidence.

One module judges both the depth experiment (:mod:`fanin.diagnostics.depth`, one verdict per run)
and the probe of a user's model (:func:`fanin.diagnostics.probing.probe`, every verdict that
applies). The thresholds are named constants; every :class:`Verdict` carries the threshold it was
judged against, the layer where the problem starts and the measured figure.

Thresholds (the input is assumed standardized, std about 1):

==========================  ========  ===========================================================
constant                    value     verdict
==========================  ========  ===========================================================
``EXPLODE_ABOVE``           1e3       ``exploding``: some layer's std is above it or non-finite
``VANISH_BELOW``            1e-3      ``vanishing``: some layer's std is below it
``DECAY_BELOW``             0.1       ``vanishing``: the last layer's std is below this fraction
                                      of the input's std (a slow, algebraic decay)
``SATURATION_LEVEL``        0.99      a tanh unit is saturated when :math:`|y| > 0.99`
                                      (:math:`\tanh' = 1 - y^2 < 0.02`); sigmoid when
                                      :math:`|2y - 1| > 0.99` (the same pre-activations)
``SATURATED_ABOVE``         0.5       ``saturating``: on average over the saturating layers more
                                      than half of the units are saturated
``DEAD_ABOVE``              0.9       ``dead_units``: more than 90% of a layer's outputs are
                                      exactly 0 (a ReLU of zero-mean inputs gives 50%); not
                                      the units that are 0 for the whole batch, since deep ReLU
                                      nets map a batch onto nearly one direction, which leaves
                                      half the units off for every sample without any being dead
``RESIDUAL_EXPONENT_ABOVE`` 0.25      ``residual_growth``: the residual stream's std grows as
                                      :math:`k^x` over the blocks :math:`k = 1..K`, :math:`x`
                                      above it (fit of :math:`\log \sigma_k` on :math:`\log k`)
``RESIDUAL_MIN_BLOCKS``     4         fewer blocks give no exponent
``GRADIENT_RATIO_BELOW``    1e-2      ``gradients_vanishing``: the gradient std at the first
                                      layer is below this fraction of that at the last layer
``GRADIENT_RATIO_ABOVE``    1e2       ``gradients_exploding``: above this multiple (or non-finite)
==========================  ========  ===========================================================

The growth rate per layer is :math:`e^{b}`, :math:`b` the least-squares slope of
:math:`\log \sigma` against the layer's depth (parameterized layers counted from 1), over the
finite, positive stds before the signal leaves float range.

>>> round(growth_per_layer([1, 2, 3], [1.0, 16.0, 256.0]), 12)
16.0
>>> round(power_exponent([1.0, 2.0, 3.0, 4.0]), 12)
1.0
>>> str(Verdict("stable", "std within [0.001, 1000] at every layer"))
'stable: std within [0.001, 1000] at every layer'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fanin.diagnostics.serialize import record_dict

__all__ = [
    "DEAD_ABOVE",
    "DECAY_BELOW",
    "EXPLODE_ABOVE",
    "GRADIENT_RATIO_ABOVE",
    "GRADIENT_RATIO_BELOW",
    "KINDS",
    "RESIDUAL_EXPONENT_ABOVE",
    "RESIDUAL_MIN_BLOCKS",
    "SATURATED_ABOVE",
    "SATURATION_LEVEL",
    "VANISH_BELOW",
    "VERDICTS",
    "Scan",
    "Verdict",
    "first_index",
    "growth_per_layer",
    "judge_depth",
    "judge_signal",
    "power_exponent",
    "scan_stds",
]

EXPLODE_ABOVE = 1e3
VANISH_BELOW = 1e-3
DECAY_BELOW = 0.1
SATURATION_LEVEL = 0.99
SATURATED_ABOVE = 0.5
DEAD_ABOVE = 0.9
RESIDUAL_EXPONENT_ABOVE = 0.25
RESIDUAL_MIN_BLOCKS = 4
GRADIENT_RATIO_BELOW = 1e-2
GRADIENT_RATIO_ABOVE = 1e2

# The depth experiment's verdicts, one per run, in the order they are checked.
VERDICTS = ("exploding", "vanishing", "saturating", "stable")
# Every kind of verdict the probe gives; "stable" only when no other applies.
KINDS = (
    "stable",
    "exploding",
    "vanishing",
    "saturating",
    "dead_units",
    "residual_growth",
    "gradients_vanishing",
    "gradients_exploding",
)
# Outputs that are probabilities: their std says nothing about the signal's scale.
_PROBABILITIES = ("Softmax", "Softmin", "Softmax2d")


@dataclass(frozen=True)
class Verdict:
    """One verdict: its kind (one of :data:`KINDS`), a sentence with the evidence, the threshold
    it was judged against, the layer (execution index) where it starts, the measured figure, and
    a rate where one applies (growth per layer, or the residual exponent)."""

    kind: str
    message: str
    threshold: float | None = None
    layer: int | None = None
    value: float | None = None
    rate: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            from fanin.errors import describe_choice

            raise ValueError(describe_choice("verdict kind", self.kind, KINDS))

    @property
    def healthy(self) -> bool:
        return self.kind == "stable"

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Verdict:
        return cls(
            data["kind"],
            data["message"],
            data.get("threshold"),
            data.get("layer"),
            _from_json_float(data.get("value")),
            _from_json_float(data.get("rate")),
        )


def _from_json_float(value: float | str | None) -> float | None:
    return float(value) if isinstance(value, str) else value


def first_index(values: Sequence[float], test: Callable[[float], bool]) -> int | None:
    """Index of the first value passing ``test``; ``None`` when none does."""
    return next((i for i, v in enumerate(values) if test(v)), None)


@dataclass(frozen=True)
class Scan:
    """Where a sequence of stds crosses the thresholds (``None``: never)."""

    nonfinite: int | None  # first NaN/inf std
    explode: int | None  # first finite std above EXPLODE_ABOVE
    vanish: int | None  # first std below VANISH_BELOW


def scan_stds(stds: Sequence[float]) -> Scan:
    """The threshold crossings of ``stds``.

    >>> scan_stds([1.0, 2e3, float("nan")])
    Scan(nonfinite=2, explode=1, vanish=None)
    """
    return Scan(
        first_index(stds, lambda s: not math.isfinite(s)),
        first_index(stds, lambda s: math.isfinite(s) and s > EXPLODE_ABOVE),
        first_index(stds, lambda s: s < VANISH_BELOW),
    )


def growth_per_layer(depths: Sequence[float], stds: Sequence[float]) -> float | None:
    """:math:`e^b`, :math:`b` the least-squares slope of :math:`\\log \\sigma` on depth, over the
    finite positive stds up to the first non-finite one; ``None`` with fewer than two depths."""
    points = []
    for d, s in zip(depths, stds, strict=True):
        if not math.isfinite(s):
            break
        if s > 0:
            points.append((float(d), math.log(s)))
    if len({d for d, _ in points}) < 2:
        return None
    from scipy import stats  # deferred: scipy.stats costs about a second to import

    fit = stats.linregress([d for d, _ in points], [y for _, y in points])
    return math.exp(fit.slope)


def power_exponent(stds: Sequence[float]) -> float | None:
    """The exponent :math:`x` of :math:`\\sigma_k \\propto k^x`, :math:`k = 1..K`, by least squares
    on logs; ``None`` with fewer than two blocks or a non-finite or zero std."""
    if len(stds) < 2 or not all(math.isfinite(s) and s > 0 for s in stds):
        return None
    from scipy import stats

    fit = stats.linregress([math.log(k) for k in range(1, len(stds) + 1)], [math.log(s) for s in stds])
    return float(fit.slope)


def judge_depth(stds: Sequence[float], saturated: Sequence[float] | None, overflow: int | None) -> tuple[str, str]:
    """The depth experiment's single verdict (one of :data:`VERDICTS`) and its reason.

    Checked in this order: exploding (an std above ``EXPLODE_ABOVE`` or non-finite), vanishing
    (an std below ``VANISH_BELOW``, or the last below ``DECAY_BELOW`` times the input's std of 1),
    saturating (mean saturated fraction above ``SATURATED_ABOVE``), stable.

    >>> judge_depth([0.9, 1.1], None, None)
    ('stable', 'std within [0.001, 1000] at every layer (1.1 after the last layer)')
    """
    scan = scan_stds(stds)
    last = f"{stds[-1]:.3g} after the last layer"
    if scan.nonfinite is not None or scan.explode is not None:
        parts = []
        if scan.explode is not None:
            parts.append(f"std exceeds {EXPLODE_ABOVE:g} at layer {scan.explode}")
        if scan.nonfinite is not None:
            parts.append(f"torch's float32 std is non-finite from layer {scan.nonfinite}")
        if overflow is not None:
            parts.append(f"the activations overflow float32 at layer {overflow}")
        return "exploding", "; ".join(parts)
    if scan.vanish is not None:
        return "vanishing", (
            f"std falls below {VANISH_BELOW:g} at layer {scan.vanish} ({stds[scan.vanish]:.3g}); {last}"
        )
    if stds[-1] < DECAY_BELOW:
        return "vanishing", (
            f"std decays to {last}, below {DECAY_BELOW:g} (a tenth of the input's std), though never "
            f"below {VANISH_BELOW:g}"
        )
    within = f"std within [{VANISH_BELOW:g}, {EXPLODE_ABOVE:g}] at every layer ({last})"
    if saturated is not None:
        mean = math.fsum(saturated) / len(saturated)
        if mean > SATURATED_ABOVE:
            return "saturating", (
                f"{within}, but on average {mean:.0%} of units are saturated (|y| > {SATURATION_LEVEL:g}), "
                "where the gradient through tanh is below 0.02"
            )
    return "stable", within


def _where(layer: Any) -> str:
    call = f", call {layer.call}" if layer.call else ""
    return f"layer {layer.index} ({layer.name or '(model)'!r}, {layer.module}{call})"


def judge_signal(layers: Sequence[Any], blocks: Sequence[Any] = (), *, input_std: float = 1.0) -> tuple[Verdict, ...]:
    """Every verdict that applies to a probe's records, or a single ``stable`` one.

    ``layers`` are records in execution order with ``index``, ``name``, ``module``, ``call``,
    ``depth``, ``parameters``, ``std``, ``finite``, ``saturated``, ``dead`` and ``grad_std``
    (:class:`fanin.diagnostics.records.LayerStats`); ``blocks`` residual-stream records with
    ``output_std`` (:class:`fanin.diagnostics.records.BlockStats`). ``input_std`` scales ``DECAY_BELOW``.
    """
    verdicts: list[Verdict] = []
    signal = [layer for layer in layers if layer.module not in _PROBABILITIES]
    if signal:
        verdicts += _forward(signal, input_std)
    saturating = [layer for layer in layers if layer.saturated is not None and math.isfinite(layer.saturated)]
    if saturating:
        mean = math.fsum(layer.saturated for layer in saturating) / len(saturating)
        if mean > SATURATED_ABOVE:
            worst = max(saturating, key=lambda layer: layer.saturated)
            verdicts.append(
                Verdict(
                    "saturating",
                    f"on average {mean:.0%} of the units of the {len(saturating)} saturating activations are "
                    f"saturated (|y| > {SATURATION_LEVEL:g} for tanh, where its gradient is below 0.02), above "
                    f"{SATURATED_ABOVE:g}; worst: {worst.saturated:.0%} at {_where(worst)}",
                    SATURATED_ABOVE,
                    saturating[0].index,
                    mean,
                )
            )
    dead = [layer for layer in layers if layer.zeros > DEAD_ABOVE]
    if dead:
        verdicts.append(
            Verdict(
                "dead_units",
                f"{len(dead)} layer(s) output more than {DEAD_ABOVE:.0%} exact zeros, from {_where(dead[0])} "
                f"({dead[0].zeros:.0%} zeros, {dead[0].dead:.0%} of units 0 for the whole batch)",
                DEAD_ABOVE,
                dead[0].index,
                dead[0].zeros,
            )
        )
    if len(blocks) >= RESIDUAL_MIN_BLOCKS:
        stds = [block.output_std for block in blocks]
        exponent = power_exponent(stds)
        if exponent is not None and exponent > RESIDUAL_EXPONENT_ABOVE:
            verdicts.append(
                Verdict(
                    "residual_growth",
                    f"the residual stream's std grows as depth^{exponent:.2f} over {len(blocks)} blocks "
                    f"({stds[0]:.3g} after {blocks[0].name}, {stds[-1]:.3g} after {blocks[-1].name}), exponent above "
                    f"{RESIDUAL_EXPONENT_ABOVE:g}",
                    RESIDUAL_EXPONENT_ABOVE,
                    None,
                    stds[-1],
                    exponent,
                )
            )
    verdicts += _gradients(layers)
    if not verdicts:
        finite = [layer.std for layer in signal]
        span = f" ({min(finite):.3g} to {max(finite):.3g})" if finite else ""
        verdicts.append(Verdict("stable", f"std within [{VANISH_BELOW:g}, {EXPLODE_ABOVE:g}] at every layer{span}"))
    return tuple(verdicts)


def _forward(signal: Sequence[Any], input_std: float) -> list[Verdict]:
    stds = [layer.std if layer.finite else math.nan for layer in signal]
    scan = scan_stds(stds)
    weighted = [layer for layer in signal if layer.parameters] or list(signal)
    rate = growth_per_layer(
        [layer.depth if layer.parameters else layer.index for layer in weighted],
        [layer.std if layer.finite else math.nan for layer in weighted],
    )
    per_layer = "" if rate is None else f"; x{rate:.3g} per layer"
    if scan.explode is not None or scan.nonfinite is not None:
        parts = []
        if scan.explode is not None:
            at = signal[scan.explode]
            parts.append(f"std exceeds {EXPLODE_ABOVE:g} from {_where(at)} ({at.std:.4g})")
        if scan.nonfinite is not None:
            parts.append(f"non-finite from {_where(signal[scan.nonfinite])}")
        start = min(i for i in (scan.explode, scan.nonfinite) if i is not None)
        value = signal[scan.explode].std if scan.explode is not None else math.nan
        return [Verdict("exploding", "; ".join(parts) + per_layer, EXPLODE_ABOVE, signal[start].index, value, rate)]
    if scan.vanish is not None:
        at = signal[scan.vanish]
        return [
            Verdict(
                "vanishing",
                f"std falls below {VANISH_BELOW:g} from {_where(at)} ({at.std:.3g}){per_layer}",
                VANISH_BELOW,
                at.index,
                at.std,
                rate,
            )
        ]
    last = signal[-1]
    if math.isfinite(input_std) and input_std > 0 and last.std < DECAY_BELOW * input_std:
        return [
            Verdict(
                "vanishing",
                f"std decays to {last.std:.3g} at the last layer ({_where(last)}), below {DECAY_BELOW:g} of the "
                f"input's std ({input_std:.3g}), though never below {VANISH_BELOW:g}{per_layer}",
                DECAY_BELOW,
                last.index,
                last.std / input_std,
                rate,
            )
        ]
    return []


def _gradients(layers: Sequence[Any]) -> list[Verdict]:
    graded = [layer for layer in layers if layer.grad_std is not None]
    if len(graded) < 2:
        return []
    bad = next((layer for layer in graded if not math.isfinite(layer.grad_std)), None)
    if bad is not None:
        return [
            Verdict(
                "gradients_exploding",
                f"the gradient is non-finite at {_where(bad)}",
                GRADIENT_RATIO_ABOVE,
                bad.index,
                bad.grad_std,
            )
        ]
    first, last = graded[0], graded[-1]
    if last.grad_std == 0:
        return []
    ratio = first.grad_std / last.grad_std
    figures = (
        f"gradient std {first.grad_std:.3g} at {_where(first)}, {last.grad_std:.3g} at {_where(last)}: "
        f"ratio {ratio:.3g}"
    )
    if ratio < GRADIENT_RATIO_BELOW:
        return [
            Verdict(
                "gradients_vanishing",
                f"gradients vanish toward the input: {figures}, below {GRADIENT_RATIO_BELOW:g}",
                GRADIENT_RATIO_BELOW,
                first.index,
                ratio,
            )
        ]
    if ratio > GRADIENT_RATIO_ABOVE:
        return [
            Verdict(
                "gradients_exploding",
                f"gradients grow toward the input: {figures}, above {GRADIENT_RATIO_ABOVE:g}",
                GRADIENT_RATIO_ABOVE,
                first.index,
                ratio,
            )
        ]
    return []
