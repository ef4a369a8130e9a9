r"""Sharded parameters: a scheme on a DTensor fills only the local shard, with the counter stream.

A ``torch.distributed.tensor.DTensor`` (tensor parallel ``distribute_tensor``, FSDP2
``fully_shard``) reports its *global* shape, so every scheme computes its fans, bounds and
structure as for the unsharded parameter. Only the random source needs to know about shards:
the local shard of rank ``r`` is the union of boxes of the global tensor, and
:meth:`fanin.Stream.fill_` fills a box with ``full_shape=global, offsets=box corner`` bit for bit
as the full generation fills that part. Gathered (``full_tensor()``), the parameter equals the
single-process init with the same seed, for any mesh, placements and world size.

Where each kind of scheme goes (:func:`call_scheme`, reached from ``Scheme.__call__``):

- element-local schemes (``SchemeEntry.element_local``: the uniform, normal and truncated-normal
  families of torch, Keras, TF 1.x and JAX, and torch's scalar constants, as each framework's
  record declares) run on the DTensor itself; their draws reach :func:`fill_` and touch only
  local memory, no communication, cost proportional to the local shard.
- every other scheme (orthogonal, identity/eye/dirac, sparse, array constants, fanin's gate and
  padded schemes, schemes registered elsewhere) needs the whole value: each rank computes the
  full parameter from the same stream in a scratch tensor and keeps its slice
  (:func:`fill_from_full`). No communication and bit-identical by construction; the cost is one
  full-size scratch tensor per rank and, for orthogonal, a QR of the whole ``rows x cols``
  matrix in float64 on every rank
  (O(rows * cols * min(rows, cols)) flops: about 1 s for 2048 x 2048 on one core of the
  development machine, against 0.03 s for a normal fill of the same size). Scattering
  from rank 0 would save the flops on other ranks but costs a collective per parameter, and the
  float64 Gaussian is the stream's anyway, so every rank computing it is the simpler choice.

A ``torch.Generator`` (or ``None``, torch's global RNG) cannot give a sharded parameter the values
of its unsharded twin: DTensor's own RNG makes the values depend on the layout. Random draws into
a DTensor therefore require a :class:`fanin.Stream` (``fanin.apply(..., seed=...)``) and raise
``TypeError`` otherwise; constant and identity schemes accept any generator.

Placements: ``Shard(d)``, ``Replicate`` and ``_StridedShard`` (FSDP2 x TP) on meshes of any
dimension, even or uneven (``torch.chunk`` sizes: 7 rows over 4 ranks are 2, 2, 2, 1).
``Partial`` has no values of its own and is refused.

>>> shard_boxes((7, 5), mesh_shape=(4,), coordinate=(3,), placements=[("shard", 0)])
[Box(local=(slice(0, 1, None), slice(0, 5, None)), offsets=(6, 0), shape=(1, 5))]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import product
from typing import TYPE_CHECKING, Any, NamedTuple, TypeGuard

import torch

if TYPE_CHECKING:
    from torch.distributed.tensor import DTensor

__all__ = [
    "Box",
    "call_scheme",
    "check_generator_for",
    "fill_",
    "fill_from_full",
    "is_dtensor",
    "local_boxes",
    "orthogonal_",
    "shard_boxes",
]

_DRAWLESS_FAMILIES = ("constant", "identity")


class Box(NamedTuple):
    """One contiguous box of a local shard: where it sits in the local tensor and in the global one.

    ``local`` indexes the local tensor, ``offsets`` is the box's corner in the global tensor and
    ``shape`` its size (the same in both).
    """

    local: tuple[slice, ...]
    offsets: tuple[int, ...]
    shape: tuple[int, ...]


def is_dtensor(tensor: object) -> TypeGuard[DTensor]:
    """True for a ``torch.distributed.tensor.DTensor``; cheap, never imports torch.distributed.

    No DTensor can exist before ``torch.distributed.tensor`` is imported, so the check looks the
    module up in ``sys.modules`` instead of importing it.

    >>> is_dtensor(torch.zeros(2))
    False
    """
    mod = sys.modules.get("torch.distributed.tensor")
    return mod is not None and isinstance(tensor, mod.DTensor)


# ------------------------------------------------------------------------------- geometry


def _placement_kind(placement: Any) -> tuple[str, int | None]:
    """``("shard", dim)``, ``("strided", dim)``, ``("replicate", None)`` or ``("partial", None)``."""
    if isinstance(placement, tuple):  # the plain form used by tests and docs: ("shard", 0)
        return placement[0], (placement[1] if len(placement) > 1 else None)
    name = type(placement).__name__
    if name == "_StridedShard":
        return "strided", placement.dim
    if placement.is_shard():
        return "shard", placement.dim
    if placement.is_replicate():
        return "replicate", None
    return "partial", None


def _runs(indices: Sequence[int]) -> list[tuple[int, int, int]]:
    """Maximal runs of consecutive global indices: ``(local start, global start, length)``."""
    runs: list[tuple[int, int, int]] = []
    for pos, g in enumerate(indices):
        if runs and runs[-1][1] + runs[-1][2] == g:
            lo, gs, n = runs[-1]
            runs[-1] = (lo, gs, n + 1)
        else:
            runs.append((pos, g, 1))
    return runs


def shard_boxes(
    global_shape: Sequence[int],
    *,
    mesh_shape: Sequence[int],
    coordinate: Sequence[int],
    placements: Sequence[Any],
) -> list[Box]:
    """The boxes that make up the local shard at mesh ``coordinate``, in local row-major order.

    Placements apply from mesh dim 0 on, each splitting what the previous ones left of its tensor
    dim into ``mesh_shape[m]`` chunks of ``ceil(n / k)`` (``torch.chunk``; trailing chunks may be
    short or empty), exactly as ``torch.distributed.tensor`` lays shards out. A ``Shard`` leaves
    one contiguous range per dim, so one box; a ``_StridedShard`` can leave several runs.
    ``placements`` are DTensor placements or plain ``("shard", dim)`` / ``("replicate",)`` tuples.

    >>> shard_boxes((6, 4), mesh_shape=(2, 2), coordinate=(1, 0), placements=[("shard", 0), ("shard", 1)])
    [Box(local=(slice(0, 3, None), slice(0, 2, None)), offsets=(3, 0), shape=(3, 2))]
    >>> shard_boxes((7,), mesh_shape=(4,), coordinate=(2,), placements=[("replicate",)])
    [Box(local=(slice(0, 7, None),), offsets=(0,), shape=(7,))]
    """
    shape = tuple(int(n) for n in global_shape)
    if len(mesh_shape) != len(placements) or len(coordinate) != len(placements):
        raise ValueError(
            "mesh_shape, coordinate and placements need one entry per mesh dim, got "
            f"mesh_shape={tuple(mesh_shape)}, coordinate={tuple(coordinate)}, placements={list(placements)}"
        )
    dims: list[Sequence[int]] = [range(n) for n in shape]
    for m, placement in enumerate(placements):
        kind, d = _placement_kind(placement)
        if kind == "replicate":
            continue
        if kind == "partial":
            raise ValueError(
                f"a Partial placement holds pending reductions, not values: cannot initialize a "
                f"DTensor with placements={list(placements)}; accepted: Shard(d), Replicate"
            )
        if d is None or not -len(shape) <= d < len(shape):
            raise ValueError(f"shard dim out of range for global_shape={shape}: placement={placement!r}")
        d %= len(shape)
        k, r = int(mesh_shape[m]), int(coordinate[m])
        cur = dims[d]
        if kind == "shard":
            chunk = -(-len(cur) // k) if len(cur) else 0
            start = min(r * chunk, len(cur))
            dims[d] = cur[start : min(start + chunk, len(cur))]
        elif kind == "strided":
            from torch.distributed.tensor.placement_types import _StridedShardOffsetMode

            _, rel = placement._local_shard_size_and_offset(len(cur), k, r, offset_mode=_StridedShardOffsetMode.ALL)
            dims[d] = [cur[i] for i in rel]
        else:
            raise ValueError(f"unknown placement kind {kind!r} in placements={list(placements)}")
    per_dim = [_runs(ix) for ix in dims]
    if any(not runs for runs in per_dim):  # an empty shard
        empty = tuple(slice(0, len(ix)) for ix in dims)
        return [Box(empty, tuple(0 for _ in shape), tuple(len(ix) for ix in dims))]
    return [
        Box(
            tuple(slice(lo, lo + n) for lo, _, n in combo),
            tuple(g for _, g, _ in combo),
            tuple(n for _, _, n in combo),
        )
        for combo in product(*per_dim)
    ]


def local_boxes(dtensor: DTensor) -> list[Box]:
    """:func:`shard_boxes` of this rank's shard of ``dtensor``; checked against its local tensor."""
    mesh = dtensor.device_mesh
    coordinate = mesh.get_coordinate()
    if coordinate is None:  # this rank is not part of the mesh: it holds nothing
        return []
    boxes = shard_boxes(
        tuple(dtensor.shape), mesh_shape=tuple(mesh.shape), coordinate=coordinate, placements=dtensor.placements
    )
    local_shape = tuple(dtensor.to_local().shape)
    covered = tuple(max((b.local[d].stop for b in boxes), default=0) for d in range(len(local_shape)))
    if covered != local_shape:
        raise RuntimeError(
            f"the local shard has shape={local_shape} but placements={list(dtensor.placements)} on "
            f"mesh shape={tuple(mesh.shape)} give {covered} for global shape={tuple(dtensor.shape)}"
        )
    return boxes


# --------------------------------------------------------------------------------- fills


def check_generator_for(tensor: torch.Tensor, generator: object) -> None:
    """``TypeError`` if ``tensor`` is a DTensor and ``generator`` is not a :class:`fanin.Stream`.

    >>> check_generator_for(torch.zeros(2), None)  # plain tensors take any generator
    """
    if not is_dtensor(tensor):
        return
    from fanin.rng.stream import Stream

    if not isinstance(generator, Stream):
        raise TypeError(
            "a sharded parameter (DTensor) is initialized reproducibly only from the counter stream: "
            "pass seed=... to fanin.apply/materialize or generator=fanin.Stream(seed, name), got "
            f"generator={generator!r}"
        )


def fill_(stream: Any, dtensor: DTensor, transform: Any, **box: Any) -> torch.Tensor:
    """Fill the local shard of ``dtensor`` with ``transform`` of ``stream``; no communication.

    Element ``(i, j, ...)`` of the global tensor gets ``stream``'s value at its global row-major
    index, so ``dtensor.full_tensor()`` equals ``stream.fill_(torch.empty(global_shape), transform)``.
    """
    if any(v is not None for v in box.values()):
        raise TypeError(
            "a DTensor already knows its place in the full parameter: give no full_shape/offsets/index, got "
            + ", ".join(f"{k}={v!r}" for k, v in box.items() if v is not None)
        )
    full = tuple(dtensor.shape)
    local = dtensor.to_local()
    for b in local_boxes(dtensor):
        if 0 in b.shape:
            continue
        stream.fill_(local[b.local], transform, full_shape=full, offsets=b.offsets)
    return dtensor


def fill_from_full(dtensor: DTensor, full: torch.Tensor) -> torch.Tensor:
    """Copy this rank's part of ``full`` (a plain tensor of the global shape) into ``dtensor``."""
    if tuple(full.shape) != tuple(dtensor.shape):
        raise ValueError(f"full has shape={tuple(full.shape)}, the DTensor's global shape is {tuple(dtensor.shape)}")
    local = dtensor.to_local()
    with torch.no_grad():
        for b in local_boxes(dtensor):
            if 0 in b.shape:
                continue
            src = full[tuple(slice(o, o + n) for o, n in zip(b.offsets, b.shape, strict=True))]
            local[b.local].copy_(src)
    return dtensor


def orthogonal_(stream: Any, dtensor: DTensor, gain: float, **box: Any) -> torch.Tensor:
    """``stream.orthogonal_`` on a DTensor: the whole matrix on every rank, this rank's slice kept."""
    if any(v is not None for v in box.values()):
        raise TypeError(
            "a DTensor already knows its place in the full parameter: give no full_shape/offsets/index, got "
            + ", ".join(f"{k}={v!r}" for k, v in box.items() if v is not None)
        )
    local = dtensor.to_local()
    full = stream.orthogonal_(torch.empty(tuple(dtensor.shape), dtype=dtensor.dtype, device=local.device), gain)
    return fill_from_full(dtensor, full)


def call_scheme(scheme: Any, dtensor: DTensor, generator: object) -> torch.Tensor:
    """Run ``scheme`` on a DTensor parameter: local fills where possible, else the full value's slice.

    Random schemes need a :class:`fanin.Stream`; constant and identity schemes draw nothing and
    take any generator (the module docstring has the costs of each path).
    """
    entry = scheme.entry
    if entry.takes_generator and entry.family not in _DRAWLESS_FAMILIES:
        check_generator_for(dtensor, generator)
    if dtensor.is_meta or dtensor.numel() == 0:
        return dtensor
    # An element-local scheme draws through the sampling seam over the whole tensor (or fills a
    # scalar, which DTensor does shard-locally): tests/rules/test_sharded.py checks every one.
    if entry.element_local:
        with torch.no_grad():
            if entry.takes_generator:
                entry.fn(dtensor, generator=generator, **scheme.args)
            else:
                entry.fn(dtensor, **scheme.args)
        return dtensor
    local = dtensor.to_local()
    full = torch.empty(tuple(dtensor.shape), dtype=dtensor.dtype, device=local.device)
    scheme(full, generator=generator)
    return fill_from_full(dtensor, full)
