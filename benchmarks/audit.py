"""Speed of the audit: MB/s of ``fanin.auditing.inference`` on large tensors, ms per small tensor.

    python benchmarks/audit.py                  # 16, 64 and 256 MB float32 tensors; small tensors
    python benchmarks/audit.py --sizes 16 --small 300

Large tensors: a matrix of N(0, 0.02) of each size (float32, and bfloat16 for the first size),
best of --repeat after one warm-up call (the warm-up also builds the shape's candidate schemes):
MB of the tensor's own dtype per second of wall time and of this process's CPU time (the audit
runs on one torch thread, so on a machine shared with other work the CPU figure is the one an
idle machine gives). The time splits into the streaming pass (``fanin.auditing.scanning``) and the
rest (hypotheses, spectrum), both printed.

Small tensors (under 64 KB): the parameters of a model of 8 blocks of Linear + LayerNorm layers
(biases, norm weights, small matrices: shapes repeat as in a real model), audited tensor by
tensor; the median and mean ms per tensor, warm (candidates built) and cold (first sight of each
shape). Targets on the 2-core development machine: >= 200 MB/s on tensors >= 16 MB, <= 5 ms per
tensor under 64 KB. Other processes on the machine change the numbers: run it on an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fanin.auditing.candidates import continuous_candidates
from fanin.auditing.inference import infer
from fanin.auditing.scanning import scan


def best_time(fn, repeat: int) -> tuple[float, float]:
    """(best wall time, best CPU time of this process) of ``fn`` over ``repeat`` calls after a warm-up."""
    fn()
    best, cpu = float("inf"), float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        best, cpu = min(best, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return best, cpu


#: The issue's targets on the 2-core development machine.
TARGET_MB_S = 200.0
TARGET_SMALL_MS = 5.0


def verdict(ok: bool) -> str:
    return "meets the target" if ok else "BELOW the target"


def large(sizes_mb: list[int], repeat: int) -> None:
    print(f"large tensors: N(0, 0.02) matrices, MB of the stored dtype per second (best of {repeat})")
    print(
        f"{'size':>8} {'dtype':>9} {'shape':>14} {'infer s':>8} {'MB/s':>7} {'cpu s':>7} {'MB/cpu s':>9} "
        f"{'scan s':>7} {'rest s':>7}"
    )
    for i, mb in enumerate(sizes_mb):
        for dtype in (torch.float32, torch.bfloat16) if i == 0 else (torch.float32,):
            item = torch.empty((), dtype=dtype).element_size()
            cols = 4096
            rows = max(1, mb * 2**20 // (item * cols))
            w = torch.empty(rows, cols).normal_(0, 0.02, generator=torch.Generator().manual_seed(0)).to(dtype)
            t_infer, c_infer = best_time(lambda w=w: infer(w), repeat)
            t_scan, _ = best_time(lambda w=w: scan(w), repeat)
            size = w.numel() * item / 2**20
            print(
                f"{size:>6.0f}MB {str(dtype)[6:]:>9} {f'{rows}x{cols}':>14} {t_infer:>8.3f} {size / t_infer:>7.0f} "
                f"{c_infer:>7.3f} {size / c_infer:>9.0f} {t_scan:>7.3f} {t_infer - t_scan:>7.3f}  "
                f"{verdict(size / c_infer >= TARGET_MB_S)} (>= {TARGET_MB_S:.0f} MB per CPU s)"
            )
            del w


def small_model(blocks: int) -> list[torch.Tensor]:
    torch.manual_seed(0)
    layers = []
    for _ in range(blocks):
        layers += [
            torch.nn.Linear(64, 128),
            torch.nn.LayerNorm(128),
            torch.nn.Linear(128, 64),
            torch.nn.LayerNorm(64),
            torch.nn.Linear(64, 64),
        ]
    return [p.detach() for m in layers for p in m.parameters()]


def small(count: int) -> None:
    tensors = small_model(8)
    tensors = (tensors * (count // len(tensors) + 1))[:count]
    assert all(t.numel() * t.element_size() < 64 * 1024 for t in tensors)
    continuous_candidates.cache_clear()
    cold = []
    seen = set()
    for t in tensors:
        if t.shape in seen:
            continue
        seen.add(t.shape)
        t0 = time.perf_counter()
        infer(t)
        cold.append(time.perf_counter() - t0)
    warm, cpu = [], []
    for t in tensors:
        t0, c0 = time.perf_counter(), time.process_time()
        infer(t)
        warm.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    sizes = sorted({t.numel() for t in tensors})
    print(
        f"\nsmall tensors: {len(tensors)} tensors of {sizes[0]} to {sizes[-1]} values (biases, norms, 64x128 matrices)"
    )
    print(
        f"  warm: median {1e3 * statistics.median(warm):.2f} ms, mean {1e3 * statistics.mean(warm):.2f} ms per tensor "
        f"(CPU time: median {1e3 * statistics.median(cpu):.2f} ms, mean {1e3 * statistics.mean(cpu):.2f} ms): "
        f"{verdict(statistics.mean(cpu) * 1e3 <= TARGET_SMALL_MS)} (<= {TARGET_SMALL_MS:g} ms per tensor)"
    )
    print(
        f"  cold (first tensor of each of {len(cold)} shapes, candidates built): mean "
        f"{1e3 * statistics.mean(cold):.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256], help="large tensor sizes in MB")
    parser.add_argument("--small", type=int, default=400, help="number of small tensors")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    large(args.sizes, args.repeat)
    small(args.small)


if __name__ == "__main__":
    main()
