"""``dry_run``: run a scheme's own code at a tensor's shape and dtype, drawing and writing nothing.

Whether a scheme can take a tensor (``orthogonal`` on a bias, ``eye`` on a 3-D weight, a gate
scheme whose blocks do not divide the first dimension, a Keras constant that does not broadcast)
is decided by the scheme's own checks, which run before it draws or writes. A plan asks them
before anything is written by running the scheme on a zero-stride view of the shape (one element
of memory, ``torch.empty((), dtype).expand(shape)``) with a :class:`~fanin.rng.recording.DrawRecorder`:

- every random draw goes through the sampling seam, so the recorder sees it and writes nothing;
  a structured draw (the Gaussian of an orthogonal matrix, a sparse mask) stops the run there;
- the first write of computed values into the view (``copy_``, an in-place product) is refused
  by torch because the view's elements share memory: the checks before it have passed;
- fills of a constant (``fill_``, ``zero_``) run on the one element.

Any other exception is the scheme refusing the tensor, and propagates. A scheme with its own
``seed`` is run without it (the seed picks a generator, not what the scheme accepts).

>>> import torch
>>> from fanin.schemes import get
>>> dry_run(get("xavier_uniform"), (4, 6), torch.float32)  # U(±sqrt(6 / (4 + 6)))
[('uniform', -0.7745966692414833, 0.7745966692414833)]
>>> dry_run(get("orthogonal"), (8,), torch.float32)
Traceback (most recent call last):
...
ValueError: Only tensors with 2 or more dimensions are supported
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

from fanin.rng.recording import DrawRecorder
from fanin.schemes.scheme import Scheme

__all__ = ["Trace", "dry_run", "trace"]

# torch's wording when a write would store several elements into one memory location
# (aten's assert_no_internal_overlap / assert_no_partial_overlap).
_SHARED_MEMORY = ("refers to a single memory location", "refer to a single memory location")


def dry_run(scheme: Scheme, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> list[tuple[Any, ...]]:
    """The draws ``scheme`` makes for a tensor of ``shape`` and ``dtype`` (see the module docstring);
    raises what the scheme raises for a tensor it cannot take."""
    return trace(scheme, shape, dtype).calls


@dataclass(frozen=True)
class Trace:
    """What a dry run saw: the draws (:class:`~fanin.rng.recording.DrawRecorder`'s ``calls``), and
    whether the scheme then wrote values computed from them (``wrote``: the write torch refused on
    the zero-stride view; a scheme whose draw is the final value writes nothing more)."""

    calls: list[tuple[Any, ...]]
    wrote: bool


def trace(scheme: Scheme, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Trace:
    """:func:`dry_run`, with whether the scheme wrote computed values after its draws.

    >>> from fanin.schemes import get
    >>> trace(get("fanin.gate_uniform(bounds=[1.0, 2.0])"), (4, 3)).wrote  # U(-1, 1) scaled per block
    True
    >>> trace(get("xavier_uniform"), (4, 6)).wrote
    False
    """
    if "seed" in scheme.args:
        scheme = Scheme(scheme.entry, **{k: v for k, v in scheme.args.items() if k != "seed"})
    recorder = DrawRecorder(stop_at_structure=True)
    view = torch.empty((), dtype=dtype).expand(tuple(int(s) for s in shape))
    wrote = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the real run warns (zero-size kaiming, far trunc_normal mean)
            with torch.no_grad():
                scheme(view, generator=recorder)
    except DrawRecorder.Stop:
        pass
    except RuntimeError as err:
        if not any(text in str(err) for text in _SHARED_MEMORY):
            raise
        wrote = True
    return Trace(list(recorder.calls), wrote)
