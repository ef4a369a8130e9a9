"""Sources of named tensors for the audit: a module, a state_dict, a checkpoint file or a
Hugging Face model directory.

A :class:`Source` knows every tensor's name, shape and dtype up front, which tensors share
storage (``aliases``) and which cannot be audited and why (``skipped``), and reads one tensor at a
time (:meth:`Source.get`), so a checkpoint streams: a safetensors tensor is read from the file
when asked for, a pickle checkpoint is memory-mapped, a sharded checkpoint keeps one shard open.
Files are read by :mod:`fanin.auditing.checkpoint`, which never unpickles code and checks what a
file says before trusting it (docs/checkpoints.md).

>>> import torch
>>> lm = torch.nn.Module()
>>> lm.wte = torch.nn.Embedding(10, 4)
>>> lm.head = torch.nn.Linear(4, 10, bias=False)
>>> lm.head.weight = lm.wte.weight
>>> src = open_source(lm)
>>> src.names, src.aliases
(['wte.weight', 'head.weight'], {'head.weight': 'wte.weight'})
>>> open_source({"w": torch.zeros(2), "step": torch.tensor(3)}).skipped
{'step': 'not floating point (dtype=int64)'}
"""

from __future__ import annotations

import functools
import json
import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from fanin.auditing.checkpoint import (
    PICKLE_SUFFIXES,
    SAFETENSORS_SUFFIX,
    CheckpointError,
    Flattened,
    HFCheckpoint,
    SafetensorsHeader,
    checkpoint_kind,
    flatten_state,
    hf_checkpoint,
    load_pickle,
    one_line,
    open_checkpoint_file,
    read_safetensors_header,
    require_safetensors,
    show,
)
from fanin.errors import describe_choice

__all__ = ["LAYOUTS", "Source", "SourceInfo", "dtype_skip_reason", "open_source", "skip_reason"]

LAYOUTS = ("keras", "torch")
MAX_CONFIG_SIZE = 10_000_000


@dataclass(frozen=True)
class SourceInfo:
    """Where a tensor sits: its module type (``None`` for a state_dict), layout, and whether it is
    stored transposed relative to PyTorch's (out, in) (transformers' ``Conv1D``)."""

    module_type: str | None
    layout: str
    transpose: bool


class Source:
    """Named tensors read one at a time, with their shapes known up front (bounded memory).

    - ``names``: every tensor, in the source's order (a module's state_dict order; a file's
      storage order); ``shapes`` by name; ``dtypes`` by name for every tensor torch has a dtype
      for, ``dtype_names`` for every tensor (torch's name, or the safetensors one where torch
      has none, e.g. ``F6_E2M3``).
    - ``aliases``: name -> the earlier name whose storage it shares (tied weights such as
      ``lm_head.weight`` -> ``wte.weight``); an alias is audited once, under its first name.
    - ``skipped``: name -> why its values cannot be audited (not floating point, on the meta
      device, a dtype torch cannot convert to float64, an expanded view). ``get`` of a skipped
      name may fail.
    - ``shared``: for a nested checkpoint, the path of a container met again -> the path where
      it was first met (its tensors are listed there once); ``notes``: sentences about the
      source a report should show (shared containers, shards).
    """

    def __init__(
        self,
        label: str,
        names: list[str],
        shapes: dict[str, tuple[int, ...]],
        get: Callable[[str], torch.Tensor],
        infos: dict[str, SourceInfo],
        layout_note: str,
        *,
        dtypes: dict[str, torch.dtype] | None = None,
        aliases: dict[str, str] | None = None,
        skipped: dict[str, str] | None = None,
        dtype_names: dict[str, str] | None = None,
        shared: dict[str, str] | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.label = label
        self.names = names
        self.shapes = shapes
        self._get = get
        self.infos = infos
        self.layout_note = layout_note
        self.dtypes = dtypes or {}
        self.aliases = aliases or {}
        self.skipped = skipped or {}
        self.dtype_names = dtype_names or {k: _dtype_text(v) for k, v in self.dtypes.items()}
        self.shared = shared or {}
        self.notes = notes

    def get(self, name: str) -> torch.Tensor:
        """The tensor ``name`` (read from the file now for a streamed source)."""
        if name not in self.shapes:
            raise KeyError(describe_choice("tensor", name, self.names))
        return self._get(name)

    def __repr__(self) -> str:
        return (
            f"<Source {show(self.label, 60)}: {len(self.names)} tensors, {len(self.aliases)} aliases, "
            f"{len(self.skipped)} skipped>"
        )


def _dtype_text(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


@functools.cache
def dtype_skip_reason(dtype: torch.dtype) -> str | None:
    """Why values of ``dtype`` cannot be audited, or ``None``: the audit reads floating-point
    values as float64, which integer, bool and complex values are not and which torch cannot
    convert some dtypes to (``float4_e2m1fn_x2`` in torch 2.13; float8 variants convert).

    >>> dtype_skip_reason(torch.float8_e4m3fn) is None
    True
    >>> dtype_skip_reason(torch.complex64)
    'complex (dtype=complex64)'
    """
    text = _dtype_text(dtype)
    if dtype.is_complex:
        return f"complex (dtype={text})"
    if not dtype.is_floating_point:
        return f"not floating point (dtype={text})"
    try:
        torch.zeros(dtype.itemsize, dtype=torch.uint8).view(dtype).to(torch.float64)
    except (RuntimeError, NotImplementedError, TypeError):
        return f"dtype={text}, which torch cannot convert to float64"
    return None


def skip_reason(tensor: torch.Tensor) -> str | None:
    """Why ``tensor``'s values cannot be audited, or ``None`` when they can.

    >>> skip_reason(torch.zeros(1, device="meta"))
    'on the meta device (no values)'
    >>> skip_reason(torch.zeros(1).expand(8))
    'an expanded view (stride 0: its 8 values repeat 4 bytes of storage)'
    """
    if tensor.is_meta:
        return "on the meta device (no values)"
    if tensor.is_nested:
        return "a nested tensor"
    if tensor.layout != torch.strided:
        return f"{str(tensor.layout).removeprefix('torch.')} layout (only dense tensors are audited)"
    if tensor.is_quantized:
        return f"quantized (dtype={_dtype_text(tensor.dtype)})"
    reason = dtype_skip_reason(tensor.dtype)
    if reason is not None:
        return reason
    if tensor.numel() > 1:
        try:
            nbytes = tensor.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            return None
        repeats = any(st == 0 and n > 1 for n, st in zip(tensor.shape, tensor.stride(), strict=True))
        if repeats or tensor.numel() * tensor.element_size() > nbytes:
            return (
                f"an expanded view (stride 0: its {tensor.numel()} values repeat {nbytes} bytes of storage)"
                if repeats
                else f"overlapping strides (its {tensor.numel()} values repeat {nbytes} bytes of storage)"
            )
    return None


def _storage_key(t: torch.Tensor):
    if t.is_meta or t.layout != torch.strided or t.is_nested or not t.numel():
        return None
    try:
        ptr = t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return None
    return (ptr, t.storage_offset(), tuple(t.shape), t.stride(), t.dtype) if ptr else None


def _tensor_facts(items: Mapping[str, torch.Tensor], identity: Mapping[str, object] | None = None):
    """dtypes, aliases and skip reasons. A name is an alias of the first name with the same
    object in ``identity`` (a module's parameters, tied even on the meta device) or the same
    storage, offset, shape, strides and dtype."""
    dtypes, aliases, skipped = {}, {}, {}
    by_key: dict[object, str] = {}
    by_id: dict[int, str] = {}
    for name, t in items.items():
        dtypes[name] = t.dtype
        owner = identity.get(name) if identity is not None else t
        first = by_id.setdefault(id(owner), name)
        key = _storage_key(t)
        if first == name and key is not None:
            first = by_key.setdefault(key, name)
        if first != name:
            aliases[name] = first
        reason = skip_reason(t)
        if reason is not None:
            skipped[name] = reason
    return dtypes, aliases, skipped


def _module_infos(module: torch.nn.Module) -> dict[str, SourceInfo]:
    infos: dict[str, SourceInfo] = {}
    for prefix, sub in module.named_modules(remove_duplicate=False):
        kind = type(sub).__name__
        for pname, _ in list(sub.named_parameters(recurse=False)) + list(sub.named_buffers(recurse=False)):
            name = f"{prefix}.{pname}" if prefix else pname
            # transformers' Conv1D (GPT-2) stores its weight as (in, out), as Keras does.
            transpose = kind == "Conv1D" and pname == "weight"
            infos.setdefault(name, SourceInfo(kind, "keras" if transpose else "torch", transpose))
    return infos


def _assumed(layout: str) -> str:
    return f"layout {layout} assumed (no module given: (out, in, *kernel) for torch, (*kernel, in, out) for keras)"


def _infos_for(shapes: Mapping[str, tuple[int, ...]], layout: str) -> dict[str, SourceInfo]:
    return {k: SourceInfo(None, layout, layout == "keras" and len(s) == 2) for k, s in shapes.items()}


def _shared_notes(shared: Mapping[str, str]) -> tuple[str, ...]:
    if not shared:
        return ()
    path, first = next(iter(shared.items()))
    more = f" (and {len(shared) - 1} more)" if len(shared) > 1 else ""
    count = "1 container is" if len(shared) == 1 else f"{len(shared)} containers are"
    return (
        (
            f"{count} the same object as one met before ({show(path, 60)} is {show(first or '<top>', 60)}{more}); "
            "their tensors are listed once, under the first path"
        ),
    )


def _tensors_source(label: str, flat: Flattened, layout: str, notes: tuple[str, ...] = ()) -> Source:
    items = flat.tensors
    shapes = {k: tuple(v.shape) for k, v in items.items()}
    dtypes, aliases, skipped = _tensor_facts(items)
    return Source(
        label,
        list(items),
        shapes,
        items.__getitem__,
        _infos_for(shapes, layout),
        _assumed(layout),
        dtypes=dtypes,
        aliases=aliases,
        skipped=skipped,
        shared=flat.shared,
        notes=notes + _shared_notes(flat.shared),
    )


def open_source(source: object, *, layout: str = "torch") -> Source:
    """A :class:`Source` over an ``nn.Module``, a state_dict (any nested mapping of tensors), a
    checkpoint file (``.safetensors``, ``.pt``, ``.pth``, ``.bin``, ``.ckpt``, ``.pkl``) or a
    Hugging Face model directory (``model.safetensors``, sharded or not; ``pytorch_model.bin``,
    sharded or not). A :class:`Source` is returned as it is.

    ``layout`` is the layout assumed where no module says it (files and state_dicts). Every
    problem with a file is a :class:`~fanin.auditing.checkpoint.CheckpointError` naming it.
    """
    if layout not in LAYOUTS:
        raise ValueError(describe_choice("layout", layout, LAYOUTS))
    if isinstance(source, Source):
        return source
    if isinstance(source, torch.nn.Module):
        return _module_source(source)
    if isinstance(source, Mapping):
        return _tensors_source("state_dict", flatten_state(source, what="the state_dict"), layout)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if _is_dir(path):
            return _directory_source(hf_checkpoint(path), layout)
        suffix = path.suffix.lower()
        if suffix == SAFETENSORS_SUFFIX:
            return _safetensors_source(str(path), [path], None, layout, ())
        if suffix in PICKLE_SUFFIXES:
            return _tensors_source(str(path), _nonempty(load_pickle(path), str(path)), layout)
        _unknown_type(path)
    raise TypeError(
        "fanin.audit needs an nn.Module, a state_dict (a mapping of names to tensors), a checkpoint path "
        "(.safetensors, .pt, .pth, .bin, .ckpt, .pkl) or a Hugging Face model directory; "
        f"got source={source!r:.80} ({type(source).__name__})"
    )


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:  # missing or unreadable: reported by open_checkpoint_file, naming the path
        return False


def _module_source(module: torch.nn.Module) -> Source:
    state = module.state_dict(keep_vars=False)
    # Tied parameters are one object registered under two names; on the meta device they have no
    # storage to compare, so identity comes from the module's own (non-deduplicated) listing.
    owners: dict[str, torch.Tensor] = dict(module.named_parameters(remove_duplicate=False))
    owners.update(module.named_buffers(remove_duplicate=False))
    identity = {k: owners.get(k, v) for k, v in state.items()}
    dtypes, aliases, skipped = _tensor_facts(state, identity)
    return Source(
        type(module).__name__,
        list(state),
        {k: tuple(v.shape) for k, v in state.items()},
        state.__getitem__,
        _module_infos(module),
        "layouts read from the module types",
        dtypes=dtypes,
        aliases=aliases,
        skipped=skipped,
    )


def _nonempty(flat: Flattened, label: str) -> Flattened:
    if not flat.tensors:
        raise CheckpointError(f"Cannot read path={show(label)}: it holds no tensors")
    return flat


def _unknown_type(path: Path) -> None:
    f, size = open_checkpoint_file(path)  # a missing path, a FIFO or a device is reported as such
    with f:
        kind = checkpoint_kind(f.read(16), size)
    hint = {
        "zip": " (its content is a PyTorch zip checkpoint: name it .pt)",
        "pickle": " (its content is a pickle: name it .pt)",
        "safetensors": " (its content is a safetensors file: name it .safetensors)",
    }.get(kind, "")
    raise CheckpointError(
        f"Unknown checkpoint type for path={show(path)} (suffix={path.suffix.lower()!r}). Accepted: "
        + ", ".join(repr(s) for s in sorted((SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES)))
        + ", or a Hugging Face "
        "model directory" + hint
    )


# ------------------------------------------------------------------------------- safetensors

# safetensors' dtype names (its header's "dtype" field) as torch dtypes. F4 (two float4 per byte in
# torch, one element each in the header's shape) and F6 have no torch dtype the audit can read.
_SAFETENSORS_DTYPES = {
    name: getattr(torch, attr)
    for name, attr in {
        "F64": "float64",
        "F32": "float32",
        "F16": "float16",
        "BF16": "bfloat16",
        "F8_E4M3": "float8_e4m3fn",
        "F8_E5M2": "float8_e5m2",
        "F8_E8M0": "float8_e8m0fnu",
        "C64": "complex64",
        "I64": "int64",
        "I32": "int32",
        "I16": "int16",
        "I8": "int8",
        "U64": "uint64",
        "U32": "uint32",
        "U16": "uint16",
        "U8": "uint8",
        "BOOL": "bool",
    }.items()
    if hasattr(torch, attr)
}
_NO_TORCH_DTYPE = {"F4": "float4 e2m1", "F6_E2M3": "float6 e2m3", "F6_E3M2": "float6 e3m2"}


def _safetensors_header(path: Path) -> SafetensorsHeader:
    label = str(path)
    f, size = open_checkpoint_file(path)
    with f:
        if size == 0:
            raise CheckpointError(f"Cannot read path={show(label)} as safetensors: the file is empty (0 bytes)")
        kind = checkpoint_kind(f.read(16), size)
        if kind in ("zip", "pickle"):
            what = "a PyTorch zip checkpoint" if kind == "zip" else "a pickle"
            raise CheckpointError(
                f"Cannot read path={show(label)} as safetensors: it holds {what}, not safetensors (nothing was "
                "unpickled); name it .pt to read it with the weights-only loader"
            )
        f.seek(0)
        return read_safetensors_header(f, size, label)


def _claim(label: str, where: dict[str, Path], weight_map: Mapping[str, Path] | None, name: str, path: Path) -> None:
    """Record that shard ``path`` holds ``name``: once, and where the index says."""
    if name in where:
        raise CheckpointError(
            f"Cannot read the checkpoint {show(label)}: tensor {show(name)} is in two shards, "
            f"{show(where[name].name)} and {show(path.name)}"
        )
    if weight_map is not None and weight_map.get(name) != path:
        said = weight_map.get(name)
        why = "which the index does not list" if said is None else f"which the index puts in {show(said.name)}"
        raise CheckpointError(
            f"Cannot read the checkpoint {show(label)}: shard {show(path.name)} holds tensor {show(name)}, {why}"
        )
    where[name] = path


def _all_found(label: str, where: Mapping[str, Path], weight_map: Mapping[str, Path] | None) -> None:
    """Every tensor the index lists was found in its shard."""
    if weight_map is None:
        return
    absent = [n for n in weight_map if n not in where]
    if absent:
        count = "1 tensor" if len(absent) == 1 else f"{len(absent)} tensors"
        raise CheckpointError(
            f"Cannot read the checkpoint {show(label)}: the index lists {count} that its shards "
            f"do not hold, e.g. {show(absent[0])} in {show(weight_map[absent[0]].name)}"
        )


class _OneOpen:
    """Opens one file at a time (``opener(path)``), so a sharded checkpoint holds one shard."""

    def __init__(self, opener: Callable[[Path], object]) -> None:
        self._opener = opener
        self._path: Path | None = None
        self._handle: object = None

    def __call__(self, path: Path):
        if path != self._path:
            self._handle = None  # release the previous shard first
            self._handle = self._opener(path)
            self._path = path
        return self._handle


def _safetensors_source(
    label: str, files: list[Path], weight_map: Mapping[str, Path] | None, layout: str, notes: tuple[str, ...]
) -> Source:
    names: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, torch.dtype] = {}
    dtype_names: dict[str, str] = {}
    skipped: dict[str, str] = {}
    where: dict[str, Path] = {}
    for path in files:
        header = _safetensors_header(path)
        for e in header.tensors:
            _claim(label, where, weight_map, e.name, path)
            names.append(e.name)
            shapes[e.name] = e.shape
            dt = _SAFETENSORS_DTYPES.get(e.dtype)
            if dt is None:
                dtype_names[e.name] = e.dtype
                skipped[e.name] = (
                    f"dtype={e.dtype} ({_NO_TORCH_DTYPE.get(e.dtype, 'no torch dtype')}), "
                    "which torch cannot convert to float64"
                )
                continue
            dtypes[e.name] = dt
            dtype_names[e.name] = _dtype_text(dt)
            reason = dtype_skip_reason(dt)
            if reason is not None:
                skipped[e.name] = reason
    _all_found(label, where, weight_map)
    if not names:
        raise CheckpointError(f"Cannot read path={show(label)}: it holds no tensors")
    safe_open = require_safetensors()

    def opener(path: Path):
        try:
            return safe_open(str(path), framework="pt")
        except Exception as err:  # safetensors raises its own SafetensorError
            raise CheckpointError(f"Cannot read path={show(path)} as safetensors: {one_line(err)}") from None

    handles = _OneOpen(opener)

    def get(name: str) -> torch.Tensor:
        if name in skipped and name not in dtypes:
            raise CheckpointError(f"Cannot read tensor {show(name)} of {show(label)}: {skipped[name]}")
        handle = handles(where[name])
        try:
            return handle.get_tensor(name)
        except Exception as err:
            raise CheckpointError(
                f"Cannot read tensor {show(name)} from path={show(where[name])}: {one_line(err)}"
            ) from None

    return Source(
        label,
        names,
        shapes,
        get,
        _infos_for(shapes, layout),
        _assumed(layout),
        dtypes=dtypes,
        skipped=skipped,
        dtype_names=dtype_names,
        notes=notes,
    )


# ---------------------------------------------------------------------- Hugging Face layout


def _directory_source(hf: HFCheckpoint, layout: str) -> Source:
    label = str(hf.directory)
    files = list(hf.files)
    shards = f"{len(files)} shards listed in {hf.index.name}" if hf.index is not None else files[0].name
    notes = (f"Hugging Face model directory: {shards}", *_config_notes(hf.directory))
    if hf.format == "safetensors":
        return _safetensors_source(label, files, hf.weight_map, layout, notes)
    if hf.weight_map is None:
        return _tensors_source(label, _nonempty(load_pickle(files[0]), str(files[0])), layout, notes)
    return _pickle_shards_source(label, files, hf.weight_map, layout, notes)


def _config_notes(directory: Path) -> tuple[str, ...]:
    """What the directory's ``config.json`` says about tensors the weight files do not hold.

    ``save_pretrained`` writes tied weights once (``lm_head.weight`` is ``wte.weight`` when
    ``tie_word_embeddings`` is true), so the tied name is absent from the files. The config is
    only read for this note: a missing or unreadable one changes nothing else.
    """
    path = directory / "config.json"
    if not os.path.lexists(path):
        return ()
    try:
        f, size = open_checkpoint_file(path)
        with f:
            if size > MAX_CONFIG_SIZE:
                return (f"config.json not read ({size} bytes, over {MAX_CONFIG_SIZE})",)
            config = json.loads(f.read(size).decode("utf-8"))
    except (CheckpointError, OSError, ValueError, RecursionError) as err:
        return (f"config.json not read ({one_line(err, 120)})",)
    if isinstance(config, dict) and config.get("tie_word_embeddings") is True:
        return (
            (
                "config.json ties the output embedding to the input embedding (tie_word_embeddings=true): "
                "the files hold that tensor once"
            ),
        )
    return ()


def _pickle_shards_source(
    label: str, files: list[Path], weight_map: Mapping[str, Path], layout: str, notes: tuple[str, ...]
) -> Source:
    """Sharded ``pytorch_model.bin``: each shard is loaded once here for names, shapes and
    aliases (within a shard), then again when a tensor of it is asked for, one shard at a time."""
    names: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    dtypes: dict[str, torch.dtype] = {}
    aliases: dict[str, str] = {}
    skipped: dict[str, str] = {}
    shared: dict[str, str] = {}
    where: dict[str, Path] = {}
    for path in files:
        flat = load_pickle(path)
        for name in flat.tensors:
            _claim(label, where, weight_map, name, path)
        d, a, s = _tensor_facts(flat.tensors)
        names += list(flat.tensors)
        shapes.update((k, tuple(v.shape)) for k, v in flat.tensors.items())
        dtypes.update(d)
        aliases.update(a)
        skipped.update(s)
        shared.update((f"{path.name}:{k}", f"{path.name}:{v}") for k, v in flat.shared.items())
        del flat
    _all_found(label, where, weight_map)
    shards = _OneOpen(load_pickle)

    def get(name: str) -> torch.Tensor:
        return shards(where[name]).tensors[name]

    return Source(
        label,
        names,
        shapes,
        get,
        _infos_for(shapes, layout),
        _assumed(layout),
        dtypes=dtypes,
        aliases=aliases,
        skipped=skipped,
        shared=shared,
        notes=notes + _shared_notes(shared),
    )
