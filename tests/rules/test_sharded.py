"""Sharded parameters (DTensor) filled shard-locally are bit-identical to the single-process init.

Two kinds of tests:

- geometry, in this process: ``fanin.rng.sharded.shard_boxes`` against torch's own
  ``_compute_local_shape_and_global_offset`` on fake meshes, the boxes of all ranks partition the
  global tensor, and stream fills of every rank's boxes reassemble the full generation.
- real ``torch.distributed`` with the gloo backend: this file re-runs itself as 2 and then 4
  worker processes (one spawn per world size; every check of that world size runs in it). Each
  rank builds DTensors (``distribute_tensor`` with Shard(0), Shard(1), Replicate, uneven and
  empty shards, 1-D and 2-D meshes; FSDP2 ``fully_shard``; tensor-parallel ``parallelize_module``),
  runs the schemes with a ``fanin.Stream``, gathers with ``full_tensor()`` and compares BITWISE
  with the same scheme on a plain tensor of the global shape; it writes what it found to a JSON
  file that the tests below read.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fanin.rng import Stream
from fanin.rng.sharded import Box, check_generator_for, is_dtensor, shard_boxes

# Guards against a hang only: a run is about 30 s on 2 idle cores, but on a cold JIT cache the
# first world compiles the stream's kernels (one rank compiles, the others wait for its cache
# files: fanin.rng._numba_kernels) and a loaded shared machine is several times slower.
WORKER_TIMEOUT_S = 900


# ------------------------------------------------------------------------------ geometry


def _torch_local_shape_and_offset(global_shape, mesh_shape, coordinate, placements):
    from torch.distributed.tensor._utils import _compute_local_shape_and_global_offset

    return _compute_local_shape_and_global_offset(global_shape, mesh_shape, list(coordinate), placements)


def _all_coordinates(mesh_shape):
    grid = torch.cartesian_prod(*[torch.arange(k) for k in mesh_shape]).reshape(-1, len(mesh_shape))
    return [tuple(int(c) for c in idx) for idx in grid.tolist()]


LAYOUTS = [
    # (global shape, mesh shape, placements as (kind, dim))
    ((7, 5), (2,), [("shard", 0)]),
    ((7, 5), (4,), [("shard", 0)]),  # 2, 2, 2, 1 rows
    ((3, 5), (4,), [("shard", 0)]),  # 1, 1, 1, 0: an empty shard
    ((7, 6), (4,), [("shard", 1)]),
    ((7, 6), (2,), [("replicate",)]),
    ((7, 6), (2, 2), [("shard", 0), ("shard", 1)]),
    ((7, 6), (2, 2), [("replicate",), ("shard", 0)]),
    ((9, 6), (2, 2), [("shard", 0), ("shard", 0)]),  # the same dim split twice, unevenly
    ((5, 4, 3), (2, 3), [("shard", 2), ("shard", 0)]),
]


def _torch_placements(placements):
    from torch.distributed.tensor import Replicate, Shard

    return [Shard(p[1]) if p[0] == "shard" else Replicate() for p in placements]


@pytest.mark.parametrize(("shape", "mesh", "placements"), LAYOUTS)
def test_shard_boxes_match_torch_local_shape_and_offset(shape, mesh, placements):
    for coord in _all_coordinates(mesh):
        boxes = shard_boxes(shape, mesh_shape=mesh, coordinate=coord, placements=placements)
        assert len(boxes) == 1  # Shard/Replicate leave one contiguous box
        want_shape, want_offset = _torch_local_shape_and_offset(shape, mesh, coord, _torch_placements(placements))
        assert boxes[0].shape == tuple(want_shape), coord
        if 0 not in want_shape:
            assert boxes[0].offsets == tuple(want_offset), coord
        assert boxes[0].local == tuple(slice(0, n) for n in want_shape)


@pytest.mark.parametrize(("shape", "mesh", "placements"), LAYOUTS)
def test_boxes_of_all_ranks_cover_the_tensor_once_per_replica(shape, mesh, placements):
    count = torch.zeros(shape, dtype=torch.int64)
    for coord in _all_coordinates(mesh):
        for b in shard_boxes(shape, mesh_shape=mesh, coordinate=coord, placements=placements):
            count[tuple(slice(o, o + n) for o, n in zip(b.offsets, b.shape, strict=True))] += 1
    replicas = math.prod(k for k, p in zip(mesh, placements, strict=True) if p[0] == "replicate")
    assert bool((count == replicas).all())


@pytest.mark.parametrize(("shape", "mesh", "placements"), LAYOUTS)
def test_stream_fills_of_every_rank_reassemble_the_full_generation(shape, mesh, placements):
    s = Stream(3, "sharded.weight")
    full = s.normal_(torch.empty(shape), 0.0, 0.02)
    got = torch.full(shape, float("nan"))
    for coord in _all_coordinates(mesh):
        boxes = shard_boxes(shape, mesh_shape=mesh, coordinate=coord, placements=placements)
        local = torch.full(tuple(max(b.local[d].stop for b in boxes) for d in range(len(shape))), float("nan"))
        for b in boxes:
            s.normal_(local[b.local], 0.0, 0.02, full_shape=shape, offsets=b.offsets)
        for b in boxes:
            got[tuple(slice(o, o + n) for o, n in zip(b.offsets, b.shape, strict=True))] = local[b.local]
    assert torch.equal(got, full)


def test_strided_shard_gives_several_boxes_in_torch_order():
    from torch.distributed.tensor.placement_types import Shard, _StridedShard

    # FSDP2 x TP layout: dim 0 split by TP (2) first, then by FSDP (2), recorded as StridedShard.
    placements = [_StridedShard(0, split_factor=2), Shard(0)]
    seen = []
    for coord in _all_coordinates((2, 2)):
        boxes = shard_boxes((8, 3), mesh_shape=(2, 2), coordinate=coord, placements=placements)
        rows = [r for b in boxes for r in range(b.offsets[0], b.offsets[0] + b.shape[0])]
        _, first = _torch_local_shape_and_offset((8, 3), (2, 2), coord, placements)
        assert rows[0] == first[0]
        seen += rows
    assert sorted(seen) == list(range(8))


def test_shard_boxes_refuses_partial_with_the_placements_named():
    with pytest.raises(
        ValueError, match=r"Partial placement .* placements=\[\('partial',\)\]; accepted: Shard\(d\), Replicate"
    ):
        shard_boxes((4, 4), mesh_shape=(2,), coordinate=(0,), placements=[("partial",)])


def test_shard_boxes_needs_one_entry_per_mesh_dim():
    with pytest.raises(ValueError, match=r"mesh_shape=\(2, 2\), coordinate=\(0,\), placements=\[\('shard', 0\)\]"):
        shard_boxes((4, 4), mesh_shape=(2, 2), coordinate=(0,), placements=[("shard", 0)])


def test_shard_boxes_refuses_a_dim_out_of_range():
    with pytest.raises(ValueError, match=r"shard dim out of range for global_shape=\(4, 4\): placement=\('shard', 2\)"):
        shard_boxes((4, 4), mesh_shape=(2,), coordinate=(0,), placements=[("shard", 2)])


def test_plain_tensors_are_not_dtensors_and_take_any_generator():
    assert not is_dtensor(torch.zeros(3))
    check_generator_for(torch.zeros(3), torch.Generator())
    check_generator_for(torch.zeros(3), None)
    assert Box((slice(0, 1),), (0,), (1,)).shape == (1,)


# ------------------------------------------------------------------------ distributed runs


_RUNS: dict[int, dict | str] = {}


def _run_world(world: int, tmp_root: Path) -> dict:
    """Start ``world`` gloo ranks of this file as workers once; their findings, rank 0's view.

    A failed run is remembered too, so that the tests sharing it fail at once instead of
    starting the processes again.
    """
    if world not in _RUNS:
        _RUNS[world] = _start_world(world, tmp_root / f"world{world}")
    found = _RUNS[world]
    if isinstance(found, str):
        pytest.fail(found)
    return found


def _start_world(world: int, out: Path) -> dict | str:
    """Run the worker on ``world`` ranks.

    The ranks meet through a file store in ``out`` (``init_method="file://..."``), not a TCP port:
    a port found free here can be taken before rank 0 binds it, by another test run on the same
    machine (whose ranks could then join this run's store) or by an ephemeral socket; a file in a
    fresh directory belongs to this run alone. Every rank also has its own log and result file.
    """
    out.mkdir(parents=True, exist_ok=True)
    procs, logs = [], []
    for rank in range(world):
        env = dict(
            os.environ,
            FANIN_TEST_INIT_METHOD=f"file://{out / 'rendezvous'}",
            RANK=str(rank),
            WORLD_SIZE=str(world),
            OMP_NUM_THREADS="1",
            NUMBA_NUM_THREADS="1",
            PYTHONWARNINGS="ignore",
        )
        log = open(out / f"rank{rank}.log", "w")  # closed below
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(out)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        )
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    killed: set[int] = set()
    try:
        # A rank that fails leaves the others waiting in a collective: stop them at once.
        while any(p.poll() is None for p in procs):
            if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in procs):
                break
            time.sleep(0.1)
    finally:
        for rank, p in enumerate(procs):
            if p.poll() is None:
                p.kill()
                p.wait()
                killed.add(rank)
        for log in logs:
            log.close()
    if len(killed) == world:
        return f"gloo workers of world {world} still running after {WORKER_TIMEOUT_S} s: stopped\n" + _log_tail(out, 0)
    results = {}
    # The ranks that ended on their own first: the one that failed, not the ones stopped above.
    for rank in sorted(range(world), key=lambda r: r in killed):
        p = procs[rank]
        path = out / f"rank{rank}.json"
        if p.returncode != 0 or not path.exists():
            return f"gloo worker rank {rank} of {world} {_ended(p.returncode, rank in killed)}:\n{_log_tail(out, rank)}"
        results[rank] = json.loads(path.read_text())
    # Every rank checks the gathered tensors; they must agree (timings aside).
    strip = [{k: v for k, v in results[r].items() if not k.startswith("time/")} for r in range(world)]
    for rank in range(1, world):
        if strip[rank] != strip[0]:
            diff = sorted(k for k in set(strip[0]) | set(strip[rank]) if strip[0].get(k) != strip[rank].get(k))
            return f"rank {rank} of {world} saw something else than rank 0 for {diff[:10]}"
    return results[0]


def _ended(returncode: int, killed: bool) -> str:
    if killed:
        return "was stopped after another rank failed"
    if returncode < 0:
        return f"was killed by signal {signal.Signals(-returncode).name}"
    return f"exited with {returncode}"


def _log_tail(out: Path, rank: int) -> str:
    return (out / f"rank{rank}.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def tmp_root(tmp_path_factory):
    return tmp_path_factory.mktemp("sharded")


def _failures(found: dict, prefix: str) -> list[str]:
    items = {k: v for k, v in found.items() if k.startswith(prefix)}
    assert items, f"no check named {prefix}* ran"
    return [f"{k}: {v}" for k, v in items.items() if v != "ok"]


@pytest.mark.parametrize("world", [2, 4])
def test_every_registered_scheme_on_every_layout_equals_single_process(world, tmp_root):
    found = _run_world(world, tmp_root)
    assert _failures(found, "scheme/") == []
    # the worker covered every scheme of the registry on every layout
    from fanin.schemes import list_schemes

    names = {k.split("/")[1] for k in found if k.startswith("scheme/")}
    assert names == set(list_schemes())


@pytest.mark.parametrize("world", [2, 4])
def test_direct_calls_of_stream_and_init_functions_on_dtensors(world, tmp_root):
    assert _failures(_run_world(world, tmp_root), "direct/") == []


@pytest.mark.parametrize("world", [2, 4])
def test_fsdp2_fully_shard_model_equals_single_process(world, tmp_root):
    assert _failures(_run_world(world, tmp_root), "fsdp2/") == []


@pytest.mark.parametrize("world", [2, 4])
def test_tensor_parallel_model_equals_single_process(world, tmp_root):
    assert _failures(_run_world(world, tmp_root), "tp/") == []


def test_fanin_apply_on_sharded_model_equals_plain_model(tmp_root):
    found = _run_world(2, tmp_root)
    if found.get("apply/available") != "ok":
        pytest.skip("fanin.apply is not available yet (rules core not integrated)")
    assert _failures(found, "apply/") == []


def test_dtensor_with_a_torch_generator_or_none_is_refused(tmp_root):
    found = _run_world(2, tmp_root)
    msg = found["error/generator"]
    assert msg.startswith(
        "TypeError: a sharded parameter (DTensor) is initialized reproducibly only from the counter stream"
    )
    assert "pass seed=... to fanin.apply/materialize or generator=fanin.Stream(seed, name)" in msg
    assert "got generator=<torch._C.Generator" in msg
    assert found["error/none"].endswith("got generator=None")
    assert found["error/none_init"].endswith("got generator=None")
    assert found["error/keras_seed"].startswith("TypeError: a sharded parameter (DTensor)")
    assert found["error/constant_any_generator"] == "ok"


def test_dtensor_with_a_box_or_a_partial_placement_is_refused(tmp_root):
    found = _run_world(2, tmp_root)
    assert found["error/box"] == (
        "TypeError: a DTensor already knows its place in the full parameter: give no "
        "full_shape/offsets/index, got full_shape=(7, 6)"
    )
    assert found["error/partial"].startswith("ValueError: a Partial placement holds pending reductions")
    assert found["error/partial"].endswith("accepted: Shard(d), Replicate")


# --------------------------------------------------------------------------- the worker

_REQUIRED_ARGS = {
    "constant": {"val": 0.25},
    "jax.constant": {"value": 0.25},
    "sparse": {"sparsity": 0.3},
    "jax.variance_scaling": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal"},
    "fanin.padded_normal": {"padding_idx": 1, "std": 0.02},
    "fanin.zeros_after_uniform": {"a": -0.5, "b": 0.5},
    "fanin.gate_constant": {"values": [0.0, 1.0, 0.0, 0.0]},
    "fanin.gate_uniform": {"bounds": [0.1, 0.1, 1.0]},
}
_SHAPES = [(7, 6), (6, 4, 3), (4, 6, 3, 3), (4, 8, 3, 3, 3), (8, 6)]


def _worker_layouts(world: int):
    from torch.distributed.tensor import Replicate, Shard

    if world == 2:
        return [("1d", (2,), [Shard(0)]), ("1d", (2,), [Shard(1)]), ("1d", (2,), [Replicate()])]
    return [
        ("1d", (4,), [Shard(0)]),  # 7 rows: 2, 2, 2, 1
        ("1d", (4,), [Shard(1)]),  # 6 cols: 2, 2, 2, 0 (an empty shard)
        ("2d", (2, 2), [Shard(0), Shard(1)]),
        ("2d", (2, 2), [Replicate(), Shard(0)]),
        ("2d", (2, 2), [Shard(1), Shard(1)]),
    ]


def _worker(out: Path) -> None:
    import warnings

    warnings.simplefilter("ignore")
    import torch.distributed as dist
    from torch.distributed.tensor import DTensor, Partial, Shard, distribute_tensor, init_device_mesh

    import fanin
    from fanin.rng import canonical_name
    from fanin.schemes import list_schemes

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    dist.init_process_group("gloo", init_method=os.environ["FANIN_TEST_INIT_METHOD"], rank=rank, world_size=world)
    found: dict[str, str] = {}

    def check(name, fn):
        try:
            found[name] = fn()
        except Exception as err:  # recorded, asserted by the parent
            found[name] = f"{type(err).__name__}: {err}"

    meshes = {"1d": init_device_mesh("cpu", (world,))}
    if world == 4:
        meshes["2d"] = init_device_mesh("cpu", (2, 2))

    def same(got, want):
        if got.dtype != want.dtype or tuple(got.shape) != tuple(want.shape):
            return f"dtype/shape {got.dtype}{tuple(got.shape)} != {want.dtype}{tuple(want.shape)}"
        if torch.equal(got, want) and (got == got).all():
            return "ok"
        return f"differs at {int((got != want).sum())} of {got.numel()} elements"

    t0 = time.perf_counter()
    # -- every registered scheme, on every layout, bitwise against the plain full tensor
    for name in list_schemes():
        try:
            scheme = fanin.get({"name": name, "args": _REQUIRED_ARGS.get(name, {})})
        except Exception as e:  # a new scheme with required arguments: add them to _REQUIRED_ARGS
            found[f"scheme/{name}/unconstructed"] = f"add its arguments to _REQUIRED_ARGS: {e}"
            continue
        shape = None
        for cand in _SHAPES:
            try:
                want = scheme(torch.empty(cand), generator=Stream(0, name))
            except Exception:
                continue
            shape = cand
            break
        if shape is None:
            found[f"scheme/{name}/noshape"] = "no shape of _SHAPES works on a plain tensor"
            continue
        dtypes = [torch.float32] + ([torch.bfloat16] if name in ("uniform", "normal", "trunc_normal") else [])
        for mesh_name, _, placements in _worker_layouts(world):
            for dtype in dtypes:
                tag = f"scheme/{name}/{mesh_name}{[str(p) for p in placements]}/{dtype}"
                want = scheme(torch.empty(shape, dtype=dtype), generator=Stream(0, name))

                def run(
                    placements=placements,
                    mesh_name=mesh_name,
                    dtype=dtype,
                    want=want,
                    shape=shape,
                    scheme=scheme,
                    name=name,
                ):
                    d = distribute_tensor(torch.full(shape, float("nan"), dtype=dtype), meshes[mesh_name], placements)
                    scheme(d, generator=Stream(0, name))
                    return same(d.full_tensor(), want)

                check(tag, run)

    found["time/schemes"] = f"{time.perf_counter() - t0:.1f}"
    t0 = time.perf_counter()
    # -- direct calls that bypass Scheme: the Stream's own methods and fanin.init functions
    mesh = meshes["1d"]
    s = Stream(5, "direct")
    check(
        "direct/stream.truncated_normal_",
        lambda: same(
            s.truncated_normal_(
                distribute_tensor(torch.zeros(7, 6), mesh, [Shard(0)]), 0.0, 1.0, -2.0, 2.0
            ).full_tensor(),
            s.truncated_normal_(torch.zeros(7, 6), 0.0, 1.0, -2.0, 2.0),
        ),
    )
    check(
        "direct/stream.orthogonal_",
        lambda: same(
            s.orthogonal_(distribute_tensor(torch.zeros(7, 6), mesh, [Shard(1)]), 2.0).full_tensor(),
            s.orthogonal_(torch.zeros(7, 6), 2.0),
        ),
    )
    check(
        "direct/init.kaiming_normal_",
        lambda: same(
            fanin.init.kaiming_normal_(
                distribute_tensor(torch.zeros(9, 6), mesh, [Shard(0)]), generator=s
            ).full_tensor(),
            fanin.init.kaiming_normal_(torch.zeros(9, 6), generator=s),
        ),
    )
    check(
        "direct/init.trunc_normal_",
        lambda: same(
            fanin.init.trunc_normal_(
                distribute_tensor(torch.zeros(9, 6), mesh, [Shard(0)]), std=0.02, generator=s
            ).full_tensor(),
            fanin.init.trunc_normal_(torch.zeros(9, 6), std=0.02, generator=s),
        ),
    )

    # -- errors
    def err(fn):
        try:
            fn()
        except Exception as e:
            return re.sub(r"0x[0-9a-f]+", "0x...", f"{type(e).__name__}: {e}")  # same text on every rank
        return "no error"

    d = distribute_tensor(torch.zeros(7, 6), mesh, [Shard(0)])
    found["error/generator"] = err(lambda: fanin.get("normal")(d, generator=torch.Generator().manual_seed(0)))
    found["error/none"] = err(lambda: fanin.get("orthogonal")(d))
    found["error/none_init"] = err(lambda: fanin.init.uniform_(d))
    found["error/keras_seed"] = err(lambda: fanin.get("keras.glorot_uniform(seed=1)")(d))
    found["error/box"] = err(lambda: s.normal_(d, 0.0, 1.0, full_shape=(7, 6)))
    partial = DTensor.from_local(torch.zeros(7, 6), mesh, [Partial()])
    found["error/partial"] = err(lambda: fanin.get("normal")(partial, generator=s))
    check(
        "error/constant_any_generator",
        lambda: same(fanin.get("ones")(d, generator=torch.Generator()).full_tensor(), torch.ones(7, 6)),
    )

    # -- models: FSDP2 and tensor parallel, every parameter by its canonical name's stream
    def model():
        torch.manual_seed(123)
        return torch.nn.Sequential(
            torch.nn.Embedding(11, 6),
            torch.nn.Linear(6, 10),
            torch.nn.LayerNorm(10),
            torch.nn.Linear(10, 5),
        )

    rules = [
        ("0.weight", fanin.get("normal(std=0.02)")),
        ("1.weight", fanin.get("orthogonal(gain=2.0)")),
        ("1.bias", fanin.get("uniform(a=-0.1, b=0.1)")),
        ("2.weight", fanin.get("ones")),
        ("2.bias", fanin.get("zeros")),
        ("3.weight", fanin.get("kaiming_uniform(a=sqrt(5))")),
        ("3.bias", fanin.get("trunc_normal(std=0.5, a=-0.5, b=0.5)")),
    ]

    def init_all(m):
        params = dict(m.named_parameters())
        for pname, scheme in rules:
            scheme(params[pname], generator=Stream(0, canonical_name(pname)))
        return m

    reference = init_all(model())

    def compare(prefix, sharded):
        for pname, p in sharded.named_parameters():
            want = dict(reference.named_parameters())[canonical_name(pname)]
            got = p.full_tensor() if isinstance(p, DTensor) else p
            kind = "dtensor" if isinstance(p, DTensor) else "plain"
            check(f"{prefix}/{pname}/{kind}", lambda got=got, want=want: same(got.detach(), want.detach()))

    def fsdp2():
        from torch.distributed.fsdp import fully_shard

        m = model()
        for layer in m:
            fully_shard(layer, mesh=mesh)
        fully_shard(m, mesh=mesh)
        if not all(isinstance(p, DTensor) for p in m.parameters()):
            raise AssertionError("fully_shard left plain parameters")
        compare("fsdp2", init_all(m))
        return "ok"

    check("fsdp2/setup", fsdp2)

    def tp():
        from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

        m = parallelize_module(model(), mesh, {"1": ColwiseParallel(), "3": RowwiseParallel()})
        compare("tp", init_all(m))
        return "ok"

    check("tp/setup", tp)

    # -- fanin.apply on a sharded model (rules core), when it is there
    if hasattr(fanin, "apply"):
        found["apply/available"] = "ok"
        spec = {"*.weight": "xavier_uniform", "*.bias": "zeros"}

        def apply_check():
            from torch.distributed.fsdp import fully_shard

            plain = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Linear(10, 7))
            fanin.apply(plain, spec, seed=0)
            m = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Linear(10, 7))
            fully_shard(m, mesh=mesh)
            fanin.apply(m, spec, seed=0)
            pairs = zip(m.named_parameters(), plain.named_parameters(), strict=True)
            bad = [n for (n, p), (_, q) in pairs if same(p.full_tensor().detach(), q.detach()) != "ok"]
            return "ok" if not bad else f"differ: {bad}"

        check("apply/fsdp2", apply_check)

    found["time/rest"] = f"{time.perf_counter() - t0:.1f}"
    (out / f"rank{rank}.json").write_text(json.dumps(found, indent=1, sort_keys=True))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(Path(sys.argv[2]))
