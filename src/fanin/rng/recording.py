"""A random source that draws nothing: it records what each draw of a scheme asks for.

Run a scheme with ``generator=DrawRecorder()`` and read :attr:`DrawRecorder.calls`: the scheme's own
code, at the tensor's shape, says which distribution and which parameters it would draw from, so
the plan's statistics (:mod:`fanin.planning.stats`) and the audit's candidate schemes
(:mod:`fanin.auditing.candidates`) never re-derive a formula. Every scheme draws through the
stream's ``uniform_``/``normal_``/``truncated_normal_``/``standard_normal``/``orthogonal_``/
``sparse_mask`` (the sampling seam), which are recorded as

==============================================  ===================================
``("uniform", low, high)``                      ``uniform_``
``("normal", mean, std)``                       ``normal_``, ``standard_normal`` (0, 1)
``("truncated_normal", mean, std, low, high)``  ``truncated_normal_`` (absolute bounds)
``("orthogonal", gain)``                        ``orthogonal_``
``("sparse", num_zeros)``                       ``sparse_mask``
==============================================  ===================================

Parameters are recorded as given, unvalidated. With ``stop_at_structure=True`` the structured
draws (``standard_normal``, ``orthogonal_``, ``sparse_mask``) are recorded and then stop the scheme
with :class:`DrawRecorder.Stop`, before it allocates or factorizes anything.

>>> import torch
>>> from fanin.schemes import get
>>> recorder = DrawRecorder()
>>> _ = get("xavier_normal")(torch.empty(24, 8), generator=recorder)  # std sqrt(2 / (8 + 24))
>>> _ = get("trunc_normal(std=0.02, a=-0.04, b=0.04)")(torch.empty(8), generator=recorder)
>>> recorder.calls
[('normal', 0.0, 0.25), ('truncated_normal', 0.0, 0.02, -0.04, 0.04)]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fanin.rng.stream import Stream
from fanin.rng.transforms import Transform

__all__ = ["DrawRecorder"]


class DrawRecorder(Stream):
    """A :class:`Stream` that writes nothing and records the parameters of every draw."""

    class Stop(Exception):
        """Raised by a structured draw when the recorder was made with ``stop_at_structure=True``."""

    def __init__(self, *, stop_at_structure: bool = False) -> None:
        super().__init__(0, "fanin.rng.recording")
        self.stop_at_structure = stop_at_structure
        self.calls: list[tuple[Any, ...]] = []

    def _structured(self, call: tuple[Any, ...]) -> None:
        self.calls.append(call)
        if self.stop_at_structure:
            raise DrawRecorder.Stop(call[0])

    def uniform_(self, tensor: torch.Tensor, low: float, high: float, **box: Any) -> torch.Tensor:
        self.calls.append(("uniform", float(low), float(high)))
        return tensor

    def normal_(self, tensor: torch.Tensor, mean: float, std: float, **box: Any) -> torch.Tensor:
        self.calls.append(("normal", float(mean), float(std)))
        return tensor

    def truncated_normal_(
        self, tensor: torch.Tensor, mean: float, std: float, lower: float, upper: float, **box: Any
    ) -> torch.Tensor:
        self.calls.append(("truncated_normal", float(mean), float(std), float(lower), float(upper)))
        return tensor

    def standard_normal(
        self, shape: Sequence[int], *, dtype: torch.dtype, device: torch.device | str, **box: Any
    ) -> torch.Tensor:
        self._structured(("normal", 0.0, 1.0))
        return torch.empty(tuple(shape), dtype=dtype, device=device)

    def orthogonal_(self, tensor: torch.Tensor, gain: float = 1.0, **box: Any) -> torch.Tensor:
        self._structured(("orthogonal", float(gain)))
        return tensor

    def sparse_mask(
        self, shape: Sequence[int], num_zeros: int, *, device: torch.device | str | None = None, **box: Any
    ) -> torch.Tensor:
        self._structured(("sparse", int(num_zeros)))
        return torch.zeros(tuple(shape), dtype=torch.bool, device=device)

    def fill_(self, tensor: torch.Tensor, transform: Transform, **box: Any) -> torch.Tensor:
        # Every scheme draws through the named methods above; a direct fill is not expected.
        raise TypeError(f"DrawRecorder records the named draws only, got a direct fill_ with {transform!r}")
