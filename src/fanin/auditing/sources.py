"""Sources of named tensors for the audit: a module, a state_dict or a checkpoint path.

A :class:`Source` knows every tensor's name and shape up front and reads one tensor at a time
(:meth:`Source.get`), so a checkpoint streams. Checkpoint files are read by
:mod:`fanin.auditing.checkpoint`, which never unpickles code.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from fanin.auditing.checkpoint import CheckpointError, checkpoint_tensors, flatten_state, require_safetensors
from fanin.errors import describe_choice

__all__ = ["LAYOUTS", "Source", "SourceInfo", "open_source"]

LAYOUTS = ("keras", "torch")


@dataclass(frozen=True)
class SourceInfo:
    """Where a tensor sits: its module type (``None`` for a state_dict), layout, and whether it is
    stored transposed relative to PyTorch's (out, in) (transformers' ``Conv1D``)."""

    module_type: str | None
    layout: str
    transpose: bool


class Source:
    """Named tensors read one at a time, with their shapes known up front (bounded memory)."""

    def __init__(self, label: str, names: list[str], shapes: dict[str, tuple[int, ...]],
                 get: Callable[[str], torch.Tensor], infos: dict[str, SourceInfo], layout_note: str) -> None:
        self.label = label
        self.names = names
        self.shapes = shapes
        self._get = get
        self.infos = infos
        self.layout_note = layout_note

    def get(self, name: str) -> torch.Tensor:
        return self._get(name)


def _module_infos(module: torch.nn.Module) -> dict[str, SourceInfo]:
    infos = {}
    for prefix, sub in module.named_modules():
        kind = type(sub).__name__
        for pname, _ in list(sub.named_parameters(recurse=False)) + list(sub.named_buffers(recurse=False)):
            name = f"{prefix}.{pname}" if prefix else pname
            # transformers' Conv1D (GPT-2) stores its weight as (in, out), as Keras does.
            transpose = kind == "Conv1D" and pname == "weight"
            infos.setdefault(name, SourceInfo(kind, "keras" if transpose else "torch", transpose))
    return infos


def open_source(source: object, *, layout: str = "torch") -> Source:
    """A :class:`Source` over an ``nn.Module``, a state_dict or a checkpoint path."""
    if layout not in LAYOUTS:
        raise ValueError(describe_choice("layout", layout, LAYOUTS))
    if isinstance(source, torch.nn.Module):
        state = source.state_dict(keep_vars=False)
        infos = _module_infos(source)
        names = list(state)
        return Source(type(source).__name__, names, {k: tuple(v.shape) for k, v in state.items()},
                      state.__getitem__, infos, "layouts read from the module types")
    assumed = f"layout {layout} assumed (no module given: (out, in, *kernel) for torch, (*kernel, in, out) for keras)"
    if isinstance(source, Mapping):
        items = dict(flatten_state(source))
        infos = {k: SourceInfo(None, layout, layout == "keras" and v.dim() == 2) for k, v in items.items()}
        return Source("state_dict", list(items), {k: tuple(v.shape) for k, v in items.items()},
                      items.__getitem__, infos, assumed)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() == ".safetensors" and path.is_file():
            return _safetensors_source(path, layout, assumed)
        _, it = checkpoint_tensors(path)
        items = dict(it)
        infos = {k: SourceInfo(None, layout, layout == "keras" and v.dim() == 2) for k, v in items.items()}
        return Source(str(path), list(items), {k: tuple(v.shape) for k, v in items.items()},
                      items.__getitem__, infos, assumed)
    raise TypeError(
        "fanin.audit needs an nn.Module, a state_dict (a mapping of names to tensors) or a checkpoint path "
        f"(.safetensors, .pt, .pth, .bin, .ckpt); got source={source!r:.80} ({type(source).__name__})"
    )


def _safetensors_source(path: Path, layout: str, assumed: str) -> Source:
    safe_open = require_safetensors()
    try:
        handle = safe_open(str(path), framework="pt")
        names = list(handle.keys())
        shapes = {k: tuple(handle.get_slice(k).get_shape()) for k in names}
    except Exception as err:  # noqa: BLE001  safetensors raises its own SafetensorError
        raise CheckpointError(f"Cannot read path={str(path)!r} as safetensors: {err}") from None
    infos = {k: SourceInfo(None, layout, layout == "keras" and len(s) == 2) for k, s in shapes.items()}
    return Source(str(path), names, shapes, handle.get_tensor, infos, assumed)
