"""fanin.audit over a source: the report record (repr, str, skipped with reasons, tied names),
training alarms controlled over all tensors, pooled small tensors, the summary by role."""

import math

import pytest
import torch

import fanin
from fanin.auditing import AuditReport, audit


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.LayerNorm(128), torch.nn.Linear(128, 32))


def test_repr_is_one_line_and_str_is_the_table():
    report = audit(_mlp())
    assert repr(report) == "<AuditReport 'Sequential': 6 tensors, 6 fresh, 0 look trained>"
    text = str(report)
    assert text.replace("\n  ", " ").splitlines()[0] == report.headline  # wrapped at 80 columns, indented
    assert "Summary by role" in text and "0.weight" in text and "kaiming_uniform(a=sqrt(5))" in text
    assert "\x1b" not in text  # plain text, no terminal codes


def test_headline_counts_families_and_the_level():
    report = audit(_mlp())
    assert report.headline == (
        "6 tensors: 6 fresh (4 uniform, 2 constant); no evidence of training (family-wise level 0.01)"
    )


def test_skipped_tensors_keep_their_reason_and_tied_ones_are_audited_once():
    torch.manual_seed(0)
    emb = torch.nn.Embedding(100, 16)
    state = {
        "wte.weight": emb.weight.detach(),
        "lm_head.weight": emb.weight.detach(),
        "steps": torch.tensor(3),
        "packed": torch.zeros(4, 4, dtype=torch.uint8).view(torch.float4_e2m1fn_x2),
    }
    report = audit(state)
    assert [r.name for r in report.records] == ["wte.weight"]
    assert report.tied == {"lm_head.weight": "wte.weight"}
    assert report.record("wte.weight").tied == ("lm_head.weight",)
    assert report.skipped["steps"] == "not floating point (dtype=int64)"
    assert report.skipped["packed"] == "dtype=float4_e2m1fn_x2, which torch cannot convert to float64"
    assert report.to_dict()["skipped"] == report.skipped
    assert "1 tied, 2 skipped" in report.headline


def test_record_lookup_error_names_the_tensor():
    with pytest.raises(KeyError, match=r"Unknown tensor '0.wieght'.*Did you mean '0.weight'"):
        audit(_mlp()).record("0.wieght")
    with pytest.raises(
        ValueError,
        match=r"alpha is the family-wise level of the training alarms, in \(0, 1\); "
        r"got alpha=0",
    ):
        audit(_mlp(), alpha=0)


def test_a_checkpoint_of_a_thousand_fresh_tensors_raises_no_alarm():
    g = torch.Generator().manual_seed(11)
    schemes = [
        "kaiming_uniform(a=sqrt(5))",
        "normal(std=0.02)",
        "xavier_normal",
        "trunc_normal(std=0.02)",
        "keras.glorot_uniform",
        "jax.lecun_normal",
        "orthogonal",
    ]
    shapes = [(48, 32), (16, 8, 3, 3), (64, 64), (96, 24)]
    state = {}
    for i in range(1000):
        w = torch.empty(shapes[i % len(shapes)])
        fanin.get(schemes[(i // len(shapes)) % len(schemes)])(w, generator=g)
        state[f"layer{i}.weight"] = w
    report = audit(state)
    assert report.trained == () and len(report.records) == 1000


def test_holm_uses_the_checkpoints_size():
    # A weak signal: alone (one tensor, level 0.01) it is an alarm; among 1,000 tensors it is not.
    g = torch.Generator().manual_seed(5)
    w = torch.randn(64, 256, generator=g) * 0.02
    w[:8] *= 1.15  # a few output units grown (evidence p about 1e-3)
    alone = audit({"w": w})
    crowd = {"w": w} | {f"x{i}": torch.randn(64, 256, generator=g) * 0.02 for i in range(400)}
    p = alone.record("w").inference.evidence_p
    assert p is not None and p < 0.01 and alone.record("w").inference.trained
    assert p > 0.01 / 401 and not audit(crowd).record("w").inference.trained


def test_small_biases_are_pooled():
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(64, 32) for _ in range(12)])
    report = audit(model)
    bias = report.record("3.bias")
    assert bias.pooled == "Linear(64->32) biases"
    assert bias.inference.matches[0].label == "kaiming_uniform(a=sqrt(5)) at the layer weight's fans"
    assert bias.inference.family == "uniform" and bias.inference.confidence != "too few values"
    (pool,) = [p for p in report.pools if p.label == "Linear(64->32) biases"]
    assert pool.numel == 12 * 32 and len(pool.members) == 12 and pool.homogeneity_p >= 1e-3
    assert "pooled with 11 other Linear(64->32) biases (384 values" in bias.inference.reason


def test_pooling_refuses_heterogeneous_tensors():
    torch.manual_seed(0)
    layers = [torch.nn.Linear(64, 32) for _ in range(6)]
    for layer in layers[:3]:
        torch.nn.init.uniform_(layer.bias, -1.0, 1.0)  # far wider than 1/sqrt(64)
    report = audit(torch.nn.Sequential(*layers))
    assert all(r.pooled is None for r in report.records if r.name.endswith("bias"))


def test_norm_weights_that_spread_are_trained():
    torch.manual_seed(0)
    norm = torch.nn.LayerNorm(32)
    model = torch.nn.Sequential(torch.nn.Linear(32, 32), norm)
    with torch.no_grad():
        norm.weight.add_(0.05 * torch.randn(32))
    report = audit(model)
    r = report.record("1.weight")
    assert r.inference.trained and "norm layer" in r.inference.reason
    assert r.role == "norm"
    assert not report.record("0.weight").inference.trained


def test_summary_by_role_names_gpt2_residual_scaling():
    transformers = pytest.importorskip("transformers")
    import warnings

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = transformers.GPT2LMHeadModel(
            transformers.GPT2Config(
                n_embd=96, n_layer=6, n_head=2, vocab_size=300, n_positions=64, bos_token_id=0, eos_token_id=0
            )
        )
    report = audit(model)
    groups = {(g.role, g.patterns): g for g in report.groups}
    c_proj = groups[("attention", ("transformer.h.*.attn.c_proj.weight",))]
    assert c_proj.count == 6 and c_proj.relation.startswith("= 0.02/sqrt(2·6): residual-branch scaling")
    target = 0.02 / math.sqrt(12)
    assert c_proj.description.startswith("N(0, ") and abs(float(c_proj.description[5:-1]) / target - 1) < 0.05
    c_attn = groups[("attention", ("transformer.h.*.attn.c_attn.weight",))]
    assert (c_attn.count, c_attn.description, c_attn.names[0]) == (6, "N(0, 0.02)", "normal(std=0.02)")
    assert (
        groups[
            ("norm", ("transformer.h.*.ln_1.weight", "transformer.h.*.ln_2.weight", "transformer.ln_f.weight"))
        ].names[0]
        == "ones"
    )


def test_consensus_names_the_fan_mode_a_model_shares():
    torch.manual_seed(0)
    convs = [torch.nn.Conv2d(16, 128, 3), torch.nn.Conv2d(128, 128, 3), torch.nn.Conv2d(128, 256, 3)]
    model = torch.nn.Sequential(*convs)
    for m in convs:
        torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    report = audit(model)
    # 128 -> 128 has fan_in == fan_out: kaiming_normal is the same distribution there; the other
    # convs single out fan_out, so every conv is named so.
    assert {report.record(f"{i}.weight").inference.matches[0].scheme for i in range(3)} == {
        "kaiming_normal(mode='fan_out')"
    }


def test_to_dict_is_json():
    import json

    data = json.loads(json.dumps(audit(_mlp()).to_dict(), allow_nan=False))
    assert data["records"][0]["inference"]["matches"][0]["scheme"] == "kaiming_uniform(a=sqrt(5))"
    assert data["groups"] and data["alpha"] == 0.01


def test_report_is_plain_data():
    assert AuditReport("s", "n", ()).headline == "0 tensors: 0 fresh; no evidence of training (family-wise level 0.01)"


def test_unknown_tensors_are_counted_apart_from_fresh_ones():
    # Two distinct values in a 64x64 matrix: no continuous initialization fits, so it is neither
    # fresh nor trained; one tensor is "1 tensor".
    signs = torch.ones(64, 64, dtype=torch.float64)
    signs[::2] *= -1
    report = fanin.audit({"signs": signs})
    assert report.headline == (
        "1 tensor: 0 fresh, 1 unknown (no initialization fits); no evidence of training (family-wise level 0.01)"
    )
    assert repr(report) == "<AuditReport 'state_dict': 1 tensor, 0 fresh, 1 unknown, 0 look trained>"
