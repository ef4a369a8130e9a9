"""Models fanin did not write: transformers' BERT, GPT-2 and Llama (their own _init_weights), built
from tiny configs without downloading weights, and PyTorch built-ins under their default init."""

import math

import pytest
import torch

import fanin

transformers = pytest.importorskip("transformers")  # the "test" extra; skipped where it is absent


@pytest.fixture(scope="module")
def models():
    import warnings

    from transformers import (
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
    )

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers warns about tiny vocabularies vs special token ids
        gpt2 = GPT2LMHeadModel(
            GPT2Config(n_embd=64, n_layer=3, n_head=2, vocab_size=300, n_positions=64, bos_token_id=0, eos_token_id=0)
        )
        bert = BertModel(
            BertConfig(
                hidden_size=64,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=128,
                vocab_size=300,
                max_position_embeddings=64,
            )
        )
        llama = LlamaForCausalLM(
            LlamaConfig(
                hidden_size=64,
                num_hidden_layers=1,
                num_attention_heads=2,
                num_key_value_heads=2,
                intermediate_size=128,
                vocab_size=300,
                bos_token_id=0,
                eos_token_id=0,
            )
        )
    return {"gpt2": (gpt2, fanin.audit(gpt2)), "bert": (bert, fanin.audit(bert)), "llama": (llama, fanin.audit(llama))}


def _std_of(record):
    # The inferred scale (fitted std) against _init_weights' formula, within 4 standard errors.
    return record.inference.distribution["std"]


@pytest.mark.parametrize("name", ["gpt2", "bert", "llama"])
def test_init_weights_is_recovered(models, name):
    model, report = models[name]
    n_layer = getattr(model.config, "n_layer", None)
    for r in report.records:
        i = r.inference
        assert not i.trained, r.name
        if r.summary.min == r.summary.max:
            # LayerNorm/RMSNorm weights ones, biases zeros (_init_weights).
            expected = "ones" if "weight" in r.name else "zeros"
            assert i.family == "constant" and i.matches[0].scheme == expected, r.name
            continue
        expected_std = 0.02
        if name == "gpt2" and r.name.endswith("c_proj.weight"):
            assert n_layer is not None
            expected_std = 0.02 / math.sqrt(2 * n_layer)  # GPT-2's scaled residual projections
        assert i.family == "normal", (r.name, i.reason)
        n = math.prod(r.shape)
        assert abs(_std_of(r) / expected_std - 1) < 4 / math.sqrt(2 * n), r.name
        assert abs(i.distribution["mean"]) < 4 * expected_std / math.sqrt(n), r.name
        # The named match is the fitted normal(std=...) (a formula of the shape never gives 0.02).
        first = fanin.get(i.matches[0].scheme)
        assert first.name == "normal" and i.matches[0].fitted, (r.name, i.matches[:2])
        assert abs(first.arguments["std"] / expected_std - 1) < 8 / math.sqrt(2 * n), (r.name, i.matches[:2])


def test_gpt2_conv1d_is_audited_in_its_in_out_layout(models):
    _, report = models["gpt2"]
    r = report.record("transformer.h.0.mlp.c_fc.weight")
    assert r.module_type == "Conv1D" and r.layout == "keras" and r.shape == (64, 256)
    assert r.fans == (64, 256)


def test_bert_padding_row(models):
    _, report = models["bert"]
    r = report.record("embeddings.word_embeddings.weight")
    assert "row(s) 0 all zero" in r.inference.reason
    assert r.inference.matches[0].scheme == "normal(std=0.02)"


def test_pytorch_builtins_default_init():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(16, 32, 3),
        torch.nn.BatchNorm2d(32),
        torch.nn.Flatten(),
        torch.nn.Linear(128, 256),
        torch.nn.LayerNorm(256),
        torch.nn.Embedding(512, 64),
    )
    report = fanin.audit(model)
    labels = {r.name: r.inference.label for r in report.records}
    assert labels["0.weight"] == labels["3.weight"] == "kaiming_uniform(a=sqrt(5))"
    assert labels["0.bias"] == labels["3.bias"] == "kaiming_uniform(a=sqrt(5)) at the layer weight's fans"
    assert labels["1.weight"] == labels["4.weight"] == labels["1.running_var"] == "ones"
    assert labels["1.bias"] == labels["4.bias"] == labels["1.running_mean"] == "zeros"
    assert labels["5.weight"] == "normal"
    # skipped maps each name to its reason; the headline states the family-wise level it judged at.
    assert list(report.skipped) == ["1.num_batches_tracked"]
    assert "dtype=int64" in report.skipped["1.num_batches_tracked"]
    assert "no evidence of training (family-wise level 0.01)" in report.headline


def test_fanin_rules_initialized_model_is_audited():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(128, 256), torch.nn.Linear(256, 64))
    for layer in model:
        fanin.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
        fanin.init.zeros_(layer.bias)
    report = fanin.audit(model)
    matches = report.record("0.weight").inference.matches
    # leaky_relu with a=0 (the default) has relu's gain: the same distribution as nonlinearity='relu',
    # and one entry's equal variants are reported once, by the shortest spec.
    assert matches[0].scheme == "kaiming_normal(mode='fan_out')"
    assert matches[0].description == f"N(0, {math.sqrt(2 / 256):.4g})"
    assert report.record("0.bias").inference.label == "zeros"
