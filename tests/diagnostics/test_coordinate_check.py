"""The coordinate check (Yang et al. 2022, "Tensor Programs V", §D.1; microsoft/mup's coord check).

The checks the issue sets, with fixed seeds: after a few Adam steps, standard parametrization (the
``torch`` preset) makes the output logits grow with width (fitted slope >= 0.4) and muP keeps every
layer group flat (|slope| <= 0.1): an MLP over widths 64..1024 and a GPT-style model (the demo
``gpt``: tied embeddings, fused qkv, LayerNorm) over widths 64..512 -- 1024 for the GPT is run by
``benchmarks/coord_check.py`` (too slow for the suite on two shared cores). Then: the statistics
by hand, where each multiplier is recorded, the record's JSON round trip, the figure, FSDP2 on two
gloo ranks against one process, and every error path.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.diagnostics.coordinate_check import (
    CoordCheck,
    CoordCheckError,
    coord_check,
    default_group,
)
from fanin.report.coord_check import render_coord_check_text, write_coord_plot
from fanin.report.plot import MissingExtraError
from fanin.rules.parametrization import Attention, mup

WORKER_TIMEOUT_S = 180


def make_mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def mlp_data():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 16, generator=g), torch.randint(0, 10, (64,), generator=g)


def make_gpt(width: int) -> nn.Module:
    return fanin.models.gpt(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=width)


def gpt_data():
    idx = torch.randint(0, 32, (2, 9), generator=torch.Generator().manual_seed(0))
    return idx[:, :-1], idx[:, 1:]


GPT_MUP = mup(base_width=64, std=0.02, attention=Attention("*.attn.c_attn", split=3, n_head=2))


@pytest.fixture(scope="module")
def mlp_runs():
    kw = {"steps": 3, "lr": 0.02, "seeds": (0,)}
    widths = [64, 128, 256, 512, 1024]
    return (
        coord_check(make_mlp, widths, mlp_data(), **kw),
        coord_check(make_mlp, widths, mlp_data(), rules=mup(base_width=64, zero_readout=True), **kw),
    )


@pytest.fixture(scope="module")
def gpt_runs():
    kw = {"steps": 4, "lr": 0.003}
    widths = [64, 128, 256, 512]
    return (
        coord_check(make_gpt, widths, gpt_data(), seeds=(0,), **kw),
        coord_check(make_gpt, widths, gpt_data(), rules=GPT_MUP, seeds=(0, 1), **kw),
    )


def test_mlp_logits_grow_under_sp_and_every_group_is_flat_under_mup(mlp_runs):
    sp, mu = mlp_runs
    assert sp.slope("4") >= 0.4 and sp.verdict("4").kind == "grows"
    assert sp.verdict("4").text.startswith("grows as width^")
    assert mu.groups == ("0", "1", "2", "3", "4")
    assert all(abs(mu.slope(g)) <= 0.1 for g in mu.groups), {g: mu.slope(g) for g in mu.groups}
    assert {v.kind for v in mu.verdicts} == {"stable"} and mu.max_abs_slope() <= 0.1
    assert mu.fit("4", 0).values == (0.0,) * 5  # the zero readout at the init: nothing to fit there
    assert math.isnan(mu.slope("4", step=0))


def test_gpt_logits_grow_under_sp_and_every_group_is_flat_under_mup(gpt_runs):
    sp, mu = gpt_runs
    assert sp.slope("lm_head") >= 0.4
    assert mu.groups == (
        "wte",
        "wpe",
        "h.*.ln_1",
        "h.*.attn.c_attn",
        "h.*.attn.c_proj",
        "h.*.ln_2",
        "h.*.mlp.c_fc",
        "h.*.mlp.c_proj",
        "ln_f",
        "lm_head",
    )
    assert all(abs(mu.slope(g)) <= 0.1 for g in mu.groups), {g: mu.slope(g) for g in mu.groups}
    assert "muP" not in sp.rules and sp.rules == "torch" and mu.rules == str(GPT_MUP)


def test_the_statistics_by_hand():
    """One Linear of ones: every output is sum(x), so l1 = mean |sum x| and rms = sqrt(mean (sum x)^2)."""
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    data = (x.float(), torch.zeros(5, 3))
    rules = {"*.weight": "ones", "*.bias": "zeros"}
    s = x.float().sum(dim=1).double()
    for statistic, want in (("l1", s.abs().mean().item()), ("rms", s.square().mean().sqrt().item())):
        res = coord_check(
            lambda w: nn.Sequential(nn.Linear(4, w)),
            [2, 3],
            data,
            steps=1,
            lr=1e-9,
            rules=rules,
            optimizer="sgd",
            statistic=statistic,
            loss=lambda out, t: out.sum() * 0,
        )
        assert [r[6] for r in res.records if r[2] == 0] == pytest.approx([want, want], rel=1e-12)
        assert res.records[0][:6] == (2, 0, 0, "0", "0", "Linear")


def test_where_the_multipliers_are_recorded():
    """The readout's 1/m belongs to the readout: recorded after it; the queries' 1/sqrt(m) belongs to the
    attention logits: the fused qkv projection is recorded before it."""
    idx, target = gpt_data()
    res = coord_check(make_gpt, [64, 128], (idx, target), steps=1, lr=1e-3, rules=GPT_MUP)
    with torch.device("meta"):
        model = make_gpt(128)
    p = fanin.materialize(model, GPT_MUP.bind(model), seed=0)
    seen = {}
    model.h[0].attn.c_attn.register_forward_hook(lambda m, a, out: seen.__setitem__("qkv", out.detach()))
    with fanin.rules.parametrization.mup_hooks(model, p):
        logits = model(idx).detach()
    recorded = {r[3]: r[6] for r in res.records if r[0] == 128 and r[2] == 0}
    assert recorded["h.0.attn.c_attn"] == pytest.approx(seen["qkv"].double().abs().mean().item(), rel=1e-10)
    assert recorded["lm_head"] == pytest.approx(logits.double().abs().mean().item(), rel=1e-10)


def test_groups_follow_module_lists_only():
    group = default_group(make_gpt(64))
    assert group("h.0.attn.c_attn") == "h.*.attn.c_attn" and group("lm_head") == "lm_head"
    assert default_group(make_mlp(64))("2") == "2"


def test_a_module_called_twice_and_the_model_output_are_recorded():
    class Twice(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.inp, self.mid, self.head = nn.Linear(4, width), nn.Linear(width, width), nn.Linear(width, 2)

        def forward(self, x):
            return self.head(self.mid(self.mid(self.inp(x)))) * 2  # the output is not the head's output

    res = coord_check(Twice, [64, 128], (torch.randn(8, 4), torch.randn(8, 2)), steps=1, rules=mup(base_width=64))
    assert res.groups == ("inp", "mid", "mid#1", "head", "<output>")


def test_record_round_trips_through_json(gpt_runs, tmp_path):
    _, mu = gpt_runs
    path = mu.save(tmp_path / "coord.json")
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    again = CoordCheck.load(path)
    assert again == mu and again.verdicts == mu.verdicts
    assert repr(mu).startswith("<CoordCheck 'make_gpt' (mup(base_width=64, std=0.02, attention=")
    text = render_coord_check_text(mu, width=None).splitlines()
    header = next(i for i, line in enumerate(text) if line.split()[:1] == ["group"])
    assert text[header].split()[:3] == ["group", "t=0", "t=1"] and len(text) == header + 2 + len(mu.groups)
    assert text[-1].split()[0] == "lm_head" and text[-1].endswith(mu.verdict("lm_head").text)
    assert str(mu) == render_coord_check_text(mu)
    message = r"not a coordinate check record: format=None, expected 'fanin.coord_check/1'"
    with pytest.raises(CoordCheckError, match=message):
        CoordCheck.from_dict({})
    with pytest.raises(KeyError, match=r"Unknown layer group 'lm_haed'. Did you mean 'lm_head'\?"):
        mu.slope("lm_haed")


def test_the_figure(gpt_runs, tmp_path):
    pytest.importorskip("matplotlib")
    sp, _ = gpt_runs
    path = write_coord_plot(sp, tmp_path / "sp.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 20_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sp.png"]  # written atomically, nothing left over
    from matplotlib.image import imread

    image = imread(path)
    assert image.shape[:2] == (round(150 * (3 * 2.6 + 0.9)), 4 * 480)  # 10 groups: 3 rows of 4 panels at 150 dpi
    svg = write_coord_plot(sp, tmp_path / "sp.svg")
    assert "<svg" in svg.read_text()[:500]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"widths": [64]}, r"coord_check needs two or more positive int widths, got widths=\[64\]"),
        ({"widths": [128, 64]}, r"widths must be increasing and distinct, got widths=\[128, 64\]"),
        ({"steps": 0}, r"steps must be a positive int, got steps=0"),
        ({"optimizer": "adagrad"}, r"Unknown optimizer 'adagrad'. Accepted: 'adam', 'adamw', 'sgd'."),
        ({"statistic": "l2"}, r"Unknown statistic 'l2'. Accepted: 'l1', 'rms'."),
        ({"lr": -1.0}, r"lr must be a positive finite number, got lr=-1.0"),
        ({"tolerance": 0}, r"tolerance must be a positive finite number, got tolerance=0"),
        ({"seeds": []}, r"seeds must be a non-empty list of non-negative ints, got seeds=\[\]"),
        (
            {"data": [(torch.zeros(1, 16), torch.zeros(1, dtype=torch.long))]},
            r"data as a list needs steps \+ 1 = 4 batches, got 1",
        ),
        ({"data": torch.zeros(2, 16)}, r"data is \(inputs, targets\), a list of them .* got Tensor at step 0"),
        ({"loss": "mse"}, r"loss must be callable, got loss='mse'"),
        ({"reduce": "yes"}, r"reduce must be None, True or False, got reduce='yes'"),
        ({"reduce": True}, r"reduce=True needs an initialized torch.distributed process group"),
        ({"make_model": lambda w: 3}, r"make_model\(64\) returned int, not a torch.nn.Module"),
    ],
)
def test_errors(kwargs, message):
    args = {"make_model": make_mlp, "widths": [64, 128], "data": mlp_data(), **kwargs}
    with pytest.raises(CoordCheckError, match=message):
        coord_check(args.pop("make_model"), args.pop("widths"), args.pop("data"), **args)


def test_a_model_whose_output_has_no_float_tensor_needs_a_loss():
    class Ints(nn.Module):
        def __init__(self, width):
            super().__init__()
            self.inp, self.head = nn.Linear(4, width), nn.Linear(width, 2)

        def forward(self, x):
            return self.head(self.inp(x)).argmax(-1)

    with pytest.raises(CoordCheckError, match=r"the model's output holds no floating-point tensor: give loss="):
        coord_check(Ints, [64, 128], (torch.randn(2, 4), torch.zeros(2, dtype=torch.long)), steps=1)


# ------------------------------------------------------------------------------------ FSDP2, gloo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_fsdp2_on_two_gloo_ranks_equals_one_process(tmp_path):
    """Each rank trains an FSDP2-sharded MLP on half of the batch; the all-reduced statistics equal one
    process on the whole batch (same plan, same seeds; gradients averaged by FSDP's reduce-scatter)."""
    port, world, procs, logs = _free_port(), 2, [], []
    for rank in range(world):
        env = dict(
            os.environ,
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RANK=str(rank),
            WORLD_SIZE=str(world),
            OMP_NUM_THREADS="1",
            NUMBA_NUM_THREADS="1",
            PYTHONWARNINGS="ignore",
        )
        logs.append(open(tmp_path / f"rank{rank}.log", "w"))
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(tmp_path)],
                env=env,
                stdout=logs[-1],
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    try:
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for log in logs:
            log.close()
    for rank, p in enumerate(procs):
        result = tmp_path / f"rank{rank}.json"
        assert p.returncode == 0 and result.exists(), (tmp_path / f"rank{rank}.log").read_text()[-3000:]
        found = json.loads(result.read_text())
        assert found["sharded"] == "ok" and found["world_size"] == 2, found
        assert found["mismatched"] == [], found
        assert found["buffer_error"] == (
            "Buffered has buffers on the meta device and neither reset_buffers() nor "
            "reset_running_stats() to fill them once sharded"
        )


def _worker(out: Path) -> None:
    import warnings

    warnings.simplefilter("ignore")
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    torch.set_num_threads(1)
    x, y = mlp_data()
    half = x.shape[0] // world
    rules = mup(base_width=64, zero_readout=True)
    kw = {"steps": 2, "lr": 0.02, "rules": rules}

    def shard(model):
        for layer in model:
            if any(True for _ in layer.parameters()):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        if not all(isinstance(p, DTensor) for p in model.parameters()):
            raise AssertionError("fully_shard left plain parameters")
        return model

    reference = coord_check(make_mlp, [64, 128], (x, y), reduce=False, **kw)
    local = (x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half])
    sharded = coord_check(make_mlp, [64, 128], local, parallelize=shard, **kw)
    mismatched = [
        (a[:4], a[6], b[6])
        for a, b in zip(reference.records, sharded.records, strict=True)
        if a[:6] != b[:6] or not math.isclose(a[6], b[6], rel_tol=1e-4, abs_tol=1e-7)
    ]

    class Buffered(nn.Sequential):
        def __init__(self, width):
            super().__init__(nn.Linear(16, width), nn.Linear(width, 10))
            self.register_buffer("scale", torch.ones(width))  # on meta, and no reset_buffers() to fill it

    try:
        coord_check(Buffered, [64, 128], local, parallelize=shard, **kw)
        buffer_error = "no error"
    except CoordCheckError as err:
        buffer_error = str(err)
    found = {
        "buffer_error": buffer_error,
        "sharded": "ok" if len(reference.records) == len(sharded.records) else "record counts differ",
        "world_size": sharded.world_size,
        "mismatched": mismatched[:10],
    }
    (out / f"rank{rank}.json").write_text(json.dumps(found))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(Path(sys.argv[2]))


def test_the_figure_without_matplotlib(gpt_runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    message = r"Plotting needs matplotlib, which is not installed \(.*\). Install it with: pip install 'fanin\[plot\]'"
    with pytest.raises(MissingExtraError, match=message):
        write_coord_plot(gpt_runs[0], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_layers_and_groups_can_be_chosen(mlp_runs):
    res = coord_check(
        make_mlp,
        [64, 128],
        mlp_data(),
        steps=1,
        layers=lambda name, m: isinstance(m, nn.Linear),
        groups=lambda name: "linear",
    )
    assert res.groups == ("linear",) and {r[3] for r in res.records} == {"0", "2", "4"}
    with pytest.raises(KeyError, match=r"Unknown layer group 'relu'. Accepted: 'linear'."):
        res.verdict("relu")
