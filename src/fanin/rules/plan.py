"""``fanin.plan``: resolve every parameter of a model to one entry before anything is written.

An entry records the tensor (name, shape, dtype, fans), the rule that matched it (index and
text), what will be done (a scheme with its arguments, ``keep`` or the module's own
``reset_parameters``), the statistics of the values the scheme draws (std, bounds), and the
random source: the counter-stream key ``(seed, canonical name)`` when a seed is used.

Order of execution (the order the entries are listed in): modules in ``model.named_modules()``
order; within a module, first the tensors a ``defaults:`` rule covers, in the order the
framework initializes them (:func:`fanin.rules.defaults.default_schemes`), then the module's
other parameters and buffers in registration order. A module's defaults may list a submodule's
tensors by dotted name (``MultiheadAttention`` lists ``out_proj.weight``, which its constructor
draws first): those are placed at the parent's position and take precedence over the
submodule's own defaults. Without ``defaults:`` rules that is
exactly ``model.named_parameters()`` order. Tied parameters appear once, under their first name,
with the other names as ``aliases``.

>>> import torch, fanin
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
>>> p = fanin.plan(model, {"*.weight": "xavier_uniform", "*.bias": "zeros"}, seed=0)
>>> [(e.name, e.rule_index, str(e.scheme)) for e in p]
[('0.weight', 0, 'xavier_uniform'), ('0.bias', 1, 'zeros'), ('2.weight', 0, 'xavier_uniform'), ('2.bias', 1, 'zeros')]
>>> p["0.weight"].statistics.high, p["0.weight"].stream
(0.9258200997725514, (0, '0.weight'))
>>> fanin.plan(model, {"*.weight": "xavier_uniform"})
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: 2 parameter(s) match no rule: '0.bias', '2.bias'. Rules: #0 name='*.weight' -> xavier_uniform. Add a rule for them, or pass leftovers='keep' or leftovers='reset_parameters'.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from fanin.errors import FaninError, describe_choice
from fanin.formulas.fans import Fans, compute_fans, kernel_shape_from_torch
from fanin.rng.stream import canonical_name
from fanin.rules.guards import colliding_keys, is_uninitialized, overlapping_tensors
from fanin.rules.rules import (
    LEFTOVERS,
    FrameworkDefaults,
    Keep,
    ResetParameters,
    RuleError,
    Rules,
    as_rules,
    describe_rules,
)
from fanin.rules.selectors import Target
from fanin.rules.stats import Statistics, scheme_statistics
from fanin.schemes import Scheme

__all__ = ["Plan", "PlanEntry", "PlanMismatchError", "check_independent", "collect_targets", "plan", "reset_method"]

SOURCES = ("generator", "global", "stream")


@dataclass(frozen=True)
class PlanEntry:
    """One tensor of the plan and what is done to it.

    ``action`` is ``"scheme"`` (``scheme`` is filled), ``"keep"``, ``"reset_parameters"`` or, for
    buffers :func:`fanin.materialize` fills through the module's own method, ``"hook"``
    (``hook`` names the method).
    ``rule_index`` is the index of the matching rule, ``None`` for a leftover (``rule`` then
    names the policy). ``stream`` is ``(seed, canonical name)`` when the plan has a seed.
    """

    name: str
    kind: str
    module: str
    module_type: str
    local: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    fans: Fans | None
    rule_index: int | None
    rule: str
    action: str
    scheme: Scheme | None
    statistics: Statistics | None
    stream: tuple[int, str] | None
    aliases: tuple[str, ...] = ()
    hook: str | None = None

    @property
    def init(self) -> str:
        """What is done, as text: the scheme, ``keep`` or ``Type.reset_parameters()``."""
        if self.action == "scheme":
            return str(self.scheme)
        if self.action == "reset_parameters":
            return f"{self.module_type}.reset_parameters()"
        if self.action == "hook":
            return f"{self.module_type}.{self.hook}()"
        return self.action

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "module": self.module,
            "module_type": self.module_type,
            "local": self.local,
            "role": self.role,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "fans": None
            if self.fans is None
            else {
                "fan_in": self.fans.fan_in,
                "fan_out": self.fans.fan_out,
                "receptive_field": self.fans.receptive_field,
                "layout": self.fans.layout,
            },
            "rule_index": self.rule_index,
            "rule": self.rule,
            "action": self.action,
            "init": self.init,
            "scheme": None if self.scheme is None else self.scheme.to_config(),
            "statistics": None if self.statistics is None else self.statistics.to_dict(),
            "stream": None if self.stream is None else {"seed": self.stream[0], "name": self.stream[1]},
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Plan:
    """The resolved plan: one :class:`PlanEntry` per tensor, in execution order.

    ``source`` is where the random values come from: ``"stream"`` (``seed`` set: one counter
    stream per tensor), ``"generator"`` (one ``torch.Generator`` shared in plan order) or
    ``"global"`` (torch's global RNG). Iterating a plan yields its entries; ``plan[name]`` finds
    one by name or alias.
    """

    entries: tuple[PlanEntry, ...]
    rules: Rules
    leftovers: str
    seed: int | None = None
    source: str = "global"
    model: str = ""
    skipped_buffers: tuple[str, ...] = field(default=(), compare=False)

    def __iter__(self) -> Iterator[PlanEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> PlanEntry:
        for e in self.entries:
            if e.name == name or name in e.aliases:
                return e
        raise KeyError(describe_choice("tensor name", name, [e.name for e in self.entries]))

    def with_source(self, source: str) -> Plan:
        if source not in SOURCES:
            raise ValueError(describe_choice("source", source, SOURCES))
        return replace(self, source=source)

    # ------------------------------------------------------------------------------- renderers

    def __repr__(self) -> str:
        source = {"stream": f"counter stream, seed={self.seed}", "generator": "torch.Generator",
                  "global": "torch global RNG"}.get(self.source, self.source)
        n, r = len(self.entries), len(self.rules)
        return (f"<Plan {self.model or 'model'}: {n} tensor{'s' * (n != 1)}, {r} rule{'s' * (r != 1)}, "
                f"leftovers={self.leftovers}, {source}>")

    def __str__(self) -> str:
        """The plan's table as plain text, fitted to 80 columns (:func:`fanin.report.plan.render_plan_text`)."""
        from fanin.report.plan import render_plan_text

        return render_plan_text(self).rstrip("\n")

    def explain(self) -> str:
        """The plan as a table: one row per tensor, with the rule that matched it, what is done,
        the std and bound of the values and the stream key (``str(plan)``; for a given width or
        Markdown, :mod:`fanin.report.plan`).

        >>> import torch, fanin
        >>> text = fanin.plan(torch.nn.Linear(4, 2), "torch").explain()
        >>> text.splitlines()[1].split()
        ['#', 'tensor', 'shape', 'rule', 'init', 'std']
        """
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "seed": self.seed,
            "source": self.source,
            "leftovers": self.leftovers,
            "rules": [{"index": i, "rule": str(r)} for i, r in enumerate(self.rules)],
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def lint(self, model: torch.nn.Module | None = None):
        """The init bugs this plan would make (:func:`fanin.rules.lint.lint`); pass the model to check
        what the plan leaves uninitialized and its buffers too."""
        from fanin.rules.lint import lint

        return lint(model, self)


# ---------------------------------------------------------------------------------- resolution


def reset_method(module: torch.nn.Module):
    """The module's own re-initialization: ``reset_parameters`` or ``_reset_parameters`` (MultiheadAttention)."""
    for attr in ("reset_parameters", "_reset_parameters"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None


def _fans_for(shape: tuple[int, ...], scheme: Scheme | None) -> Fans | None:
    """The fans the scheme computes for a tensor of ``shape``: of the logical block for a fused or
    stacked tensor (:func:`fanin.rules.blocks.block_fans`), else by the scheme's framework and layout."""
    from fanin.rules.blocks import block_fans, is_blocked, parts_of

    if scheme is not None and is_blocked(scheme):
        try:
            return block_fans(parts_of(scheme)[1], shape)
        except (ValueError, TypeError):
            return None
    framework = scheme.framework if scheme is not None else "torch"
    args = scheme.arguments if scheme is not None else {}
    layout = args.get("layout", "torch")
    try:
        if framework in ("keras", "tf1"):
            kernel = kernel_shape_from_torch(shape) if layout == "torch" else shape
            return compute_fans(kernel, "keras")
        if framework == "jax":
            kernel = kernel_shape_from_torch(shape) if layout == "torch" else shape
            return compute_fans(
                kernel,
                "jax",
                in_axis=args.get("in_axis", -2),
                out_axis=args.get("out_axis", -1),
                batch_axis=args.get("batch_axis", ()),
            )
        return compute_fans(shape, "torch") if len(shape) >= 2 else None
    except (ValueError, TypeError):
        return None


def _defaults(module: torch.nn.Module, framework: str) -> dict[str, tuple[int, Scheme]]:
    try:
        from fanin.rules.defaults import default_schemes
    except ImportError as err:  # pragma: no cover - defaults.py is part of the package
        raise RuleError(f"'defaults:{framework}' rules need fanin.rules.defaults, which failed to import: {err}") from None
    listed = default_schemes(module, framework) or []
    return {local: (i, scheme) for i, (local, scheme) in enumerate(listed)}


def _check_seed(seed: object) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise TypeError(f"seed must be None or an int in [0, 2**64), got seed={seed!r} ({type(seed).__name__})")


def collect_targets(model: torch.nn.Module):
    """``[(module_name, module, [(Target, tensor, aliases), ...]), ...]`` in ``named_modules`` order.

    Tensors shared between modules or names are listed once, under the first name.
    """
    first: dict[int, str] = {}
    aliases: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            aliases[id(p)].append(name)
        else:
            first[id(p)], aliases[id(p)] = name, []
    for name, b in model.named_buffers(remove_duplicate=False):
        if id(b) in first:
            aliases[id(b)].append(name)
        else:
            first[id(b)], aliases[id(b)] = name, []
    out = []
    for module_name, module in model.named_modules():
        own = []
        for kind, items in (("parameter", module._parameters.items()), ("buffer", module._buffers.items())):
            for local, tensor in items:
                if tensor is None:
                    continue
                name = f"{module_name}.{local}" if module_name else local
                if first.get(id(tensor)) != name:
                    continue  # a tied alias, listed under its first name
                if is_uninitialized(tensor):
                    raise RuleError(
                        f"{name!r} of {type(module).__name__} (module {module_name or '<root>'!r}) is an uninitialized "
                        "lazy parameter or buffer, which has no shape yet: run one forward pass, then plan"
                    )
                own.append((Target.of(module, name, local, kind, tensor), tensor, tuple(aliases[id(tensor)])))
        out.append((module_name, module, own))
    return out


def plan(
    model: torch.nn.Module,
    rules: object,
    *,
    seed: int | None = None,
    leftovers: str | None = None,
) -> Plan:
    """Resolve every parameter of ``model`` (and the buffers a rule covers) to one :class:`PlanEntry`.

    ``rules``: a preset name, a mapping ``{name glob: scheme}``, a list of rules, ... (see
    :func:`fanin.rules.rules.as_rules`); the first rule that matches a tensor wins. Parameters
    that no rule matches are handled by ``leftovers`` (default: the rules' own policy, else
    ``"error"``): ``"error"`` raises :class:`~fanin.rules.rules.RuleError` listing the unmatched
    names and the rules; ``"keep"`` records them as kept; ``"reset_parameters"`` defers to their
    module's own ``reset_parameters()``. Buffers no rule covers are not part of the plan.

    Nothing is written, and everything that would make a write fail or lie is refused here,
    naming the tensor and the rule (:class:`~fanin.rules.rules.RuleError`): a scheme that cannot
    take a tensor's shape or dtype (its own checks run at that shape, :func:`fanin.schemes.dryrun.dry_run`:
    ``orthogonal`` on a bias, a fan-based scheme on a 1-D tensor; a random scheme on an integer
    buffer; a constant an integer tensor cannot hold; values beyond the dtype's range, e.g.
    ``constant(val=1e5)`` on float16), a scheme with its own ``seed`` in a plan
    with a seed, two written tensors that share memory without being one tied object
    (:func:`fanin.rules.guards.overlapping_tensors`), two tensors whose stream keys collide
    (:func:`fanin.rules.guards.colliding_keys`) and lazy parameters that have no shape yet.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"plan needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    _check_seed(seed)
    ruleset = as_rules(rules, model)
    if leftovers is not None and leftovers not in LEFTOVERS:
        raise RuleError(describe_choice("leftovers policy", leftovers, LEFTOVERS))
    policy = leftovers or ruleset.leftovers or "error"

    # 1. Match: the first rule that covers each tensor.
    targets = collect_targets(model)
    frameworks = sorted({r.init.framework for r in ruleset if isinstance(r.init, FrameworkDefaults)})
    # A module's defaults may name a submodule's tensors ("out_proj.weight" of MultiheadAttention,
    # drawn by the parent's constructor): those are placed at the parent's position, in its order.
    own_defaults: dict[tuple[int, str], dict[str, tuple[int, Scheme]]] = {}
    claimed: dict[tuple[str, str], tuple[tuple[int, int], Scheme]] = {}
    for m_index, (module_name, module, _) in enumerate(targets):
        for fw in frameworks:
            listed = _defaults(module, fw)
            own_defaults[(id(module), fw)] = {k: v for k, v in listed.items() if "." not in k}
            for local, (order, scheme) in listed.items():
                if "." in local:
                    full = f"{module_name}.{local}" if module_name else local
                    claimed.setdefault((fw, full), ((m_index, order), scheme))
    matched: list[tuple[torch.nn.Module, Target, tuple[str, ...], int | None, Scheme | None, tuple[int, int]]] = []
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
                    matched.append((module, target, aliases, None, None, placement))
                else:
                    skipped.append(target.name)
                continue
            counts[found] += 1
            matched.append((module, target, aliases, found, scheme, placement))
    if unmatched:
        shown = ", ".join(repr(n) for n in unmatched[:50]) + (f", ... ({len(unmatched) - 50} more)" if len(unmatched) > 50 else "")
        raise RuleError(
            f"{len(unmatched)} parameter(s) match no rule: {shown}. Rules: {describe_rules(ruleset) or 'none'}. "
            "Add a rule for them, or pass leftovers='keep' or leftovers='reset_parameters'."
        )

    # 2. Resolve: one concrete action per tensor, checked against its shape.
    placed: list[tuple[tuple[int, int], PlanEntry]] = []
    for module, target, aliases, index, default_scheme, placement in matched:
        if index is None:
            init = Keep() if policy == "keep" else ResetParameters()
            rule_text = f"leftovers={policy}"
        else:
            init = ruleset[index].init
            rule_text = str(ruleset[index])
        if isinstance(init, FrameworkDefaults):
            scheme = default_scheme
        else:
            scheme = init.resolve(module, counts[index] if index is not None else 0)
        if isinstance(init, ResetParameters) and reset_method(module) is None:
            raise RuleError(
                f"Rule {rule_text!r} defers {target.name!r} to its module's reset_parameters(), but "
                f"{target.module_type.__name__} (module {target.module_name or '<root>'!r}) has none. "
                "Give a scheme for it instead."
            )
        action = "scheme" if scheme is not None else init.action
        tensor = _tensor_of(module, target)
        statistics = None
        if scheme is not None:
            statistics = _check_scheme_takes(scheme, target, tensor, rule_text, seed)
        entry = PlanEntry(
            name=target.name,
            kind=target.kind,
            module=target.module_name,
            module_type=target.module_type.__name__,
            local=target.local,
            role=target.role,
            shape=target.shape,
            dtype=str(tensor.dtype).replace("torch.", ""),
            fans=_fans_for(target.shape, scheme),
            rule_index=index,
            rule=rule_text,
            action=action,
            scheme=scheme,
            statistics=statistics,
            stream=(seed, canonical_name(target.name)) if seed is not None and action == "scheme" else None,
            aliases=aliases,
        )
        placed.append((placement, entry))
    entries = tuple(e for _, e in sorted(placed, key=lambda pair: pair[0]))
    check_independent(targets, entries, seed)
    return Plan(
        entries=entries,
        rules=ruleset,
        leftovers=policy,
        seed=seed,
        source="stream" if seed is not None else "global",
        model=type(model).__name__,
        skipped_buffers=tuple(skipped),
    )


def _where(target: Target) -> str:
    return f"{target.module_type.__name__} {target.module_name or '<root>'!r}"


def _check_scheme_takes(
    scheme: Scheme, target: Target, tensor: torch.Tensor, rule_text: str, seed: int | None
) -> Statistics | None:
    """The statistics of ``scheme`` on this tensor, or a RuleError naming the tensor and the rule."""
    head = f"Rule {rule_text!r}: scheme {str(scheme)!r} cannot initialize {target.name!r} ({_where(target)}) of shape={target.shape}"
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
    except Exception as err:  # noqa: BLE001 - whatever the scheme's own checks raise for this tensor
        raise RuleError(f"{head}: {err}") from None
    reach = _reach(statistics)
    if tensor.is_floating_point() and reach is not None and reach > torch.finfo(tensor.dtype).max:
        raise RuleError(
            f"{head}: its values reach {reach:.4g}, beyond the largest finite {str(tensor.dtype).replace('torch.', '')} "
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


def check_independent(targets, entries: tuple[PlanEntry, ...], seed: int | None) -> None:
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


def _tensor_of(module: torch.nn.Module, target: Target) -> torch.Tensor:
    store = module._parameters if target.kind == "parameter" else module._buffers
    return store[target.local]  # type: ignore[return-value]


class PlanMismatchError(FaninError, ValueError):
    """A plan applied to a model it does not describe."""
