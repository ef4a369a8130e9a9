"""pytest plugin for scripts/gpu_check.py: run only the tests that need a CUDA device, and count them.

The repository marks a GPU test by skipping it without one,
``@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")`` (on the
test or as a module's ``pytestmark``); the names vary (``test_on_gpu``, ``test_cuda``). This
plugin keeps exactly the collected tests that carry a ``skipif`` whose reason mentions CUDA or a
GPU, deselects the rest, and writes what happened to the JSON file named by
``FANIN_GPU_REPORT`` (passed / failed / skipped node ids, skip reasons), so that the caller can
treat a skip on a machine that has a GPU as the failure it is.

    FANIN_GPU_REPORT=out.json python -m pytest -p pytest_cuda_only tests/diagnostics/test_probe.py
"""

from __future__ import annotations

import json
import os
import re

import pytest

_NEEDS_GPU = re.compile(r"\b(cuda|gpu)\b", re.IGNORECASE)
_outcomes: dict[str, dict[str, str]] = {"passed": {}, "failed": {}, "skipped": {}}


def needs_cuda(item: pytest.Item) -> bool:
    """Whether ``item`` is skipped without a CUDA device (a ``skipif`` whose reason names CUDA/GPU)."""
    return any(_NEEDS_GPU.search(str(mark.kwargs.get("reason", ""))) for mark in item.iter_markers("skipif"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep = [item for item in items if needs_cuda(item)]
    drop = [item for item in items if not needs_cuda(item)]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _outcomes["skipped"][report.nodeid] = reason
    elif report.failed:
        _outcomes["failed"][report.nodeid] = report.when
    elif report.when == "call":
        _outcomes["passed"][report.nodeid] = "passed"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("FANIN_GPU_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump({"exitstatus": int(exitstatus), **_outcomes}, f, indent=1)
