"""Checkpoints (weights-only, safetensors streamed), a malicious pickle refused, and diff."""

import os
import pickle

import pytest
import torch

import fanin
from fanin.auditing import CheckpointError, UnsafeCheckpointError, diff


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(2), "payload": _Evil(marker)}, path)
    with pytest.raises(UnsafeCheckpointError, match=r"Refusing to load path='.*evil.pt'.*Nothing was executed.*"
                                                      r"GLOBAL posix.system"):
        fanin.audit(path)
    raw = tmp_path / "evil.bin"
    raw.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(UnsafeCheckpointError, match="Nothing was executed"):
        fanin.audit(raw)
    assert not marker.exists()


def test_checkpoint_errors_name_the_path(tmp_path):
    with pytest.raises(CheckpointError, match=r"No checkpoint file at path='.*nope.pt'"):
        fanin.audit(tmp_path / "nope.pt")
    other = tmp_path / "w.npz"
    other.write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"Unknown checkpoint type for path='.*w.npz' \(suffix='.npz'\)\. "
                                              r"Accepted: '.bin', '.ckpt', '.pkl', '.pt', '.pth', '.safetensors'"):
        fanin.audit(other)
    with pytest.raises(TypeError, match=r"fanin.audit needs an nn.Module, a state_dict .* got source=42 \(int\)"):
        fanin.audit(42)
    with pytest.raises(ValueError, match=r"Unknown layout 'jax'.*Accepted: 'keras', 'torch'"):
        fanin.audit({"w": torch.zeros(2)}, layout="jax")


def test_pt_and_safetensors_give_the_same_audit_as_the_module(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.LayerNorm(64))
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "m.pt")
    save_file(model.state_dict(), str(tmp_path / "m.safetensors"))
    from_module = fanin.audit(model)
    for path, prefix in ((tmp_path / "m.pt", "state_dict."), (tmp_path / "m.safetensors", "")):
        report = fanin.audit(path)
        # safetensors stores tensors sorted by name: compare name -> answer.
        got = {r.name: r.inference.label for r in report.records}
        assert got == {prefix + r.name: r.inference.label for r in from_module.records}
        assert got[prefix + "0.bias"] == "kaiming_uniform(a=sqrt(5)) at the layer weight's fans"
        assert "layout torch assumed" in report.layout_note


def _linear(seed, init=None):
    torch.manual_seed(seed)
    m = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 32))
    if init is not None:
        for layer in (m[0], m[2]):
            init(layer.weight)
    return m


def test_diff_same_seed_is_identical():
    report = diff(_linear(1), _linear(1))
    assert report.headline == "same architecture (4 tensors); identical values for all 4 tensors (same scheme and seed)"
    assert {t.status for t in report.tensors} == {"identical"}


def test_diff_different_seed_is_same_scheme():
    report = diff(_linear(1), _linear(2))
    assert report.headline == ("same architecture (4 tensors); same initialization scheme for all 4 tensors; "
                               "values differ (different seeds)")
    assert report.tensors[0].common_scheme == "kaiming_uniform(a=sqrt(5))"


def test_diff_different_scheme_is_named():
    kaiming = lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu")  # noqa: E731
    report = diff(_linear(1), _linear(2, kaiming))
    assert report.headline == ("same architecture (4 tensors); same initialization scheme for 2 of 4 tensors; "
                               "different initialization for 2 (0.weight, 2.weight)")
    w = report.tensors[0]
    assert w.status == "different" and w.scheme_b.startswith("kaiming_normal")
    assert w.p_value < 1e-3


def test_diff_architecture():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    b = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 4), torch.nn.Linear(4, 2))
    report = diff(a, b)
    assert not report.same_architecture
    assert report.extra == ("2.weight", "2.bias")
    assert [n for n, *_ in report.reshaped] == ["0.weight", "0.bias", "1.weight"]
    assert report.headline.startswith("different architecture (0 missing from b, 2 extra in b, 3 reshaped; 1 compared)")


def test_close_within_tolerance():
    torch.manual_seed(0)
    a = torch.nn.Linear(16, 8)
    b = torch.nn.Linear(16, 8)
    b.load_state_dict({k: v + 1e-9 for k, v in a.state_dict().items()})
    assert diff(a, b, atol=1e-6).headline.endswith("values equal within tolerance for all 2 tensors")


def test_small_uniform_against_zeros_is_different_not_same_distribution():
    # 10 values of U(-0.044, 0.044) against 10 zeros: ks_2samp alone gives p of about 0.01,
    # above the 0.001 threshold; the families (uniform vs constant) tell them apart.
    g = torch.Generator().manual_seed(3)
    a = {"b": torch.empty(10).uniform_(-0.044, 0.044, generator=g)}
    b = {"b": torch.zeros(10)}
    (row,) = fanin.diff(a, b).tensors
    assert row.status == "different", row
