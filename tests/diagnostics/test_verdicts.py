import math

import pytest

from fanin.diagnostics import verdicts as v
from fanin.diagnostics.records import BlockStats, LayerStats
from fanin.diagnostics.verdicts import Verdict, growth_per_layer, judge_depth, judge_signal, power_exponent, scan_stds

NAN = float("nan")


def _layer(i, std, *, module="Linear", params=1, saturated=None, zeros=0.0, grad=None, finite=None):
    finite = math.isfinite(std) if finite is None else finite
    return LayerStats(
        i,
        str(i),
        module,
        0,
        i + 1,
        params,
        (2, 2),
        "torch.float32",
        0.0,
        std,
        std * std,
        std,
        zeros,
        zeros,
        saturated,
        finite,
        grad,
    )


def _kinds(result):
    return [x.kind for x in result]


def test_thresholds():
    assert (v.EXPLODE_ABOVE, v.VANISH_BELOW, v.DECAY_BELOW) == (1e3, 1e-3, 0.1)
    assert (v.SATURATION_LEVEL, v.SATURATED_ABOVE, v.DEAD_ABOVE) == (0.99, 0.5, 0.9)
    assert (v.RESIDUAL_EXPONENT_ABOVE, v.RESIDUAL_MIN_BLOCKS) == (0.25, 4)
    assert (v.GRADIENT_RATIO_BELOW, v.GRADIENT_RATIO_ABOVE) == (1e-2, 1e2)


def test_depth_module_shares_the_thresholds():
    from fanin.diagnostics import depth

    assert depth.EXPLODE_ABOVE is v.EXPLODE_ABOVE and depth.VERDICTS is v.VERDICTS


def test_growth_and_exponent_by_hand():
    # log std = log 3 + 0.5 d exactly: e^0.5 a layer.
    assert growth_per_layer([1, 2, 3, 4], [3 * math.exp(0.5 * d) for d in (1, 2, 3, 4)]) == pytest.approx(math.exp(0.5))
    assert growth_per_layer([1, 2, 3], [1.0, 16.0, NAN]) == pytest.approx(16.0)  # stops at the non-finite one
    assert growth_per_layer([1], [2.0]) is None
    assert power_exponent([2 * k**0.5 for k in range(1, 9)]) == pytest.approx(0.5)
    assert power_exponent([1.0, 0.0]) is None and power_exponent([1.0]) is None


def test_scan():
    assert scan_stds([1.0, 0.5, 1e-4, 2e3, math.inf]) == v.Scan(nonfinite=4, explode=3, vanish=2)


def test_exploding_with_rate():
    layers = [_layer(i, 16.0**i) for i in range(4)] + [_layer(4, math.inf)]
    (verdict,) = judge_signal(layers)
    assert verdict.kind == "exploding" and verdict.layer == 3 and verdict.value == 4096.0
    assert verdict.rate == pytest.approx(16.0) and verdict.threshold == 1e3
    assert verdict.message == (
        "std exceeds 1000 from layer 3 ('3', Linear) (4096); non-finite from layer 4 ('4', Linear); x16 per layer"
    )


def test_vanishing_and_slow_decay():
    (verdict,) = judge_signal([_layer(i, 0.1**i) for i in range(5)])
    assert (verdict.kind, verdict.layer, verdict.threshold) == ("vanishing", 4, 1e-3)
    assert verdict.message == "std falls below 0.001 from layer 4 ('4', Linear) (0.0001); x0.1 per layer"
    (verdict,) = judge_signal([_layer(0, 1.0), _layer(1, 0.05)], input_std=1.0)
    assert verdict.kind == "vanishing" and verdict.threshold == 0.1 and verdict.value == 0.05
    assert "below 0.1 of the input's std (1), though never below 0.001" in verdict.message
    # A softmax output's small std is not the signal's scale.
    assert _kinds(judge_signal([_layer(0, 1.0), _layer(1, 0.0001, module="Softmax", params=0)])) == ["stable"]


def test_saturating_dead_and_stable():
    layers = [_layer(0, 1.0), _layer(1, 0.9, module="Tanh", params=0, saturated=0.7)]
    (verdict,) = judge_signal(layers)
    assert verdict.kind == "saturating" and verdict.value == pytest.approx(0.7) and verdict.threshold == 0.5
    (verdict,) = judge_signal([_layer(0, 1.0), _layer(1, 0.2, module="ReLU", params=0, zeros=0.95)])
    assert verdict.kind == "dead_units" and verdict.layer == 1 and verdict.threshold == 0.9
    assert verdict.message == (
        "1 layer(s) output more than 90% exact zeros, from layer 1 ('1', ReLU) (95% zeros, 95% of units 0 for "
        "the whole batch)"
    )
    (verdict,) = judge_signal([_layer(0, 0.5), _layer(1, 2.0)])
    assert str(verdict) == "stable: std within [0.001, 1000] at every layer (0.5 to 2)" and verdict.healthy


def _block(k, std):
    return BlockStats(k, f"b{k}", 0, k, std, std)


def test_residual_growth_needs_four_blocks():
    grows = [_block(k, k**0.5) for k in range(1, 5)]
    (verdict,) = [x for x in judge_signal([_layer(0, 1.0)], grows) if x.kind == "residual_growth"]
    assert verdict.rate == pytest.approx(0.5) and verdict.threshold == 0.25
    assert "grows as depth^0.50 over 4 blocks (1 after b1, 2 after b4), exponent above 0.25" in verdict.message
    assert _kinds(judge_signal([_layer(0, 1.0)], grows[:3])) == ["stable"]
    assert _kinds(judge_signal([_layer(0, 1.0)], [_block(k, 1.0 + 0.01 * k) for k in range(1, 9)])) == ["stable"]


def test_gradients():
    def net(first, last):
        return [_layer(0, 1.0, grad=first), _layer(1, 1.0, grad=1.0), _layer(2, 1.0, grad=last)]

    (verdict,) = judge_signal(net(1e-3, 1.0))
    assert verdict.kind == "gradients_vanishing" and verdict.value == pytest.approx(1e-3)
    assert "gradients vanish toward the input" in verdict.message and "below 0.01" in verdict.message
    (verdict,) = judge_signal(net(1e3, 1.0))
    assert verdict.kind == "gradients_exploding" and "above 100" in verdict.message
    (verdict,) = judge_signal(net(NAN, 1.0))
    assert verdict.kind == "gradients_exploding" and verdict.message.startswith("the gradient is non-finite")
    assert _kinds(judge_signal(net(0.5, 1.0))) == ["stable"]


def test_judge_depth_keeps_the_depth_wording():
    assert judge_depth([1.0, 2e3, NAN], None, 2) == (
        "exploding",
        "std exceeds 1000 at layer 1; torch's float32 std is non-finite from layer 2; "
        "the activations overflow float32 at layer 2",
    )
    assert judge_depth([0.9, 0.95], [0.8, 0.9], None)[0] == "saturating"


def test_verdict_round_trip_and_errors():
    verdict = Verdict("exploding", "m", 1e3, 2, math.inf, 16.0)
    assert Verdict.from_dict(verdict.to_dict()) == verdict and verdict.to_dict()["value"] == "inf"
    with pytest.raises(ValueError, match=r"Unknown verdict kind 'explode'. Did you mean 'exploding'"):
        Verdict("explode", "m")
