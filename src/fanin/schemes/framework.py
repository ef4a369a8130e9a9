"""What the Keras, TF 1.x and JAX namespaces share: layouts, seeds, orthogonal matrices, variance scaling.

Those frameworks store kernels as (*kernel, in, out); torch stores (out, in, *kernel). A scheme
of theirs applied to a torch weight (``layout="torch"``) computes its fans and structure on the
equivalent kernel shape (:func:`fanin.formulas.fans.kernel_shape_from_torch`) and writes the values
back in the torch layout, so the torch layer ends up as that framework's layer would.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fanin import rng
from fanin.errors import SchemeArgumentError, describe_choice, shown
from fanin.formulas.fans import compute_fans, kernel_shape_from_torch
from fanin.rng.threads import one_thread
from fanin.formulas.variance import (
    scaled_variance,
    truncated_normal_stddev,
    uniform_limit,
    untruncated_normal_stddev,
)

__all__ = [
    "check_layout",
    "check_seed",
    "kernel_view",
    "orthogonal_matrix",
    "resolve_generator",
    "variance_scaling_fill",
]


def check_layout(scheme: str, layout: object, native: str) -> None:
    if layout not in ("torch", native):
        raise SchemeArgumentError(f"{scheme}: " + describe_choice("layout", layout, ["torch", native]))


def check_seed(scheme: str, seed: object) -> None:
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64):
        raise SchemeArgumentError(f"{scheme}: seed must be None or an int in [0, 2**64), got seed={shown(seed)}")


def resolve_generator(scheme: str, seed: int | None, generator, device: torch.device):
    """The generator a call draws from: a fresh one seeded with ``seed`` (Keras semantics: the same
    values on every call), else the call's ``generator`` (or torch's global RNG when ``None``)."""
    if seed is None:
        return generator
    if generator is not None:
        raise SchemeArgumentError(
            f"{scheme}: pass either a seed or a generator, not both; got seed={seed!r} and generator={generator!r}"
        )
    return torch.Generator(device=device).manual_seed(seed)


def kernel_view(tensor: torch.Tensor, layout: str) -> tuple[tuple[int, ...], Callable[[torch.Tensor], torch.Tensor]]:
    """The framework-layout kernel shape of ``tensor`` and a map from a kernel of that shape back
    to the tensor's layout."""
    shape = tuple(tensor.shape)
    if layout != "torch" or len(shape) < 2:
        return shape, lambda kernel: kernel
    n = len(shape)
    perm = (n - 1, n - 2, *range(n - 2))  # (*k, in, out) -> (out, in, *k)
    return kernel_shape_from_torch(shape), lambda kernel: kernel.permute(perm)


def orthogonal_matrix(rows: int, cols: int, *, dtype: torch.dtype, device, generator) -> torch.Tensor:
    """A (rows, cols) matrix with orthonormal rows (rows <= cols) or columns, Haar-distributed.

    A Gaussian of shape (max, min) is factorized by reduced QR and Q's columns are sign-fixed by
    diag(R) (Mezzadri 2007), then transposed when rows < cols; this is what Keras, TF 1.x and JAX
    do. From a ``torch.Generator`` the Gaussian is drawn and factorized in float64 for float64
    tensors, else float32. From a :class:`fanin.Stream` it is always float64 and the QR runs on one
    thread (restored afterwards), so the bits do not depend on ``torch.get_num_threads()``.

    >>> q = orthogonal_matrix(2, 3, dtype=torch.float32, device="cpu", generator=rng.Stream(0, "w"))
    >>> q.dtype, torch.allclose(q @ q.T, torch.eye(2, dtype=q.dtype))
    (torch.float64, True)
    """
    stream = isinstance(generator, rng.Stream)
    work = torch.float64 if stream or dtype == torch.float64 else torch.float32
    a = rng.standard_normal((max(rows, cols), min(rows, cols)), dtype=work, device=device, generator=generator)
    if stream:
        with one_thread():
            q, r = torch.linalg.qr(a)
    else:
        q, r = torch.linalg.qr(a)
    q = q * torch.diagonal(r).sign()
    return q.T if rows < cols else q


def variance_scaling_fill(
    tensor: torch.Tensor,
    *,
    scale: float,
    mode: str,
    distribution: str,
    fans_layout: str,
    layout: str,
    guard: bool,
    generator,
    in_axis=None,
    out_axis=None,
    batch_axis=(),
) -> torch.Tensor:
    """Fill ``tensor`` by variance scaling; ``distribution`` is one of uniform, truncated_normal,
    untruncated_normal (already mapped from each framework's own names)."""
    if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
        raise ValueError(
            describe_choice("distribution", distribution, ("truncated_normal", "uniform", "untruncated_normal"))
        )
    kernel_shape, _ = kernel_view(tensor, layout)
    fans = compute_fans(kernel_shape, fans_layout, in_axis=in_axis, out_axis=out_axis, batch_axis=batch_axis)
    variance = scaled_variance(scale, fans.select(mode), guard=guard)
    if distribution == "uniform":
        limit = uniform_limit(variance)
        return rng.uniform_(tensor, -limit, limit, generator)
    if distribution == "untruncated_normal":
        return rng.normal_(tensor, 0.0, untruncated_normal_stddev(variance), generator)
    std = truncated_normal_stddev(variance)
    return rng.truncated_normal_(tensor, 0.0, std, -2.0 * std, 2.0 * std, generator)
