"""Tensor access for plan execution: where an entry's tensor lives, its random source, and its new value.

Everything :func:`fanin.apply` and :func:`fanin.materialize` do to a model's tensors goes through
here: the one check of the random source (:func:`check_random_source`: ``seed=`` or
``generator=``, not both), the stream key of a tensor (:func:`stream_key`, recorded on the entry as
:attr:`PlanEntry.stream` and read back by :func:`random_source`), the owner and the stored tensor
of an entry, the new values computed without touching the model (:func:`fill_values`, with
:func:`module_copy` for a module's own re-initialization), and Ctrl-C held during a commit
(:func:`sigint_deferred`).

>>> import torch
>>> check_random_source(0, torch.Generator())  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
TypeError: pass seed= (one counter stream per tensor) or generator= (one torch.Generator in plan order), not both; got
seed=0 and generator=<torch._C.Generator object at ...>
>>> stream_key(7, "module.layer.weight")
(7, 'layer.weight')
"""

from __future__ import annotations

import contextlib
import copy
import signal
import threading
from collections.abc import Callable, Iterator

import torch

from fanin.errors import ApplyError
from fanin.planning.records import Plan, PlanEntry
from fanin.rng.stream import Stream, canonical_name
from fanin.rules.selectors import Target

__all__ = [
    "check_random_source",
    "fill_values",
    "marks_of",
    "module_copy",
    "owner",
    "random_source",
    "reset_method",
    "sigint_deferred",
    "source_of",
    "stored",
    "stream_key",
    "target_tensor",
    "where",
]


def check_random_source(seed: object, generator: object = None) -> None:
    """``TypeError`` unless the random source is one of: ``seed`` an int in [0, 2**64) (a counter
    stream per tensor), ``generator`` a ``torch.Generator`` (one in plan order), or neither."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise TypeError(f"seed must be None or an int in [0, 2**64), got seed={seed!r} ({type(seed).__name__})")
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


def source_of(seed: int | None, generator: torch.Generator | None) -> str:
    """The plan's ``source`` for this random source (:data:`fanin.planning.records.SOURCES`)."""
    return "stream" if seed is not None else "generator" if generator is not None else "global"


def stream_key(seed: int | None, name: str) -> tuple[int, str] | None:
    """The counter-stream key of tensor ``name``: ``(seed, canonical name)``, ``None`` without a seed."""
    return None if seed is None else (seed, canonical_name(name))


def random_source(entry: PlanEntry, generator: torch.Generator | None) -> Stream | torch.Generator | None:
    """What the entry's scheme draws from: its counter stream (the key the plan recorded), else ``generator``."""
    return Stream(*entry.stream) if entry.stream is not None else generator


def reset_method(module: torch.nn.Module) -> Callable[[], None] | None:
    """The module's own re-initialization: ``reset_parameters`` or ``_reset_parameters`` (MultiheadAttention)."""
    for attr in ("reset_parameters", "_reset_parameters"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    return None


def target_tensor(module: torch.nn.Module, target: Target) -> torch.Tensor:
    """The tensor ``target`` names in ``module`` (a parameter or a buffer)."""
    store = module._parameters if target.kind == "parameter" else module._buffers
    return store[target.local]  # type: ignore[return-value]


def owner(model: torch.nn.Module, entry: PlanEntry) -> torch.nn.Module:
    """The module that holds the entry's tensor."""
    return model.get_submodule(entry.module) if entry.module else model


def stored(model: torch.nn.Module, entry: PlanEntry) -> torch.Tensor:
    """The entry's tensor as the model stores it now."""
    module = owner(model, entry)
    return (module._parameters if entry.kind == "parameter" else module._buffers)[entry.local]  # type: ignore[return-value]


def where(entry: PlanEntry) -> str:
    """The entry's module, for messages: ``Linear '0'``."""
    return f"{entry.module_type} {entry.module or '<root>'!r}"


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


def _reset_copy(
    module: torch.nn.Module, hook: str | None = None, device: torch.device | None = None
) -> torch.nn.Module:
    """A copy of ``module`` with its own re-initialization run (on ``device`` when it is on meta)."""
    clone = module_copy(module)
    if device is not None:
        clone = clone.to_empty(device=device)
    with torch.no_grad():
        if hook is None:
            reset = reset_method(clone)
            if reset is None:
                raise TypeError(f"{type(clone).__name__} has no reset_parameters() or _reset_parameters()")
            reset()
        else:
            getattr(clone, hook)()
    return clone


def fill_values(
    model: torch.nn.Module,
    p: Plan,
    *,
    generator: torch.Generator | None,
    empty: Callable[[PlanEntry, torch.Tensor], torch.Tensor],
    device: torch.device | None = None,
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
            groups.setdefault((id(owner(model, e)), e.hook if e.action == "hook" else None), []).append(e)
    for e in p:
        if e.action == "keep" or e.name in values:
            continue
        module = owner(model, e)
        tensor = stored(model, e)
        if e.action == "scheme":
            try:
                new = empty(e, tensor)
                e.scheme(new, generator=random_source(e, generator))  # type: ignore[misc]
            except Exception as err:
                rule = f"#{e.rule_index} {e.rule}" if e.rule_index is not None else e.rule
                raise ApplyError(
                    f"Cannot compute {e.name!r} ({where(e)}) by rule {rule!r} ({e.init}): "
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
def sigint_deferred() -> Iterator[Callable[[], bool]]:
    """Hold Ctrl-C while the block runs; the block polls ``interrupted()`` at safe points.

    Only in the main thread and only over Python's default handler (another handler is the
    program's own business and is left alone; the commit still restores on any exception).
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
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
