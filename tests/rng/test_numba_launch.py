"""The fast path's kernels under threads, forks and processes starting together.

Each hazard of fanin.rng._numba_kernels' module docstring is reproduced in a fresh process
(the threading layer is chosen once per process) and must not happen:

- parallel fills from several Python threads under numba's ``workqueue`` layer (without the
  launch lock the process aborts: "Concurrent access has been detected", SIGABRT);
- a parallel fill in a process forked after one (with numba's default ``omp`` layer the child
  is killed: "fork() called from a process already using GNU OpenMP", SIGTERM);
- several processes loading a kernel from a cold on-disk cache at once (without the cache lock
  each compiles and rewrites the same cache files; with it one compiles and the others load).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import types

import pytest
import torch

from fanin.rng import stream as stream_mod

nk = stream_mod._numba()
pytestmark = pytest.mark.skipif(nk is None, reason="numba is not installed")


def _env(**extra: str | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _run(code: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=timeout
    )


def _died(done: subprocess.CompletedProcess) -> str:
    what = f"signal {signal.Signals(-done.returncode).name}" if done.returncode < 0 else f"exit {done.returncode}"
    return f"{what}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"


def test_parallel_fills_from_several_threads_under_workqueue_do_not_abort():
    code = """
        import threading, torch
        from fanin.rng.stream import Stream
        n = 1 << 18  # above SERIAL_MAX: the parallel kernels
        streams = [Stream(0, f"w{i}") for i in range(4)]
        want = [s.normal_(torch.empty(n), 0.0, 1.0, backend="torch") for s in streams]
        bad = []
        def work(i):
            t = torch.empty(n)
            for _ in range(25):
                streams[i].normal_(t, 0.0, 1.0)
                if not torch.equal(t, want[i]):
                    bad.append(i)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        import numba
        print(numba.threading_layer(), "bad" if bad else "ok")
    """
    done = _run(code, _env(NUMBA_THREADING_LAYER="workqueue", NUMBA_NUM_THREADS="2"))
    assert done.returncode == 0, _died(done)
    assert done.stdout.split() == ["workqueue", "ok"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_process_forked_after_parallel_fills_can_fill_in_parallel():
    code = """
        import os, torch
        from fanin.rng.stream import Stream
        s = Stream(1, "w")
        n = 1 << 18
        before = s.normal_(torch.empty(n), 0.0, 1.0)
        pid = os.fork()
        if pid == 0:
            child = s.normal_(torch.empty(n), 0.0, 1.0)
            os._exit(0 if torch.equal(child, before) else 3)
        _, status = os.waitpid(pid, 0)
        import numba
        print(numba.threading_layer(), os.waitstatus_to_exitcode(status))
    """
    done = _run(code, _env(NUMBA_THREADING_LAYER=None))
    assert done.returncode == 0, _died(done)
    layer, child = done.stdout.split()
    assert int(child) == 0, f"the forked child ended with {child} (negative: killed by that signal), layer={layer}"
    assert layer in ("tbb", "workqueue")


def test_a_threading_layer_chosen_by_the_user_is_kept():
    try:
        import numba.np.ufunc.omppool  # noqa: F401
    except ImportError:
        pytest.skip("numba's omp layer is not available here")
    code = """
        import torch
        from fanin.rng.stream import Stream
        Stream(0, "w").uniform_(torch.empty(1 << 17), -1.0, 1.0)
        import numba
        print(numba.threading_layer())
    """
    done = _run(code, _env(NUMBA_THREADING_LAYER="omp"))
    assert done.returncode == 0, _died(done)
    assert done.stdout.split() == ["omp"]


def test_prefer_fork_safe_layer_only_where_nothing_was_chosen(monkeypatch):
    from numba.np.ufunc import parallel

    monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
    monkeypatch.setattr(parallel, "_is_initialized", False)
    monkeypatch.setattr(nk.nb.config, "THREADING_LAYER", "default")
    assert nk.prefer_fork_safe_layer() == "forksafe"
    assert nk.nb.config.THREADING_LAYER == "forksafe"
    monkeypatch.setattr(nk.nb.config, "THREADING_LAYER", "omp")  # chosen in code
    assert nk.prefer_fork_safe_layer() is None and nk.nb.config.THREADING_LAYER == "omp"
    monkeypatch.setattr(nk.nb.config, "THREADING_LAYER", "default")
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "tbb")  # chosen in the environment
    assert nk.prefer_fork_safe_layer() is None and nk.nb.config.THREADING_LAYER == "default"
    monkeypatch.delenv("NUMBA_THREADING_LAYER")
    monkeypatch.setattr(parallel, "_is_initialized", True)  # threads already running
    assert nk.prefer_fork_safe_layer() is None and nk.nb.config.THREADING_LAYER == "default"


def test_processes_starting_on_a_cold_cache_compile_a_kernel_once(tmp_path):
    cache = tmp_path / "numba-cache"
    go = tmp_path / "go"
    code = f"""
        import os, time, numpy as np
        from fanin.rng import _numba_kernels as nk
        k = nk.to_bfloat16_serial
        while not os.path.exists({str(go)!r}):
            time.sleep(0.005)
        src = np.linspace(-3, 3, 1000, dtype=np.float32)
        dst = np.empty(1000, np.uint16)
        k(src, dst)
        print(sum(k.stats.cache_misses.values()), sum(k.stats.cache_hits.values()), nk.CACHED)
    """
    env = _env(NUMBA_CACHE_DIR=str(cache))
    cmd = [sys.executable, "-c", textwrap.dedent(code)]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    go.touch()  # all four wait for this, already imported: their first calls start together
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    rows = sorted(tuple(out.split()) for out, _ in outs)
    if rows[0][2] != "True":
        pytest.skip("numba found no writable cache directory")
    # (misses, hits): one process compiled and saved, the three others loaded its file
    assert [r[:2] for r in rows] == [("0", "1")] * 3 + [("1", "0")]
    assert (next(cache.rglob(nk.LOCK_NAME))).is_file()


def test_cache_lock_is_exclusive_and_never_fails_a_fill(tmp_path):
    import fcntl

    kernel = types.SimpleNamespace(_cache=types.SimpleNamespace(cache_path=str(tmp_path / "c")))
    with nk.cache_lock(kernel) as held:
        assert held
        fd = os.open(tmp_path / "c" / nk.LOCK_NAME, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(tmp_path / "c" / nk.LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released on exit
    finally:
        os.close(fd)
    (tmp_path / "file").write_text("")
    for no_dir in (len, types.SimpleNamespace(_cache=types.SimpleNamespace(cache_path=str(tmp_path / "file" / "x")))):
        with nk.cache_lock(no_dir) as held:  # no cache, or a directory that cannot exist
            assert held is False


def test_launch_keeps_the_kernel_s_face_and_its_bits():
    k = nk.KERNELS[nk.KIND_UNIFORM]
    assert isinstance(k, nk.Launch) and k.parallel and not nk.SERIAL_KERNELS[nk.KIND_UNIFORM].parallel
    assert k.__name__ == "fill_uniform" and repr(k) == "Launch(fill_uniform, parallel=True)"
    assert k.py_func is k.kernel.py_func and k.signatures == k.kernel.signatures
    s = stream_mod.Stream(3, "w")
    for n in (100, nk.SERIAL_MAX + 1):
        assert torch.equal(
            s.uniform_(torch.empty(n), -1.0, 1.0), s.uniform_(torch.empty(n), -1.0, 1.0, backend="torch")
        )


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_launch_is_held_gets_a_free_lock():
    code = """
        import os
        from fanin.rng import _numba_kernels as nk
        nk._launch_lock.acquire()  # as if another thread were inside a parallel fill
        pid = os.fork()
        if pid == 0:
            os._exit(0 if nk._launch_lock.acquire(timeout=5) else 4)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """
    done = _run(code, _env())
    assert done.returncode == 0, _died(done)
    assert done.stdout.split() == ["0"]
