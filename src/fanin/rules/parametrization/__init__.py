"""Width and depth transfer as rules: muP, depth-muP and u-muP (:func:`mup`, :func:`depth_mup`,
:func:`u_mup`), their per-tensor numbers (:func:`mup_table`), the learning rates
(:func:`mup_param_groups`) and the forward multipliers (:func:`mup_hooks`).

- :mod:`~fanin.rules.parametrization.roles`: the role of each tensor, read from the module graph.
- :mod:`~fanin.rules.parametrization.spec`: what was asked for (:class:`MupSpec`, :class:`Attention`).
- :mod:`~fanin.rules.parametrization.table`: the numbers and their equations (:class:`MupTable`).
- :mod:`~fanin.rules.parametrization.rules`: the rules, bound to a model when planned.
- :mod:`~fanin.rules.parametrization.optim`: optimizer parameter groups.
- :mod:`~fanin.rules.parametrization.hooks`: forward hooks for the multipliers.
"""

from fanin.rules.parametrization.hooks import MupHooks, mup_hooks
from fanin.rules.parametrization.optim import OPTIMIZERS, mup_param_groups
from fanin.rules.parametrization.roles import (
    ROLES,
    Graph,
    MupError,
    TensorRole,
    read_roles,
)
from fanin.rules.parametrization.rules import (
    ParametrizationRule,
    ParametrizationRules,
    TableInit,
    Tensors,
    depth_mup,
    mup,
    u_mup,
)
from fanin.rules.parametrization.spec import Attention, MupSpec
from fanin.rules.parametrization.table import (
    Multiplier,
    MupRow,
    MupTable,
    build_table,
    depth_conflicts,
    mup_table,
)

__all__ = [
    "OPTIMIZERS",
    "ROLES",
    "Attention",
    "Graph",
    "Multiplier",
    "MupError",
    "MupHooks",
    "MupRow",
    "MupSpec",
    "MupTable",
    "ParametrizationRule",
    "ParametrizationRules",
    "TableInit",
    "TensorRole",
    "Tensors",
    "build_table",
    "depth_conflicts",
    "depth_mup",
    "mup",
    "mup_hooks",
    "mup_param_groups",
    "mup_table",
    "read_roles",
    "u_mup",
]
