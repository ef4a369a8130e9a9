"""Evidence of training: each test's false-alarm rate on fresh i.i.d. matrices (fixed seeds,
binomial bounds), its power on structure that training makes, the Tracy-Widom tail, Holm."""

import math

import numpy as np
import pytest
import torch

from fanin.auditing.evidence import Evidence, combine, holm, kurtosis_z, matrix_evidence, tail_evidence, tw1_sf
from fanin.auditing.scanning import scan

DRAWS = {
    "uniform": lambda s, g: torch.empty(s).uniform_(-1, 1, generator=g),
    "normal": lambda s, g: torch.empty(s).normal_(0, 0.02, generator=g),
    "truncated_normal": lambda s, g: torch.nn.init.trunc_normal_(torch.empty(s), 0, 1, -2, 2, generator=g),
    "normal_bf16": lambda s, g: torch.empty(s).normal_(0, 0.02, generator=g).bfloat16(),
}
SHAPES = [(16, 64), (64, 16), (48, 48), (8, 4, 3, 3), (200, 300)]
REPEATS = 60
# Binomial(60, 0.01): P(X >= 5) = 0.0003 per (cell, test); 20 cells x 6 tests: < 4% that any
# calibrated test exceeds the bound by chance; the seeds are fixed (reproducible).
MAX_ALARMS = 4


def _p(e: Evidence) -> float:
    """The p-value of a test's evidence (a rule's has none)."""
    assert e.p_value is not None, e
    return e.p_value


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("kind", sorted(DRAWS))
def test_fresh_matrices_raise_alarms_at_most_at_the_stated_rate(kind, shape):
    g = torch.Generator().manual_seed(sum(shape))
    alarms: dict[str, int] = {}
    for _ in range(REPEATS):
        w = DRAWS[kind](shape, g)
        s = scan(w)
        found = matrix_evidence(w, s) + [e for e in [tail_evidence(s)] if e is not None]
        for e in found:
            alarms[e.test] = alarms.get(e.test, 0) + (e.p_value is not None and e.p_value < 0.01)
    assert alarms and max(alarms.values()) <= MAX_ALARMS, alarms


def test_tracy_widom_tail_at_known_quantiles():
    # TW1 quantiles (Tracy & Widom 1996; Bejan 2005 tables): 0.95 -> 0.9793, 0.99 -> 2.0234, 0.999 -> 3.2724.
    for s, q in ((0.9793, 0.05), (2.0234, 0.01), (3.2724, 0.001)):
        assert tw1_sf(s) == pytest.approx(q, rel=0.02)
    assert tw1_sf(-5.0) == 1.0 and tw1_sf(10.0) < 1e-8


def test_a_low_rank_update_is_seen_by_the_spectrum():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(256, 512, generator=g) * 0.02
    u, v = torch.randn(256, 1, generator=g), torch.randn(1, 512, generator=g)
    spiked = w + 0.02 * 3 * (u @ v) / math.sqrt(512)  # a rank-one signal well past the BBP threshold
    e = {x.test: x for x in matrix_evidence(spiked, scan(spiked))}
    assert _p(e["spectrum"]) < 1e-20 and "x the Marchenko-Pastur edge" in e["spectrum"].text
    assert _p({x.test: x for x in matrix_evidence(w, scan(w))}["spectrum"]) > 1e-3


def test_row_and_column_structure_is_seen():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(128, 96, generator=g)
    rows = w * torch.linspace(0.7, 1.3, 128).unsqueeze(1)  # output units grown unequally
    cols = w + 0.3 * torch.randn(1, 96, generator=g)  # input features shifted
    assert _p({x.test: x for x in matrix_evidence(rows, scan(rows))}["row norms"]) < 1e-10
    e = {x.test: x for x in matrix_evidence(cols, scan(cols))}
    assert _p(e["column means"]) < 1e-10 and "column means spread" in e["column means"].text
    conv = torch.randn(32, 16, 3, 3, generator=g)
    conv[:, :, 1, 1] *= 2.5  # a centre tap that learned more than the others
    e = {x.test: x for x in matrix_evidence(conv, scan(conv))}
    assert _p(e["kernel position norms"]) < 1e-10


def test_heavy_tails_use_every_value():
    x = torch.distributions.StudentT(5.0).sample((100_000,))
    e = tail_evidence(scan(x))
    assert e is not None and e.test == "heavy tails" and _p(e) < 1e-30
    assert tail_evidence(scan(torch.empty(1000).uniform_(-1, 1))) is None  # lighter than normal: no test
    b2 = 3.4
    assert kurtosis_z(b2, 5000) > 0


def test_combine_and_holm():
    from fanin.auditing.evidence import Evidence

    ev = [Evidence("a", 0.0, 0.004, ""), Evidence("b", 0.0, 0.5, "")]
    assert combine(ev) == pytest.approx(0.008)
    assert combine([*ev, Evidence("norm layer", 0.0, None, "")]) == 0.0
    assert combine([]) is None
    assert holm([0.001, 0.03, None, 0.3], 0.05) == [True, False, False, False]
    assert holm([0.01, 0.02, 0.03], 0.1) == [True, True, True]
    assert holm([], 0.05) == []


def test_a_thousand_fresh_tensors_raise_no_alarm_at_the_family_wise_level():
    # 1,000 fresh tensors of mixed families and shapes: Holm at 0.01 over their evidence finds none.
    from fanin.auditing.inference import analyse

    g = torch.Generator().manual_seed(7)
    ps = []
    shapes = [(32, 16), (16, 8, 3), (24, 24), (64,)]
    kinds = sorted(DRAWS)
    for i in range(1000):
        w = DRAWS[kinds[i % len(kinds)]](shapes[(i // len(kinds)) % len(shapes)], g)
        inference, _ = analyse(w)
        ps.append(inference.evidence_p)
    # A 1-D tensor lighter-tailed than a normal has no applicable test (no matrix, kurtosis < 0).
    assert sum(p is not None for p in ps) >= 750
    assert not any(holm(ps, 0.01))
    # And the per-tensor p-values are not degenerate: roughly uniform under the null.
    assert 0.3 < np.median([p for p in ps if p is not None]) <= 1.0
