"""The record of one probe run (:func:`fanin.probe`): per-layer, per-parameter and residual-stream
statistics and the verdicts, with a JSON form that round-trips (:meth:`ProbeReport.save` /
:meth:`ProbeReport.load`).

Plain data, kept beside the probe that fills it so that diagnostics import nothing from
:mod:`fanin.report`; the renderers (table, Markdown, JSON, PNG) are in :mod:`fanin.report.probe`.

Floats are kept as Python floats; in JSON a non-finite one is written as the string ``"nan"``,
``"inf"`` or ``"-inf"`` (strict JSON has no NaN), so that ``load(save(r)) == r`` exactly.

>>> layer = LayerStats(0, "0", "Linear", 0, 1, 6, (2, 3), "torch.float32", 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, None, True)
>>> LayerStats.from_dict(layer.to_dict()) == layer
True
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fanin.diagnostics.serialize import json_rank, record_dict
from fanin.diagnostics.verdicts import Verdict
from fanin.errors import FaninError

__all__ = ["BlockStats", "LayerStats", "ParamStats", "ProbeReport", "UnhealthyModelError", "load_report"]

FORMAT = "fanin.probe/1"


class UnhealthyModelError(FaninError, AssertionError):
    """Raised by :meth:`ProbeReport.assert_healthy`; ``verdicts`` holds the failing verdicts."""

    def __init__(self, message: str, verdicts: tuple[Verdict, ...]) -> None:
        super().__init__(message)
        self.verdicts = verdicts


def _dec(value: Any) -> Any:
    return float(value) if value in ("nan", "inf", "-inf") else value


class _Record:
    """to_dict/from_dict for flat dataclasses of floats, ints, strs and int tuples."""

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        kwargs = {}
        for f in fields(cls):  # type: ignore[arg-type]
            value = _dec(data[f.name]) if f.name in data else f.default
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
        return cls(**kwargs)


@dataclass(frozen=True)
class LayerStats(_Record):
    r"""One call of one layer, in execution order (``index`` from 0).

    ``name`` is the module's qualified name (``""`` for the model itself), ``module`` its class,
    ``call`` counts earlier calls of the same module in this run (a module used twice gives two
    records), ``depth`` the number of parameterized layer calls so far (this one included),
    ``parameters`` the number of parameter elements the module owns directly.

    Statistics of the output :math:`y` (its first floating tensor), computed in float64:
    ``mean``, ``std`` (unbiased, like ``Tensor.std``), ``second_moment`` :math:`E[y^2]`,
    ``torch_std`` (``y.std()`` in ``y``'s own dtype, what printing it shows; float32's reduction
    overflows before float64's does), ``zeros`` (fraction of exact zeros), ``dead`` (fraction of
    units, the entries of ``y[0]``, that are 0 for every sample of the batch), ``saturated``
    (tanh: :math:`|y| > 0.99`, sigmoid: :math:`|2y-1| > 0.99`, hardtanh: at a bound; ``None`` for
    other modules), ``finite`` (no NaN/inf in ``y``), ``grad_std`` (std of the gradient of the
    loss with respect to ``y``; ``None`` without a backward pass).
    """

    index: int
    name: str
    module: str
    call: int
    depth: int
    parameters: int
    shape: tuple[int, ...]
    dtype: str
    mean: float
    std: float
    second_moment: float
    torch_std: float
    zeros: float
    dead: float
    saturated: float | None
    finite: bool
    grad_std: float | None = None


@dataclass(frozen=True)
class ParamStats(_Record):
    """One parameter: its std, and with a backward pass its gradient's std and the ratio
    ``grad_std / std`` (``None`` where the weight's std is 0, e.g. a zero-initialized bias)."""

    name: str
    shape: tuple[int, ...]
    std: float
    grad_std: float | None = None
    grad_ratio: float | None = None


@dataclass(frozen=True)
class BlockStats(_Record):
    """One residual block's call: the std of the stream entering it and leaving it. ``k`` is the
    block's position along the stream (1-based); ``detected`` is False for blocks named by the
    user's ``residual=`` patterns."""

    k: int
    name: str
    call: int
    index: int
    input_std: float
    output_std: float
    detected: bool = True


@dataclass(frozen=True, eq=True)
class ProbeReport:
    """What :func:`fanin.probe` measured on one model, and its verdicts.

    ``repr()`` is one line; ``print(report)`` shows the tables (:mod:`fanin.report.probe`);
    ``to_dict()`` is the JSON form, which :func:`load_report` reads back.

    Attributes:
        label: The run's name in tables and plots (several reports on one plot compare schemes).
        model: The model's class name.
        mode: ``"train"`` or ``"eval"``: the mode of the pass.
        backward: Whether the backward pass was run (gradient statistics are ``None`` otherwise).
        device: The model's device (``"cpu"`` for a model without parameters or buffers).
        torch_version: ``torch.__version__`` of the run.
        input_shapes: The shape of every input tensor.
        input_std: The std of all floating-point input values together (NaN when there are none).
        layers: One record per recorded layer call, in execution order.
        params: One record per parameter, in ``named_parameters()`` order.
        blocks: One record per residual block call, along the stream.
        residual_exponent: :math:`x` of the stream's std :math:`\\propto k^x` (``None`` with
            fewer than 2 blocks).
        verdicts: The verdicts on the signal (:class:`~fanin.diagnostics.verdicts.Verdict`).
        input_dtypes: The dtypes of the input tensors when known (``()`` otherwise): integer
            inputs (token ids) have no std, and the summary says what they are instead.

    Examples:
        >>> import torch, fanin
        >>> report = fanin.probe(torch.nn.Linear(4, 4), torch.ones(2, 4))
        >>> report.model, report.input_shapes, [r.name for r in report.layers]
        ('Linear', ((2, 4),), [''])
    """

    label: str
    model: str
    mode: str
    backward: bool
    device: str
    torch_version: str
    input_shapes: tuple[tuple[int, ...], ...]
    input_std: float
    # the per-layer lists go last in the JSON form, after the header they belong to
    layers: tuple[LayerStats, ...] = field(metadata=json_rank(1))
    params: tuple[ParamStats, ...] = field(metadata=json_rank(1))
    blocks: tuple[BlockStats, ...] = field(metadata=json_rank(1))
    residual_exponent: float | None
    verdicts: tuple[Verdict, ...]
    input_dtypes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        kinds = ", ".join(v.kind for v in self.verdicts) or "no verdict"
        shapes = ", ".join("x".join(map(str, s)) for s in self.input_shapes) or "no input"
        n = len(self.layers)
        return (
            f"<ProbeReport {self.label!r} ({self.model}): {n} layer call{'s' * (n != 1)}, input {shapes}, "
            f"{'forward and backward' if self.backward else 'forward only'}: {kinds}>"
        )

    def __str__(self) -> str:
        from fanin.report.probe import probe_text

        return probe_text(self).rstrip("\n")

    @property
    def healthy(self) -> bool:
        """True when the only verdict is ``stable``."""
        return all(v.healthy for v in self.verdicts)

    @property
    def problems(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.healthy)

    def layer(self, name: str, call: int = 0) -> LayerStats:
        """The record of module ``name``'s ``call``-th call.

        Args:
            name: The module's qualified name (``""`` for the model itself).
            call: Which call of the module, counted from 0.

        Returns:
            The layer's record.

        Raises:
            KeyError: No recorded layer has that name and call.
        """
        for record in self.layers:
            if record.name == name and record.call == call:
                return record
        names = sorted({r.name for r in self.layers})
        from fanin.errors import describe_choice

        raise KeyError(describe_choice("layer", name, names) + (f" (call={call})" if call else ""))

    def assert_healthy(self) -> None:
        """Raise :class:`UnhealthyModelError` (an ``AssertionError``) listing every verdict that is
        not ``stable``, with its evidence and threshold; return ``None`` when healthy."""
        problems = self.problems
        if problems:
            lines = "\n".join(f"- {v}" for v in problems)
            raise UnhealthyModelError(f"probe of {self.label or self.model} is not healthy:\n{lines}", problems)

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self, head={"format": FORMAT})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeReport:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"not a fanin probe report: expected format={FORMAT!r}, got format={got!r}")
        return cls(
            data["label"],
            data["model"],
            data["mode"],
            data["backward"],
            data["device"],
            data["torch_version"],
            tuple(tuple(s) for s in data["input_shapes"]),
            _dec(data["input_std"]),
            tuple(LayerStats.from_dict(r) for r in data["layers"]),
            tuple(ParamStats.from_dict(r) for r in data["params"]),
            tuple(BlockStats.from_dict(r) for r in data["blocks"]),
            _dec(data["residual_exponent"]),
            tuple(Verdict.from_dict(v) for v in data["verdicts"]),
            tuple(data.get("input_dtypes", ())),
        )

    def to_json(self) -> str:
        """Strict JSON (no NaN literals), indented, ending with a newline."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ProbeReport:
        return load_report(path)


def load_report(path: str | os.PathLike[str]) -> ProbeReport:
    """Read a report written by :meth:`ProbeReport.save`."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"not a fanin probe report: {path} is not JSON ({err})") from None
    return ProbeReport.from_dict(data)
