"""Read tensors from a checkpoint file without ever unpickling code, one tensor at a time.

- ``.safetensors``: through the ``safetensors`` package (``safe_open``), tensor by tensor, so
  memory holds one tensor at a time. ``safetensors`` is the optional extra ``fanin[audit]``.
- ``.pt`` / ``.pth`` / ``.bin`` / ``.ckpt``: ``torch.load(weights_only=True, mmap=True)``. The
  weights-only unpickler accepts tensors, containers and plain values and refuses any other
  global, so a file whose pickle would run code (``__reduce__`` calling ``os.system``) is refused
  with :class:`UnsafeCheckpointError` and nothing in it runs. A nested dict (``{"state_dict":
  {...}}``, ``{"model": {...}}``) is flattened with dotted names.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from fanin.errors import FaninError

__all__ = ["CheckpointError", "UnsafeCheckpointError", "checkpoint_tensors", "flatten_state", "require_safetensors"]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")


class CheckpointError(FaninError, ValueError):
    """A checkpoint that cannot be read as a set of named tensors."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle checkpoint that the weights-only loader refuses (it would run code or load classes)."""


def flatten_state(obj: object, prefix: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """(dotted name, tensor) for every tensor in nested dicts/lists/tuples; other values are skipped.

    >>> [n for n, _ in flatten_state({"model": {"w": torch.zeros(1)}, "step": 3})]
    ['model.w']
    """
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            yield from flatten_state(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(obj, (list, tuple)):
        for i, value in enumerate(obj):
            yield from flatten_state(value, f"{prefix}.{i}" if prefix else str(i))


def require_safetensors():
    try:
        from safetensors import safe_open
    except ImportError as err:
        raise CheckpointError(
            f"Reading .safetensors files needs the safetensors package, which is not installed ({err}). "
            "Install it with: pip install 'fanin[audit]'"
        ) from None
    return safe_open


def checkpoint_tensors(path: str | os.PathLike[str]) -> tuple[int, Iterator[tuple[str, torch.Tensor]]]:
    """The number of tensors in the checkpoint at ``path`` and an iterator over (name, tensor).

    Safetensors files are streamed (each tensor read when the iterator reaches it); pickle files
    are memory-mapped where torch can.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint file at path={str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        safe_open = require_safetensors()
        try:
            handle = safe_open(str(path), framework="pt")
        except Exception as err:  # noqa: BLE001  safetensors raises its own SafetensorError
            raise CheckpointError(f"Cannot read path={str(path)!r} as safetensors: {err}") from None
        keys = list(handle.keys())

        def stream() -> Iterator[tuple[str, torch.Tensor]]:
            for key in keys:
                yield key, handle.get_tensor(key)

        return len(keys), stream()
    if suffix in PICKLE_SUFFIXES:
        state = _load_weights_only(path)
        items = list(flatten_state(state))
        if not items:
            raise CheckpointError(f"path={str(path)!r} holds no tensors (got a {type(state).__name__})")
        return len(items), iter(items)
    raise CheckpointError(
        f"Unknown checkpoint type for path={str(path)!r} (suffix={suffix!r}). Accepted: "
        + ", ".join(repr(s) for s in sorted((".safetensors", *PICKLE_SUFFIXES)))
    )


def _load_weights_only(path: Path) -> object:
    import pickle
    import warnings

    last: Exception | None = None
    for mmap in (True, False):  # mmap needs the zipfile format; legacy files load without it
        try:
            with warnings.catch_warnings():
                # torch warns about pickle protocols it may not parse; the refusal below says more.
                warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except pickle.UnpicklingError as err:
            lines = str(err).splitlines()
            detail = next((ln.strip() for ln in lines if "GLOBAL" in ln or "Unsupported" in ln), lines[-1].strip())
            raise UnsafeCheckpointError(
                f"Refusing to load path={str(path)!r}: the weights-only loader found something other than "
                "tensors and plain containers (a class or a function to call), which unpickling would run. "
                "Nothing was executed. If you trust this file, load it yourself and pass the state_dict: "
                f"fanin.audit(torch.load(path, weights_only=False)). The loader said: {detail}"
            ) from None
        except RuntimeError as err:
            last = err
    raise CheckpointError(f"Cannot read path={str(path)!r} as a PyTorch checkpoint: {last}") from None
