"""Storage dtypes: rounding intervals (one spacing each side, every rounding mode), effective
dtypes of upcast values."""

import numpy as np
import pytest
import torch

from fanin.auditing.dtypes import effective_dtype, mantissa_digits, rounding_interval, unit_roundoff


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32, torch.float8_e4m3fn])
def test_rounding_interval_reaches_the_neighbours(dtype):
    # Every representable value's interval reaches exactly its two neighbours (the drawn value could
    # have been rounded up, down or to nearest), including at powers of two and in the subnormals.
    bits = {
        torch.bfloat16: torch.int16,
        torch.float16: torch.int16,
        torch.float32: torch.int32,
        torch.float8_e4m3fn: torch.int8,
    }[dtype]
    pos = torch.arange(1, 120, dtype=bits).view(dtype).double().numpy()  # the smallest positive values
    big = torch.tensor([0.5, 1.0, 3.0, 96.0], dtype=dtype)
    for v in (pos, big.double().numpy(), -big.double().numpy()):
        lo, hi = rounding_interval(v, dtype)
        t = torch.from_numpy(v).to(dtype)
        nxt = (
            torch.nextafter(t.float(), torch.tensor(np.inf)).to(dtype).double().numpy()
            if dtype == torch.float32
            else None
        )
        if nxt is not None:
            assert np.allclose(hi, nxt)
        # Rounding the interval's ends back gives the neighbours, never the value itself.
        assert np.all(torch.from_numpy(hi).to(dtype).double().numpy() > v)
        assert np.all(torch.from_numpy(lo).to(dtype).double().numpy() < v)
        mid_hi, mid_lo = (3 * v + hi) / 4, (3 * v + lo) / 4  # a quarter spacing away rounds back to v
        assert np.array_equal(torch.from_numpy(mid_hi).to(dtype).double().numpy(), v)
        assert np.array_equal(torch.from_numpy(mid_lo).to(dtype).double().numpy(), v)


def test_unit_roundoff_and_digits():
    assert unit_roundoff(torch.bfloat16) == 2**-8 and unit_roundoff(torch.float32) == 2**-24
    assert [
        mantissa_digits(d)
        for d in (torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2)
    ] == [53, 24, 11, 8, 4, 3]


def test_effective_dtype_is_the_coarsest_grid_that_holds_the_values():
    x = np.random.default_rng(0).standard_normal(1000) * 0.02
    as_bf16 = torch.from_numpy(x).bfloat16().double().numpy()
    assert effective_dtype(as_bf16, torch.float32) == torch.bfloat16
    as_f32 = torch.from_numpy(x).float().double().numpy()
    assert effective_dtype(as_f32, torch.float64) == torch.float32
    assert effective_dtype(x, torch.float64) == torch.float64
    as_f8 = torch.from_numpy(x).to(torch.float8_e4m3fn).double().numpy()
    assert effective_dtype(as_f8, torch.float16) == torch.float8_e4m3fn
