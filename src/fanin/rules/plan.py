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

__all__ = ["Plan", "PlanEntry", "PlanMismatchError", "collect_targets", "plan", "reset_method"]

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


# ---------------------------------------------------------------------------------- resolution


def reset_method(module: torch.nn.Module):
    """The module's own re-initialization: ``reset_parameters`` or ``_reset_parameters`` (MultiheadAttention)."""
    for attr in ("reset_parameters", "_reset_parameters"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None


def _fans_for(shape: tuple[int, ...], scheme: Scheme | None) -> Fans | None:
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

    Nothing is written: scheme errors for a tensor's shape (e.g. a fan-based scheme on a 1-D
    tensor) are raised here, naming the tensor and the rule.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"plan needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    _check_seed(seed)
    ruleset = as_rules(rules)
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
            if target.kind == "parameter" and not tensor.is_floating_point():
                raise RuleError(f"Rule {rule_text!r}: {target.name!r} has dtype={tensor.dtype}, not floating point")
            try:
                statistics = scheme_statistics(scheme, target.shape, tensor.dtype if tensor.is_floating_point() else torch.float32)
            except (ValueError, TypeError) as err:
                raise RuleError(
                    f"Rule {rule_text!r}: scheme {str(scheme)!r} cannot initialize {target.name!r} of "
                    f"shape={target.shape}: {err}"
                ) from None
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
    return Plan(
        entries=entries,
        rules=ruleset,
        leftovers=policy,
        seed=seed,
        source="stream" if seed is not None else "global",
        model=type(model).__name__,
        skipped_buffers=tuple(skipped),
    )


def _tensor_of(module: torch.nn.Module, target: Target) -> torch.Tensor:
    store = module._parameters if target.kind == "parameter" else module._buffers
    return store[target.local]  # type: ignore[return-value]


class PlanMismatchError(FaninError, ValueError):
    """A plan applied to a model it does not describe."""
