"""The coordinate check at widths 64..1024: standard parametrization vs ``fanin.mup`` on an MLP and
on the demo GPT, with the configurations of tests/diagnostics/test_coordinate_check.py (whose GPT runs
stop at 512 to stay fast on two shared cores).

Pass: the output logits grow under SP (fitted slope >= 0.4 after the last Adam step) and every
layer group stays flat under muP (|slope| <= 0.1). Prints each group's slope per parametrization
and the wall time; ``--plot DIR`` writes the four figures.

    python benchmarks/coord_check.py
    python benchmarks/coord_check.py --plot /tmp/coord
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

import fanin.models
from fanin.diagnostics.coordinate_check import coord_check, plot_coord_check
from fanin.rules.parametrization import Attention, mup

WIDTHS = [64, 128, 256, 512, 1024]


def mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))


def gpt(width: int) -> nn.Module:
    return fanin.models.gpt(vocab_size=32, block_size=8, n_layer=1, n_head=2, n_embd=width)


def cases():
    g = torch.Generator().manual_seed(0)
    mlp_data = (torch.randn(64, 16, generator=g), torch.randint(0, 10, (64,), generator=g))
    idx = torch.randint(0, 32, (2, 9), generator=torch.Generator().manual_seed(0))
    yield ("mlp", mlp, mlp_data, "4", {"steps": 3, "lr": 0.02, "seeds": (0,)}, mup(base_width=64, zero_readout=True))
    yield (
        "gpt",
        gpt,
        (idx[:, :-1], idx[:, 1:]),
        "lm_head",
        {"steps": 4, "lr": 0.003, "seeds": (0, 1)},
        mup(base_width=64, std=0.02, attention=Attention("*.attn.c_attn", split=3, n_head=2)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=WIDTHS)
    parser.add_argument("--plot", help="a directory for the figures")
    args = parser.parse_args(argv)
    ok = True
    for name, make, data, logits, kw, rules in cases():
        t0 = time.perf_counter()
        sp = coord_check(make, args.widths, data, label=f"{name} SP", **kw)
        mu = coord_check(make, args.widths, data, rules=rules, label=f"{name} muP", **kw)
        seconds = time.perf_counter() - t0
        print(
            f"{name}: widths {args.widths}, {kw['steps']} Adam steps, lr {kw['lr']}, seeds {list(kw['seeds'])} "
            f"({seconds:.0f} s)"
        )
        print(f"  {'group':<20}{'SP slope':>10}{'muP slope':>11}")
        for group in mu.groups:
            print(f"  {group:<20}{sp.slope(group):>10.3f}{mu.slope(group):>11.3f}")
        passed = sp.slope(logits) >= 0.4 and mu.max_abs_slope() <= 0.1
        ok &= passed
        print(
            f"  SP logits slope {sp.slope(logits):.3f} (>= 0.4), muP max |slope| {mu.max_abs_slope():.3f} (<= 0.1): "
            + ("pass" if passed else "FAIL")
        )
        if args.plot:
            out = Path(args.plot)
            out.mkdir(parents=True, exist_ok=True)
            plot_coord_check(sp, out / f"{name}_sp.png")
            plot_coord_check(mu, out / f"{name}_mup.png")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
