"""``fanin.plan``: resolve every parameter of a model to one entry before anything is written.

An entry records the tensor (name, shape, dtype, fans), the rule that matched it (index and
text), what will be done (a scheme with its arguments, ``keep`` or the module's own
``reset_parameters``), the statistics of the values the scheme draws (std, bounds), and the
random source: the counter-stream key ``(seed, canonical name)`` when a seed is used.

Order of execution (the order the entries are listed in): modules in ``model.named_modules()``
order; within a module, first the tensors a ``defaults:`` rule covers, in the order the
framework initializes them, then the module's other parameters and buffers in registration order
(:mod:`fanin.planning.matching`, the first step; resolving each match to an entry is the second).
Without ``defaults:`` rules that is exactly ``model.named_parameters()`` order. Tied parameters
appear once, under their first name, with the other names as ``aliases``.

>>> import torch, fanin
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> p = fanin.plan(model, {"*.weight": "xavier_uniform", "*.bias": "zeros"}, seed=0)
>>> [(e.name, e.rule_index, str(e.scheme)) for e in p]
[('0.weight', 0, 'xavier_uniform'), ('0.bias', 1, 'zeros'), ('2.weight', 0, 'xavier_uniform'), ('2.bias', 1, 'zeros')]
>>> p["0.weight"].statistics.high, p["0.weight"].stream
(0.9258200997725514, (0, '0.weight'))
>>> fanin.plan(model, {"*.weight": "xavier_uniform"})  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: 2 parameter(s) match no rule: '0.bias', '2.bias'. Rules: #0 name='*.weight' ->
xavier_uniform. Add a rule for them, or pass leftovers='keep' or leftovers='reset_parameters'.
"""

from __future__ import annotations

import torch

from fanin.errors import describe_choice
from fanin.formulas.fans import Fans
from fanin.frameworks import framework_of
from fanin.frameworks.torch import TORCH
from fanin.planning.executor import check_random_source, reset_method, stream_key, target_tensor
from fanin.planning.guards import colliding_keys, overlapping_tensors
from fanin.planning.matching import match
from fanin.planning.records import Plan, PlanEntry, PlanMismatchError, tensor_fields
from fanin.planning.stats import Statistics, scheme_statistics
from fanin.rules.blocks import block_fans, is_blocked, parts_of
from fanin.rules.load import as_rules
from fanin.rules.rules import LEFTOVERS, FrameworkDefaults, Keep, ResetParameters, RuleError
from fanin.rules.selectors import Target
from fanin.rules.targets import Targets, collect_targets
from fanin.schemes import Scheme

__all__ = ["check_independent", "fans_for", "plan", "resolve_plan"]


def fans_for(shape: tuple[int, ...], scheme: Scheme | None) -> Fans | None:
    """The fans the scheme computes for a tensor of ``shape``: of the logical block for a fused or
    stacked tensor (:func:`fanin.rules.blocks.block_fans`), else by the scheme's framework and layout."""
    if scheme is not None and is_blocked(scheme):
        try:
            return block_fans(parts_of(scheme)[1], shape)
        except (ValueError, TypeError):
            return None
    framework = TORCH if scheme is None else framework_of(scheme)
    try:
        return framework.fans(shape, {} if scheme is None else scheme.arguments)
    except (ValueError, TypeError):
        return None


def plan(
    model: torch.nn.Module,
    rules: object,
    *,
    seed: int | None = None,
    leftovers: str | None = None,
) -> Plan:
    """Resolve every parameter of ``model`` (and the buffers a rule covers) to one :class:`PlanEntry`.

    The first rule that matches a tensor wins. Buffers no rule covers are not part of the plan.

    Nothing is written, and everything that would make a write fail or lie is refused here,
    naming the tensor and the rule: a scheme that cannot take a tensor's shape or dtype (its own
    checks run at that shape, :func:`fanin.schemes.dryrun.dry_run`: ``orthogonal`` on a bias, a
    fan-based scheme on a 1-D tensor; a random scheme on an integer buffer; a constant an integer
    tensor cannot hold; values beyond the dtype's range, e.g. ``constant(val=1e5)`` on float16), a
    scheme with its own ``seed`` in a plan with a seed, two written tensors that share memory
    without being one tied object (:func:`fanin.planning.guards.overlapping_tensors`), two tensors
    whose stream keys collide (:func:`fanin.planning.guards.colliding_keys`) and lazy parameters
    that have no shape yet.

    Args:
        model: The model to plan for; only read.
        rules: A preset name, a mapping ``{name glob: scheme}``, a list of rules, ... (see
            :func:`fanin.rules.load.as_rules`).
        seed: The counter-stream seed: each entry records its stream key ``(seed, canonical
            name)``; an int in ``[0, 2**64)``, or ``None`` for no stream.
        leftovers: What happens to parameters no rule matches (default: the rules' own policy,
            else ``"error"``): ``"error"`` raises, listing the unmatched names and the rules;
            ``"keep"`` records them as kept; ``"reset_parameters"`` defers to their module's own
            ``reset_parameters()``.

    Returns:
        The plan: one entry per tensor, in execution order (see the module docstring), its
        ``source`` ``"stream"`` with a seed, else ``"global"``.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``, or ``seed`` is not an int in
            ``[0, 2**64)``.
        RuleError: The rules cannot be read, ``leftovers`` is not a policy, a parameter matches no
            rule under ``"error"``, or one of the checks above fails.

    Examples:
        >>> import torch, fanin
        >>> p = fanin.plan(torch.nn.Linear(4, 2), {"weight": "orthogonal", "bias": "zeros"}, seed=0)
        >>> [(e.name, e.init, e.stream) for e in p]
        [('weight', 'orthogonal', (0, 'weight')), ('bias', 'zeros', (0, 'bias'))]
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"plan needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    check_random_source(seed)
    ruleset = as_rules(rules, model)
    if leftovers is not None and leftovers not in LEFTOVERS:
        raise RuleError(describe_choice("leftovers policy", leftovers, LEFTOVERS))
    policy = leftovers or ruleset.leftovers or "error"

    # 1. Match: the first rule that covers each tensor.
    targets = collect_targets(model)
    found = match(targets, ruleset, policy)

    # 2. Resolve: one concrete action per tensor, checked against its shape.
    placed: list[tuple[tuple[int, int], PlanEntry]] = []
    for m in found.matched:
        module, target, index = m.module, m.target, m.rule_index
        if index is None:
            init = Keep() if policy == "keep" else ResetParameters()
            rule_text = f"leftovers={policy}"
        else:
            init = ruleset[index].init
            rule_text = str(ruleset[index])
        if isinstance(init, FrameworkDefaults):
            scheme = m.scheme
        else:
            scheme = init.resolve(module, found.counts[index] if index is not None else 0)
        if isinstance(init, ResetParameters) and reset_method(module) is None:
            raise RuleError(
                f"Rule {rule_text!r} defers {target.name!r} to its module's reset_parameters(), but "
                f"{target.module_type.__name__} (module {target.module_name or '<root>'!r}) has none. "
                "Give a scheme for it instead."
            )
        action = "scheme" if scheme is not None else init.action
        tensor = target_tensor(module, target)
        statistics = None
        if scheme is not None:
            statistics = _check_scheme_takes(scheme, target, tensor, rule_text, seed)
        entry = PlanEntry(
            **tensor_fields(target, tensor.dtype),
            fans=fans_for(target.shape, scheme),
            rule_index=index,
            rule=rule_text,
            action=action,
            scheme=scheme,
            statistics=statistics,
            stream=stream_key(seed, target.name) if action == "scheme" else None,
            aliases=m.aliases,
        )
        placed.append((m.placement, entry))
    entries = tuple(e for _, e in sorted(placed, key=lambda pair: pair[0]))
    check_independent(targets, entries, seed)
    return Plan(
        entries=entries,
        rules=ruleset,
        leftovers=policy,
        seed=seed,
        source="stream" if seed is not None else "global",
        model=type(model).__name__,
        skipped_buffers=found.skipped,
    )


def resolve_plan(model: torch.nn.Module, rules_or_plan: object, seed: int | None, leftovers: str | None) -> Plan:
    """The plan to execute: ``rules_or_plan`` itself (checked against ``model``) or resolved from rules."""
    if not isinstance(rules_or_plan, Plan):
        return plan(model, rules_or_plan, seed=seed, leftovers=leftovers)
    p = rules_or_plan
    if leftovers is not None:
        raise TypeError(f"leftovers= applies to rules, not to a resolved plan; got leftovers={leftovers!r}")
    if seed is not None and seed != p.seed:
        raise ValueError(
            f"the plan was resolved with seed={p.seed!r} and is applied with seed={seed!r}: re-plan with "
            "the seed, or apply without one"
        )
    targets = collect_targets(model)
    tensors = {t.name: t for _, _, own in targets for t, _, _ in own}
    for e in p:
        t = tensors.get(e.name)
        if t is None or t.shape != e.shape or t.kind != e.kind:
            found = "no such tensor" if t is None else f"{t.kind} of shape={t.shape}"
            raise PlanMismatchError(
                f"The plan does not describe this model ({type(model).__name__}): it has {e.kind} {e.name!r} "
                f"of shape={e.shape}, the model has {found}. Resolve the plan on this model: fanin.plan(model, rules)."
            )
    check_independent(targets, p.entries, p.seed)  # the model may have changed since it was planned
    return p


def _where(target: Target) -> str:
    return f"{target.module_type.__name__} {target.module_name or '<root>'!r}"


def _check_scheme_takes(
    scheme: Scheme, target: Target, tensor: torch.Tensor, rule_text: str, seed: int | None
) -> Statistics | None:
    """The statistics of ``scheme`` on this tensor, or a RuleError naming the tensor and the rule."""
    head = (
        f"Rule {rule_text!r}: scheme {str(scheme)!r} cannot initialize {target.name!r} ({_where(target)}) "
        f"of shape={target.shape}"
    )
    if seed is not None and scheme.arguments.get("seed") is not None:
        raise RuleError(
            f"{head}: it draws from its own seed={scheme.arguments['seed']!r}, and the plan draws every tensor "
            f"from a counter stream (seed={seed}); drop one of the two seeds"
        )
    if not tensor.is_floating_point() and scheme.family not in ("constant", "identity"):
        raise RuleError(
            f"{head}: it draws random values, and the tensor has dtype={tensor.dtype}; "
            "random schemes fill floating-point tensors (float16, bfloat16, float32, float64)"
        )
    try:
        statistics = scheme_statistics(scheme, target.shape, tensor.dtype)
    except Exception as err:
        raise RuleError(f"{head}: {err}") from None
    reach = _reach(statistics)
    if tensor.is_floating_point() and reach is not None and reach > torch.finfo(tensor.dtype).max:
        raise RuleError(
            f"{head}: its values reach {reach:.4g}, beyond the largest finite "
            f"{str(tensor.dtype).replace('torch.', '')} "
            f"({torch.finfo(tensor.dtype).max:.4g}), so the tensor would hold infinities"
        )
    if not tensor.is_floating_point() and statistics is not None and statistics.mean is not None:
        value = statistics.mean
        try:
            held = torch.tensor(value, dtype=torch.float64).to(tensor.dtype).item() == value
        except (RuntimeError, OverflowError):
            held = False
        if not held:
            raise RuleError(f"{head}: a tensor of dtype={tensor.dtype} cannot hold the value {value!r}")
    return statistics


def _reach(statistics: Statistics | None) -> float | None:
    """How far from 0 the values go: the bounds, else 10 standard deviations past the mean (a normal
    exceeds that with probability 2e-23 per element)."""
    if statistics is None:
        return None
    if statistics.low is not None and statistics.high is not None:
        return max(abs(statistics.low), abs(statistics.high))
    if statistics.mean is not None and statistics.std is not None:
        return abs(statistics.mean) + 10.0 * statistics.std
    return None


def check_independent(targets: Targets, entries: tuple[PlanEntry, ...], seed: int | None) -> None:
    """Refuse written tensors that share memory, and (with a seed) stream keys that collide."""
    writes = {e.name for e in entries if e.action != "keep"}
    named = [(t.name, tensor) for _, _, own in targets for t, tensor, _ in own]
    for first, second in overlapping_tensors(named):
        if first in writes or second in writes:
            raise RuleError(
                f"{first!r} and {second!r} are different tensors that share memory (views of one storage, e.g. "
                "p2 = nn.Parameter(p1[:2])): initializing one changes the other, so the plan would record "
                "values that are not there. Tie them (assign the same Parameter object) or give each its own "
                "storage (.clone())."
            )
    if seed is not None:
        for key, first, second in colliding_keys((e.name, e.stream[1]) for e in entries if e.stream is not None):
            raise RuleError(
                f"{first!r} and {second!r} have the same stream key {key!r} (canonical names drop wrapper "
                "components: a leading 'module', '_orig_mod', '_fsdp_wrapped_module', "
                f"'_checkpoint_wrapped_module'), so with seed={seed} they would get identical values. Rename one "
                "of the modules, or initialize with generator= instead of seed=."
            )
