"""``fanin.apply``: execute a plan, atomically, and return it as the record of what was done.

**Atomicity.** A failure leaves the model bitwise as it was; the guarantee is built in layers:

1. The plan is resolved and checked first (:func:`fanin.plan`: every scheme's own checks at each
   tensor's shape and dtype, shared memory between tensors, stream-key collisions).
2. Every destination is checked before the first write (:func:`fanin.planning.guards.check_destination`):
   not on meta, not an inference tensor, not an expanded or self-overlapping view, dense, of the
   planned shape and dtype; a scheme with its own seed is refused with ``generator=``.
3. Every new value is computed into a fresh tensor (``torch.empty_like`` of the parameter, so a
   DTensor parameter gets a DTensor with the same mesh and placements and the sampling seam fills
   only its local shard); a ``reset_parameters`` entry runs the module's method on a copy of the
   module (:func:`fanin.planning.executor.module_copy`: its tensors cloned, nothing pickled). A failure here names the
   tensor, the module and the rule (:class:`~fanin.errors.ApplyError`, the original exception
   chained) and nothing has been written.
4. Only then are the values copied into the parameters (``copy_`` under ``no_grad``; the
   parameter objects, their types, ``requires_grad`` and placements stay). Each destination's old
   value is kept as it is overwritten; if a copy still fails, or Ctrl-C arrives (SIGINT is
   deferred during the commit, in the main thread, while Python's default handler is installed),
   everything written is put back and the exception (``KeyboardInterrupt``) re-raised.

The price is transient memory: the new values of all planned tensors, about the size of the
planned parameters, plus one tensor during the commit (each kept old value replaces a new value
that is dropped once written); and time: the commit copies each tensor twice, its old value out
and its new value in (a memory-bound pass, small beside drawing the values).

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

import torch

from fanin.errors import ApplyError
from fanin.planning.executor import (
    check_random_source,
    fill_values,
    marks_of,
    sigint_deferred,
    source_of,
    stored,
    where,
)
from fanin.planning.guards import check_destination
from fanin.planning.records import Plan, PlanEntry
from fanin.planning.resolve import resolve_plan

__all__ = ["apply", "commit"]


def _write(destination: torch.Tensor, value: torch.Tensor) -> None:
    destination.copy_(value)


def commit(writes: list[tuple[str, torch.Tensor]], values: dict[str, torch.Tensor]) -> None:
    """Copy ``values[name]`` into each destination of ``writes``, all or nothing.

    Each destination's old value is cloned just before it is overwritten (and each new value
    dropped once written); on any exception, ``KeyboardInterrupt`` and a deferred Ctrl-C included,
    the destinations written so far are restored in reverse order and the exception re-raised.
    """
    done: list[tuple[torch.Tensor, torch.Tensor]] = []
    with sigint_deferred() as interrupted, torch.no_grad():
        try:
            for name, destination in writes:
                if interrupted():
                    raise KeyboardInterrupt
                done.append((destination, destination.detach().clone()))
                _write(destination, values.pop(name))
            if interrupted():
                raise KeyboardInterrupt
        except BaseException as err:
            try:
                for destination, old in reversed(done):
                    destination.copy_(old)
            except BaseException as restore_err:
                raise ApplyError(
                    f"Writing the model failed ({type(err).__name__}: {err}) and restoring the tensors written "
                    f"before it failed too ({type(restore_err).__name__}: {restore_err}): the model may be partly "
                    f"written"
                ) from restore_err
            raise


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

    Args:
        model: The model whose parameters (and the buffers a rule covers) are written, in place.
        rules_or_plan: Rules as :func:`fanin.plan` takes them (a preset name, a mapping
            ``{name glob: scheme}``, a list of rules, ...), resolved on ``model`` first; or a
            :class:`Plan` already resolved on this model, checked against it.
        seed: One counter stream per tensor, keyed by ``(seed, canonical name)``; an int in
            ``[0, 2**64)``.
        generator: One ``torch.Generator`` drawn in plan order; not together with ``seed``.
        leftovers: The policy for parameters no rule matches (``"error"``, ``"keep"``,
            ``"reset_parameters"``), as in :func:`fanin.plan`; only with rules, not with a plan.

    Returns:
        The plan that was executed, its ``source`` set to ``"stream"``, ``"generator"`` or
        ``"global"``.

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``, the random source is not one of the
            three, or ``leftovers`` is given with a plan.
        ValueError: A planned tensor is on the meta device (use :func:`fanin.materialize`), or
            ``seed`` differs from the seed the plan was resolved with.
        RuleError: The rules cannot be resolved on ``model`` (see :func:`fanin.plan`).
        PlanMismatchError: The plan does not describe ``model``.
        ApplyError: A destination cannot be written, a value cannot be computed, or a scheme
            with its own seed is given a ``generator``; nothing was written.

    Examples:
        >>> import torch, fanin
        >>> model = torch.nn.Linear(5, 3)
        >>> g = torch.Generator().manual_seed(0)
        >>> _ = fanin.apply(model, {"weight": "xavier_normal", "bias": "zeros"}, generator=g)
        >>> reference = torch.nn.init.xavier_normal_(torch.empty(3, 5), generator=torch.Generator().manual_seed(0))
        >>> torch.equal(model.weight, reference)
        True
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"apply needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    check_random_source(seed, generator)
    p = resolve_plan(model, rules_or_plan, seed, leftovers)
    writes: list[tuple[str, torch.Tensor]] = []
    for e in p:
        if e.action == "keep":
            continue
        tensor = stored(model, e)
        if tensor.is_meta:
            raise ValueError(
                f"{e.name!r} is on the meta device: apply writes into existing storage; use "
                "fanin.materialize(model, rules, device=...) for a model built on meta"
            )
        check_destination(e.name, where(e), tensor, e.shape, e.dtype)
        if generator is not None and e.scheme is not None and e.scheme.arguments.get("seed") is not None:
            rule = f"#{e.rule_index} {e.rule}" if e.rule_index is not None else e.rule
            raise ApplyError(
                f"Cannot write {e.name!r} ({where(e)}): rule {rule!r} uses {e.scheme}, which draws from its own "
                f"seed, and apply was given generator={generator!r}; drop one of the two. Nothing was written."
            )
        writes.append((e.name, tensor))

    def empty(entry: PlanEntry, tensor: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(tensor.detach())

    values = fill_values(model, p, generator=generator, empty=empty)
    marks = {name: marks_of(values[name]) for name, _ in writes}
    for name, tensor in writes:
        value = values[name]
        if value.dtype != tensor.dtype:
            raise ApplyError(
                f"Cannot write {name!r}: its new value has dtype={value.dtype}, the tensor dtype={tensor.dtype}. "
                "Nothing was written."
            )
    commit(writes, values)
    for name, tensor in writes:
        for key, mark in marks[name].items():
            setattr(tensor, key, mark)
    return p.with_source(source_of(p.seed, generator))
