"""The audit's streaming pass as one numba loop: power sums, row and column sums, zeros.

Imported lazily by :mod:`fanin.auditing.scanning` (numba is a dependency of fanin; without it the
scan falls back to numpy, the same sums in more passes). One read of each value, no float64 copy
of a chunk: for ``v = (x - shift) * inv`` it accumulates in float64 :math:`\\sum v^k` for
:math:`k = 1..8`, each row's and each column's :math:`\\sum v` and :math:`\\sum v^2`, and the
count of exact zeros. The loop is compiled without ``fastmath`` (the additions are not
reassociated, so the sums have the same bits on every run).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numba as nb
import numpy as np

if TYPE_CHECKING:
    from numba.core.dispatcher import Dispatcher

__all__ = ["CACHED", "power_sums"]

#: False when numba found no writable cache directory: the kernel then compiles in every process.
CACHED = True

_F = TypeVar("_F", bound=Callable[..., object])


def _kernel(fn: _F) -> Dispatcher[_F]:
    """``fn`` compiled in nopython mode, numpy's error model, without the GIL, cached on disk when
    numba can write its cache."""
    global CACHED
    try:
        return nb.njit(fn, cache=True, error_model="numpy", nogil=True)
    except RuntimeError as exc:  # numba refuses cache=True when no cache directory is writable
        if "cannot cache" not in str(exc):
            raise
        CACHED = False
        return nb.njit(fn, cache=False, error_model="numpy", nogil=True)


@_kernel
def _power_sums(
    x: np.ndarray,
    shift: float,
    inv: float,
    sums: np.ndarray,
    row1: np.ndarray,
    row2: np.ndarray,
    col1: np.ndarray,
    col2: np.ndarray,
    c0: int,
) -> int:
    rows, cols = x.shape
    s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = 0.0
    zeros = 0
    for i in range(rows):
        r1 = 0.0
        r2 = 0.0
        for j in range(cols):
            raw = x[i, j]
            if raw == 0:
                zeros += 1
            v = (np.float64(raw) - shift) * inv
            v2 = v * v
            v4 = v2 * v2
            r1 += v
            r2 += v2
            col1[c0 + j] += v
            col2[c0 + j] += v2
            s1 += v
            s2 += v2
            s3 += v2 * v
            s4 += v4
            s5 += v4 * v
            s6 += v4 * v2
            s7 += v4 * v2 * v
            s8 += v4 * v4
        row1[i] += r1
        row2[i] += r2
    sums[0] += s1
    sums[1] += s2
    sums[2] += s3
    sums[3] += s4
    sums[4] += s5
    sums[5] += s6
    sums[6] += s7
    sums[7] += s8
    return zeros


def power_sums(
    x: np.ndarray,
    shift: float,
    inv: float,
    sums: np.ndarray,
    row1: np.ndarray,
    row2: np.ndarray,
    col1: np.ndarray,
    col2: np.ndarray,
    c0: int,
) -> int:
    """Add the chunk ``x`` (2-D, float32 or float64) to the running sums; returns its zeros.

    ``row1``/``row2`` are the chunk's rows' slots, ``col1``/``col2`` the whole tensor's columns,
    of which the chunk starts at ``c0``.

    >>> s, r1, r2, c1, c2 = np.zeros(8), np.zeros(2), np.zeros(2), np.zeros(3), np.zeros(3)
    >>> power_sums(np.array([[1.0, 2.0, 0.0], [3.0, 4.0, 5.0]]), 0.0, 1.0, s, r1, r2, c1, c2, 0)
    1
    >>> s[:2].tolist(), r1.tolist(), c2.tolist()
    ([15.0, 55.0], [3.0, 12.0], [10.0, 20.0, 25.0])
    """
    return int(_power_sums(x, float(shift), float(inv), sums, row1, row2, col1, col2, int(c0)))
