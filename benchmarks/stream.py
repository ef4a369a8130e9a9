"""Throughput of fanin's counter-based stream next to torch's own samplers, in one run.

    python benchmarks/stream.py                 # 100M float32 per scheme, 1 and 2 threads
    python benchmarks/stream.py --n 10000000 --threads 2 --no-orthogonal

For each thread count it times (best of --repeat, after one warm-up call, on memory already
touched) torch's ``fill_`` (the memory-write ceiling), ``uniform_``, ``normal_`` and
``nn.init.trunc_normal_``, and the stream's uniform, normal and truncated normal, then prints
GB/s of output and the ratios the issue's targets are stated in. ``orthogonal`` compares
``nn.init.orthogonal_`` with the stream's float64-QR orthogonal on a 4096 x 4096 matrix (float32
and bfloat16). The numba compile (or cache load) time of the first call is printed separately,
and the per-call time of small fills (24 to 65,536 elements: biases and norms) as a median.
Other processes on the machine change the numbers: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

# numba's OpenMP layer shares libgomp with torch, and set_num_threads(1) was seen not to hold on
# the first calls there; the workqueue layer honours it, so the 1-thread rows are 1 thread.
os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")

import torch

from fanin.rng.stream import STREAM_VERSION, Stream, _numba


def best_time(fn, repeat: int) -> float:
    fn()  # warm-up: page faults, JIT, caches
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def median_us(fn, calls: int = 200) -> float:
    fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return sorted(times)[calls // 2] * 1e6


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t[: 1 << 20].contiguous().view(torch.uint8).numpy().tobytes()).hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000_000, help="elements per fill (default 100M)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions, best kept (default 3)")
    ap.add_argument("--trunc-repeat", type=int, default=1, help="repetitions of torch's trunc_normal_ (slow)")
    ap.add_argument("--orthogonal-n", type=int, default=4096, help="orthogonal matrix size (default 4096)")
    ap.add_argument("--no-orthogonal", action="store_true", help="skip the orthogonal comparison")
    args = ap.parse_args(argv)

    n = args.n
    gb = n * 4 / 1e9
    s = Stream(0, "benchmark.weight")
    backend = "numba" if _numba() is not None else "torch"
    print(f"fanin stream v{STREAM_VERSION}, backend={backend}, torch {torch.__version__}, n={n:,} float32")
    x = torch.empty(n)
    x.fill_(0.0)  # first touch outside the timings
    xb = torch.empty(n, dtype=torch.bfloat16)
    xb.fill_(0.0)

    t0 = time.perf_counter()
    for f in (
        lambda t: s.uniform_(t, -1, 1),
        lambda t: s.normal_(t, 0, 1),
        lambda t: s.truncated_normal_(t, 0, 1, -2, 2),
    ):
        f(torch.empty(1000))
        f(torch.empty(1000, dtype=torch.float64))
    print(f"first calls (numba compile or cache load): {time.perf_counter() - t0:.2f} s\n")

    results: dict[int, dict[str, float]] = {}
    for threads in [int(v) for v in args.threads.split(",")]:
        torch.set_num_threads(threads)
        g = torch.Generator().manual_seed(0)
        r: dict[str, float] = {}
        r["torch fill_"] = best_time(lambda: x.fill_(0.5), args.repeat)
        r["torch uniform_"] = best_time(lambda g=g: x.uniform_(-1, 1, generator=g), args.repeat)
        r["torch normal_"] = best_time(lambda g=g: x.normal_(0, 1, generator=g), args.repeat)
        r["torch trunc_normal_"] = best_time(
            lambda g=g: torch.nn.init.trunc_normal_(x, 0.0, 1.0, -2.0, 2.0, generator=g), args.trunc_repeat
        )
        r["stream uniform"] = best_time(lambda: s.uniform_(x, -1, 1), args.repeat)
        d_u = digest(x)
        r["stream normal"] = best_time(lambda: s.normal_(x, 0, 1), args.repeat)
        d_n = digest(x)
        r["stream trunc_normal"] = best_time(lambda: s.truncated_normal_(x, 0, 1, -2, 2), args.repeat)
        d_t = digest(x)
        r["stream uniform bf16"] = best_time(lambda: s.uniform_(xb, -1, 1), args.repeat)
        r["stream normal bf16"] = best_time(lambda: s.normal_(xb, 0, 1), args.repeat)
        results[threads] = r

        print(f"threads={threads}")
        print(f"  {'operation':<24}{'seconds':>9}{'GB/s':>8}   ratios")
        for name, sec in r.items():
            out_gb = gb / 2 if "bf16" in name else gb
            print(f"  {name:<24}{sec:9.3f}{out_gb / sec:8.2f}")
        fill = r["torch fill_"]
        print(
            f"  uniform: {r['torch uniform_'] / r['stream uniform']:.2f}x torch uniform_ (target >= 6), "
            f"{r['stream uniform'] / fill:.2f}x the time of fill_ (target <= 1.5)"
        )
        print(f"  normal: {r['torch normal_'] / r['stream normal']:.2f}x torch normal_ (target >= 1)")
        print(
            f"  trunc_normal: {r['torch trunc_normal_'] / r['stream trunc_normal']:.1f}x "
            f"nn.init.trunc_normal_ (target >= 10)"
        )
        print(f"  digests (first 1M values): uniform {d_u}  normal {d_n}  trunc_normal {d_t}\n")

    if len(results) > 1:
        a, b = sorted(results)[:2]
        print(f"scaling {a} -> {b} threads (time ratio):")
        for name in results[a]:
            print(f"  {name:<24}{results[a][name] / results[b][name]:6.2f}x")
        print()

    # Small tensors (biases, norms): per-call overhead, not throughput. Median of many calls.
    torch.set_num_threads(max(results) if results else torch.get_num_threads())
    print("small tensors (median of 200 calls, microseconds per fill):")
    print(f"  {'numel':>8}{'torch uniform_':>16}{'stream uniform':>16}{'torch normal_':>15}{'stream normal':>15}")
    g = torch.Generator().manual_seed(0)
    for numel in (24, 1024, 65536):
        t = torch.empty(numel)
        row = [
            median_us(lambda t=t: t.uniform_(-1, 1, generator=g)),
            median_us(lambda t=t: s.uniform_(t, -1, 1)),
            median_us(lambda t=t: t.normal_(0, 1, generator=g)),
            median_us(lambda t=t: s.normal_(t, 0, 1)),
        ]
        print(f"  {numel:>8}" + "".join(f"{v:{w}.1f}" for v, w in zip(row, (16, 16, 15, 15), strict=True)))
    print()

    if not args.no_orthogonal:
        m = args.orthogonal_n
        threads = max(results) if results else torch.get_num_threads()
        torch.set_num_threads(threads)
        w = torch.empty(m, m)
        g = torch.Generator().manual_seed(0)
        t0 = time.perf_counter()
        torch.nn.init.orthogonal_(w, generator=g)
        t_torch = time.perf_counter() - t0
        t0 = time.perf_counter()
        s.orthogonal_(w)
        t_stream = time.perf_counter() - t0
        wb = torch.empty(m, m, dtype=torch.bfloat16)
        t0 = time.perf_counter()
        s.orthogonal_(wb)
        t_bf16 = time.perf_counter() - t0
        same = torch.equal(wb, w.to(torch.bfloat16))
        print(f"orthogonal {m}x{m} (torch threads={threads}, one run each):")
        print(f"  torch nn.init.orthogonal_ float32   {t_torch:7.2f} s")
        print(
            f"  stream orthogonal_ float32          {t_stream:7.2f} s   {t_torch / t_stream:.2f}x torch (target >= 1)"
        )
        print(f"  stream orthogonal_ bfloat16         {t_bf16:7.2f} s   equals float32 rounded: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
