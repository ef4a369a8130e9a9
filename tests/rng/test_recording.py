"""DrawRecorder: the draws a scheme asks for, recorded without drawing."""

import pytest
import torch

from fanin.rng.recording import DrawRecorder
from fanin.schemes import get


def test_continuous_draws_are_recorded_and_nothing_is_written():
    w = torch.full((24, 8), 7.0)
    recorder = DrawRecorder()
    get("kaiming_uniform(nonlinearity='linear')")(w, generator=recorder)  # bound sqrt(3 / 8)
    assert recorder.calls == [("uniform", -((3 / 8) ** 0.5), (3 / 8) ** 0.5)]
    assert torch.equal(w, torch.full((24, 8), 7.0))


def test_structured_draws_are_recorded_and_stop_only_when_asked():
    recorder = DrawRecorder()
    get("orthogonal(gain=2.0)")(torch.empty(4, 6), generator=recorder)
    get("sparse(sparsity=0.5)")(torch.empty(4, 6), generator=recorder)
    assert recorder.calls[0] == ("orthogonal", 2.0)
    assert recorder.calls[-1] == ("sparse", 2) and recorder.calls[-2][0] == "normal"

    stopping = DrawRecorder(stop_at_structure=True)
    with pytest.raises(DrawRecorder.Stop, match="sparse"):
        get("sparse(sparsity=0.5)")(torch.empty(4, 6), generator=stopping)
    assert [c[0] for c in stopping.calls] == ["normal", "sparse"]
    with pytest.raises(DrawRecorder.Stop, match="normal"):
        stopping.standard_normal((3, 3), dtype=torch.float32, device="cpu")


def test_a_direct_fill_is_refused():
    from fanin.rng.transforms import Uniform

    with pytest.raises(TypeError, match=r"DrawRecorder records the named draws only, got a direct fill_ with Uniform"):
        DrawRecorder().fill_(torch.empty(2), Uniform(-1.0, 1.0))
