r"""Probe a model: one forward (and optionally one backward) pass with hooks, statistics of every
layer in execution order, the residual stream, and verdicts.

:func:`probe` never wraps or changes the model: it registers forward hooks on the model's own
modules and removes them in a ``finally``; gradients come from :func:`torch.autograd.grad`, so no
``.grad`` is written; buffers that a train-mode pass updates (BatchNorm's running statistics) are
copied back; every module's ``training`` flag and the global RNG state (CPU, and the model's CUDA
device) are restored.

**Layers** are the leaf modules that own parameters or are activations (the classes of
``torch.nn.modules.activation``), recorded in the order their forward hooks fire, one record per
call (a module called twice gives two records). Functional activations (``F.relu`` inside a
``forward``) are not modules and are not seen. ``layers=`` takes a predicate
``(name, module) -> bool`` instead.

**Statistics** of a layer's output :math:`y` are computed in float64 (see
:class:`fanin.diagnostics.records.LayerStats`): mean, std, :math:`E[y^2]`, the fraction of zeros and of
dead units (0 for the whole batch), the fraction of saturated units for tanh/sigmoid/hardtanh.

**Backward** (``backward=True``): the gradient of :math:`L = \sum_i g_i y_i` with a fixed random
cotangent :math:`g \sim \mathcal{N}(0, 1)` (drawn from a private generator seeded with ``seed``)
on the model's output, so that the gradients measure how the backward pass propagates a unit
signal, independently of the output's scale; ``loss=`` takes a callable ``output -> scalar``
instead. Recorded: the std of :math:`\partial L/\partial y` for every layer, and for every
parameter its gradient's std and the ratio to the parameter's std.

**Residual stream**: a block is a non-leaf module (not the model itself) whose output has the
shape of its input and is not the output of its last-called child, i.e. it computes something of
its own after its children, typically ``x + f(x)``; ``residual="*.block"`` (a glob or a list of
globs on qualified names) names the blocks instead, ``residual=False`` turns tracking off. Each
block's call records the std of the stream entering and leaving it; the exponent :math:`x` of
:math:`\sigma_k \propto k^x` (block :math:`k = 1..K`) is fitted by least squares on logs.

>>> import torch
>>> from torch import nn
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64))
>>> report = probe(model, torch.randn(32, 64), backward=True)
>>> [(r.name, r.module) for r in report.layers]
[('0', 'Linear'), ('1', 'ReLU'), ('2', 'Linear')]
>>> 0.4 < report.layers[1].zeros < 0.6, report.layers[0].grad_std is not None
(True, True)
>>> [v.kind for v in report.verdicts]
['stable']
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fanin.diagnostics.records import BlockStats, LayerStats, ParamStats, ProbeReport
from fanin.diagnostics.verdicts import SATURATION_LEVEL, judge_signal, power_exponent
from fanin.errors import describe_choice

__all__ = ["MODES", "ProbeError", "call_model", "default_layer", "first_tensor", "probe"]

MODES = ("eval", "train")

_TANH = (nn.Tanh,)
_SIGMOID = (nn.Sigmoid,)


class ProbeError(ValueError):
    """Arguments :func:`probe` cannot use."""


def default_layer(name: str, module: nn.Module) -> bool:
    """The default choice of recorded modules: leaves that own parameters, or activations.

    >>> default_layer("fc", nn.Linear(2, 2)), default_layer("act", nn.GELU()), default_layer("d", nn.Dropout())
    (True, True, False)
    """
    if next(module.children(), None) is not None:
        return False
    if next(module.parameters(recurse=False), None) is not None:
        return True
    return type(module).__module__ == "torch.nn.modules.activation"


def first_tensor(value: Any) -> torch.Tensor | None:
    """The first floating-point tensor in a module's output (tensor, sequence or mapping)."""
    if isinstance(value, torch.Tensor):
        return value if value.is_floating_point() else None
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = first_tensor(item)
            if found is not None:
                return found
    return None


def _saturated(module: nn.Module, y: torch.Tensor) -> torch.Tensor | None:
    if isinstance(module, _TANH):
        return y.abs() > SATURATION_LEVEL
    if isinstance(module, _SIGMOID):
        # sigmoid(x) = (1 + tanh(x/2)) / 2: the same pre-activations as tanh's saturation.
        return (2 * y - 1).abs() > SATURATION_LEVEL
    if isinstance(module, nn.ReLU6):
        return y >= 6
    if isinstance(module, nn.Hardtanh):
        return (y <= module.min_val) | (y >= module.max_val)
    return None


def _output_stats(module: nn.Module, y: torch.Tensor) -> dict[str, Any]:
    with torch.no_grad():
        y = y.detach()
        y64 = y.double()
        n = y.numel()
        nan = torch.tensor(math.nan, dtype=torch.float64, device=y.device)
        values = [
            y64.mean() if n else nan,
            y64.std() if n >= 2 else nan,
            (y64 * y64).mean() if n else nan,
            y.std().double() if n >= 2 else nan,
            (y == 0).double().mean() if n else nan,
            # A unit is an entry of y[0]; dead when it is 0 for every sample (dim 0) of the batch.
            ((y == 0).all(dim=0).double().mean() if y.dim() >= 2 else (y == 0).all().double()) if n else nan,
            torch.isfinite(y).all().double(),
        ]
        saturated = _saturated(module, y)
        values.append(saturated.double().mean() if saturated is not None and n else nan)
        mean, std, second, torch_std, zeros, dead, finite, sat = torch.stack(values).tolist()
    return {
        "shape": tuple(y.shape),
        "dtype": str(y.dtype),
        "mean": mean,
        "std": std,
        "second_moment": second,
        "torch_std": torch_std,
        "zeros": zeros,
        "dead": dead,
        "saturated": sat if saturated is not None else None,
        "finite": bool(finite),
    }


def _std64(t: torch.Tensor) -> float:
    with torch.no_grad():
        return t.detach().double().std().item() if t.numel() >= 2 else math.nan


@dataclass
class _Frame:
    module: nn.Module
    name: str
    last_child_output: Any = None


@dataclass
class _State:
    names: dict[nn.Module, str]
    is_layer: Callable[[str, nn.Module], bool]
    named_blocks: Callable[[str], bool] | None
    auto_blocks: bool
    root: nn.Module
    on_layer: Callable[[LayerStats], None] | None
    stack: list[_Frame] = field(default_factory=list)
    calls: dict[nn.Module, int] = field(default_factory=dict)
    layers: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0


def _globs(residual: object) -> Callable[[str], bool] | None:
    if residual is None or residual is True or residual is False:
        return None
    if isinstance(residual, str):
        patterns = [residual]
    elif isinstance(residual, (list, tuple, set, frozenset)):
        patterns = list(residual)
    else:
        patterns = []
    if not patterns or not all(isinstance(p, str) and p for p in patterns):
        raise ProbeError(
            "residual must be None (detect blocks), False (no tracking), a glob such as '*.block' or a list "
            f"of globs, got residual={residual!r}"
        )
    return lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _pre_hook(state: _State):
    def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        state.stack.append(_Frame(module, state.names[module]))

    return hook


def _post_hook(state: _State, backward: bool):
    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        frame = state.stack.pop() if state.stack and state.stack[-1].module is module else None
        name = state.names[module]
        call = state.calls.get(module, 0)
        state.calls[module] = call + 1
        y = first_tensor(output)
        if state.stack:
            state.stack[-1].last_child_output = y
        if y is None:
            return
        if state.is_layer(name, module):
            params = sum(p.numel() for p in module.parameters(recurse=False))
            if params:
                state.depth += 1
            record = {
                "index": len(state.layers),
                "name": name,
                "module": type(module).__name__,
                "call": call,
                "depth": state.depth,
                "parameters": params,
                **_output_stats(module, y),
            }
            state.layers.append(record)
            if backward:
                state.outputs.append(y)
            if state.on_layer is not None:
                state.on_layer(LayerStats(**record))
        if module is state.root:
            return
        x = first_tensor(args)
        if state.named_blocks is not None:
            is_block = state.named_blocks(name)
        else:
            is_block = (
                state.auto_blocks
                and frame is not None
                and frame.last_child_output is not None
                and x is not None
                and x.shape == y.shape
                and y is not frame.last_child_output
            )
        if is_block and x is not None:
            state.blocks.append(
                {
                    "k": len(state.blocks) + 1,
                    "name": name,
                    "call": call,
                    "index": len(state.layers),
                    "input_std": _std64(x),
                    "output_std": _std64(y),
                    "detected": state.named_blocks is None,
                }
            )

    return hook


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model(inputs)``, ``model(*inputs)`` or ``model(**inputs)`` for a tensor, a tuple/list or a dict."""
    if isinstance(inputs, torch.Tensor):
        return model(inputs)
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (tuple, list)):
        return model(*inputs)
    raise ProbeError(
        "inputs must be a tensor, a tuple/list of positional inputs, a dict of keyword inputs, or a callable "
        f"returning one of these, got inputs={type(inputs).__name__}"
    )


def _to_device(inputs: Any, device: torch.device | None) -> Any:
    if device is None:
        return inputs
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device)
    if isinstance(inputs, Mapping):
        return {k: _to_device(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_to_device(v, device) for v in inputs)
    return inputs


def _tensors(inputs: Any) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, Mapping):
        inputs = list(inputs.values())
    if isinstance(inputs, (tuple, list)):
        return [t for item in inputs for t in _tensors(item)]
    return []


def _model_device(model: nn.Module) -> torch.device | None:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return None


def probe(
    model: nn.Module,
    inputs: Any,
    *,
    backward: bool = False,
    mode: str | None = None,
    loss: Callable[[Any], torch.Tensor] | None = None,
    residual: bool | str | Iterable[str] | None = None,
    layers: Callable[[str, nn.Module], bool] | None = None,
    seed: int = 0,
    label: str | None = None,
    on_layer: Callable[[LayerStats], None] | None = None,
) -> ProbeReport:
    """Run ``model`` once on ``inputs`` with hooks and return a :class:`~fanin.diagnostics.records.ProbeReport`.

    The model is left as it was: hooks removed, modes, buffers and the RNG state restored (see the
    module docstring).

    Args:
        model: The module to run.
        inputs: A tensor, a tuple/list (positional arguments), a dict (keyword arguments), or a
            callable of no arguments returning one of these (called under the saved RNG state, so
            its draws do not leak). Tensors are moved to the model's device.
        backward: Also run the backward pass: the gradient of a fixed random cotangent on the
            output (or of ``loss``) for every layer and parameter.
        mode: ``None`` keeps each module's mode; ``"eval"`` or ``"train"`` sets it for the pass.
        loss: A callable ``output -> scalar tensor`` whose gradient replaces the random cotangent's
            (only with ``backward=True``).
        residual: ``None`` (or ``True``) detects residual blocks, a glob or a list of globs on
            qualified names names them, ``False`` turns tracking off.
        layers: A predicate ``(name, module) -> bool`` choosing the recorded modules (default
            :func:`default_layer`).
        seed: The seed of the cotangent's private generator.
        label: The run's name in the report (default: the model's class name).
        on_layer: Called with each layer's record as soon as it is measured (progress bars).

    Returns:
        The statistics of every recorded layer call in execution order, of every parameter and
        residual block, and the verdicts.

    Raises:
        ProbeError: An argument is not usable (not a module, unknown mode, ``loss`` without
            ``backward``, a non-int ``seed``, ...), or the backward pass has nothing to run from.

    Examples:
        >>> model = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
        >>> report = probe(model, torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        >>> [(r.name, r.module) for r in report.layers], report.backward
        ([('0', 'Linear'), ('1', 'Tanh')], False)
    """
    if not isinstance(model, nn.Module):
        raise ProbeError(f"probe takes a torch.nn.Module, got model={type(model).__name__}")
    if mode is not None and mode not in MODES:
        raise ProbeError(describe_choice("mode", mode, MODES) + " Or mode=None to keep the model's own.")
    if not isinstance(backward, bool):
        raise ProbeError(f"backward must be True or False, got backward={backward!r}")
    if loss is not None and not backward:
        raise ProbeError("loss is used by the backward pass only: pass backward=True with loss=...")
    if loss is not None and not callable(loss):
        raise ProbeError(f"loss must be a callable output -> scalar tensor, got loss={loss!r}")
    if layers is not None and not callable(layers):
        raise ProbeError(f"layers must be a predicate (name, module) -> bool, got layers={layers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ProbeError(f"seed must be an int, got seed={seed!r}")
    named_blocks = _globs(residual)

    device = _model_device(model)
    cuda = [device.index or 0] if device is not None and device.type == "cuda" else []
    modules = dict(model.named_modules(remove_duplicate=False))
    names: dict[nn.Module, str] = {}
    for name, module in modules.items():
        names.setdefault(module, name)
    training = {module: module.training for module in names}
    state = _State(names, layers or default_layer, named_blocks, residual is not False, model, on_layer)
    handles = []
    buffers = []
    with torch.random.fork_rng(devices=cuda):
        try:
            if mode is not None:
                model.train(mode == "train")
            if any(m.training for m in names):
                # A train-mode pass updates buffers (BatchNorm's running statistics): keep copies.
                buffers = [(b, b.detach().clone()) for b in model.buffers()]
            for module in names:
                handles.append(module.register_forward_pre_hook(_pre_hook(state)))
                handles.append(module.register_forward_hook(_post_hook(state, backward)))
            given = inputs() if callable(inputs) and not isinstance(inputs, nn.Module) else inputs
            given = _to_device(given, device)
            tensors = _tensors(given)
            with torch.set_grad_enabled(backward):
                output = call_model(model, given)
                grads = _backward(model, output, state, loss, seed) if backward else None
        finally:
            for handle in handles:
                handle.remove()
            for module, flag in training.items():
                module.training = flag
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)

    layer_records = []
    for i, record in enumerate(state.layers):
        if grads is not None:
            g = grads[0][i]
            record["grad_std"] = _std64(g) if g is not None else None
        layer_records.append(LayerStats(**record))
    param_records = []
    for j, (name, p) in enumerate(model.named_parameters()):
        std = _std64(p)
        grad_std = ratio = None
        if grads is not None and grads[1][j] is not None:
            grad_std = _std64(grads[1][j])
            ratio = grad_std / std if std > 0 else None
        param_records.append(ParamStats(name, tuple(p.shape), std, grad_std, ratio))
    block_records = tuple(BlockStats(**b) for b in state.blocks)
    floats = [t.detach().double().reshape(-1) for t in tensors if t.is_floating_point()]
    input_std = _std64(torch.cat(floats)) if floats else math.nan
    layers_t = tuple(layer_records)
    return ProbeReport(
        label=label if label is not None else type(model).__name__,
        model=type(model).__name__,
        mode="train" if model.training and mode is None else (mode or "eval"),
        backward=backward,
        device=str(device) if device is not None else "cpu",
        torch_version=torch.__version__,
        input_shapes=tuple(tuple(t.shape) for t in tensors),
        input_std=input_std,
        layers=layers_t,
        params=tuple(param_records),
        blocks=block_records,
        residual_exponent=power_exponent([b.output_std for b in block_records]) if len(block_records) >= 2 else None,
        verdicts=judge_signal(layers_t, block_records, input_std=input_std),
    )


def _backward(model: nn.Module, output: Any, state: _State, loss, seed: int):
    params = [p for _, p in model.named_parameters()]
    wanted = [p for p in params if p.requires_grad]
    outputs = [y for y in state.outputs if y.requires_grad]
    if loss is not None:
        value = loss(output)
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            raise ProbeError(
                f"loss must return a scalar tensor, got {type(value).__name__} "
                f"of shape {tuple(getattr(value, 'shape', ()))}"
            )
        roots, cotangents = [value.reshape(())], None
    else:
        y = first_tensor(output)
        if y is None:
            raise ProbeError("the model's output holds no floating-point tensor to run the backward pass from")
        generator = torch.Generator(device=y.device).manual_seed(seed)
        roots = [y]
        cotangents = [torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)]
    if not roots[0].requires_grad:
        raise ProbeError(
            "the model's output does not require grad (frozen parameters and inputs without requires_grad?): "
            "nothing to run the backward pass through"
        )
    got = torch.autograd.grad(roots, [*outputs, *wanted], grad_outputs=cotangents, allow_unused=True)
    by_output = dict(zip(map(id, outputs), got[: len(outputs)], strict=True))
    by_param = dict(zip(map(id, wanted), got[len(outputs) :], strict=True))
    return [by_output.get(id(y)) for y in state.outputs], [by_param.get(id(p)) for p in params]
