"""fanin.schemes.dryrun: a scheme's own code at a shape, drawing and writing nothing."""

import pytest

from fanin.schemes import Scheme, get
from fanin.schemes.dryrun import Trace, dry_run, trace
from fanin.schemes.registry import SchemeEntry


def test_the_draw_is_recorded_and_nothing_is_written():
    # xavier_uniform (4, 6): U(±sqrt(6 / 10))
    bound = (6 / 10) ** 0.5
    run = trace(get("xavier_uniform"), (4, 6))
    assert run.calls == [("uniform", pytest.approx(-bound, rel=1e-15), pytest.approx(bound, rel=1e-15))]
    assert not run.wrote
    assert dry_run(get("xavier_uniform"), (4, 6)) == run.calls


def test_values_computed_from_a_draw_are_a_write():
    # gate_uniform draws U(-1, 1) once and scales each gate block: the scaling writes
    assert trace(get("fanin.gate_uniform(bounds=[1.0, 2.0])"), (4, 3)) == Trace([("uniform", -1.0, 1.0)], True)
    # a constant fill runs on the one element of the view: no refused write
    assert trace(get("constant(val=2.0)"), (4, 3)) == Trace([], False)


def test_structure_stops_the_run():
    assert trace(get("orthogonal"), (4, 3)) == Trace([("orthogonal", 1.0)], False)


def test_a_scheme_seed_is_dropped():
    # keras.random_normal(seed=1) would draw from its own torch.Generator, which records nothing
    assert dry_run(get("keras.random_normal(seed=1)"), (3, 3)) == [("normal", 0.0, 0.05)]


def test_what_the_scheme_raises_propagates():
    with pytest.raises(ValueError, match="Only tensors with 2 or more dimensions are supported"):
        trace(get("orthogonal"), (8,))

    def broken(tensor, generator=None):
        raise RuntimeError("not a memory overlap")

    entry = SchemeEntry("test.broken", broken, "normal", "torch", {})
    with pytest.raises(RuntimeError, match="not a memory overlap"):
        trace(Scheme(entry), (2, 2))
