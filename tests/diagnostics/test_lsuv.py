import json
import math

import pytest
import torch
from rich.console import Console
from torch import nn

import fanin
from fanin.diagnostics.lsuv import LSUVError, LSUVLayer, LSUVReport, is_marked, lsuv_
from fanin.rng import Stream

TOL = 0.01


class Reversed(nn.Module):
    """Modules registered in the reverse of the order forward uses them."""

    def __init__(self):
        super().__init__()
        self.c = nn.Linear(64, 48)
        self.b = nn.Linear(64, 64)
        self.a = nn.Linear(32, 64)

    def forward(self, x):
        return self.c(torch.relu(self.b(torch.relu(self.a(x)))))


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(x)))


def residual():
    return nn.Sequential(nn.Linear(16, 32), Block(32), Block(32), Block(32), nn.Linear(32, 8))


def output_variances(model, x):
    """Each Linear's output variance (float64, torch's unbiased var) on its first call, by name."""
    out, handles = {}, []

    def hook(name):
        def record(module, args, y):
            out.setdefault(name, y.double().var().item())  # returns None: the output is unchanged

        return record

    for name, m in model.named_modules():
        if isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(hook(name)))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


def registration_order_lsuv(model, x, tol=TOL, max_iter=10):
    """What the lsuv package / anyinit do: walk model.modules() (registration order)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)
        for m in model.modules():
            if not isinstance(m, nn.Linear):
                continue
            for _ in range(max_iter):
                seen = []
                h = m.register_forward_hook(lambda mod, a, y, seen=seen: seen.append(y.double().var().item()))
                model(x)
                h.remove()
                if abs(seen[0] - 1) < tol:
                    break
                m.weight.mul_(1 / math.sqrt(seen[0]))


@pytest.fixture
def x32():
    return torch.randn(512, 32, generator=torch.Generator().manual_seed(1))


def test_execution_order_calibrates_every_layer(x32):
    torch.manual_seed(0)
    model = Reversed()
    report = lsuv_(model, x32, generator=torch.Generator().manual_seed(0))
    assert [x.name for x in report.layers] == ["a", "b", "c"]
    assert [x.order for x in report.layers] == [0, 1, 2]
    assert report.converged
    variances = output_variances(model, x32)
    assert set(variances) == {"a", "b", "c"}
    for name, var in variances.items():
        assert abs(var - 1) < TOL, (name, var)
        assert math.isclose(report[name].final_std, math.sqrt(var), rel_tol=1e-9)


def test_registration_order_fails_where_execution_order_succeeds(x32):
    # The point of calibrating in execution order: the same model calibrated in registration
    # order (c, then b, then a) leaves c far from unit variance, since calibrating a and b later
    # rescales c's input.
    torch.manual_seed(0)
    model = Reversed()
    registration_order_lsuv(model, x32)
    variances = output_variances(model, x32)
    assert abs(variances["a"] - 1) < TOL  # calibrated last: nothing disturbs it
    assert abs(variances["c"] - 1) > 0.1


def test_residual_model(x32):
    torch.manual_seed(0)
    model = residual()
    x = x32[:, :16]
    report = lsuv_(model, x, generator=torch.Generator().manual_seed(0))
    names = ["0", "1.fc1", "1.fc2", "2.fc1", "2.fc2", "3.fc1", "3.fc2", "4"]
    assert [layer.name for layer in report.layers] == names
    variances = output_variances(model, x)
    assert max(abs(v - 1) for v in variances.values()) < TOL
    assert report.converged and all(layer.iterations <= 10 for layer in report.layers)


def test_layer_used_twice_is_calibrated_once_on_its_first_call(x32):
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(32, 64)
            self.shared = nn.Linear(64, 64)
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.shared(torch.relu(self.shared(torch.relu(self.inp(x)))))

    torch.manual_seed(0)
    model = Shared()
    report = lsuv_(model, x32, generator=torch.Generator().manual_seed(0))
    assert [(x.name, x.calls) for x in report.layers] == [("inp", 1), ("shared", 2)]
    assert report.unused == ("unused",)
    assert abs(output_variances(model, x32)["shared"] - 1) < TOL


def test_restores_mode_buffers_rng_and_leaves_no_hooks(x32):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.BatchNorm1d(64), nn.Dropout(0.5), nn.ReLU(), nn.Linear(64, 8))
    model.train()
    model[2].eval()  # a mixed setting must come back as it was
    buffers = {k: v.clone() for k, v in model.state_dict().items() if "running" in k or "tracked" in k}
    rng = torch.get_rng_state()
    report = lsuv_(model, x32, train=True, generator=torch.Generator().manual_seed(0))
    assert report.converged
    assert [m.training for m in model.modules()] == [True, True, True, False, True, True]
    for k, v in buffers.items():
        assert torch.equal(model.state_dict()[k], v), k
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(not m._forward_hooks for m in model.modules())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert type(model) is nn.Sequential and isinstance(model[0], nn.Linear)


def test_train_mode_passes_see_the_same_dropout_masks(x32):
    def run():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(32, 64), nn.Dropout(0.3), nn.Linear(64, 8))
        return model, lsuv_(model, x32, train=True, generator=torch.Generator().manual_seed(0))

    (m1, r1), (m2, r2) = run(), run()
    assert r1 == r2 and r1.converged
    assert torch.equal(m1[2].weight, m2[2].weight)


def test_global_generator_draws_like_torch_orthogonal(x32):
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(32, 16))
    expected = nn.init.orthogonal_(torch.empty(16, 32), generator=torch.Generator().manual_seed(3))
    report = lsuv_(model, x32, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(model[0].weight, expected * report["0"].scale, rtol=1e-6, atol=0)


def test_stream_keys_one_stream_per_weight(x32):
    torch.manual_seed(0)
    model = Reversed()
    report = lsuv_(model, x32, generator=Stream(7, "ignored"))
    for name in ("a", "b", "c"):
        weight = getattr(model, name).weight
        start = Stream(7, f"{name}.weight").orthogonal_(torch.empty_like(weight))
        torch.testing.assert_close(weight, start * report[name].scale, rtol=1e-6, atol=0)


def test_lsuv_scheme_two_step_usage(x32):
    scheme = fanin.get("lsuv")
    assert scheme.family == "orthogonal" and str(scheme) == "lsuv"
    torch.manual_seed(0)
    model = Reversed()
    for name in ("a", "c"):  # b keeps its default init and is not calibrated
        scheme(getattr(model, name).weight, generator=Stream(0, f"{name}.weight"))
    assert is_marked(model.a.weight) and not is_marked(model.b.weight)
    starts = {n: getattr(model, n).weight.clone() for n in ("a", "c")}
    b_before = model.b.weight.clone()
    report = lsuv_(model, x32, layers="marked")
    assert [x.name for x in report.layers] == ["a", "c"]
    assert all(x.orthogonal for x in report.layers)
    for n, start in starts.items():  # not re-drawn: only rescaled
        torch.testing.assert_close(getattr(model, n).weight, start * report[n].scale, rtol=1e-6, atol=0)
    assert torch.equal(model.b.weight, b_before)
    variances = output_variances(model, x32)
    assert abs(variances["a"] - 1) < TOL and abs(variances["c"] - 1) < TOL


def test_layers_by_name_module_and_predicate(x32):
    torch.manual_seed(0)
    model = Reversed()
    assert [x.name for x in lsuv_(model, x32, layers=["c", model.a]).layers] == ["a", "c"]
    assert [x.name for x in lsuv_(model, x32, layers=lambda n, m: n == "b").layers] == ["b"]


def test_conv_layers_are_calibrated():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 6 * 6, 10)
    )
    x = torch.randn(32, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    report = lsuv_(model, x, generator=torch.Generator().manual_seed(0))
    assert [(x.name, x.kind) for x in report.layers] == [("0", "Conv2d"), ("2", "Conv2d"), ("4", "Linear")]
    assert report.converged


def test_target_std_and_batch_as_tuple_or_dict(x32):
    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 64)

        def forward(self, x, scale):
            return self.fc(x * scale)

    torch.manual_seed(0)
    for batch in ((x32, 2.0), {"x": x32, "scale": 2.0}):
        model = TwoInputs()
        report = lsuv_(model, batch, target_std=0.5, tol=0.001)
        assert abs(report["fc"].final_std ** 2 - 0.25) < 0.001


def test_not_converging_and_zero_variance_are_reported(x32):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 64), nn.Linear(64, 8))
    report = lsuv_(model, x32, max_iter=1, tol=1e-12)
    assert report["0"].iterations == 1 and not report.converged
    assert "did not converge" in report.summary()
    dead = nn.Sequential(nn.Linear(32, 4))
    with torch.no_grad():
        dead[0].weight.zero_()
        dead[0].bias.zero_()
    layer = lsuv_(dead, x32, orthogonal_init=False).layers[0]
    assert (layer.converged, layer.note, layer.iterations, layer.scale) == (False, "output variance is 0", 0, 1.0)


def test_report_to_dict_markdown_and_rich(x32):
    torch.manual_seed(0)
    report = lsuv_(Reversed(), x32, generator=torch.Generator().manual_seed(0))
    d = json.loads(json.dumps(report.to_dict()))
    assert d["method"] == "lsuv" and d["tol"] == TOL and d["max_iter"] == 10 and d["converged"] is True
    assert [x["name"] for x in d["layers"]] == ["a", "b", "c"]
    assert set(d["layers"][0]) == {
        "name",
        "order",
        "kind",
        "calls",
        "orthogonal",
        "initial_std",
        "final_std",
        "scale",
        "iterations",
        "converged",
        "note",
    }
    md = report.to_markdown()
    assert md.splitlines()[0] == "| order | layer | type | initial std | scale | iterations | final std | converged |"
    assert md.splitlines()[2].startswith("| 0 | a | Linear | ")
    console = Console(record=True, width=140)
    console.print(report)
    text = console.export_text()
    assert "LSUV, in execution order" in text and "3 layers calibrated in execution order" in text


def test_markdown_golden():
    layers = (
        LSUVLayer("enc", 0, "Conv2d", 2, True, 0.25, 1.004, 3.9841, 2, True),
        LSUVLayer("head", 1, "Linear", 1, False, 0.0, 0.0, 1.0, 0, False, "output variance is 0"),
    )
    assert LSUVReport(layers, 1.0, 0.01, 10, ("spare",)).to_markdown() == (
        "| order | layer | type | initial std | scale | iterations | final std | converged |\n"
        "|---:|---|---|---:|---:|---:|---:|---|\n"
        "| 0 | enc | Conv2d x2 | 0.25 | 3.984 | 2 | 1.004 | yes |\n"
        "| 1 | head | Linear | 0 | 1 | 0 | 0 | no (output variance is 0) |\n"
        "\n"
        "LSUV: 1 of 2 layers did not converge (head); |var - 1^2| < 0.01, at most 10 rescalings\n"
        "Not run in the forward, not calibrated: spare\n"
    )


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"tol": 0}, ValueError, r"tol \(on the variance\) must be a finite number > 0, got tol=0"),
        ({"tol": float("nan")}, ValueError, r"got tol=nan"),
        ({"tol": True}, ValueError, r"got tol=True"),
        ({"tol": 1.5}, ValueError, r"tol must be below target_std\*\*2 .* got tol=1.5 with target_std=1.0"),
        ({"max_iter": 0}, ValueError, r"max_iter must be an int >= 1, got max_iter=0"),
        ({"target_std": -1.0}, ValueError, r"target_std must be a finite number > 0, got target_std=-1.0"),
        ({"orthogonal_init": "yes"}, TypeError, r"orthogonal_init must be True or False, got orthogonal_init='yes'"),
        ({"train": 1}, TypeError, r"train must be True or False, got train=1"),
        ({"generator": 5}, TypeError, r"generator must be None, a torch.Generator or a fanin.Stream, got generator=5"),
        ({"layers": "all"}, ValueError, r"layers must be None, 'marked', .* got layers='all'"),
        ({"layers": 3}, TypeError, r"layers must be None, 'marked', .* got layers=3 \(int\)"),
        ({"layers": ["bb"]}, LSUVError, r"Unknown layer 'bb'. Did you mean 'b'\? Accepted: 'a', 'b', 'c'."),
        ({"layers": [nn.Linear(2, 2)]}, LSUVError, r"layers must name submodules of the model \(or be them\)"),
        ({"layers": []}, LSUVError, r"layers is empty: nothing to calibrate"),
        ({"layers": lambda n, m: False}, LSUVError, r"the layers predicate selected none of the modules of Reversed"),
        ({"layers": "marked"}, LSUVError, r"layers='marked' but no weight of Reversed carries the mark"),
    ],
)
def test_argument_errors(x32, kwargs, error, message):
    with pytest.raises(error, match=message):
        lsuv_(Reversed(), x32, **kwargs)


def test_model_and_batch_errors(x32):
    with pytest.raises(TypeError, match=r"lsuv_ calibrates a torch.nn.Module, got model=3 \(int\)"):
        lsuv_(3, x32)
    with pytest.raises(TypeError, match=r"batch must be a tensor .* got batch=int"):
        lsuv_(Reversed(), 3)
    with pytest.raises(LSUVError, match=r"Sequential has no layer LSUV calibrates by default \(nn.Linear, nn.Conv"):
        lsuv_(nn.Sequential(nn.ReLU()), x32)
    with pytest.raises(LSUVError, match=r"layer '0' \(ReLU\) has no floating-point weight \(weight=NoneType\)"):
        lsuv_(nn.Sequential(nn.ReLU()), x32, layers=["0"])

    class Skips(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(32, 4)

        def forward(self, x):
            return x

    with pytest.raises(LSUVError, match=r"none of the 1 selected layers ran in the forward of Skips \(selected: fc\)"):
        lsuv_(Skips(), x32)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda(x32):
    torch.manual_seed(0)
    model = Reversed().cuda()
    x = x32.cuda()
    state = torch.cuda.get_rng_state()
    report = lsuv_(model, x, generator=torch.Generator(device="cuda").manual_seed(0))
    assert report.converged and torch.equal(torch.cuda.get_rng_state(), state)
    assert max(abs(v - 1) for v in output_variances(model, x).values()) < TOL


def test_repr_is_one_short_line():
    layers = (
        LSUVLayer("enc", 0, "Conv2d", 2, True, 0.25, 1.004, 3.9841, 2, True),
        LSUVLayer("head", 1, "Linear", 1, False, 0.0, 0.0, 1.0, 0, False, "output variance is 0"),
    )
    assert repr(LSUVReport(layers, 1.0, 0.01, 10, ("spare",))) == (
        "<LSUVReport: 2 layers calibrated, 1 not converged, target std 1, 1 unused>"
    )
    one = LSUVReport(layers[:1], 0.5, 0.01, 10)
    assert repr(one) == "<LSUVReport: 1 layer calibrated, all converged, target std 0.5>"
