"""Run ``fanin.apply`` on FSDP2 and tensor-parallel models over W gloo ranks, many times over.

A soak test for the distributed path: every run starts ``--world`` fresh ranks on this machine
(gloo, CPU), each builds the same small transformer-like stack twice, shards it once with FSDP2
(``fully_shard`` per layer and the root) and once with tensor parallelism (``ColwiseParallel`` /
``RowwiseParallel``), runs ``fanin.apply(model, RULES, seed=0)``, gathers every parameter with
``full_tensor()`` and compares it BITWISE with ``fanin.apply`` on the plain model. A rank that
dies is reported with its signal, the tail of its stderr (``faulthandler`` is on in every rank,
so a SIGABRT/SIGSEGV shows each thread's Python stack) and, with ``--cores``, a native backtrace
of its core file by gdb.

The knobs are the suspects of a crash that shows up only with several ranks::

    --start popen|spawn|fork  how ranks start: fresh interpreters (subprocess, like torchrun),
                              multiprocessing spawn, or fork of a parent that has already run
                              fanin's parallel kernels (numba's threads started; --warm-torch:
                              torch's OpenMP pool too, which torch itself cannot fork)
    --cache fresh|shared|tree numba's on-disk JIT cache: an empty NUMBA_CACHE_DIR per run (every
                              rank compiles at once and writes the same cache files), one
                              directory for all runs, or the in-tree __pycache__
    --layer default|omp|workqueue|tbb   NUMBA_THREADING_LAYER
    --numba-threads N / --torch-threads N / --omp-threads N
    --concurrent              fanin.apply on the two models from two Python threads at once
    --teardown barrier|destroy|none, --rendezvous tcp|file

    python scripts/gloo_soak.py --runs 20                     # 4 ranks, fresh caches
    python scripts/gloo_soak.py --runs 50 --cache shared --start spawn --world 4

Exit status 0 when every run passed, 1 otherwise; one line per run and a summary at the end.

What it found (numba 0.68.1, torch 2.13.0 CPU, Linux, 2 shared cores; runs x 4 ranks, width 128
unless said). Before the fix of fanin.rng._numba_kernels: fresh interpreters with a warm cache
12/12 ok, with an empty cache per run 5/5 ok, spawn 8/8, ``--layer workqueue`` 8/8,
``--teardown none`` 8/8; ``--start fork`` 0/8, every rank killed by SIGTERM ("fork() called from
a process already using GNU OpenMP": numba's default ``omp`` layer); ``--concurrent --layer
workqueue --width 256``: SIGABRT in all 4 ranks at the first run ("Concurrent access has been
detected"). After it: fork 6/6, ``--concurrent`` 4/4 with ``workqueue`` and 4/4 with the default
layer, empty caches 3/3 (82-100 s a run instead of 115-167 s: one rank compiles). A SIGABRT of one
rank with fanin called from one thread per rank and the default layer was not seen in any run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Rules with every kind of kernel the stream has: normal, uniform and truncated normal fills
# (float32, in local shards above and below the serial threshold of 65,536 elements), the
# float64 Gaussian of orthogonal, and the scalar fills.
RULES = {
    "emb.weight": "normal(std=0.02)",
    "*.up.weight": "kaiming_uniform(a=sqrt(5))",
    "*.up.bias": "uniform(a=-0.1, b=0.1)",
    "*.down.weight": "trunc_normal(std=0.02, a=-0.04, b=0.04)",
    "*.down.bias": "zeros",
    "*.norm.weight": "ones",
    "*.norm.bias": "zeros",
    "*.gate.weight": "orthogonal",
    "head.weight": "xavier_normal",
}


def _model(width: int, layers: int):
    import torch

    class Block(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = torch.nn.LayerNorm(width)
            self.up = torch.nn.Linear(width, 4 * width)
            self.gate = torch.nn.Linear(4 * width, 4 * width, bias=False)
            self.down = torch.nn.Linear(4 * width, width)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(4 * width, width)
            self.blocks = torch.nn.ModuleList(Block() for _ in range(layers))
            self.head = torch.nn.Linear(width, 97, bias=False)

    return Net()


def _rank_main(rank: int, world: int, port: int, out: str, opts: dict) -> None:
    """One rank: FSDP2 and TP models initialized by fanin.apply, gathered and compared bitwise."""
    log = open(os.path.join(out, f"rank{rank}.log"), "w")  # lives as long as the rank
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    import faulthandler

    faulthandler.enable(file=log, all_threads=True)
    import warnings

    warnings.simplefilter("ignore")
    import torch
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor
    from torch.distributed.tensor.parallel import ColwiseParallel, RowwiseParallel, parallelize_module

    import fanin

    if opts["torch_threads"]:
        torch.set_num_threads(opts["torch_threads"])
    if opts["rendezvous"] == "file":
        init = "file://" + os.path.join(out, "rendezvous")
    else:
        init = f"tcp://127.0.0.1:{port}"
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    width, layers = opts["width"], opts["layers"]
    found: dict[str, str] = {}
    t0 = time.perf_counter()

    plain = _model(width, layers)
    fanin.apply(plain, RULES, seed=0)
    want = {n: p.detach().clone() for n, p in plain.named_parameters()}

    def compare(kind: str, model) -> None:
        for name, p in model.named_parameters():
            got = p.full_tensor() if isinstance(p, DTensor) else p
            ok = got.dtype == want[name].dtype and torch.equal(got.detach(), want[name])
            found[f"{kind}/{name}"] = "ok" if ok else "differs"

    fsdp = _model(width, layers)
    for block in fsdp.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(fsdp, mesh=mesh)
    tp_plan = {f"blocks.{i}.up": ColwiseParallel() for i in range(layers)}
    tp_plan.update({f"blocks.{i}.down": RowwiseParallel() for i in range(layers)})
    tp_plan.update({f"blocks.{i}.gate": ColwiseParallel() for i in range(layers)})
    tp = parallelize_module(_model(width, layers), mesh, tp_plan)
    if opts["concurrent"]:
        # fanin.apply needs no collective: both models at once, from two Python threads.
        import threading

        errors: list[BaseException] = []

        def apply(model) -> None:
            try:
                fanin.apply(model, RULES, seed=0)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=apply, args=(m,)) for m in (fsdp, tp)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
    else:
        fanin.apply(fsdp, RULES, seed=0)
        fanin.apply(tp, RULES, seed=0)
    compare("fsdp2", fsdp)
    compare("tp", tp)

    found["time"] = f"{time.perf_counter() - t0:.2f}"
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(found, f)
    if opts["teardown"] == "barrier":
        dist.barrier()
        dist.destroy_process_group()
    elif opts["teardown"] == "destroy":
        dist.destroy_process_group()
    log.flush()


def _env(opts: dict, cache_dir: str | None) -> dict[str, str]:
    env = {"PYTHONWARNINGS": "ignore", "PYTHONFAULTHANDLER": "1"}
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    if opts["layer"] != "default":
        env["NUMBA_THREADING_LAYER"] = opts["layer"]
    if opts["numba_threads"]:
        env["NUMBA_NUM_THREADS"] = str(opts["numba_threads"])
    if opts["omp_threads"]:
        env["OMP_NUM_THREADS"] = str(opts["omp_threads"])
    return env


def _allow_cores() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _warm_parent(with_torch: bool) -> None:
    """Run fanin's parallel kernels in this process (numba's threads up) before forking.

    ``with_torch`` also runs a parallel torch op first. torch itself is not fork-safe then: its
    GNU OpenMP pool does not survive a fork, and the children hang in their first parallel torch
    op (seen here in ``gomp_team_barrier_wait_end`` under a ``mul_``), with or without fanin.
    """
    import torch

    import fanin

    if with_torch:
        torch.randn(512, 512) @ torch.randn(512, 512)
    fanin.Stream(0, "warm").normal_(torch.empty(1 << 17), 0.0, 1.0)


def _run_once(run: int, args, opts: dict, cache_dir: str | None, work: Path) -> tuple[str, list[int | None]]:
    out = work / f"run{run}"
    out.mkdir()
    port = _free_port()
    world = args.world
    env = _env(opts, cache_dir)
    deadline = time.monotonic() + args.timeout
    if args.start == "popen":
        procs = []
        for rank in range(world):
            cmd = [sys.executable, os.path.abspath(__file__), "--rank", str(rank), str(world), str(port), str(out)]
            cmd.append(json.dumps(opts))
            procs.append(
                subprocess.Popen(
                    cmd, env={**os.environ, **env}, cwd=out, preexec_fn=_allow_cores if args.cores else None
                )
            )
        polls = [p.poll for p in procs]

        def codes():
            return [p.returncode for p in procs]

        def kill():
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    else:
        import multiprocessing as mp

        os.environ.update(env)  # inherited by spawn children and forks alike
        os.chdir(out)
        ctx = mp.get_context(args.start)
        ps = [ctx.Process(target=_rank_main, args=(r, world, port, str(out), opts)) for r in range(world)]
        for p in ps:
            p.start()
        polls = [lambda p=p: p.exitcode for p in ps]

        def codes():
            return [p.exitcode for p in ps]

        def kill():
            for p in ps:
                if p.exitcode is None:
                    p.kill()
                    p.join()

    try:
        while any(poll() is None for poll in polls):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        kill()
    rcs = codes()
    verdict = _verdict(rcs, out, world, timed_out=time.monotonic() > deadline)
    return verdict, rcs


def _verdict(rcs: list[int | None], out: Path, world: int, timed_out: bool) -> str:
    bad = [(r, rc) for r, rc in enumerate(rcs) if rc != 0]
    if bad:
        parts = []
        for r, rc in bad:
            what = f"signal {signal.Signals(-rc).name}" if rc is not None and rc < 0 else f"exit {rc}"
            parts.append(f"rank {r}: {what}")
        return ("TIMEOUT " if timed_out else "FAILED ") + "; ".join(parts)
    for r in range(world):
        found = json.loads((out / f"rank{r}.json").read_text())
        differs = [k for k, v in found.items() if k != "time" and v != "ok"]
        if differs:
            return f"WRONG rank {r}: {differs[:5]}"
    return "ok"


_CAUSES = ("Fatal Python error", "Terminating", "terminating", "terminate called", "what():", "Error", "error:")


def _excerpt(log: str, tail: int = 30) -> str:
    """The lines of a rank's log that name a cause (numba, glibc, C++ terminate, Python), then its tail."""
    lines = [line for line in log.splitlines() if not line.startswith("Extension modules:")]
    causes = [line for line in lines if any(c in line for c in _CAUSES)][:10]
    return "\n".join(["causes:", *causes, f"last {tail} lines:", *lines[-tail:]])


def _backtrace(core: Path) -> str:
    gdb = shutil.which("gdb")
    if gdb is None:
        return "(gdb not found)"
    done = subprocess.run(
        [gdb, "-batch", "-q", "-ex", "thread apply all bt 25", sys.executable, str(core)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout[-12000:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--world", type=int, default=4)
    ap.add_argument("--start", choices=["popen", "spawn", "fork"], default="popen")
    ap.add_argument("--cache", choices=["fresh", "shared", "tree"], default="fresh")
    ap.add_argument("--layer", choices=["default", "omp", "workqueue", "tbb"], default="default")
    ap.add_argument("--numba-threads", type=int, default=0)
    ap.add_argument("--torch-threads", type=int, default=0)
    ap.add_argument("--omp-threads", type=int, default=0)
    ap.add_argument("--width", type=int, default=128, help="model width (local shards above 65,536 elements at 128)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--teardown", choices=["barrier", "destroy", "none"], default="barrier")
    ap.add_argument("--rendezvous", choices=["tcp", "file"], default="tcp", help="tcp://127.0.0.1:PORT or file://")
    ap.add_argument(
        "--concurrent", action="store_true", help="apply to the FSDP2 and TP models from two threads at once"
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument(
        "--warm-torch", action="store_true", help="with --start fork: a parallel torch op in the parent too"
    )
    ap.add_argument("--cores", action="store_true", help="allow core files and print gdb backtraces of crashed ranks")
    ap.add_argument("--keep", type=Path, help="keep every run's logs under this directory")
    ap.add_argument("--rank", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.rank:
        rank, world, port, out, opts = args.rank
        _rank_main(int(rank), int(world), int(port), out, json.loads(opts))
        return 0
    names = (
        "layer",
        "numba_threads",
        "torch_threads",
        "omp_threads",
        "width",
        "layers",
        "teardown",
        "rendezvous",
        "concurrent",
    )
    opts = {k: getattr(args, k) for k in names}
    work = args.keep or Path(tempfile.mkdtemp(prefix="gloo-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    shared = str(work / "numba-cache") if args.cache == "shared" else None
    if args.start == "fork":
        _warm_parent(args.warm_torch)
    knobs = ", ".join(f"{k}={v}" for k, v in opts.items())
    print(f"{args.runs} runs x {args.world} ranks, start={args.start}, cache={args.cache}, {knobs}", flush=True)
    failures = 0
    t_all = time.perf_counter()
    here = os.getcwd()
    for run in range(args.runs):
        cache_dir = {"fresh": str(work / f"run{run}-cache"), "shared": shared, "tree": None}[args.cache]
        t0 = time.perf_counter()
        verdict, rcs = _run_once(run, args, opts, cache_dir, work)
        os.chdir(here)
        print(f"run {run:3d}: {verdict} ({time.perf_counter() - t0:.1f} s, exit codes {rcs})", flush=True)
        if verdict != "ok":
            failures += 1
            out = work / f"run{run}"
            for r, rc in enumerate(rcs):
                if rc != 0:
                    print(f"--- rank {r} ---\n{_excerpt((out / f'rank{r}.log').read_text(errors='replace'))}")
                    for core in sorted(out.glob("core*")):
                        print(f"--- {core.name} ---\n{_backtrace(core)}")
    total = time.perf_counter() - t_all
    print(f"{args.runs - failures}/{args.runs} runs passed in {total:.0f} s ({work})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
