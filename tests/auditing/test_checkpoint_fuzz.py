"""Property tests (hypothesis): the safetensors header validator against random and mutated files,
checked against the safetensors library itself, and flatten_state over random shared structures.

What holds for every input:
- the validator returns a header or raises CheckpointError with one line naming the file; nothing
  else escapes;
- what it accepts, the safetensors library accepts too, with the same names, dtypes, shapes and
  byte counts (it is at least as strict as the library; it is stricter on duplicate keys, which
  the library resolves silently, and on more than 64 dimensions);
- a well-formed file (written here, in any tensor order, with any header padding) is accepted.
"""

from __future__ import annotations

import io
import json
import math
import struct

import pytest
import torch

from fanin.auditing.checkpoint import SAFETENSORS_BITS, CheckpointError, flatten_state, read_safetensors_header

hypothesis = pytest.importorskip("hypothesis")  # the "test" extra
HealthCheck, given, settings, st = hypothesis.HealthCheck, hypothesis.given, hypothesis.settings, hypothesis.strategies

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LABEL = "fuzz.safetensors"


def validate(blob: bytes):
    try:
        return read_safetensors_header(io.BytesIO(blob), len(blob), LABEL)
    except CheckpointError as err:
        message = str(err)
        assert message.startswith(f"Cannot read path={LABEL!r}") and "\n" not in message, message
        return None


def library(blob: bytes):
    from safetensors import SafetensorError, deserialize

    try:
        return {name: (info["dtype"], tuple(info["shape"]), len(info["data"])) for name, info in deserialize(blob)}
    except (SafetensorError, ValueError, OverflowError):
        return None


def check(blob: bytes):
    mine = validate(blob)
    if mine is not None:
        theirs = library(blob)
        assert theirs is not None, "accepted a file the safetensors library refuses"
        assert {e.name: (e.dtype, e.shape, e.end - e.start) for e in mine.tensors} == theirs
    return mine


@SETTINGS
@given(st.binary(max_size=400))
def test_random_bytes(blob):
    check(blob)


@SETTINGS
@given(st.binary(max_size=200), st.integers(0, 2**64 - 1))
def test_random_header_behind_any_length(body, length):
    check(struct.pack("<Q", length) + body)


# "__metadata__" is the format's reserved key (its value is the metadata, not a tensor): a
# well-formed file cannot have a tensor of that name.
NAMES = st.text(alphabet=st.characters(codec="utf-8"), max_size=12).filter(lambda name: name != "__metadata__")
DTYPES = st.sampled_from(sorted(SAFETENSORS_BITS))
SHAPES = st.lists(st.integers(0, 5), max_size=3)


@st.composite
def files(draw):
    """A well-formed safetensors file: tensors in a drawn order, header padded as drawn; and the
    header as a dict, so that a mutation can be made at the JSON level."""
    names = draw(st.lists(NAMES, unique=True, max_size=6))
    entries, offset = {}, 0
    for name in names:
        dtype = draw(DTYPES)
        shape = draw(SHAPES)
        if math.prod(shape) * SAFETENSORS_BITS[dtype] % 8:
            shape.append(4)  # 4- and 6-bit dtypes fill whole bytes in fours
        bits = math.prod(shape) * SAFETENSORS_BITS[dtype]
        entries[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bits // 8]}
        offset += bits // 8
    order = draw(st.permutations(list(entries)))
    header = {k: entries[k] for k in order}
    if draw(st.booleans()):
        header = {"__metadata__": {"format": "pt"}, **header}
    return header, offset, draw(st.integers(0, 16))


def encode(header: dict, data_size: int, pad: int, raw: str | None = None) -> bytes:
    text = (json.dumps(header) if raw is None else raw) + " " * pad
    body = text.encode("utf-8")
    return struct.pack("<Q", len(body)) + body + bytes(data_size)


@SETTINGS
@given(files())
def test_well_formed_files_are_accepted(file):
    header, size, pad = file
    got = check(encode(header, size, pad))
    assert got is not None
    assert sorted(e.name for e in got.tensors) == sorted(k for k in header if k != "__metadata__")


MUTATIONS = [
    "offset",
    "dtype",
    "dim",
    "extra_key",
    "drop_key",
    "duplicate",
    "metadata",
    "length",
    "truncate",
    "append",
    "flip",
]


@SETTINGS
@given(files(), st.sampled_from(MUTATIONS), st.data())
def test_mutated_files(file, mutation, data):
    header, size, pad = file
    tensors = [k for k in header if k != "__metadata__"]
    raw = None
    if mutation in ("offset", "dtype", "dim", "extra_key", "drop_key") and tensors:
        name = data.draw(st.sampled_from(tensors))
        entry = dict(header[name])
        if mutation == "offset":
            which, delta = data.draw(st.integers(0, 1)), data.draw(st.integers(-9, 9))
            entry["data_offsets"] = list(entry["data_offsets"])
            entry["data_offsets"][which] = max(0, entry["data_offsets"][which] + delta)
        elif mutation == "dtype":
            entry["dtype"] = data.draw(st.one_of(DTYPES, st.text(max_size=6)))
        elif mutation == "dim":
            entry["shape"] = [*entry["shape"], data.draw(st.integers(0, 3))]
        elif mutation == "extra_key":
            entry["note"] = "x"
        else:
            del entry[data.draw(st.sampled_from(sorted(entry)))]
        header = {**header, name: entry}
    elif mutation == "duplicate" and tensors:
        # Write a key twice: json.dumps cannot, so splice it into the text.
        text = json.dumps(header)
        first = tensors[0]
        raw = text[:-1] + ", " + json.dumps(first) + ": " + json.dumps(header[first]) + "}"
    elif mutation == "metadata":
        header = {
            "__metadata__": data.draw(
                st.one_of(st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
            ),
            **header,
        }
    blob = encode(header, size, pad, raw)
    if mutation == "length":
        (n,) = struct.unpack("<Q", blob[:8])
        blob = struct.pack("<Q", max(0, n + data.draw(st.integers(-8, 8)))) + blob[8:]
    elif mutation == "truncate":
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    elif mutation == "append":
        blob += data.draw(st.binary(min_size=1, max_size=8))
    elif mutation == "flip":
        i = data.draw(st.integers(0, len(blob) - 1))
        blob = blob[:i] + bytes([blob[i] ^ data.draw(st.integers(1, 255))]) + blob[i + 1 :]
    got = check(blob)
    if mutation == "duplicate" and tensors:
        assert got is None  # the library keeps the last copy; fanin refuses the ambiguity


@st.composite
def shared_structures(draw):
    """Containers built bottom-up, each holding tensors and earlier containers (so sharing, and
    exponentially many paths, but no cycle)."""
    tensors = [torch.zeros(1) for _ in range(draw(st.integers(1, 4)))]
    nodes: list = []
    for _ in range(draw(st.integers(1, 30))):
        pool = tensors + nodes
        children = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4))
        kind = draw(st.sampled_from(["dict", "list", "tuple"]))
        node = (
            {f"k{i}": c for i, c in enumerate(children)}
            if kind == "dict"
            else children
            if kind == "list"
            else tuple(children)
        )
        nodes.append(node)
    return nodes[-1], tensors


def _reachable(root):
    seen, found, todo = set(), set(), [root]
    while todo:
        obj = todo.pop()
        if isinstance(obj, torch.Tensor):
            found.add(id(obj))
        elif id(obj) not in seen:
            seen.add(id(obj))
            todo.extend(obj.values() if isinstance(obj, dict) else obj)
    return found


@SETTINGS
@given(shared_structures())
def test_flatten_state_lists_every_reachable_tensor_once_per_reference_walked(structure):
    root, _ = structure
    flat = flatten_state(root)
    # Every tensor reachable is listed (under the first path that reaches it at least once) ...
    assert {id(t) for t in flat.tensors.values()} == _reachable(root)
    # ... and each container is walked once, so the names stay within the number of references
    # held by distinct containers, however many paths lead to them.
    distinct, todo, seen = 0, [root], set()
    while todo:
        obj = todo.pop()
        if isinstance(obj, (dict, list, tuple)) and id(obj) not in seen:
            seen.add(id(obj))
            values = list(obj.values() if isinstance(obj, dict) else obj)
            distinct += len(values)
            todo.extend(values)
    assert len(flat.tensors) + len(flat.shared) <= distinct
