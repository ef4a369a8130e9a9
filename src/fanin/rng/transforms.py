"""From 32-bit Philox words to values: the transforms of stream format v1 (docs/stream.md).

Every transform is an exact sequence of IEEE-754 float64 operations (+, -, *, /, sqrt,
comparisons, selects and exponent-bit manipulation), never a library ``log``/``exp``/``erf``,
so that every backend that evaluates the same sequence without fused multiply-add gets the same
bits. The sequence is written out three times, and the tests hold them bit-equal:

* the scalar functions here (``*_scalar``), the readable form of the spec;
* the torch functions here (``*_torch``), the reference path on any device;
* the numba kernels in :mod:`fanin.rng._numba_kernels`, the fast CPU path.

Host scalars (the truncation masses :math:`\\Phi(\\alpha)`, :math:`\\Phi(\\beta)`) are computed
once per fill with Python's :mod:`decimal` to 50+ significant digits and rounded to float64, so
they too are the same on every platform.
"""

from __future__ import annotations

import decimal
import functools
import math
import numbers
import struct
from dataclasses import dataclass

import torch

__all__ = [
    "Normal",
    "Transform",
    "TruncatedNormal",
    "Uniform",
    "log_scalar",
    "log_torch",
    "ndtri_scalar",
    "ndtri_torch",
    "phi_host",
    "transform_scalar",
    "transform_torch",
]

TWO_M24 = 2.0**-24
TWO_M32 = 2.0**-32
# Clamp for a truncated-normal probability: ndtri needs p and 1 - p positive normal floats.
P_MIN = 2.0**-1022
P_MAX = 1.0 - 2.0**-53

# fdlibm e_log.c (Sun Microsystems, 1993): ln2 split so that k*LN2_HI is exact, and the
# minimax coefficients of R(z) ~ log((1+s)/(1-s)) - 2s on [0, 0.1716].
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
LG = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)

# Wichura, AS241 PPND16 (Applied Statistics 37(3), 1988), coefficients as in CPython's
# statistics._normal_dist_inv_cdf; highest degree first, evaluated by Horner's rule.
A_NUM = (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
         4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
         1.3314166789178437745e+2, 3.3871328727963666080e+0)  # fmt: skip
A_DEN = (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
         2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
         4.2313330701600911252e+1, 1.0)  # fmt: skip
C_NUM = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
         1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
         4.63033784615654529590e+0, 1.42343711074968357734e+0)  # fmt: skip
C_DEN = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
         1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
         2.05319162663775882187e+0, 1.0)  # fmt: skip
E_NUM = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
         2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
         5.46378491116411436990e+0, 6.65790464350110377720e+0)  # fmt: skip
E_DEN = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
         7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
         5.99832206555887937690e-1, 1.0)  # fmt: skip

_MANT = (1 << 52) - 1
_ONE_BITS = 0x3FF0000000000000
_NORM_ADD = 0x95F64 << 32  # fdlibm: (hx + 0x95f64) & 0x100000 picks x or x/2 around sqrt(2)
_BIT52 = 1 << 52


# ----------------------------------------------------------------------------------- transforms


@dataclass(frozen=True)
class Transform:
    """Base of the element-wise transforms; ``draw`` is counter word 3 (0 for values)."""

    def check(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {name}={value!r} ({type(value).__name__})")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {name}={value!r}")
    return value


@dataclass(frozen=True)
class Uniform(Transform):
    r""":math:`\mathcal{U}(\text{low}, \text{high})`: ``mid + hs * n`` in float64.

    ``n = ((w >> 7) | 1) - 2**24`` is one of the 2**24 odd integers in (-2**24, 2**24), so
    ``n * 2**-24`` is uniform on a symmetric grid in (-1, 1) with mean exactly 0;
    ``mid = (low + high) * 0.5`` and ``hs = ((high - low) * 0.5) * 2**-24``. After rounding to the
    output dtype a value may equal ``low`` or ``high``.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        low, high = _finite("low", self.low), _finite("high", self.high)
        if not low <= high:
            raise ValueError(f"uniform needs low <= high, got low={low!r}, high={high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def mid(self) -> float:
        return (self.low + self.high) * 0.5

    @property
    def hs(self) -> float:
        return ((self.high - self.low) * 0.5) * TWO_M24


@dataclass(frozen=True)
class Normal(Transform):
    r""":math:`\mathcal{N}(\text{mean}, \text{std}^2)`: ``mean + std * ndtri((w + 0.5) * 2**-32)``."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        mean, std = _finite("mean", self.mean), _finite("std", self.std)
        if not std >= 0:
            raise ValueError(f"normal needs std >= 0, got std={std!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)


@dataclass(frozen=True)
class TruncatedNormal(Transform):
    r""":math:`\mathcal{N}(\text{mean}, \text{std}^2)` truncated to [lower, upper] by inverse CDF.

    ``lower``/``upper`` are absolute bounds and may be infinite. With
    :math:`\alpha = (\text{lower}-\text{mean})/\text{std}`, :math:`\beta` likewise, the interval is
    mirrored to :math:`(-\beta, -\alpha)` when :math:`\alpha > 0` so that the probabilities stay in
    the precise lower tail; ``p = pa + u * (pb - pa)``, ``z = ndtri(p)`` clamped to the interval.
    """

    mean: float
    std: float
    lower: float
    upper: float

    def __post_init__(self) -> None:
        mean, std = _finite("mean", self.mean), _finite("std", self.std)
        for name in ("lower", "upper"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
                raise TypeError(f"{name} must be a real number or ±inf, got {name}={value!r}")
            object.__setattr__(self, name, float(value))
        if not std > 0:
            raise ValueError(f"truncated normal needs std > 0, got std={std!r}")
        if not self.lower < self.upper:
            raise ValueError(f"truncated normal needs lower < upper, got lower={self.lower!r}, upper={self.upper!r}")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        _, _, _, pa, pb = self.host_scalars()
        if not pb - pa > 0.0:
            raise ValueError(
                "truncated normal interval has no probability mass in float64 "
                f"(alpha={(self.lower - mean) / std!r}, beta={(self.upper - mean) / std!r}); "
                "move the bounds closer to the mean"
            )

    def host_scalars(self) -> tuple[bool, float, float, float, float]:
        """``(mirror, lo, hi, pa, pb)``: the standardized interval sampled and its CDF values."""
        alpha = (self.lower - self.mean) / self.std
        beta = (self.upper - self.mean) / self.std
        mirror = alpha > 0.0
        lo, hi = (-beta, -alpha) if mirror else (alpha, beta)
        return mirror, lo, hi, phi_host(lo), phi_host(hi)


# ------------------------------------------------------------------------------- host scalars


@functools.lru_cache(maxsize=256)
def phi_host(x: float) -> float:
    r""":math:`\Phi(x)` rounded to float64, computed with :mod:`decimal` (platform independent).

    >>> phi_host(0.0), phi_host(float("-inf")), phi_host(float("inf"))
    (0.5, 0.0, 1.0)
    >>> phi_host(-2.0)  # 0.0227501319481792072..., correctly rounded
    0.02275013194817921
    """
    if math.isnan(x):
        raise ValueError(f"phi_host needs a number, got x={x!r}")
    if x == math.inf:
        return 1.0
    if x == -math.inf or x < -40.0:  # Φ(-38.5) is already below the smallest float64
        return 0.0
    if x > 40.0:
        return 1.0
    if x > 0.0:
        return float(1 - _phi_lower_decimal(-x))  # the tail is tiny: 1 - tail rounds correctly
    return float(_phi_lower_decimal(x))


def _phi_lower_decimal(x: float) -> decimal.Decimal:
    """Φ(x) for x <= 0 as a Decimal with about 50 correct significant digits."""
    ctx = decimal.Context(prec=60 + int(x * x / 4.6) + 10, rounding=decimal.ROUND_HALF_EVEN)
    with decimal.localcontext(ctx):
        t = -decimal.Decimal(x) / decimal.Decimal(2).sqrt()  # erfc(t)/2 with t = -x/√2 >= 0
        # erf(t) = 2/√π · exp(-t²) · Σ_n 2^n t^(2n+1) / (1·3···(2n+1)): all terms positive.
        t2 = t * t
        term = t
        total = t
        n = 0
        eps = decimal.Decimal(10) ** (-(ctx.prec + 5))
        while term > eps * total or n < 3:
            n += 1
            term = term * 2 * t2 / (2 * n + 1)
            total += term
            if n > 100000:  # pragma: no cover - |x| <= 40 converges in a few thousand terms
                break
        pi = _decimal_pi(ctx.prec + 5)
        erf = 2 / pi.sqrt() * (-t2).exp() * total
        return (1 - erf) / 2


def _decimal_pi(prec: int) -> decimal.Decimal:
    """π to ``prec`` digits (Machin's formula), in the current context."""
    with decimal.localcontext() as ctx:
        ctx.prec = prec + 10

        def arctan_inv(n: int) -> decimal.Decimal:
            x = decimal.Decimal(1) / n
            x2 = x * x
            total, term, k = x, x, 1
            eps = decimal.Decimal(10) ** (-(prec + 10))
            while abs(term) > eps:
                term = -term * x2
                total += term / (2 * k + 1)
                k += 1
            return total

        pi = 4 * (4 * arctan_inv(5) - arctan_inv(239))
    return +pi


# --------------------------------------------------------------------------- scalar reference


def _f64_bits(x: float) -> int:
    bits: int = struct.unpack("<q", struct.pack("<d", x))[0]
    return bits


def _bits_f64(b: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<q", b))[0]
    return value


def log_scalar(x: float) -> float:
    """fanin's natural log of a positive normal float64 (fdlibm's kernel, one formula).

    >>> log_scalar(1.0), log_scalar(2.0) == 0.6931471805599453
    (0.0, True)
    """
    bits = _f64_bits(x)
    k = (bits >> 52) - 1023
    m = bits & _MANT
    i = (m + _NORM_ADD) & _BIT52
    f = _bits_f64(m | (i ^ _ONE_BITS)) - 1.0
    k += i >> 52
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG[1] + w * (LG[3] + w * LG[5]))
    t2 = z * (LG[0] + w * (LG[2] + w * (LG[4] + w * LG[6])))
    r = t2 + t1
    hfsq = 0.5 * f * f
    dk = float(k)
    return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)


def _horner(coef: tuple[float, ...], r: float) -> float:
    acc = coef[0]
    for c in coef[1:]:
        acc = acc * r + c
    return acc


def ndtri_scalar(p: float) -> float:
    """Inverse standard normal CDF (AS241) of ``p`` in (0, 1) with ``p``, ``1 - p`` normal floats.

    >>> ndtri_scalar(0.5), round(ndtri_scalar(0.975), 12)
    (0.0, 1.95996398454)
    """
    q = p - 0.5
    if abs(q) <= 0.425:
        r = 0.180625 - q * q
        return (_horner(A_NUM, r) * q) / _horner(A_DEN, r)
    r = p if q <= 0.0 else 1.0 - p
    r = math.sqrt(-log_scalar(r))  # sqrt is correctly rounded by IEEE 754
    if r <= 5.0:
        r = r - 1.6
        x = _horner(C_NUM, r) / _horner(C_DEN, r)
    else:
        r = r - 5.0
        x = _horner(E_NUM, r) / _horner(E_DEN, r)
    return -x if q < 0.0 else x


def transform_scalar(transform: Transform, word: int) -> float:
    """The float64 value of one element from its 32-bit word (before rounding to the dtype)."""
    if isinstance(transform, Uniform):
        n = ((word >> 7) | 1) - 16777216
        return transform.mid + transform.hs * float(n)
    u = (float(word) + 0.5) * TWO_M32
    if isinstance(transform, Normal):
        return transform.mean + transform.std * ndtri_scalar(u)
    if isinstance(transform, TruncatedNormal):
        mirror, lo, hi, pa, pb = transform.host_scalars()
        p = pa + u * (pb - pa)
        p = min(max(p, P_MIN), P_MAX)
        z = min(max(ndtri_scalar(p), lo), hi)
        if mirror:
            z = -z
        y = transform.mean + transform.std * z
        return min(max(y, transform.lower), transform.upper)
    raise TypeError(f"unknown transform {transform!r}")


# ------------------------------------------------------------------------------ torch reference


def log_torch(x: torch.Tensor) -> torch.Tensor:
    """:func:`log_scalar` over a float64 tensor, op by op (no fused operations)."""
    bits = x.view(torch.int64)
    k = (bits >> 52) - 1023
    m = bits & _MANT
    i = (m + _NORM_ADD) & _BIT52
    f = (m | (i ^ _ONE_BITS)).view(torch.float64) - 1.0
    k = k + (i >> 52)
    s = f / (f + 2.0)
    z = s * s
    w = z * z
    t1 = w * ((w * ((w * LG[5]) + LG[3])) + LG[1])
    t2 = z * ((w * ((w * ((w * LG[6]) + LG[4])) + LG[2])) + LG[0])
    r = t2 + t1
    hfsq = (f * 0.5) * f
    dk = k.to(torch.float64)
    return dk * LN2_HI - ((hfsq - (s * (hfsq + r) + dk * LN2_LO)) - f)


_SPLIT = 134217729.0  # 2**27 + 1, Veltkamp's splitter for float64


def _two_product_sign(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sign of ``x - a*b`` computed exactly (Dekker's product, no fused multiply-add)."""
    ca = a * _SPLIT
    ah = ca - (ca - a)
    al = a - ah
    cb = b * _SPLIT
    bh = cb - (cb - b)
    bl = b - bh
    p = a * b
    e = al * bl - (((p - ah * bh) - al * bh) - ah * bl)  # Dekker (1971): a*b == p + e exactly
    return torch.sign((x - p) - e)  # x - p is exact (Sterbenz); rounding keeps the sign


def sqrt_torch(x: torch.Tensor) -> torch.Tensor:
    """Correctly rounded square root of positive normal float64 values, on any device.

    torch's CPU float64 ``sqrt`` is not correctly rounded (about 1% of results are one ulp off
    in torch 2.13), so its result is corrected with Tuckerman's test: ``y = RN(sqrt(x))`` exactly
    when ``y * prev(y) < x <= y * next(y)``, each product compared exactly.
    """
    y = torch.sqrt(x)
    inf = torch.full_like(y, math.inf)
    for _ in range(2):
        up = torch.nextafter(y, inf)
        y = torch.where(_two_product_sign(x, y, up) > 0, up, y)
        down = torch.nextafter(y, -inf)
        y = torch.where(_two_product_sign(x, down, y) <= 0, down, y)
    return y


def _horner_torch(coef: tuple[float, ...] | torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    acc = r * coef[0] + coef[1]
    for c in coef[2:]:
        acc = acc * r + c
    return acc


def ndtri_torch(p: torch.Tensor) -> torch.Tensor:
    """:func:`ndtri_scalar` over a float64 tensor: both branches evaluated, then selected."""
    q = p - 0.5
    central = q.abs() <= 0.425
    rc = 0.180625 - q * q
    xc = (_horner_torch(A_NUM, rc) * q) / _horner_torch(A_DEN, rc)
    t = torch.where(q <= 0.0, p, 1.0 - p)
    rt = sqrt_torch(-log_torch(t))
    far = rt > 5.0
    r1 = rt - 1.6
    x1 = _horner_torch(C_NUM, r1) / _horner_torch(C_DEN, r1)
    if bool(far.any()):
        r2 = rt - 5.0
        x2 = _horner_torch(E_NUM, r2) / _horner_torch(E_DEN, r2)
        x1 = torch.where(far, x2, x1)
    xt = torch.where(q < 0.0, -x1, x1)
    return torch.where(central, xc, xt)


def uniform_words_torch(words: torch.Tensor) -> torch.Tensor:
    """``n`` of :class:`Uniform` for int64 words: the odd integers in (-2**24, 2**24), float64."""
    return (((words >> 7) | 1) - 16777216).to(torch.float64)


def transform_torch(transform: Transform, words: torch.Tensor) -> torch.Tensor:
    """float64 values of int64 words (holding uint32) under ``transform``, op by op."""
    if isinstance(transform, Uniform):
        return uniform_words_torch(words) * transform.hs + transform.mid
    u = (words.to(torch.float64) + 0.5) * TWO_M32
    if isinstance(transform, Normal):
        return ndtri_torch(u) * transform.std + transform.mean
    if isinstance(transform, TruncatedNormal):
        mirror, lo, hi, pa, pb = transform.host_scalars()
        p = (u * (pb - pa) + pa).clamp_(P_MIN, P_MAX)
        z = ndtri_torch(p).clamp_(lo, hi)
        if mirror:
            z = -z
        y = z * transform.std + transform.mean
        return y.clamp_(transform.lower, transform.upper)
    raise TypeError(f"unknown transform {transform!r}")
