"""Regenerate tests/rng/golden_v1.json: ``python tests/rng/make_golden.py``.

Run it only when a new stream format version is introduced on purpose (and bump
fanin.rng.stream.STREAM_VERSION): the golden file is what makes a change of bits loud.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from fanin.rng.philox import derive_key, philox4x32_10
from fanin.rng.stream import STREAM_VERSION, Stream
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform

PATH = Path(__file__).with_name(f"golden_v{STREAM_VERSION}.json")

STREAMS = [(0, "layer.weight"), (1, ""), (2**64 - 1, "ünï.cöde"), (12345, "model.layers.3.attn.q_proj.weight")]
TRANSFORMS = [
    Uniform(-1.0, 1.0),
    Uniform(0.5, 3.25),
    Normal(0.0, 1.0),
    Normal(0.1, 0.02),
    TruncatedNormal(0.0, 1.0, -2.0, 2.0),
    TruncatedNormal(0.0, 0.02, -0.04, 0.04),
    TruncatedNormal(0.0, 1.0, 3.0, math.inf),
    TruncatedNormal(1.0, 2.0, -40.0, -8.0),
]
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}
INDICES = [0, 1, 2, 3, 4, 5, 7, 8, 1000, 12345, 2**32 + 1, 2**40 + 7]
KAT = [
    ((0, 0, 0, 0), (0, 0)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)),
]
_INT = {torch.float64: torch.int64, torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}


def transform_spec(t) -> dict:
    if isinstance(t, Uniform):
        return {"kind": "uniform", "low": t.low, "high": t.high}
    if isinstance(t, Normal):
        return {"kind": "normal", "mean": t.mean, "std": t.std}
    return {"kind": "truncated_normal", "mean": t.mean, "std": t.std, "lower": t.lower, "upper": t.upper}


def bits_hex(values: torch.Tensor) -> list[str]:
    width = values.element_size() * 2
    ints = values.view(_INT[values.dtype]).tolist()
    return [f"{v & ((1 << (4 * width)) - 1):0{width}x}" for v in ints]


def build() -> dict:
    data: dict = {"stream_version": STREAM_VERSION, "philox_kat": [], "keys": [], "values": [], "sparse": []}
    for ctr, key in KAT:
        data["philox_kat"].append({"counter": list(ctr), "key": list(key), "out": list(philox4x32_10(ctr, key))})
    for seed, name in STREAMS:
        data["keys"].append({"seed": seed, "name": name, "digest_words": list(derive_key(seed, name))})
        s = Stream(seed, name)
        for t in TRANSFORMS:
            for dname, dtype in DTYPES.items():
                vals = s.values(t, INDICES, dtype=dtype)
                data["values"].append(
                    {
                        "seed": seed,
                        "name": name,
                        "transform": transform_spec(t),
                        "dtype": dname,
                        "indices": INDICES,
                        "bits": bits_hex(vals),
                    }
                )
        for rows in (1, 2, 5, 37, 1000):
            i = torch.arange(min(rows, 10))
            cols = []
            for j in range(3):
                cols.append(s.permutation_index(rows, i, torch.full_like(i, j)).tolist())
            data["sparse"].append({"seed": seed, "name": name, "rows": rows, "perm_first_rows_cols_0_2": cols})
    return data


def dumps(data: dict) -> str:
    """One JSON entry per line: diffs of the golden file stay readable."""
    lines = ["{", f' "stream_version": {data["stream_version"]},']
    sections = [k for k in data if k != "stream_version"]
    for n, key in enumerate(sections):
        lines.append(f' "{key}": [')
        entries = [json.dumps(e, ensure_ascii=False) for e in data[key]]
        lines += ["  " + e + ("," if i < len(entries) - 1 else "") for i, e in enumerate(entries)]
        lines.append(" ]" + ("," if n < len(sections) - 1 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    PATH.write_text(dumps(build()), encoding="utf-8")
    print(f"wrote {PATH}")
