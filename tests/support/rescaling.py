"""Shared helpers of the same-stream rescaling tests of fanin.tf1 and fanin.jax (tests/frameworks):
the unit draws a scheme rescales, the check that it did, and the layers whose kernel fans are
computed by hand. Importable from any test as ``support.rescaling`` (pytest's ``pythonpath``)."""

import torch

from fanin import rng

KS_P = 1e-3
T = 0.87962566103423978  # std of N(0, 1) truncated to [-2, 2]


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def unit(kind, shape, seed):
    """The float64 unit draw ("uniform" on [-1, 1], "normal", or "truncated" to [-2, 2]) that a
    scheme drawing from ``gen(seed)`` rescales."""
    t = torch.empty(shape, dtype=torch.float64)
    if kind == "uniform":
        return t.uniform_(-1.0, 1.0, generator=gen(seed))
    if kind == "normal":
        return t.normal_(0.0, 1.0, generator=gen(seed))
    return rng.truncated_normal_(t, 0.0, 1.0, -2.0, 2.0, gen(seed))


def assert_rescaled(w, u, factor):
    torch.testing.assert_close(w, u * factor, rtol=1e-12, atol=1e-14 * factor)


def f64(*shape):
    return torch.empty(shape, dtype=torch.float64)


#: torch weight shape -> (fan_in, fan_out) of the TF/Flax kernel (*kernel, in, out), by hand.
LAYERS = [
    ((10, 20), 20, 10),  # Linear(20 -> 10): kernel (20, 10)
    ((6, 4, 5), 20, 30),  # Conv1d(4 -> 6, 5): kernel (5, 4, 6)
    ((8, 3, 5, 7), 105, 280),  # Conv2d(3 -> 8, (5, 7)): kernel (5, 7, 3, 8)
    ((4, 2, 3, 3, 3), 54, 108),  # Conv3d(2 -> 4, 3)
    ((4, 8, 3, 5), 120, 60),  # ConvTranspose2d(4 -> 8, (3, 5)): kernel (3, 5, 8, 4), torch's convention
    ((12, 2, 3, 3), 18, 108),  # Conv2d(8 -> 12, 3, groups=4): kernel (3, 3, 2, 12)
]
