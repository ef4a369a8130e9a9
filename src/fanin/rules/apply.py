"""``fanin.apply``: execute a plan, atomically, and return it as the record of what was done.

**Atomicity.** A failure leaves the model bitwise as it was; the guarantee is built in layers:

1. The plan is resolved and checked first (:func:`fanin.plan`: every scheme's own checks at each
   tensor's shape and dtype, shared memory between tensors, stream-key collisions).
2. Every destination is checked before the first write (:func:`fanin.rules.guards.check_destination`):
   not on meta, not an inference tensor, not an expanded or self-overlapping view, dense, of the
   planned shape and dtype; a scheme with its own seed is refused with ``generator=``.
3. Every new value is computed into a fresh tensor (``torch.empty_like`` of the parameter, so a
   DTensor parameter gets a DTensor with the same mesh and placements and the sampling seam fills
   only its local shard); a ``reset_parameters`` entry runs the module's method on a copy of the
   module (:func:`module_copy`: its tensors cloned, nothing pickled). A failure here names the
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

import contextlib
import copy
import signal
import threading
from collections.abc import Callable, Iterator

import torch

from fanin.errors import ApplyError
from fanin.rng.stream import Stream, canonical_name
from fanin.rules.guards import check_destination
from fanin.rules.plan import (
    Plan,
    PlanEntry,
    PlanMismatchError,
    _check_seed,
    check_independent,
    collect_targets,
    plan,
    reset_method,
)

__all__ = ["apply", "commit", "fill_values", "module_copy"]


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


def _source(seed, generator) -> str:
    return "stream" if seed is not None else "generator" if generator is not None else "global"


def _owner(model: torch.nn.Module, entry: PlanEntry) -> torch.nn.Module:
    return model.get_submodule(entry.module) if entry.module else model


def _where(entry: PlanEntry) -> str:
    return f"{entry.module_type} {entry.module or '<root>'!r}"


def _stored(model: torch.nn.Module, entry: PlanEntry) -> torch.Tensor:
    module = _owner(model, entry)
    return (module._parameters if entry.kind == "parameter" else module._buffers)[entry.local]  # type: ignore[return-value]


def _clone_tensor(tensor: torch.Tensor, memo: dict[int, object]) -> torch.Tensor:
    if id(tensor) not in memo:
        data = tensor.detach().clone()
        if isinstance(tensor, torch.nn.Parameter):
            data = torch.nn.Parameter(data, requires_grad=tensor.requires_grad)
        memo[id(tensor)] = data
    return memo[id(tensor)]  # type: ignore[return-value]


def module_copy(module: torch.nn.Module, memo: dict[int, object] | None = None) -> torch.nn.Module:
    """A copy of ``module`` that its own re-initialization can run on without touching ``module``.

    Its parameters and buffers are clones (tied ones stay tied), its submodules copies made the
    same way, the containers in its ``__dict__`` (hook tables, lists) shallow copies; every other
    attribute is shared. Nothing is pickled or deep-copied, so a module holding a lock, a file or a
    process handle can be copied (``copy.deepcopy`` fails on those with "cannot pickle").

    >>> import threading, torch
    >>> layer = torch.nn.Linear(3, 2)
    >>> layer.lock = threading.Lock()
    >>> clone = module_copy(layer)
    >>> clone.weight is layer.weight, torch.equal(clone.weight, layer.weight), clone.lock is layer.lock
    (False, True, True)
    """
    memo = {} if memo is None else memo
    if id(module) in memo:
        return memo[id(module)]  # type: ignore[return-value]
    clone = copy.copy(module)  # a new object with a shallow copy of __dict__: no pickling
    memo[id(module)] = clone
    state = clone.__dict__
    for key, value in list(state.items()):
        if isinstance(value, (dict, list, set)) and key not in ("_parameters", "_buffers", "_modules"):
            state[key] = copy.copy(value)
    state["_parameters"] = {k: None if t is None else _clone_tensor(t, memo) for k, t in module._parameters.items()}
    state["_buffers"] = {k: None if t is None else _clone_tensor(t, memo) for k, t in module._buffers.items()}
    state["_modules"] = {k: None if m is None else module_copy(m, memo) for k, m in module._modules.items()}
    return clone


def _reset_copy(module: torch.nn.Module, hook: str | None = None, device=None) -> torch.nn.Module:
    """A copy of ``module`` with its own re-initialization run (on ``device`` when it is on meta)."""
    clone = module_copy(module)
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

    ``empty(entry, tensor)`` makes the fresh tensor a scheme fills. A failure is an
    :class:`~fanin.errors.ApplyError` naming the tensor, its module and the rule, with the
    original exception as its cause; ``KeyboardInterrupt`` propagates as it is.
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
        tensor = _stored(model, e)
        if e.action == "scheme":
            try:
                new = empty(e, tensor)
                gen = Stream(p.seed, canonical_name(e.name)) if p.seed is not None else generator
                e.scheme(new, generator=gen)  # type: ignore[misc]
            except Exception as err:
                rule = f"#{e.rule_index} {e.rule}" if e.rule_index is not None else e.rule
                raise ApplyError(
                    f"Cannot compute {e.name!r} ({_where(e)}) by rule {rule!r} ({e.init}): "
                    f"{type(err).__name__}: {err}. Nothing was written."
                ) from err
            values[e.name] = new
            continue
        hook = e.hook if e.action == "hook" else None
        try:
            clone = _reset_copy(module, hook, device if tensor.is_meta else None)
        except Exception as err:
            raise ApplyError(
                f"Cannot compute {e.name!r}: {e.init} of module {e.module or '<root>'!r} raised "
                f"{type(err).__name__}: {err}. Nothing was written."
            ) from err
        for member in groups[(id(module), hook)]:
            source = clone._parameters if member.kind == "parameter" else clone._buffers
            value = source.get(member.local)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != member.shape:
                got = "no tensor" if not isinstance(value, torch.Tensor) else f"shape={tuple(value.shape)}"
                raise ApplyError(
                    f"Cannot compute {member.name!r}: {member.init} of module {member.module or '<root>'!r} left "
                    f"{got} for it, planned as shape={member.shape}. Nothing was written."
                )
            values[member.name] = value.detach()
        del clone
    return values


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[Callable[[], bool]]:
    """Hold Ctrl-C while the block runs; the block polls ``interrupted()`` at safe points.

    Only in the main thread and only over Python's default handler (another handler is the
    program's own business and is left alone; the commit still restores on any exception).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield lambda: False
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGINT, previous)


def marks_of(value: torch.Tensor) -> dict[str, object]:
    """The attributes a scheme set on the tensor it filled that fanin reads later (names starting
    with ``_fanin``, e.g. the ``"lsuv"`` scheme's mark): they travel with the values to the model."""
    return {k: v for k, v in getattr(value, "__dict__", {}).items() if k.startswith("_fanin")}


def _write(destination: torch.Tensor, value: torch.Tensor) -> None:
    destination.copy_(value)


def commit(writes: list[tuple[str, torch.Tensor]], values: dict[str, torch.Tensor]) -> None:
    """Copy ``values[name]`` into each destination of ``writes``, all or nothing.

    Each destination's old value is cloned just before it is overwritten (and each new value
    dropped once written); on any exception, ``KeyboardInterrupt`` and a deferred Ctrl-C included,
    the destinations written so far are restored in reverse order and the exception re-raised.
    """
    done: list[tuple[torch.Tensor, torch.Tensor]] = []
    with _sigint_deferred() as interrupted, torch.no_grad():
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
                    f"before it failed too ({type(restore_err).__name__}: {restore_err}): the model may be partly written"
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
    writes: list[tuple[str, torch.Tensor]] = []
    for e in p:
        if e.action == "keep":
            continue
        tensor = _stored(model, e)
        if tensor.is_meta:
            raise ValueError(
                f"{e.name!r} is on the meta device: apply writes into existing storage; use "
                "fanin.materialize(model, rules, device=...) for a model built on meta"
            )
        check_destination(e.name, _where(e), tensor, e.shape, e.dtype)
        if generator is not None and e.scheme is not None and e.scheme.arguments.get("seed") is not None:
            rule = f"#{e.rule_index} {e.rule}" if e.rule_index is not None else e.rule
            raise ApplyError(
                f"Cannot write {e.name!r} ({_where(e)}): rule {rule!r} uses {e.scheme}, which draws from its own "
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
    return p.with_source(_source(p.seed, generator))
