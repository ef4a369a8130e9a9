import dataclasses
import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fanin.activations import UnknownActivationError
from fanin.diagnostics import (
    DECAY_BELOW,
    DEMO_CONFIGS,
    EXPLODE_ABOVE,
    VANISH_BELOW,
    DepthConfig,
    demo_configs,
    run_depth_experiment,
)
from fanin.errors import UnknownSchemeError


@pytest.fixture(scope="module")
def runs():
    return {config.name: run_depth_experiment(config) for config in DEMO_CONFIGS}


def test_demo_configs():
    assert [c.name for c in DEMO_CONFIGS] == [
        "normal",
        "scaled-normal",
        "tanh-normal",
        "tanh-xavier",
        "relu-kaiming",
        "relu-default",
    ]
    assert [c.scheme for c in DEMO_CONFIGS] == [
        "normal(std=1.0)",
        "normal(std=0.0625)",
        "normal(std=1.0)",
        "xavier_uniform(gain=1.6666666666666667)",
        "kaiming_normal(nonlinearity='relu')",
        "kaiming_uniform(a=sqrt(5))",
    ]
    assert [c.activation for c in DEMO_CONFIGS] == [None, None, "tanh", "tanh", "relu", "relu"]
    assert all((c.depth, c.width, c.batch, c.seed) == (100, 256, 16, 1) for c in DEMO_CONFIGS)
    assert demo_configs(width=64)[1].scheme == "normal(std=0.125)"


def test_seed_figures_of_the_document_exactly(runs):
    assert runs["normal"].stds[0] == 15.959932327270508
    assert runs["normal"].stds[1] == 256.6237487792969
    assert runs["scaled-normal"].stds[0] == 0.9974957704544067
    assert runs["scaled-normal"].stds[1] == 1.0024365186691284
    assert runs["scaled-normal"].stds[99] == pytest.approx(1.22, abs=0.005)


def test_overflow_layer_of_normal(runs):
    run = runs["normal"]
    # torch's float32 std returns NaN from layer 30, where the activations are still finite (their
    # squares pass float32's range inside torch's reduction); the activations overflow at layer 31.
    # The document saw NaN at layer 31; torch 2.13 on this CPU reports it at 30.
    assert run.nonfinite_layer in (30, 31)
    assert run.overflow_layer == 31
    layer = run.nonfinite_layer
    assert math.isfinite(run.stds[layer - 1]) and run.stds[29] > 1e36
    assert all(math.isnan(s) for s in run.stds[layer:])
    assert run.explode_layer == 2  # 4107 > 1e3


def test_verdicts_of_the_six_runs(runs):
    assert {name: run.verdict for name, run in runs.items()} == {
        "normal": "exploding",
        "scaled-normal": "stable",
        "tanh-normal": "saturating",
        "tanh-xavier": "stable",
        "relu-kaiming": "stable",
        "relu-default": "vanishing",
    }


def test_tanh_with_unit_normal_saturates_rather_than_vanishes(runs):
    # The document calls this run vanishing; the forward std in fact stays near 0.976 while most
    # units sit in tanh's flat tails.
    run = runs["tanh-normal"]
    assert all(0.95 < s < 1.0 for s in run.stds)
    assert run.vanish_layer is None
    assert sum(run.saturated) / len(run.saturated) > 0.8
    assert sum(runs["tanh-xavier"].saturated) / 100 < 0.05


def test_tanh_with_scaled_normal_vanishes_slowly():
    # tanh + N(0, 1/n): the decay is algebraic (q -> q - 2q^2 per layer for small q), so the std
    # never reaches VANISH_BELOW in 100 layers; DECAY_BELOW catches it.
    run = run_depth_experiment(DepthConfig("tanh-scaled-normal", "tanh", "normal(std=0.0625)"))
    assert run.stds[:2] == (0.6273701786994934, 0.48910173773765564)
    assert run.vanish_layer is None and VANISH_BELOW < run.stds[-1] < DECAY_BELOW
    assert run.verdict == "vanishing"
    assert run.reason == (
        "std decays to 0.0821 after the last layer, below 0.1 (a tenth of the input's std), though never below 0.001"
    )


def test_relu_statistics(runs):
    kaiming, default = runs["relu-kaiming"], runs["relu-default"]
    assert all(0.4 < z < 0.6 for z in kaiming.zeros)
    assert kaiming.saturated is None and runs["normal"].zeros is None
    assert default.vanish_layer == 7
    assert default.stds[6] >= VANISH_BELOW > default.stds[7]
    assert 0 < default.stds[99] < 1e-38  # about x0.41 a layer, down to float32's subnormals


def test_thresholds_are_those_documented(runs):
    for run in runs.values():
        finite = [s for s in run.stds if math.isfinite(s)]
        if run.verdict in ("stable", "saturating"):
            assert all(VANISH_BELOW <= s <= EXPLODE_ABOVE for s in finite)
            assert run.stds[-1] >= DECAY_BELOW


def _document_procedure(init, activation=None, linear=F.linear, *, n=256, depth=100, batch=16):
    """The document's code: seed everything with 1, build nn.Linear layers, re-init, draw the input."""
    random.seed(1)
    np.random.seed(1)
    torch.manual_seed(1)
    layers = [nn.Linear(n, n, bias=False) for _ in range(depth)]
    for layer in layers:
        init(layer.weight.data)
    x = torch.randn((batch, n))
    stds = []
    with torch.no_grad():
        for layer in layers:
            x = linear(x, layer.weight)
            if activation is not None:
                x = activation(x)
            stds.append(x.std().item())
            if not torch.isfinite(x).all():
                break
    return stds


def _float64_linear(x, w):
    return (x.double() @ w.double().T).float()


def _same_stds(a, b):
    return len(a) == len(b) and all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


def test_same_draws_as_the_documents_global_seeding(runs):
    tanh_gain = nn.init.calculate_gain("tanh")
    doc = _document_procedure(lambda w: nn.init.xavier_uniform_(w, gain=tanh_gain), torch.tanh, _float64_linear)
    assert tuple(doc) == runs["tanh-xavier"].stds
    doc = _document_procedure(nn.init.normal_, linear=_float64_linear)
    assert len(doc) == 32  # stopped at the overflow of layer 31
    assert _same_stds(doc, runs["normal"].stds[:32])


def test_float32_accumulation_is_what_nn_linear_computes():
    config = dataclasses.replace(DEMO_CONFIGS[4], accumulate="float32")
    doc = _document_procedure(lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), torch.relu)
    assert run_depth_experiment(config).stds == tuple(doc)


def test_global_state_is_not_touched():
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    run_depth_experiment(dataclasses.replace(DEMO_CONFIGS[0], depth=2))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.get_num_threads() == threads


def test_to_dict_is_json_ready(runs):
    data = runs["normal"].to_dict()
    assert data["stds"][:2] == [15.959932327270508, 256.6237487792969]
    assert data["stds"][30] is None and data["saturated"] is None
    assert data["config"]["scheme"] == "normal(std=1.0)"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"depth": 0}, ValueError, r"depth must be an int >= 1, got depth=0"),
        ({"width": 2.5}, ValueError, r"width must be an int >= 1, got width=2.5"),
        ({"batch": 1, "width": 1}, ValueError, r"x.std\(\) needs 2 or more values"),
        ({"accumulate": "float16"}, ValueError, r"Unknown accumulate 'float16'"),
        ({"scheme": "kaimin_normal"}, UnknownSchemeError, r"Did you mean 'kaiming_normal'"),
        ({"activation": "rellu"}, UnknownActivationError, r"Unknown activation 'rellu'. Did you mean 'relu'"),
        ({"seed": "1"}, TypeError, r"seed must be an int"),
    ],
)
def test_config_errors(kwargs, error, match):
    base = {"name": "x", "activation": "relu", "scheme": "normal"}
    with pytest.raises(error, match=match):
        DepthConfig(**(base | kwargs))


def test_run_needs_a_config():
    with pytest.raises(TypeError, match="takes a DepthConfig"):
        run_depth_experiment({"name": "x"})
