r"""What the storage dtype does to a tensor's values: rounding intervals, roundoff, readable dtypes.

A value stored in a floating-point dtype is the drawn value rounded to a representable one, so a
hypothesis about the draw is a hypothesis about the *rounded* draw (quantization is part of the
hypothesis, not a fudge factor). The rounding mode is not known: a cast rounds to nearest, but
torch's ``uniform_`` on a bfloat16 tensor rounds down (measured: U(±0.125) never stores 0.125, and
its mean sits 5 standard errors low on 4M values). So the drawn value of a stored :math:`v` lay
within one spacing of it, in its rounding interval :math:`[\mathrm{lo}(v), \mathrm{hi}(v)] =
[v - \mathrm{spacing}^-(v), v + \mathrm{spacing}^+(v)]` (to the neighbouring representable values),
which holds for every rounding mode:

.. math:: \mathrm{spacing}(v) = 2^{\lfloor \log_2 |v| \rfloor}\,\varepsilon \quad (|v| \ge \text{tiny}),
          \qquad \text{tiny}\cdot\varepsilon \text{ below tiny (subnormals)}

with :math:`\varepsilon` the dtype's machine epsilon (``torch.finfo(dtype).eps``); at a power of two
the spacing below is half the spacing above. The unit roundoff is :math:`u = \varepsilon/2`.

The *effective* dtype of a tensor is the coarsest of bfloat16, float16, float8_e4m3fn and
float8_e5m2 (or its own dtype) in which every value of a sample is exactly representable: a
float32 checkpoint that went through bfloat16 carries bfloat16's rounding, and a float64 tensor
computed in float32 carries float32's.

>>> import torch
>>> lo, hi = rounding_interval(np.array([1.0, 0.05]), torch.bfloat16)
>>> [float(v) for v in lo], [float(v) for v in hi]
([0.99609375, 0.049755859375], [1.0078125, 0.050244140625])
>>> unit_roundoff(torch.bfloat16)
0.00390625
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["dtype_name", "effective_dtype", "mantissa_digits", "rounding_interval", "unit_roundoff"]

# Coarse grids a wider tensor may have been rounded to (coarsest first: fewest mantissa digits).
_COARSE = tuple(
    d
    for d in (getattr(torch, n, None) for n in ("float8_e5m2", "float8_e4m3fn", "bfloat16", "float16"))
    if d is not None
)


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


@functools.cache
def _finfo(dtype: torch.dtype) -> tuple[float, float]:
    info = torch.finfo(dtype)
    return float(info.eps), float(info.tiny)


def unit_roundoff(dtype: torch.dtype) -> float:
    """Half the machine epsilon: the largest relative error of rounding to ``dtype``."""
    return _finfo(dtype)[0] / 2


def mantissa_digits(dtype: torch.dtype) -> int:
    """Binary digits of the significand, the implicit one included (float32: 24, bfloat16: 8)."""
    return 1 - round(float(np.log2(_finfo(dtype)[0])))


def rounding_interval(
    values: np.ndarray, dtype: torch.dtype, *, nearest: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the real numbers that round to each of ``values`` (representable in ``dtype``)
    under some rounding mode: from the previous representable value to the next one (see the
    module docstring); with ``nearest``, under round-to-nearest only (half a spacing each side:
    the intervals then tile the line, as a probability mass function needs)."""
    eps, tiny = _finfo(dtype)
    v = np.asarray(values, dtype=np.float64)
    a = np.abs(v)
    mant, expo = np.frexp(a)
    up = np.ldexp(eps, expo - 1)  # the spacing in [2^(e-1), 2^e)
    down = np.where((mant == 0.5) & (a > tiny), up / 2, up)
    sub = a < tiny
    up = np.where(sub, tiny * eps, up)
    down = np.where(sub, tiny * eps, down)
    if nearest:
        up, down = up / 2, down / 2
    # Toward larger magnitude the spacing is `up`, toward smaller `down`: mirrored for negatives.
    hi = np.where(v >= 0, v + up, v + down)
    lo = np.where(v > 0, v - down, v - up)
    return lo, hi


def effective_dtype(sample: np.ndarray, dtype: torch.dtype) -> torch.dtype:
    """The coarsest dtype (see the module docstring) that holds every value of ``sample`` exactly."""
    if sample.size == 0:
        return dtype
    x = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float64))
    own = mantissa_digits(dtype)
    for coarse in _COARSE + ((torch.float32,) if dtype == torch.float64 else ()):
        if mantissa_digits(coarse) >= own:
            continue
        with np.errstate(all="ignore"):
            back = x.to(coarse).to(torch.float64)
        if bool(torch.equal(back, x)):
            return coarse
    return dtype
