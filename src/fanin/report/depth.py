"""The record of a set of depth runs, and the cells every renderer shows for a run."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from fanin.diagnostics.serialize import json_rank, nonfinite_as_none, record_dict
from fanin.diagnostics.verdicts import VANISH_BELOW

if TYPE_CHECKING:  # only for annotations: building a report needs no experiment code
    from fanin.diagnostics.depth import DepthRun

__all__ = [
    "SNAPSHOT_LAYERS",
    "DepthReport",
    "activation_cell",
    "depth_report",
    "format_std",
    "limit_cell",
    "snapshot_layers",
    "std_cells",
]

# The layers whose std the tables show; layers past the depth are replaced by the last layer.
SNAPSHOT_LAYERS = (0, 1, 2, 5, 10, 30, 50, 99)


def snapshot_layers(depth: int) -> tuple[int, ...]:
    """:data:`SNAPSHOT_LAYERS` clipped to ``depth`` layers.

    >>> snapshot_layers(100)
    (0, 1, 2, 5, 10, 30, 50, 99)
    >>> snapshot_layers(8)
    (0, 1, 2, 5, 7)
    """
    return tuple(sorted({min(layer, depth - 1) for layer in SNAPSHOT_LAYERS}))


@dataclass(frozen=True)
class DepthReport:
    """Depth runs and the torch version that produced them. Runs may differ in depth."""

    runs: tuple[DepthRun, ...] = field(metadata=json_rank(1))  # after the header in the JSON form
    torch_version: str

    @property
    def layers(self) -> tuple[int, ...]:
        """The snapshot layers for the deepest run."""
        return snapshot_layers(max(run.config.depth for run in self.runs))

    def to_dict(self) -> dict[str, object]:
        return record_dict(
            self, floats=nonfinite_as_none, head={"experiment": "depth"}, computed={"layers": self.layers}
        )


def depth_report(runs: Iterable[DepthRun]) -> DepthReport:
    runs = tuple(runs)
    if not runs:
        raise ValueError("a depth report needs at least one run, got runs=()")
    return DepthReport(runs, torch.__version__)


def format_std(value: float) -> str:
    """Four significant digits; ``NaN``/``inf`` spelled out.

    >>> format_std(15.959932327270508), format_std(2.0786817e37), format_std(float("nan"))
    ('15.96', '2.079e+37', 'NaN')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def std_cells(run: DepthRun, layers: tuple[int, ...]) -> list[str]:
    """The run's std at each snapshot layer; empty where the run is shallower."""
    return [format_std(run.stds[layer]) if layer < len(run.stds) else "" for layer in layers]


def limit_cell(run: DepthRun) -> str:
    """Where the signal left float32's range or fell below the vanishing threshold.

    ``"30 (std), 31 (x)"``: torch's std is NaN from layer 30 and the activations overflow at 31.
    """
    parts = []
    if run.nonfinite_layer is not None:
        parts.append(f"{run.nonfinite_layer} (std)")
    if run.overflow_layer is not None:
        parts.append(f"{run.overflow_layer} (x)")
    if run.vanish_layer is not None:
        parts.append(f"{run.vanish_layer} (< {VANISH_BELOW:g})")
    return ", ".join(parts) or "-"


def activation_cell(run: DepthRun) -> str:
    return run.config.activation or "none"
