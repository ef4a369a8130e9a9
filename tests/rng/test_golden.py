"""Golden vectors of stream format v1: a change of any bit fails here (then bump STREAM_VERSION)."""

import json
import math
from pathlib import Path

import pytest
import torch

from fanin.rng.philox import derive_key, philox4x32_10
from fanin.rng.stream import STREAM_VERSION, Stream
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

GOLDEN = json.loads((Path(__file__).parent / f"golden_v{STREAM_VERSION}.json").read_text(encoding="utf-8"))
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
_INT = {torch.float64: torch.int64, torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}


def _transform(spec: dict):
    args = {k: v for k, v in spec.items() if k != "kind"}
    return {"uniform": Uniform, "normal": Normal, "truncated_normal": TruncatedNormal}[spec["kind"]](**args)


def _hex(values: torch.Tensor) -> list[str]:
    width = values.element_size() * 2
    return [f"{v & ((1 << (4 * width)) - 1):0{width}x}" for v in values.view(_INT[values.dtype]).tolist()]


def test_golden_file_is_this_version():
    assert GOLDEN["stream_version"] == STREAM_VERSION
    assert len(GOLDEN["values"]) == 4 * 8 * 4


@pytest.mark.parametrize("entry", GOLDEN["philox_kat"])
def test_philox_known_answers(entry):
    assert list(philox4x32_10(entry["counter"], entry["key"])) == entry["out"]


@pytest.mark.parametrize("entry", GOLDEN["keys"], ids=lambda e: f"{e['seed']}-{e['name']}")
def test_keys(entry):
    assert list(derive_key(entry["seed"], entry["name"])) == entry["digest_words"]


@pytest.mark.parametrize("entry", GOLDEN["values"], ids=lambda e: f"{e['seed']}-{e['transform']['kind']}-{e['dtype']}")
def test_values_by_random_access_and_by_box_fill(entry):
    stream = Stream(entry["seed"], entry["name"])
    transform = _transform(entry["transform"])
    dtype = DTYPES[entry["dtype"]]
    assert _hex(stream.values(transform, entry["indices"], dtype=dtype)) == entry["bits"]
    # The same elements as one-element boxes of a huge 1-D parameter, default backend.
    boxes = [
        stream.fill_(torch.empty(1, dtype=dtype), transform, full_shape=(2**41,), offsets=(i,))
        for i in entry["indices"]
    ]
    assert _hex(torch.cat(boxes)) == entry["bits"]


@pytest.mark.parametrize("entry", GOLDEN["sparse"], ids=lambda e: f"{e['seed']}-{e['rows']}")
def test_sparse_permutations(entry):
    stream = Stream(entry["seed"], entry["name"])
    rows = entry["rows"]
    i = torch.arange(min(rows, 10))
    got = [stream.permutation_index(rows, i, torch.full_like(i, j)).tolist() for j in range(3)]
    assert got == entry["perm_first_rows_cols_0_2"]


def test_golden_uses_finite_json_except_infinite_bounds():
    uppers = {e["transform"].get("upper") for e in GOLDEN["values"]}
    assert math.inf in uppers
