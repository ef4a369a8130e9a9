"""A counter-based random stream keyed by (seed, parameter name, element index).

The value of element ``i`` (row-major flat index in the full, unsharded parameter) is a pure
function of ``(seed, name, i, transform)``: Philox4x32-10 under a key hashed from (seed, name),
counter = ``(i // 4 lo, i // 4 hi, s, draw)``, word ``i % 4``, then a transform made only of
correctly rounded float64 operations. No state, so any element, slice or box can be generated
alone, on any device and thread count, with the same bits. The format is specified in
docs/stream.md and frozen as :data:`STREAM_VERSION`.

>>> import torch
>>> s = Stream(0, "layer.weight")
>>> full = s.normal_(torch.empty(6, 8), 0.0, 0.02)
>>> part = s.normal_(torch.empty(2, 3), 0.0, 0.02, full_shape=(6, 8), offsets=(4, 5))
>>> torch.equal(part, full[4:6, 5:8])
True
"""

from __future__ import annotations

import math
import numbers
import operator
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from fanin.rng import sharded as _sharded
from fanin.rng.philox import MASK32, derive_key, philox4x32_10_torch
from fanin.rng.threads import one_thread
from fanin.rng.transforms import Normal, Transform, TruncatedNormal, Uniform, transform_torch

__all__ = [
    "DRAW_SPARSE",
    "DRAW_VALUES",
    "STREAM_VERSION",
    "Stream",
    "canonical_name",
    "streams_for",
]

#: Version of the stream format (key derivation, counter layout, transforms, rounding). Any
#: change of a single output bit bumps it; the golden vectors in the tests pin version 1.
STREAM_VERSION = 1

DRAW_VALUES = 0  # counter word 3 for the values of every element-wise transform
DRAW_SPARSE = 1  # counter word 3 for the sparse permutation's round function

_WRAPPER_PREFIXES = ("_orig_mod", "_fsdp_wrapped_module", "_checkpoint_wrapped_module")
_CHUNK = 1 << 18  # elements per step of the torch path, and per scratch buffer of the fast path
_BACKENDS = ("auto", "numba", "torch")


# --------------------------------------------------------------------------------------- names


def canonical_name(name: str) -> str:
    """The parameter name with wrapper components removed, so wrapping never changes the key.

    Removes ``_orig_mod`` (torch.compile), ``_fsdp_wrapped_module`` (FSDP1) and
    ``_checkpoint_wrapped_module`` (activation checkpointing) anywhere in the dotted path, and
    leading ``module`` components (DDP / DataParallel). FSDP2 does not rename parameters.

    Args:
        name: A dotted parameter name, as ``named_parameters`` gives it.

    Returns:
        The canonical name.

    Raises:
        TypeError: ``name`` is not a str.

    Examples:
        >>> canonical_name("module._orig_mod.layers.0._checkpoint_wrapped_module.attn.weight")
        'layers.0.attn.weight'
        >>> canonical_name("encoder.module.weight")  # a user's own submodule called "module" stays
        'encoder.module.weight'
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got name={name!r} ({type(name).__name__})")
    parts = [p for p in name.split(".") if p not in _WRAPPER_PREFIXES]
    while len(parts) > 1 and parts[0] == "module":
        parts.pop(0)
    return ".".join(parts)


def streams_for(model: torch.nn.Module, seed: int) -> dict[str, Stream]:
    """One :class:`Stream` per parameter of ``model``, keyed by canonical name.

    Tied parameters appear once, under their first name (``named_parameters`` order).

    Args:
        model: The model whose parameters get streams.
        seed: The seed of every stream, an int in [0, 2**64).

    Returns:
        The streams by canonical name (:func:`canonical_name`).

    Raises:
        TypeError: ``model`` is not a ``torch.nn.Module``.
        ValueError: Two parameters have the same canonical name.

    Examples:
        >>> streams = streams_for(torch.nn.Sequential(torch.nn.Linear(2, 3)), seed=7)
        >>> sorted(streams), streams["0.weight"]
        (['0.bias', '0.weight'], Stream(seed=7, name='0.weight'))
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"streams_for needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    out: dict[str, Stream] = {}
    raw: dict[str, str] = {}
    for name, _ in model.named_parameters():
        canon = canonical_name(name)
        if canon in out:
            raise ValueError(
                f"two parameters have the same canonical name {canon!r}: name={raw[canon]!r} and name={name!r}"
            )
        raw[canon] = name
        out[canon] = Stream(seed, canon)
    return out


# ---------------------------------------------------------------------------------------- boxes


def _as_shape(what: str, value: object) -> tuple[int, ...]:
    if isinstance(value, torch.Size):
        return tuple(value)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise TypeError(f"{what} must be a sequence of ints, got {what}={value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{what} must be a sequence of ints, got {what}={value!r}")
        out.append(int(v))
    return tuple(out)


def _resolve_box(
    shape: tuple[int, ...],
    full_shape: object,
    offsets: object,
    index: object,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(full_shape, offsets)`` of a box of ``shape``, checked."""
    full = shape if full_shape is None else _as_shape("full_shape", full_shape)
    if any(d < 0 for d in full):
        raise ValueError(f"full_shape must be non-negative, got full_shape={full}")
    if index is not None and offsets is not None:
        raise TypeError("give offsets= or index=, not both")
    if index is not None:
        if not isinstance(index, tuple):
            index = (index,)
        if len(index) > len(full):
            raise ValueError(f"index has {len(index)} entries for full_shape={full}")
        offs_l = []
        for d, item in enumerate(index + (slice(None),) * (len(full) - len(index))):
            if not isinstance(item, slice):
                raise TypeError(f"index entries must be slices, got index[{d}]={item!r}")
            start, stop, step = item.indices(full[d])
            if step != 1:
                raise ValueError(f"index slices must have step 1, got index[{d}]={item!r}")
            if d < len(shape) and max(stop - start, 0) != shape[d]:
                raise ValueError(
                    f"index[{d}]={item!r} selects {max(stop - start, 0)} entries of dim {d} but the "
                    f"tensor has shape={tuple(shape)}"
                )
            offs_l.append(start)
        offs = tuple(offs_l)
    elif offsets is None:
        offs = (0,) * len(full)
    else:
        offs = _as_shape("offsets", offsets)
    if len(full) != len(shape) or len(offs) != len(shape):
        raise ValueError(
            f"the tensor, full_shape and offsets need the same number of dims, got "
            f"shape={tuple(shape)}, full_shape={full}, offsets={offs}"
        )
    # Indexing rather than zip(..., strict=...) here and in the box geometry: the lengths are checked
    # just above, and a keyword argument sends zip down CPython's slow call path, about 0.5 us of a
    # 13 us small fill (benchmarks/stream.py, small tensors).
    for d in range(len(shape)):
        n, f, o = shape[d], full[d], offs[d]
        if o < 0 or o + n > f:
            raise ValueError(
                f"the box does not fit in the full tensor at dim {d}: offsets[{d}]={o}, "
                f"shape[{d}]={n}, full_shape[{d}]={f}"
            )
    return full, offs


# (base, outer_sizes, outer_strides, L): a box as runs of L contiguous flat indices
_Geometry = tuple[int, tuple[int, ...], tuple[int, ...], int]


def _geometry(shape: tuple[int, ...], full: tuple[int, ...], offs: tuple[int, ...]) -> _Geometry:
    """``(base, outer_sizes, outer_strides, L)``: the box as runs of ``L`` contiguous indices."""
    strides = [1] * len(full)
    for d in range(len(full) - 2, -1, -1):
        strides[d] = strides[d + 1] * full[d + 1]
    base = sum(map(operator.mul, offs, strides))
    k = len(shape) - 1
    while k > 0 and shape[k] == full[k]:
        k -= 1
    if k < 0:  # a 0-d tensor
        return base, (), (), 1
    L = shape[k] * strides[k]
    outer = [(shape[d], strides[d]) for d in range(k) if shape[d] != 1]
    return base, tuple(n for n, _ in outer), tuple(s for _, s in outer), L


def _flat_indices(e0: int, n: int, geom: _Geometry, device: torch.device | str) -> torch.Tensor:
    base, osz, ost, L = geom
    e = torch.arange(e0, e0 + n, dtype=torch.int64, device=device)
    r = torch.div(e, L, rounding_mode="floor")
    flat = e - r * L + base
    for d in range(len(osz) - 1, -1, -1):
        size, stride = osz[d], ost[d]
        flat += (r % size) * stride
        r = torch.div(r, size, rounding_mode="floor")
    return flat


# -------------------------------------------------------------------------------------- backends

_numba_module: Any = None
_numba_checked = False


def _numba() -> Any:
    """The numba kernels module, or None when numba is not installed (imported once, lazily)."""
    global _numba_module, _numba_checked
    if not _numba_checked:
        _numba_checked = True
        try:
            from fanin.rng import _numba_kernels
        except ImportError:
            _numba_module = None
        else:
            _numba_module = _numba_kernels
    return _numba_module


def _pick_backend(backend: str, device: torch.device) -> str:
    if backend == "auto":
        backend = os.environ.get("FANIN_STREAM_BACKEND", "auto")
    if backend not in _BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, _BACKENDS))}, got backend={backend!r}")
    if backend == "auto":
        return "numba" if device.type == "cpu" and _numba() is not None else "torch"
    if backend == "numba":
        if device.type != "cpu":
            raise ValueError(f"backend='numba' runs on CPU tensors only, got device={device}")
        if _numba() is None:
            raise ImportError("backend='numba' needs numba: pip install numba")
    return backend


def _kernel_params(transform: Transform) -> tuple[int, list[float]]:
    nk = _numba()
    if isinstance(transform, Uniform):
        return nk.KIND_UNIFORM, [transform.mid, transform.hs]
    if isinstance(transform, Normal):
        return nk.KIND_NORMAL, [transform.mean, transform.std]
    if isinstance(transform, TruncatedNormal):
        mirror, lo, hi, pa, pb = transform.host_scalars()
        # The far tail of AS241 (r > 5) needs min(p, 1 - p) < exp(-25); below 1e-10 the kernel
        # evaluates both tails, above it only the near one (the same bits where both apply).
        full = 1.0 if min(pa, 1.0 - pb) < 1e-10 else 0.0
        return nk.KIND_TRUNC, [
            transform.mean,
            transform.std,
            pa,
            pb - pa,
            lo,
            hi,
            transform.lower,
            transform.upper,
            -1.0 if mirror else 1.0,
            full,
        ]
    raise TypeError(f"unknown transform {transform!r}")


_numba_warm: set[tuple[Any, str]] = set()  # (kernel, dtype) pairs already compiled or loaded
_numba_threads = threading.local()  # .n: the count this thread last gave numba (it is per thread)


def _numba_call(kernel: Any, *args: Any) -> None:
    """Call a numba kernel; its first call per dtype (compile or cache load) with numba's
    warnings silenced, later calls straight (``catch_warnings`` costs more than a small fill)."""
    warm = (kernel, args[0].dtype.str)
    if warm in _numba_warm:
        kernel(*args)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _numba().nb.errors.NumbaWarning)
        kernel(*args)
    _numba_warm.add(warm)


def _numba_parallel() -> None:
    """Start numba's pool once and follow torch's thread count (set only when it changed)."""
    nk = _numba()
    threads = max(1, min(torch.get_num_threads(), nk.nb.config.NUMBA_NUM_THREADS))
    if getattr(_numba_threads, "n", 0) != threads:
        nk.launch_threads()
        nk.nb.set_num_threads(threads)
        _numba_threads.n = threads


def _numba_fill(
    out_np: Any, e0: int, geom: _Geometry, key: tuple[int, int, int], draw: int, transform: Transform
) -> None:
    import numpy as np

    nk = _numba()
    base, osz, ost, L = geom
    kind, prm = _kernel_params(transform)
    # A small fill runs on the calling thread: waking the pool costs more than the work (and,
    # on a busy machine, a scheduler time slice). Every element is a pure function of its
    # index, so both kernels give the same bits.
    if out_np.shape[0] <= nk.SERIAL_MAX:
        kernel = nk.SERIAL_KERNELS[kind]
    else:
        kernel = nk.KERNELS[kind]
        _numba_parallel()
    _numba_call(
        kernel,
        out_np,
        e0,
        base,
        np.asarray(osz, dtype=np.int64),
        np.asarray(ost, dtype=np.int64),
        L,
        key[0],
        key[1],
        key[2],
        draw,
        np.asarray(prm, dtype=np.float64),
    )


def _words_torch(flat: torch.Tensor, key: tuple[int, int, int], draw: int, contiguous: bool) -> torch.Tensor:
    """The 32-bit words (int64) of the flat indices ``flat`` (1-D)."""
    if contiguous:  # one Philox call per block: flat is a range
        f0 = int(flat[0])
        n = flat.numel()
        b0 = f0 >> 2
        blocks = torch.arange(b0, ((f0 + n - 1) >> 2) + 1, dtype=torch.int64, device=flat.device)
        w = philox4x32_10_torch(blocks & MASK32, blocks >> 32, key[2], draw, key[:2])
        return torch.stack(w, dim=1).reshape(-1)[f0 & 3 : (f0 & 3) + n]
    blocks = flat >> 2
    w = philox4x32_10_torch(blocks & MASK32, blocks >> 32, key[2], draw, key[:2])
    return torch.stack(w, dim=1).gather(1, (flat & 3).unsqueeze(1)).squeeze(1)


def _round_to(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float64 -> dtype, always through float32 for the narrower types (format v1 rounding)."""
    if dtype == torch.float64:
        return values
    values = values.to(torch.float32)
    return values if dtype == torch.float32 else values.to(dtype)


def _torch_fill(
    out_flat: torch.Tensor, e0: int, geom: _Geometry, key: tuple[int, int, int], draw: int, transform: Transform
) -> None:
    """Reference path: box-order elements [e0, e0 + n) into the 1-D tensor ``out_flat``."""
    n = out_flat.numel()
    L = geom[3]
    for a in range(0, n, _CHUNK):
        b = min(n, a + _CHUNK)
        flat = _flat_indices(e0 + a, b - a, geom, out_flat.device)
        contiguous = (e0 + a) // L == (e0 + b - 1) // L
        words = _words_torch(flat, key, draw, contiguous)
        out_flat[a:b].copy_(_round_to(transform_torch(transform, words), out_flat.dtype))


# ---------------------------------------------------------------------------------------- stream


class Stream:
    """The random stream of one parameter: ``Stream(seed, name)``.

    Every fill method takes the tensor to fill and, for a part of a larger parameter,
    ``full_shape`` and either ``offsets`` (the box's corner in the full tensor) or ``index`` (a
    tuple of step-1 slices). The part gets exactly the bits the full generation puts there.
    ``backend`` is ``"auto"`` (numba on CPU when installed, else torch), ``"numba"`` or
    ``"torch"`` (the reference, any device); all give the same bits.

    Args:
        seed: The seed, an int in [0, 2**64).
        name: The parameter's name (the key; see :meth:`for_parameter` for wrapped names).

    Raises:
        TypeError: ``seed`` is not an int or ``name`` not a str.
        ValueError: ``seed`` is outside [0, 2**64).

    Examples:
        >>> Stream(1, "w") == Stream(1, "w"), Stream(1, "w") == Stream(2, "w")
        (True, False)
        >>> Stream(-1, "w")
        Traceback (most recent call last):
        ...
        ValueError: seed must be an int in [0, 2**64), got seed=-1
    """

    __slots__ = ("_key", "_name", "_seed")
    _seed: int
    _name: str
    _key: tuple[int, int, int]

    def __init__(self, seed: int, name: str) -> None:
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise TypeError(f"seed must be an int in [0, 2**64), got seed={seed!r} ({type(seed).__name__})")
        seed = int(seed)
        if not 0 <= seed < 2**64:
            raise ValueError(f"seed must be an int in [0, 2**64), got seed={seed!r}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got name={name!r} ({type(name).__name__})")
        self._seed = seed
        self._name = name
        k0, k1, s, _ = derive_key(seed, name)
        self._key = (k0, k1, s)

    @classmethod
    def for_parameter(cls, seed: int, name: str) -> Stream:
        """The stream of parameter ``name`` after :func:`canonical_name` (wrappers stripped).

        Args:
            seed: The seed, an int in [0, 2**64).
            name: The parameter's name, wrappers included or not.

        Returns:
            The stream of the canonical name.
        """
        return cls(seed, canonical_name(name))

    @property
    def seed(self) -> int:
        """The seed."""
        return self._seed

    @property
    def name(self) -> str:
        """The parameter name the stream is keyed by."""
        return self._name

    @property
    def key(self) -> tuple[int, int, int]:
        """``(k0, k1, s)``: the Philox key and counter word 2 (docs/stream.md)."""
        return self._key

    def __repr__(self) -> str:
        return f"Stream(seed={self._seed}, name={self._name!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stream):
            return NotImplemented
        return (self._seed, self._name) == (other._seed, other._name)

    def __hash__(self) -> int:
        return hash((Stream, self._seed, self._name))

    def __reduce__(self) -> tuple[type[Stream], tuple[int, str]]:
        return (Stream, (self._seed, self._name))

    # ------------------------------------------------------------------ random access

    def words(self, index: torch.Tensor | Sequence[int], *, draw: int = DRAW_VALUES) -> torch.Tensor:
        """The raw 32-bit words (as int64) of the flat indices ``index``, any shape, any device.

        Args:
            index: Non-negative flat indices into the parameter.
            draw: Counter word 3: ``DRAW_VALUES`` for the values, ``DRAW_SPARSE`` for the sparse
                permutation.

        Returns:
            The words, in the shape of ``index``.

        Raises:
            ValueError: An index is negative.
        """
        flat = torch.as_tensor(index, dtype=torch.int64)
        if flat.numel() and int(flat.min()) < 0:
            raise ValueError("flat indices must be non-negative")
        out = _words_torch(flat.reshape(-1), self._key, draw, contiguous=False)
        return out.reshape(flat.shape)

    def values(
        self, transform: Transform, index: torch.Tensor | Sequence[int], *, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The values of the flat indices ``index`` under ``transform``: random access, for audits.

        Args:
            transform: The element-wise transform (:class:`Uniform`, :class:`Normal`,
                :class:`TruncatedNormal`).
            index: Non-negative flat indices into the parameter.
            dtype: The dtype the values are rounded to.

        Returns:
            The values, in the shape of ``index``.

        Examples:
            >>> s = Stream(0, "w")
            >>> full = s.uniform_(torch.empty(100), -1.0, 1.0)
            >>> torch.equal(s.values(Uniform(-1.0, 1.0), [3, 97]), full[[3, 97]])
            True
        """
        _check_transform(transform)
        words = self.words(index)
        return _round_to(transform_torch(transform, words), dtype)

    # ------------------------------------------------------------------ fills

    def fill_(
        self,
        tensor: torch.Tensor,
        transform: Transform,
        *,
        full_shape: Sequence[int] | None = None,
        offsets: Sequence[int] | None = None,
        index: tuple[slice, ...] | slice | None = None,
        backend: str = "auto",
    ) -> torch.Tensor:
        """Fill ``tensor`` in place with ``transform`` of this stream and return it.

        Args:
            tensor: The floating-point tensor to fill (a DTensor: its local shard).
            transform: The element-wise transform (:class:`Uniform`, :class:`Normal`,
                :class:`TruncatedNormal`).
            full_shape: The shape of the whole parameter when ``tensor`` is a part of it.
            offsets: The corner of ``tensor``'s box in the whole parameter.
            index: The box as a tuple of step-1 slices (instead of ``offsets``).
            backend: ``"auto"``, ``"numba"`` or ``"torch"``; all give the same bits.

        Returns:
            ``tensor``, filled.

        Raises:
            TypeError: ``transform`` is not a transform, ``tensor`` is not a floating-point tensor, or
                the box is malformed (both ``offsets`` and ``index``, a non-slice ``index`` entry).
            ValueError: The box does not fit in ``full_shape``, or an unknown ``backend``.
        """
        _check_transform(transform)
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"fill_ needs a torch.Tensor, got tensor={tensor!r} ({type(tensor).__name__})")
        if not tensor.is_floating_point():
            raise TypeError(f"the stream fills floating-point tensors, got dtype={tensor.dtype}")
        if _sharded.is_dtensor(tensor):  # a DTensor: only its local shard's boxes are filled
            return _sharded.fill_(self, tensor, transform, full_shape=full_shape, offsets=offsets, index=index)
        shape = tuple(tensor.shape)
        full, offs = _resolve_box(shape, full_shape, offsets, index)
        if tensor.is_meta or tensor.numel() == 0:
            return tensor
        chosen = _pick_backend(backend, tensor.device)
        with torch.no_grad():
            self._fill_box(tensor, transform, full, offs, chosen)
        return tensor

    def uniform_(self, tensor: torch.Tensor, low: float, high: float, **box: Any) -> torch.Tensor:
        r"""Fill with :math:`\mathcal{U}(\text{low}, \text{high})` (see :class:`Uniform`).

        Args:
            tensor: The floating-point tensor to fill.
            low: The lower bound.
            high: The upper bound.
            **box: ``full_shape``, ``offsets``, ``index``, ``backend``, as :meth:`fill_` takes them.

        Returns:
            ``tensor``, filled.
        """
        return self.fill_(tensor, Uniform(low, high), **box)

    def normal_(self, tensor: torch.Tensor, mean: float, std: float, **box: Any) -> torch.Tensor:
        r"""Fill with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` by inverse CDF (see :class:`Normal`).

        Args:
            tensor: The floating-point tensor to fill.
            mean: The mean.
            std: The standard deviation.
            **box: ``full_shape``, ``offsets``, ``index``, ``backend``, as :meth:`fill_` takes them.

        Returns:
            ``tensor``, filled.
        """
        return self.fill_(tensor, Normal(mean, std), **box)

    def truncated_normal_(
        self, tensor: torch.Tensor, mean: float, std: float, lower: float, upper: float, **box: Any
    ) -> torch.Tensor:
        r"""Fill with :math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to absolute [lower, upper].

        Args:
            tensor: The floating-point tensor to fill.
            mean: The mean before truncation.
            std: The standard deviation before truncation.
            lower: The lower cut (an absolute value).
            upper: The upper cut (an absolute value).
            **box: ``full_shape``, ``offsets``, ``index``, ``backend``, as :meth:`fill_` takes them.

        Returns:
            ``tensor``, filled.
        """
        return self.fill_(tensor, TruncatedNormal(mean, std, lower, upper), **box)

    def standard_normal(
        self,
        shape: Sequence[int],
        *,
        dtype: torch.dtype,
        device: torch.device | str,
        **box: Any,
    ) -> torch.Tensor:
        """A new tensor of N(0, 1) values of this stream (element ``i`` = flat index ``i``).

        Args:
            shape: The shape of the new tensor.
            dtype: Its dtype.
            device: Its device.
            **box: ``full_shape``, ``offsets``, ``index``, ``backend``, as :meth:`fill_` takes them.

        Returns:
            The new tensor.
        """
        return self.normal_(torch.empty(tuple(shape), dtype=dtype, device=device), 0.0, 1.0, **box)

    def _fill_box(
        self,
        tensor: torch.Tensor,
        transform: Transform,
        full: tuple[int, ...],
        offs: tuple[int, ...],
        backend: str,
    ) -> None:
        dtype = tensor.dtype
        if tensor.is_contiguous():
            geom = _geometry(tuple(tensor.shape), full, offs)
            flat_out = tensor.detach().view(-1)
            if backend == "torch":
                _torch_fill(flat_out, 0, geom, self._key, DRAW_VALUES, transform)
                return
            if dtype in (torch.float32, torch.float64):
                _numba_fill(flat_out.numpy(), 0, geom, self._key, DRAW_VALUES, transform)
                return
            # float32 in a bounded scratch, rounded once more; bfloat16 by a numba kernel too, so
            # that torch's and numba's thread pools do not take turns on every chunk.
            scratch = torch.empty(min(_CHUNK * 16, flat_out.numel()), dtype=torch.float32)
            bits = flat_out.view(torch.int16).numpy().view("uint16") if dtype == torch.bfloat16 else None
            for a in range(0, flat_out.numel(), scratch.numel()):
                b = min(flat_out.numel(), a + scratch.numel())
                _numba_fill(scratch[: b - a].numpy(), a, geom, self._key, DRAW_VALUES, transform)
                if bits is not None:
                    nk = _numba()
                    to_bf16 = nk.to_bfloat16_serial if b - a <= nk.SERIAL_MAX else nk.to_bfloat16
                    _numba_call(to_bf16, scratch[: b - a].numpy(), bits[a:b])
                else:
                    flat_out[a:b].copy_(scratch[: b - a])
            return
        # A strided view: fill bounded contiguous pieces and copy them in.
        for sub, sub_offs in _pieces(tensor, offs):
            tmp = torch.empty(sub.shape, dtype=dtype, device=tensor.device)
            self._fill_box(tmp, transform, full, sub_offs, backend)
            sub.copy_(tmp)

    # ------------------------------------------------------------------ orthogonal

    def orthogonal_(
        self,
        tensor: torch.Tensor,
        gain: float = 1.0,
        *,
        full_shape: Sequence[int] | None = None,
        offsets: Sequence[int] | None = None,
        index: tuple[slice, ...] | slice | None = None,
        backend: str = "auto",
    ) -> torch.Tensor:
        """Fill with a (semi-)orthogonal matrix (Saxe et al. 2014), torch's construction in float64.

        The parameter is viewed as ``(rows, cols) = (shape[0], numel // shape[0])``; its Gaussian
        matrix G is this stream's N(0, 1) values (element (i, j) = flat index ``i * cols + j``),
        transposed when rows < cols. ``Q, R = qr(G)`` by LAPACK ``geqrf`` + ``orgqr`` in float64 on
        the CPU with one thread, ``Q *= sign(diag(R))``, then ``gain * Q`` is rounded once to the
        dtype. One thread makes the bits independent of the thread count; across BLAS builds or
        CPUs the result can differ in the last bit of rare elements. A box (``full_shape`` and
        ``offsets``/``index``) gets the same part of the full matrix, which every shard computes.

        Args:
            tensor: The floating-point tensor to fill (a DTensor: its local shard).
            gain: The scaling factor.
            full_shape: The shape of the whole parameter when ``tensor`` is a part of it.
            offsets: The corner of ``tensor``'s box in the whole parameter.
            index: The box as a tuple of step-1 slices (instead of ``offsets``).
            backend: The backend of the Gaussian draw: ``"auto"``, ``"numba"`` or ``"torch"``.

        Returns:
            ``tensor``, filled.

        Raises:
            TypeError: ``tensor`` is not a floating-point tensor.
            ValueError: The parameter has fewer than 2 dimensions.

        Examples:
            >>> q = Stream(0, "w").orthogonal_(torch.empty(6, 4))
            >>> torch.allclose(q.T @ q, torch.eye(4), atol=1e-6)
            True
        """
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"orthogonal_ needs a torch.Tensor, got tensor={tensor!r} ({type(tensor).__name__})")
        if not tensor.is_floating_point():
            raise TypeError(f"the stream fills floating-point tensors, got dtype={tensor.dtype}")
        gain = float(gain)
        if _sharded.is_dtensor(tensor):  # a DTensor: the whole matrix on every rank, its slice kept
            return _sharded.orthogonal_(self, tensor, gain, full_shape=full_shape, offsets=offsets, index=index)
        shape = tuple(tensor.shape)
        full, offs = _resolve_box(shape, full_shape, offsets, index)
        if len(full) < 2:
            raise ValueError(f"orthogonal needs a tensor with at least 2 dims, got full_shape={full}")
        if tensor.is_meta or tensor.numel() == 0:
            return tensor
        rows = full[0]
        cols = math.prod(full) // rows
        g = torch.empty((rows, cols), dtype=torch.float64)
        self.normal_(g, 0.0, 1.0, backend=backend)
        if rows < cols:
            g = g.t()
        with one_thread():
            h, tau = torch.geqrf(g)
            q = torch.linalg.householder_product(h, tau)
        q *= torch.sign(torch.diagonal(h))
        if rows < cols:
            q = q.t()
        q = (q * gain).reshape(full)
        box = q[tuple(slice(o, o + n) for o, n in zip(offs, shape, strict=True))]
        with torch.no_grad():
            tensor.copy_(_round_to(box, tensor.dtype))
        return tensor

    # ------------------------------------------------------------------ sparse

    def permutation_index(self, rows: int, row_index: torch.Tensor, col_index: torch.Tensor) -> torch.Tensor:
        """``pi_j(i)``: the position of row ``i`` in column ``j``'s keyed permutation of range(rows).

        A 4-round Feistel network on the smallest even bit width ``b >= log2(rows)`` (at least
        2), round ``r`` = word ``r`` of Philox(key, (R, j, s, DRAW_SPARSE)) masked to b/2 bits,
        with cycle-walking until the value is below ``rows``. A bijection of range(rows) for
        every column, and element-local.

        Args:
            rows: The number of rows (positive).
            row_index: Row indices ``i`` in [0, rows).
            col_index: Column indices ``j`` in [0, 2**32), broadcast against ``row_index``.

        Returns:
            The positions, in the broadcast shape.

        Raises:
            ValueError: ``rows`` is not a positive int, or an index is out of range.

        Examples:
            >>> s = Stream(0, "w")
            >>> i = torch.arange(10)
            >>> sorted(s.permutation_index(10, i, torch.zeros_like(i)).tolist())
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        if isinstance(rows, bool) or not isinstance(rows, numbers.Integral) or rows < 1:
            raise ValueError(f"rows must be a positive int, got rows={rows!r}")
        rows = int(rows)
        i, j = torch.broadcast_tensors(torch.as_tensor(row_index), torch.as_tensor(col_index))
        i = i.to(torch.int64)
        j = j.to(torch.int64)
        if i.numel() and (int(i.min()) < 0 or int(i.max()) >= rows):
            raise ValueError(f"row indices must lie in [0, rows={rows})")
        if j.numel() and (int(j.min()) < 0 or int(j.max()) > MASK32):
            raise ValueError("column indices must lie in [0, 2**32)")
        bits = max(2, (rows - 1).bit_length())
        bits += bits & 1
        half = bits // 2
        mask = (1 << half) - 1
        k0, k1, s = self._key

        def perm(x: torch.Tensor, col: torch.Tensor) -> torch.Tensor:
            left, right = x >> half, x & mask
            for r in range(4):
                f = philox4x32_10_torch(right, col, s, DRAW_SPARSE, (k0, k1))[r] & mask
                left, right = right, left ^ f
            return (left << half) | right

        y = perm(i, j)
        todo = y >= rows
        while bool(todo.any()):
            y[todo] = perm(y[todo], j[todo])
            todo = y >= rows
        return y

    def sparse_mask(
        self,
        shape: Sequence[int],
        num_zeros: int,
        *,
        full_shape: Sequence[int] | None = None,
        offsets: Sequence[int] | None = None,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Boolean (rows, cols) box of a 2-D parameter: True where the element is set to zero.

        Element (i, j) is zero iff ``pi_j(i) < num_zeros``, so every column of the full
        parameter has exactly ``num_zeros`` zeros (torch's ``sparse_``: ``ceil(sparsity * rows)``).

        Args:
            shape: The (rows, cols) shape of the box.
            num_zeros: The zeros per column of the full parameter, in [0, rows].
            full_shape: The shape of the whole parameter when the box is a part of it.
            offsets: The corner of the box in the whole parameter.
            device: The device of the mask.

        Returns:
            The mask.

        Raises:
            ValueError: ``shape`` is not 2-D, or ``num_zeros`` is out of range.

        Examples:
            >>> m = Stream(0, "w").sparse_mask((10, 4), 3)
            >>> m.sum(dim=0).tolist()
            [3, 3, 3, 3]
        """
        shape_t = _as_shape("shape", shape)
        if len(shape_t) != 2:
            raise ValueError(f"sparse_mask needs a 2-D shape (rows, cols), got shape={shape_t}")
        full, offs = _resolve_box(shape_t, full_shape, offsets, None)
        if isinstance(num_zeros, bool) or not isinstance(num_zeros, numbers.Integral) or not 0 <= num_zeros <= full[0]:
            raise ValueError(f"num_zeros must be an int in [0, rows={full[0]}], got num_zeros={num_zeros!r}")
        i = torch.arange(offs[0], offs[0] + shape_t[0], device=device).unsqueeze(1)
        j = torch.arange(offs[1], offs[1] + shape_t[1], device=device).unsqueeze(0)
        if full[0] == 0 or 0 in shape_t:
            return torch.zeros(shape_t, dtype=torch.bool, device=device)
        return self.permutation_index(full[0], i, j) < int(num_zeros)


def _check_transform(transform: object) -> None:
    if not isinstance(transform, Transform):
        raise TypeError(
            "transform must be a fanin.rng.transforms.Uniform, Normal or TruncatedNormal, "
            f"got transform={transform!r} ({type(transform).__name__})"
        )


def _pieces(tensor: torch.Tensor, offs: tuple[int, ...]) -> Iterator[tuple[torch.Tensor, tuple[int, ...]]]:
    """Split a strided box into sub-boxes of at most ``_CHUNK`` elements (or single rows)."""
    if tensor.numel() <= _CHUNK or tensor.dim() == 0:
        yield tensor, offs
        return
    d = next((k for k, n in enumerate(tensor.shape) if n > 1), 0)
    inner = math.prod(tensor.shape[d + 1 :])
    step = max(1, _CHUNK // max(inner, 1))
    for a in range(0, tensor.shape[d], step):
        sub = tensor.narrow(d, a, min(step, tensor.shape[d] - a))
        sub_offs = (*offs[:d], offs[d] + a, *offs[d + 1 :])
        if sub.numel() > _CHUNK:  # one index of dim d is still too large: split the next dim
            yield from _pieces(sub, sub_offs)
        else:
            yield sub, sub_offs
