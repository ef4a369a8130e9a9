"""Read checkpoint files as named tensors, without unpickling code, in bounded time and memory.

Everything a file says is checked before anything trusts it (docs/checkpoints.md has the list):

- **The file itself**: :func:`open_checkpoint_file` stats the path *before* opening it, so a FIFO,
  a device (``/dev/zero``), a socket or a directory is refused without blocking or reading, and
  checks the opened descriptor again (the path may have changed in between).
- **safetensors**: :func:`read_safetensors_header` validates the header with the standard library
  before the ``safetensors`` package sees the file: the 8-byte length against the file size and
  the 100 MB bound the format itself uses (``MAX_HEADER_SIZE`` in safetensors' ``tensor.rs``),
  strict UTF-8, JSON without duplicate keys at any level, known dtypes, shapes whose
  ``prod(shape) * bits(dtype) / 8`` equals the byte range, and byte ranges that tile the data
  section exactly (no gap, no overlap, nothing out of range, nothing after the last tensor). Only
  then does ``safe_open`` read tensors, one at a time.
- **PyTorch pickles** (``.pt``, ``.pth``, ``.bin``, ``.ckpt``, ``.pkl``): :func:`load_pickle` scans
  the pickle's opcodes (``pickletools.genops``, linear, nothing executed) and refuses
  ``bytearray(n)`` (the one allowlisted call that fills memory from a number), checks that a zip
  archive stores its records uncompressed (``torch.save`` never compresses; a compressed record
  could expand without bound), then ``torch.load(weights_only=True)``, memory-mapped for the zip
  format. The weights-only unpickler refuses every global outside tensors and plain containers,
  so a pickle whose ``__reduce__`` would run code is refused with
  :class:`UnsafeCheckpointError` and nothing in it runs. Afterwards the tensors' storages must fit
  in the file (a storage the pickle *constructed* rather than read is refused).
- **Nested objects**: :func:`flatten_state` walks dicts, lists and tuples visiting each container
  once (by identity), so ``x = [t, t]`` nested 40 times costs 40 steps, not 2**41; a container
  met again is recorded as shared, a cycle or nesting deeper than :data:`MAX_DEPTH` is an error.
- **Hugging Face directories**: :func:`hf_checkpoint` finds ``model.safetensors``, its sharded
  index, ``pytorch_model.bin`` or its sharded index, and validates the index (every shard present
  and inside the directory, every listed tensor in its shard, no tensor in two shards).

Every failure is a :class:`CheckpointError` (a ``ValueError``) with a one-line message naming the
file and what is wrong; names from the file appear as Python literals (``repr``), cut to a
bounded length, so no name can add lines or escape sequences to a message.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import math
import mmap
import os
import pickle
import pickletools
import re
import stat
import struct
import sys
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, NamedTuple

import torch

from fanin.errors import FaninError

__all__ = [
    "MAX_DEPTH",
    "MAX_HEADER_SIZE",
    "PICKLE_SUFFIXES",
    "SAFETENSORS_BITS",
    "SAFETENSORS_SUFFIX",
    "CheckpointError",
    "Flattened",
    "HFCheckpoint",
    "SafetensorsHeader",
    "SafetensorsTensor",
    "UnsafeCheckpointError",
    "checkpoint_kind",
    "flatten_state",
    "hf_checkpoint",
    "load_pickle",
    "one_line",
    "open_checkpoint_file",
    "read_safetensors_header",
    "require_safetensors",
    "show",
]

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
SAFETENSORS_SUFFIX = ".safetensors"

MAX_HEADER_SIZE = 100_000_000
"""The largest safetensors header accepted, in bytes: safetensors' own ``MAX_HEADER_SIZE``."""

MAX_INDEX_SIZE = 100_000_000
"""The largest ``*.index.json`` read, in bytes (an index of a million tensors is about 60 MB)."""

MAX_DEPTH = 100
"""The deepest nesting of dicts/lists/tuples :func:`flatten_state` walks (real checkpoints: < 10)."""

MAX_RANK = 64
"""The most dimensions a tensor in a safetensors header may have."""

_U64 = 2**64 - 1

SAFETENSORS_BITS = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}
"""Bits per element of every dtype a safetensors header may name (safetensors' ``Dtype::bitsize``)."""


class CheckpointError(FaninError, ValueError):
    """A checkpoint that cannot be read as a set of named tensors."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle checkpoint that the weights-only loader refuses (it would run code or load classes)."""


def show(text: object, limit: int = 120) -> str:
    """``repr(str(text))`` cut to about ``limit`` characters: one line, escapes visible.

    >>> show("a\\nb")
    "'a\\\\nb'"
    >>> show("x" * 500, limit=10)
    "'xxxxxxxxxx'... (502 characters)"
    """
    r = repr(str(text))
    return r if len(r) <= limit + 2 else f"{r[: limit + 1]}'... ({len(r)} characters)"


def one_line(err: BaseException, limit: int = 300) -> str:
    """An exception's message as one bounded line (library messages span lines)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit] + "..."


# ----------------------------------------------------------------------------- the file itself

_FILE_TYPES = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind_of(mode: int) -> str:
    return next((what for test, what in _FILE_TYPES if test(mode)), "not a regular file")


def open_checkpoint_file(path: str | os.PathLike[str]) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading if it is a regular file: ``(file, size)``.

    The type is checked with ``os.stat`` before opening (opening a FIFO would block until a
    writer comes; ``/dev/zero`` never ends) and again on the open descriptor (``O_NONBLOCK``, so
    a path swapped for a FIFO in between cannot block either).
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise CheckpointError(f"No checkpoint file at path={show(p)}") from None
    except PermissionError:
        raise CheckpointError(f"Cannot read path={show(p)}: permission denied") from None
    except OSError as err:
        raise CheckpointError(f"Cannot read path={show(p)}: {one_line(err)}") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"Cannot read path={show(p)}: it is {_kind_of(st.st_mode)}, not a checkpoint file")
    try:
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise CheckpointError(f"Cannot read path={show(p)}: permission denied") from None
    except OSError as err:
        raise CheckpointError(f"Cannot read path={show(p)}: {one_line(err)}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise CheckpointError(f"Cannot read path={show(p)}: it is {_kind_of(st.st_mode)}, not a checkpoint file")
    return os.fdopen(fd, "rb"), st.st_size


def _read_exactly(f: BinaryIO, n: int, label: str) -> bytes:
    """``n`` bytes from ``f``; a file that ends sooner changed after its size was read."""
    try:
        data = f.read(n)
    except OSError as err:
        raise CheckpointError(f"Cannot read path={show(label)}: {one_line(err)}") from None
    if len(data) != n:
        position = f.tell()
        raise CheckpointError(
            f"Cannot read path={show(label)}: the file ended after {position} of the "
            f"{position - len(data) + n} bytes expected (it changed while being read)"
        )
    return data


def checkpoint_kind(head: bytes, size: int) -> str:
    """What the first bytes of a file say it is: ``"zip"`` (PyTorch's format since 1.6),
    ``"safetensors"``, ``"pickle"`` (a pickle protocol 2+ stream: legacy ``torch.save``) or
    ``"unknown"``.

    >>> checkpoint_kind(b"PK\\x03\\x04", 100)
    'zip'
    >>> checkpoint_kind(struct.pack("<Q", 2) + b"{}", 10)
    'safetensors'
    """
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if len(head) >= 9 and head[8:].lstrip(b" \t\n\r")[:1] in (b"{", b""):
        (n,) = struct.unpack("<Q", head[:8])
        if 8 + n <= size:
            return "safetensors"
    if head[:1] == b"\x80":
        return "pickle"
    return "unknown"


# ------------------------------------------------------------------------------- safetensors


class SafetensorsTensor(NamedTuple):
    """One header entry: ``start``/``end`` are byte offsets into the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated safetensors header: the tensors in file order (by offset), the optional
    ``__metadata__`` and where the data section starts."""

    tensors: tuple[SafetensorsTensor, ...]
    metadata: dict[str, str] | None
    data_start: int


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return out


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic garbage collector: parsing a header of a million entries creates millions
    of containers, and collections triggered by each allocation batch more than double the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _strict_json(text: str) -> object:
    """``json.loads`` that refuses duplicate keys, NaN/Infinity and numbers Python cannot hold."""

    def no_constant(name: str):
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=no_constant)
    except ValueError as err:
        if "integer string conversion" in str(err):  # sys.get_int_max_str_digits()
            raise ValueError(f"a number has more than {sys.get_int_max_str_digits()} digits") from None
        raise
    if "\\u" in text:  # only an escape can give a lone surrogate (the text itself is valid UTF-8)
        _refuse_lone_surrogates(value)
    return value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(value: object) -> None:
    """Python's json turns an unpaired ``\\ud800`` escape into a string no UTF-8 holds; JSON parsers
    that keep to Unicode scalar values (serde_json, which the safetensors library uses) refuse it."""
    stack: list[object] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValueError("a string holds an unpaired UTF-16 surrogate escape (\\ud800-\\udfff)")
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


_OBJECT_START = re.compile(r"[ \t\n\r]*\{")  # JSON whitespace may precede it, as safetensors accepts


def _is_uint(value: object) -> bool:
    return type(value) is int and 0 <= value <= _U64  # bool is not a size


def read_safetensors_header(f: BinaryIO, size: int, label: str) -> SafetensorsHeader:
    """Validate the safetensors header of the open file ``f`` (``size`` bytes); ``label`` names it
    in errors. Reads the 8-byte length and the header, nothing else.

    >>> header = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    >>> blob = struct.pack("<Q", len(header)) + header + bytes(8)
    >>> read_safetensors_header(io.BytesIO(blob), len(blob), "w.safetensors").tensors[0].shape
    (2,)
    """

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"Cannot read path={show(label)} as safetensors: {what}")

    if size < 8:
        raise bad(f"the file has {size} bytes, fewer than the 8-byte header length that starts the format")
    (n,) = struct.unpack("<Q", _read_exactly(f, 8, label))
    if n > MAX_HEADER_SIZE:
        raise bad(f"the header length says {n} bytes, over the {MAX_HEADER_SIZE}-byte limit of the format")
    if 8 + n > size:
        raise bad(f"the header length says {n} bytes but only {size - 8} bytes follow it")
    try:
        text = _read_exactly(f, n, label).decode("utf-8")
    except UnicodeDecodeError as err:
        raise bad(f"the header is not UTF-8 ({one_line(err)})") from None
    if not _OBJECT_START.match(text):
        raise bad(f"the header must be a JSON object starting with '{{', got {show(text[:20])}")
    with _no_gc():
        try:
            parsed = _strict_json(text)
        except _DuplicateKey as err:
            raise bad(f"the header names key {show(err.args[0])} twice") from None
        except RecursionError:
            raise bad("the header's JSON nests too deeply") from None
        except ValueError as err:
            raise bad(f"the header is not valid JSON ({one_line(err, 160)})") from None
        del text
        return _validate_header(parsed, size - 8 - n, 8 + n, bad)


def _validate_header(parsed: object, data_size: int, data_start: int, bad) -> SafetensorsHeader:
    if not isinstance(parsed, dict):
        raise bad(f"the header is a JSON {type(parsed).__name__}, not an object")
    metadata = parsed.pop("__metadata__", None)
    if metadata is not None and not (isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())):
        raise bad("'__metadata__' must be an object of strings")
    entries = []
    ints = {int}
    while parsed:  # popped one by one, so each entry's dict is freed as its record is made
        name, info = parsed.popitem()
        # The common case in one expression; _entry_problem words what is wrong otherwise.
        try:
            dtype, shape, offsets = info["dtype"], tuple(info["shape"]), info["data_offsets"]
            start, end = offsets
            bits = SAFETENSORS_BITS[dtype] if type(dtype) is str else 0
            ok = (
                bits
                and type(info["shape"]) is list
                and type(offsets) is list
                and len(shape) <= MAX_RANK
                and type(start) is int
                and type(end) is int
                and 0 <= start <= end <= data_size
                and set(map(type, shape)) <= ints
                and min(shape, default=0) >= 0
                and max(shape, default=0) <= _U64
                and math.prod(shape) * bits == 8 * (end - start)
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise bad(f"tensor {show(name)}: {_entry_problem(info, data_size)}")
        entries.append(SafetensorsTensor(name, dtype, shape, start, end))
    entries.sort(key=lambda e: (e.start, e.end))
    position: int = 0
    previous: SafetensorsTensor | None = None
    for e in entries:
        if e.start > position:
            where = f"after tensor {show(previous.name)}" if previous else "at the start of the data"
            raise bad(
                f"{e.start - position} bytes {where} belong to no tensor (tensor {show(e.name)} "
                f"starts at byte {e.start})"
            )
        if e.start < position:
            assert previous is not None  # position > 0: a tensor came before
            raise bad(
                f"tensors {show(previous.name)} (bytes {previous.start}-{previous.end}) and "
                f"{show(e.name)} (bytes {e.start}-{e.end}) overlap"
            )
        position, previous = e.end, e
    if position != data_size:
        raise bad(f"{data_size - position} bytes after the last tensor belong to no tensor")
    return SafetensorsHeader(tuple(entries), metadata, data_start)


def _entry_problem(info: object, data_size: int) -> str:
    """What is wrong with a header entry that failed the fast check in :func:`_validate_header`."""
    if not isinstance(info, dict):
        return f"its entry is a JSON {type(info).__name__}, not an object"
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
    if missing:
        return f"its entry lacks {', '.join(repr(k) for k in missing)}"
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_BITS:
        return f"unknown dtype={show(dtype, 40)}. Accepted: {', '.join(repr(k) for k in sorted(SAFETENSORS_BITS))}"
    if not (isinstance(shape, list) and all(_is_uint(d) for d in shape)):
        return f"shape={show(shape, 60)} is not a list of sizes (integers >= 0)"
    if len(shape) > MAX_RANK:
        return f"{len(shape)} dimensions, more than {MAX_RANK}"
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_uint(o) for o in offsets)):
        return f"data_offsets={show(offsets, 60)} is not [start, end]"
    start, end = offsets
    if end < start:
        return f"data_offsets=[{start}, {end}] end before start"
    if end > data_size:
        return f"data_offsets=[{start}, {end}] out of range (the data section has {data_size} bytes)"
    bits = math.prod(shape) * SAFETENSORS_BITS[dtype]
    need = f"{bits / 8:g}" if bits % 8 else str(bits // 8)
    return (
        f"dtype={dtype} x shape={tuple(shape)} needs {need} bytes but data_offsets=[{start}, {end}] hold {end - start}"
    )


def require_safetensors():
    try:
        from safetensors import safe_open
    except ImportError as err:
        raise CheckpointError(
            f"Reading .safetensors files needs the safetensors package, which is not installed ({err}). "
            "Install it with: pip install 'fanin[audit]'"
        ) from None
    return safe_open


# ----------------------------------------------------------------------------------- pickles

_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER, the first pickle of a legacy file
_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "BUILD"}
_FILLS_MEMORY = {"builtins bytearray", "__builtin__ bytearray"}


@dataclass
class _PickleScan:
    opcodes: set[str] = field(default_factory=set)
    globals: list[str] = field(default_factory=list)
    magic: bool = False


def _scan_pickles(stream, label: str, count: int | None) -> _PickleScan:
    """Walk the opcodes of the pickle(s) at the start of ``stream`` (nothing is executed).

    ``count=None``: the legacy ``torch.save`` layout (five pickles when the first is the magic
    number, else one). Raises CheckpointError for a stream that is not a pickle.
    """
    scan = _PickleScan()
    todo, i = (1 if count is None else count), 0
    while i < todo:
        strings: list[str] = []
        try:
            for op, arg, _ in pickletools.genops(stream):
                scan.opcodes.add(op.name)
                if op.name == "GLOBAL":
                    scan.globals.append(str(arg))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    scan.globals.append(f"{strings[-2]} {strings[-1]}")
                elif isinstance(arg, str):
                    strings.append(arg)
                if count is None and i == 0 and isinstance(arg, int) and arg == _MAGIC:
                    scan.magic = True
        except (ValueError, EOFError, struct.error, UnicodeDecodeError, OverflowError, MemoryError) as err:
            where = "the file" if i == 0 else f"pickle {i + 1} of the file"
            raise CheckpointError(
                f"Cannot read path={show(label)} as a PyTorch checkpoint: {where} is not a "
                f"complete pickle ({one_line(err, 160)})"
            ) from None
        if count is None and i == 0 and scan.magic:
            todo = 5  # magic number, protocol, system info, the object, the storage keys
        i += 1
    filling = [g for g in scan.globals if g in _FILLS_MEMORY]
    if filling:
        raise UnsafeCheckpointError(
            f"Refusing to load path={show(label)}: its pickle calls bytearray, which allocates and fills as many "
            "bytes as a number in the file says before anything can check it (torch.save never writes one for "
            "tensors). Nothing was executed."
        )
    return scan


def _check_zip(f: BinaryIO, size: int, label: str) -> bytes:
    """The pickle of a PyTorch zip checkpoint, after checking the archive stores every record
    uncompressed and within the file."""
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(
                        f"Cannot read path={show(label)} as a PyTorch checkpoint: record {show(info.filename)} is "
                        "compressed (torch.save stores records uncompressed; a compressed record could expand "
                        "without bound)"
                    )
                if info.file_size > size:
                    raise CheckpointError(
                        f"Cannot read path={show(label)} as a PyTorch checkpoint: record {show(info.filename)} "
                        f"claims {info.file_size} bytes, more than the file's {size}"
                    )
            pickles = [i for i in infos if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise CheckpointError(
                    f"Cannot read path={show(label)} as a PyTorch checkpoint: a zip archive without exactly one "
                    f"data.pkl record (found {len(pickles)}); not written by torch.save"
                )
            return z.read(pickles[0])
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        OSError,
        ValueError,
        KeyError,
        NotImplementedError,
        struct.error,
    ) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(
            f"Cannot read path={show(label)} as a PyTorch checkpoint: not a valid zip archive ({one_line(err, 160)})"
        ) from None


def _refusal(label: str, detail: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f"Refusing to load path={show(label)}: the weights-only loader found something other than tensors and "
        "plain containers (a class or a function to call), which unpickling would run. Nothing was executed. "
        "If you trust this file, load it yourself and pass the state_dict: "
        f"fanin.audit(torch.load(path, weights_only=False)). The loader said: {detail}"
    )


def load_pickle(path: str | os.PathLike[str]) -> Flattened:
    """The tensors of ``torch.load(path, weights_only=True)``, after the checks in the module
    docstring (memory-mapped for the zip format, read into memory for the legacy one), flattened
    by :func:`flatten_state`."""
    label = os.fspath(path)
    f, size = open_checkpoint_file(label)
    with f:
        if size == 0:
            raise CheckpointError(
                f"Cannot read path={show(label)} as a PyTorch checkpoint: the file is empty (0 bytes)"
            )
        head = f.read(16)
        kind = checkpoint_kind(head, size)
        if kind == "safetensors":
            raise CheckpointError(
                f"Cannot read path={show(label)} as a PyTorch checkpoint: it holds a safetensors file (an 8-byte "
                "length and a JSON header), not a pickle; rename it to .safetensors"
            )
        f.seek(0)
        if kind == "zip":
            scan = _scan_pickles(io.BytesIO(_check_zip(f, size, label)), label, count=1)
        else:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
                scan = _scan_pickles(m, label, count=None)
    if scan.opcodes & {"STACK_GLOBAL", "INST", "OBJ"}:  # opcodes the weights-only loader never accepts
        named = ", ".join(g.replace(" ", ".") for g in scan.globals[:3]) or "a class or function"
        raise _refusal(label, f"the pickle references {named} by an opcode torch.load(weights_only=True) refuses")
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it may not parse; the errors below say more.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(label, map_location="cpu", weights_only=True, mmap=kind == "zip")
    except pickle.UnpicklingError as err:
        detail = one_line(err.__context__ or err, 200)
        unsupported = re.fullmatch(r"Unsupported operand (\d+)", detail)
        if unsupported and int(unsupported[1]) < 256:
            op = pickletools.code2op.get(chr(int(unsupported[1])))  # type: ignore[attr-defined]  # not in typeshed
            detail += f" (the {op.name} opcode)" if op is not None else " (not a pickle opcode)"
        if scan.opcodes & _CODE_OPCODES and any(
            s in detail for s in ("GLOBAL", "unrecognized function", "Can only", "allowlist")
        ):
            raise _refusal(label, detail) from None
        raise CheckpointError(
            f"Cannot read path={show(label)} as a PyTorch checkpoint: the weights-only loader "
            f"cannot read this pickle ({detail})"
        ) from None
    except Exception as err:  # torch.load raises RuntimeError, EOFError, KeyError, ...
        raise CheckpointError(f"Cannot read path={show(label)} as a PyTorch checkpoint: {one_line(err)}") from None
    flat = flatten_state(state, what=f"path={show(label)}")
    _check_storages_fit(flat, size, label)
    return flat


def _check_storages_fit(flat: Flattened, size: int, label: str) -> None:
    """Every storage of a loaded checkpoint is read from the file, so together they fit in it.

    A storage the pickle constructed (``torch.UntypedStorage(n)`` is allowlisted) is not; it is
    refused before anything reads it. Storage-less tensors (meta, sparse) hold no bytes.
    """
    seen, total = set(), 0
    for t in flat.tensors.values():
        if t.is_meta or t.layout != torch.strided or t.is_nested:
            continue
        try:
            st = t.untyped_storage()
        except (RuntimeError, NotImplementedError):
            continue
        if st.data_ptr() in seen:
            continue
        seen.add(st.data_ptr())
        total += st.nbytes()
    if total > size:
        raise CheckpointError(
            f"Cannot read path={show(label)} as a PyTorch checkpoint: its tensors' storages hold "
            f"{total} bytes, more than the file's {size} (storage that was not read from the file)"
        )


# --------------------------------------------------------------------------- nested objects


@dataclass(frozen=True)
class Flattened:
    """Tensors of a nested object by dotted name (first path to each), and the containers met
    again: ``shared`` maps such a path to the first path of the same container, whose tensors are
    listed under that first path only."""

    tensors: dict[str, torch.Tensor]
    shared: dict[str, str]


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return str(key)
    if isinstance(key, torch.Tensor):
        return "<tensor>"
    text = repr(key)  # a tuple or bytes key: its literal, bounded
    return text if len(text) <= 60 else text[:60] + "..."


def flatten_state(obj: object, *, what: str = "the state_dict") -> Flattened:
    """Every tensor in nested dicts/lists/tuples by dotted name; other values are left out.

    Each container is visited once, by identity: one met again (``{"model": sd, "ema": sd}``)
    is recorded in ``shared`` instead of walked again, so the walk is linear in the number of
    distinct objects. A container holding itself (a cycle) or nesting deeper than
    :data:`MAX_DEPTH` is a :class:`CheckpointError`; so are two tensors whose names collide
    (``{"a.b": t1, "a": {"b": t2}}``). A bare tensor is named ``tensor``. ``what`` names the
    object in errors.

    >>> flat = flatten_state({"model": {"w": torch.zeros(1)}, "step": 3})
    >>> list(flat.tensors)
    ['model.w']
    >>> sd = {"w": torch.zeros(1)}
    >>> flatten_state({"model": sd, "ema": sd}).shared
    {'ema': 'model'}
    """
    if isinstance(obj, torch.Tensor):
        return Flattened({"tensor": obj}, {})
    tensors: dict[str, torch.Tensor] = {}
    shared: dict[str, str] = {}
    first: dict[int, str] = {}

    def children(container: object) -> Iterator[tuple[object, object]]:
        if isinstance(container, Mapping):
            return iter(container.items())
        return enumerate(container)  # type: ignore[arg-type]

    if not isinstance(obj, (Mapping, list, tuple)):
        return Flattened(tensors, shared)
    first[id(obj)] = ""
    active = {id(obj)}
    stack: list[tuple[Iterator[tuple[object, object]], str, int]] = [(children(obj), "", id(obj))]
    while stack:
        it, prefix, ident = stack[-1]
        step = next(it, None)
        if step is None:
            stack.pop()
            active.discard(ident)
            continue
        key, value = step
        name = f"{prefix}.{_key_text(key)}" if prefix else _key_text(key)
        if isinstance(value, torch.Tensor):
            if name in tensors:
                raise CheckpointError(
                    f"Cannot read {what}: two tensors are both named {show(name)} "
                    "(a dotted key and a nested one spell the same name)"
                )
            tensors[name] = value
        elif isinstance(value, (Mapping, list, tuple)):
            vid = id(value)
            if vid in active:
                raise CheckpointError(
                    f"Cannot read {what}: it contains a cycle ({show(name)} holds the container "
                    f"at {show(first[vid] or '<top>')} that holds it)"
                )
            if vid in first:
                shared[name] = first[vid]
                continue
            if len(stack) >= MAX_DEPTH:
                raise CheckpointError(
                    f"Cannot read {what}: containers nest more than {MAX_DEPTH} levels deep (at {show(name, 80)})"
                )
            first[vid] = name
            active.add(vid)
            stack.append((children(value), name, vid))
    return Flattened(tensors, shared)


# ------------------------------------------------------------------------ Hugging Face layout

SAFE_WEIGHTS = "model.safetensors"
SAFE_INDEX = "model.safetensors.index.json"
PT_WEIGHTS = "pytorch_model.bin"
PT_INDEX = "pytorch_model.bin.index.json"
HF_NAMES = (SAFE_WEIGHTS, SAFE_INDEX, PT_WEIGHTS, PT_INDEX)
"""The files a Hugging Face model directory is read from, in the order transformers prefers them."""


@dataclass(frozen=True)
class HFCheckpoint:
    """A Hugging Face model directory: ``format`` is ``"safetensors"`` or ``"pickle"``; ``files``
    the weight files in order; ``weight_map`` tensor name -> file for a sharded checkpoint
    (``None`` for a single file); ``index`` the index file read, if any."""

    directory: Path
    format: str
    files: tuple[Path, ...]
    weight_map: dict[str, Path] | None
    index: Path | None


def _allowed_roots(directory: Path) -> list[str]:
    roots = [os.path.realpath(directory)]
    # The Hugging Face hub cache: <repo>/snapshots/<revision>/<file> is a symlink to <repo>/blobs/<hash>.
    if directory.resolve().parent.name == "snapshots":
        roots.append(os.path.realpath(directory.resolve().parent.parent / "blobs"))
    return roots


def _inside(directory: Path, relative: str, roots: list[str], what: str) -> Path:
    """``directory / relative`` when it stays inside ``directory`` (symlinks included)."""
    label = str(directory)
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise CheckpointError(
            f"Cannot read the checkpoint directory {show(label)}: {what} names the file "
            f"{show(relative)}, which is not a file name"
        )
    parts = relative.replace("\\", "/").split("/")
    if relative.startswith(("/", "\\")) or (len(relative) > 1 and relative[1] == ":") or ".." in parts:
        raise CheckpointError(
            f"Cannot read the checkpoint directory {show(label)}: {what} names the file "
            f"{show(relative)}, outside the directory (absolute or with '..')"
        )
    path = directory / relative
    real = os.path.realpath(path)
    if not any(os.path.commonpath([real, root]) == root for root in roots):
        raise CheckpointError(
            f"Cannot read the checkpoint directory {show(label)}: {show(relative)} is a symlink "
            f"to {show(real)}, outside the directory"
        )
    return path


def _read_index(path: Path, label: str) -> dict[str, str]:
    f, size = open_checkpoint_file(path)
    with f:
        if size > MAX_INDEX_SIZE:
            raise CheckpointError(
                f"Cannot read the index {show(path)}: {size} bytes, over the {MAX_INDEX_SIZE}-byte limit"
            )
        raw = _read_exactly(f, size, str(path))
    try:
        parsed = _strict_json(raw.decode("utf-8"))
    except _DuplicateKey as err:
        raise CheckpointError(f"Cannot read the index {show(path)}: it names key {show(err.args[0])} twice") from None
    except RecursionError:
        raise CheckpointError(f"Cannot read the index {show(path)}: its JSON nests too deeply") from None
    except ValueError as err:  # UnicodeDecodeError included
        raise CheckpointError(
            f"Cannot read the index {show(path)}: not valid UTF-8 JSON ({one_line(err, 160)})"
        ) from None
    weight_map = parsed.get("weight_map") if isinstance(parsed, dict) else None
    if not isinstance(weight_map, dict):
        raise CheckpointError(
            f"Cannot read the index {show(path)}: it has no 'weight_map' object (tensor name -> shard file)"
        )
    bad = next(((k, v) for k, v in weight_map.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise CheckpointError(
            f"Cannot read the index {show(path)}: tensor {show(bad[0])} maps to {show(bad[1], 40)}, not a file name"
        )
    if not weight_map:
        raise CheckpointError(f"Cannot read the index {show(path)}: its 'weight_map' lists no tensors")
    return weight_map


def hf_checkpoint(directory: str | os.PathLike[str]) -> HFCheckpoint:
    """Find and validate the weights of a Hugging Face model directory (see :data:`HF_NAMES`).

    A sharded index must name only files inside the directory (no absolute path, no ``..``, no
    symlink out of it; the hub cache's ``snapshots/<rev>`` -> ``blobs`` links are inside), and
    every shard must exist. That every listed tensor is in its shard and no tensor is in two is
    checked when the shards' headers are read (:func:`fanin.auditing.sources.open_source`).
    """
    d = Path(directory)
    label = str(d)
    roots = _allowed_roots(d)
    present = {name for name in HF_NAMES if os.path.lexists(d / name)}
    for name in HF_NAMES:
        if name not in present:
            continue
        path = _inside(d, name, roots, "the directory")
        fmt = "safetensors" if name.startswith("model.safetensors") else "pickle"
        if not name.endswith(".index.json"):
            return HFCheckpoint(d, fmt, (path,), None, None)
        weight_map = _read_index(path, label)
        files: dict[str, Path] = {}
        resolved: dict[str, Path] = {}
        for tensor, shard in weight_map.items():
            if shard not in files:
                files[shard] = _inside(d, shard, roots, f"the index {name}")
            resolved[tensor] = files[shard]
        missing = [s for s, p in files.items() if not os.path.lexists(p)]
        if missing:
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            listed = ", ".join(show(s, 60) for s in missing[:5]) + more
            raise CheckpointError(
                f"Cannot read the checkpoint directory {show(label)}: shards its index {name} "
                f"lists are missing ({len(missing)} of {len(files)}): {listed}"
            )
        return HFCheckpoint(d, fmt, tuple(files.values()), resolved, path)
    found = sorted(e.name for e in _scan_dir(d) if e.name.endswith((SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES)))
    hint = ""
    if found:
        shown = ", ".join(show(n, 60) for n in found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")
        hint = f"; it holds {shown}: pass one file as the path"
    raise CheckpointError(
        f"Cannot read the checkpoint directory {show(label)}: it has none of "
        f"{', '.join(HF_NAMES)} (the Hugging Face layout){hint}"
    )


def _scan_dir(d: Path, limit: int = 10_000) -> list[os.DirEntry]:
    try:
        with os.scandir(d) as it:
            out = []
            for entry in it:
                out.append(entry)
                if len(out) >= limit:
                    break
            return out
    except OSError as err:
        raise CheckpointError(f"Cannot read the checkpoint directory {show(d)}: {one_line(err)}") from None
