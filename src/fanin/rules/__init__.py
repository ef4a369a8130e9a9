"""The rule language: selectors, rules, presets and recipes, and the one reader of rules.

What a plan does with rules (match, resolve, apply, materialize) is :mod:`fanin.planning`, the layer
above; nothing here imports it.

>>> from fanin.rules import Role, Rule, as_rules
>>> [str(r) for r in as_rules([Rule(Role("bias"), "zeros"), {"*.weight": "xavier_uniform"}])]
["role='bias' -> zeros", "name='*.weight' -> xavier_uniform"]
"""

from fanin.rules.load import as_rules, load_rules, rules_from_dict
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
)
from fanin.rules.selectors import All, Any, Everything, Kind, Module, Name, Ndim, Not, Role, Selector, role_of

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
    "ResetParameters",
    "Role",
    "Rule",
    "RuleError",
    "Rules",
    "Selector",
    "as_rules",
    "list_presets",
    "load_rules",
    "preset",
    "role_of",
    "rules_from_dict",
]
