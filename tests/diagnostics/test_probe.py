import math
import random

import numpy as np
import pytest
import torch
from torch import nn

import fanin
from fanin.diagnostics.probing import ProbeError, default_layer, probe
from fanin.diagnostics.verdicts import EXPLODE_ABOVE
from fanin.rng.threads import one_thread


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():  # small tensors: parallel regions cost more than they save on 2 cores
        yield


def _seed_mlp(init, activation=None, depth=100, n=256, batch=16):
    """The document's procedure: seed 1 everywhere, build Linear layers, re-init, draw the input."""
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    modules = []
    for _ in range(depth):
        modules.append(nn.Linear(n, n, bias=False))
        if activation is not None:
            modules.append(activation())
    for m in modules:
        if isinstance(m, nn.Linear):
            init(m.weight.data)
    return nn.Sequential(*modules), torch.randn(batch, n)


def _kinds(report):
    return [v.kind for v in report.verdicts]


def test_the_seed_experiment_through_probe():
    model, x = _seed_mlp(nn.init.normal_)
    report = fanin.probe(model, x)
    # float32 BLAS kernels differ in the last bits between CPUs: the document's printed figures.
    assert f"{report.layers[0].std:.4g}" == "15.96" and f"{report.layers[1].std:.4g}" == "256.6"
    assert report.layers[0].torch_std == pytest.approx(15.959932327270508, rel=1e-6)
    # float64 statistics of the float32 activations: 2.08e37 at layer 30, the document's figure;
    # the activations overflow at layer 31 ("output is nan in 31 layers").
    assert report.layers[30].std == pytest.approx(2.08e37, rel=0.01) and report.layers[30].finite
    assert not report.layers[31].finite
    (verdict,) = report.verdicts
    assert verdict.kind == "exploding" and verdict.threshold == EXPLODE_ABOVE
    assert verdict.layer == 2 and verdict.value == pytest.approx(4107, rel=0.01)  # first std above 1e3
    assert verdict.rate == pytest.approx(16.0, rel=0.02)  # sqrt(n) = sqrt(256) a layer
    assert "std exceeds 1000 from layer 2 ('2', Linear)" in verdict.message
    assert "non-finite from layer 31 ('31', Linear)" in verdict.message
    assert "x16 per layer" in verdict.message


def test_relu_kaiming_is_stable_forward_and_backward():
    model, x = _seed_mlp(lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), nn.ReLU)
    report = probe(model, x, backward=True)
    assert _kinds(report) == ["stable"] and report.healthy
    report.assert_healthy()
    assert len(report.layers) == 200 and [r.module for r in report.layers[:2]] == ["Linear", "ReLU"]
    assert all(0.4 < r.zeros < 0.6 for r in report.layers[1::2])
    assert all(r.grad_std is not None and math.isfinite(r.grad_std) for r in report.layers)
    assert [r.depth for r in report.layers[:4]] == [1, 1, 2, 2]


def test_tanh_with_unit_normal_is_saturating():
    model, x = _seed_mlp(nn.init.normal_, nn.Tanh)
    report = probe(model, x)
    assert _kinds(report) == ["saturating"]
    (verdict,) = report.verdicts
    assert verdict.threshold == 0.5 and verdict.value > 0.8
    assert "|y| > 0.99" in verdict.message


class _PreNormBlock(nn.Module):
    """x + f(LN(x)), f a Linear with Var(W) = 1/n and no bias: each block adds a unit variance."""

    def __init__(self, n, zero=False):
        super().__init__()
        self.ln = nn.LayerNorm(n)
        self.f = nn.Linear(n, n, bias=False)
        nn.init.zeros_(self.f.weight) if zero else nn.init.normal_(self.f.weight, std=n**-0.5)

    def forward(self, x):
        return x + self.f(self.ln(x))


def test_residual_stream_growing_with_depth_is_flagged():
    torch.manual_seed(0)
    model = nn.Sequential(*[_PreNormBlock(256) for _ in range(16)])
    report = probe(model, torch.randn(16, 256))
    assert [b.name for b in report.blocks] == [str(i) for i in range(16)]
    # Var after k blocks = 1 + k by the variance argument: std sqrt(17) = 4.12 after 16.
    assert report.blocks[-1].output_std == pytest.approx(math.sqrt(17), rel=0.05)
    assert [b.k for b in report.blocks] == list(range(1, 17))
    assert "residual_growth" in _kinds(report)
    verdict = next(v for v in report.verdicts if v.kind == "residual_growth")
    k = np.arange(1, 17)
    expected = np.polyfit(np.log(k), 0.5 * np.log(1 + k), 1)[0]  # std_k = sqrt(1 + k): x = 0.39
    assert verdict.rate == pytest.approx(expected, abs=0.03) and verdict.threshold == 0.25
    assert f"grows as depth^{verdict.rate:.2f} over 16 blocks" in verdict.message
    with pytest.raises(AssertionError, match="residual_growth"):
        report.assert_healthy()


def test_residual_stream_held_by_zero_init_branches_is_not_flagged():
    torch.manual_seed(0)
    model = nn.Sequential(*[_PreNormBlock(64, zero=True) for _ in range(8)])
    report = probe(model, torch.randn(16, 64))
    assert len(report.blocks) == 8 and report.residual_exponent == pytest.approx(0.0, abs=1e-9)
    assert "residual_growth" not in _kinds(report)


def test_named_blocks_and_tracking_off():
    torch.manual_seed(0)
    model = nn.Sequential(*[_PreNormBlock(8) for _ in range(3)])
    x = torch.randn(4, 8)
    named = probe(model, x, residual="[02]")
    assert [(b.name, b.detected) for b in named.blocks] == [("0", False), ("2", False)]
    assert probe(model, x, residual=["1", "2"]).blocks[0].name == "1"
    assert probe(model, x, residual=False).blocks == ()


class _Reversed(nn.Module):
    """Registration order (c, b, a) is the reverse of execution order (a, b, c); b runs twice."""

    def __init__(self):
        super().__init__()
        self.c = nn.Linear(4, 2)
        self.b = nn.Tanh()
        self.a = nn.Linear(3, 4)

    def forward(self, x):
        return self.c(self.b(self.b(self.a(x))))


def test_layers_are_recorded_in_execution_order_with_repeated_calls():
    torch.manual_seed(0)
    report = probe(_Reversed(), torch.randn(5, 3))
    assert [(r.name, r.call) for r in report.layers] == [("a", 0), ("b", 0), ("b", 1), ("c", 0)]
    assert [r.index for r in report.layers] == [0, 1, 2, 3]
    assert report.layer("b", 1).shape == (5, 4)
    with pytest.raises(KeyError, match="Unknown layer 'd'"):
        report.layer("d")


def test_statistics_by_hand():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Sigmoid(), nn.ReLU())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[3.0, 0, 0], [0, -3.0, 0], [0, 0, 0.1], [1.0, 1.0, 1.0]]))
        model[0].bias.zero_()
    x = torch.tensor([[1.0, 2.0, -1.0], [-2.0, 0.5, 3.0]])
    report = probe(model, x)
    y = (x.double() @ model[0].weight.detach().double().T).numpy()
    for record, out in zip(report.layers, (y, np.tanh(y), 1 / (1 + np.exp(-np.tanh(y))), None), strict=False):
        if out is None:
            break
        assert record.mean == pytest.approx(out.mean(), rel=1e-6)
        assert record.std == pytest.approx(out.std(ddof=1), rel=1e-6)
        assert record.second_moment == pytest.approx((out**2).mean(), rel=1e-6)
    t = np.tanh(y)
    assert report.layers[1].saturated == np.mean(np.abs(t) > 0.99) == 0.375  # tanh(3), tanh(-6) twice
    assert report.layers[2].saturated == 0.0  # sigmoid of tanh values stays within (0.26, 0.74)
    relu = report.layers[3]
    assert relu.zeros == 0.0 and relu.saturated is None and report.layers[0].saturated is None
    negative = nn.Linear(3, 4)
    with torch.no_grad():
        negative.weight.zero_()
        negative.bias.copy_(torch.tensor([-1.0, -1.0, -1.0, 1.0]))
    dead = probe(nn.Sequential(negative, nn.ReLU()), torch.randn(2, 3), layers=lambda n, m: n == "1")
    assert dead.layers[0].zeros == dead.layers[0].dead == 0.75
    assert [v.kind for v in dead.verdicts] == ["stable"]  # 75% zeros: under DEAD_ABOVE (90%)


def test_default_layer_choice():
    assert default_layer("x", nn.Linear(2, 2)) and default_layer("x", nn.GELU())
    assert not default_layer("x", nn.Dropout()) and not default_layer("x", nn.Sequential(nn.Linear(2, 2)))


def test_backward_gradients_by_hand():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 4))
    x = torch.randn(3, 6)
    report = probe(model, x, backward=True, seed=7)
    # Default: the cotangent on the output is N(0, 1) from a generator seeded with `seed`.
    g = torch.randn((3, 4), generator=torch.Generator().manual_seed(7))
    assert report.layers[-1].grad_std == pytest.approx(g.double().std().item(), rel=1e-6)
    # With loss = sum(y^2)/2 the gradient at the output is y itself.
    report = probe(model, x, backward=True, loss=lambda y: (y**2).sum() / 2)
    assert report.layers[-1].grad_std == pytest.approx(report.layers[-1].std, rel=1e-6)
    y = model(x)
    (gw,) = torch.autograd.grad((y**2).sum() / 2, [model[2].weight])
    param = next(p for p in report.params if p.name == "2.weight")
    assert param.grad_std == pytest.approx(gw.double().std().item(), rel=1e-6)
    assert param.grad_ratio == pytest.approx(param.grad_std / model[2].weight.double().std().item(), rel=1e-9)
    assert all(p.grad is None for p in model.parameters())  # autograd.grad: no .grad written


class _Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.bn = nn.BatchNorm1d(4)
        self.drop = nn.Dropout(0.5)
        self.seen = []

    def forward(self, x):
        self.seen.append((self.training, self.bn.training))
        return self.drop(self.bn(self.fc(x)))


def _hook_counts(model):
    return [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in model.modules()]


@pytest.mark.parametrize("mode", ["train", "eval", None])
def test_model_mode_rng_and_state_restored(mode):
    torch.manual_seed(0)
    model = _Recorder()
    model.train()
    model.bn.eval()  # mixed modes survive
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = _hook_counts(model)
    rng = torch.random.get_rng_state()
    report = probe(model, lambda: torch.randn(8, 4), backward=True, mode=mode)
    expected = {"train": (True, True), "eval": (False, False), None: (True, False)}[mode]
    assert model.seen == [expected]
    assert (model.training, model.bn.training, model.fc.training) == (True, False, True)
    assert torch.equal(torch.random.get_rng_state(), rng)  # the callable's and dropout's draws undone
    after = model.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert _hook_counts(model) == hooks
    assert report.mode == (mode or "train")


def test_train_mode_batchnorm_buffers_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    probe(model, torch.randn(8, 4) * 3 + 1, mode="train")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


class _TwoInputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, a, b=None):
        return self.fc(a) + (0 if b is None else b)


def test_input_forms():
    torch.manual_seed(0)
    model = _TwoInputs()
    a, b = torch.randn(2, 3), torch.randn(2, 3)
    tuple_form = probe(model, (a, b))
    dict_form = probe(model, {"a": a, "b": b})
    callable_form = probe(model, lambda: (a, b))
    assert tuple_form.input_shapes == dict_form.input_shapes == callable_form.input_shapes == ((2, 3), (2, 3))
    assert tuple_form.layers == dict_form.layers == callable_form.layers
    ids = probe(nn.Sequential(nn.Embedding(10, 4)), torch.tensor([[1, 2, 3]]))
    assert ids.input_shapes == ((1, 3),) and math.isnan(ids.input_std)


def test_no_grad_pass_by_default_and_report_fields():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3))
    report = probe(model, torch.randn(4, 3), label="run-a")
    assert report.label == "run-a" and report.model == "Sequential" and not report.backward
    assert report.layers[0].grad_std is None and report.params[0].grad_std is None
    assert report.torch_version == torch.__version__ and report.device == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_gpu():
    model, x = _seed_mlp(lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), nn.ReLU, depth=20, n=64)
    model = model.cuda()
    cuda_rng = torch.cuda.get_rng_state()
    report = probe(model, x, backward=True)  # CPU inputs are moved to the model's device
    assert report.device.startswith("cuda") and _kinds(report) == ["stable"]
    assert torch.equal(torch.cuda.get_rng_state(), cuda_rng)
    cpu = probe(model.cpu(), x, backward=True)
    assert [r.std for r in cpu.layers] == pytest.approx([r.std for r in report.layers], rel=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "net"}, r"probe takes a torch.nn.Module, got model=str"),
        ({"mode": "training"}, r"Unknown mode 'training'. Did you mean 'train'\?.*Or mode=None"),
        ({"loss": lambda y: y.sum()}, r"loss is used by the backward pass only: pass backward=True"),
        ({"backward": True, "loss": 3}, r"loss must be a callable output -> scalar tensor, got loss=3"),
        ({"backward": 1}, r"backward must be True or False, got backward=1"),
        ({"residual": 3}, r"residual must be None \(detect blocks\), False .*got residual=3"),
        ({"residual": []}, r"got residual=\[\]"),
        ({"layers": "Linear"}, r"layers must be a predicate \(name, module\) -> bool, got layers='Linear'"),
        ({"seed": 1.5}, r"seed must be an int, got seed=1.5"),
        ({"inputs": "x"}, r"inputs must be a tensor, a tuple/list .* got inputs=str"),
        ({"backward": True, "loss": lambda y: y}, r"loss must return a scalar tensor, got Tensor of shape \(2, 2\)"),
    ],
)
def test_errors(kwargs, match):
    args = {"model": nn.Linear(2, 2), "inputs": torch.zeros(2, 2)} | kwargs
    model, inputs = args.pop("model"), args.pop("inputs")
    with pytest.raises(ProbeError, match=match):
        probe(model, inputs, **args)


def test_backward_needs_something_to_differentiate():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ProbeError, match="the model's output does not require grad"):
        probe(model, torch.zeros(2, 2), backward=True)
    assert all(not p.requires_grad for p in model.parameters())


def test_probe_error_is_a_value_error():
    assert issubclass(ProbeError, ValueError)
