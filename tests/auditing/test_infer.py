"""The audit's inference: a zoo of every registered scheme, exact structures, trained tensors."""

import math

import pytest
import torch

import fanin
from fanin.auditing import infer
from fanin.auditing.candidates import pretty_spec
from fanin.schemes import lookup

# Arguments for the registered schemes that have required ones. A scheme registered later with
# required arguments not listed here is reported by test_zoo_covers_the_framework_namespaces.
REQUIRED_ARGS = {
    "constant": {"val": 0.3},
    "jax.constant": {"value": 0.3},
    "sparse": {"sparsity": 0.1},
    "jax.variance_scaling": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"},
    "fanin.gate_constant": {"values": [0.0, 1.0, 0.0, 0.0]},
    "fanin.gate_uniform": {"bounds": [0.1, 0.25, 0.1, 0.05]},
    "fanin.padded_normal": {"padding_idx": 0, "std": 0.5},
    "fanin.zeros_after_uniform": {"a": -0.1, "b": 0.1},
}
SHAPES = [(96, 64), (32, 16, 3, 3)]
# The zoo covers the four framework namespaces and fanin's own composite schemes (per-gate blocks,
# padded rows). Both shapes split into 4 gate blocks of rows (96 also into 2 and 3).
FRAMEWORKS = ("torch", "keras", "tf1", "jax", "fanin")


def _zoo():
    out, skipped = [], []
    for name in fanin.list_schemes():
        if lookup(name).framework not in FRAMEWORKS:
            continue
        try:
            scheme = fanin.Scheme(name, **REQUIRED_ARGS.get(name, {}))
        except ValueError:
            skipped.append(name)
            continue
        for shape in SHAPES:
            w = torch.empty(shape)
            try:
                scheme(w, generator=torch.Generator().manual_seed(3))
            except (ValueError, TypeError, RuntimeError):
                continue  # the scheme does not take this shape (eye on 4-D, sparse on 4-D, ...)
            out.append((name, scheme, shape, w))
    return out, skipped


@pytest.fixture(scope="module")
def zoo():
    tensors, skipped = _zoo()
    return [(name, scheme, shape, infer(w)) for name, scheme, shape, w in tensors], skipped


def test_zoo_covers_the_framework_namespaces(zoo):
    results, skipped = zoo
    assert skipped == []
    assert len({name for name, *_ in results}) >= 55


def test_zoo_family_always_right(zoo):
    results, _ = zoo
    wrong = [(name, shape, r.family, r.reason) for name, s, shape, r in results if r.family != lookup(name).family]
    assert wrong == []


def test_zoo_named_scheme_at_least_95_percent(zoo):
    results, _ = zoo
    missed = [(name, shape, [m.scheme for m in r.matches][:3]) for name, s, shape, r in results
              if pretty_spec(str(s)) not in {m.scheme for m in r.matches}]
    assert len(missed) <= 0.05 * len(results), missed
    # Nothing in the zoo is a trained tensor.
    assert not any(r.trained for *_, r in results)


def test_pytorch_linear_default_is_named_with_its_note():
    torch.manual_seed(0)
    r = infer(torch.nn.Linear(256, 128).weight)
    first = r.matches[0]
    assert (r.family, first.scheme, r.confidence) == ("uniform", "kaiming_uniform(a=sqrt(5))", "high")
    assert first.description == f"U(±{1 / math.sqrt(256):.4g})"
    assert "PyTorch's default" in first.note
    assert 0 <= first.ks_statistic < 0.05 and first.p_value >= 1e-3


def test_bias_is_named_at_its_weights_fans():
    torch.manual_seed(0)
    layer = torch.nn.Linear(100, 400)
    r = infer(layer.bias, fans_shape=(400, 100))
    assert r.matches[0].scheme == "kaiming_uniform(a=sqrt(5)) at the layer weight's fans"


def test_gpt2_style_normal_is_fitted():
    w = torch.empty(256, 128).normal_(0, 0.02, generator=torch.Generator().manual_seed(0))
    r = infer(w)
    assert r.family == "normal"
    assert r.matches[0].scheme == "normal(std=0.02)" and r.matches[0].fitted
    assert r.matches[0].note.startswith("GPT-2 / BERT")


def test_orthogonal_gain_sqrt2():
    w = fanin.init.orthogonal_(torch.empty(48, 80), gain=math.sqrt(2), generator=torch.Generator().manual_seed(0))
    r = infer(w)
    assert r.family == "orthogonal" and abs(r.scale - math.sqrt(2)) < 1e-5
    assert "orthogonal(gain=sqrt(2))" in [m.scheme for m in r.matches]
    assert r.matches[0].description == "orthogonal, gain sqrt(2)"


def test_exact_structures():
    assert infer(torch.ones(5)).matches[0].scheme == "ones"
    c = infer(torch.full((3, 3), 0.3))
    assert c.family == "constant" and "constant(val=0.3)" in [m.scheme for m in c.matches]
    eye = infer(torch.eye(6, 9))
    assert eye.family == "identity" and eye.matches[0].scheme == "eye"
    dirac = infer(fanin.init.dirac_(torch.empty(8, 8, 3, 3)))
    assert dirac.family == "identity" and "dirac" in [m.scheme for m in dirac.matches]
    sparse = infer(fanin.init.sparse_(torch.empty(60, 40), 0.2, generator=torch.Generator().manual_seed(0)))
    assert sparse.family == "sparse" and sparse.distribution["sparsity"] == 0.2
    assert sparse.matches[0].scheme == "sparse(sparsity=0.2)"


def test_padding_row_is_left_out():
    torch.manual_seed(0)
    r = infer(torch.nn.Embedding(400, 32, padding_idx=0).weight)
    assert r.family == "normal" and r.matches[0].scheme == "normal"
    assert "row(s) 0 all zero" in r.reason


def _sgd_trained_mlp(steps):
    """A small MLP fit to y = sin(3x) (a real regression task) with plain SGD."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(1, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                              torch.nn.Linear(64, 1))
    x = torch.linspace(-2, 2, 256).unsqueeze(1)
    y = torch.sin(3 * x)
    opt = torch.optim.SGD(net.parameters(), lr=0.2)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()
    return net


def test_sgd_steps_look_trained_not_fresh():
    fresh = infer(_sgd_trained_mlp(0)[2].weight)
    assert not fresh.trained and fresh.matches[0].scheme == "kaiming_uniform(a=sqrt(5))"
    trained = infer(_sgd_trained_mlp(20)[2].weight)
    assert trained.trained and trained.family == "unknown" and trained.confidence == "none"
    assert trained.matches == ()
    assert "looks trained" in trained.reason


def test_heavy_tailed_values_are_not_forced_into_a_scheme():
    w = torch.distributions.StudentT(2.0).sample((128, 64))
    r = infer(w)
    assert r.trained and r.family == "unknown" and "no family fits" in r.reason


def test_infer_rejects_non_tensors():
    with pytest.raises(TypeError, match=r"infer needs a torch.Tensor, got tensor=\[1, 2\] \(list\)"):
        infer([1, 2])


def test_integer_and_empty_tensors():
    assert infer(torch.arange(4)).reason.startswith("not a floating-point tensor (dtype=torch.int64)")
    assert infer(torch.empty(0, 3)).family == "empty"


# --------------------------------------------------------------------------- gate blocks


def test_gate_constant_blocks_are_named():
    w = torch.tensor([0.5] * 10 + [-1.0] * 10 + [2.0] * 10).reshape(3, 10).repeat_interleave(4, 0)  # (12, 10)
    r = infer(w)
    assert (r.family, r.confidence, r.distribution["gates"]) == ("constant", "high", 3.0)
    assert r.reason == "constant per gate block: [0.5, -1, 2] (3 blocks of 4 rows)"
    assert [m.scheme for m in r.matches] == ["fanin.gate_constant(values=[0.5, -1.0, 2.0])"]
    # An LSTM bias with Keras's unit forget bias, packed as torch packs it (i, f, g, o).
    b = torch.cat([torch.zeros(5), torch.ones(5), torch.zeros(10)])
    assert infer(b).reason.startswith("constant per gate block: [0, 1, 0, 0]")
    assert infer(b).matches[0].scheme == "fanin.gate_constant(values=[0.0, 1.0, 0.0, 0.0])"


def test_gate_uniform_bounds_are_fitted():
    g = torch.Generator().manual_seed(1)
    bounds = [0.1, 0.3, 0.3]
    w = torch.cat([(torch.rand(40, 50, generator=g) * 2 - 1) * b for b in bounds])
    r = infer(w)
    assert r.family == "uniform" and r.distribution["gates"] == 3.0
    # The bound estimate max|x| (n + 1) / n from n = 2000 values: within 0.5%.
    assert all(abs(r.distribution[f"bound_{k}"] / b - 1) < 5e-3 for k, b in enumerate(bounds))
    assert r.reason.startswith("uniform per gate block: bounds ±0.1")
    assert r.confidence == "medium" and r.p_value >= 1e-2
    assert r.matches[0].scheme == "fanin.gate_uniform(bounds=[0.1, 0.3, 0.3])" and r.matches[0].fitted


def test_gatewise_orthogonal_blocks():
    g = torch.Generator().manual_seed(2)
    q = torch.cat([torch.linalg.qr(torch.randn(24, 16, generator=g, dtype=torch.float64))[0] for _ in range(4)])
    r = infer((2 * q).float())
    assert (r.family, r.distribution["gates"], r.confidence) == ("orthogonal", 4.0, "high")
    assert abs(r.scale - 2) < 1e-5 and r.reason.startswith("orthogonal per gate block: gain 2 (4 blocks of 24 rows")
    assert [m.scheme for m in r.matches] == ["fanin.gatewise_orthogonal(scale=2.0)"]
    # Different gains per block: still orthogonal per block, but no registered scheme draws it.
    mixed = infer(torch.cat([q[:48], 3 * q[48:]]).float())
    assert mixed.family == "orthogonal" and mixed.matches == ()
    assert "gains 1, 1, 3, 3" in mixed.reason and mixed.reason.endswith("no registered scheme matches")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plain_tensors_are_not_gate_blocked(seed):
    g = torch.Generator().manual_seed(seed)
    plain = {
        "uniform": (torch.rand(96, 64, generator=g) * 2 - 1) * 0.1,
        "normal": torch.randn(96, 64, generator=g) * 0.02,
        "orthogonal": torch.linalg.qr(torch.randn(96, 64, generator=g, dtype=torch.float64))[0].float(),
    }
    for family, w in plain.items():
        for t in (w, w.T.contiguous()):
            r = infer(t)
            assert r.family == family and "gate block" not in r.reason, (family, seed, r.reason)
            assert not any(m.scheme.startswith("fanin.gate") for m in r.matches), (family, seed, r.matches)
    # Blocks that differ in scale but are not uniform (normal per block) are not called uniform per block.
    w = torch.cat([torch.randn(48, 64, generator=g), 3 * torch.randn(48, 64, generator=g)])
    assert "gate block" not in infer(w).reason
