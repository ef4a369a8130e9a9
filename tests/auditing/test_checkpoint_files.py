"""Hostile and careless checkpoint files: each gives one CheckpointError line naming the file and
what is wrong, in bounded time and memory.

The corpus is opened in a child process (one for the whole corpus) whose address space is capped
at what it uses after importing plus 1 GiB, and which must finish within a generous timeout: a
case that blocks (a FIFO opened for reading), loops or allocates without bound fails the run
rather than hanging or swapping the test machine. The child also reads every tensor it is
allowed to, so a file that opens but lies about its contents is caught when read.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

import fanin
from fanin.auditing.checkpoint import CheckpointError, UnsafeCheckpointError, open_checkpoint_file
from fanin.auditing.sources import open_source

SRC = str(Path(fanin.__file__).resolve().parents[1])

CHILD = r"""
import json, resource, sys, time
from fanin.auditing.checkpoint import CheckpointError
from fanin.auditing.sources import open_source

# Cap the address space at what the interpreter, torch and safetensors use now plus the budget.
used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
budget = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (used + budget, used + budget))
out = {}
for path in sys.argv[2:]:
    start = time.perf_counter()
    try:
        src = open_source(path)
        for name in src.names:
            if name not in src.skipped:
                src.get(name).double().sum()
        out[path] = ["ok", repr(src), sorted(src.skipped.items())]
    except CheckpointError as err:
        out[path] = [type(err).__name__, str(err)]
    except BaseException as err:  # what the test must never see
        out[path] = ["crash " + type(err).__name__, str(err)[:400]]
    out[path].append(time.perf_counter() - start)
print(json.dumps(out))
"""
BUDGET = 1 << 30


def run_child(paths, *, budget=BUDGET, timeout=300, prefix=()):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [*prefix, sys.executable, "-c", CHILD, str(budget), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _st(path: Path, header: bytes, data: bytes = b"", length: int | None = None) -> Path:
    path.write_bytes(struct.pack("<Q", len(header) if length is None else length) + header + data)
    return path


def _entry(dtype="F32", shape=(1,), offsets=(0, 4)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def _j(obj) -> bytes:
    return json.dumps(obj).encode()


def _pickle_zip(path: Path, pickled: bytes) -> Path:
    """A zip archive laid out as torch.save writes it, holding a hand-written pickle."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickled)
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return path


def _long(n: int) -> bytes:
    return b"J" + n.to_bytes(4, "little")  # BININT


# name -> (builder(tmp) -> path, expected error class, regex the message must match)
CASES = {
    # --- safetensors whose header lies
    "st_empty": (
        lambda d: _st_raw(d / "empty.safetensors", b""),
        CheckpointError,
        r"as safetensors: the file is empty \(0 bytes\)",
    ),
    "st_3_bytes": (
        lambda d: _st_raw(d / "short.safetensors", b"abc"),
        CheckpointError,
        r"the file has 3 bytes, fewer than the 8-byte header length",
    ),
    "st_length_past_end": (
        lambda d: _st(d / "a.safetensors", b"{}", length=10**6),
        CheckpointError,
        r"the header length says 1000000 bytes but only 2 bytes follow it",
    ),
    "st_length_over_limit": (
        lambda d: _st(d / "b.safetensors", b"{}", length=2**63),
        CheckpointError,
        r"the header length says 9223372036854775808 bytes, over the 100000000-byte limit",
    ),
    "st_not_utf8": (
        lambda d: _st(d / "c.safetensors", b'{"\xff\xfe": 1}'),
        CheckpointError,
        r"the header is not UTF-8 \('utf-8' codec can't decode byte 0xff",
    ),
    "st_not_object": (
        lambda d: _st(d / "d.safetensors", b"[1, 2]"),
        CheckpointError,
        r"the header must be a JSON object starting with '\{', got '\[1, 2\]'",
    ),
    "st_bad_json": (
        lambda d: _st(d / "e.safetensors", b'{"a": '),
        CheckpointError,
        r"the header is not valid JSON \(Expecting value",
    ),
    "st_nan": (
        lambda d: _st(d / "nan.safetensors", b'{"a": NaN}'),
        CheckpointError,
        r"the header is not valid JSON \(NaN is not JSON\)",
    ),
    # Python's json reads an unpaired surrogate escape; the safetensors library (serde_json) refuses it.
    "st_lone_surrogate": (
        lambda d: _st(d / "sur.safetensors", b'{"w\\udc00": ' + _j(_entry()) + b"}", bytes(4)),
        CheckpointError,
        r"not valid JSON \(a string holds an unpaired UTF-16 surrogate escape",
    ),
    "st_deep_json": (
        lambda d: _st(d / "f.safetensors", b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        CheckpointError,
        r"the header's JSON nests too deeply",
    ),
    "st_huge_number": (
        lambda d: _st(d / "g.safetensors", b'{"a": ' + b"9" * 100_000 + b"}"),
        CheckpointError,
        r"not valid JSON \(a number has more than \d+ digits\)",
    ),
    # 99 MB of header: a JSON object padded with spaces (as safetensors pads to 8 bytes), no tensors.
    "st_huge_header": (
        lambda d: _st(d / "h.safetensors", b"{}" + b" " * 99_000_000),
        CheckpointError,
        r"path='.*h.safetensors': it holds no tensors",
    ),
    "st_duplicate_name": (
        lambda d: _st(
            d / "dup.safetensors", b'{"w": ' + _j(_entry()) + b', "w": ' + _j(_entry(offsets=(4, 8))) + b"}", bytes(8)
        ),
        CheckpointError,
        r"the header names key 'w' twice",
    ),
    "st_duplicate_field": (
        lambda d: _st(
            d / "dupf.safetensors",
            b'{"w": {"dtype": "F32", "dtype": "F16", "shape": [1], "data_offsets": [0, 4]}}',
            bytes(4),
        ),
        CheckpointError,
        r"the header names key 'dtype' twice",
    ),
    "st_unknown_dtype": (
        lambda d: _st(d / "i.safetensors", _j({"w": _entry(dtype="F99")}), bytes(4)),
        CheckpointError,
        r"tensor 'w': unknown dtype='F99'\. Accepted: 'BF16', 'BOOL', 'C64'",
    ),
    "st_out_of_range": (
        lambda d: _st(d / "j.safetensors", _j({"w": _entry(offsets=(0, 4000))}), bytes(4)),
        CheckpointError,
        (
            r"tensor 'w': data_offsets=\[0, 4000\] out of range "
            r"\(the data section has 4 bytes\)"
        ),
    ),
    "st_end_before_start": (
        lambda d: _st(d / "k.safetensors", _j({"w": _entry(offsets=(4, 0))}), bytes(4)),
        CheckpointError,
        r"data_offsets=\[4, 0\] end before start",
    ),
    "st_size_mismatch": (
        lambda d: _st(d / "l.safetensors", _j({"w": _entry(shape=(2,))}), bytes(4)),
        CheckpointError,
        r"dtype=F32 x shape=\(2,\) needs 8 bytes but data_offsets=\[0, 4\] hold 4",
    ),
    "st_sub_byte": (
        lambda d: _st(d / "m.safetensors", _j({"w": _entry(dtype="F4", shape=(3,), offsets=(0, 1))}), bytes(1)),
        CheckpointError,
        r"dtype=F4 x shape=\(3,\) needs 1.5 bytes",
    ),
    "st_overlap": (
        lambda d: _st(
            d / "n.safetensors", _j({"a": _entry(shape=(2,), offsets=(0, 8)), "b": _entry(offsets=(4, 8))}), bytes(8)
        ),
        CheckpointError,
        r"tensors 'a' \(bytes 0-8\) and 'b' \(bytes 4-8\) overlap",
    ),
    "st_gap": (
        lambda d: _st(d / "o.safetensors", _j({"w": _entry(offsets=(4, 8))}), bytes(8)),
        CheckpointError,
        r"4 bytes at the start of the data belong to no tensor \(tensor 'w' starts at byte 4\)",
    ),
    "st_trailing": (
        lambda d: _st(d / "p.safetensors", _j({"w": _entry()}), bytes(12)),
        CheckpointError,
        r"8 bytes after the last tensor belong to no tensor",
    ),
    "st_negative_dim": (
        lambda d: _st(d / "q.safetensors", _j({"w": _entry(shape=(-1,))}), bytes(4)),
        CheckpointError,
        r"shape='\[-1\]' is not a list of sizes",
    ),
    "st_bool_dim": (
        lambda d: _st(d / "r.safetensors", _j({"w": _entry(shape=(True,))}), bytes(4)),
        CheckpointError,
        r"shape='\[True\]' is not a list of sizes",
    ),
    "st_float_dim": (
        lambda d: _st(
            d / "s.safetensors", b'{"w": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}}', bytes(4)
        ),
        CheckpointError,
        r"shape='\[1.0\]' is not a list of sizes",
    ),
    "st_rank": (
        lambda d: _st(d / "t.safetensors", _j({"w": _entry(shape=(1,) * 65)}), bytes(4)),
        CheckpointError,
        r"tensor 'w': 65 dimensions, more than 64",
    ),
    "st_offsets_form": (
        lambda d: _st(d / "u.safetensors", b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": "04"}}', bytes(4)),
        CheckpointError,
        r"data_offsets='04' is not \[start, end\]",
    ),
    "st_missing_field": (
        lambda d: _st(d / "v.safetensors", b'{"w": {"dtype": "F32", "shape": [1]}}', bytes(4)),
        CheckpointError,
        r"tensor 'w': its entry lacks 'data_offsets'",
    ),
    "st_entry_not_object": (
        lambda d: _st(d / "w.safetensors", b'{"w": "x" }'),
        CheckpointError,
        r"tensor 'w': its entry is a JSON str, not an object",
    ),
    "st_metadata": (
        lambda d: _st(d / "x.safetensors", b'{"__metadata__": {"a": 1}, "w": ' + _j(_entry()) + b"}", bytes(4)),
        CheckpointError,
        r"'__metadata__' must be an object of strings",
    ),
    # A name with a newline and an escape sequence is shown as a Python literal: one line, visible.
    "st_hostile_name": (
        lambda d: _st(d / "y.safetensors", _j({"w\n\x1b[31m": _entry(shape=(2,))}), bytes(4)),
        CheckpointError,
        r"tensor 'w\\n\\x1b\[31m': dtype=F32",
    ),
    "st_is_zip_pickle": (
        lambda d: _save(d / "z.safetensors"),
        CheckpointError,
        (
            r"as safetensors: it holds a PyTorch zip checkpoint, not safetensors \(nothing was "
            r"unpickled\); name it .pt"
        ),
    ),
    "st_is_legacy_pickle": (
        lambda d: _save(d / "z2.safetensors", legacy=True),
        CheckpointError,
        r"as safetensors: it holds a pickle, not safetensors",
    ),
    # --- pickle checkpoints
    "pt_empty": (
        lambda d: _st_raw(d / "empty.pt", b""),
        CheckpointError,
        r"path='.*empty.pt' as a PyTorch checkpoint: the file is empty \(0 bytes\)",
    ),
    "pt_truncated_zip": (
        lambda d: _truncate(_save(d / "tz.pt"), 0.5),
        CheckpointError,
        r"as a PyTorch checkpoint: not a valid zip archive",
    ),
    "pt_truncated_legacy": (
        lambda d: _truncate(_save(d / "tl.pt", legacy=True), 0.9),
        CheckpointError,
        r"tl.pt' as a PyTorch checkpoint: .*(EOF|not a complete pickle)",
    ),
    "pt_truncated_legacy_pickle": (
        lambda d: _truncate(_save(d / "tl2.pt", legacy=True), 60),
        CheckpointError,
        r"pickle 3 of the file is not a complete pickle",
    ),
    "pt_junk": (
        lambda d: _st_raw(d / "junk.pt", b"\x80\x02garbage"),
        CheckpointError,
        r"junk.pt' as a PyTorch checkpoint: the file is not a complete pickle",
    ),
    "pt_text": (
        lambda d: _st_raw(d / "text.pt", b"hello world"),
        CheckpointError,
        r"the file is not a complete pickle \(at position \d+, opcode b' ' unknown\)",
    ),
    "pt_is_safetensors": (
        lambda d: _safetensors(d / "st.pt"),
        CheckpointError,
        r"st.pt' as a PyTorch checkpoint: it holds a safetensors file .* rename it to .safetensors",
    ),
    "pt_compressed_record": (
        lambda d: _deflate(_save(d / "deflated.pt")),
        CheckpointError,
        r"record 'deflated/data.pkl' is compressed \(torch.save stores records uncompressed",
    ),
    "pt_zip_without_pickle": (
        lambda d: _zip_only(d / "nopkl.pt"),
        CheckpointError,
        r"a zip archive without exactly one data.pkl record \(found 0\)",
    ),
    "pt_protocol_4": (
        lambda d: _st_raw(d / "p4.pkl", pickle.dumps({"w": 1}, protocol=4)),
        CheckpointError,
        (
            r"the weights-only loader cannot read this pickle \(Unsupported operand 149 "
            r"\(the FRAME opcode\)\)"
        ),
    ),
    # bytearray(2**30) in 30 bytes: refused before it allocates and zero-fills a gigabyte.
    "pt_bytearray": (
        lambda d: _pickle_zip(
            d / "ba.pt", b"\x80\x02}X\x01\x00\x00\x00wc__builtin__\nbytearray\n" + _long(2**30) + b"\x85Rs."
        ),
        UnsafeCheckpointError,
        r"Refusing to load path='.*ba.pt': its pickle calls bytearray",
    ),
    # torch.FloatTensor(10**8) is allowlisted: 400 MB of storage the file never held.
    "pt_constructed_storage": (
        lambda d: _pickle_zip(
            d / "made.pt", b"\x80\x02}X\x01\x00\x00\x00wctorch\nFloatTensor\n" + _long(10**8) + b"\x85Rs."
        ),
        CheckpointError,
        r"its tensors' storages hold 400000000 bytes, more than the file's",
    ),
    "pt_cycle": (
        lambda d: _save_obj(d / "cycle.pt", _cycle()),
        CheckpointError,
        r"cycle.pt': it contains a cycle \('l.1' holds the container at 'l' that holds it\)",
    ),
    "pt_deep": (
        lambda d: _save_obj(d / "deep.pt", _deep(500)),
        CheckpointError,
        r"deep.pt': containers nest more than 100 levels deep \(at 'a.a.a",
    ),
    # --- not files
    "fifo": (
        lambda d: _fifo(d / "pipe.pt"),
        CheckpointError,
        r"pipe.pt': it is a FIFO \(named pipe\), not a checkpoint",
    ),
    "fifo_safetensors": (lambda d: _fifo(d / "pipe.safetensors"), CheckpointError, r"it is a FIFO"),
    "dev_zero": (
        lambda d: Path("/dev/zero"),
        CheckpointError,
        r"path='/dev/zero': it is a character device, not a checkpoint file",
    ),
    "link_to_dev_zero": (lambda d: _link(d / "zero.pt", "/dev/zero"), CheckpointError, r"it is a character device"),
    "missing": (lambda d: d / "nope.safetensors", CheckpointError, r"No checkpoint file at path='.*nope.safetensors'"),
    "dangling_link": (lambda d: _link(d / "gone.pt", str(d / "nowhere")), CheckpointError, r"No checkpoint file"),
    "directory_named_pt": (
        lambda d: _mkdir(d / "model.pt"),
        CheckpointError,
        (
            r"checkpoint directory '.*model.pt': it has none of model.safetensors, "
            r"model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json"
        ),
    ),
    "unknown_suffix_with_hint": (
        lambda d: _safetensors(d / "weights.dat"),
        CheckpointError,
        (
            r"Unknown checkpoint type for path='.*weights.dat' \(suffix='.dat'\)\. Accepted: "
            r"'.bin', '.ckpt', '.pkl', '.pt', '.pth', '.safetensors', or a Hugging Face model "
            r"directory \(its content is a safetensors file: name it .safetensors\)"
        ),
    ),
}


def _st_raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(path: Path, legacy: bool = False) -> Path:
    torch.save({"w": torch.zeros(1000)}, path, _use_new_zipfile_serialization=not legacy)
    return path


def _save_obj(path: Path, obj) -> Path:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # pickling 500 nested dicts recurses once per level
    try:
        torch.save(obj, path)
    finally:
        sys.setrecursionlimit(limit)
    return path


def _cycle():
    loop: list = [torch.zeros(1)]
    loop.append(loop)
    return {"l": loop}


def _deep(levels):
    top: dict = {}
    node = top
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    node["w"] = torch.zeros(1)
    return top


def _safetensors(path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(path))
    return path


def _truncate(path: Path, keep) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    return path


def _deflate(path: Path) -> Path:
    with zipfile.ZipFile(path) as src:
        records = [(i.filename, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in records:
            dst.writestr(name, data)
    return path


def _zip_only(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/version", "3\n")
    return path


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _link(path: Path, target: str) -> Path:
    path.symlink_to(target)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    paths = {name: build(d) for name, (build, _, _) in CASES.items()}
    results = run_child(list(paths.values()))
    return {name: results[str(p)] for name, p in paths.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_one_clear_line(corpus, case):
    kind, message, seconds = corpus[case]
    _, expected, pattern = CASES[case]
    assert kind == expected.__name__, (kind, message)
    assert "\n" not in message and len(message) < 600, message
    assert re.search(pattern, message), message
    # Bounded time, generously (the whole corpus shares one child under a timeout as well): the
    # slowest cases parse a 99 MB header or walk a 200,000-deep JSON nest.
    assert seconds < 60, (case, seconds)


def test_the_same_errors_in_process(tmp_path):
    # The child above proves bounds; this checks the exception types and messages in-process
    # for a few cases (pytest shows a traceback here if one escapes).
    for case in ("st_overlap", "pt_empty", "pt_bytearray", "fifo", "missing"):
        build, expected, pattern = CASES[case]
        with pytest.raises(expected, match=pattern):
            open_source(build(tmp_path))
    with pytest.raises(CheckpointError, match="empty"):
        fanin.audit(tmp_path / "empty.pt")


def test_nested_repeated_references_are_linear(tmp_path):
    # x = [t, t] nested 40 times: 2**41 paths, 41 distinct objects; a 2 KB file.
    x: torch.Tensor | list = torch.zeros(3)
    for _ in range(40):
        x = [x, x]
    path = tmp_path / "nest.pt"
    torch.save(x, path)
    assert path.stat().st_size < 4096
    result = run_child([path], timeout=120)[str(path)]
    assert result[0] == "ok", result
    src = open_source(path)
    first, second = "0." * 39 + "0", "0." * 39 + "1"
    assert src.names == [first, second]
    assert src.aliases == {second: first}  # the innermost [t, t]: one tensor, audited once
    assert len(src.shared) == 39  # every other second reference is a container met before
    assert src.notes[0].startswith("39 containers are the same object as one met before")


def test_expanded_view_is_skipped_not_materialized(tmp_path):
    # 4 bytes of storage seen as 10**9 values: reading them as float64 would take 8 GB.
    path = tmp_path / "expanded.pt"
    torch.save({"e": torch.zeros(1).expand(10**9), "w": torch.zeros(4)}, path)
    kind, _, skipped, _ = run_child([path], timeout=120)[str(path)]
    assert kind == "ok"
    assert skipped == [["e", "an expanded view (stride 0: its 1000000000 values repeat 4 bytes of storage)"]]


def _privilege_drop():
    """A command prefix under which permissions apply (root reads any file otherwise)."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be made to apply")
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}")


def test_unreadable_file_and_directory(tmp_path):
    secret = _save(tmp_path / "secret.pt")
    secret.chmod(0)
    closed = tmp_path / "closed"
    closed.mkdir()
    inner = _save(closed / "inner.pt")
    closed.chmod(0)
    try:
        results = run_child([secret, inner], prefix=_privilege_drop(), timeout=120)
    finally:
        closed.chmod(0o700)
    assert results[str(secret)][:2] == ["CheckpointError", f"Cannot read path={str(secret)!r}: permission denied"]
    assert results[str(inner)][:2] == ["CheckpointError", f"Cannot read path={str(inner)!r}: permission denied"]


def test_open_checkpoint_file_refuses_a_path_swapped_for_a_fifo(tmp_path, monkeypatch):
    # Between the stat and the open the path may change; the open descriptor is checked again
    # (and opened O_NONBLOCK, so a FIFO cannot block the open itself).
    path, regular = tmp_path / "w.pt", tmp_path / "regular"
    os.mkfifo(path)
    regular.write_bytes(b"x")
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: real_stat(regular if p == str(path) else p, *a, **k))
    with pytest.raises(CheckpointError, match=r"w.pt': it is a FIFO \(named pipe\), not a checkpoint file"):
        open_checkpoint_file(path)


def test_a_file_that_ends_early(tmp_path):
    # The header length was checked against the size from stat; a file cut after that is an error too.
    from io import BytesIO

    from fanin.auditing.checkpoint import read_safetensors_header

    header = _j({"w": _entry()})
    blob = struct.pack("<Q", len(header)) + header + bytes(4)
    with pytest.raises(
        CheckpointError,
        match=r"Cannot read path='w.safetensors': the file ended after 20 of the "
        r"\d+ bytes expected \(it changed while being read\)",
    ):
        read_safetensors_header(BytesIO(blob[:20]), len(blob), "w.safetensors")
