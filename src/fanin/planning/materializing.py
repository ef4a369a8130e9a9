"""``fanin.materialize``: turn a model built on the meta device into a real one, in one pass.

The plan is resolved first, on the meta model (no memory): a parameter without a rule, a kept
parameter that is still on meta, or a meta buffer that neither a rule nor its module can fill
raises before anything is allocated. Then each planned tensor is allocated on ``device`` and
filled, one after the other, and only when all are filled (and the tensors that only move to
``device`` are moved) are they swapped into the modules (as new ``nn.Parameter`` objects with the
old ``requires_grad``; tied parameters stay tied). Peak memory is therefore about the model's size
plus one scheme's scratch space. A failure, Ctrl-C during the swap included, leaves the model on
meta, unchanged: the plan's checks run first (:func:`fanin.plan`), a value that cannot be computed
raises :class:`~fanin.errors.ApplyError` naming the tensor and module before any swap, and the
swap puts every old tensor back if it is interrupted.

Buffers: a rule may cover them (``Rule(Role("running_var"), "ones")``); otherwise a meta buffer is
filled by its module's own hook, run on a copy of the module materialized on ``device``:
``reset_buffers()`` if the module defines it (the hook fanin looks for; e.g. a rotary embedding
recomputing its cos/sin cache), else ``reset_running_stats()`` (BatchNorm, InstanceNorm). Buffers
that are not on meta are moved to ``device``.

>>> import torch, fanin
>>> with torch.device("meta"):
...     model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8))
>>> record = fanin.materialize(model, {"0.weight": "xavier_uniform", "*.bias": "zeros", "*.weight": "ones"}, seed=0)
>>> [(e.name, e.init) for e in record][-3:]  # doctest: +NORMALIZE_WHITESPACE
[('1.running_mean', 'BatchNorm1d.reset_running_stats()'), ('1.running_var', 'BatchNorm1d.reset_running_stats()'),
('1.num_batches_tracked', 'BatchNorm1d.reset_running_stats()')]
>>> model[1].running_var.tolist() == [1.0] * 8, model[0].weight.device.type
(True, 'cpu')
"""

from __future__ import annotations

from dataclasses import replace

import torch

from fanin.planning.executor import check_random_source, fill_values, marks_of, sigint_deferred, source_of, stored
from fanin.planning.records import Plan, PlanEntry
from fanin.planning.resolve import resolve_plan
from fanin.rules.rules import RuleError
from fanin.rules.targets import collect_targets

__all__ = ["BUFFER_HOOKS", "materialize"]

#: Module methods that (re)compute a module's buffers, tried in this order.
BUFFER_HOOKS = ("reset_buffers", "reset_running_stats")


def _buffer_hook(module: torch.nn.Module) -> str | None:
    for hook in BUFFER_HOOKS:
        if callable(getattr(module, hook, None)):
            return hook
    return None


def materialize(
    model: torch.nn.Module,
    rules: object,
    *,
    device: torch.device | str = "cpu",
    seed: int | None = None,
    generator: torch.Generator | None = None,
    leftovers: str | None = None,
) -> Plan:
    """Allocate and initialize every meta tensor of ``model`` on ``device`` by ``rules``; return the plan.

    See the module docstring for buffers, errors and memory.

    Args:
        model: The model, built on the meta device (wholly or in part); its meta tensors are
            replaced by new ones on ``device``, its other tensors moved there.
        rules: Rules as :func:`fanin.plan` takes them, resolved on ``model`` first, or a
            :class:`Plan` resolved on this model.
        device: Where the tensors are allocated; not ``"meta"``.
        seed: One counter stream per tensor, keyed by ``(seed, canonical name)``; an int in
            ``[0, 2**64)``.
        generator: One ``torch.Generator`` drawn in plan order; not together with ``seed``.
        leftovers: The policy for parameters no rule matches (``"error"``, ``"keep"``,
            ``"reset_parameters"``), as in :func:`fanin.plan`; only with rules, not with a plan.

    Returns:
        The plan that was executed, with an entry (action ``"hook"``) for each meta buffer its
        module's hook filled, its ``source`` set to ``"stream"``, ``"generator"`` or ``"global"``.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``, the random source is not one of the
            three, or ``leftovers`` is given with a plan.
        ValueError: ``device`` is the meta device, or ``seed`` differs from the plan's.
        RuleError: The rules cannot be resolved on ``model`` (see :func:`fanin.plan`), a kept
            parameter is still on meta, or a meta buffer has no rule and no module hook.
        ApplyError: A value cannot be computed; the model is left on meta, unchanged.

    Examples:
        >>> import torch, fanin
        >>> with torch.device("meta"):
        ...     model = torch.nn.Linear(4, 2)
        >>> record = fanin.materialize(model, {"weight": "xavier_uniform", "bias": "zeros"}, seed=0)
        >>> model.weight.device.type, model.bias.tolist(), record.source
        ('cpu', [0.0, 0.0], 'stream')
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"materialize needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    device = torch.device(device)
    if device.type == "meta":
        raise ValueError(f"materialize allocates real tensors, got device={device}")
    check_random_source(seed, generator)
    p = resolve_plan(model, rules, seed, leftovers)

    planned = {e.name for e in p}
    kept_on_meta = [e.name for e in p if e.action == "keep" and stored(model, e).is_meta]
    if kept_on_meta:
        raise RuleError(
            f"{len(kept_on_meta)} parameter(s) on the meta device would be kept, i.e. stay "
            f"uninitialized: {', '.join(map(repr, kept_on_meta))}. Give them a rule, or use "
            "leftovers='reset_parameters'."
        )
    extra: list[PlanEntry] = []
    missing: list[str] = []
    for module_name, module, own in collect_targets(model):
        hook = _buffer_hook(module)
        for target, tensor, aliases in own:
            if target.name in planned or not tensor.is_meta:
                continue
            if target.kind == "buffer" and hook is not None:
                extra.append(
                    PlanEntry(
                        name=target.name,
                        kind="buffer",
                        module=module_name,
                        module_type=type(module).__name__,
                        local=target.local,
                        role=target.role,
                        shape=target.shape,
                        dtype=str(tensor.dtype).replace("torch.", ""),
                        fans=None,
                        rule_index=None,
                        rule="buffer hook",
                        action="hook",
                        scheme=None,
                        statistics=None,
                        stream=None,
                        aliases=aliases,
                        hook=hook,
                    )
                )
            else:
                missing.append(target.name)
    if missing:
        raise RuleError(
            f"{len(missing)} buffer(s) on the meta device have no rule and no module hook "
            f"({' or '.join(BUFFER_HOOKS)}): {', '.join(map(repr, missing))}. Add a rule with "
            "kind='buffer' for them, or define reset_buffers() on their module."
        )
    if extra:
        # Hooks draw no random numbers: running them after the planned tensors changes no value.
        p = replace(p, entries=(*p.entries, *extra))

    def empty(entry: PlanEntry, tensor: torch.Tensor) -> torch.Tensor:
        return torch.empty(entry.shape, dtype=tensor.dtype, device=device)

    values = fill_values(model, p, generator=generator, empty=empty, device=device)

    # Everything that will be stored is made before the first swap: the new tensors (tied names
    # get the same new Parameter), then what was neither planned nor on meta (kept parameters,
    # real buffers), moved to the device. A failure up to here has touched nothing.
    swaps: list[tuple[dict, str, torch.Tensor]] = []
    with torch.no_grad():
        for e in p:
            if e.name not in values:
                continue
            new = values[e.name]
            marks = marks_of(new)
            if e.kind == "parameter":
                new = torch.nn.Parameter(new, requires_grad=stored(model, e).requires_grad)
            for key, mark in marks.items():
                setattr(new, key, mark)
            for name in (e.name, *e.aliases):
                module_name, _, local = name.rpartition(".")
                owner = model.get_submodule(module_name) if module_name else model
                swaps.append((owner._parameters if e.kind == "parameter" else owner._buffers, local, new))
        replaced = {(id(store), local) for store, local, _ in swaps}
        moved: dict[int, torch.Tensor] = {}
        for module in model.modules():
            for store in (module._parameters, module._buffers):
                for local, t in list(store.items()):
                    if t is None or t.device == device or t.is_meta or (id(store), local) in replaced:
                        continue
                    if id(t) not in moved:
                        data = t.detach().to(device)
                        moved[id(t)] = (
                            torch.nn.Parameter(data, t.requires_grad) if isinstance(t, torch.nn.Parameter) else data
                        )
                    swaps.append((store, local, moved[id(t)]))
    _swap_all(swaps)
    return p.with_source(source_of(p.seed, generator))


def _swap_all(swaps: list[tuple[dict, str, torch.Tensor]]) -> None:
    """Store every new tensor; on any exception (a deferred Ctrl-C included) put the old ones back."""
    done: list[tuple[dict, str, torch.Tensor | None]] = []
    with sigint_deferred() as interrupted:
        try:
            for store, local, new in swaps:
                done.append((store, local, store[local]))
                store[local] = new
            if interrupted():
                raise KeyboardInterrupt
        except BaseException:
            for store, local, old in reversed(done):
                store[local] = old
            raise
