"""scripts/gpu_check.py, the one-run GPU check of the stream, as far as it can be checked without a GPU.

Its plan and time limits, its refusal without a CUDA device, the selection of CUDA tests by
scripts/pytest_cuda_only.py, the verdict of a step (a skip on a GPU machine is a failure) and
the time limit of a step. The GPU run itself is what the script is for.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.py"


def _load():
    if "gpu_check" in sys.modules:
        return sys.modules["gpu_check"]
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def _script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_dry_run_shows_every_step_within_the_eight_minutes():
    done = _script("--python", sys.executable, "--dry-run")
    assert done.returncode == 0, done.stderr
    names = re.findall(r"^  \d\. (\S+) \(at most (\d+) s\)", done.stdout, re.MULTILINE)
    assert [n for n, _ in names][:5] == [
        "cuda-tests",
        "stream-bits",
        "gpu-stream-bench",
        "stream-bench",
        "model-init-bench",
    ]
    budget = float(re.search(r"within a budget of (\d+) s", done.stdout).group(1))
    assert budget <= 450 < 8 * 60
    assert "tests/rng/test_stream_cuda.py" in done.stdout and "benchmarks/model_init.py --device cuda" in done.stdout
    assert sys.executable in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_without_a_gpu_it_stops_at_once_naming_what_it_tried():
    t0 = time.monotonic()
    done = _script("--python", sys.executable)
    assert done.returncode == 2
    assert done.stderr.startswith("gpu_check: no CUDA device: this check needs a machine with a GPU")
    assert f"tried {sys.executable}" in done.stderr and "no CUDA device visible" in done.stderr
    assert f"torch {torch.__version__}" in done.stderr
    assert done.stdout == "" and time.monotonic() - t0 < 60  # nothing ran


def test_a_missing_interpreter_and_an_unknown_step_are_named():
    done = _script("--python", "/nonexistent/python")
    assert done.returncode == 2 and "tried /nonexistent/python: FileNotFoundError" in done.stderr
    done = _script("--python", sys.executable, "--only", "cuda-test", "--dry-run")
    assert done.returncode == 2
    assert "unknown step(s) ['cuda-test']; accepted: cuda-tests, stream-bits, gpu-stream-bench" in done.stderr


def _synthetic_tests(tmp_path: Path) -> Path:
    path = tmp_path / "test_synthetic.py"
    path.write_text(
        textwrap.dedent(
            """
            import pytest

            @pytest.mark.skipif(False, reason="needs a CUDA device")
            def test_gpu_runs():
                pass

            @pytest.mark.skipif(True, reason="no GPU here")
            def test_gpu_skipped():
                pass

            @pytest.mark.skipif(False, reason="numba is not installed")
            def test_cpu_only():
                pass

            def test_plain():
                pass
            """
        )
    )
    return path


def test_the_plugin_runs_only_cuda_marked_tests_and_reports_skips(tmp_path):
    tests = _synthetic_tests(tmp_path)
    report = tmp_path / "report.json"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(ROOT / "scripts"), *[p for p in sys.path if p]]),
        FANIN_GPU_REPORT=str(report),
    )
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "pytest_cuda_only",
        "-o",
        "addopts=",
        str(tests),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout
    got = json.loads(report.read_text())
    assert list(got["passed"]) == [f"{tests.name}::test_gpu_runs"]
    assert got["skipped"] == {f"{tests.name}::test_gpu_skipped": "Skipped: no GPU here"}
    assert got["failed"] == {}
    assert "2 deselected" in done.stdout


def test_a_step_s_verdict_fails_on_skips_failures_timeouts_and_a_missing_report(tmp_path):
    gc = _load()
    step = gc.Step("stream-bits", ["pytest"], 10, "x", report=tmp_path / "r.json")
    assert gc._verdict(step) == "not run (time budget spent)"
    step.result = {"seconds": 3.0, "returncode": 0, "timed_out": False}
    assert gc._verdict(step) == "FAILED: pytest exited with 0 before writing its report"
    step.report.write_text(json.dumps({"exitstatus": 0, "passed": {"a": "passed"}, "failed": {}, "skipped": {}}))
    assert gc._verdict(step) == "ok: 1 passed, 0 failed, 0 skipped"
    step.report.write_text(
        json.dumps({"exitstatus": 0, "passed": {"a": "passed"}, "failed": {}, "skipped": {"b": "no numba"}})
    )
    assert gc._verdict(step) == "FAILED: 1 passed, 0 failed, 1 skipped (skip reasons: no numba), pytest exit 0"
    step.report.write_text(json.dumps({"exitstatus": 5, "passed": {}, "failed": {}, "skipped": {}}))
    step.result["returncode"] = 5
    assert gc._verdict(step).startswith("FAILED: 0 passed")  # nothing selected is a failure too
    step.result = {"seconds": 12.0, "returncode": -9, "timed_out": True}
    assert gc._verdict(step) == "TIMEOUT after 12 s"
    bench = gc.Step("stream-bench", ["python"], 10, "x", result={"seconds": 1.0, "returncode": 3, "timed_out": False})
    assert gc._verdict(bench) == "FAILED: exit 3"


def test_a_step_is_stopped_at_its_time_limit_with_its_children(tmp_path):
    gc = _load()
    pid_file = tmp_path / "grandchild.pid"
    grandchild = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    code = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {grandchild!r}]); time.sleep(60)"
    step = gc.Step("slow", [sys.executable, "-c", code], 60, "sleeps")
    t0 = time.monotonic()
    gc._run(step, 3.0, tmp_path / "slow.log")
    assert step.result["timed_out"] and time.monotonic() - t0 < 30
    assert gc._verdict(step).startswith("TIMEOUT after")
    pid = int(pid_file.read_text())
    for _ in range(100):  # the grandchild went with its process group
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("the step's child process outlived the time limit")
