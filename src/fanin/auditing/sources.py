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
    """Named tensors read one at a time, with their shapes known up front (bounded memory).

    - ``names``: every tensor, in the source's order; ``shapes`` and ``dtypes`` by name.
    - ``aliases``: name -> the earlier name whose storage it shares (tied weights such as
      ``lm_head.weight`` -> ``wte.weight``); an alias is audited once, under its first name.
    - ``skipped``: name -> why its values cannot be audited (not floating point, on the meta
      device, a dtype torch cannot convert to float64).
    """

    def __init__(self, label: str, names: list[str], shapes: dict[str, tuple[int, ...]],
                 get: Callable[[str], torch.Tensor], infos: dict[str, SourceInfo], layout_note: str, *,
                 dtypes: dict[str, torch.dtype] | None = None, aliases: dict[str, str] | None = None,
                 skipped: dict[str, str] | None = None) -> None:
        self.label = label
        self.names = names
        self.shapes = shapes
        self._get = get
        self.infos = infos
        self.layout_note = layout_note
        self.dtypes = dtypes or {}
        self.aliases = aliases or {}
        self.skipped = skipped or {}

    def get(self, name: str) -> torch.Tensor:
        return self._get(name)


def skip_reason(tensor: torch.Tensor) -> str | None:
    """Why ``tensor``'s values cannot be audited, or ``None`` when they can."""
    if tensor.is_meta:
        return "on the meta device (no values)"
    if not tensor.is_floating_point():
        return f"not floating point (dtype={str(tensor.dtype).replace('torch.', '')})"
    return None


def _tensor_facts(items: Mapping[str, torch.Tensor]):
    """dtypes, aliases (same storage, offset, shape and strides as an earlier name), skip reasons."""
    dtypes, aliases, skipped, seen = {}, {}, {}, {}
    for name, t in items.items():
        dtypes[name] = t.dtype
        if not t.is_meta and t.numel():
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
            if key in seen:
                aliases[name] = seen[key]
            else:
                seen[key] = name
        reason = skip_reason(t)
        if reason is not None:
            skipped[name] = reason
    return dtypes, aliases, skipped


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
        dtypes, aliases, skipped = _tensor_facts(state)
        return Source(type(source).__name__, names, {k: tuple(v.shape) for k, v in state.items()},
                      state.__getitem__, infos, "layouts read from the module types",
                      dtypes=dtypes, aliases=aliases, skipped=skipped)
    assumed = f"layout {layout} assumed (no module given: (out, in, *kernel) for torch, (*kernel, in, out) for keras)"
    if isinstance(source, Mapping):
        items = dict(flatten_state(source))
        infos = {k: SourceInfo(None, layout, layout == "keras" and v.dim() == 2) for k, v in items.items()}
        dtypes, aliases, skipped = _tensor_facts(items)
        return Source("state_dict", list(items), {k: tuple(v.shape) for k, v in items.items()},
                      items.__getitem__, infos, assumed, dtypes=dtypes, aliases=aliases, skipped=skipped)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.suffix.lower() == ".safetensors" and path.is_file():
            return _safetensors_source(path, layout, assumed)
        _, it = checkpoint_tensors(path)
        items = dict(it)
        infos = {k: SourceInfo(None, layout, layout == "keras" and v.dim() == 2) for k, v in items.items()}
        dtypes, aliases, skipped = _tensor_facts(items)
        return Source(str(path), list(items), {k: tuple(v.shape) for k, v in items.items()},
                      items.__getitem__, infos, assumed, dtypes=dtypes, aliases=aliases, skipped=skipped)
    raise TypeError(
        "fanin.audit needs an nn.Module, a state_dict (a mapping of names to tensors) or a checkpoint path "
        f"(.safetensors, .pt, .pth, .bin, .ckpt); got source={source!r:.80} ({type(source).__name__})"
    )


def _safetensors_source(path: Path, layout: str, assumed: str) -> Source:
    safe_open = require_safetensors()
    try:
        handle = safe_open(str(path), framework="pt")
        names = list(handle.keys())
        slices = {k: handle.get_slice(k) for k in names}
        shapes = {k: tuple(sl.get_shape()) for k, sl in slices.items()}
        dtypes = {k: _SAFETENSORS_DTYPES.get(sl.get_dtype()) for k, sl in slices.items()}
    except Exception as err:  # noqa: BLE001  safetensors raises its own SafetensorError
        raise CheckpointError(f"Cannot read path={str(path)!r} as safetensors: {err}") from None
    infos = {k: SourceInfo(None, layout, layout == "keras" and len(s) == 2) for k, s in shapes.items()}
    skipped = {k: f"not floating point (dtype={d})" for k, d in
               ((k, str(dtypes[k]).replace("torch.", "") if dtypes[k] is not None else slices[k].get_dtype())
                for k in names) if dtypes[k] is None or not dtypes[k].is_floating_point}
    return Source(str(path), names, shapes, handle.get_tensor, infos, assumed,
                  dtypes={k: d for k, d in dtypes.items() if d is not None}, skipped=skipped)


# safetensors' dtype names (its header's "dtype" field) as torch dtypes; names torch lacks map to None.
_SAFETENSORS_DTYPES = {
    name: getattr(torch, attr, None) for name, attr in {
        "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
        "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I64": "int64", "I32": "int32",
        "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool",
    }.items()
}
