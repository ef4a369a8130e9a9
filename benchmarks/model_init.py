"""Initializing a GPT-style model: PyTorch's default construction vs fanin on meta vs sharded ranks.

Measured in one run, each case in a fresh process (so that peak memory is that case's own):

(a) ``torch``: ``torch.manual_seed(0); GPT(...)`` on the CPU, PyTorch's default init.
(b) ``fanin-meta``: build the model on the meta device (no memory), then
    ``fanin.materialize(model, "gpt2(n_layer=...)", seed=0)`` with the counter stream.
(c) ``fanin-fsdp2 xW``: W gloo ranks on this machine; each builds the model on meta,
    ``fully_shard``s every block and the root (FSDP2, Shard(0)), allocates its shards
    (``to_empty``) and runs ``fanin.apply(model, "gpt2(...)", seed=0)``: only its local shards are
    filled, bit-identical to the same slices of (b) (tests/rules/test_sharded.py). Reported per
    rank (the slowest rank and the largest peak).

Time is wall-clock of the work (model construction/sharding/init), not of importing torch or
loading the stream's compiled kernels. Memory is the peak resident set of the process during the
work, above what it held after imports (``VmHWM`` from /proc/self/status, reset through
/proc/self/clear_refs). The ranks of (c) take turns (rank r works while the others wait in a
barrier; neither ``fully_shard`` nor ``fanin.apply`` communicates), so each rank's time is its own
work on all the machine's cores, as on a cluster where every rank has its own. ``fanin.apply``
fills every tensor before committing any (a failure changes nothing), so a rank's peak is about
twice its local shard.

With ``--device cuda`` cases (a) and (b) build on the GPU instead (``torch.device("cuda")`` for
torch, ``materialize(..., device="cuda")``, whose stream fills run on the GPU), timed with
``torch.cuda.synchronize()`` and with the peak of ``torch.cuda.max_memory_allocated``; the FSDP2
cases stay on the CPU (gloo), so they are not run then.

    python benchmarks/model_init.py            # ~350M parameters (GPT-2 medium shape)
    python benchmarks/model_init.py --size 1b  # ~1.1B parameters
    python benchmarks/model_init.py --small    # a few million parameters, seconds
    python benchmarks/model_init.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

SIZES = {
    # vocab, block, n_layer, n_head, n_embd
    "small": (8192, 256, 4, 8, 256),
    "350m": (50304, 1024, 24, 16, 1024),
    "1b": (50304, 1024, 36, 16, 1536),
}


def _status(field: str) -> int:
    """A memory field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _model(size: str, device: str):
    import torch

    from fanin.models import GPT

    vocab, block, n_layer, n_head, n_embd = SIZES[size]
    with torch.device(device):
        return GPT(vocab, block, n_layer, n_head, n_embd)


def _rules(size: str) -> str:
    return f"gpt2(n_layer={SIZES[size][2]})"


def _child(mode: str, size: str, out: str, device: str) -> None:
    import torch

    import fanin  # imported before the baseline is taken

    result: dict[str, object] = {"mode": mode, "device": device}
    cuda = device.startswith("cuda")
    if mode.startswith("fsdp"):
        import torch.distributed as dist
        from torch.distributed.fsdp import fully_shard

        # A file store in this run's directory: no port to find free (another process could take it).
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group("gloo", init_method=f"file://{out}.rendezvous", rank=rank, world_size=world)
        result["rank"] = rank
    # Load the stream's compiled kernels (numba, cached on disk) before measuring: a one-off
    # cost per process, like importing torch. On a GPU: the CUDA context and the first launches.
    for dev in ("cpu", device) if cuda else ("cpu",):
        for fill in ("uniform_", "normal_"):
            getattr(fanin.Stream(0, "warm-up"), fill)(torch.empty(64, device=dev), 0.0, 1.0)
        fanin.Stream(0, "warm-up").truncated_normal_(torch.empty(64, device=dev), 0.0, 1.0, -2.0, 2.0)
    # torch's first model built on the meta device loads its meta kernels (about 1 s here, once
    # per process, like importing torch); build a tiny one on each device so that no case pays a
    # one-off cost. The cost is printed beside the table.
    t_warm = time.perf_counter()
    _model("small", "meta")
    result["meta_warmup_seconds"] = time.perf_counter() - t_warm
    _model("small", device)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()
    if mode.startswith("fsdp"):
        # The ranks take turns (sharding and fanin.apply need no collective): each rank's time is
        # then its own work on the whole machine, as on a cluster where every rank has its cores.
        # Turns pass through files, not dist.barrier(): a rank waiting in a gloo barrier keeps a
        # core busy and would slow the rank whose turn it is.
        _wait_for_turn(out, rank)
    base = _status("VmRSS")
    _reset_peak()
    t0 = time.perf_counter()
    if mode == "torch":
        torch.manual_seed(0)
        model = _model(size, device)
    elif mode == "fanin-meta":
        model = _model(size, "meta")
        fanin.materialize(model, _rules(size), device=device, seed=0)
    else:
        model = _model(size, "meta")
        for block in model.h:
            fully_shard(block)
        fully_shard(model)
        model.to_empty(device="cpu")
        fanin.apply(model, _rules(size), seed=0)
        for module in model.modules():  # non-parameter buffers (the causal masks): their own hook
            if hasattr(module, "reset_buffers"):
                module.reset_buffers()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() - cuda_base if cuda else _status("VmHWM") - base
    result.update(
        seconds=elapsed,
        peak_bytes=peak,
        params=sum(p.numel() for p in model.parameters()),
        local_bytes=sum(
            (p.to_local() if hasattr(p, "to_local") else p).numel() * p.element_size() for p in model.parameters()
        ),
    )
    if mode.startswith("fsdp"):
        world = dist.get_world_size()
        dist.destroy_process_group()  # an idle gloo group still keeps a core busy
        with open(f"{out}.turn{rank + 1}", "w"):
            pass
        _wait_for_turn(out, world)
        out = f"{out}.rank{rank}"
    with open(out, "w") as f:
        json.dump(result, f)


def _wait_for_turn(out: str, turn: int) -> None:
    """Sleep until the rank before ``turn`` has written its turn file (turn 0 starts at once)."""
    while turn > 0 and not os.path.exists(f"{out}.turn{turn}"):
        time.sleep(0.01)


def _launch(mode: str, size: str, world: int, tmp: str, device: str) -> list[dict]:
    out = os.path.join(tmp, f"{mode}")
    procs = []
    for rank in range(world):
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        if mode.startswith("fsdp"):
            env.update(RANK=str(rank), WORLD_SIZE=str(world))
        which = ["--small"] if size == "small" else ["--size", size]
        cmd = [sys.executable, os.path.abspath(__file__), "--child", mode, *which, "--out", out, "--device", device]
        procs.append(subprocess.Popen(cmd, env=env))
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"{mode} exited with {p.returncode}")
    paths = [f"{out}.rank{r}" for r in range(world)] if mode.startswith("fsdp") else [out]
    results = []
    for path in paths:
        with open(path) as f:
            results.append(json.load(f))
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", choices=["350m", "1b"], default="350m")
    ap.add_argument("--small", action="store_true", help="a few million parameters: a quick check")
    ap.add_argument("--ranks", type=int, nargs="*", default=[2, 4], help="world sizes for the FSDP2 runs (CPU only)")
    ap.add_argument("--device", default="cpu", help="where (a) and (b) build the model: cpu (default) or cuda[:N]")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    size = "small" if args.small else args.size
    if args.child:
        _child(args.child, size, args.out, args.device)
        return
    cuda = args.device.startswith("cuda")
    if cuda:
        import torch

        if not torch.cuda.is_available():
            raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    if args.device != "cpu" and not cuda:
        raise SystemExit(f"--device must be cpu or cuda[:N], got --device {args.device}")
    ranks = [] if cuda else args.ranks

    import tempfile

    gib = 2.0**30
    with tempfile.TemporaryDirectory() as tmp:
        (torch_r,) = _launch("torch", size, 1, tmp, args.device)
        (meta_r,) = _launch("fanin-meta", size, 1, tmp, args.device)
        by_world = {w: _launch(f"fsdp{w}", size, w, tmp, "cpu") for w in ranks}

    n = torch_r["params"]
    where = f"on {args.device}" if cuda else f"{os.cpu_count()} CPU cores"
    print(f"GPT {size}: {n / 1e6:.1f}M parameters ({n * 4 / gib:.2f} GiB float32), {where}")
    print(f"(not timed: torch's one-off meta-kernel warm-up, {meta_r['meta_warmup_seconds']:.2f} s per process)")
    memory = "GPU peak allocated" if cuda else "peak resident set"
    print(f"{'case':<22}{'time s':>9}{'peak GiB':>10}{'time/torch':>12}{'peak/torch':>12}   (peak: {memory})")

    def row(name: str, seconds: float, peak: float) -> None:
        print(
            f"{name:<22}{seconds:>9.2f}{peak / gib:>10.2f}"
            f"{seconds / torch_r['seconds']:>12.2f}{peak / max(torch_r['peak_bytes'], 1):>12.2f}"
        )

    row("torch default", torch_r["seconds"], torch_r["peak_bytes"])
    row("fanin meta+stream", meta_r["seconds"], meta_r["peak_bytes"])
    for w, rs in by_world.items():
        slowest = max(r["seconds"] for r in rs)
        peak = max(r["peak_bytes"] for r in rs)
        row(f"fanin fsdp2 x{w} (rank)", slowest, peak)
    for w, rs in by_world.items():
        shard = max(r["local_bytes"] for r in rs)
        seconds = ", ".join(f"{r['seconds']:.2f}" for r in sorted(rs, key=lambda r: r["rank"]))
        print(f"  x{w}: largest local shard {shard / gib:.2f} GiB; per-rank seconds {seconds}")
    if cuda:
        print("  (the FSDP2 cases run on CPU ranks over gloo: not run with --device cuda)")


if __name__ == "__main__":
    main()
