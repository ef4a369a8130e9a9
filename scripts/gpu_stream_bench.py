"""The counter stream on a CUDA device next to torch's own CUDA samplers and the CPU fast path.

    python scripts/gpu_stream_bench.py --n 50000000

For float32 and bfloat16 it times (best of --repeat after a warm-up call, each call followed by
``torch.cuda.synchronize()``) torch's CUDA ``fill_`` (the memory-write ceiling), ``uniform_``,
``normal_`` and ``nn.init.trunc_normal_``, the stream's uniform, normal and truncated normal on
the GPU (the torch reference path: Philox and the float64 transforms op by op, in chunks), and
the same stream fills on the CPU (numba, all of torch's threads), then prints GB/s of output and
the ratios: stream/torch on the GPU, and GPU/CPU for the stream. It also checks that the GPU's
first million values are the CPU's bit for bit (tests/rng/test_stream_cuda.py checks much more).
Exit status 2 without a CUDA device.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000_000, help="elements per fill (default 50M)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions, best kept (default 3)")
    ap.add_argument("--device", default="cuda", help="CUDA device (default cuda)")
    args = ap.parse_args(argv)

    import torch

    from fanin.rng.stream import STREAM_VERSION, Stream, _numba

    if not torch.cuda.is_available():
        print(f"no CUDA device: torch {torch.__version__} (CUDA build: {torch.version.cuda})", file=sys.stderr)
        return 2
    dev = torch.device(args.device)

    def best(fn, sync=True) -> float:
        fn()
        if sync:
            torch.cuda.synchronize(dev)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fn()
            if sync:
                torch.cuda.synchronize(dev)
            times.append(time.perf_counter() - t0)
        return min(times)

    n = args.n
    s = Stream(0, "benchmark.weight")
    g = torch.Generator(device=dev).manual_seed(0)
    cpu_backend = "numba" if _numba() is not None else "torch"
    print(
        f"fanin stream v{STREAM_VERSION} on {torch.cuda.get_device_name(dev)}, torch {torch.__version__} "
        f"(CUDA {torch.version.cuda}), n={n:,}; CPU side: {cpu_backend}, {torch.get_num_threads()} threads"
    )
    failures = 0
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.empty(n, dtype=dtype, device=dev)
        xc = torch.empty(n, dtype=dtype)
        x.fill_(0.0)
        xc.fill_(0.0)
        r: dict[str, float] = {
            "torch fill_": best(lambda x=x: x.fill_(0.5)),
            "torch uniform_": best(lambda x=x: x.uniform_(-1, 1, generator=g)),
            "torch normal_": best(lambda x=x: x.normal_(0, 1, generator=g)),
            "torch trunc_normal_": best(lambda x=x: torch.nn.init.trunc_normal_(x, 0.0, 1.0, -2.0, 2.0, generator=g)),
            "stream uniform": best(lambda x=x: s.uniform_(x, -1, 1)),
            "stream normal": best(lambda x=x: s.normal_(x, 0, 1)),
            "stream trunc_normal": best(lambda x=x: s.truncated_normal_(x, 0, 1, -2, 2)),
            "cpu stream uniform": best(lambda xc=xc: s.uniform_(xc, -1, 1), sync=False),
            "cpu stream normal": best(lambda xc=xc: s.normal_(xc, 0, 1), sync=False),
            "cpu stream trunc_normal": best(lambda xc=xc: s.truncated_normal_(xc, 0, 1, -2, 2), sync=False),
        }
        same = torch.equal(x[: 1 << 20].cpu().view(torch.uint8), xc[: 1 << 20].view(torch.uint8))  # trunc_normal last
        failures += not same
        gb = n * x.element_size() / 1e9
        print(f"\n{dtype}:")
        print(f"  {'operation':<26}{'seconds':>9}{'GB/s':>9}")
        for name, sec in r.items():
            print(f"  {name:<26}{sec:9.4f}{gb / sec:9.2f}")
        print("  ratios (time of torch's CUDA sampler / the stream's on the GPU; >1: the stream is faster):")
        for kind in ("uniform", "normal", "trunc_normal"):
            torch_name = f"torch {kind}_"
            gpu, cpu = r[f"stream {kind}"], r[f"cpu stream {kind}"]
            print(
                f"    {kind:<13} stream/torch {r[torch_name] / gpu:6.2f}x   stream GPU/CPU speed-up {cpu / gpu:6.2f}x "
                "  "
                f"stream time / fill_ {gpu / r['torch fill_']:6.2f}"
            )
        print(f"  first 1M truncated-normal values, GPU == CPU bit for bit: {same}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
