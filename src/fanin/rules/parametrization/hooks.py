"""``fanin.mup_hooks``: the forward multipliers of a parametrization, as forward hooks on the model.

A parametrization's table lists multipliers (:class:`~fanin.rules.parametrization.table.Multiplier`):
the readout's ``output_mult/m`` (muP; on the readout's input, as ``MuReadout``), the queries'
``√(d₀/d)`` (muP's ``1/d`` attention), each residual branch's ``√(L₀/L)`` (depth-muP), u-muP's
``1/√fan_in``. The init cannot do them (they change the gradients too); :func:`mup_hooks` installs
one forward hook per multiplier, which returns
the module's output times the factor (the first ``1/split`` of its last dimension for fused
queries), or a forward pre-hook that scales its input. The same can be written into the model's
code: ``y = self.lm_head(x) * factor``.

The hooks are removable handles; installing a plan's hooks twice on one model is refused (the
multipliers would apply twice).

>>> import torch, fanin
>>> from fanin.rules.load import bind
>>> from fanin.rules.parametrization import mup
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
>>> plan = fanin.apply(model, bind(mup(base_width=64), model), seed=0)
>>> x = torch.randn(2, 8)
>>> before = model(x)  # the readout's bias is 0: W·(x/4) + b = (W·x + b)/4
>>> with mup_hooks(model, plan) as hooks:
...     torch.allclose(model(x), before / 4)
True
>>> hooks
<MupHooks on Sequential: 0 active of 1 (readout x0.25 on '2')>
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from typing import Any, TypeVar

import torch
from torch import nn

from fanin.rules.parametrization.roles import MupError
from fanin.rules.parametrization.table import (
    Multiplier,
    check_model,
    literal,
    mup_table,
)

__all__ = ["MupHooks", "mup_hooks"]

_H = TypeVar("_H", bound="MupHooks")
_INSTALLED: weakref.WeakKeyDictionary[nn.Module, MupHooks] = weakref.WeakKeyDictionary()


class MupHooks:
    """The installed multipliers: iterate for the :class:`Multiplier` records, :meth:`remove` (or
    leave the ``with`` block) to take them off."""

    def __init__(self, model: nn.Module, multipliers: tuple[Multiplier, ...], handles: list) -> None:
        self._model = weakref.ref(model)
        self.model = type(model).__name__
        self.multipliers = multipliers
        self._handles = handles

    @property
    def active(self) -> bool:
        return bool(self._handles)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        model = self._model()
        if model is not None and _INSTALLED.get(model) is self:
            del _INSTALLED[model]

    def __enter__(self: _H) -> _H:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def __iter__(self) -> Iterator[Multiplier]:
        return iter(self.multipliers)

    def __len__(self) -> int:
        return len(self.multipliers)

    def __repr__(self) -> str:
        shown = ", ".join(f"{x.kind} x{x.factor:.4g} on {literal(x.module)!r}" for x in self.multipliers[:3])
        more = f", +{len(self.multipliers) - 3}" if len(self.multipliers) > 3 else ""
        active = f"{len(self._handles)} active of {len(self.multipliers)}"
        return f"<MupHooks on {literal(self.model)}: {active} ({shown}{more})>"


def _pre_hook(x: Multiplier):
    def hook(module: nn.Module, args: tuple) -> tuple:
        if not args or not isinstance(args[0], torch.Tensor):
            raise MupError(
                f"{x.module!r} was called without a tensor input: fanin's {x.kind} multiplier scales its first input"
            )
        return (args[0] * x.factor, *args[1:])

    return hook


def _hook(x: Multiplier):
    def hook(module: nn.Module, args: object, output: object) -> torch.Tensor:
        if not isinstance(output, torch.Tensor):
            raise MupError(
                f"{x.module!r} returned {type(output).__name__}: fanin's {x.kind} multiplier needs a tensor output; "
                "write the multiplier into the model's code instead"
            )
        if x.split == 1:
            return output * x.factor
        last = output.shape[-1]
        if last % x.split:
            raise MupError(f"{x.module!r}'s output has a last dimension of {last}, not divisible by split={x.split}")
        first, rest = output.split([last // x.split, last - last // x.split], dim=-1)
        return torch.cat([first * x.factor, rest], dim=-1)

    return hook


def mup_hooks(model: nn.Module, plan: Any) -> MupHooks:
    """Install the plan's forward multipliers on ``model`` (resolved on it); return the handles.

    Args:
        model: The model the hooks are registered on, the one the plan describes.
        plan: A :class:`fanin.Plan` resolved on ``model`` with :func:`fanin.mup` / ``depth_mup`` /
            ``u_mup`` rules (refused otherwise: see :func:`fanin.mup_table`).

    Returns:
        The installed hooks, one per multiplier of the plan's table; removable (``remove()``, or
        leave a ``with`` block).

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``, or ``plan`` is not a plan.
        MupError: The plan is refused (see :func:`fanin.mup_table`), it does not describe
            ``model``, or this model already has active multipliers installed.

    Examples:
        >>> import torch, fanin
        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        >>> hooks = mup_hooks(model, fanin.plan(model, fanin.mup(base_width=64)))
        >>> [(x.kind, x.module, x.factor) for x in hooks], hooks.active
        ([('readout', '2', 0.25)], True)
        >>> hooks.remove(); hooks.active
        False
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"mup_hooks needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    table = mup_table(plan)
    check_model(table, model)
    present = _INSTALLED.get(model)
    if present is not None and present.active:
        raise MupError(
            f"{type(model).__name__} already has fanin's multipliers installed ({present!r}): installing them again "
            "would apply them twice; remove the first ones (hooks.remove()) before installing others"
        )
    handles = [
        model.get_submodule(x.module).register_forward_pre_hook(_pre_hook(x))
        if x.on == "input"
        else model.get_submodule(x.module).register_forward_hook(_hook(x))
        for x in table.multipliers
    ]
    hooks = MupHooks(model, table.multipliers, handles)
    _INSTALLED[model] = hooks
    return hooks
