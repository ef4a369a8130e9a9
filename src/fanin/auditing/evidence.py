r"""Evidence of training: what i.i.d. draws from one distribution cannot produce.

A fresh initialization (outside the structured families: constant, identity, orthogonal, sparse,
gate blocks) is i.i.d. draws of one distribution. Each test below has that as its null hypothesis,
is one-sided (training makes the statistic *larger*), and gives a p-value; a tensor's evidence is
their Bonferroni combination :math:`p = \min(1, K \min_j p_j)` over the :math:`K` tests that apply.
The audit then controls the family-wise error rate over all of a checkpoint's tensors with Holm's
step-down procedure (:func:`holm`), so a checkpoint of fresh tensors raises no alarm with
probability at least :math:`1 - \alpha`.

Matrices are the tensor viewed as (shape[0], rest); :math:`\hat\mu, \hat\sigma^2, \hat\beta_2` the
mean, variance and :math:`m_4/m_2^2` of all values.

``spectrum`` (min side >= 8)
    The largest eigenvalue :math:`\lambda_1` of :math:`X X^\top` for the centred matrix
    :math:`X` (a random submatrix of at most :data:`~fanin.auditing.scanning.SPECTRUM_SHAPE`, whose
    entries are i.i.d. too), against the Marchenko-Pastur edge with the Tracy-Widom scale
    (Johnstone 2001, with the :math:`n-\tfrac12` centring of Ma 2012):
    :math:`s = (\lambda_1/\hat\sigma^2 - \mu_{np})/\sigma_{np}`, :math:`\mu_{np} =
    (\sqrt{n-\frac12} + \sqrt{p-\frac12})^2`, :math:`\sigma_{np} = \sqrt{\mu_{np}}\,
    (1/\sqrt{n-\frac12} + 1/\sqrt{p-\frac12})^{1/3}`; p from the TW1 right tail
    :math:`P(TW_1 > s) \approx \tfrac12\int_s^\infty \mathrm{Ai}(x)\,dx` (accurate to 1% at the
    0.95-0.999 quantiles; Airy integral by ``scipy.special.itairy``). Shown as "top singular value
    2.3x the MP edge". Normalizing by :math:`\hat\sigma` from the same data makes the test
    conservative (for Gaussian entries :math:`\lambda_1/\mathrm{tr}` is independent of the trace).
``row correlation`` (same submatrix, >= 32 values per row)
    Correlation between the rows of the smaller side, from the same Gram matrix:
    :math:`T = c\sum_{i<j} \cos_{ij}^2` (Schott 2005's statistic of complete independence), against
    a scaled chi-square with the exact mean and the variance of independent rows. Training
    adds many modest directions at once, which this sees before any single one clears the edge.
``row norms`` / ``column norms`` / ``kernel position norms`` (>= 16 values per group)
    A one-way analysis of variance of :math:`y = (x - \hat\mu)^2` across the :math:`r` groups
    (rows, columns, or the spatial taps of a convolution kernel) of :math:`c` values:
    :math:`F = \frac{B/(r-1)}{W/(n-r)}` (between- and within-group sums of squares of
    :math:`y`), referred to :math:`F(\nu_1, \nu_2)` with :math:`\nu_1 = (r-1)/(1 + \kappa_y/2c)`,
    :math:`\nu_2 = 2(n-r)/(2 + \kappa_y)`: the degrees of freedom of the two mean squares
    corrected for the excess kurtosis :math:`\kappa_y` of :math:`y` (from the 8th central moments
    of all values), which an F test of variances is not robust to (Box 1953). Shown as "row norms
    spread 3.1x" (:math:`\sqrt F`).
``row means`` / ``column means`` (>= 16 values per group)
    The same analysis of variance of :math:`x` itself (kurtosis :math:`\hat\kappa` of the values).
``heavy tails`` (>= 20 values)
    The kurtosis of all values (exact, from the scan) against the normal's (the heaviest-tailed
    candidate family): the Anscombe-Glynn test, one-sided (:func:`kurtosis_z`).
``no family fits``
    The best p-value of every hypothesis tested, fitted families included (a fitted family's tests
    are conservative, so this is a valid p-value for "i.i.d. from one of these families").
``norm layer`` (a rule, no p-value)
    A norm layer's affine parameter or running statistic (:func:`fanin.auditing.roles.is_norm`)
    that is not constant: every library initializes them to ones or zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fanin.auditing.scanning import Scan, submatrix
from fanin.rng.threads import one_thread

__all__ = ["MIN_GROUP", "Evidence", "combine", "holm", "kurtosis_z", "matrix_evidence", "tail_evidence", "tw1_sf"]

#: Fewest values per row/column group for the norm and mean tests.
MIN_GROUP = 16
_MIN_SPECTRUM = 8


@dataclass(frozen=True)
class Evidence:
    """One test of training: its name, statistic, one-sided p-value (``None`` for the norm-layer
    rule, which is decisive) and a sentence for the report."""

    test: str
    statistic: float
    p_value: float | None
    text: str

    def to_dict(self) -> dict:
        return {
            "test": self.test,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "text": self.text,
        }


def _finite(v):
    return v if v is None or math.isfinite(v) else None


def tw1_sf(s: float) -> float:
    r""":math:`P(TW_1 > s) \approx \tfrac12 \int_s^\infty \mathrm{Ai}(x)\,dx` (see the module docstring).

    >>> round(tw1_sf(2.0234), 4)  # the TW1 0.99 quantile
    0.01
    """
    from scipy.special import itairy

    if s <= 0:  # the Airy approximation is a right-tail one; below the median region say 1 (conservative)
        return 1.0
    return float(min(1.0, max(0.0, 0.5 * (1 / 3 - float(itairy(s)[0])))))


def _p_text(p: float) -> str:
    return "p < 1e-300" if p < 1e-300 else f"p = {p:.2g}"


def spectrum(tensor: torch.Tensor, keep_rows: np.ndarray | None = None) -> list[Evidence]:
    """The spectrum and row-correlation tests of the module docstring (none for a matrix too
    small for them), from one Gram matrix of the submatrix."""
    x = submatrix(tensor, keep_rows)
    if min(x.shape) < _MIN_SPECTRUM:
        return []
    scale = float(np.abs(x).max())
    if not scale > 0:
        return []
    x = x / scale
    x = x - x.mean()
    var = float((x * x).mean())
    if not var > 0:
        return []
    xt = torch.from_numpy(x)
    # torch's BLAS/LAPACK on one thread: the same bits whatever the thread count, and no spinning
    # threads when the cores are shared (2 threads on 2 busy cores measured 6-20x slower).
    with one_thread():
        g = xt @ xt.T if x.shape[0] <= x.shape[1] else xt.T @ xt
        top = float(torch.linalg.eigvalsh(g)[-1])
    n, p = max(x.shape) - 0.5, min(x.shape) - 0.5
    mu = (math.sqrt(n) + math.sqrt(p)) ** 2
    sigma = math.sqrt(mu) * (1 / math.sqrt(n) + 1 / math.sqrt(p)) ** (1 / 3)
    s = (top / var - mu) / sigma
    pv = tw1_sf(s)
    ratio = math.sqrt(top / var) / (math.sqrt(x.shape[0]) + math.sqrt(x.shape[1]))
    where = "" if x.shape == _as_matrix_shape(tensor) else f" (a random {x.shape[0]}x{x.shape[1]} submatrix)"
    found = [
        Evidence(
            "spectrum",
            s,
            pv,
            f"top singular value {ratio:.3g}x the Marchenko-Pastur edge{where} "
            f"(Tracy-Widom z = {s:.3g}, {_p_text(pv)})",
        )
    ]
    corr = _correlation(g.numpy(), max(x.shape), where)
    if corr is not None:
        found.append(corr)
    return found


def _correlation(g: np.ndarray, c: int, where: str) -> Evidence | None:
    r"""Correlation between the rows (the smaller side) of the centred submatrix, from its Gram
        matrix: :math:`T = (c - 1)\sum_{i<j} r_{ij}^2` against :math:`a\chi^2_{
    u}` with the mean
        :math:`P = r(r-1)/2` and the variance :math:`P (2c - 4)/(c + 1)` of independent rows (Schott
        2005; each :math:`r_{ij}^2` has mean exactly :math:`1/(c-1)` for exchangeable entries, and
        pairs sharing a row are uncorrelated)."""
    from scipy.special import chdtrc

    r = g.shape[0]
    d = np.sqrt(np.diag(g))
    # Below 32 values per row the sum of skewed Beta terms has a heavier upper tail than the
    # scaled chi-square (measured: 0.5% at the 0.1% level for 8x8).
    if r < 2 or c < 32 or not np.all(d > 0):
        return None
    corr = g / d[:, None] / d[None, :]
    pairs = r * (r - 1) / 2
    t = c * float((np.sum(corr * corr) - r) / 2)
    a = (c - 1) / (c + 2)
    nu = pairs / a
    p = float(chdtrc(nu, t / a))
    ratio = t / pairs
    return Evidence(
        "row correlation",
        t,
        p,
        f"rows correlated: mean squared correlation {ratio:.3g}x that of i.i.d. "
        f"rows{where} (chi-square {t:.4g} on {pairs:.0f} pairs, {_p_text(p)})",
    )


def _as_matrix_shape(t: torch.Tensor) -> tuple[int, int]:
    return (int(t.shape[0]), int(t.numel() // t.shape[0])) if t.dim() >= 2 else (1, int(t.numel()))


def _f_test(between: float, total: float, groups: int, count: int, kurt: float) -> tuple[float, float]:
    r"""(F, p) of a one-way analysis of variance of ``groups`` equal groups of ``count`` values whose
    kurtosis is ``kurt``: between- and within-group sums of squares as scaled chi-squares, their
    degrees of freedom divided by the kurtosis factors (Box 1953: the variance of a group's mean
    square is :math:`(2 + \kappa/c)/(r-1)`, of the pooled one :math:`(2 + \kappa)/(n-r)`)."""
    from scipy.special import fdtrc

    n = groups * count
    within = max(total - between, 0.0)
    if not within > 0:
        return math.inf, 0.0
    excess = max(kurt, -2.0 + 1e-9)
    nu1 = (groups - 1) / (1 + excess / (2 * count))
    nu2 = 2 * (n - groups) / (2 + excess)
    f = (between / (groups - 1)) / (within / (n - groups))
    return f, float(fdtrc(nu1, nu2, f))


def _norm_groups(sq: np.ndarray, sums: np.ndarray, count: int, s: Scan, what: str) -> Evidence | None:
    r"""Heterogeneity of the sums of squares :math:`S_i` of ``len(sq)`` groups of ``count`` values:
    the analysis of variance of :math:`y = (x - \hat\mu)^2` across the groups (:func:`_f_test`),
    with the kurtosis of :math:`y` from the 8th moments of all values."""
    r = sq.size
    m = s.moments
    if r < 2 or count < MIN_GROUP or not m.m2 > 0:
        return None
    var_y = m.m4 - m.m2 * m.m2
    if not var_y > 1e-12 * m.m2 * m.m2:
        return None
    mu4_y = m.m(8) - 4 * m.m(6) * m.m2 + 6 * m.m4 * m.m2**2 - 3 * m.m2**4
    kurt_y = mu4_y / (var_y * var_y) - 3
    centred = sq - 2 * m.mean * sums + count * m.mean * m.mean
    between = float(((centred - centred.mean()) ** 2).sum()) / count
    f, p = _f_test(between, r * count * var_y, r, count, kurt_y)
    return Evidence(
        f"{what} norms",
        f,
        p,
        f"{what} norms spread {math.sqrt(f):.3g}x what i.i.d. draws give (F = {f:.4g} over {r} {what}s, {_p_text(p)})",
    )


def _mean_groups(sums: np.ndarray, count: int, s: Scan, what: str) -> Evidence | None:
    """Heterogeneity of the means of ``len(sums)`` groups of ``count`` values (:func:`_f_test`)."""
    r = sums.size
    m = s.moments
    if r < 2 or count < MIN_GROUP or not m.m2 > 0:
        return None
    between = float(((sums - count * m.mean) ** 2).sum()) / count
    f, p = _f_test(between, r * count * m.m2, r, count, s.kurtosis)
    return Evidence(
        f"{what} means",
        f,
        p,
        f"{what} means spread {math.sqrt(f):.3g}x what i.i.d. draws give (F = {f:.4g} over {r} {what}s, {_p_text(p)})",
    )


def matrix_evidence(tensor: torch.Tensor, s: Scan, keep_rows: np.ndarray | None = None) -> list[Evidence]:
    """The spectrum, norm and mean tests for a tensor of 2 or more dims (``s`` its scan, padding
    rows left out; ``keep_rows`` marks the rows kept)."""
    row_sq, row_sum, col_sq, col_sum = s.row_sq, s.row_sum, s.col_sq, s.col_sum
    if row_sq is None or row_sum is None or col_sq is None or col_sum is None or not s.finite or s.n == 0:
        return []  # not a matrix scan (s.matrix is False), or nothing to test
    found = [
        *spectrum(tensor, keep_rows),
        _norm_groups(row_sq, row_sum, s.cols, s, "row"),
        _norm_groups(col_sq, col_sum, s.rows, s, "column"),
        _mean_groups(row_sum, s.cols, s, "row"),
        _mean_groups(col_sum, s.rows, s, "column"),
    ]
    if tensor.dim() >= 3:
        taps = int(np.prod(tensor.shape[2:]))
        if taps >= 2 and col_sq.size % taps == 0:
            found.append(
                _norm_groups(
                    col_sq.reshape(-1, taps).sum(0),
                    col_sum.reshape(-1, taps).sum(0),
                    s.rows * (s.cols // taps),
                    s,
                    "kernel position",
                )
            )
    return [e for e in found if e is not None]


def kurtosis_z(b2: float, n: int) -> float:
    r"""The Anscombe-Glynn (1983) normal deviate of the sample kurtosis :math:`b_2 = m_4/m_2^2` of
    ``n`` values under normality, as in D'Agostino, Belanger & D'Agostino (1990) and
    ``scipy.stats.kurtosistest`` (which needs the values; this needs only :math:`b_2` and ``n``,
    so the audit tests the kurtosis of *all* values from the scan's exact moments).

    >>> import numpy as np
    >>> from scipy import stats
    >>> x = np.random.default_rng(0).standard_normal(500) ** 3
    >>> b2 = float(((x - x.mean()) ** 4).mean() / x.var() ** 2)
    >>> bool(np.isclose(kurtosis_z(b2, 500), stats.kurtosistest(x).statistic))
    True
    """
    e = 3.0 * (n - 1) / (n + 1)
    var = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))
    x = (b2 - e) / math.sqrt(var)
    sqrt_beta1 = (
        6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9)) * math.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3)))
    )
    a = 6.0 + 8.0 / sqrt_beta1 * (2.0 / sqrt_beta1 + math.sqrt(1 + 4.0 / sqrt_beta1**2))
    term1 = 1 - 2 / (9.0 * a)
    denom = 1 + x * math.sqrt(2 / (a - 4.0))
    term2 = math.copysign(((1 - 2.0 / a) / abs(denom)) ** (1 / 3), denom) if denom != 0 else -math.inf
    return (term1 - term2) / math.sqrt(2 / (9.0 * a))


def tail_evidence(s: Scan) -> Evidence | None:
    """The heavy-tails test on the kurtosis of all values (:func:`kurtosis_z`, one-sided)."""
    from scipy.special import ndtr

    if s.n < 20 or not s.kurtosis > 0:
        return None
    z = kurtosis_z(s.kurtosis + 3, s.n)
    p = float(ndtr(-z))
    return Evidence(
        "heavy tails",
        z,
        p,
        f"excess kurtosis {s.kurtosis:.3g} (a normal has 0, every candidate family at most 0; "
        f"Anscombe-Glynn z = {z:.3g}, {_p_text(p)})",
    )


def combine(evidence: list[Evidence] | tuple[Evidence, ...]) -> float | None:
    """Bonferroni over the tests with a p-value; ``0.0`` when a rule (p ``None``) applies; ``None``
    when no test applies."""
    if any(e.p_value is None for e in evidence):
        return 0.0
    ps = [e.p_value for e in evidence if e.p_value is not None]  # every one, after the check above
    return min(1.0, len(ps) * min(ps)) if ps else None


def holm(pvalues: list[float | None], alpha: float) -> list[bool]:
    """Holm's step-down rejections at family-wise level ``alpha`` (``None``: no test, never rejected).

    >>> holm([0.001, 0.03, None, 0.3], 0.05)
    [True, False, False, False]
    """
    tested = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(tested)
    out = [False] * len(pvalues)
    for k, (p, i) in enumerate(tested):
        if p > alpha / (m - k):
            break
        out[i] = True
    return out
