"""``fanin.mup_param_groups``: the learning-rate half of a parametrization, as optimizer parameter groups.

Each parameter's learning rate is ``lr`` times its factor in the plan's table
(:mod:`fanin.rules.parametrization.table`): for an Adam-like optimizer (Adam, AdamW, and any that
normalizes the gradient entrywise: Adagrad, RMSprop) the Adam column, for an SGD-like one (SGD with
or without momentum) the SGD column -- as microsoft/mup's ``MuAdam``/``MuSGD`` split them. Groups
hold the parameters with the same factor, in the model's parameter order.

Weight decay (``weight_decay=``): by default coupled to the learning rate as ``MuAdam``/``MuSGD``
do (each group's decay divided by its factor, so that ``lr · weight_decay`` stays the base one);
``decoupled_wd=True`` keeps it as given.

>>> import torch, fanin
>>> from fanin.rules.load import bind
>>> from fanin.rules.parametrization import mup
>>> model = torch.nn.Sequential(
...     torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.Linear(256, 10)
... )
>>> plan = fanin.plan(model, bind(mup(base_width=64), model), seed=0)
>>> groups = mup_param_groups(model, plan, lr=1e-3, optimizer="adam")
>>> [(g["lr"], len(g["params"])) for g in groups]
[(0.001, 5), (0.00025, 1)]
>>> opt = torch.optim.Adam(groups)
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from fanin.errors import describe_choice
from fanin.rules.parametrization.roles import MupError
from fanin.rules.parametrization.table import check_model, mup_table

__all__ = ["OPTIMIZERS", "mup_param_groups"]

#: Adam-like ("adam", "adamw": the Adam column) and SGD-like ("sgd") optimizers.
OPTIMIZERS = ("adam", "adamw", "sgd")


def mup_param_groups(
    model: nn.Module,
    plan: Any,
    *,
    lr: float,
    optimizer: str = "adam",
    weight_decay: float | None = None,
    decoupled_wd: bool = False,
) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.<Optimizer>(groups)`` with per-tensor learning rates.

    Args:
        model: The model whose parameters are grouped, the one the plan describes.
        plan: A :class:`fanin.Plan` resolved on ``model`` with :func:`fanin.mup` / ``depth_mup`` /
            ``u_mup`` rules (refused otherwise, and when it counts depth twice: see
            :func:`fanin.mup_table`).
        lr: The learning rate tuned at the base width (for u-muP, the global one); positive.
        optimizer: ``"adam"`` or ``"adamw"`` (the Adam column, for any Adam-like optimizer) or
            ``"sgd"`` (the SGD column).
        weight_decay: The base weight decay, set on every group (non-negative); ``None`` leaves
            it to the optimizer.
        decoupled_wd: Keep ``weight_decay`` as given in every group; by default each group's
            decay is divided by its factor, so that ``lr · weight_decay`` stays the base one.

    Returns:
        One group per learning-rate factor, in the model's parameter order: ``{"params": [...],
        "lr": lr · factor}``, and ``"weight_decay"`` when it is given.

    Raises:
        TypeError: ``plan`` is not a plan.
        MupError: An argument is out of its domain, the plan is refused (see
            :func:`fanin.mup_table`), or it does not describe ``model``.

    Examples:
        >>> import torch, fanin
        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        >>> plan = fanin.plan(model, fanin.mup(base_width=64), seed=0)
        >>> groups = mup_param_groups(model, plan, lr=0.1, optimizer="sgd", weight_decay=0.01)
        >>> [(g["lr"], g["weight_decay"], len(g["params"])) for g in groups]
        [(0.4, 0.0025, 3), (0.1, 0.01, 1)]
    """
    if optimizer not in OPTIMIZERS:
        raise MupError(describe_choice("optimizer", optimizer, OPTIMIZERS))
    for what, value in (("lr", lr), ("weight_decay", weight_decay)):
        if value is None and what == "weight_decay":
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
            or (what == "lr" and value == 0)
        ):
            raise MupError(
                f"{what} must be a {'positive' if what == 'lr' else 'non-negative'} finite number, got {what}={value!r}"
            )
    if not isinstance(decoupled_wd, bool):
        raise MupError(f"decoupled_wd must be True or False, got decoupled_wd={decoupled_wd!r}")
    table = mup_table(plan)
    params = check_model(table, model)
    family = "sgd" if optimizer == "sgd" else "adam"
    by_factor: dict[float, list[nn.Parameter]] = {}
    for name, p in params.items():
        by_factor.setdefault(table[name].lr_factor(family), []).append(p)
    groups = []
    for factor, members in by_factor.items():
        group: dict[str, Any] = {"params": members, "lr": lr * factor}
        if weight_decay is not None:
            group["weight_decay"] = weight_decay if decoupled_wd else weight_decay / factor
        groups.append(group)
    return groups
