"""Learning-rate transfer across width: standard parametrization vs muP (``fanin.mup``).

muTransfer (Yang et al. 2022, "Tensor Programs V", Figure 1): under muP the learning rate that is
best for a narrow model stays best for a wide one; under standard parametrization (SP) it drifts
(with Adam, roughly as 1/width). This script shows it on a small task that runs on a CPU:

- the task: ReLU MLPs with ``--depth`` hidden layers (default 2: in 32 -> width -> width -> 10
  classes) trained with Adam on a fixed synthetic teacher task (labels are the argmax of a random
  tanh teacher network on Gaussian inputs), batches of ``--batch`` from one fixed stream,
  ``--steps`` updates;
- the two parametrizations are the same at the base width 128 (both: weights
  N(0, 1/fan_in), biases 0, one learning rate): SP keeps that init and learning rate at every
  width (``kaiming_normal(nonlinearity='linear')``); muP is ``fanin.mup(base_width=128)`` with its
  per-tensor learning rates (``fanin.mup_param_groups``) and readout multiplier
  (``fanin.mup_hooks``);
- for each width and learning rate on the grid ``2^k`` the training loss (mean of the last 10
  steps, averaged over ``--seeds``) is recorded; the best learning rate per width is found, and
  its shift from width 128 to the widest is counted in grid steps.

Verdict: muP transfers when the best learning rate moves by at most one grid step; SP drifts when
it moves by two or more. Printed as a table; ``--json PATH`` writes the numbers, ``--plot PATH``
the familiar figure (loss against learning rate, one line per width, one panel per
parametrization).

    python benchmarks/lr_transfer.py                 # widths 128, 512; ~3.5 min on 2 busy cores
    python benchmarks/lr_transfer.py --widths 128 256 512 1024 --seeds 2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch
from torch import nn

import fanin
from fanin.rules.load import bind
from fanin.rules.parametrization import mup, mup_hooks, mup_param_groups

BASE = 128
SP_RULES = {"*.weight": "kaiming_normal(nonlinearity='linear')", "*.bias": "zeros"}


def make(width: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(32, width), nn.ReLU()]
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def task(steps: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1234)
    teacher = [torch.randn(32, 64, generator=g) / math.sqrt(32), torch.randn(64, 10, generator=g) / math.sqrt(64)]
    batches = []
    for _ in range(steps):
        x = torch.randn(batch, 32, generator=g)
        y = (torch.tanh(x @ teacher[0]) @ teacher[1]).argmax(dim=1)
        batches.append((x, y))
    return batches


def train(width: int, depth: int, lr: float, parametrization: str, seed: int, batches) -> float:
    with torch.device("meta"):
        model = make(width, depth)
    rules = mup(base_width=BASE) if parametrization == "muP" else SP_RULES
    p = fanin.materialize(model, bind(rules, model), seed=seed)
    hooks = None
    if parametrization == "muP":
        groups = mup_param_groups(model, p, lr=lr, optimizer="adam")
        hooks = mup_hooks(model, p)
    else:
        groups = [{"params": list(model.parameters()), "lr": lr}]
    opt = torch.optim.Adam(groups)
    losses = []
    try:
        for x, y in batches:
            loss = nn.functional.cross_entropy(model(x), y)
            if not torch.isfinite(loss):
                return math.inf
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        if hooks is not None:
            hooks.remove()
    return sum(losses[-10:]) / len(losses[-10:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--exponents", type=int, nargs=2, default=[-12, -4], help="lr grid 2^k for k in [lo, hi]")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--depth", type=int, default=2, help="hidden layers")
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--plot", help="write the figure (PNG) here")
    args = parser.parse_args(argv)
    if args.widths[0] != BASE:
        parser.error(f"the first width is the base width {BASE}, got --widths {args.widths}")
    torch.set_num_threads(max(1, torch.get_num_threads()))
    lrs = [2.0**k for k in range(args.exponents[0], args.exponents[1] + 1)]
    batches = task(args.steps, args.batch)
    results: dict[str, dict[int, list[float]]] = {}
    t0 = time.perf_counter()
    for parametrization in ("SP", "muP"):
        results[parametrization] = {}
        for width in args.widths:
            row = []
            for lr in lrs:
                row.append(
                    sum(train(width, args.depth, lr, parametrization, s, batches) for s in range(args.seeds))
                    / args.seeds
                )
                print(
                    f"\r{parametrization} width {width}: lr 2^{round(math.log2(lr))} loss {row[-1]:.4f}   ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
            results[parametrization][width] = row
    print(f"\r{' ' * 60}\r", end="", file=sys.stderr)

    header = "lr        " + "".join(f"{f'{p} w={w}':>14}" for p in results for w in args.widths)
    print(header)
    for i, lr in enumerate(lrs):
        print(
            f"2^{round(math.log2(lr)):<7} "
            + "".join(f"{results[p][w][i]:>14.4f}" for p in results for w in args.widths)
        )
    summary = {}
    ok = True
    for p, by_width in results.items():
        best = {w: min(range(len(lrs)), key=lambda i: by_width[w][i]) for w in args.widths}
        shift = best[args.widths[-1]] - best[args.widths[0]]
        summary[p] = {"best_lr": {w: lrs[i] for w, i in best.items()}, "shift_grid_steps": shift}
        verdict = "transfers" if abs(shift) <= 1 else "drifts"
        expected = "transfers" if p == "muP" else "drifts"
        ok &= verdict == expected
        print(
            f"{p}: best lr "
            + ", ".join(f"w={w}: 2^{round(math.log2(lrs[i]))}" for w, i in best.items())
            + f"; shift {shift:+d} grid steps: {verdict} (expected: {expected})"
        )
    print(
        f"({time.perf_counter() - t0:.0f} s; {args.steps} Adam steps, batch {args.batch}, {args.seeds} seed(s), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads)"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "lrs": lrs,
                    "widths": args.widths,
                    "loss": results,
                    "summary": summary,
                    "steps": args.steps,
                    "batch": args.batch,
                    "seeds": args.seeds,
                },
                f,
                indent=1,
            )
    if args.plot:
        plot(results, lrs, args.widths, args.plot)
    return 0 if ok else 1


def plot(results, lrs, widths, path: str) -> None:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    cmap = colormaps["viridis"]
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (p, by_width) in zip(axes, results.items(), strict=True):
        for i, w in enumerate(widths):
            color = cmap(0.85 - 0.75 * i / max(1, len(widths) - 1))
            finite = [(lr, v) for lr, v in zip(lrs, by_width[w], strict=True) if math.isfinite(v)]
            ax.plot(
                [lr for lr, _ in finite],
                [v for _, v in finite],
                marker="o",
                markersize=3,
                color=color,
                label=f"width {w}",
            )
            lr, v = min(finite, key=lambda t: t[1])
            ax.plot([lr], [v], marker="*", markersize=12, color=color)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{p}: training loss, mean of the last 10 steps (★: best lr)", fontsize=10)
        ax.set_xlabel("learning rate (Adam)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("training loss")
    fig.savefig(path)


if __name__ == "__main__":
    sys.exit(main())
