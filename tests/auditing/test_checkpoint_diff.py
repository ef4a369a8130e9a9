"""Checkpoints (weights-only, safetensors streamed), a malicious pickle refused, and diff."""

import math
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
    with pytest.raises(
        UnsafeCheckpointError,
        match=r"Refusing to load path='.*evil.pt'.*Nothing was executed.*"
        r"GLOBAL posix.system",
    ):
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
    with pytest.raises(
        CheckpointError,
        match=r"Unknown checkpoint type for path='.*w.npz' \(suffix='.npz'\)\. "
        r"Accepted: '.bin', '.ckpt', '.pkl', '.pt', '.pth', '.safetensors'",
    ):
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
    assert report.headline == "same architecture (4 tensors); identical values: 4 identical"
    assert {t.status for t in report.tensors} == {"identical"}
    assert not report.any_different


def test_diff_different_seed_is_same_distribution():
    report = diff(_linear(1), _linear(2))
    assert report.headline == "same architecture (4 tensors); same initialization: 4 same distribution"
    w = report.tensors[0]
    assert w.status == "same distribution" and w.scheme_a == w.scheme_b == "kaiming_uniform(a=sqrt(5))"
    assert set(w.tests) == {"ks", "mean", "scale"} and w.p_value is not None and w.p_value >= report.alpha
    assert w.detail.startswith("not rejected (ks p=") and "scale ratio b/a" in w.detail
    assert not report.any_different
    # the 32-value bias's test can only see large scale differences, and says so
    bias = report.tensors[3]
    assert bias.resolution is not None and bias.resolution > 0.3 and "cannot be told apart" in bias.detail


def test_diff_different_scheme_is_found_by_a_test():
    kaiming = lambda w: torch.nn.init.kaiming_normal_(w, nonlinearity="relu")  # noqa: E731
    report = diff(_linear(1), _linear(2, kaiming))
    assert report.headline == (
        "same architecture (4 tensors); different initialization for 2 of 4 (0.weight, "
        "2.weight): 2 same distribution, 2 different"
    )
    w = report.tensors[0]
    assert w.status == "different" and w.scheme_b.startswith("kaiming_normal") and w.family_b == "normal"
    # std sqrt(2/64) against 1/sqrt(3*64): the scale test rejects, with the ratio shown
    assert w.test == "scale" and w.p_value is not None and w.p_value < 1e-10 and not w.certain
    assert w.scale_ratio is not None and abs(w.scale_ratio - math.sqrt(6)) < 0.15
    assert "rejected by the scale test" in w.detail and "a: kaiming_uniform(a=sqrt(5)) (uniform)" in w.detail
    assert report.any_different


def test_names_alone_never_make_a_difference():
    # The same U(-0.1, 0.1) drawn twice: whatever names each side's 32 values get, not rejected.
    g = torch.Generator().manual_seed(5)
    rows = [
        diff(
            {"b": torch.empty(32).uniform_(-0.1, 0.1, generator=g)},
            {"b": torch.empty(32).uniform_(-0.1, 0.1, generator=g)},
        ).tensors[0]
        for _ in range(40)
    ]
    assert all(r.status == "same distribution" for r in rows)
    # 32 values leave several hypotheses alive: the first names (even families) often differ
    assert sum(r.scheme_a != r.scheme_b for r in rows) >= 5 and any(r.family_a != r.family_b for r in rows)


def test_diff_architecture():
    torch.manual_seed(0)
    a = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Linear(16, 4))
    b = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Linear(32, 4), torch.nn.Linear(4, 2))
    report = diff(a, b)
    assert not report.same_architecture and report.any_different
    assert report.extra == ("2.weight", "2.bias")
    assert [n for n, *_ in report.reshaped] == ["0.weight", "0.bias", "1.weight"]
    assert report.headline.startswith(
        "different architecture (0 only in a, 2 only in b, 3 reshaped; 1 compared); "
        "same initialization: 1 same distribution"
    )


def test_close_within_tolerance():
    torch.manual_seed(0)
    a = torch.nn.Linear(16, 8)
    b = torch.nn.Linear(16, 8)
    b.load_state_dict({k: v + 1e-9 for k, v in a.state_dict().items()})
    assert diff(a, b, atol=1e-6).headline == (
        "same architecture (2 tensors); same initialization: 2 equal within tolerance"
    )
    assert {t.status for t in diff(a, b, atol=0, rtol=0).tensors} == {"same distribution"}


def test_identical_means_the_same_bytes():
    zeros, negzeros = torch.tensor([0.0, 1.0]), torch.tensor([-0.0, 1.0])
    (row,) = diff({"w": zeros}, {"w": negzeros}).tensors
    assert row.status == "close" and row.max_abs_diff == 0
    nan = torch.tensor([float("nan"), 1.0])
    assert diff({"w": nan}, {"w": nan.clone()}).tensors[0].status == "identical"
    (row,) = diff({"w": nan}, {"w": torch.tensor([2.0, 1.0])}).tensors
    assert row.status == "different" and row.test == "non-finite" and row.detail.startswith("a: NaN 1 of 2 values")
    (row,) = diff({"w": zeros}, {"w": zeros.to(torch.float64)}).tensors
    assert row.status == "close" and (row.dtype_a, row.dtype_b) == ("float32", "float64")


def test_small_uniform_against_zeros_is_different_not_same_distribution():
    # 10 values of U(-0.044, 0.044) against 10 zeros: ks_2samp alone gives p of about 0.01;
    # a constant on one side only is a certain difference.
    g = torch.Generator().manual_seed(3)
    a = {"b": torch.empty(10).uniform_(-0.044, 0.044, generator=g)}
    b = {"b": torch.zeros(10)}
    (row,) = fanin.diff(a, b).tensors
    assert row.status == "different" and row.test == "structure" and row.p_value == 0.0 and row.certain, row
    assert "b is constant" in row.detail and "a is not" in row.detail


def test_exact_structures_differ_for_certain():
    (row,) = diff({"c": torch.ones(5)}, {"c": torch.full((5,), 2.0)}).tensors
    assert row.status == "different" and row.test == "constant"
    assert row.detail == "constant values differ: a all 5 values equal 1; b all 5 values equal 2"
    q = lambda gain: torch.nn.init.orthogonal_(torch.empty(16, 16), gain=gain)  # noqa: E731
    torch.manual_seed(0)
    (row,) = diff({"o": q(1.0)}, {"o": q(1.0)}).tensors
    assert row.status == "same distribution" and row.detail.startswith("both orthogonal")
    (row,) = diff({"o": q(1.0)}, {"o": q(1.001)}).tensors
    assert row.status == "different" and row.test == "gain" and "orthogonal gains differ: 1 vs 1.001" in row.detail


def test_tied_and_skipped_tensors_are_shown():
    t = torch.randn(8, 8, generator=torch.Generator().manual_seed(0))
    a = {"w": t, "v": t, "step": torch.tensor(3), "m": torch.empty(4, device="meta")}
    b = {"w": t.clone(), "v": t.clone(), "step": torch.tensor(3), "m": torch.empty(4, device="meta")}
    report = diff(a, b)
    assert report.skipped == {"m": "a: on the meta device (no values); b: on the meta device (no values)"}
    v = next(r for r in report.tensors if r.name == "v")
    assert (
        v.status == "different"
        and v.test == "tying"
        and v.detail == ("a ties it to w; b stores its own (shared storage differs)")
    )
    step = next(r for r in report.tensors if r.name == "step")
    assert step.status == "identical" and step.family_a == "integer"
    assert report.headline == (
        "same architecture (3 tensors); different initialization for 1 of 3 (v): "
        "2 identical, 1 different; 1 not compared"
    )
    tied_b = {"w": t.clone(), "step": torch.tensor(4), "m": torch.empty(4, device="meta")}
    tied_b["v"] = tied_b["w"]
    report = diff(a, tied_b)
    assert report.tied == {"v": "w"} and [r.name for r in report.tensors] == ["w", "step"]
    step = report.tensors[1]
    assert step.status == "different" and step.detail == "values differ (not floating point)"
    assert report.headline.endswith("; 1 tied, 1 not compared")


def test_bad_arguments_are_refused_with_what_was_given():
    m = torch.nn.Linear(2, 2)
    with pytest.raises(
        ValueError,
        match=r"rtol is the relative tolerance of 'close', a finite number >= 0; "
        r"got rtol=-1",
    ):
        diff(m, m, rtol=-1)
    with pytest.raises(
        ValueError,
        match=r"atol is the absolute tolerance of 'close', a finite number >= 0; "
        r"got atol=nan",
    ):
        diff(m, m, atol=math.nan)
    with pytest.raises(ValueError, match=r"alpha is the family-wise level of 'different', in \(0, 1\); got alpha=1"):
        diff(m, m, alpha=1)


def test_two_sample_tests_hold_their_level_on_small_tensors():
    # 10 and 32 values, uniform and normal: "different" at 0.01 at most 0.01 of the time (plus
    # 3 binomial standard errors); the delta method alone rejected 10 values 3.6-6.5% of the time.
    from fanin.auditing.comparison import _two_sample
    from fanin.auditing.scanning import scan

    g = torch.Generator().manual_seed(11)
    for n in (10, 32):
        for draw in (lambda n=n: torch.empty(n).uniform_(-1, 1, generator=g), lambda n=n: torch.randn(n, generator=g)):
            trials = 600
            rejected = 0
            for _ in range(trials):
                tests, _ = _two_sample(scan(draw()), scan(draw()), 0.0)
                rejected += min(1.0, 3 * min(tests.values())) < 0.01
            assert rejected <= trials * 0.01 + 3 * math.sqrt(trials * 0.01), (n, rejected)


def test_scale_difference_is_detected_and_resolution_shrinks_with_size():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(256, 256, generator=g), torch.randn(256, 256, generator=g) * 1.05
    (row,) = diff({"w": a}, {"w": b}).tensors
    assert row.status == "different" and row.test == "scale"
    assert row.scale_ratio is not None and abs(row.scale_ratio - 1.05) < 0.01
    (row,) = diff({"w": a}, {"w": torch.randn(256, 256, generator=g)}).tensors
    assert row.status == "same distribution" and row.resolution is not None and row.resolution < 0.03


def test_low_precision_copies_are_the_same_distribution_and_shape_differences_are_found():
    g = torch.Generator().manual_seed(4)
    a = torch.randn(1024, 256, generator=g) * 0.02
    for b in (a.bfloat16(), a.half(), (torch.randn(1024, 256, generator=g) * 0.02).bfloat16()):
        (row,) = diff({"w": a}, {"w": b}).tensors  # bf16 ties: no warning from the KS test (warnings are errors)
        assert row.status == "same distribution", row
    # the same std from a uniform: only the distribution test (KS) can tell, and does
    bound = 0.02 * math.sqrt(3)
    u = torch.empty(1024, 256).uniform_(-bound, bound, generator=g).bfloat16()
    (row,) = diff({"w": a.bfloat16()}, {"w": u}).tensors
    assert row.status == "different" and row.test == "ks", row
    assert row.scale_ratio is not None and abs(row.scale_ratio - 1) < 0.01, row
    assert (row.family_a, row.family_b) == ("normal", "uniform")
