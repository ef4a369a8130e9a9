"""The fast CPU path of the stream: numba kernels, bit-identical to the torch reference.

Imported lazily by :mod:`fanin.rng.stream` and only when numba is installed. Every element is a
pure function of its flat index, so the result cannot depend on the thread count or on how the
work is cut: the ``prange`` only decides who computes which element. The float code is compiled
without ``fastmath`` (LLVM then never contracts a*b+c into a fused multiply-add) and with
``error_model="numpy"`` (no division-by-zero checks, which would block vectorization).

Layout of the work: the output box is a list of *runs*, maximal contiguous ranges of flat
indices (one per row of the box after merging the trailing dimensions that the box covers
fully). A unit of parallel work is a piece of at most ``SEG`` elements of one run, or a group of
whole short runs. A unit computes the Philox blocks of its flat range into per-unit scratch
(structure of arrays, then interleaved into the stream order), then applies the transform in a
straight loop that LLVM vectorizes; the uniform writes whole blocks straight into the output
(one pass) and uses the scratch only for a partial first or last block.

Each kernel has a ``parallel=True`` form and a serial form (``*_serial``) with the same units,
used for fills of at most :data:`SERIAL_MAX` elements, where waking the thread pool costs more
than the work.

**Several threads, forks and processes.** The kernels are reached through :class:`Launch`, which
makes three things safe that numba leaves to its caller (each was reproduced on this machine with
numba 0.68 and torch 2.13, see ``scripts/gloo_soak.py`` and tests/rng/test_numba_launch.py):

- *Threads.* numba's ``workqueue`` layer is not thread-safe: two Python threads in a
  ``parallel=True`` kernel at once make it print "Concurrent access has been detected" and
  ``abort()`` the process (SIGABRT; 4 threads filling 1M-element tensors die at once). Every
  parallel launch therefore holds one process-wide lock; the kernel already uses every thread
  it is given, so nothing is lost by queueing callers.
- *Forks.* On Linux numba's default choice is the ``omp`` layer (GNU OpenMP; TBB is rarely
  installed), which is not fork-safe: a process forked after a parallel fill is killed with
  SIGTERM ("fork() called from a process already using GNU OpenMP") at its first parallel fill,
  4 of 4 ranks in every one of 8 ``multiprocessing`` fork runs. It also loads a second GNU OpenMP
  runtime beside torch's own ``libgomp``. Unless the user chose a layer (``NUMBA_THREADING_LAYER``
  or ``numba.config.THREADING_LAYER``) or numba's threads are already running, fanin asks numba
  for ``"forksafe"``: TBB where installed, else ``workqueue``, made thread-safe by the lock above.
- *Processes starting together* (the ranks of a distributed job on a cold cache). numba's
  on-disk cache is one index per function mapping each signature to a numbered data file; a
  process saving a signature reads the index, picks the next free number and rewrites both files,
  with no lock (``numba.core.caching.IndexDataCacheFile.save``; numba issues 4807 and 10128).
  Two ranks saving the float32 and float64 forms of one kernel within the same milliseconds can
  both pick file 1: the index then names one signature's code while the file holds the other's,
  and every later process runs machine code compiled for the wrong dtype (not observed in 30
  rounds of 4 processes racing on a small kernel: the window is narrow, the damage permanent).
  The first call of each kernel and dtype (compile, or load from the cache) therefore
  holds an exclusive ``flock`` on a lock file in the kernel's cache directory: one rank compiles
  and saves, the others wait and load (a cold 4-rank start also compiles once instead of 4 times).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import numba as nb
import numpy as np
from numba import prange, types
from numba.extending import intrinsic

from fanin.rng import transforms as T

__all__ = [
    "CACHED",
    "KERNELS",
    "KIND_NORMAL",
    "KIND_TRUNC",
    "KIND_UNIFORM",
    "LOCK_NAME",
    "SERIAL_KERNELS",
    "SERIAL_MAX",
    "Launch",
    "cache_lock",
    "launch_threads",
    "prefer_fork_safe_layer",
    "to_bfloat16",
    "to_bfloat16_serial",
]

SEG = 16384  # elements per unit of work (64 KiB of float32 output)
KIND_UNIFORM, KIND_NORMAL, KIND_TRUNC = 0, 1, 2

SERIAL_MAX = 1 << 16  # at most this many elements: the serial kernels (no thread-pool launch)

_OPTS: dict[str, Any] = {"cache": True, "error_model": "numpy", "nogil": True}

_Fn = TypeVar("_Fn", bound=Callable[..., Any])

#: False when numba found no writable cache directory (in-tree ``__pycache__``,
#: ``NUMBA_CACHE_DIR``, the user cache): the kernels then compile in every process.
CACHED = True


def _inline(fn: _Fn) -> _Fn:
    """``numba.njit(inline="always")``: a helper compiled into the kernels that call it."""
    return cast(_Fn, nb.njit(inline="always", error_model="numpy")(fn))


def _kernel(**opts: Any) -> Callable[[_Fn], _Fn]:
    """``numba.njit(cache=True, **opts)``, or without the on-disk cache where none can be written.

    numba refuses ``cache=True`` at decoration time when no cache directory is writable
    (``RuntimeError: cannot cache function ...: no locator available``), which would make the
    fast path unimportable on a read-only install; the kernels then compile in each process.
    """

    def decorate(fn: _Fn) -> _Fn:
        global CACHED
        try:
            return cast(_Fn, nb.njit(**_OPTS, **opts)(fn))
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            CACHED = False
            return cast(_Fn, nb.njit(**{**_OPTS, "cache": False}, **opts)(fn))

    return decorate


# ------------------------------------------------------------------ launching (threads, forks, processes)

#: The lock file, in numba's cache directory of these kernels, held while a kernel is first
#: compiled or loaded for a dtype.
LOCK_NAME = "fanin-kernels.lock"

_launch_lock = threading.Lock()  # one parallel launch at a time in this process


def _fresh_launch_lock() -> None:
    # A fork taken while another thread held the lock would leave it held forever in the child.
    global _launch_lock
    _launch_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_launch_lock)


def prefer_fork_safe_layer() -> str | None:
    """Ask numba for its ``"forksafe"`` threading layer unless a layer is already chosen; the choice.

    Returns the layer now requested, or None when it was left alone: the user set
    ``NUMBA_THREADING_LAYER`` (or ``numba.config.THREADING_LAYER``), or numba's threads are
    already running (the layer cannot change any more). Called before the first parallel kernel
    is compiled or loaded, which is when numba starts its threads.
    """
    from numba.np.ufunc import parallel

    if getattr(parallel, "_is_initialized", False) or os.environ.get("NUMBA_THREADING_LAYER"):
        return None
    if str(nb.config.THREADING_LAYER).lower() != "default":  # type: ignore[attr-defined]
        return None
    nb.config.THREADING_LAYER = "forksafe"  # type: ignore[attr-defined]
    return "forksafe"


def _lock_path(kernel: Any) -> str | None:
    """The lock file in ``kernel``'s numba cache directory (created), or None when it has none."""
    cache_dir = getattr(getattr(kernel, "_cache", None), "cache_path", None)
    if not cache_dir:
        return None
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError:
        return None
    return os.path.join(cache_dir, LOCK_NAME)


@contextlib.contextmanager
def cache_lock(kernel: Any) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``kernel``'s cache directory; yields whether it is held.

    Without a cache directory, ``fcntl`` (Windows) or a writable lock file, nothing is locked and
    the block runs anyway: a lock is an optimisation of numba's own (unlocked) behaviour, never a
    reason to fail a fill.
    """
    path = _lock_path(kernel)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        path = None
    fd = None
    if path is not None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            if fd is not None:
                os.close(fd)
            fd = None
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the flock


class Launch:
    """A kernel as fanin calls it: parallel launches one at a time, first calls under the cache lock.

    ``Launch(kernel, parallel=True)(*args)`` runs ``kernel(*args)``; the first call for each dtype
    of the output array (numba compiles or loads a new signature then) holds :func:`cache_lock`,
    and every call of a parallel kernel holds this process's launch lock (the module docstring
    says why). Other attributes (``stats``, ``signatures``, ``py_func``) are the kernel's.
    """

    def __init__(self, kernel: Any, *, parallel: bool) -> None:
        self.kernel = kernel
        self.parallel = parallel
        self.__name__ = getattr(kernel, "__name__", type(kernel).__name__)
        self.__doc__ = getattr(kernel, "__doc__", None)
        self._ready: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__dict__["kernel"], name)

    def __repr__(self) -> str:
        return f"Launch({self.__name__}, parallel={self.parallel})"

    def __call__(self, *args: Any) -> None:
        dtype = args[0].dtype.str
        if dtype in self._ready:
            self._run(args)
            return
        if self.parallel:
            prefer_fork_safe_layer()
        with cache_lock(self.kernel):
            self._run(args)
        self._ready.add(dtype)

    def _run(self, args: tuple[Any, ...]) -> None:
        if self.parallel:
            with _launch_lock:
                self.kernel(*args)
        else:
            self.kernel(*args)


prefer_fork_safe_layer()

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)

_LG1, _LG2, _LG3, _LG4, _LG5, _LG6, _LG7 = T.LG
_LN2_HI, _LN2_LO = T.LN2_HI, T.LN2_LO
_A, _B, _C, _D, _E, _F = T.A_NUM, T.A_DEN, T.C_NUM, T.C_DEN, T.E_NUM, T.E_DEN
_TWO_M32 = T.TWO_M32
_P_MIN, _P_MAX = T.P_MIN, T.P_MAX


def _f64_bits_typing(typingctx, x):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return sig, codegen


# called as _f64_bits(x) inside kernels; numba's typing of the intrinsic supplies typingctx
_f64_bits: Any = intrinsic(_f64_bits_typing)


def _bits_f64_typing(typingctx, x):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return sig, codegen


# called as _bits_f64(x) inside kernels; numba's typing of the intrinsic supplies typingctx
_bits_f64: Any = intrinsic(_bits_f64_typing)


@_inline
def _philox(block, k0, k1, s, draw):
    # uint64 lanes holding uint32 values; the masks tell LLVM the products are 32x32 -> 64
    # (one vpmuludq each).
    x0 = block & _MASK
    x1 = block >> _S32
    x2 = s
    x3 = draw
    ka = k0
    kb = k1
    for _ in range(10):
        p0 = (x0 & _MASK) * _M0
        p1 = (x2 & _MASK) * _M1
        x0 = (p1 >> _S32) ^ x1 ^ ka
        x1 = p1
        x2 = (p0 >> _S32) ^ x3 ^ kb
        x3 = p0
        ka = (ka + _W0) & _MASK
        kb = (kb + _W1) & _MASK
    return x0 & _MASK, x1 & _MASK, x2 & _MASK, x3 & _MASK


@_inline
def _words(W, A, B, C, D, f, n, k0, k1, s, draw):
    """Words of flat indices [f, f + n) into W[off : off + n]; returns off = f % 4."""
    b0 = f >> 2
    off = f & 3
    nblk = (off + n + 3) >> 2
    ub0 = np.uint64(b0)
    for j in range(nblk):
        x0, x1, x2, x3 = _philox(ub0 + np.uint64(j), k0, k1, s, draw)
        A[j] = x0
        B[j] = x1
        C[j] = x2
        D[j] = x3
    for j in range(nblk):
        W[4 * j] = A[j]
        W[4 * j + 1] = B[j]
        W[4 * j + 2] = C[j]
        W[4 * j + 3] = D[j]
    return off


@_inline
def _log(x):
    bits = _f64_bits(x)
    k = (bits >> 52) - 1023
    m = bits & 0xFFFFFFFFFFFFF
    i = (m + 0x95F6400000000) & 0x10000000000000
    f = _bits_f64(m | (i ^ 0x3FF0000000000000)) - 1.0
    k = k + (i >> 52)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    r = t2 + t1
    hfsq = 0.5 * f * f
    dk = np.float64(k)
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + r) + dk * _LN2_LO)) - f)


@_inline
def _central(p):
    q = p - 0.5
    r = 0.180625 - q * q
    num = (((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * r + _A[6]) * r + _A[7]) * q
    den = ((((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + _B[5]) * r + _B[6]) * r + _B[7]
    return num / den


@_inline
def _tail_near(p):
    # AS241 outside the centre, for min(p, 1-p) > 1e-10 where r > 5 cannot occur.
    # min(p, 1 - p) equals "p if q <= 0 else 1 - p" bit for bit, and the quotient is positive,
    # so copysign is the spec's conditional negation.
    r = math.sqrt(-_log(min(p, 1.0 - p))) - 1.6
    num = ((((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5]) * r + _C[6]) * r + _C[7]
    den = ((((((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + _D[4]) * r + _D[5]) * r + _D[6]) * r + _D[7]
    return math.copysign(num / den, p - 0.5)


@_inline
def _tail_full(p):
    rt = math.sqrt(-_log(min(p, 1.0 - p)))
    r = rt - 1.6
    num = ((((((_C[0] * r + _C[1]) * r + _C[2]) * r + _C[3]) * r + _C[4]) * r + _C[5]) * r + _C[6]) * r + _C[7]
    den = ((((((_D[0] * r + _D[1]) * r + _D[2]) * r + _D[3]) * r + _D[4]) * r + _D[5]) * r + _D[6]) * r + _D[7]
    r2 = rt - 5.0
    num2 = ((((((_E[0] * r2 + _E[1]) * r2 + _E[2]) * r2 + _E[3]) * r2 + _E[4]) * r2 + _E[5]) * r2 + _E[6]) * r2 + _E[7]
    den2 = ((((((_F[0] * r2 + _F[1]) * r2 + _F[2]) * r2 + _F[3]) * r2 + _F[4]) * r2 + _F[5]) * r2 + _F[6]) * r2 + _F[7]
    xn = num / den
    xf = num2 / den2
    return math.copysign(xf if rt > 5.0 else xn, p - 0.5)


@_inline
def _ndtri_block(P, X, IDX, Q, n, full):
    """X[:n] = ndtri(P[:n]). The centre (85% of a normal's draws) in one vectorized pass; the
    tail probabilities compacted into Q and evaluated in a second vectorized pass, so that log
    and sqrt run only where they are needed."""
    for t in range(n):
        X[t] = _central(P[t])
    cnt = 0
    for t in range(n):  # branch-free compaction
        p = P[t]
        IDX[cnt] = t
        Q[cnt] = p
        cnt += abs(p - 0.5) > 0.425
    if full:
        for k in range(cnt):
            Q[k] = _tail_full(Q[k])
    else:
        for k in range(cnt):
            Q[k] = _tail_near(Q[k])
    for k in range(cnt):
        X[IDX[k]] = Q[k]


SUB = 2048  # elements per ndtri block: four float64/int64 scratch arrays stay in L1/L2


@_inline
def _segment_uniform(out, o, W, off, n, prm):
    mid = prm[0]
    hs = prm[1]
    if mid == 0.0 and hs != 0.0:  # 0 + y == y exactly when y is never a signed zero
        for t in range(n):
            v = np.int32(W[off + t] >> np.uint32(7) | np.uint32(1)) - np.int32(16777216)
            out[o + t] = hs * np.float64(v)
    else:
        for t in range(n):
            v = np.int32(W[off + t] >> np.uint32(7) | np.uint32(1)) - np.int32(16777216)
            out[o + t] = mid + hs * np.float64(v)


@_inline
def _uniform_value(x, mid, hs):
    v = np.int32(np.uint32(x) >> np.uint32(7) | np.uint32(1)) - np.int32(16777216)
    return mid + hs * np.float64(v)


@_inline
def _fused_uniform(out, o, f, n, key, prm, A, B, C, D, W):
    """Uniform values of flat indices [f, f + n) into out[o : o + n]: the whole Philox blocks
    straight into the output (one pass, no word scratch), the partial ones through ``_words``."""
    k0, k1, s, draw = key
    head = min((4 - (f & 3)) & 3, n)
    nblk = (n - head) >> 2
    tail = n - head - 4 * nblk
    if head:
        off = _words(W, A, B, C, D, f, head, k0, k1, s, draw)
        _segment_uniform(out, o, W, off, head, prm)
    mid = prm[0]
    hs = prm[1]
    b0 = np.uint64((f + head) >> 2)
    dst = out[o + head : o + head + 4 * nblk]
    if mid == 0.0 and hs != 0.0:  # 0 + y == y exactly when y is never a signed zero
        for j in range(nblk):
            x0, x1, x2, x3 = _philox(b0 + np.uint64(j), k0, k1, s, draw)
            dst[4 * j] = hs * np.float64(np.int32(np.uint32(x0) >> np.uint32(7) | np.uint32(1)) - np.int32(16777216))
            dst[4 * j + 1] = hs * np.float64(
                np.int32(np.uint32(x1) >> np.uint32(7) | np.uint32(1)) - np.int32(16777216)
            )
            dst[4 * j + 2] = hs * np.float64(
                np.int32(np.uint32(x2) >> np.uint32(7) | np.uint32(1)) - np.int32(16777216)
            )
            dst[4 * j + 3] = hs * np.float64(
                np.int32(np.uint32(x3) >> np.uint32(7) | np.uint32(1)) - np.int32(16777216)
            )
    else:
        for j in range(nblk):
            x0, x1, x2, x3 = _philox(b0 + np.uint64(j), k0, k1, s, draw)
            dst[4 * j] = _uniform_value(x0, mid, hs)
            dst[4 * j + 1] = _uniform_value(x1, mid, hs)
            dst[4 * j + 2] = _uniform_value(x2, mid, hs)
            dst[4 * j + 3] = _uniform_value(x3, mid, hs)
    if tail:
        g = f + head + 4 * nblk
        off = _words(W, A, B, C, D, g, tail, k0, k1, s, draw)
        _segment_uniform(out, o + head + 4 * nblk, W, off, tail, prm)


@_inline
def _segment_normal(out, o, W, off, n, prm, S):
    mean = prm[0]
    std = prm[1]
    P, X, IDX, Y = S
    for c in range(0, n, SUB):
        m = min(SUB, n - c)
        src = W[off + c : off + c + m]
        for t in range(m):
            P[t] = (np.float64(src[t]) + 0.5) * _TWO_M32
        _ndtri_block(P, X, IDX, Y, m, False)
        dst = out[o + c : o + c + m]
        for t in range(m):
            dst[t] = mean + std * X[t]


@_inline
def _segment_trunc(out, o, W, off, n, prm, S):
    mean = prm[0]
    std = prm[1]
    pa = prm[2]
    dp = prm[3]
    lo = prm[4]
    hi = prm[5]
    lower = prm[6]
    upper = prm[7]
    sgn = prm[8]  # -1.0 when mirrored: the negation is exact
    full = prm[9] != 0.0
    P, X, IDX, Y = S
    for c in range(0, n, SUB):
        m = min(SUB, n - c)
        src = W[off + c : off + c + m]
        for t in range(m):
            u = (np.float64(src[t]) + 0.5) * _TWO_M32
            P[t] = min(max(pa + u * dp, _P_MIN), _P_MAX)
        _ndtri_block(P, X, IDX, Y, m, full)
        dst = out[o + c : o + c + m]
        for t in range(m):
            z = min(max(X[t], lo), hi) * sgn
            dst[t] = min(max(mean + std * z, lower), upper)


@_inline
def _fscratch():
    return (np.empty(SUB, np.float64), np.empty(SUB, np.float64), np.empty(SUB, np.int64), np.empty(SUB, np.float64))


@_inline
def _run_start(r, base, osz, ost):
    st = base
    rr = r
    for d in range(osz.shape[0] - 1, -1, -1):
        st += (rr % osz[d]) * ost[d]
        rr //= osz[d]
    return st


@_inline
def _units(e0, n, L):
    """``(first unit, number of units, pieces per run, runs per unit)`` of box elements [e0, e0+n)."""
    r_first = e0 // L
    r_last = (e0 + n - 1) // L
    if L >= SEG:  # long runs: a unit is one piece of SEG elements of one run
        pieces = (L + SEG - 1) // SEG
        first = r_first * pieces + (e0 - r_first * L) // SEG
        last = r_last * pieces + (e0 + n - 1 - r_last * L) // SEG
        return first, last - first + 1, pieces, 1
    group = SEG // L  # short runs: a unit is a group of whole runs
    return r_first // group, r_last // group - r_first // group + 1, 1, group


@_inline
def _unit_runs(u, e0, n, L, pieces, group):
    """``(ra, rb, ta, tb)``: unit ``u`` covers elements [ta, tb) of runs [ra, rb), within [e0, e0+n)."""
    if pieces > 1 or group == 1:
        r = u // pieces
        pc = u % pieces
        return r, r + 1, pc * SEG, min((pc + 1) * SEG, L)
    ra = max(u * group, e0 // L)
    rb = min((u + 1) * group, (e0 + n - 1) // L + 1)
    return ra, rb, 0, L


# One kernel per transform: the same driver, written out three times so that each compiles
# alone (numba does not prune a constant branch before LLVM sees it). Each has a parallel form
# (``prange`` over units) and a serial form for small fills, where starting the thread pool
# costs more than the work: the units and their arithmetic are the same, so are the bits.


@_inline
def _unit_uniform(out, u, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W):
    ra, rb, ta, tb = _unit_runs(u, e0, n, L, pieces, group)
    for r in range(ra, rb):
        a = max(r * L + ta, e0)
        b = min(r * L + tb, e0 + n)
        if a < b:
            f = _run_start(r, base, osz, ost) + (a - r * L)
            _fused_uniform(out, a - e0, f, b - a, key, prm, A, B, C, D, W)


@_inline
def _unit_normal(out, u, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W, S):
    k0, k1, s, draw = key
    ra, rb, ta, tb = _unit_runs(u, e0, n, L, pieces, group)
    for r in range(ra, rb):
        a = max(r * L + ta, e0)
        b = min(r * L + tb, e0 + n)
        if a < b:
            f = _run_start(r, base, osz, ost) + (a - r * L)
            off = _words(W, A, B, C, D, f, b - a, k0, k1, s, draw)
            _segment_normal(out, a - e0, W, off, b - a, prm, S)


@_inline
def _unit_trunc(out, u, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W, S):
    k0, k1, s, draw = key
    ra, rb, ta, tb = _unit_runs(u, e0, n, L, pieces, group)
    for r in range(ra, rb):
        a = max(r * L + ta, e0)
        b = min(r * L + tb, e0 + n)
        if a < b:
            f = _run_start(r, base, osz, ost) + (a - r * L)
            off = _words(W, A, B, C, D, f, b - a, k0, k1, s, draw)
            _segment_trunc(out, a - e0, W, off, b - a, prm, S)


@_inline
def _key(k0, k1, s, draw):
    return np.uint64(k0), np.uint64(k1), np.uint64(s), np.uint64(draw)


@_kernel(parallel=True)
def fill_uniform(out, e0, base, osz, ost, L, k0, k1, s, draw, prm):
    """Fill ``out[0:n]`` with box-order elements ``[e0, e0 + n)`` of a box.

    The box has runs of ``L`` contiguous flat indices; run ``r`` starts at
    ``base + sum(digit_d(r) * ost[d])`` with the digits of ``r`` in the mixed radix ``osz``.
    """
    n = out.shape[0]
    if n == 0:
        return
    key = _key(k0, k1, s, draw)
    u0, nunits, pieces, group = _units(e0, n, L)
    for g in prange(nunits):
        A, B, C, D, W = _scratch()
        _unit_uniform(out, u0 + g, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W)


@_kernel(parallel=True)
def fill_normal(out, e0, base, osz, ost, L, k0, k1, s, draw, prm):
    """:func:`fill_uniform` with the normal transform."""
    n = out.shape[0]
    if n == 0:
        return
    key = _key(k0, k1, s, draw)
    u0, nunits, pieces, group = _units(e0, n, L)
    for g in prange(nunits):
        A, B, C, D, W = _scratch()
        S = _fscratch()
        _unit_normal(out, u0 + g, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W, S)


@_kernel(parallel=True)
def fill_trunc(out, e0, base, osz, ost, L, k0, k1, s, draw, prm):
    """:func:`fill_uniform` with the truncated-normal transform."""
    n = out.shape[0]
    if n == 0:
        return
    key = _key(k0, k1, s, draw)
    u0, nunits, pieces, group = _units(e0, n, L)
    for g in prange(nunits):
        A, B, C, D, W = _scratch()
        S = _fscratch()
        _unit_trunc(out, u0 + g, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W, S)


@_kernel()
def fill_uniform_serial(out, e0, base, osz, ost, L, k0, k1, s, draw, prm):
    """:func:`fill_uniform` on the calling thread (for fills of at most :data:`SERIAL_MAX`)."""
    n = out.shape[0]
    if n == 0:
        return
    key = _key(k0, k1, s, draw)
    u0, nunits, pieces, group = _units(e0, n, L)
    A, B, C, D, W = _scratch()
    for g in range(nunits):
        _unit_uniform(out, u0 + g, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W)


@_kernel()
def fill_normal_serial(out, e0, base, osz, ost, L, k0, k1, s, draw, prm):
    """:func:`fill_normal` on the calling thread."""
    n = out.shape[0]
    if n == 0:
        return
    key = _key(k0, k1, s, draw)
    u0, nunits, pieces, group = _units(e0, n, L)
    A, B, C, D, W = _scratch()
    S = _fscratch()
    for g in range(nunits):
        _unit_normal(out, u0 + g, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W, S)


@_kernel()
def fill_trunc_serial(out, e0, base, osz, ost, L, k0, k1, s, draw, prm):
    """:func:`fill_trunc` on the calling thread."""
    n = out.shape[0]
    if n == 0:
        return
    key = _key(k0, k1, s, draw)
    u0, nunits, pieces, group = _units(e0, n, L)
    A, B, C, D, W = _scratch()
    S = _fscratch()
    for g in range(nunits):
        _unit_trunc(out, u0 + g, e0, n, L, pieces, group, base, osz, ost, key, prm, A, B, C, D, W, S)


@_inline
def _scratch():
    return (
        np.empty(SEG // 4 + 2, np.uint32),
        np.empty(SEG // 4 + 2, np.uint32),
        np.empty(SEG // 4 + 2, np.uint32),
        np.empty(SEG // 4 + 2, np.uint32),
        np.empty(SEG + 8, np.uint32),
    )


@_inline
def _bf16_range(b, dst, lo, hi):
    for i in range(lo, hi):
        x = b[i]
        dst[i] = np.uint16((x + np.uint32(0x7FFF) + ((x >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16))


@_kernel(parallel=True)
def to_bfloat16(src, dst):
    """``dst`` (uint16 bits) = ``src`` (float32) rounded to nearest-even bfloat16, as torch does
    (c10::BFloat16's round_to_nearest_even); the values here are never NaN."""
    b = src.view(np.uint32)
    n = src.shape[0]
    for u in prange((n + SEG - 1) // SEG):
        _bf16_range(b, dst, u * SEG, min(n, u * SEG + SEG))


@_kernel()
def to_bfloat16_serial(src, dst):
    """:func:`to_bfloat16` on the calling thread."""
    _bf16_range(src.view(np.uint32), dst, 0, src.shape[0])


def launch_threads() -> None:
    """Start numba's thread pool: ``set_num_threads`` before the first launch can be lost."""
    try:
        from numba.np.ufunc.parallel import _launch_threads
    except ImportError:  # pragma: no cover - private API moved; the pool starts on first use
        return
    prefer_fork_safe_layer()
    _launch_threads()


# What fanin.rng.stream calls: every kernel behind its Launch (the raw numba dispatchers stay
# reachable as ``.kernel``).
fill_uniform, fill_normal, fill_trunc, to_bfloat16 = (
    Launch(k, parallel=True) for k in (fill_uniform, fill_normal, fill_trunc, to_bfloat16)
)
fill_uniform_serial, fill_normal_serial, fill_trunc_serial, to_bfloat16_serial = (
    Launch(k, parallel=False) for k in (fill_uniform_serial, fill_normal_serial, fill_trunc_serial, to_bfloat16_serial)
)
KERNELS = {KIND_UNIFORM: fill_uniform, KIND_NORMAL: fill_normal, KIND_TRUNC: fill_trunc}
SERIAL_KERNELS = {KIND_UNIFORM: fill_uniform_serial, KIND_NORMAL: fill_normal_serial, KIND_TRUNC: fill_trunc_serial}
