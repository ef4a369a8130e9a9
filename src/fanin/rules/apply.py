"""``fanin.apply``: execute a plan, atomically, and return it as the record of what was done.

**Atomicity.** Every new value is computed into a fresh tensor first (``torch.empty_like`` of the
parameter, so a DTensor parameter gets a DTensor with the same mesh and placements and the
sampling seam fills only its local shard); a ``reset_parameters`` entry runs the module's method
on a deep copy of the module. Only when every tensor of the plan has its value are they copied
into the parameters (``copy_`` under ``no_grad``; the parameter objects, their types and their
placements stay). A failure half-way therefore leaves the model exactly as it was. The price is
transient memory: the new values of all planned tensors are held at once, about the size of the
planned parameters (snapshot-and-restore would cost the same, and could not protect against a
failure inside the restore).

**Random source**, one of: ``seed=int``: each tensor draws from its own counter stream
``fanin.Stream(seed, canonical_name(name))``, so its values depend on nothing but the seed and
its name (adding a layer changes no other layer); ``generator=torch.Generator``: one generator
drawn in plan order (with the ``"torch"`` preset this reproduces PyTorch's construction bit for
bit); neither: torch's global RNG, in plan order. ``reset_parameters`` entries always draw from
torch's global RNG (that is what the modules' methods do).

>>> import torch, fanin
>>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
>>> record = fanin.apply(model, {"*.weight": "orthogonal", "*.bias": "zeros"}, seed=0)
>>> record.source, model[1].bias.tolist()
('stream', [0.0, 0.0])
"""

from __future__ import annotations

import copy

import torch

from fanin.rng.stream import Stream, canonical_name
from fanin.rules.plan import Plan, PlanEntry, PlanMismatchError, _check_seed, collect_targets, plan, reset_method

__all__ = ["apply", "fill_values"]


def _check_generator(generator: object, seed: object) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            "generator must be None or a torch.Generator (for counter streams pass seed=int), got "
            f"generator={generator!r} ({type(generator).__name__})"
        )
    if generator is not None and seed is not None:
        raise TypeError(
            f"pass seed= (one counter stream per tensor) or generator= (one torch.Generator in plan order), "
            f"not both; got seed={seed!r} and generator={generator!r}"
        )


def resolve_plan(model: torch.nn.Module, rules_or_plan: object, seed, leftovers) -> Plan:
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
    tensors = {t.name: t for _, _, own in collect_targets(model) for t, _, _ in own}
    for e in p:
        t = tensors.get(e.name)
        if t is None or t.shape != e.shape or t.kind != e.kind:
            found = "no such tensor" if t is None else f"{t.kind} of shape={t.shape}"
            raise PlanMismatchError(
                f"The plan does not describe this model ({type(model).__name__}): it has {e.kind} {e.name!r} "
                f"of shape={e.shape}, the model has {found}. Resolve the plan on this model: fanin.plan(model, rules)."
            )
    return p


def _source(seed, generator) -> str:
    return "stream" if seed is not None else "generator" if generator is not None else "global"


def _owner(model: torch.nn.Module, entry: PlanEntry) -> torch.nn.Module:
    return model.get_submodule(entry.module) if entry.module else model


def _reset_copy(module: torch.nn.Module, hook: str | None = None, device=None) -> torch.nn.Module:
    """A copy of ``module`` with its own re-initialization run (on ``device`` when it is on meta)."""
    clone = copy.deepcopy(module)
    if device is not None:
        clone = clone.to_empty(device=device)
    with torch.no_grad():
        if hook is None:
            reset_method(clone)()
        else:
            getattr(clone, hook)()
    return clone


def fill_values(
    model: torch.nn.Module,
    p: Plan,
    *,
    generator: torch.Generator | None,
    empty,
    device=None,
) -> dict[str, torch.Tensor]:
    """The new value of every entry that writes (not ``keep``), in plan order, without touching ``model``.

    ``empty(entry, tensor)`` makes the fresh tensor a scheme fills.
    """
    values: dict[str, torch.Tensor] = {}
    # Entries filled by a module's own method, grouped so that each module is copied once and the
    # copy is dropped as soon as its tensors are taken (peak: one module's size on top).
    groups: dict[tuple[int, str | None], list[PlanEntry]] = {}
    for e in p:
        if e.action in ("reset_parameters", "hook"):
            groups.setdefault((id(_owner(model, e)), e.hook if e.action == "hook" else None), []).append(e)
    for e in p:
        if e.action == "keep" or e.name in values:
            continue
        module = _owner(model, e)
        store = module._parameters if e.kind == "parameter" else module._buffers
        tensor = store[e.local]
        if e.action == "scheme":
            new = empty(e, tensor)
            gen = Stream(p.seed, canonical_name(e.name)) if p.seed is not None else generator
            e.scheme(new, generator=gen)  # type: ignore[misc]
            values[e.name] = new
            continue
        hook = e.hook if e.action == "hook" else None
        clone = _reset_copy(module, hook, device if tensor.is_meta else None)
        for member in groups[(id(module), hook)]:
            source = clone._parameters if member.kind == "parameter" else clone._buffers
            values[member.name] = source[member.local].detach()  # type: ignore[union-attr]
        del clone
    return values


def apply(
    model: torch.nn.Module,
    rules_or_plan: object,
    *,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    leftovers: str | None = None,
) -> Plan:
    """Initialize ``model`` by ``rules_or_plan`` (rules, a preset name, or a :class:`Plan`); return the plan.

    See the module docstring for the random source and the atomicity guarantee. A plan resolved
    with a seed is applied with that seed.

    >>> import torch, fanin
    >>> model = torch.nn.Linear(5, 3)
    >>> _ = fanin.apply(model, {"weight": "xavier_normal", "bias": "zeros"}, generator=torch.Generator().manual_seed(0))
    >>> reference = torch.nn.init.xavier_normal_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0))
    >>> torch.equal(model.weight, reference)
    True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"apply needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    _check_seed(seed)
    _check_generator(generator, seed)
    p = resolve_plan(model, rules_or_plan, seed, leftovers)
    for e in p:
        if _owner(model, e)._parameters.get(e.local, None) is not None and _owner(model, e)._parameters[e.local].is_meta:
            raise ValueError(
                f"{e.name!r} is on the meta device: apply writes into existing storage; use "
                "fanin.materialize(model, rules, device=...) for a model built on meta"
            )

    def empty(entry: PlanEntry, tensor: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(tensor.detach())

    values = fill_values(model, p, generator=generator, empty=empty)
    with torch.no_grad():
        for e in p:
            if e.name in values:
                module = _owner(model, e)
                store = module._parameters if e.kind == "parameter" else module._buffers
                store[e.local].copy_(values[e.name])  # type: ignore[union-attr]
    return p.with_source(_source(p.seed, generator))
