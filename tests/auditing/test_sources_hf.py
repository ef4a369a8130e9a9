"""Hugging Face model directories: save_pretrained output (single and sharded) read as the module
itself, the pytorch_model.bin layouts, the index checks, and streaming in bounded memory.

transformers 5 writes safetensors whatever ``safe_serialization`` says; the ``pytorch_model.bin``
layouts (single and sharded with ``pytorch_model.bin.index.json``, as transformers 4 wrote them)
are built here with ``torch.save`` in the same shape.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import fanin
from fanin.auditing.checkpoint import CheckpointError
from fanin.auditing.sources import open_source

transformers = pytest.importorskip("transformers")  # the "test" extra

# transformers imports torchvision (image utilities); the registry's torchvision is built for CUDA
# torch and its C ops fail to register beside the CPU torch ("operator torchvision::nms does not
# exist"). Test setup only: the two schemas its import registers fakes for are declared first.
_TORCHVISION_LIBRARY = None


def _import_torchvision():
    global _TORCHVISION_LIBRARY
    try:
        importlib.import_module("torchvision")
        return
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    except ImportError:
        return
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    _TORCHVISION_LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    for schema in (
        "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
        "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    ):
        _TORCHVISION_LIBRARY.define(schema)
    importlib.import_module("torchvision")


@pytest.fixture(scope="module")
def models():
    _import_torchvision()
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny vocabularies vs special token ids
        gpt2 = GPT2LMHeadModel(
            GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=64, n_positions=16, bos_token_id=0, eos_token_id=0)
        )
        llama = LlamaForCausalLM(
            LlamaConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
                intermediate_size=64,
                vocab_size=64,
                bos_token_id=0,
                eos_token_id=0,
                tie_word_embeddings=False,
            )
        )
    return {"gpt2": gpt2, "llama": llama}


def _save_pretrained(model, directory: Path, **kwargs) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(directory, **kwargs)
    return directory


def _audited_names(report, source):
    return {r.name for r in report.records} - set(source.aliases)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
@pytest.mark.parametrize("safe", [True, False])
@pytest.mark.parametrize("shard", [None, "20KB"])
def test_save_pretrained_directory_reads_as_the_module(models, tmp_path, name, safe, shard):
    model = models[name]
    kwargs = {"safe_serialization": safe} | ({"max_shard_size": shard} if shard else {})
    d = _save_pretrained(model, tmp_path / "m", **kwargs)
    if shard:
        assert (d / "model.safetensors.index.json").is_file() and len(list(d.glob("model-*.safetensors"))) > 2
    src, module = open_source(d), open_source(model)
    state = model.state_dict()
    # save_pretrained writes tied weights once: the directory holds the module's tensors less its aliases.
    assert sorted(src.names) == sorted(n for n in module.names if n not in module.aliases)
    assert all(src.shapes[n] == module.shapes[n] and src.dtypes[n] == module.dtypes[n] for n in src.names)
    for n in src.names:
        assert torch.equal(src.get(n), state[n]), n
    assert src.notes[0] == (
        "Hugging Face model directory: "
        + (
            f"{len(list(d.glob('model-*.safetensors')))} shards listed in model.safetensors.index.json"
            if shard
            else "model.safetensors"
        )
    )
    tied = name == "gpt2"
    assert module.aliases == ({"lm_head.weight": "transformer.wte.weight"} if tied else {})
    assert any("tie_word_embeddings=true" in note for note in src.notes) == tied
    assert _audited_names(fanin.audit(d), src) == _audited_names(fanin.audit(model), module)


def _bin_shards(model, d: Path, per_shard: int, legacy_shard: int | None = None) -> Path:
    """pytorch_model-0000i-of-0000n.bin and pytorch_model.bin.index.json as transformers 4 wrote
    them; tensors sharing storage are kept in one shard (torch.save keeps the sharing)."""
    d.mkdir()
    state = model.state_dict()
    groups: dict[int, list[str]] = {}
    for n, t in state.items():
        groups.setdefault(t.untyped_storage().data_ptr(), []).append(n)
    shards: list[list[str]] = [[]]
    for names in groups.values():
        if len(shards[-1]) >= per_shard:
            shards.append([])
        shards[-1].extend(names)
    weight_map: dict[str, str] = {}
    for i, names in enumerate(shards):
        file = f"pytorch_model-{i + 1:05d}-of-{len(shards):05d}.bin"
        torch.save({n: state[n] for n in names}, d / file, _use_new_zipfile_serialization=i != legacy_shard)
        weight_map |= {n: file for n in names}
    total = sum(t.numel() * t.element_size() for t in state.values())
    (d / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map})
    )
    return d


@pytest.mark.parametrize("layout", ["single", "sharded", "sharded_legacy"])
def test_pytorch_model_bin_layouts_keep_tied_weights_as_aliases(models, tmp_path, layout):
    model = models["gpt2"]
    if layout == "single":
        d = tmp_path / "m"
        d.mkdir()
        torch.save(model.state_dict(), d / "pytorch_model.bin")
    else:
        d = _bin_shards(model, tmp_path / "m", per_shard=6, legacy_shard=1 if layout == "sharded_legacy" else None)
    src, module = open_source(d), open_source(model)
    assert sorted(src.names) == sorted(module.names)
    assert src.aliases == module.aliases == {"lm_head.weight": "transformer.wte.weight"}
    state = model.state_dict()
    for n in reversed(src.names):  # any order: shards are reloaded as needed
        assert torch.equal(src.get(n), state[n]), n
    assert _audited_names(fanin.audit(d), src) == _audited_names(fanin.audit(model), module)


# ------------------------------------------------------------------------- index validation


def _sharded(d: Path, shards: dict[str, dict[str, torch.Tensor]], weight_map=None) -> Path:
    from safetensors.torch import save_file

    d.mkdir(exist_ok=True)
    for file, tensors in shards.items():
        save_file(tensors, str(d / file))
    if weight_map is None:
        weight_map = {n: f for f, ts in shards.items() for n in ts}
    (d / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return d


A = "model-00001-of-00002.safetensors"
B = "model-00002-of-00002.safetensors"


def _two(d: Path, weight_map=None) -> Path:
    return _sharded(d, {A: {"a": torch.ones(2)}, B: {"b": torch.zeros(3)}}, weight_map)


def test_a_valid_sharded_directory(tmp_path):
    src = open_source(_two(tmp_path / "m"))
    assert src.names == ["a", "b"] and src.shapes == {"a": (2,), "b": (3,)}
    assert src.get("b").tolist() == [0.0, 0.0, 0.0] and src.get("a").tolist() == [1.0, 1.0]
    assert src.label == str(tmp_path / "m")


@pytest.mark.parametrize(
    ("weight_map", "message"),
    [
        (
            {"a": A, "b": "model-00003-of-00003.safetensors"},
            (
                r"shards its index model.safetensors.index.json lists are missing \(1 of 2\): "
                r"'model-00003-of-00003.safetensors'"
            ),
        ),
        (
            {"a": A, "b": B, "c": B},
            (
                r"the index lists 1 tensor that its shards do not hold, e.g. 'c' in "
                r"'model-00002-of-00002.safetensors'"
            ),
        ),
        (
            {"a": A, "b": A},
            (
                r"the index lists 1 tensor that its shards do not hold, e.g. 'b' in "
                r"'model-00001-of-00002.safetensors'"
            ),
        ),  # model-00002 is not named, so not read
        (
            {"a": A, "b": A, "c": B},
            (
                r"shard 'model-00002-of-00002.safetensors' holds tensor 'b', which the index puts "
                r"in 'model-00001-of-00002.safetensors'"
            ),
        ),
        (
            {"a": A, "b": "/etc/passwd"},
            (
                r"the index model.safetensors.index.json names the file '/etc/passwd', outside "
                r"the directory \(absolute or with '..'\)"
            ),
        ),
        ({"a": A, "b": "../m2/x.safetensors"}, r"names the file '../m2/x.safetensors', outside the directory"),
        ({"a": A, "b": "sub/../../x.safetensors"}, r"outside the directory \(absolute or with '..'\)"),
        ({"a": A, "b": ""}, r"names the file '', which is not a file name"),
        ({"a": A, "b": 3}, r"tensor 'b' maps to '3', not a file name"),
        ({}, r"its 'weight_map' lists no tensors"),
    ],
)
def test_index_problems_are_named(tmp_path, weight_map, message):
    d = _two(tmp_path / "m", weight_map)
    with pytest.raises(CheckpointError, match=r"(checkpoint directory|checkpoint|index) '.*m.*'.*" + message):
        open_source(d)


def test_a_shard_holding_a_tensor_the_index_does_not_list(tmp_path):
    d = _sharded(
        tmp_path / "m", {A: {"a": torch.ones(2), "x": torch.ones(1)}, B: {"b": torch.zeros(1)}}, {"a": A, "b": B}
    )
    with pytest.raises(
        CheckpointError,
        match=r"shard 'model-00001-of-00002.safetensors' holds tensor 'x', which "
        r"the index does not list",
    ):
        open_source(d)
    # A file the index does not name is not a shard (a leftover of an earlier save): not read.
    d = _sharded(tmp_path / "m2", {A: {"a": torch.ones(2)}, B: {"b": torch.zeros(1)}}, {"a": A})
    assert open_source(d).names == ["a"]


def test_a_tensor_in_two_shards(tmp_path):
    d = _sharded(
        tmp_path / "m", {A: {"a": torch.ones(2)}, B: {"a": torch.ones(2), "b": torch.zeros(1)}}, {"a": A, "b": B}
    )
    with pytest.raises(
        CheckpointError,
        match=r"tensor 'a' is in two shards, 'model-00001-of-00002.safetensors' and "
        r"'model-00002-of-00002.safetensors'",
    ):
        open_source(d)
    b = _bin_shards(torch.nn.Linear(2, 2), tmp_path / "bin", per_shard=1)
    (b / "pytorch_model-00002-of-00002.bin").unlink()
    torch.save({"weight": torch.zeros(2, 2), "bias": torch.zeros(2)}, b / "pytorch_model-00002-of-00002.bin")
    with pytest.raises(CheckpointError, match=r"tensor 'weight' is in two shards, 'pytorch_model-00001-of-00002.bin'"):
        open_source(b)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", r"Cannot read the index '.*model.safetensors.index.json': not valid UTF-8 JSON"),
        (b"\xff", r"not valid UTF-8 JSON"),
        (b'{"weight_map": {"a": "x"}, "weight_map": {}}', r"it names key 'weight_map' twice"),
        (b'{"weight_map": {"a": "x", "a": "y"}}', r"it names key 'a' twice"),
        (b'{"metadata": {}}', r"it has no 'weight_map' object \(tensor name -> shard file\)"),
        (b"[1]", r"it has no 'weight_map' object"),
        (b"[" * 100_000 + b"]" * 100_000, r"its JSON nests too deeply"),
    ],
)
def test_index_file_problems(tmp_path, content, message):
    d = _two(tmp_path / "m")
    (d / "model.safetensors.index.json").write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        open_source(d)


def test_index_size_limit_and_fifo(tmp_path, monkeypatch):
    from fanin.auditing import checkpoint

    d = _two(tmp_path / "m")
    monkeypatch.setattr(checkpoint, "MAX_INDEX_SIZE", 10)
    with pytest.raises(
        CheckpointError, match=r"Cannot read the index '.*index.json': \d+ bytes, over the 10-byte limit"
    ):
        open_source(d)
    monkeypatch.undo()
    (d / "model.safetensors.index.json").unlink()
    os.mkfifo(d / "model.safetensors.index.json")
    with pytest.raises(CheckpointError, match=r"index.json': it is a FIFO \(named pipe\)"):
        open_source(d)


def test_symlinks_out_of_the_directory_are_refused(tmp_path):
    outside = tmp_path / "outside.safetensors"
    from safetensors.torch import save_file

    save_file({"b": torch.zeros(3)}, str(outside))
    d = _sharded(tmp_path / "m", {A: {"a": torch.ones(2)}}, {"a": A, "b": B})
    (d / B).symlink_to(outside)
    with pytest.raises(
        CheckpointError,
        match=r"'model-00002-of-00002.safetensors' is a symlink to '.*outside."
        r"safetensors', outside the directory",
    ):
        open_source(d)
    single = tmp_path / "single"
    single.mkdir()
    (single / "model.safetensors").symlink_to(outside)
    with pytest.raises(CheckpointError, match=r"'model.safetensors' is a symlink to .* outside the directory"):
        open_source(single)
    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "weights").mkdir()
    save_file({"w": torch.zeros(1)}, str(inside / "weights" / "w.safetensors"))
    (inside / "model.safetensors").symlink_to("weights/w.safetensors")  # a link within the directory is fine
    assert open_source(inside).names == ["w"]


def test_hub_cache_snapshot_links_to_blobs_are_inside(tmp_path):
    # ~/.cache/huggingface/hub/models--org--name/snapshots/<rev>/model.safetensors -> ../../blobs/<hash>
    from safetensors.torch import save_file

    repo = tmp_path / "models--org--name"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    save_file({"w": torch.ones(2)}, str(repo / "blobs" / "9f86d08"))
    (snapshot / "model.safetensors").symlink_to("../../blobs/9f86d08")
    src = open_source(snapshot)
    assert src.names == ["w"] and src.get("w").tolist() == [1.0, 1.0]
    (repo / "elsewhere").mkdir()
    save_file({"w": torch.ones(2)}, str(repo / "elsewhere" / "x"))
    (snapshot / "model.safetensors").unlink()
    (snapshot / "model.safetensors").symlink_to("../../elsewhere/x")
    with pytest.raises(CheckpointError, match="outside the directory"):
        open_source(snapshot)


def test_which_files_a_directory_is_read_from(tmp_path):
    from safetensors.torch import save_file

    both = tmp_path / "both"
    both.mkdir()
    save_file({"from_safetensors": torch.zeros(1)}, str(both / "model.safetensors"))
    torch.save({"from_bin": torch.zeros(1)}, both / "pytorch_model.bin")
    assert open_source(both).names == ["from_safetensors"]  # transformers' preference
    other = tmp_path / "other"
    other.mkdir()
    save_file({"w": torch.zeros(1)}, str(other / "adapter_model.safetensors"))
    (other / "notes.txt").write_text("x")
    with pytest.raises(
        CheckpointError,
        match=r"Cannot read the checkpoint directory '.*other': it has none of "
        r"model.safetensors, model.safetensors.index.json, pytorch_model.bin, "
        r"pytorch_model.bin.index.json \(the Hugging Face layout\); it holds "
        r"'adapter_model.safetensors': pass one file as the path",
    ):
        open_source(other)


def test_a_broken_config_changes_nothing_but_the_note(tmp_path):
    d = _two(tmp_path / "m")
    (d / "config.json").write_bytes(b"{not json")
    src = open_source(d)
    assert src.names == ["a", "b"]
    assert src.notes[1].startswith("config.json not read (")


# ------------------------------------------------------------------------------- streaming

STREAM_CHILD = r"""
import json, sys
from fanin.auditing.sources import open_source

def anon():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon")) * 1024

peaks = {}
for path in sys.argv[1:]:
    src = open_source(path)
    base, peak = anon(), 0
    for name in src.names:
        t = src.get(name)
        float(t.sum())
        peak = max(peak, anon() - base)
        del t
    peaks[path] = peak
    del src
print(json.dumps(peaks))
"""


def test_tensors_stream_one_at_a_time(tmp_path):
    from safetensors.torch import save_file

    mb = 1 << 20
    tensors = {f"t{i}": torch.full((8 * mb,), float(i)) for i in range(4)}  # 4 x 32 MB
    paths = {
        "safetensors": tmp_path / "big.safetensors",
        "pt": tmp_path / "big.pt",
        "sharded": _sharded(tmp_path / "m", {A: dict(list(tensors.items())[:2]), B: dict(list(tensors.items())[2:])}),
    }
    save_file(tensors, str(paths["safetensors"]))
    torch.save(tensors, paths["pt"])
    del tensors
    env = {**os.environ, "PYTHONPATH": str(Path(fanin.__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-c", STREAM_CHILD, *map(str, paths.values())],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peaks = json.loads(proc.stdout.splitlines()[-1])
    # Anonymous memory (file pages mapped from the checkpoint are not counted): at most about one
    # 32 MB tensor beyond the baseline, where reading the 128 MB file at once would take 128 MB.
    for kind, path in paths.items():
        assert peaks[str(path)] < 48 * mb, (kind, peaks[str(path)] / mb)
