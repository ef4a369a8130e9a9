"""The checks every non-PyTorch scheme shares, written once.

``torch.nn.init``'s own functions each carry their own (slightly different) checks, and fanin's
drop-in reproduces those exactly. Every other scheme goes through :func:`fills_in_place`, which
gives them one behaviour: a torch floating tensor is required, the generator is checked, a meta
or zero-element tensor is returned unchanged, and the fill runs under ``torch.no_grad()`` so that
leaf parameters with ``requires_grad`` can be initialized.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch

from fanin.rng import check_generator

__all__ = ["check_floating", "fills_in_place"]

F = TypeVar("F", bound=Callable[..., torch.Tensor])


def check_floating(tensor: object, scheme: str) -> None:
    """``TypeError`` unless ``tensor`` is a floating-point ``torch.Tensor``."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{scheme} fills a torch.Tensor in place, got tensor={tensor!r} ({type(tensor).__name__})")
    if not tensor.is_floating_point():
        raise TypeError(
            f"{scheme} needs a floating-point tensor (float16, bfloat16, float32, float64), "
            f"got dtype={tensor.dtype}"
        )


def fills_in_place(fn: F) -> F:
    """Wrap a scheme function ``fn(tensor, *, generator=None, **args)`` with the shared checks."""

    @functools.wraps(fn)
    def wrapper(tensor, *args, generator=None, **kwargs):
        check_floating(tensor, fn.__name__)
        check_generator(generator)
        if tensor.is_meta or tensor.numel() == 0:
            return tensor
        with torch.no_grad():
            fn(tensor, *args, generator=generator, **kwargs)
        return tensor

    return wrapper  # type: ignore[return-value]
