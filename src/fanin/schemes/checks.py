"""The checks every scheme shares, written once: arguments when a scheme is built, tensors when it runs.

**Arguments.** Every :class:`~fanin.Scheme` (whatever its framework) is built through
:func:`check_arguments`: each number among its arguments, at any depth of lists, tuples and
dicts, must be finite (an ``int`` too large for a float64 counts as not finite), so
``normal(std=inf)``, ``orthogonal(gain=nan)`` or ``fanin.gate_constant(values=[0, nan])`` never
reach a tensor. The domain of each argument (``std >= 0``, ``a <= b``, a sparsity in [0, 1), ...)
is the scheme's own validator, written with :func:`check_number` and :func:`check_int` so that
every scheme words the same constraint the same way.

``torch.nn.init``'s drop-in (:mod:`fanin.init`) called directly keeps torch's behaviour, which
lets ``std=inf`` or ``val=nan`` through (``constant_(t, nan)`` is a common sentinel, and
``trunc_normal_(a=-inf, b=inf)`` an untruncated normal): it is the :class:`~fanin.Scheme` built
from it (``fanin.get``, rules, presets, the CLI) that refuses them. The other namespaces promise
no parity with a function that accepts them: their functions, called directly, run the same
validation as the scheme built from them (:func:`fills_in_place`).

**Tensors.** ``torch.nn.init``'s own functions each carry their own (slightly different) checks,
and fanin's drop-in reproduces those exactly. Every other scheme goes through
:func:`fills_in_place`, which gives them one behaviour: a torch floating tensor is required, the
generator is checked, a meta or zero-element tensor is returned unchanged, and the fill runs
under ``torch.no_grad()`` so that leaf parameters with ``requires_grad`` can be initialized.

>>> check_arguments("normal", {"mean": 0.0, "std": float("inf")})
Traceback (most recent call last):
...
fanin.errors.SchemeArgumentError: normal: std must be a finite number, got std=inf
>>> check_number("sparse", "sparsity", 1.0, minimum=0, below=1)
Traceback (most recent call last):
...
fanin.errors.SchemeArgumentError: sparse: sparsity must be a finite number >= 0 and < 1, got sparsity=1.0
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import torch

from fanin.errors import SchemeArgumentError, shown
from fanin.rng import check_generator

__all__ = ["MAX_ARGUMENT_DEPTH", "check_arguments", "check_floating", "check_int", "check_number", "fills_in_place"]

F = TypeVar("F", bound=Callable[..., torch.Tensor])

#: How deeply lists, tuples and dicts may nest inside one scheme argument.
MAX_ARGUMENT_DEPTH = 8


def _finite(value: object) -> bool:
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except OverflowError:  # an int beyond float64's range
        return False


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_arguments(scheme: str, arguments: Mapping[str, object]) -> None:
    """``SchemeArgumentError`` unless every number in ``arguments`` (nested ones included) is finite.

    Lists, tuples and dicts may nest :data:`MAX_ARGUMENT_DEPTH` levels. Values of other types are
    left to the scheme's own validator.
    """
    for name, value in arguments.items():
        # Depth-first with an explicit stack: a hostile value cannot exhaust Python's recursion limit.
        stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]
        while stack:
            item, path = stack.pop()
            if isinstance(item, (float, int)) and not isinstance(item, bool):
                if not _finite(item):
                    where = name + "".join(f"[{p!r}]" for p in path)
                    raise SchemeArgumentError(f"{scheme}: {where} must be a finite number, got {where}={shown(item)}")
            elif isinstance(item, (list, tuple, Mapping)):
                if len(path) >= MAX_ARGUMENT_DEPTH:
                    raise SchemeArgumentError(
                        f"{scheme}: {name} nests lists/tuples/dicts more than {MAX_ARGUMENT_DEPTH} levels deep, "
                        f"got {name}={shown(value)}"
                    )
                pairs = item.items() if isinstance(item, Mapping) else enumerate(item)
                stack.extend((v, (*path, k)) for k, v in reversed(list(pairs)))


def check_number(
    scheme: str,
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> None:
    """``SchemeArgumentError`` unless ``value`` is a finite int/float (not a bool) within the bounds.

    ``minimum`` is inclusive, ``above`` and ``below`` exclusive.

    >>> check_number("normal", "std", -1.0, minimum=0)
    Traceback (most recent call last):
    ...
    fanin.errors.SchemeArgumentError: normal: std must be >= 0, got std=-1.0
    """
    if not _is_number(value) or not _finite(value):
        raise SchemeArgumentError(f"{scheme}: {name} must be a finite number, got {name}={shown(value)}")
    v: float = value  # type: ignore[assignment]
    if (
        (minimum is not None and not v >= minimum)
        or (above is not None and not v > above)
        or (below is not None and not v < below)
    ):
        need = _bounds(minimum, above, below)
        if below is not None:  # a range: say both ends
            need = "a finite number " + need
        raise SchemeArgumentError(f"{scheme}: {name} must be {need}, got {name}={shown(value)}")


def _bounds(minimum: float | None, above: float | None, below: float | None) -> str:
    parts = []
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if above is not None:
        parts.append(f"> {above:g}")
    if below is not None:
        parts.append(f"< {below:g}")
    return " and ".join(parts)


def check_int(scheme: str, name: str, value: object, *, minimum: int | None = None) -> None:
    """``SchemeArgumentError`` unless ``value`` is an ``int`` (not a bool), ``>= minimum`` if given.

    >>> check_int("dirac", "groups", 0, minimum=1)
    Traceback (most recent call last):
    ...
    fanin.errors.SchemeArgumentError: dirac: groups must be an int >= 1, got groups=0
    """
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        need = "an int" if minimum is None else f"an int >= {minimum}"
        raise SchemeArgumentError(f"{scheme}: {name} must be {need}, got {name}={shown(value)}")


def check_floating(tensor: object, scheme: str) -> None:
    """``TypeError`` unless ``tensor`` is a floating-point ``torch.Tensor``."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"{scheme} fills a torch.Tensor in place, got tensor={shown(tensor)} ({type(tensor).__name__})")
    if not tensor.is_floating_point():
        raise TypeError(
            f"{scheme} needs a floating-point tensor (float16, bfloat16, float32, float64), got dtype={tensor.dtype}"
        )


def fills_in_place(fn: F) -> F:
    """Wrap a scheme function ``fn(tensor, *args, generator=None, **args)`` with the shared checks.

    Called directly, the wrapper also validates the arguments as building the registered scheme
    would (:func:`check_arguments`, then the scheme's validator), so a direct call and a
    :class:`~fanin.Scheme` accept the same arguments.
    """
    signature = inspect.signature(fn)
    first = next(iter(signature.parameters))

    @functools.wraps(fn)
    def wrapper(tensor: torch.Tensor, *args: Any, generator: object = None, **kwargs: Any) -> Any:
        check_floating(tensor, fn.__name__)
        check_generator(generator)
        _validate_call(wrapper, signature, first, tensor, args, kwargs)
        if tensor.is_meta or tensor.numel() == 0:
            return tensor
        with torch.no_grad():
            fn(tensor, *args, generator=generator, **kwargs)
        return tensor

    return wrapper  # type: ignore[return-value]


def _validate_call(
    wrapper: Callable[..., Any],
    signature: inspect.Signature,
    first: str,
    tensor: torch.Tensor,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    from fanin.schemes.registry import entry_for

    entry = entry_for(wrapper)
    if entry is None:  # not registered (yet): nothing to validate against
        return
    bound = signature.bind(tensor, *args, **kwargs)
    bound.apply_defaults()
    arguments = {k: v for k, v in bound.arguments.items() if k not in (first, "generator")}
    check_arguments(entry.name, arguments)
    if entry.validate is not None:
        entry.validate(**arguments)
