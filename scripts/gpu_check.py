"""Everything that needs a GPU, in one short run: CUDA tests, CPU==GPU stream bits, benchmarks.

    python scripts/gpu_check.py              # on a machine with a CUDA GPU, from anywhere
    python scripts/gpu_check.py --dry-run    # the plan: interpreter, steps, commands, time limits
    python scripts/gpu_check.py --list       # the CUDA tests it would run (collection only)

Steps, each under its own time limit and all within ``--budget`` seconds (default 450, under the
8 minutes asked for):

1. ``cuda-tests``: every test of the suite that is skipped without a CUDA device (a ``skipif``
   whose reason names CUDA or a GPU: scripts/pytest_cuda_only.py selects them), except (2).
2. ``stream-bits``: tests/rng/test_stream_cuda.py, the counter stream on the GPU (torch reference
   path) against the CPU fast path (numba) bit for bit: every transform and dtype, boxes,
   slices, strided views, random access, the sparse permutation, every registered scheme and a
   whole model materialized on the GPU. On a GPU machine a skipped test fails the step.
3. ``gpu-stream-bench``: scripts/gpu_stream_bench.py, the stream on the GPU against torch's CUDA
   samplers and against the CPU fast path (ratios).
4. ``stream-bench``: benchmarks/stream.py (CPU only: it has no device option) with 1 and all
   threads.
5. ``model-init-bench``: benchmarks/model_init.py --device cuda (torch's default init and
   fanin.materialize, both on the GPU).
6. ``audit-bench``: benchmarks/audit.py, if the repository has it (with ``--device cuda`` where
   its ``--help`` offers a ``--device`` option).

The interpreter: ``--python``, else ``$FANIN_PYTHON``, else the repository's ``.venv`` (the
README's ``make`` creates it), else this interpreter, else ``python3`` on the PATH: the first one
whose torch sees a CUDA device and that has pytest. fanin is taken from the repository's
``src/`` (nothing needs installing). ``--setup`` runs ``make venv`` first when there is no
``.venv`` (that install is not part of the time budget). Without a GPU the check stops at once
with exit status 2 and says what each interpreter has; a failed step gives exit status 1.
Every step's full output is kept in ``--out`` (default: a new temporary directory).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
STREAM_BITS = "tests/rng/test_stream_cuda.py"
BUDGET_S = 450.0

_PROBE = r"""
import json, sys
info = {"python": sys.executable, "version": sys.version.split()[0]}
try:
    import torch
    info.update(torch=torch.__version__, cuda_build=torch.version.cuda, cuda=torch.cuda.is_available())
    if info["cuda"]:
        info.update(devices=torch.cuda.device_count(), device=torch.cuda.get_device_name(0))
except Exception as e:
    info["torch_error"] = f"{type(e).__name__}: {e}"
for mod in ("numpy", "numba", "pytest", "scipy"):
    try:
        info[mod] = __import__(mod).__version__
    except Exception:
        info[mod] = None
print(json.dumps(info))
"""


@dataclass
class Step:
    name: str
    argv: list[str]
    timeout: float
    what: str
    report: Path | None = None  # the pytest plugin's JSON summary
    result: dict = field(default_factory=dict)


def probe(python: str) -> dict:
    """What ``python`` has: torch and whether it sees a GPU, numba, pytest (JSON from a child)."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"python": python, "error": f"{type(err).__name__}: {err}"}
    if done.returncode != 0:
        return {"python": python, "error": (done.stderr.strip().splitlines() or ["exit " + str(done.returncode)])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def candidates(explicit: str | None) -> list[str]:
    """Interpreters to try, in order, without duplicates."""
    if explicit:
        return [explicit]
    found = [
        os.environ.get("FANIN_PYTHON"),
        str(ROOT / ".venv" / "bin" / "python"),
        sys.executable,
        shutil.which("python3"),
    ]
    out: list[str] = []
    for c in found:
        if (
            c
            and (os.path.exists(c) or shutil.which(c))
            and os.path.realpath(c) not in {os.path.realpath(o) for o in out}
        ):
            out.append(c)
    return out


def describe(info: dict) -> str:
    if "error" in info:
        return f"{info['python']}: {info['error']}"
    if "torch_error" in info:
        return f"{info['python']} (Python {info['version']}): torch does not import ({info['torch_error']})"
    gpu = f"{info['devices']} CUDA device(s), {info['device']}" if info.get("cuda") else "no CUDA device visible"
    build = f"CUDA {info['cuda_build']} build" if info.get("cuda_build") else "CPU-only build"
    mods = ", ".join(f"{m} {info[m] or 'MISSING'}" for m in ("numba", "pytest", "numpy"))
    return f"{info['python']} (Python {info['version']}): torch {info['torch']} ({build}), {gpu}; {mods}"


def choose(pythons: list[str]) -> tuple[str | None, list[dict]]:
    infos = []
    for python in pythons:
        info = probe(python)
        infos.append(info)
        if info.get("cuda") and info.get("pytest"):
            return python, infos
    return None, infos


def _cuda_test_files() -> list[str]:
    """Test files that mention CUDA (collecting only these keeps step 1 short), minus step 2's."""
    files = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel != STREAM_BITS and re.search(r"cuda", path.read_text(errors="replace"), re.IGNORECASE):
            files.append(rel)
    return files


def _help_mentions(python: str, script: Path, option: str) -> bool:
    try:
        done = subprocess.run(
            [python, str(script), "--help"], capture_output=True, text=True, timeout=60, env=_env(None)
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return option in done.stdout


def _env(report: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(SCRIPTS), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONWARNINGS"] = env.get("PYTHONWARNINGS", "")
    if report is not None:
        env["FANIN_GPU_REPORT"] = str(report)
    else:
        env.pop("FANIN_GPU_REPORT", None)
    return env


def plan(python: str, out: Path, cpus: int) -> list[Step]:
    pytest_argv = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pytest_cuda_only", "-rfEs"]
    threads = f"1,{cpus}" if cpus > 1 else "1"
    steps = [
        Step("cuda-tests", [*pytest_argv, *_cuda_test_files()], 120, "the suite's CUDA-marked tests"),
        Step(
            "stream-bits", [*pytest_argv, STREAM_BITS], 150, "CPU == GPU stream bits, every transform/dtype/box/scheme"
        ),
        Step(
            "gpu-stream-bench",
            [python, "scripts/gpu_stream_bench.py", "--n", "50000000"],
            90,
            "stream on GPU vs torch CUDA",
        ),
        Step(
            "stream-bench",
            [
                python,
                "benchmarks/stream.py",
                "--n",
                "20000000",
                "--threads",
                threads,
                "--repeat",
                "2",
                "--orthogonal-n",
                "2048",
            ],
            120,
            "stream on CPU vs torch (benchmarks/stream.py has no device option)",
        ),
        Step(
            "model-init-bench",
            [python, "benchmarks/model_init.py", "--device", "cuda"],
            120,
            "GPT-350M init on the GPU",
        ),
    ]
    audit = ROOT / "benchmarks" / "audit.py"
    if audit.exists():
        extra = ["--device", "cuda"] if _help_mentions(python, audit, "--device") else []
        steps.append(Step("audit-bench", [python, "benchmarks/audit.py", *extra], 90, "the audit benchmark"))
    for s in steps[:2]:
        s.report = out / f"{s.name}.json"
    return steps


def _run(step: Step, timeout: float, log: Path) -> None:
    """Run ``step`` with its output shown and kept; kill its process group at ``timeout``."""
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(
            step.argv,
            cwd=ROOT,
            env=_env(step.report),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                f.write(line)
                sys.stdout.write(f"  | {line}")
                sys.stdout.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
            timed_out = True
        reader.join(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    step.result = {"seconds": time.perf_counter() - t0, "returncode": proc.returncode, "timed_out": timed_out}


def _verdict(step: Step) -> str:
    r = step.result
    if not r:
        return "not run (time budget spent)"
    if r["timed_out"]:
        return f"TIMEOUT after {r['seconds']:.0f} s"
    if step.report is not None:
        if not step.report.exists():
            return f"FAILED: pytest exited with {r['returncode']} before writing its report"
        rep = json.loads(step.report.read_text())
        counts = f"{len(rep['passed'])} passed, {len(rep['failed'])} failed, {len(rep['skipped'])} skipped"
        if rep["failed"] or rep["skipped"] or r["returncode"] != 0 or not rep["passed"]:
            reasons = sorted(set(rep["skipped"].values()))[:3]
            why = f" (skip reasons: {'; '.join(reasons)})" if reasons else ""
            return f"FAILED: {counts}{why}, pytest exit {r['returncode']}"
        return f"ok: {counts}"
    return "ok" if r["returncode"] == 0 else f"FAILED: exit {r['returncode']}"


_RATIO = re.compile(r"(\d\.\d\dx|time/torch|ratio|speed-up|scaling|target|bit for bit|torch default|fanin )")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--python", help="the interpreter to use (torch with CUDA, pytest)")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help=f"seconds for all steps (default {BUDGET_S:.0f})")
    ap.add_argument("--only", nargs="*", metavar="STEP", help="run only these steps (names as in --dry-run)")
    ap.add_argument("--out", type=Path, help="directory for the step logs (default: a new temporary one)")
    ap.add_argument("--dry-run", action="store_true", help="print the interpreter and the plan; run nothing")
    ap.add_argument(
        "--list", action="store_true", help="list the CUDA tests of steps 1 and 2 (collection only, no GPU needed)"
    )
    ap.add_argument("--setup", action="store_true", help="run `make venv` first when the repository has no .venv")
    args = ap.parse_args(argv)

    if args.setup and not (ROOT / ".venv").exists():
        print("setting up .venv with `make venv` (not counted in the budget)", flush=True)
        subprocess.run(["make", "venv"], cwd=ROOT, check=True, timeout=1800)
    pythons = candidates(args.python)
    if not pythons:
        print("gpu_check: no Python interpreter found (give --python)", file=sys.stderr)
        return 2
    python, infos = choose(pythons)
    chosen = python or pythons[0]
    out = args.out or Path(tempfile.gettempdir()) / f"fanin-gpu-check-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"

    if args.list:
        files = [*_cuda_test_files(), STREAM_BITS]
        cmd = [chosen, "-m", "pytest", "-p", "no:cacheprovider", "-p", "pytest_cuda_only", "--collect-only", *files]
        return subprocess.run(cmd, cwd=ROOT, env=_env(None)).returncode

    steps = plan(chosen, out, os.cpu_count() or 1)
    if args.only is not None:
        unknown = sorted(set(args.only) - {s.name for s in steps})
        if unknown:
            print(
                f"gpu_check: unknown step(s) {unknown}; accepted: {', '.join(s.name for s in steps)}", file=sys.stderr
            )
            return 2
        steps = [s for s in steps if s.name in args.only]

    if args.dry_run:
        print("interpreters (the first with a CUDA device and pytest is used):")
        for info in infos:
            print(f"  {describe(info)}")
        print(f"plan, within a budget of {args.budget:.0f} s (logs in {out}):")
        for i, s in enumerate(steps, 1):
            print(f"  {i}. {s.name} (at most {s.timeout:.0f} s): {s.what}\n     {' '.join(s.argv)}")
        print(f"  sum of the step limits: {sum(s.timeout for s in steps):.0f} s; the budget cuts the last steps short")
        return 0

    if python is None:
        print(
            "gpu_check: no CUDA device: this check needs a machine with a GPU and a CUDA build of torch.",
            file=sys.stderr,
        )
        for info in infos:
            print(f"  tried {describe(info)}", file=sys.stderr)
        print(
            "  give --python PATH (an interpreter whose torch sees the GPU and has pytest), or --setup.",
            file=sys.stderr,
        )
        return 2
    out.mkdir(parents=True, exist_ok=True)
    chosen_info = infos[-1]
    print(f"gpu_check: {describe(chosen_info)}\nlogs: {out}\n", flush=True)
    if not chosen_info.get("numba"):
        print("  note: numba is missing: stream-bits will skip (fail) its CPU fast-path comparisons\n", flush=True)

    deadline = time.monotonic() + args.budget
    for i, s in enumerate(steps, 1):
        left = deadline - time.monotonic()
        if left < 20:
            break
        limit = min(s.timeout, left)
        print(f"[{i}/{len(steps)}] {s.name}: {s.what} (limit {limit:.0f} s)\n  $ {' '.join(s.argv)}", flush=True)
        _run(s, limit, out / f"{s.name}.log")
        print(f"[{i}/{len(steps)}] {s.name}: {_verdict(s)} ({s.result['seconds']:.0f} s)\n", flush=True)

    print("summary:")
    failed = 0
    for s in steps:
        verdict = _verdict(s)
        failed += not verdict.startswith("ok")
        took = f"{s.result['seconds']:6.0f} s" if s.result else "      -"
        print(f"  {s.name:<18}{took}  {verdict}")
        if s.result and s.report is None:
            lines = (out / f"{s.name}.log").read_text(errors="replace").splitlines()
            for line in [ln for ln in lines if _RATIO.search(ln)][:12]:
                print(f"      {line.strip()}")
    print(f"{len(steps) - failed}/{len(steps)} steps ok; logs in {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
