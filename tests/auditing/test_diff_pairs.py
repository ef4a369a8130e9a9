"""``fanin.diff`` on models fanin did not initialize: seed pairs of PyTorch's default init are the
same initialization, GPT-2's init against a BERT-style one differs exactly in the depth-scaled
projections, and one re-initialized layer is pinpointed."""

import math
import warnings

import pytest
import torch
from torch import nn

import fanin


def _mlp():
    return nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))


def _cnn():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, groups=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def _transformer():
    return nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)


PAIRS = 60  # per architecture: 180 seed pairs in all


def test_seed_pairs_of_default_init_are_the_same_initialization():
    # Each pair: the same architecture built under two seeds. "different" anywhere in a pair is a
    # false alarm, at most alpha = 0.001 per pair by Holm's procedure; >= 99% of pairs must pass.
    failing, compared = [], 0
    for build in (_mlp, _cnn, _transformer):
        for k in range(PAIRS):
            torch.manual_seed(1000 + 2 * k)
            a = build()
            torch.manual_seed(1001 + 2 * k)
            b = build()
            report = fanin.diff(a, b)
            compared += len(report.tensors)
            assert report.same_architecture and not report.skipped
            # every continuous tensor was tested, never called the same or different by names
            assert all(t.status in ("identical", "same distribution", "different") for t in report.tensors)
            if report.any_different:
                failing.append(
                    (
                        build.__name__,
                        k,
                        [(t.name, t.test, t.p_value) for t in report.tensors if t.status == "different"],
                    )
                )
    pairs = 3 * PAIRS
    assert pairs >= 100 and compared >= 900
    assert pairs - len(failing) >= math.ceil(0.99 * pairs), failing


def _gpt2(seed):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers warns about tiny vocabularies vs special token ids
        # n_layer=3: c_proj's std 0.02/sqrt(6) = 0.0082, 0.41x the others'; 64x64 c_proj has 4,096
        # values, whose scale test resolves a few percent.
        return GPT2LMHeadModel(
            GPT2Config(n_embd=64, n_layer=3, n_head=2, vocab_size=128, n_positions=32, bos_token_id=0, eos_token_id=0)
        )


def _bert_style(model, seed):
    """BERT's _init_weights on any model: N(0, 0.02) for every weight matrix and embedding, zero
    biases, LayerNorm ones and zeros; no depth scaling."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".ln_" in name or name.startswith("transformer.ln_f"):
                p.fill_(1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("bias"):
                p.zero_()
            else:
                p.normal_(0.0, 0.02, generator=g)
    return model


def test_gpt2_against_bert_style_differs_exactly_in_the_depth_scaled_projections():
    pytest.importorskip("transformers")  # the "test" extra
    gpt2 = _gpt2(0)
    bert = _bert_style(_gpt2(1), seed=7)
    report = fanin.diff(gpt2, bert)
    different = {t.name for t in report.tensors if t.status == "different"}
    scaled = {n for n, _ in gpt2.named_parameters() if n.endswith("c_proj.weight")}
    assert len(scaled) == 6 and different == scaled, report.headline
    for t in report.tensors:
        if t.name in scaled:
            # b's std is sqrt(2 * 3) times a's, found by the scale test (not by names)
            assert t.test == "scale" and t.scale_ratio is not None and abs(t.scale_ratio / math.sqrt(6) - 1) < 0.1, t
            assert t.family_a == t.family_b == "normal"
    # tied lm_head, identical zero biases and LayerNorms, the other N(0, 0.02) tensors the same
    assert report.tied == {"lm_head.weight": "transformer.wte.weight"}
    counts = report.counts
    assert counts["different"] == 6 and counts["identical"] > 0 and counts["same distribution"] >= 8
    assert report.headline.startswith("same architecture (") and "different initialization for 6 of" in report.headline


def test_one_reinitialized_layer_is_pinpointed():
    torch.manual_seed(3)
    a = nn.Sequential(*(nn.Linear(128, 128) for _ in range(6)))
    torch.manual_seed(4)
    layers = [nn.Linear(128, 128) for _ in range(6)]
    b = nn.Sequential(*layers)
    with torch.no_grad():
        nn.init.xavier_uniform_(layers[4].weight)  # std sqrt(2/256) against 1/sqrt(3*128): sqrt(3) times
        nn.init.normal_(layers[4].bias, std=0.01)
    report = fanin.diff(a, b)
    assert {t.name for t in report.tensors if t.status == "different"} == {"4.weight", "4.bias"}, report.headline
    w = next(t for t in report.tensors if t.name == "4.weight")
    assert w.scale_ratio is not None and abs(w.scale_ratio - math.sqrt(3 * 128 / 128)) < 0.05
    assert w.family_a == w.family_b == "uniform"
    assert "4.weight, 4.bias" in report.headline
