r"""``fanin.coord_check``: does a parametrization keep activations the same size as the width grows?

The coordinate check of Yang et al. (2022, "Tensor Programs V", §D.1; microsoft/mup's
``get_coord_data``): build the model at several widths, train each a few steps with the same data,
optimizer and learning rate, and record every layer's typical activation size at every step. Under
muP it stays flat in width; under standard parametrization it grows after a few Adam steps (the
updates are too large by a factor of the width). fanin's version:

- builds each model on the meta device (``make_model(width)`` under ``torch.device("meta")``) and
  materializes it by the plan of ``rules`` (a muP plan also gets its learning rates from
  :func:`fanin.mup_param_groups` and its forward multipliers from :func:`fanin.mup_hooks`);
- records, at steps ``t = 0..steps`` (the forward pass before update ``t+1``; ``t = 0`` is the
  init), the ``l1`` size :math:`\operatorname{mean}|y|` (mup's default) or the RMS
  :math:`\sqrt{\operatorname{mean} y^2}` of the output of every layer the probe records
  (:func:`fanin.diagnostics.probing.default_layer`: leaves that own parameters, activation
  modules) and of the model's output. A multiplier that belongs to the next operation (the
  queries' attention scale) is applied after the recording, one that belongs to the layer (the
  readout's ``1/m``) before it;
- groups layers that repeat in a ``ModuleList`` (a module called twice is recorded, and grouped,
  per call: ``mid``, ``mid#1``) (``h.0.attn.c_attn``, ``h.1.attn.c_attn`` ->
  ``h.*.attn.c_attn``), averages each group over its members and the seeds, and fits, for every
  group and step, the slope :math:`s` of :math:`\log y = s \log \text{width} + c` by least squares;
- gives each group a verdict from its slope after the last update: ``stable`` when
  :math:`|s| \le` ``tolerance``, else ``grows as width^s`` / ``shrinks as width^s``.

Under ``torch.distributed`` (FSDP2 / data parallel ranks, e.g. gloo) every rank passes its own
batch; the sums behind each statistic are all-reduced, so every rank gets the statistics of the
global batch. ``parallelize`` (e.g. ``lambda m: fully_shard(m) or m``) is applied to the meta model
before it is materialized (``to_empty`` + :func:`fanin.apply`, which fills each rank's shards).

The result is plain data (:class:`CoordCheck`: ``to_dict``/``from_dict``/``save``/``load``);
``print()`` shows its table and :func:`fanin.report.coord_check.write_coord_plot` draws the figure.

>>> import torch, fanin
>>> from fanin.rules.parametrization import mup
>>> make = lambda w: torch.nn.Sequential(torch.nn.Linear(16, w), torch.nn.ReLU(), torch.nn.Linear(w, w),
...                                      torch.nn.ReLU(), torch.nn.Linear(w, 10))
>>> g = torch.Generator().manual_seed(0)
>>> data = (torch.randn(64, 16, generator=g), torch.randint(0, 10, (64,), generator=g))
>>> sp = coord_check(make, [64, 256, 1024], data, steps=3, lr=0.02)
>>> sp.verdict("4").text  # the logits
'grows as width^1.06'
>>> mu = coord_check(make, [64, 256, 1024], data, steps=3, lr=0.02, rules=mup(base_width=64, zero_readout=True))
>>> [v.text for v in mu.verdicts]
['stable (width^+0.01)', 'stable (width^+0.02)', 'stable (width^+0.00)', 'stable (width^-0.01)', 'stable (width^-0.00)']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fanin.diagnostics.probing import call_model, default_layer, first_tensor
from fanin.diagnostics.serialize import json_rank, record_dict
from fanin.errors import FaninError, describe_choice
from fanin.planning.applying import apply
from fanin.planning.materializing import BUFFER_HOOKS, materialize
from fanin.planning.records import Plan
from fanin.planning.resolve import plan as make_plan
from fanin.rules.load import bind
from fanin.rules.parametrization import (
    OPTIMIZERS,
    MupError,
    mup_hooks,
    mup_param_groups,
    mup_table,
)
from fanin.rules.parametrization.table import literal

__all__ = [
    "FORMAT",
    "OPTIMIZERS",
    "STATISTICS",
    "CoordCheck",
    "CoordCheckError",
    "CoordFit",
    "CoordVerdict",
    "coord_check",
    "default_group",
]

FORMAT = "fanin.coord_check/1"
STATISTICS = ("l1", "rms")
OUTPUT = "<output>"


class CoordCheckError(FaninError, ValueError):
    """Arguments :func:`coord_check` cannot use."""


@dataclass(frozen=True)
class CoordFit:
    """The fit of one layer group (or layer) at one step: ``values[i]`` at ``widths[i]`` (averaged
    over the group's members and the seeds), slope and intercept of the log-log line, and the
    standard error of the slope (``nan`` with two widths)."""

    group: str
    step: int
    widths: tuple[int, ...]
    values: tuple[float, ...]
    slope: float
    intercept: float
    stderr: float


@dataclass(frozen=True)
class CoordVerdict:
    """A group's verdict after the last update (``step = steps``): ``slope`` is the fitted
    exponent there; ``kind`` is ``stable`` (``|slope| <= tolerance``), ``grows``, ``shrinks``,
    ``zero`` (its size is 0 at some width: nothing to fit) or ``non-finite``. The earlier steps'
    slopes are in :attr:`CoordCheck.fits` (under muP the init's share of the logits fades as
    ``width^-1/2``, so the first steps of a model whose readout does not start at 0 show it)."""

    group: str
    kind: str
    slope: float
    text: str
    step: int


@dataclass(frozen=True)
class CoordCheck:
    """The record of one coordinate check (see the module docstring).

    Plain data: ``to_dict``/``from_dict``, ``save``/``load`` (JSON); ``print()`` shows its table.

    Attributes:
        label: The check's name.
        rules: The name of the plan's rules.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: The (base) learning rate.
        statistic: ``"l1"`` or ``"rms"``: the size recorded for each layer.
        steps: The number of updates; sizes are recorded at steps ``0..steps``.
        widths: The widths, increasing.
        seeds: The plan's seeds.
        tolerance: The largest ``|slope|`` called ``stable``.
        records: Every measured size, as ``(width, seed, step, layer, group, module type, value)``.
        fits: One :class:`CoordFit` per group and step.
        verdicts: One :class:`CoordVerdict` per group, in the order the groups were first recorded.
        layer_fits: One :class:`CoordFit` per layer (not grouped) after the last update.
        world_size: The number of ranks the statistics were all-reduced over (1 without).

    Examples:
        >>> make = lambda w: torch.nn.Sequential(torch.nn.Linear(4, w), torch.nn.Tanh(), torch.nn.Linear(w, 2))
        >>> data = (torch.ones(2, 4), torch.zeros(2, 2))
        >>> check = coord_check(make, [8, 32], data, steps=1)
        >>> [f.step for f in check.fits if f.group == "1"], check.verdict("1").group
        ([0, 1], '1')
    """

    label: str
    rules: str
    optimizer: str
    lr: float
    statistic: str
    steps: int
    widths: tuple[int, ...]
    seeds: tuple[int, ...]
    tolerance: float
    # The JSON form: the settings first, then the records and fits, the verdicts last.
    records: tuple[tuple[int, int, int, str, str, str, float], ...] = field(metadata=json_rank(1))
    fits: tuple[CoordFit, ...] = field(metadata=json_rank(1))
    verdicts: tuple[CoordVerdict, ...] = field(metadata=json_rank(2))
    layer_fits: tuple[CoordFit, ...] = field(default=(), metadata=json_rank(1))
    world_size: int = 1

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(v.group for v in self.verdicts)

    def _find(self, items: Sequence[Any], group: str, step: int | None) -> Any:
        step = self.steps if step is None else step
        for item in items:
            if item.group == group and getattr(item, "step", step) == step:
                return item
        names = sorted({i.group for i in items})
        raise KeyError(describe_choice("layer group", group, names))

    def fit(self, group: str, step: int | None = None) -> CoordFit:
        """The fit of ``group`` at ``step`` (default: the last).

        Args:
            group: A layer group's name (one of :attr:`groups`).
            step: The step, ``0..steps``; ``None`` for the last (after the last update).

        Returns:
            The group's fit at that step.

        Raises:
            KeyError: ``group`` is not a recorded group, or has no fit at ``step``.
        """
        return self._find(self.fits, group, step)

    def slope(self, group: str, step: int | None = None) -> float:
        """The fitted exponent of ``group``'s size in width at ``step`` (default: the last).

        Args:
            group: A layer group's name (one of :attr:`groups`).
            step: The step, ``0..steps``; ``None`` for the last.

        Returns:
            The slope of the log-log fit.

        Raises:
            KeyError: ``group`` is not a recorded group, or has no fit at ``step``.
        """
        return self.fit(group, step).slope

    def verdict(self, group: str) -> CoordVerdict:
        for v in self.verdicts:
            if v.group == group:
                return v
        raise KeyError(describe_choice("layer group", group, self.groups))

    def max_abs_slope(self) -> float:
        """The largest ``|slope|`` over the groups after the last update (``inf`` if one has none)."""
        return max(abs(v.slope) if math.isfinite(v.slope) else math.inf for v in self.verdicts)

    def __repr__(self) -> str:
        unstable = [v for v in self.verdicts if v.kind != "stable"]
        worst = max(self.verdicts, key=lambda v: abs(v.slope) if math.isfinite(v.slope) else math.inf)
        return (
            f"<CoordCheck {literal(self.label)!r} ({literal(self.rules)}, {self.optimizer} lr={self.lr:g}, "
            f"widths {self.widths[0]}..{self.widths[-1]}, {self.steps} steps): {len(self.verdicts)} groups, "
            f"{len(unstable)} not stable; largest |slope| {abs(worst.slope):.3g} ({literal(worst.group)})>"
        )

    def __str__(self) -> str:
        from fanin.report.coord_check import render_coord_check_text

        return render_coord_check_text(self)

    # ------------------------------------------------------------------------------ JSON

    def to_dict(self) -> dict[str, Any]:
        return record_dict(self, head={"format": FORMAT})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CoordCheck:
        if data.get("format") != FORMAT:
            raise CoordCheckError(f"not a coordinate check record: format={data.get('format')!r}, expected {FORMAT!r}")

        def dec(x: Any) -> Any:
            return float(x) if x in ("nan", "inf", "-inf") else x

        def fit(d: Mapping[str, Any]) -> CoordFit:
            return CoordFit(
                d["group"],
                d["step"],
                tuple(d["widths"]),
                tuple(dec(v) for v in d["values"]),
                dec(d["slope"]),
                dec(d["intercept"]),
                dec(d["stderr"]),
            )

        return cls(
            label=data["label"],
            rules=data["rules"],
            optimizer=data["optimizer"],
            lr=data["lr"],
            statistic=data["statistic"],
            steps=data["steps"],
            widths=tuple(data["widths"]),
            seeds=tuple(data["seeds"]),
            tolerance=data["tolerance"],
            records=tuple((r[0], r[1], r[2], r[3], r[4], r[5], dec(r[6])) for r in data["records"]),
            fits=tuple(fit(f) for f in data["fits"]),
            verdicts=tuple(
                CoordVerdict(v["group"], v["kind"], dec(v["slope"]), v["text"], v["step"]) for v in data["verdicts"]
            ),
            layer_fits=tuple(fit(f) for f in data["layer_fits"]),
            world_size=data.get("world_size", 1),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the record as JSON (to a temporary name, then renamed into place).

        Args:
            path: The file to write; :meth:`load` reads it back.

        Returns:
            ``path``, as a ``Path``.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> CoordCheck:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


# ------------------------------------------------------------------------------------ grouping


def default_group(model: nn.Module) -> Callable[[str], str]:
    """Layer names -> groups: an index into a ``ModuleList`` becomes ``*`` (``h.3.mlp.c_fc`` ->
    ``h.*.mlp.c_fc``), so that the repeated blocks of a transformer form one group each; the
    children of an ``nn.Sequential`` stay apart (an MLP's layers are different layers)."""
    lists = {name for name, m in model.named_modules() if isinstance(m, nn.ModuleList)}

    def group(name: str) -> str:
        if name == OUTPUT:
            return OUTPUT
        parts = name.split(".")
        out = []
        for i, part in enumerate(parts):
            parent = ".".join(parts[:i])
            out.append("*" if part.isdigit() and parent in lists else part)
        return ".".join(out)

    return group


def _class_name(module: nn.Module) -> str:
    """The module's own class name, not the wrapper class FSDP2's ``fully_shard`` makes (``FSDPLinear``)."""
    for cls in type(module).__mro__:
        if not cls.__module__.startswith("torch.distributed."):
            return cls.__name__
    return type(module).__name__  # pragma: no cover - every module derives from nn.Module


class _Recorder:
    """Forward hooks summing |y| (l1) or y² (rms) and counting entries of each layer's output."""

    def __init__(self, model: nn.Module, statistic: str, is_layer, before_multiplier: set[str]) -> None:
        self.statistic = statistic
        self.sums: list[torch.Tensor] = []
        self.counts: list[int] = []
        self.keys: list[str] = []
        self.modules: list[str] = []
        self.calls: dict[str, int] = {}
        self.seen: list[torch.Tensor] = []
        self.handles = []
        for name, module in model.named_modules():
            if not name or not is_layer(name, module):
                continue
            hook = self._hook(name, _class_name(module))
            self.handles.append(module.register_forward_hook(hook, prepend=name in before_multiplier))

    def _hook(self, name: str, module_type: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            y = first_tensor(output)
            if y is not None:
                call = self.calls.get(name, 0)
                self.calls[name] = call + 1
                self.add(name if call == 0 else f"{name}#{call}", module_type, y)

        return hook

    def add(self, key: str, module_type: str, y: torch.Tensor) -> None:
        with torch.no_grad():
            y64 = y.detach().double()
            self.sums.append(y64.abs().sum() if self.statistic == "l1" else (y64 * y64).sum())
        self.counts.append(y.numel())
        self.keys.append(key)
        self.modules.append(module_type)
        self.seen.append(y)  # held until the next start(), so that no other tensor can take its id

    def recorded(self, y: torch.Tensor) -> bool:
        return any(y is t for t in self.seen)

    def start(self) -> None:
        self.sums, self.counts, self.keys, self.modules, self.calls, self.seen = [], [], [], [], {}, []

    def values(self, reduce: bool) -> list[float]:
        if not self.sums:
            return []
        sums = torch.stack([s.cpu() for s in self.sums])
        counts = torch.tensor(self.counts, dtype=torch.float64)
        if reduce:
            import torch.distributed as dist

            both = torch.cat([sums, counts])
            dist.all_reduce(both)
            sums, counts = both[: len(self.sums)], both[len(self.sums) :]
        mean = sums / counts
        return (mean if self.statistic == "l1" else mean.sqrt()).tolist()

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


# ------------------------------------------------------------------------------------ the check


def _batch(data: Any, step: int) -> tuple[Any, Any]:
    batch = data(step) if callable(data) else data[step] if isinstance(data, list) else data
    if not (isinstance(batch, tuple) and len(batch) == 2):
        raise CoordCheckError(
            "data is (inputs, targets), a list of them (one per step, steps+1 long), or a callable step -> "
            f"(inputs, targets); got {type(batch).__name__} at step {step}"
        )
    return batch


def _default_loss(output: Any, target: torch.Tensor) -> torch.Tensor:
    y = first_tensor(output)
    if y is None:
        raise CoordCheckError(
            "the model's output holds no floating-point tensor: give loss=(output, targets) -> scalar"
        )
    if not target.is_floating_point():
        return nn.functional.cross_entropy(y.reshape(-1, y.shape[-1]), target.reshape(-1))
    return nn.functional.mse_loss(y, target)


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    if isinstance(x, Mapping):
        return {k: _to(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to(v, device) for v in x)
    return x


def _is_dtensor(t: torch.Tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(t, DTensor)


def _build(
    make_model, width: int, rules: object, seed: int, device: torch.device, parallelize
) -> tuple[nn.Module, Plan]:
    with torch.device("meta"):
        model = make_model(width)
    if not isinstance(model, nn.Module):
        raise CoordCheckError(f"make_model({width}) returned {type(model).__name__}, not a torch.nn.Module")
    if parallelize is not None:
        model = parallelize(model) or model
    bound = bind(rules, model)
    p = make_plan(model, bound, seed=seed)
    if any(_is_dtensor(t) for t in model.parameters()):
        # Sharded: allocate each rank's shards in place, fill them by the plan, recompute the buffers.
        refills = []
        for m in model.modules():
            if any(b.is_meta for b in m.buffers(recurse=False)):
                hook = next((h for h in BUFFER_HOOKS if callable(getattr(m, h, None))), None)
                if hook is None:
                    raise CoordCheckError(
                        f"{_class_name(m)} has buffers on the meta device and neither "
                        f"{' nor '.join(h + '()' for h in BUFFER_HOOKS)} to fill them once sharded"
                    )
                refills.append(getattr(m, hook))
        model.to_empty(device=device)
        apply(model, p)
        with torch.no_grad():
            for refill in refills:
                refill()
    else:
        p = materialize(model, p, device=device)
    return model, p


def _optimizer(name: str, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups)
    if name == "adamw":
        return torch.optim.AdamW(groups, weight_decay=0.0)
    return torch.optim.Adam(groups)


def _fit(group: str, step: int, widths: list[int], values: list[float]) -> CoordFit:
    import numpy as np

    if len(values) < 2 or not all(math.isfinite(v) and v > 0 for v in values):
        return CoordFit(group, step, tuple(widths), tuple(values), math.nan, math.nan, math.nan)
    x, y = np.log(np.asarray(widths, dtype=float)), np.log(np.asarray(values, dtype=float))
    slope, intercept = np.polyfit(x, y, 1)
    stderr = math.nan
    if len(values) > 2:
        residual = y - (slope * x + intercept)
        stderr = float(math.sqrt(float(residual @ residual) / (len(x) - 2) / float(((x - x.mean()) ** 2).sum())))
    return CoordFit(group, step, tuple(widths), tuple(values), float(slope), float(intercept), stderr)


def _verdict(fit: CoordFit, tolerance: float) -> CoordVerdict:
    if not all(math.isfinite(v) for v in fit.values):
        bad = next(w for w, v in zip(fit.widths, fit.values, strict=True) if not math.isfinite(v))
        return CoordVerdict(fit.group, "non-finite", math.nan, f"non-finite at width {bad}", fit.step)
    if any(v <= 0 for v in fit.values):
        zero = next(w for w, v in zip(fit.widths, fit.values, strict=True) if v <= 0)
        return CoordVerdict(fit.group, "zero", math.nan, f"zero at width {zero}", fit.step)
    s = fit.slope
    if abs(s) <= tolerance:
        return CoordVerdict(fit.group, "stable", s, f"stable (width^{s:+.2f})", fit.step)
    kind = "grows" if s > 0 else "shrinks"
    return CoordVerdict(fit.group, kind, s, f"{kind} as width^{s:.2f}", fit.step)


def coord_check(
    make_model: Callable[[int], nn.Module],
    widths: Sequence[int],
    data: Any,
    *,
    steps: int = 3,
    optimizer: str = "adam",
    lr: float = 1e-2,
    rules: object = "torch",
    loss: Callable[[Any, Any], torch.Tensor] | None = None,
    seeds: Sequence[int] = (0,),
    statistic: str = "l1",
    layers: Callable[[str, nn.Module], bool] | None = None,
    groups: Callable[[str], str] | None = None,
    tolerance: float = 0.1,
    device: torch.device | str = "cpu",
    parallelize: Callable[[nn.Module], nn.Module | None] | None = None,
    reduce: bool | None = None,
    label: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CoordCheck:
    r"""Train ``make_model(width)`` for each width ``steps`` steps and fit each layer group's size in width.

    Args:
        make_model: ``width -> nn.Module``; called under ``torch.device("meta")``, the model is
            then materialized by the plan of ``rules``.
        widths: Two or more increasing, distinct positive int widths.
        data: ``(inputs, targets)`` (the same batch every step), a list of ``steps + 1`` of them, or
            a callable ``step -> (inputs, targets)``; inputs are a tensor, a tuple (positional) or a
            dict (keyword).
        steps: The number of optimizer updates (>= 1); sizes are recorded at steps ``0..steps``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: The learning rate (the base one under muP; positive, finite).
        rules: The plan's rules, anything :func:`fanin.plan` takes (default ``"torch"``: standard
            parametrization); a :func:`fanin.mup` plan also brings its learning rates
            (:func:`fanin.mup_param_groups`) and forward multipliers (:func:`fanin.mup_hooks`).
        loss: ``(output, targets) -> scalar tensor``; default cross-entropy over the last dimension
            for integer targets, mean squared error for float targets.
        seeds: The plan's seeds (non-negative ints): one model per width and seed, averaged.
        statistic: ``"l1"`` (:math:`\operatorname{mean}|y|`, mup's default) or ``"rms"``.
        layers: A predicate ``(name, module) -> bool`` choosing the recorded modules (default
            :func:`~fanin.diagnostics.probing.default_layer`).
        groups: Layer name -> group name (default :func:`default_group` of each model).
        tolerance: The largest ``|slope|`` called ``stable`` (positive, finite).
        device: Where the models are materialized and trained.
        parallelize: Applied to the meta model before it is materialized (e.g.
            ``lambda m: fully_shard(m) or m``); its result, if not ``None``, replaces the model.
        reduce: All-reduce the statistics over the default process group (default ``None``: when
            ``torch.distributed`` is initialized with more than one rank).
        label: The record's name (default: ``make_model.__name__``).
        progress: Called with one line per model built and trained.

    Returns:
        The record: every measured size, the fits per group and step, and one verdict per group.

    Raises:
        CoordCheckError: An argument is out of its range or of the wrong kind, ``make_model``
            returns no module, or ``reduce=True`` without an initialized process group.

    Examples:
        >>> make = lambda w: torch.nn.Sequential(torch.nn.Linear(4, w), torch.nn.ReLU(), torch.nn.Linear(w, 3))
        >>> g = torch.Generator().manual_seed(0)
        >>> data = (torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g))
        >>> check = coord_check(make, [16, 64], data, steps=1)
        >>> check.groups, check.rules, check.steps
        (('0', '1', '2'), 'torch', 1)
    """
    widths = list(widths)
    if len(widths) < 2 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
        raise CoordCheckError(f"coord_check needs two or more positive int widths, got widths={widths!r}")
    if sorted(set(widths)) != widths:
        raise CoordCheckError(f"widths must be increasing and distinct, got widths={widths!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise CoordCheckError(f"steps must be a positive int, got steps={steps!r}")
    if optimizer not in OPTIMIZERS:
        raise CoordCheckError(describe_choice("optimizer", optimizer, OPTIMIZERS))
    if statistic not in STATISTICS:
        raise CoordCheckError(describe_choice("statistic", statistic, STATISTICS))
    for what, v in (("lr", lr), ("tolerance", tolerance)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
            raise CoordCheckError(f"{what} must be a positive finite number, got {what}={v!r}")
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise CoordCheckError(f"seeds must be a non-empty list of non-negative ints, got seeds={seeds!r}")
    if isinstance(data, list) and len(data) < steps + 1:
        raise CoordCheckError(f"data as a list needs steps + 1 = {steps + 1} batches, got {len(data)}")
    for what, fn in (
        ("make_model", make_model),
        ("loss", loss),
        ("layers", layers),
        ("groups", groups),
        ("parallelize", parallelize),
        ("progress", progress),
    ):
        if fn is not None and not callable(fn):
            raise CoordCheckError(f"{what} must be callable, got {what}={fn!r}")
    device = torch.device(device)
    loss_fn = loss or _default_loss
    is_layer = layers or default_layer

    import torch.distributed as dist

    if reduce is None:
        reduce = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    elif not isinstance(reduce, bool):
        raise CoordCheckError(f"reduce must be None, True or False, got reduce={reduce!r}")
    elif reduce and not (dist.is_available() and dist.is_initialized()):
        raise CoordCheckError("reduce=True needs an initialized torch.distributed process group")
    world = dist.get_world_size() if reduce else 1
    records: list[tuple[int, int, int, str, str, str, float]] = []
    group_of: Callable[[str], str] | None = groups
    rules_name = None
    for width in widths:
        for seed in seeds:
            model, p = _build(make_model, width, rules, seed, device, parallelize)
            rules_name = rules_name or (p.rules.name or str(rules))
            try:
                table = mup_table(p)
            except MupError:
                table = None
            if table is not None:
                param_groups = mup_param_groups(model, p, lr=lr, optimizer=optimizer)
                hooks = mup_hooks(model, p)
                before = {x.module for x in table.multipliers if not x.inside_layer}
            else:
                param_groups, hooks, before = [{"params": list(model.parameters()), "lr": lr}], None, set()
            group_fn = group_of or default_group(model)
            opt = _optimizer(optimizer, param_groups)
            recorder = _Recorder(model, statistic, is_layer, before)
            try:
                for t in range(steps + 1):
                    inputs, target = _batch(data, t)
                    inputs, target = _to(inputs, device), _to(target, device)
                    recorder.start()
                    output = call_model(model, inputs)
                    y = first_tensor(output)
                    if y is not None and not recorder.recorded(y):
                        recorder.add(OUTPUT, _class_name(model), y)
                    measured = zip(recorder.keys, recorder.modules, recorder.values(reduce), strict=True)
                    for key, module_type, value in measured:
                        name, _, call = key.partition("#")
                        group = group_fn(name) + (f"#{call}" if call else "")
                        records.append((width, seed, t, key, group, module_type, value))
                    if t == steps:
                        break
                    objective = loss_fn(output, target)
                    opt.zero_grad(set_to_none=True)
                    objective.backward()
                    opt.step()
            finally:
                recorder.remove()
                if hooks is not None:
                    hooks.remove()
            if progress is not None:
                progress(f"width {width}, seed {seed}: {steps} steps, {len(recorder.keys)} layers")
            del model, opt

    fits, verdicts, layer_fits = _analyse(records, widths, steps, tolerance)
    return CoordCheck(
        label=label or f"{getattr(make_model, '__name__', 'model')}",
        rules=str(rules_name),
        optimizer=optimizer,
        lr=float(lr),
        statistic=statistic,
        steps=steps,
        widths=tuple(widths),
        seeds=tuple(seeds),
        tolerance=float(tolerance),
        records=tuple(records),
        fits=tuple(fits),
        verdicts=tuple(verdicts),
        layer_fits=tuple(layer_fits),
        world_size=world,
    )


def _analyse(records, widths: list[int], steps: int, tolerance: float):
    order: list[str] = []
    layer_order: list[str] = []
    by_group: dict[tuple[str, int, int], list[float]] = {}
    by_layer: dict[tuple[str, int], list[float]] = {}
    for width, _seed, t, layer, group, _module, value in records:
        if group not in order:
            order.append(group)
        if layer not in layer_order:
            layer_order.append(layer)
        by_group.setdefault((group, t, width), []).append(value)
        if t == steps:
            by_layer.setdefault((layer, width), []).append(value)

    def mean(xs: list[float]) -> float:
        return sum(xs) / len(xs) if xs else math.nan

    fits = []
    verdicts = []
    for group in order:
        mine = []
        for t in range(steps + 1):
            present = [w for w in widths if (group, t, w) in by_group]
            mine.append(_fit(group, t, present, [mean(by_group[(group, t, w)]) for w in present]))
        fits += mine
        verdicts.append(_verdict(mine[-1], tolerance))
    layer_fits = []
    for layer in layer_order:
        present = [w for w in widths if (layer, w) in by_layer]
        layer_fits.append(_fit(layer, steps, present, [mean(by_layer[(layer, w)]) for w in present]))
    return fits, verdicts, layer_fits
