r"""Variance scaling: from a scale, a fan and a distribution to the bound or standard deviation.

Keras, TensorFlow 1.x and JAX share one rule (LeCun 1998, Glorot & Bengio 2010, He et al. 2015):
the weights get the variance :math:`\sigma^2 = \text{scale} / n`, where :math:`n` is the fan that
the mode selects, drawn from one of three distributions with that variance:

==================  ==========================================================================
distribution        what is drawn
==================  ==========================================================================
uniform             :math:`\mathcal{U}[-\ell, \ell)`, :math:`\ell = \sqrt{3\sigma^2}`
untruncated_normal  :math:`\mathcal{N}(0, \sigma^2)`
truncated_normal    :math:`\mathcal{N}(0, s^2)` cut at :math:`\pm 2s`, with
                    :math:`s = \sigma / 0.8796\ldots`, so that the std *after* truncation is
                    :math:`\sigma` (0.8796... is the std of N(0, 1) truncated to [-2, 2])
==================  ==========================================================================

What the frameworks call ``"normal"`` differs (Keras and later TF 1.x: truncated; JAX:
untruncated), so this module only knows the three unambiguous names above; each framework module
maps its own names onto them.

Keras and TF 1.x divide by ``max(1, n)`` so that a zero fan never divides by zero (``guard=True``);
JAX divides by ``n`` as it is (``guard=False``), and where JAX would raise ``ZeroDivisionError``
this module raises a :class:`ValueError` that says why.

>>> variance_scaling(2.0, 50, "uniform").limit
0.34641016151377546
>>> round(variance_scaling(1.0, 100, "truncated_normal").stddev, 12)
0.113684723434
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fanin.errors import describe_choice

__all__ = [
    "DISTRIBUTIONS",
    "TRUNCATED_NORMAL_STD",
    "TRUNCATION",
    "ScaledDistribution",
    "scaled_variance",
    "truncated_normal_stddev",
    "truncnorm_mean",
    "truncnorm_std",
    "uniform_limit",
    "untruncated_normal_stddev",
    "variance_scaling",
]

#: The standard deviation of N(0, 1) truncated to [-2, 2]: ``scipy.stats.truncnorm.std(-2, 2)``.
#: Keras, TF 1.x (later versions) and JAX all divide by this literal.
TRUNCATED_NORMAL_STD = 0.87962566103423978

#: Where ``truncated_normal`` cuts, in units of its (pre-truncation) standard deviation.
TRUNCATION = 2.0

DISTRIBUTIONS = ("truncated_normal", "uniform", "untruncated_normal")


@dataclass(frozen=True)
class ScaledDistribution:
    """What variance scaling draws: a distribution and its one parameter.

    ``variance`` is the target variance scale / fan. ``limit`` is the uniform bound (``None`` for
    the normals); ``stddev`` is the normal's standard deviation, for ``truncated_normal`` the one
    *before* truncation at ``±TRUNCATION·stddev`` (``None`` for uniform).
    """

    distribution: str
    variance: float
    limit: float | None = None
    stddev: float | None = None


def _check_real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {name}={value!r}")
    return float(value)


def scaled_variance(scale: float, fan: float, *, guard: bool = True) -> float:
    r"""The target variance :math:`\text{scale} / \max(1, n)` (``guard=True``) or :math:`\text{scale} / n`.

    Args:
        scale: The scale (a finite number).
        fan: The fan ``n`` (a finite, non-negative number).
        guard: Divide by max(1, fan), as Keras and TF 1.x do; ``False``: by the fan, as JAX does.

    Returns:
        The target variance.

    Raises:
        ValueError: ``scale`` or ``fan`` is not a finite number, ``fan`` is negative, or it is 0
            with ``guard=False``.

    Examples:
        >>> scaled_variance(2.0, 0)
        2.0
        >>> scaled_variance(2.0, 0.5, guard=False)
        4.0
        >>> scaled_variance(2.0, 0, guard=False)
        Traceback (most recent call last):
        ...
        ValueError: variance scaling divides scale by the fan, and the fan is 0 (fan=0): a weight with a zero-size input
        or output axis has no fan. Keras and TF 1.x divide by max(1, fan) instead (guard=True).
    """
    scale = _check_real("scale", scale)
    fan = _check_real("fan", fan)
    if fan < 0:
        raise ValueError(f"a fan is a count of units and cannot be negative, got fan={fan!r}")
    if guard:
        return scale / max(1.0, fan)
    if fan == 0:
        raise ValueError(
            f"variance scaling divides scale by the fan, and the fan is 0 (fan={fan:g}): a weight with "
            "a zero-size input or output axis has no fan. Keras and TF 1.x divide by max(1, fan) "
            "instead (guard=True)."
        )
    return scale / fan


def uniform_limit(variance: float) -> float:
    r"""The bound :math:`\ell = \sqrt{3\sigma^2}` of the uniform :math:`\mathcal{U}[-\ell, \ell)`.

    The uniform of that bound has variance :math:`\sigma^2`.

    Args:
        variance: The target variance :math:`\sigma^2`.

    Returns:
        The bound.

    Examples:
        >>> uniform_limit(1.0 / 3.0)
        1.0
    """
    return math.sqrt(3.0 * variance)


def untruncated_normal_stddev(variance: float) -> float:
    r"""The standard deviation :math:`\sigma = \sqrt{\sigma^2}` of the plain normal.

    Args:
        variance: The target variance :math:`\sigma^2`.

    Returns:
        The standard deviation.

    Examples:
        >>> untruncated_normal_stddev(0.25)
        0.5
    """
    return math.sqrt(variance)


def truncated_normal_stddev(variance: float) -> float:
    r"""The pre-truncation std :math:`s = \sqrt{\sigma^2} / 0.8796\ldots`, so that N(0, s²) cut at ±2s has variance σ².

    Args:
        variance: The target variance :math:`\sigma^2` after truncation.

    Returns:
        The standard deviation before truncation.

    Examples:
        >>> truncated_normal_stddev(TRUNCATED_NORMAL_STD ** 2)
        1.0
    """
    return math.sqrt(variance) / TRUNCATED_NORMAL_STD


def variance_scaling(scale: float, fan: float, distribution: str, *, guard: bool = True) -> ScaledDistribution:
    r"""The distribution variance scaling draws for ``scale``, ``fan`` and ``distribution``.

    .. math::
        \sigma^2 = \frac{\text{scale}}{\max(1, n)}, \qquad
        \ell = \sqrt{3\sigma^2}, \qquad s = \frac{\sigma}{0.87962566103423978}

    Args:
        scale: The scale.
        fan: The fan ``n``.
        distribution: ``"truncated_normal"``, ``"untruncated_normal"`` or ``"uniform"`` (not the
            ambiguous ``"normal"``: map each framework's name first).
        guard: Divide by max(1, fan) (Keras, TF 1.x); ``False``: by the fan (JAX).

    Returns:
        The distribution with its variance and its limit or standard deviation.

    Raises:
        ValueError: An unknown or ambiguous ``distribution``, or what :func:`scaled_variance` raises.

    Examples:
        >>> variance_scaling(1.0, 4, "untruncated_normal")
        ScaledDistribution(distribution='untruncated_normal', variance=0.25, limit=None, stddev=0.5)
        >>> variance_scaling(1.0, 4, "uniform").limit
        0.8660254037844386
    """
    if distribution == "normal":
        raise ValueError(
            "distribution='normal' is ambiguous: Keras and TF 1.x mean 'truncated_normal', JAX means "
            "'untruncated_normal'. Accepted: 'truncated_normal', 'uniform', 'untruncated_normal'."
        )
    if distribution not in DISTRIBUTIONS:
        raise ValueError(describe_choice("distribution", distribution, DISTRIBUTIONS))
    variance = scaled_variance(scale, fan, guard=guard)
    if distribution == "uniform":
        return ScaledDistribution(distribution, variance, limit=uniform_limit(variance))
    if distribution == "untruncated_normal":
        return ScaledDistribution(distribution, variance, stddev=untruncated_normal_stddev(variance))
    return ScaledDistribution(distribution, variance, stddev=truncated_normal_stddev(variance))


def truncnorm_std(lower: float, upper: float) -> float:
    r"""The standard deviation of N(0, 1) truncated to [lower, upper] (both in units of the std).

    With :math:`Z = \Phi(b) - \Phi(a)`:

    .. math::
        \operatorname{Var} = 1 + \frac{a\varphi(a) - b\varphi(b)}{Z}
                               - \left(\frac{\varphi(a) - \varphi(b)}{Z}\right)^2

    It is what an uncorrected truncated normal (Keras ``TruncatedNormal``, TF 1.x
    ``truncated_normal_initializer``, JAX ``truncated_normal``) multiplies its ``stddev`` by.
    Computed by ``scipy.stats.truncnorm`` (imported on first use: formulas stay light to import).

    Args:
        lower: The lower cut :math:`a` (infinities allowed).
        upper: The upper cut :math:`b` (``lower < upper``).

    Returns:
        The standard deviation.

    Raises:
        ValueError: A cut is not a number, ``lower >= upper``, or the std is not computable in
            double precision (far in a tail).

    Examples:
        >>> abs(truncnorm_std(-2.0, 2.0) - TRUNCATED_NORMAL_STD) < 1e-15
        True
        >>> truncnorm_std(1.0, 1.0)
        Traceback (most recent call last):
        ...
        ValueError: truncnorm_std needs lower < upper, got lower=1.0, upper=1.0
    """
    std = _truncnorm("truncnorm_std", "std", lower, upper)
    if not math.isfinite(std) or std <= 0.0:
        raise ValueError(
            f"the std of N(0, 1) truncated to [lower, upper] is not computable in double precision "
            f"(scipy.stats.truncnorm gives {std!r}), got lower={lower!r}, upper={upper!r}"
        )
    return std


def truncnorm_mean(lower: float, upper: float) -> float:
    r"""The mean of N(0, 1) truncated to [lower, upper] (both in units of the std):
    :math:`(\varphi(a) - \varphi(b)) / (\Phi(b) - \Phi(a))`, by ``scipy.stats.truncnorm``.

    Args:
        lower: The lower cut :math:`a` (infinities allowed).
        upper: The upper cut :math:`b` (``lower < upper``).

    Returns:
        The mean.

    Raises:
        ValueError: A cut is not a number, or ``lower >= upper``.

    Examples:
        >>> truncnorm_mean(-2.0, 2.0)
        0.0
        >>> round(truncnorm_mean(0.0, 2.0), 12)  # (phi(0) - phi(2)) / (Phi(2) - 1/2)
        0.722789752245
    """
    return _truncnorm("truncnorm_mean", "mean", lower, upper)


def _truncnorm(caller: str, moment: str, lower: float, upper: float) -> float:
    for name, value in (("lower", lower), ("upper", upper)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ValueError(f"{name} must be a number (infinities allowed), got {name}={value!r}")
    a, b = float(lower), float(upper)
    if not a < b:
        raise ValueError(f"{caller} needs lower < upper, got lower={lower!r}, upper={upper!r}")
    import warnings

    import numpy as np
    from scipy.stats import truncnorm

    # Far in a tail scipy loses every digit; it warns and returns nan, which the caller reports.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(getattr(truncnorm, moment)(a, b))
