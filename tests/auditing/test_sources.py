"""Sources: tied weights as aliases, what cannot be audited as skipped (with the reason), and the
Source interface the audit consumes."""

from __future__ import annotations

import json
import struct
import warnings

import pytest
import torch

import fanin
from fanin.auditing.checkpoint import CheckpointError, flatten_state
from fanin.auditing.sources import Source, dtype_skip_reason, open_source, skip_reason


class _Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(50, 8)
        self.block = torch.nn.Linear(8, 8)
        self.lm_head = torch.nn.Linear(8, 50, bias=False)
        self.lm_head.weight = self.wte.weight


def test_tied_weights_are_aliases_in_a_module_and_in_its_saved_state_dict(tmp_path):
    model = _Tied()
    expected = {"lm_head.weight": "wte.weight"}
    assert open_source(model).aliases == expected
    torch.save(model.state_dict(), tmp_path / "tied.pt")  # torch.save keeps the shared storage
    src = open_source(tmp_path / "tied.pt")
    assert src.aliases == expected
    assert src.names == list(model.state_dict())
    assert torch.equal(src.get("lm_head.weight"), model.wte.weight.detach())


def test_views_of_one_storage_that_differ_are_not_aliases():
    fused = torch.randn(6, 4)
    src = open_source({"q": fused[:3], "k": fused[3:], "q_again": fused[:3], "t": fused.t()})
    assert src.aliases == {"q_again": "q"}


def test_a_module_on_the_meta_device_is_all_skipped_with_its_ties():
    with torch.device("meta"):
        model = _Tied()
    src = open_source(model)
    assert src.skipped == {n: "on the meta device (no values)" for n in src.names}
    assert src.aliases == {"lm_head.weight": "wte.weight"}  # from the module's own listing
    assert src.shapes["lm_head.weight"] == (50, 8)


@pytest.mark.parametrize(
    "dtype",
    [
        "float8_e4m3fn",
        "float8_e5m2",
        "float8_e4m3fnuz",
        "float8_e5m2fnuz",
        "float8_e8m0fnu",
        "bfloat16",
        "float16",
        "float32",
        "float64",
    ],
)
def test_float_dtypes_torch_converts_are_audited(dtype):
    dt = getattr(torch, dtype)
    assert dtype_skip_reason(dt) is None
    t = torch.zeros(8, dtype=torch.uint8).view(dt)
    assert t.to(torch.float64).shape == (8 // dt.itemsize,)  # what the audit will do


@pytest.mark.parametrize(
    ("dtype", "reason"),
    [
        ("float4_e2m1fn_x2", "dtype=float4_e2m1fn_x2, which torch cannot convert to float64"),
        ("int64", "not floating point (dtype=int64)"),
        ("uint8", "not floating point (dtype=uint8)"),
        ("bool", "not floating point (dtype=bool)"),
        ("complex64", "complex (dtype=complex64)"),
        ("complex128", "complex (dtype=complex128)"),
    ],
)
def test_dtypes_fanin_cannot_analyse_are_skipped_with_the_reason(dtype, reason):
    dt = getattr(torch, dtype)
    assert dtype_skip_reason(dt) == reason
    t = torch.zeros(2 * dt.itemsize, dtype=torch.uint8).view(dt)
    assert open_source({"x": t, "w": torch.zeros(2)}).skipped == {"x": reason}


def test_layouts_and_views_that_are_skipped():
    sparse = torch.eye(3).to_sparse()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "torch.quantize_per_tensor", UserWarning)  # deprecated in torch 2.13
        quantized = torch.quantize_per_tensor(torch.zeros(4), 0.1, 0, torch.qint8)
    nested = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)], layout=torch.jagged)
    overlapping = torch.zeros(4).as_strided((3, 2), (1, 1))  # 6 values in 16 bytes: some repeat
    assert skip_reason(sparse) == "sparse_coo layout (only dense tensors are audited)"
    assert skip_reason(quantized) == "quantized (dtype=qint8)"
    assert skip_reason(nested) == "a nested tensor"
    assert skip_reason(overlapping) == "overlapping strides (its 6 values repeat 16 bytes of storage)"
    assert skip_reason(torch.zeros(8, 4)[::2, 1:]) is None  # a strided view of distinct values
    assert skip_reason(torch.zeros(4).as_strided((8,), (0,))) == (
        "an expanded view (stride 0: its 8 values repeat 16 bytes of storage)"
    )


def test_float8_values_are_read_and_float4_ones_are_not(tmp_path):
    values = torch.tensor([0.5, -1.0, 2.0, 0.25])
    state = {"f8": values.to(torch.float8_e4m3fn), "f4": torch.zeros(2, dtype=torch.uint8).view(torch.float4_e2m1fn_x2)}
    torch.save(state, tmp_path / "low.pt")
    src = open_source(tmp_path / "low.pt")
    assert torch.equal(src.get("f8").to(torch.float32), values)
    assert src.skipped == {"f4": "dtype=float4_e2m1fn_x2, which torch cannot convert to float64"}
    assert src.dtype_names == {"f8": "float8_e4m3fn", "f4": "float4_e2m1fn_x2"}


def _safetensors(path, entries: dict, data: bytes):
    header = json.dumps(entries).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def test_safetensors_dtypes_torch_lacks_are_skipped_and_listed(tmp_path):
    path = _safetensors(
        tmp_path / "mx.safetensors",
        {
            "scale": {"dtype": "F8_E8M0", "shape": [2], "data_offsets": [0, 2]},
            "f6": {"dtype": "F6_E2M3", "shape": [4], "data_offsets": [2, 5]},
            "f4": {"dtype": "F4", "shape": [2], "data_offsets": [5, 6]},
            "ids": {"dtype": "I64", "shape": [1], "data_offsets": [6, 14]},
            "z": {"dtype": "C64", "shape": [1], "data_offsets": [14, 22]},
        },
        bytes([127, 128]) + bytes(20),
    )
    src = open_source(path)
    assert src.names == ["scale", "f6", "f4", "ids", "z"]  # file order
    assert src.skipped == {
        "f6": "dtype=F6_E2M3 (float6 e2m3), which torch cannot convert to float64",
        "f4": "dtype=F4 (float4 e2m1), which torch cannot convert to float64",
        "ids": "not floating point (dtype=int64)",
        "z": "complex (dtype=complex64)",
    }
    assert src.dtype_names == {"scale": "float8_e8m0fnu", "f6": "F6_E2M3", "f4": "F4", "ids": "int64", "z": "complex64"}
    assert "f6" not in src.dtypes and src.dtypes["scale"] == torch.float8_e8m0fnu
    assert src.get("scale").double().tolist() == [1.0, 2.0]  # e8m0: 2**(byte - 127)
    with pytest.raises(CheckpointError, match=r"Cannot read tensor 'f6' of '.*mx.safetensors': dtype=F6_E2M3"):
        src.get("f6")


def test_source_interface():
    src = open_source({"a": {"w": torch.zeros(2, 3)}, "b": torch.zeros(1, dtype=torch.int32)})
    assert isinstance(src, Source) and open_source(src) is src
    assert src.names == ["a.w", "b"] and src.shapes == {"a.w": (2, 3), "b": (1,)}
    assert src.dtypes == {"a.w": torch.float32, "b": torch.int32}
    assert src.dtype_names == {"a.w": "float32", "b": "int32"}
    assert repr(src) == "<Source 'state_dict': 2 tensors, 0 aliases, 1 skipped>"
    assert src.infos["a.w"].layout == "torch" and "layout torch assumed" in src.layout_note
    with pytest.raises(KeyError, match=r"Unknown tensor 'a\.x'\. Did you mean 'a\.w'\?"):
        src.get("a.x")


def test_state_dict_structure_errors():
    loop: dict = {"w": torch.zeros(1)}
    loop["self"] = loop
    with pytest.raises(
        CheckpointError,
        match=r"Cannot read the state_dict: it contains a cycle \('self' holds "
        r"the container at '<top>' that holds it\)",
    ):
        open_source(loop)
    with pytest.raises(CheckpointError, match=r"two tensors are both named 'a.b' \(a dotted key and a nested one"):
        open_source({"a.b": torch.zeros(1), "a": {"b": torch.zeros(1)}})
    deep: dict = {}
    node = deep
    for _ in range(101):
        node["n"] = {}
        node = node["n"]
    with pytest.raises(CheckpointError, match=r"containers nest more than 100 levels deep"):
        open_source(deep)


def test_flatten_state_shared_containers_and_keys():
    sd = {"w": torch.zeros(1)}
    flat = flatten_state({"model": sd, "ema": sd, "opt": [sd, (sd,)], 3: torch.zeros(1), (1, 2): torch.zeros(1)})
    assert list(flat.tensors) == ["model.w", "3", "(1, 2)"]
    assert flat.shared == {"ema": "model", "opt.0": "model", "opt.1.0": "model"}
    assert list(flatten_state(torch.zeros(2)).tensors) == ["tensor"]
    assert flatten_state(7).tensors == {}


def test_shared_containers_are_reported_in_the_notes(tmp_path):
    sd = {"w": torch.zeros(2)}
    torch.save({"model": sd, "ema": sd}, tmp_path / "ckpt.pt")
    src = open_source(tmp_path / "ckpt.pt")
    assert src.names == ["model.w"] and src.shared == {"ema": "model"}
    assert src.notes == (
        (
            "1 container is the same object as one met before ('ema' is 'model'); their tensors "
            "are listed once, under the first path"
        ),
    )


def test_unsupported_sources():
    with pytest.raises(
        TypeError,
        match=r"needs an nn.Module, a state_dict .*, a checkpoint path .* or a Hugging "
        r"Face model directory; got source=42 \(int\)",
    ):
        open_source(42)
    with pytest.raises(ValueError, match=r"Unknown layout 'jax'"):
        open_source({}, layout="jax")


def test_checkpoint_with_no_tensors(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match=r"path='.*meta.pt': it holds no tensors"):
        open_source(tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match="it holds no tensors"):
        fanin.audit(tmp_path / "meta.pt")
