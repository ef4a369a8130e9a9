"""The tests of one hypothesis: a true hypothesis is rejected at the stated rate (fixed seeds,
counted against a binomial bound), a wrong one is rejected, quantization is part of the hypothesis."""

import math

import numpy as np
import pytest
import torch

from fanin.auditing.hypotheses import Dist, SampleView, assess, assess_all
from fanin.auditing.scanning import scan

TN = Dist("truncated_normal", (0.0, 1.0, -2.0, 2.0))
DRAWS = {
    "uniform": (Dist("uniform", (-1.0, 1.0)), lambda n, g: torch.empty(n).uniform_(-1, 1, generator=g)),
    "normal": (Dist("normal", (0.0, 1.0)), lambda n, g: torch.empty(n).normal_(0, 1, generator=g)),
    "truncated_normal": (TN, lambda n, g: torch.nn.init.trunc_normal_(torch.empty(n), 0, 1, -2, 2, generator=g)),
}
REPEATS = 200
# Binomial(200, 0.01): P(X >= 8) = 0.0005, so a calibrated test passes this bound (the 18 cells
# together fail with probability < 1%; the seeds are fixed, so the outcome is reproducible).
MAX_REJECTIONS = 8


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n", [16, 256, 4096])
@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_a_true_hypothesis_is_rejected_at_most_at_the_stated_rate(kind, n, dtype):
    dist, draw = DRAWS[kind]
    g = torch.Generator().manual_seed(n)
    rejected = 0
    for _ in range(REPEATS):
        s = scan(draw(n, g).to(dtype))
        rejected += assess(dist, s, SampleView.of(s, dtype), dtype).p < 0.01
    assert rejected <= MAX_REJECTIONS, rejected


def test_a_truncated_normal_is_not_a_normal_by_its_extremes():
    g = torch.Generator().manual_seed(0)
    x = torch.nn.init.trunc_normal_(torch.empty(2000), 0, 1, -2, 2, generator=g)
    s = scan(x)
    # The normal of the same std: 2000 draws would put about 50 values beyond the cut.
    sd = math.sqrt(TN.moments[1])
    fit = assess(Dist("normal", (0.0, sd)), s, SampleView.of(s, torch.float32), torch.float32)
    assert fit.tests["extremes"] < 1e-8 and fit.p < 1e-7
    assert assess(TN, s, SampleView.of(s, torch.float32), torch.float32).p > 1e-3


def test_a_scale_off_by_two_percent_is_rejected_at_a_million_values():
    x = torch.empty(1000, 1000).uniform_(-1, 1, generator=torch.Generator().manual_seed(1))
    s = scan(x)
    view = SampleView.of(s, torch.float32)
    right, wrong = assess_all([Dist("uniform", (-1.0, 1.0)), Dist("uniform", (-1.02, 1.02))], s, view, torch.float32)
    assert right.p > 1e-3 and wrong.p < 1e-12
    assert right.loglik > wrong.loglik and abs(right.scale_ratio - 1) < 2e-3
    assert wrong.tests["extremes"] < 1e-12  # no value within 2% of the wider bound among a million


def test_a_value_beyond_a_bound_rejects_it_and_is_impossible_under_it():
    x = torch.empty(500).uniform_(-1, 1, generator=torch.Generator().manual_seed(2))
    x[0] = 1.01
    s = scan(x)
    fit = assess(Dist("uniform", (-1.0, 1.0)), s, SampleView.of(s, torch.float32), torch.float32)
    assert fit.tests["extremes"] == 0.0 and fit.loglik == -math.inf


def test_bfloat16_rounding_is_part_of_the_hypothesis():
    # torch's bfloat16 uniform_ rounds down: U(±0.125) never stores 0.125 and its mean is low; the
    # hypothesis with the dtype's rounding passes, at 4 million values.
    x = torch.empty(2048, 2048, dtype=torch.bfloat16).uniform_(
        -0.125, 0.125, generator=torch.Generator().manual_seed(3)
    )
    s = scan(x)
    assert s.max < 0.125
    fit = assess(Dist("uniform", (-0.125, 0.125)), s, SampleView.of(s, torch.bfloat16), torch.bfloat16)
    assert fit.p > 1e-3
    # Judged as float32 values (no bfloat16 rounding), the same data rejects the same hypothesis.
    as_f32 = assess(Dist("uniform", (-0.125, 0.125)), s, SampleView.of(s, torch.float32), torch.float32, delta=0.0)
    assert as_f32.p < 1e-6


def test_float8_moments_are_those_of_the_rounded_distribution():
    d = Dist("normal", (0.0, 0.05))
    mean, var, _mu4 = d.quantized_moments(torch.float8_e4m3fn)
    assert abs(mean) < 1e-12 and var != pytest.approx(d.moments[1], rel=1e-4)
    x = torch.empty(1_000_000).normal_(0, 0.05, generator=torch.Generator().manual_seed(4)).to(torch.float8_e4m3fn)
    measured = x.double().var().item()
    assert abs(measured / var - 1) < abs(measured / d.moments[1] - 1)


def test_assess_all_agrees_with_one_at_a_time():
    x = torch.randn(3000, generator=torch.Generator().manual_seed(5)) * 0.5
    s = scan(x)
    view = SampleView.of(s, torch.float32)
    dists = [Dist("normal", (0.0, 0.5)), Dist("uniform", (-1.0, 1.0)), Dist("truncated_normal", (0.0, 0.6, -1.2, 1.2))]
    together = assess_all(dists, s, view, torch.float32)
    for d, fit in zip(dists, together, strict=True):
        alone = assess(d, s, view, torch.float32)
        assert fit.tests == pytest.approx(alone.tests) and fit.loglik == pytest.approx(alone.loglik)


def test_truncated_normal_moments():
    from scipy import stats

    d = Dist("truncated_normal", (0.5, 2.0, -1.0, 4.0))
    ref = stats.truncnorm((-1.0 - 0.5) / 2.0, (4.0 - 0.5) / 2.0, loc=0.5, scale=2.0)
    mean, var, mu4 = d.moments
    assert mean == pytest.approx(ref.mean(), rel=1e-10) and var == pytest.approx(ref.var(), rel=1e-10)
    assert mu4 == pytest.approx(ref.expect(lambda x: (x - ref.mean()) ** 4), rel=1e-8)
    x = np.linspace(-2, 5, 9)
    assert np.allclose(d.cdf(x), ref.cdf(x)) and np.allclose(d.sf(x), ref.sf(x))
