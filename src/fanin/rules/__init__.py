"""Rules: selectors, rules, presets and plans (resolve every parameter, then apply).

>>> import torch, fanin
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
>>> record = fanin.apply(model, {"*.weight": "xavier_uniform", "*.bias": "zeros"}, seed=0)
>>> [e.name for e in record]
['0.weight', '0.bias', '2.weight', '2.bias']
"""

from fanin.rules.apply import apply
from fanin.rules.load import load_rules, rules_from_dict
from fanin.rules.materialize import materialize
from fanin.rules.plan import Plan, PlanEntry, PlanMismatchError, plan
from fanin.rules.presets import list_presets, preset
from fanin.rules.rules import (
    DepthScaledNormal,
    EmbeddingNormal,
    FrameworkDefaults,
    Keep,
    ResetParameters,
    Rule,
    RuleError,
    Rules,
    as_rules,
)
from fanin.rules.selectors import All, Any, Everything, Kind, Module, Name, Ndim, Not, Role, Selector, role_of
from fanin.rules.stats import Statistics, scheme_statistics

__all__ = [
    "All",
    "Any",
    "DepthScaledNormal",
    "EmbeddingNormal",
    "Everything",
    "FrameworkDefaults",
    "Keep",
    "Kind",
    "Module",
    "Name",
    "Ndim",
    "Not",
    "Plan",
    "PlanEntry",
    "PlanMismatchError",
    "ResetParameters",
    "Role",
    "Rule",
    "RuleError",
    "Rules",
    "Selector",
    "Statistics",
    "apply",
    "as_rules",
    "list_presets",
    "load_rules",
    "materialize",
    "plan",
    "preset",
    "role_of",
    "rules_from_dict",
    "scheme_statistics",
]
