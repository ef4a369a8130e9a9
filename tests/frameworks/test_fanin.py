"""fanin.frameworks.fanin (public face fanin.composite): fanin's own composite schemes (per-gate blocks, padded rows, "
    "the LSUV start and mark)."

Bit-exact against torch's own draws where a scheme reuses them (padded_normal, zeros_after_uniform),
exact properties (zero rows, gate blocks, W^T W = scale^2 I) and KS tests (scipy, fixed seed,
p > 1e-3) with bounds written out here. The presets that use these schemes are tested in
tests/rules/test_defaults.py; LSUV's calibration (step 2) in tests/diagnostics/test_lsuv.py.
"""

import json

import pytest
import torch
from scipy import stats

import fanin
import fanin.composite
import fanin.diagnostics.lsuv
import fanin.frameworks.fanin
from fanin.composite import LSUV_MARK, is_marked, lsuv_scheme
from fanin.errors import SchemeArgumentError
from fanin.schemes.registry import lookup

KS_P = 1e-3


@pytest.fixture(autouse=True)
def torch_stream_backend(monkeypatch):
    # The stream's torch path gives the numba path's values without its JIT compilation (seconds).
    monkeypatch.setenv("FANIN_STREAM_BACKEND", "torch")


def same_bits(a, b):
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(
            a.detach().contiguous().view(-1).view(torch.uint8), b.detach().contiguous().view(-1).view(torch.uint8)
        )
    )


# --- where the schemes live ---------------------------------------------------------------------


def test_the_registry_finds_them_in_this_module():
    names = [
        "fanin.gate_constant",
        "fanin.gate_uniform",
        "fanin.gatewise_orthogonal",
        "fanin.padded_normal",
        "fanin.zeros_after_uniform",
        "lsuv",
    ]
    assert [n for n in fanin.list_schemes() if n.startswith("fanin.") or n == "lsuv"] == names
    assert {lookup(n).fn.__module__ for n in names} == {"fanin.frameworks.fanin"}
    assert (
        fanin.get("lsuv").framework == "torch" and fanin.get("fanin.gate_constant(values=[1.0])").framework == "fanin"
    )


def test_the_public_face_and_lsuv_re_export_the_same_objects():
    for name in fanin.composite.__all__:
        assert getattr(fanin.composite, name) is getattr(fanin.frameworks.fanin, name)
    assert fanin.diagnostics.lsuv.lsuv_scheme is lsuv_scheme
    assert fanin.diagnostics.lsuv.is_marked is is_marked


# --- per-gate blocks and padded rows ------------------------------------------------------------

NEW_SCHEMES = [
    "fanin.padded_normal(padding_idx=-1)",
    "fanin.zeros_after_uniform(a=-0.5, b=0.5)",
    "fanin.gate_constant(values=[0.0, 1.0, 0.0, 0.0])",
    "fanin.gate_uniform(bounds=[0.1, 0.1, 0.2, 0.2])",
    "fanin.gatewise_orthogonal(gates=4, scale=2.0)",
]


@pytest.mark.parametrize("spec", NEW_SCHEMES)
def test_new_schemes_round_trip_and_accept_streams(spec):
    scheme = fanin.get(spec)
    assert scheme.framework == "fanin"
    assert fanin.get(str(scheme)) == scheme
    config = json.loads(json.dumps(scheme.to_config()))
    assert fanin.get(config) == scheme
    a = scheme(torch.empty(8, 4), generator=fanin.Stream(1, "w"))
    b = scheme(torch.empty(8, 4), generator=fanin.Stream(1, "w"))
    assert same_bits(a, b) and torch.isfinite(a).all()
    assert scheme(torch.empty(0, 4)).numel() == 0
    assert scheme(torch.empty(8, 4, device="meta")).is_meta


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("fanin.padded_normal", r"needs argument\(s\) padding_idx"),
        ("fanin.padded_normal(padding_idx=True)", r"padding_idx must be an int, got padding_idx=True"),
        ("fanin.padded_normal(padding_idx=0, std=-1.0)", r"std must be >= 0, got std=-1.0"),
        ("fanin.zeros_after_uniform(a=1.0, b=0.0)", r"needs a <= b, got a=1.0, b=0.0"),
        (
            "fanin.zeros_after_uniform(a='x', b=0.0)",
            r"fanin.zeros_after_uniform: a must be a (finite )?number, got a='x'",
        ),
        (
            "fanin.gate_constant(values=())",
            r"values must be a non-empty list or tuple of numbers, one per gate, got values=\(\)",
        ),
        ("fanin.gate_constant(values=(1, 'a'))", r"got values=\(1, 'a'\)"),
        ("fanin.gate_uniform(bounds=(0.1, -0.1))", r"bounds must be a non-empty list or tuple of non-negative numbers"),
        ("fanin.gatewise_orthogonal(gates=0)", r"gates must be an int >= 1, got gates=0"),
        (
            "fanin.gatewise_orthogonal(scale='big')",
            r"fanin.gatewise_orthogonal: scale must be a (finite )?number, got scale='big'",
        ),
    ],
)
def test_new_scheme_argument_errors(spec, match):
    with pytest.raises(SchemeArgumentError, match=match):
        fanin.get(spec)


def test_new_scheme_shape_errors():
    with pytest.raises(
        ValueError, match=r"padding_idx must index a row of the table, got padding_idx=5 for shape=\(5, 2\)"
    ):
        fanin.get("fanin.padded_normal(padding_idx=5)")(torch.empty(5, 2))
    with pytest.raises(ValueError, match=r"first dimension must split into 4 equal gate blocks, got shape=\(6,\)"):
        fanin.get("fanin.gate_constant(values=(0, 1, 0, 0))")(torch.empty(6))
    with pytest.raises(ValueError, match=r"needs a 2-D weight, got shape=\(8,\)"):
        fanin.get("fanin.gatewise_orthogonal")(torch.empty(8))


def test_padded_normal_is_normal_with_one_zero_row():
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    w = fanin.get("fanin.padded_normal(padding_idx=-2, std=0.5)")(torch.empty(6, 3), generator=g1)
    ref = torch.empty(6, 3).normal_(0.0, 0.5, generator=g2)
    assert (w[4] == 0).all()
    keep = [0, 1, 2, 3, 5]
    assert same_bits(w[keep], ref[keep])


def test_zeros_after_uniform_moves_the_generator_like_uniform():
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    b = fanin.get("fanin.zeros_after_uniform(a=-0.5, b=0.5)")(torch.empty(5), generator=g1)
    torch.empty(5).uniform_(-0.5, 0.5, generator=g2)
    assert same_bits(b, torch.zeros(5))
    assert same_bits(torch.rand(4, generator=g1), torch.rand(4, generator=g2))


def test_gate_uniform_blocks():
    w = fanin.get("fanin.gate_uniform(bounds=(0.5, 2.0))")(
        torch.empty(2000, 10), generator=torch.Generator().manual_seed(1)
    )
    for block, bound in ((w[:1000], 0.5), (w[1000:], 2.0)):
        x = block.flatten().double().numpy()
        assert abs(x).max() <= bound
        assert stats.kstest(x, "uniform", (-bound, 2 * bound)).pvalue > KS_P


@pytest.mark.parametrize("shape", [(12, 3), (8, 4), (6, 5)])  # h > c, h == c, h < c (3 gates of 2 rows)
def test_gatewise_orthogonal_blocks(shape):
    gates = 3 if shape[0] in (12, 6) else 4
    w = fanin.get(f"fanin.gatewise_orthogonal(gates={gates}, scale=2.0)")(
        torch.empty(shape, dtype=torch.float64), generator=torch.Generator().manual_seed(0)
    )
    h, c = shape[0] // gates, shape[1]
    blocks = w.reshape(gates, h, c)
    for q in blocks:
        gram = q.T @ q if h >= c else q @ q.T
        torch.testing.assert_close(gram, 4 * torch.eye(min(h, c), dtype=torch.float64), atol=1e-12, rtol=0)
    assert not torch.allclose(blocks[0], blocks[1])


# --- LSUV's first step: orthogonal start and mark -----------------------------------------------


def test_lsuv_scheme_is_orthogonal_and_rejects_vectors():
    w = fanin.get("lsuv")(torch.empty(4, 6), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(w @ w.T, torch.eye(4), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match=r"weight of a Linear or convolution layer .* got a tensor of shape \(5,\)"):
        fanin.get("lsuv")(torch.empty(5))


def test_lsuv_scheme_is_torch_orthogonal_and_marks_the_object():
    w = torch.nn.Parameter(torch.empty(5, 3))
    assert not is_marked(w)
    lsuv_scheme(w, generator=torch.Generator().manual_seed(2))
    ref = torch.nn.init.orthogonal_(torch.empty(5, 3), 1.0, generator=torch.Generator().manual_seed(2))
    assert same_bits(w.data, ref)
    assert is_marked(w) and getattr(w, LSUV_MARK) is True and LSUV_MARK == "_fanin_lsuv"
    assert not is_marked(w.data)  # a new tensor object: the mark is on the Parameter itself


def test_lsuv_scheme_rejects_a_non_tensor():
    with pytest.raises(TypeError, match=r"lsuv fills a torch.Tensor in place, got tensor=\[1.0, 2.0\] \(list\)"):
        lsuv_scheme([1.0, 2.0])
