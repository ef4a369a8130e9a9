"""Matching, the first step of a plan: the first rule that covers each tensor of a model.

Nothing is resolved here (no scheme is built for a shape): each tensor gets the index of the first
rule whose selector and kind cover it, and its *placement*, the position it takes in the plan.
Order of execution: modules in ``model.named_modules()`` order; within a module, first the
tensors a ``defaults:`` rule covers, in the order the framework initializes them
(:func:`fanin.rules.defaults.default_schemes`), then the module's other parameters and buffers in
registration order. A module's defaults may list a submodule's tensors by dotted name
(``MultiheadAttention`` lists ``out_proj.weight``, which its constructor draws first): those are
placed at the parent's position and take precedence over the submodule's own defaults.

A parameter no rule covers is a leftover (``rule_index`` ``None``): with the policy ``"error"``
the match raises :class:`~fanin.rules.rules.RuleError` naming them all and the rules. A buffer no
rule covers is not planned (:attr:`Matches.skipped`).

>>> import torch
>>> from fanin.rules.load import as_rules
>>> from fanin.rules.targets import collect_targets
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
>>> found = match(collect_targets(model), as_rules({"*.weight": "ones", "*.bias": "zeros"}), "error")
>>> [(m.target.name, m.rule_index) for m in found.matched]
[('0.weight', 0), ('0.bias', 1), ('1.weight', 0), ('1.bias', 1)]
>>> found.counts, found.skipped  # doctest: +NORMALIZE_WHITESPACE
([2, 2], ('1.running_mean', '1.running_var',
'1.num_batches_tracked'))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fanin.rules.defaults import default_schemes
from fanin.rules.rules import FrameworkDefaults, RuleError, Rules, describe_rules
from fanin.rules.selectors import Target
from fanin.rules.targets import Targets
from fanin.schemes import Scheme

__all__ = ["Match", "Matches", "match"]


@dataclass(frozen=True)
class Match:
    """One tensor and the rule that covers it (``rule_index`` ``None``: a leftover parameter).

    ``scheme`` is the framework default a ``defaults:`` rule found for it; ``placement``
    ``(module position, order within the module)`` sorts the plan.
    """

    module: torch.nn.Module
    target: Target
    aliases: tuple[str, ...]
    rule_index: int | None
    scheme: Scheme | None
    placement: tuple[int, int]


@dataclass(frozen=True)
class Matches:
    """What :func:`match` found: the matched tensors in model order, how many tensors each rule
    matched, and the buffers no rule covers."""

    matched: tuple[Match, ...]
    counts: list[int]
    skipped: tuple[str, ...]


def _defaults(module: torch.nn.Module, framework: str) -> dict[str, tuple[int, Scheme]]:
    listed = default_schemes(module, framework) or []
    return {local: (i, scheme) for i, (local, scheme) in enumerate(listed)}


def match(targets: Targets, ruleset: Rules, policy: str) -> Matches:
    """The first rule of ``ruleset`` covering each tensor of ``targets``
    (:func:`fanin.rules.targets.collect_targets`); ``policy`` is the leftovers policy."""
    frameworks = sorted({r.init.framework for r in ruleset if isinstance(r.init, FrameworkDefaults)})
    # A module's defaults may name a submodule's tensors ("out_proj.weight" of MultiheadAttention,
    # drawn by the parent's constructor): those are placed at the parent's position, in its order.
    own_defaults: dict[tuple[int, str], dict[str, tuple[int, Scheme]]] = {}
    claimed: dict[tuple[str, str], tuple[tuple[int, int], Scheme]] = {}
    for m_index, (module_name, module, _) in enumerate(targets):
        for fw in frameworks:
            listed = _defaults(module, fw)
            own_defaults[(id(module), fw)] = {k: v for k, v in listed.items() if "." not in k}
            for local, (order, default) in listed.items():
                if "." in local:
                    full = f"{module_name}.{local}" if module_name else local
                    claimed.setdefault((fw, full), ((m_index, order), default))
    matched: list[Match] = []
    unmatched: list[str] = []
    skipped: list[str] = []
    counts = [0] * len(ruleset)
    for m_index, (_, module, own) in enumerate(targets):
        for position, (target, _tensor, aliases) in enumerate(own):
            found: int | None = None
            scheme: Scheme | None = None
            placement = (m_index, len(own) + position)
            for i, rule in enumerate(ruleset):
                if isinstance(rule.init, FrameworkDefaults):
                    fw = rule.init.framework
                    hit = claimed.get((fw, target.name))
                    if hit is None:
                        own_hit = own_defaults[(id(module), fw)].get(target.local)
                        hit = None if own_hit is None else ((m_index, own_hit[0]), own_hit[1])
                    if hit is None or not rule.select.matches(target):
                        continue
                    placement, scheme = hit
                elif not (rule.covers_kind(target) and rule.select.matches(target)):
                    continue
                found = i
                break
            if found is None:
                if target.kind == "parameter":
                    if policy == "error":
                        unmatched.append(target.name)
                    matched.append(Match(module, target, aliases, None, None, placement))
                else:
                    skipped.append(target.name)
                continue
            counts[found] += 1
            matched.append(Match(module, target, aliases, found, scheme, placement))
    if unmatched:
        shown = ", ".join(repr(n) for n in unmatched[:50])
        if len(unmatched) > 50:
            shown += f", ... ({len(unmatched) - 50} more)"
        raise RuleError(
            f"{len(unmatched)} parameter(s) match no rule: {shown}. Rules: {describe_rules(ruleset) or 'none'}. "
            "Add a rule for them, or pass leftovers='keep' or leftovers='reset_parameters'."
        )
    return Matches(tuple(matched), counts, tuple(skipped))
