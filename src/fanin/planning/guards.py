"""What must hold before a plan writes anything: checks shared by ``plan``, ``apply`` and ``materialize``.

- **Shared storage** (:func:`overlapping_tensors`): two distinct tensors of a model whose memory
  overlaps (``p2 = nn.Parameter(p1[:2])``) cannot both be initialized independently: writing one
  changes the other, so the plan would record values that are not there. A plan that writes
  either of them is refused. Tied parameters (one object under two names) are not this: they are
  planned once, under their first name, with the others as aliases. The check compares byte
  ranges within one storage, so two interleaved views that share no element (``w[::2]`` and
  ``w[1::2]``) are refused too; give such tensors their own storage.
- **Stream keys** (:func:`colliding_keys`): with a seed every tensor draws from
  ``Stream(seed, canonical_name(name))``; two tensors whose canonical names agree (a submodule
  named ``module`` beside a top-level ``weight``: ``module.weight`` and ``weight`` both key as
  ``weight``) would get identical values, so the plan is refused.
- **Destinations** (:func:`check_destination`): a tensor ``apply`` writes into must take the
  write: not an inference tensor, not an expanded or self-overlapping view (stride 0), strided
  (not sparse), of the planned shape and dtype.

>>> import torch
>>> p1 = torch.nn.Parameter(torch.ones(4))
>>> p2 = torch.nn.Parameter(p1[:2])
>>> overlapping_tensors([("a", p1), ("b", p2), ("c", torch.nn.Parameter(torch.ones(2)))])
[('a', 'b')]
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from fanin.errors import ApplyError
from fanin.rules.targets import is_uninitialized

__all__ = ["check_destination", "colliding_keys", "overlapping_tensors", "storage_span"]


def storage_span(tensor: torch.Tensor) -> tuple[tuple[str, int], int, int] | None:
    """``((device, storage address), first byte, end byte)`` of the memory ``tensor`` can reach.

    ``None`` for tensors without memory of their own to compare: meta, zero-element, lazy, and
    wrapper subclasses (DTensor) whose storage is not exposed.
    """
    if tensor.is_meta or is_uninitialized(tensor) or tensor.numel() == 0 or tensor.layout != torch.strided:
        return None
    try:
        address = tensor.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError, TypeError):
        return None
    if address == 0:
        return None
    item = tensor.element_size()
    reach = sum((int(size) - 1) * abs(int(stride)) for size, stride in zip(tensor.shape, tensor.stride(), strict=True))
    start = int(tensor.storage_offset()) * item
    return (str(tensor.device), address), start, start + (reach + 1) * item


def overlapping_tensors(named: Iterable[tuple[str, torch.Tensor]]) -> list[tuple[str, str]]:
    """Pairs ``(earlier, later)`` of distinct tensors whose memory ranges overlap, in input order.

    ``named`` lists each tensor object once. Within one storage, ranges are swept by their first
    byte against those still open: linear after sorting, plus the pairs found.
    """
    by_storage: dict[tuple[str, int], list[tuple[int, int, int, str]]] = {}
    for order, (name, tensor) in enumerate(named):
        span = storage_span(tensor)
        if span is not None:
            key, start, end = span
            by_storage.setdefault(key, []).append((start, end, order, name))
    pairs: list[tuple[int, str, int, str]] = []
    for ranges in by_storage.values():
        if len(ranges) < 2:
            continue
        ranges.sort()
        active: list[tuple[int, int, str]] = []  # (end, order, name) of ranges that may still overlap
        for start, end, order, name in ranges:
            active = [a for a in active if a[0] > start]
            for _, other_order, other_name in active:
                first, second = sorted(((other_order, other_name), (order, name)))
                pairs.append((first[0], first[1], second[0], second[1]))
            active.append((end, order, name))
    return [(a, b) for _, a, _, b in sorted(pairs)]


def colliding_keys(keys: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``(key, first name, second name)`` for names (given as ``(name, key)``) that share a key."""
    seen: dict[str, str] = {}
    out = []
    for name, key in keys:
        if key in seen:
            out.append((key, seen[key], name))
        else:
            seen[key] = name
    return out


def _has_internal_overlap(tensor: torch.Tensor) -> bool:
    # torch's own test (aten has_internal_overlap), which copy_ applies: YES only when certain.
    check = getattr(torch, "_debug_has_internal_overlap", None)
    if check is not None:
        return check(tensor) == 1
    return any(stride == 0 and size > 1 for size, stride in zip(tensor.shape, tensor.stride(), strict=True))


def check_destination(name: str, where: str, tensor: torch.Tensor, shape: tuple[int, ...], dtype: str) -> None:
    """``ApplyError`` unless ``tensor`` (planned as ``shape``/``dtype``) can be written in place.

    ``where`` says which module holds it, for the message.
    """
    problem = None
    if tensor.is_inference():
        problem = (
            "is an inference tensor (made under torch.inference_mode()), which cannot be written outside "
            "inference mode; build or load the model outside inference_mode"
        )
    elif tensor.layout != torch.strided:
        problem = f"has layout {tensor.layout}; fanin writes dense (strided) tensors"
    elif tuple(tensor.shape) != tuple(shape) or str(tensor.dtype).replace("torch.", "") != dtype:
        problem = (
            f"is now {tuple(tensor.shape)} {str(tensor.dtype).replace('torch.', '')}, but was planned as "
            f"{tuple(shape)} {dtype}; plan again"
        )
    elif _has_internal_overlap(tensor):
        problem = (
            f"is an expanded or self-overlapping view (stride={tuple(tensor.stride())} for "
            f"shape={tuple(tensor.shape)}): "
            "several of its elements are one memory location, so it cannot hold independent values; "
            "give it its own storage (e.g. nn.Parameter(tensor.clone()))"
        )
    if problem is not None:
        raise ApplyError(f"Cannot write {name!r} ({where}): it {problem}. Nothing was written.")
