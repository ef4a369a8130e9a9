"""Fused and stacked parameters: per-block fans and schemes, the whole tensor's stream, detection, errors."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats
from torch import nn

import fanin
from fanin.rng import Stream
from fanin.rng.stream import canonical_name
from fanin.rules import Role, Rule, RuleError
from fanin.rules.blocks import BlockError, BoxStream, Layout, blocked, detect, layout_of


def test_fused_qkv_draws_each_block_as_torch_draws_that_block():
    e = 8
    mha = nn.MultiheadAttention(e, 2)
    rules = [Rule("in_proj_weight", "xavier_uniform", blocks=3)]
    p = fanin.plan(mha, rules, leftovers="keep")
    entry = p["in_proj_weight"]
    assert (entry.fans.fan_in, entry.fans.fan_out) == (e, e)  # one (E, E) projection, not (3E, E)
    fanin.apply(mha, p, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    reference = torch.empty(3 * e, e)
    for i in range(3):
        torch.nn.init.xavier_uniform_(reference[i * e : (i + 1) * e], generator=g)
    assert torch.equal(mha.in_proj_weight.detach(), reference)
    assert mha.in_proj_weight.abs().max() <= math.sqrt(6 / (e + e))


def test_blocks_draw_from_the_whole_tensors_stream_at_their_own_indices():
    lin = nn.Linear(4, 12)
    fanin.apply(lin, [Rule("weight", "xavier_normal", blocks=(8, 4)), Rule("bias", "zeros")], seed=5)
    stream = Stream(5, canonical_name("weight"))
    # block 0: (8, 4) -> std sqrt(2/12); block 1: (4, 4) -> std sqrt(2/8); same unit values as the whole tensor's stream
    whole0 = stream.normal_(torch.empty(12, 4), 0.0, math.sqrt(2 / 12))
    whole1 = stream.normal_(torch.empty(12, 4), 0.0, math.sqrt(2 / 8))
    assert torch.equal(lin.weight[:8].detach(), whole0[:8])
    assert torch.equal(lin.weight[8:].detach(), whole1[8:])


def test_box_stream_composes_and_squeezes():
    s = Stream(1, "w")
    full = s.uniform_(torch.empty(4, 6), -1.0, 1.0)
    inner = BoxStream(BoxStream(s, (4, 6), (2, 0)), (2, 6), (1, 3))
    assert torch.equal(inner.uniform_(torch.empty(1, 3), -1.0, 1.0), full[3:4, 3:])
    row = BoxStream(s, (4, 6), (1, 0), squeeze=True).uniform_(torch.empty(6), -1.0, 1.0)
    assert torch.equal(row, full[1])
    with pytest.raises(BlockError, match="a box inside a squeezed box is not supported"):
        BoxStream(BoxStream(s, (4, 6), (1, 0), squeeze=True), (6,), (0,))


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_stacked_experts_take_fans_per_expert(layout):
    experts, d_in, d_out = 8, 48, 16

    class MoE(nn.Module):
        def __init__(self):
            super().__init__()
            shape = (experts, d_out, d_in) if layout == "out_in" else (experts, d_in, d_out)
            self.w = nn.Parameter(torch.empty(shape))

    model = MoE()
    p = fanin.apply(model, [Rule("w", "kaiming_uniform(a=sqrt(5))", fans=f"experts:{layout}")], seed=0)
    assert (p["w"].fans.fan_in, p["w"].fans.fan_out) == (d_in, d_out)
    bound = 1 / math.sqrt(d_in)  # kaiming_uniform(a=√5): gain √(1/3) · √(3/fan_in)
    w = model.w.detach()
    assert w.abs().max() <= bound
    # every expert is U(-bound, bound): KS per expert at 1e-3, Bonferroni over the experts
    for e in range(experts):
        pv = stats.kstest(w[e].flatten().double().numpy(), "uniform", args=(-bound, 2 * bound)).pvalue
        assert pv > 1e-3 / experts
    # against the storage fans, torch would have used fan_in = d_out * d_in (out_in) or d_in * d_out: far too small
    assert w.abs().max() > 1 / math.sqrt(d_in * d_out) * 2


def test_gate_blocks_and_experts_keep_orthogonality_per_block():
    lstm = nn.LSTM(5, 6)
    fanin.apply(lstm, [Rule(Role("recurrent_weight"), "orthogonal", blocks=4), ("*", "zeros")], seed=1)
    w = lstm.weight_hh_l0.detach().double()
    for g in range(4):
        block = w[6 * g : 6 * (g + 1)]
        assert torch.allclose(block @ block.T, torch.eye(6, dtype=torch.float64), atol=1e-5)
    experts = nn.ParameterDict({"w": nn.Parameter(torch.empty(3, 5, 5))})
    fanin.apply(
        experts, [Rule("w", "orthogonal(gain=2.0)", fans="experts:in_out")], generator=torch.Generator().manual_seed(0)
    )
    for e in range(3):
        m = experts["w"][e].detach().double()
        assert torch.allclose(m.T @ m, 4 * torch.eye(5, dtype=torch.float64), atol=1e-4)


def test_per_block_schemes_and_statistics():
    from fanin.planning.stats import block_statistics

    scheme = blocked("xavier_uniform", Layout.split((4, 4, 4), ["xavier_uniform", "xavier_uniform", "zeros"]))
    w = scheme(torch.empty(12, 4), generator=torch.Generator().manual_seed(0))
    assert torch.count_nonzero(w[8:]) == 0 and torch.count_nonzero(w[:8]) == 32
    per_block = block_statistics(scheme, (12, 4))
    assert [rows for rows, _, _ in per_block] == [(0, 4), (4, 8), (8, 12)]
    assert per_block[0][2].high == pytest.approx(math.sqrt(6 / 8), rel=1e-15)
    assert per_block[2][2].distribution == "constant"


def test_detect_common_layouts():
    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(8, 24)
            self.proj = nn.Linear(8, 8)

    class Experts(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_up_proj = nn.Parameter(torch.empty(4, 8, 32))
            self.down_proj = nn.Parameter(torch.empty(4, 16, 8))

    model = nn.ModuleDict(
        {"attn": Attention(), "mha": nn.MultiheadAttention(8, 2), "gru": nn.GRU(3, 4), "experts": Experts()}
    )
    found = {d.name: (str(d.layout), d.evidence) for d in detect(model)}
    assert found["attn.qkv.weight"][0] == "split(3)"
    assert found["mha.in_proj_weight"] == ("split(3)", "nn.MultiheadAttention stacks q, k, v in in_proj_weight")
    assert found["gru.weight_hh_l0"] == ("split(3)", "GRU stacks 3 gates on dim 0")
    assert found["experts.gate_up_proj"][0] == "experts(in_out)"
    assert "attn.proj.weight" not in found


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: fanin.plan(nn.Linear(4, 12), [Rule("weight", "normal", blocks=5)], leftovers="keep"),
            RuleError,
            r"Layout split\(5\) cuts dim 0 into 5 equal blocks, but the tensor has shape=\(12, 4\): 12 is not a "
            r"multiple of 5",
        ),
        (lambda: Rule("weight", "normal", blocks=3, fans="experts"), RuleError, r"give blocks= or fans=, not both"),
        (lambda: Rule("weight", "keep", blocks=3), RuleError, r"blocks=/fans= apply to a scheme, not to keep"),
        (lambda: Rule("weight", "normal", fans="stacked"), RuleError, r"Cannot read block layout 'stacked'"),
        (lambda: Layout.experts("oi"), BlockError, r"Unknown expert layout 'oi'"),
        (
            lambda: Layout.split(2, ["normal"]),
            BlockError,
            r"Layout.split needs one scheme per block: 2 block\(s\), got 1 scheme\(s\)",
        ),
        (lambda: Layout.split((3, 0)), BlockError, r"block sizes are positive ints, got blocks=\(3, 0\)"),
        (
            lambda: blocked("sparse(sparsity=0.5)", 2),
            BlockError,
            r"scheme 'sparse\(sparsity=0.5\)' \(family sparse\) cannot be drawn per block",
        ),
        (
            lambda: fanin.plan(nn.Linear(4, 12), [Rule("weight", "normal", fans="experts")], leftovers="keep"),
            RuleError,
            r"Layout experts\(out_in\) needs a 3-D tensor \(experts, a, b\), got shape=\(12, 4\)",
        ),
        (
            lambda: blocked("eye", "experts:in_out")(torch.empty(2, 3, 4)),
            BlockError,
            r"scheme 'eye' cannot be drawn on a block stored as \(3, 4\) whose logical shape is \(4, 3\)",
        ),
        (
            lambda: layout_of(2.5),
            BlockError,
            r"A block layout is a Layout, an int, a sequence of sizes or 'experts\[:layout\]', got 2.5",
        ),
    ],
)
def test_block_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()
