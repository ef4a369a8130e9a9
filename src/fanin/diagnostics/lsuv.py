r"""LSUV: layer-sequential unit-variance initialization (Mishkin & Matas 2015, "All you need is a good init").

1. Orthogonal start: the weight of every layer to calibrate gets a (semi-)orthogonal matrix
   (:func:`fanin.init.orthogonal_`, Saxe et al. 2014).
2. Then, layer by layer **in execution order**, a batch is run through the model and the layer's
   weight is multiplied by :math:`t / \sqrt{\operatorname{Var}(y)}` (``t = target_std``, ``y`` the
   layer's output over the whole batch) until

   .. math:: |\operatorname{Var}(y) - t^2| < \text{tol} \quad\text{or}\quad \text{max\_iter rescalings}.

Execution order is the point. The ``lsuv`` package and anyinit's LSUV mode walk
``model.modules()``, i.e. the order in which the layers were *registered* in ``__init__``. When
that differs from the order in which ``forward`` *uses* them, a layer is calibrated while the
layers in front of it are still uncalibrated; calibrating those later changes its input scale and
undoes its calibration. :func:`lsuv_` finds the execution order with forward hooks on one pass,
then calibrates each layer only after every layer that runs before it, so a calibrated layer is
never disturbed again (residual blocks included: the skip connection carries calibrated values).

Details that follow from this:

- A layer that runs several times in one forward (weight sharing) is calibrated once, on the
  output of its first call; its later calls are counted in :attr:`LSUVLayer.calls`.
- A selected layer that never runs in the forward is not calibrated; it is listed in
  :attr:`LSUVReport.unused`.
- Each pass stops right after the layer being calibrated has run (an exception raised by its
  hook and caught here), so calibrating layer ``k`` costs the first ``k`` layers of the forward.
- Biases are left as they are; the variance includes their contribution, which is why the
  rescaling is iterated.
- Everything runs under ``torch.no_grad()``; the model is never wrapped (hooks only, removed
  afterwards); the mode of every submodule (``train=False``: eval, so dropout is off and batch
  norm uses its running statistics), the buffers (batch-norm running statistics) and the global
  RNG state (CPU and the CUDA devices used) are restored afterwards. Every pass starts from the
  same RNG state, so dropout in ``train=True`` draws the same masks in every pass.

**Two-step use from rules.** LSUV needs data and the whole model, so a rule cannot run it. The
registered scheme ``"lsuv"`` (:func:`fanin.composite.lsuv_scheme`) draws the orthogonal start
(from the rule's generator or stream, so it is reproducible like any other scheme) and marks the
tensor; then ``fanin.lsuv_(model, batch, layers="marked")`` calibrates exactly the layers whose
weight carries the mark (:func:`fanin.composite.is_marked`), without re-drawing their start::

    plan = {"*.weight": "lsuv"}            # step 1: any rule system, or by hand:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            fanin.get("lsuv")(m.weight, generator=fanin.Stream(0, "w"))
    report = fanin.lsuv_(model, batch, layers="marked")   # step 2: calibration with data

The mark is an attribute of the tensor object the scheme filled: give the scheme the
``Parameter`` itself, not ``param.data`` (a new tensor object each time).

>>> import torch
>>> from torch import nn
>>> torch.manual_seed(0) and None
>>> model = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
>>> report = lsuv_(model, torch.randn(256, 32), generator=torch.Generator().manual_seed(0))
>>> [layer.name for layer in report.layers], report.converged
(['0', '2', '4'], True)
>>> all(abs(layer.final_std ** 2 - 1.0) < 0.01 for layer in report.layers)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from fanin.diagnostics.serialize import json_rank, nonfinite_as_none, record_dict
from fanin.errors import FaninError, describe_choice
from fanin.frameworks import torch as torch_schemes

# The "lsuv" scheme (step 1) and its mark are fanin's own schemes (fanin.frameworks.fanin), left of
# diagnostics; re-exported here beside lsuv_ (step 2), which reads the mark.
from fanin.frameworks.fanin import is_marked, lsuv_scheme
from fanin.rng import Stream, canonical_name, check_generator

if TYPE_CHECKING:  # rich is imported by the renderer only
    from rich.console import Group

__all__ = [
    "DEFAULT_LAYER_TYPES",
    "LSUVError",
    "LSUVLayer",
    "LSUVReport",
    "is_marked",
    "lsuv_",
    "lsuv_scheme",
]

#: What ``layers=None`` calibrates: Linear layers and every convolution (transposed ones included).
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)


class LSUVError(FaninError, ValueError):
    """LSUV cannot run on this model or batch (no layer to calibrate, a layer with no tensor output)."""


class _Stop(Exception):
    """Raised by the hook of the layer being calibrated: the rest of the forward is not needed."""


# --------------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class LSUVLayer:
    """What LSUV did to one layer.

    ``order`` is the layer's position in execution order (0 = runs first); ``calls`` how many
    times it ran in one forward (calibrated on the first); ``initial_std`` the std of its output
    before any rescaling (after the orthogonal start, when there was one) and ``final_std`` after
    the last; ``scale`` the product of the factors applied to the weight; ``iterations`` the
    number of rescalings; ``converged`` whether ``|final_std**2 - target_std**2| < tol``.
    ``note`` says why a layer could not be calibrated (output variance zero or not finite).
    """

    name: str
    order: int
    kind: str
    calls: int
    orthogonal: bool
    initial_std: float
    final_std: float
    scale: float
    iterations: int
    converged: bool
    note: str | None = None

    def to_dict(self) -> dict[str, object]:
        return record_dict(self, floats=nonfinite_as_none)


@dataclass(frozen=True)
class LSUVReport:
    """The layers LSUV calibrated, in execution order, and the settings it used.

    ``unused`` names the selected layers that never ran in the forward (not calibrated).
    Render it with :meth:`to_table` (rich), :meth:`to_markdown` or :meth:`to_dict` (JSON-ready);
    ``rich.print(report)`` shows the table.
    """

    # the per-layer list (and the unused names) go after the settings in the JSON form
    layers: tuple[LSUVLayer, ...] = field(metadata=json_rank(1))
    target_std: float
    tol: float
    max_iter: int
    unused: tuple[str, ...] = field(default=(), metadata=json_rank(1))

    @property
    def converged(self) -> bool:
        """Whether every calibrated layer converged."""
        return all(layer.converged for layer in self.layers)

    def __getitem__(self, name: str) -> LSUVLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no calibrated layer is named {name!r}; calibrated: {[x.name for x in self.layers]}")

    def __repr__(self) -> str:
        n, bad = len(self.layers), sum(not layer.converged for layer in self.layers)
        state = "all converged" if not bad else f"{bad} not converged"
        unused = f", {len(self.unused)} unused" if self.unused else ""
        return f"<LSUVReport: {n} layer{'s' * (n != 1)} calibrated, {state}, target std {self.target_std:g}{unused}>"

    def summary(self) -> str:
        """One line: how many layers, converged or not, and the criterion (:func:`fanin.report.lsuv.lsuv_summary`)."""
        from fanin.report.lsuv import lsuv_summary

        return lsuv_summary(self)

    def to_dict(self) -> dict[str, object]:
        return record_dict(
            self, floats=nonfinite_as_none, head={"method": "lsuv"}, computed={"converged": self.converged}
        )

    def to_markdown(self) -> str:
        """A Markdown table, one row a layer in execution order, then the summary line
        (:func:`fanin.report.lsuv.lsuv_markdown`)."""
        from fanin.report.lsuv import lsuv_markdown

        return lsuv_markdown(self)

    def to_table(self) -> Group:
        """A rich renderable: the table and the summary line (:func:`fanin.report.lsuv.lsuv_table`)."""
        from fanin.report.lsuv import lsuv_table

        return lsuv_table(self)

    def __rich__(self) -> Group:
        return self.to_table()


# --------------------------------------------------------------------------------- lsuv_


def lsuv_(
    model: nn.Module,
    batch: Any,
    *,
    tol: float = 0.01,
    max_iter: int = 10,
    target_std: float = 1.0,
    orthogonal_init: bool = True,
    generator: torch.Generator | Stream | None = None,
    layers: str | Iterable[str | nn.Module] | Callable[[str, nn.Module], bool] | None = None,
    train: bool = False,
) -> LSUVReport:
    r"""Calibrate ``model`` in place by LSUV, layer by layer in execution order; return the report.

    For each layer, in the order ``forward`` runs them, the weight is multiplied by
    :math:`t/\sqrt{\operatorname{Var}(y)}` until :math:`|\operatorname{Var}(y) - t^2| <`
    ``tol`` or ``max_iter`` rescalings, :math:`\operatorname{Var}(y)` being ``y.var()`` (torch's
    unbiased variance over every element of the layer's output for ``batch``, in float64).
    Modes, buffers and the RNG state are restored afterwards; biases are left as they are.

    Args:
        model: The module whose layers are calibrated, in place.
        batch: A tensor (``model(batch)``), a tuple/list (``model(*batch)``) or a dict
            (``model(**batch)``), on the model's device.
        tol: The tolerance on the variance, :math:`|\operatorname{Var}(y) - t^2| <` ``tol``
            (finite, > 0 and below ``target_std ** 2``).
        max_iter: The most rescalings per layer (>= 1).
        target_std: The std :math:`t` every layer's output is calibrated to (finite, > 0).
        orthogonal_init: First give each selected weight an orthogonal start
            (:func:`fanin.init.orthogonal_`), except weights the ``"lsuv"`` scheme already filled.
        generator: The source of the orthogonal starts, drawn in registration order: ``None``
            (torch's global generator, as ``torch.nn.init`` does), a ``torch.Generator``, or a
            :class:`fanin.Stream` whose seed keys one stream per weight,
            ``Stream(seed, canonical name)`` (as :func:`fanin.streams_for` does).
        layers: ``None`` (every ``nn.Linear``, convolution and transposed convolution),
            ``"marked"`` (the layers whose weight the ``"lsuv"`` scheme filled), an iterable of
            module names or modules, or a predicate ``(name, module) -> bool``. Each must have a
            floating-point ``weight``.
        train: Run the passes in train mode (dropout on, batch norm on batch statistics) rather
            than eval mode.

    Returns:
        One record per calibrated layer, in execution order, and the selected layers that never
        ran (:attr:`LSUVReport.unused`).

    Raises:
        LSUVError: No selected layer runs in the forward, the selection is empty or names no
            submodule, a selected layer has no floating-point weight, or a layer's output is not a
            tensor of 2 or more elements.
        ValueError: ``tol``, ``max_iter`` or ``target_std`` is out of its range, or ``layers`` is a
            string other than ``"marked"``.
        TypeError: ``model`` is not a module, ``orthogonal_init`` or ``train`` is not a bool, or
            ``generator``, ``layers`` or ``batch`` is of none of the accepted kinds.

    Examples:
        >>> model = nn.Sequential(nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 4))
        >>> g = torch.Generator().manual_seed(0)
        >>> report = lsuv_(model, torch.randn(128, 16, generator=g), generator=g)
        >>> [layer.name for layer in report.layers], report.converged
        (['0', '2'], True)
    """
    _check_args(model, tol, max_iter, target_std, orthogonal_init, generator, train)
    selected = _select(model, layers)
    call = _caller(batch)
    devices = _cuda_devices(model, batch)
    with _preserved(model, train, devices) as reset_rng, torch.no_grad():
        if orthogonal_init:
            for name, module in selected:
                weight = cast(torch.Tensor, module.weight)  # _select checked it is a floating tensor
                if not is_marked(weight):
                    _orthogonal_start(weight, f"{name}.weight", generator)
        order, calls = _execution_order(model, selected, call, reset_rng)
        ran = {id(m) for _, m in order}
        unused = tuple(name for name, m in selected if id(m) not in ran)
        if not order:
            raise LSUVError(
                f"none of the {len(selected)} selected layers ran in the forward of {type(model).__name__} "
                f"(selected: {', '.join(name for name, _ in selected)}); check the batch and the layers argument"
            )
        done = [
            _calibrate(
                model, name, module, i, calls[id(module)], call, reset_rng, tol, max_iter, target_std, orthogonal_init
            )
            for i, (name, module) in enumerate(order)
        ]
    return LSUVReport(tuple(done), float(target_std), float(tol), int(max_iter), unused)


def _check_args(model, tol, max_iter, target_std, orthogonal_init, generator, train) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"lsuv_ calibrates a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or not (math.isfinite(tol) and tol > 0):
        raise ValueError(f"tol (on the variance) must be a finite number > 0, got tol={tol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ValueError(f"max_iter must be an int >= 1, got max_iter={max_iter!r}")
    if (
        isinstance(target_std, bool)
        or not isinstance(target_std, (int, float))
        or not (math.isfinite(target_std) and target_std > 0)
    ):
        raise ValueError(f"target_std must be a finite number > 0, got target_std={target_std!r}")
    if tol >= target_std**2:
        raise ValueError(
            f"tol must be below target_std**2 (a variance of 0 would pass otherwise), got tol={tol!r} "
            f"with target_std={target_std!r}"
        )
    for name, value in (("orthogonal_init", orthogonal_init), ("train", train)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {name}={value!r}")
    check_generator(generator)


def _select(model: nn.Module, layers) -> list[tuple[str, nn.Module]]:
    named = [(name, m) for name, m in model.named_modules() if name]
    if layers is None:
        chosen = [(n, m) for n, m in named if isinstance(m, DEFAULT_LAYER_TYPES)]
        if not chosen:
            raise LSUVError(
                f"{type(model).__name__} has no layer LSUV calibrates by default (nn.Linear, nn.Conv1d/2d/3d, "
                "nn.ConvTranspose1d/2d/3d); pass layers=[module names] for other layers with a weight"
            )
    elif isinstance(layers, str):
        if layers != "marked":
            raise ValueError(
                f"layers must be None, 'marked', an iterable of module names or modules, or a predicate "
                f"(name, module) -> bool; got layers={layers!r}"
            )
        chosen = [
            (n, m) for n, m in named if isinstance(getattr(m, "weight", None), torch.Tensor) and is_marked(m.weight)
        ]
        if not chosen:
            raise LSUVError(
                f"layers='marked' but no weight of {type(model).__name__} carries the mark of the 'lsuv' scheme; "
                "initialize them with fanin.get('lsuv') first, passing the Parameter itself (not param.data)"
            )
    elif callable(layers):
        chosen = [(n, m) for n, m in named if layers(n, m)]
        if not chosen:
            raise LSUVError(f"the layers predicate selected none of the modules of {type(model).__name__}")
    elif isinstance(layers, Iterable):
        by_name = dict(named)
        by_id = {id(m): n for n, m in reversed(named)}  # a module registered twice: its first name
        chosen = []
        for item in layers:
            if isinstance(item, str):
                if item not in by_name:
                    raise LSUVError(describe_choice("layer", item, by_name))
                chosen.append((item, by_name[item]))
            elif isinstance(item, nn.Module) and id(item) in by_id:
                chosen.append((by_id[id(item)], item))
            else:
                raise LSUVError(f"layers must name submodules of the model (or be them), got {item!r}")
        if not chosen:
            raise LSUVError("layers is empty: nothing to calibrate")
    else:
        raise TypeError(
            "layers must be None, 'marked', an iterable of module names or modules, or a predicate "
            f"(name, module) -> bool; got layers={layers!r} ({type(layers).__name__})"
        )
    unique, seen = [], set()
    for name, m in chosen:
        if id(m) in seen:
            continue
        seen.add(id(m))
        weight = getattr(m, "weight", None)
        if not isinstance(weight, torch.Tensor) or not weight.is_floating_point() or weight.dim() < 1:
            raise LSUVError(
                f"LSUV rescales a layer's weight, and layer {name!r} ({type(m).__name__}) has no floating-point "
                f"weight (weight={type(weight).__name__})"
            )
        unique.append((name, m))
    return unique


def _caller(batch: Any) -> Callable[[nn.Module], Any]:
    if isinstance(batch, torch.Tensor):
        return lambda model: model(batch)
    if isinstance(batch, (tuple, list)):
        return lambda model: model(*batch)
    if isinstance(batch, Mapping):
        return lambda model: model(**batch)
    raise TypeError(
        "batch must be a tensor (model(batch)), a tuple or list (model(*batch)) or a dict (model(**batch)), "
        f"got batch={type(batch).__name__}"
    )


def _cuda_devices(model: nn.Module, batch: Any) -> list[int]:
    tensors = [*model.parameters(), *model.buffers()]
    if isinstance(batch, torch.Tensor):
        tensors.append(batch)
    elif isinstance(batch, (tuple, list)):
        tensors += [t for t in batch if isinstance(t, torch.Tensor)]
    elif isinstance(batch, Mapping):
        tensors += [t for t in batch.values() if isinstance(t, torch.Tensor)]
    return sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})


@contextmanager
def _preserved(model: nn.Module, train: bool, devices: list[int]) -> Iterator[Callable[[], None]]:
    """Set the mode; on exit restore every submodule's mode, every buffer and the RNG state.

    Yields a function that puts the RNG back to its state on entry (called before each pass)."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    cpu_state = torch.get_rng_state()
    cuda_states = [torch.cuda.get_rng_state(d) for d in devices]

    def reset_rng() -> None:
        torch.set_rng_state(cpu_state)
        for d, state in zip(devices, cuda_states, strict=True):
            torch.cuda.set_rng_state(state, d)

    model.train(train)
    try:
        yield reset_rng
    finally:
        reset_rng()
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)


def _orthogonal_start(weight: torch.Tensor, name: str, generator) -> None:
    if weight.dim() < 2 or weight.numel() == 0:
        return  # orthogonality needs a matrix; LSUV still rescales such a weight
    if isinstance(generator, Stream):
        generator = Stream(generator.seed, canonical_name(name))
    torch_schemes.orthogonal_(weight, 1.0, generator=generator)


def _execution_order(model, selected, call, reset_rng) -> tuple[list[tuple[str, nn.Module]], dict[int, int]]:
    names = {id(m): n for n, m in selected}
    order: list[tuple[str, nn.Module]] = []
    calls: dict[int, int] = {}

    def hook(module, args, output):
        key = id(module)
        if key not in calls:
            order.append((names[key], module))
            calls[key] = 0
        calls[key] += 1

    handles = [m.register_forward_hook(hook) for _, m in selected]
    try:
        reset_rng()
        call(model)
    finally:
        for h in handles:
            h.remove()
    return order, calls


def _output_variance(model, module, name, call, reset_rng) -> float:
    captured: list[torch.Tensor] = []

    def hook(mod, args, output):
        if not isinstance(output, torch.Tensor):
            raise LSUVError(
                f"LSUV measures the variance of a layer's output tensor, and layer {name!r} "
                f"({type(mod).__name__}) returned {type(output).__name__}"
            )
        captured.append(output)
        raise _Stop

    handle = module.register_forward_hook(hook)
    try:
        reset_rng()
        call(model)
    except _Stop:
        pass
    finally:
        handle.remove()
    if not captured:
        raise LSUVError(
            f"layer {name!r} ran in the first pass but not in a later one: the forward is not deterministic"
        )
    out = captured[0]
    if out.numel() < 2:
        raise LSUVError(f"layer {name!r} output has {out.numel()} element(s); its variance needs 2 or more")
    return out.detach().double().var().item()


def _calibrate(model, name, module, order, calls, call, reset_rng, tol, max_iter, target, orthogonal) -> LSUVLayer:
    weight = module.weight
    marked = is_marked(weight)
    target_var = float(target) ** 2
    var = _output_variance(model, module, name, call, reset_rng)
    initial = math.sqrt(var) if var >= 0 else float("nan")
    scale, iterations, note = 1.0, 0, None
    while not abs(var - target_var) < tol:
        if not (math.isfinite(var) and var > 0):
            note = "output variance is 0" if var == 0 else f"output variance is {var!r}"
            break
        if iterations == max_iter:
            break
        factor = float(target) / math.sqrt(var)
        weight.mul_(factor)
        scale *= factor
        iterations += 1
        var = _output_variance(model, module, name, call, reset_rng)
    converged = abs(var - target_var) < tol
    return LSUVLayer(
        name=name,
        order=order,
        kind=type(module).__name__,
        calls=calls,
        orthogonal=(orthogonal and weight.dim() >= 2) or marked,
        initial_std=initial,
        final_std=math.sqrt(var) if var >= 0 else float("nan"),
        scale=scale,
        iterations=iterations,
        converged=converged,
        note=note,
    )
