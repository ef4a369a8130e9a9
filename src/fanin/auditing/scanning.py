r"""One streaming pass over a tensor: exact moments of every value, row/column sums, a fixed sample.

:func:`scan` first draws the fixed sample (below), then reads the tensor in chunks of at most
:data:`CHUNK` values and accumulates, in float64, the power sums :math:`\sum (x - c)^k`,
:math:`k = 1..8`, about the sample's mean :math:`c` (a fraction of a standard deviation from the
mean, so the central moments follow from them without cancellation), with one numba loop that
reads each value once (:mod:`fanin.auditing._kernels`; numpy without numba). A chunk is converted
at most to float32 (bfloat16 and float16 values are float32 values exactly); no float64 copy of
the tensor, or of a chunk, is made. Subsets of values are removed (:meth:`Scan.without_rows`) with
the pairwise update of Pébay (2008, *Formulas for robust, one-pass parallel computation of
covariances and arbitrary-order statistical moments*) run backwards: for two parts
:math:`a, b` with :math:`\delta = \bar x_b - \bar x_a` and :math:`n = n_a + n_b`,

.. math::
    M_2 &= M_{2a} + M_{2b} + \delta^2 n_a n_b / n \\
    M_3 &= M_{3a} + M_{3b} + \delta^3 n_a n_b (n_a - n_b)/n^2 + 3\delta (n_a M_{2b} - n_b M_{2a})/n \\
    M_4 &= M_{4a} + M_{4b} + \delta^4 n_a n_b (n_a^2 - n_a n_b + n_b^2)/n^3
           + 6\delta^2 (n_a^2 M_{2b} + n_b^2 M_{2a})/n^2 + 4\delta (n_a M_{3b} - n_b M_{3a})/n

(:math:`M_k = \sum (x - \bar x)^k`), and its general form (eq. 3.1) for every order up to 8 (the
norm tests of :mod:`fanin.auditing.evidence` need the kurtosis of squared values). Values are
divided by a power of two :attr:`Scan.unit` (within a factor 2 of the largest magnitude: an exact
scaling), so no sum overflows even for values near the float64 limit. The same pass accumulates,
for tensors of 2 or more dims viewed as (shape[0], rest), the sum and the sum of squares of every
row and every column, and counts exact zeros.

Distribution tests use a fixed sample: :data:`SAMPLE_SIZE` values drawn without replacement with
``numpy.random.default_rng(SAMPLE_SEED)`` (every value when the tensor has fewer), so a report is
reproducible. The spectrum test uses a random submatrix of at most :data:`SPECTRUM_SHAPE`
(:func:`submatrix`), drawn the same way.

>>> import torch
>>> s = scan(torch.arange(12.0).reshape(3, 4))
>>> s.n, s.mean, round(s.var, 4), s.unit, s.row_sum.tolist()
(12, 5.5, 11.9167, 8.0, [0.75, 2.75, 4.75])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np
import torch

__all__ = ["CHUNK", "SAMPLE_SEED", "SAMPLE_SIZE", "SPECTRUM_SHAPE", "Moments", "Scan", "scan", "submatrix", "values_of"]

#: Values converted to float64 at a time (8 MiB of float64 per chunk).
CHUNK = 1 << 20
#: Size of the fixed sample the distribution tests (KS) use.
SAMPLE_SIZE = 8192
#: Seed of the sample and of the spectrum's submatrix.
SAMPLE_SEED = 20240917
#: Largest (smaller side, larger side) of the submatrix whose spectrum is computed.
SPECTRUM_SHAPE = (256, 1024)


#: Highest central moment kept (the norm tests need the kurtosis of squared values: 8th moments).
ORDER = 8


@dataclass(frozen=True)
class Moments:
    """Count, mean and central moments :math:`m_k = M_k / n`, :math:`k = 2..8` (in scan units)."""

    n: int
    mean: float
    central: tuple[float, ...]

    @property
    def m2(self) -> float:
        return self.central[0]

    @property
    def m3(self) -> float:
        return self.central[1]

    @property
    def m4(self) -> float:
        return self.central[2]

    def m(self, k: int) -> float:
        return self.central[k - 2]

    @staticmethod
    def empty() -> Moments:
        return Moments(0, math.nan, (math.nan,) * (ORDER - 1))

    @staticmethod
    def _sums(a: Moments) -> list[float]:
        return [0.0, 0.0] + [c * a.n for c in a.central]  # index k: M_k (M_0, M_1 unused)

    @staticmethod
    def merge(a: Moments, b: Moments) -> Moments:
        """Pébay's update (2008, eq. 3.1) for every order up to :data:`ORDER`."""
        if a.n == 0:
            return b
        if b.n == 0:
            return a
        n, na, nb = a.n + b.n, a.n, b.n
        d = b.mean - a.mean
        A, B = Moments._sums(a), Moments._sums(b)
        out = []
        for p in range(2, ORDER + 1):
            v = A[p] + B[p]
            for k in range(1, p - 1):
                v += math.comb(p, k) * d**k * ((-nb / n) ** k * A[p - k] + (na / n) ** k * B[p - k])
            v += (na * nb * d / n) ** p * (1 / nb ** (p - 1) - (-1 / na) ** (p - 1))
            out.append(v / n)
        return Moments(n, a.mean + d * nb / n, tuple(out))

    def without(self, b: Moments) -> Moments:
        """The moments of the values left when the part ``b`` is removed (the merge run backwards)."""
        n, nb = self.n, b.n
        na = n - nb
        if na <= 0:
            return Moments.empty()
        ma = (n * self.mean - nb * b.mean) / na
        d = b.mean - ma
        T, B = Moments._sums(self), Moments._sums(b)
        A = [0.0, 0.0]
        for p in range(2, ORDER + 1):
            v = T[p] - B[p]
            for k in range(1, p - 1):
                v -= math.comb(p, k) * d**k * ((-nb / n) ** k * A[p - k] + (na / n) ** k * B[p - k])
            v -= (na * nb * d / n) ** p * (1 / nb ** (p - 1) - (-1 / na) ** (p - 1))
            A.append(v)
        central = tuple((max(v, 0.0) if p % 2 == 0 else v) / na for p, v in enumerate(A) if p >= 2)
        return Moments(na, ma, central)

    @staticmethod
    def of(x: np.ndarray) -> Moments:
        if x.size == 0:
            return Moments.empty()
        m = float(x.mean())
        d = x - m
        return Moments(int(x.size), m, _powers(d)[0])


def _powers(d: np.ndarray) -> tuple[tuple[float, ...], np.ndarray]:
    """(mean of d^k for k = 2..8, d^2) for deviations ``d``."""
    d2 = d * d
    d3 = d2 * d
    d4 = d2 * d2
    n = d.size
    sums = (
        float(d2.sum()),
        float(d3.sum()),
        float(d4.sum()),
        float((d4 * d).sum()),
        float((d4 * d2).sum()),
        float((d4 * d3).sum()),
        float((d4 * d4).sum()),
    )
    return tuple(v / n for v in sums), d2


@dataclass
class Scan:
    """What one pass over a tensor knows. Moments, row/column sums and :attr:`sample` are in units
    of :attr:`unit` (values divided by it); :attr:`mean`, :attr:`std`, :attr:`min`, :attr:`max`
    are in the tensor's own units."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    unit: float
    moments: Moments
    lo: float
    hi: float
    zeros: int
    nan: int = 0
    posinf: int = 0
    neginf: int = 0
    rows: int = 1
    cols: int = 1
    row_sum: np.ndarray | None = None
    row_sq: np.ndarray | None = None
    col_sum: np.ndarray | None = None
    col_sq: np.ndarray | None = None
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    sample_rows: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    sample_index: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    excluded_rows: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        return self.moments.n

    @property
    def finite(self) -> bool:
        return not (self.nan or self.posinf or self.neginf)

    @property
    def mean(self) -> float:
        return self.moments.mean * self.unit

    @property
    def var(self) -> float:
        return self.moments.m2 * self.unit * self.unit

    @property
    def std(self) -> float:
        return math.sqrt(max(self.moments.m2, 0.0)) * self.unit

    @property
    def min(self) -> float:
        return self.lo * self.unit

    @property
    def max(self) -> float:
        return self.hi * self.unit

    @property
    def kurtosis(self) -> float:
        """Excess kurtosis :math:`m_4 / m_2^2 - 3` (nan for constant values)."""
        m = self.moments
        return m.m4 / (m.m2 * m.m2) - 3.0 if m.m2 > 0 else math.nan

    @property
    def matrix(self) -> bool:
        return self.row_sq is not None

    def without_rows(self, rows: list[int], tensor: torch.Tensor) -> Scan:
        """This scan of ``tensor`` with the given all-zero rows left out (an embedding's padding row)."""
        if not rows or self.row_sum is None or self.row_sq is None:
            return self
        keep = np.ones(self.rows, dtype=bool)
        keep[rows] = False
        lo, hi = _lo_hi_without(tensor, keep, self.unit)
        zero = Moments(len(rows) * self.cols, 0.0, (0.0,) * (ORDER - 1))
        in_keep = keep[self.sample_rows] if self.sample_rows.size else np.ones(self.sample.size, dtype=bool)
        # Renumber the kept rows 0..rows-1 so that sample_rows keeps indexing row_sum / row_sq.
        renumber = np.cumsum(keep) - 1
        s = self.sample[in_keep]
        return Scan(
            self.shape,
            self.dtype,
            self.unit,
            self.moments.without(zero),
            lo,
            hi,
            self.zeros - len(rows) * self.cols,
            rows=int(keep.sum()),
            cols=self.cols,
            row_sum=self.row_sum[keep],
            row_sq=self.row_sq[keep],
            col_sum=self.col_sum,
            col_sq=self.col_sq,
            sample=s,
            sample_rows=renumber[self.sample_rows[in_keep]],
            sample_index=self.sample_index[in_keep],
            excluded_rows=tuple(rows),
        )


def _lo_hi_without(t: torch.Tensor, keep: np.ndarray, unit: float) -> tuple[float, float]:
    """Least and largest value of the kept rows, one row block at a time."""
    lo, hi = math.inf, -math.inf
    rows = np.flatnonzero(keep)
    step = max(1, CHUNK // max(1, t.numel() // max(1, t.shape[0])))
    for i in range(0, rows.size, step):
        part = t.detach().index_select(0, torch.from_numpy(rows[i : i + step]))
        a, b = torch.aminmax(part.reshape(-1))
        lo, hi = min(lo, float(a)), max(hi, float(b))
    return lo / unit, hi / unit


def _as_rows(t: torch.Tensor) -> tuple[int, int]:
    if t.dim() >= 2:
        return int(t.shape[0]), int(t.numel() // t.shape[0])
    return 1, int(t.numel())


def _blocks(rows: int, cols: int):
    """(row slice, column slice) blocks of at most CHUNK values, rows first."""
    if cols <= CHUNK:
        step = max(1, CHUNK // max(cols, 1))
        for r0 in range(0, rows, step):
            yield slice(r0, min(rows, r0 + step)), slice(0, cols)
    else:
        for r0 in range(rows):
            for c0 in range(0, cols, CHUNK):
                yield slice(r0, r0 + 1), slice(c0, min(cols, c0 + CHUNK))


def _flat_index(t: torch.Tensor, flat: np.ndarray) -> torch.Tensor:
    """``t.reshape(-1)[flat]`` without copying a non-contiguous ``t``."""
    index = torch.from_numpy(np.ascontiguousarray(flat, dtype=np.int64))
    if t.is_contiguous():
        return t.reshape(-1)[index]
    coords = np.unravel_index(flat, tuple(t.shape))
    return t[tuple(torch.from_numpy(np.ascontiguousarray(c, dtype=np.int64)) for c in coords)]


def values_of(t: torch.Tensor, flat: np.ndarray | None = None) -> np.ndarray:
    """float64 values of ``t`` (all, or at the flat indices ``flat``), on the CPU."""
    v = t.flatten() if flat is None else _flat_index(t, flat)
    return v.detach().to(device="cpu", dtype=torch.float64).numpy()


def _count_nonfinite(t: torch.Tensor) -> tuple[int, int, int]:
    nan = int(torch.isnan(t).sum())
    posinf = int(torch.isposinf(t).sum())
    neginf = int(torch.isneginf(t).sum())
    return nan, posinf, neginf


def _kernels() -> ModuleType | None:
    """:mod:`fanin.auditing._kernels`, or ``None`` without numba (imported once)."""
    global _KERNELS
    if _KERNELS is False:
        try:
            from fanin.auditing import _kernels as k
        except ImportError:
            _KERNELS = None
        else:
            _KERNELS = k
    return _KERNELS if isinstance(_KERNELS, ModuleType) else None


_KERNELS: ModuleType | bool | None = False


def _central(raw: np.ndarray) -> tuple[float, tuple[float, ...]]:
    """(mean, central moments of order 2..8) from the raw moments ``raw[k-1]`` = mean of v^k."""
    a = [1.0, *raw.tolist()]
    d = a[1]
    out = []
    for k in range(2, ORDER + 1):
        out.append(sum(math.comb(k, j) * a[j] * (-d) ** (k - j) for j in range(k + 1)))
    return d, tuple(max(v, 0.0) if k % 2 == 0 else v for k, v in zip(range(2, ORDER + 1), out, strict=True))


def _numpy_sums(b: np.ndarray, shift: float, inv: float, sums, row1, row2, col1, col2, c0: int) -> int:
    """The kernel's sums with numpy (no numba): the same quantities in several passes, on a
    float64 copy of the chunk (a float32 array minus a Python float stays float32 in numpy)."""
    v = (b.astype(np.float64) - shift) * inv
    v2 = v * v
    v4 = v2 * v2
    flat, flat2, flat4 = v.reshape(-1), v2.reshape(-1), v4.reshape(-1)
    sums += [
        flat.sum(),
        flat2.sum(),
        flat2 @ flat,
        flat4.sum(),
        flat4 @ flat,
        flat4 @ flat2,
        (flat4 * flat2) @ flat,
        flat4 @ flat4,
    ]
    row1 += v.sum(1)
    row2 += v2.sum(1)
    col1[c0 : c0 + b.shape[1]] += v.sum(0)
    col2[c0 : c0 + b.shape[1]] += v2.sum(0)
    return int(b.size - np.count_nonzero(b))


def scan(tensor: torch.Tensor) -> Scan:
    """One pass over ``tensor`` (any floating dtype torch converts to float64); see the module docstring."""
    t = tensor.detach()
    shape = tuple(t.shape)
    n = t.numel()
    if n == 0:
        return Scan(shape, t.dtype, 1.0, Moments.empty(), math.nan, math.nan, 0)
    lo_t, hi_t = torch.aminmax(t.reshape(-1) if t.is_contiguous() else t.flatten())
    lo, hi = float(lo_t), float(hi_t)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        nan, posinf, neginf = _count_nonfinite(t)
        return Scan(shape, t.dtype, 1.0, Moments.empty(), math.nan, math.nan, 0, nan=nan, posinf=posinf, neginf=neginf)
    biggest = max(abs(lo), abs(hi))
    unit = 1.0 if biggest == 0 else math.ldexp(1.0, math.frexp(biggest)[1] - 1)  # |x| / unit < 2
    inv = 1.0 / unit
    if n <= SAMPLE_SIZE:
        flat = np.arange(n)
        sample = values_of(t) * inv
    else:
        flat = np.sort(np.random.default_rng(SAMPLE_SEED).choice(n, SAMPLE_SIZE, replace=False))
        sample = values_of(t, flat) * inv
    # Power sums about the sample's mean (within a fraction of a std of the mean): the central
    # moments then follow from them without cancellation.
    shift = float(sample.mean()) * unit
    rows, cols = _as_rows(t)
    matrix = t.dim() >= 2
    row1, row2 = np.zeros(rows), np.zeros(rows)
    col1, col2 = np.zeros(cols), np.zeros(cols)
    sums = np.zeros(ORDER)
    zeros = 0
    kernels = _kernels()
    for rs, cs in _blocks(rows, cols):
        if matrix:
            part = t[rs].reshape(rs.stop - rs.start, cols)[:, cs]
        else:
            part = (t.unsqueeze(0) if t.dim() == 1 else t.reshape(1, 1))[:, cs]
        if part.dtype not in (torch.float32, torch.float64):
            part = part.to(torch.float32)  # bfloat16, float16 (and the float16 copy of float8): exact
        b = np.ascontiguousarray(part.to(device="cpu").numpy())
        add = kernels.power_sums if kernels is not None else _numpy_sums
        zeros += add(b, shift, inv, sums, row1[rs], row2[rs], col1, col2, cs.start)
    mean_v, central = _central(sums / n)
    s0 = shift * inv
    moments = Moments(n, mean_v + s0, central)
    row_sum: np.ndarray | None
    row_sq: np.ndarray | None
    col_sum: np.ndarray | None
    col_sq: np.ndarray | None
    if matrix:
        row_sum, row_sq = row1 + cols * s0, row2 + 2 * s0 * row1 + cols * s0 * s0
        col_sum, col_sq = col1 + rows * s0, col2 + 2 * s0 * col1 + rows * s0 * s0
    else:
        row_sum = row_sq = col_sum = col_sq = None
    return Scan(
        shape,
        t.dtype,
        unit,
        moments,
        lo * inv,
        hi * inv,
        zeros,
        rows=rows,
        cols=cols,
        row_sum=row_sum,
        row_sq=row_sq,
        col_sum=col_sum,
        col_sq=col_sq,
        sample=sample,
        sample_rows=flat // cols,
        sample_index=flat,
    )


def submatrix(
    tensor: torch.Tensor, keep_rows: np.ndarray | None = None, limit: tuple[int, int] = SPECTRUM_SHAPE
) -> np.ndarray:
    """A random submatrix of ``tensor`` viewed as (shape[0], rest), float64: at most ``limit``
    (smaller side, larger side), rows drawn from ``keep_rows`` (default all), columns from all,
    without replacement, seed :data:`SAMPLE_SEED`. Only the chosen values are read."""
    t = tensor.detach()
    rows, cols = _as_rows(t)
    pool = np.arange(rows) if keep_rows is None else np.flatnonzero(keep_rows)
    small, large = limit
    r_lim, c_lim = (small, large) if pool.size <= cols else (large, small)
    rng = np.random.default_rng(SAMPLE_SEED)
    r = np.sort(rng.choice(pool, r_lim, replace=False)) if pool.size > r_lim else pool
    c = np.sort(rng.choice(cols, c_lim, replace=False)) if cols > c_lim else np.arange(cols)
    flat = (r[:, None] * cols + c[None, :]).reshape(-1)
    return values_of(t, flat).reshape(r.size, c.size)
