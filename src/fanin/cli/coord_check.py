"""``fanin coord-check MODEL --widths ...``: does each layer's activation scale stay put as the
model gets wider (:func:`fanin.coord_check`)?

MODEL is a built-in model or ``package.module:factory``; ``--width-arg`` names the factory's
width argument (``n_embd`` for ``gpt``, ``hidden`` for ``mlp``). The model is trained ``--steps``
steps at every width on one random batch: token ids (next-token targets drawn at random) for a
model whose first layer is an ``nn.Embedding``, else N(0, 1) features with random class targets.
``--check`` exits 1 when a layer group is not stable.
"""

from __future__ import annotations

import click

from fanin.cli.common import rules_option
from fanin.cli.models import arg_option
from fanin.cli.output import Renderers, emit, output_for, output_options, plot_for, plot_option, write_figure

__all__ = ["coord_check_command"]

#: The width argument of each built-in model.
WIDTH_ARGS = {"gpt": "n_embd", "mlp": "hidden", "cnn": "channels"}


def _widths(text: str) -> list[int]:
    from fanin.cli.errors import usage

    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise usage(f"expected comma-separated positive ints such as 64,128,256, got {text!r}", "--widths") from None
    if len(widths) < 2 or any(w < 1 for w in widths) or sorted(set(widths)) != widths:
        raise usage(f"expected two or more increasing positive ints such as 64,128,256, got {text!r}", "--widths")
    return widths


def _data(module, batch: int, seq: int, seed: int):
    """One batch for ``module`` (see the module docstring), or ``None`` when its input cannot be told."""
    import torch
    from torch import nn

    generator = torch.Generator().manual_seed(seed)
    layers = [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))]
    if not layers:
        return None
    first, last = layers[0], [m for m in layers if isinstance(m, nn.Linear)]
    if isinstance(first, nn.Embedding):
        tokens = torch.randint(0, first.num_embeddings, (batch, seq), generator=generator)
        return tokens, torch.randint(0, first.num_embeddings, (batch, seq), generator=generator)
    if isinstance(first, nn.Linear) and last:
        x = torch.randn(batch, first.in_features, generator=generator)
        return x, torch.randint(0, last[-1].out_features, (batch,), generator=generator)
    return None


@click.command("coord-check", short_help="Train at several widths: does each layer's scale stay put?")
@click.argument("model")
@arg_option
@click.option("--widths", required=True, metavar="W1,W2,...", help="Widths to build the model at (increasing).")
@click.option(
    "--width-arg",
    default=None,
    metavar="NAME",
    help="The factory's width argument [default: n_embd for gpt, hidden for mlp, channels for cnn].",
)
@rules_option(
    "torch",
    "The parametrization: a preset ('torch' is standard parametrization, "
    "'mup(base_width=64)', 'u_mup') or a rules file.",
)
@click.option("--steps", type=click.IntRange(min=1, max=1000), default=3, show_default=True, help="Training steps.")
@click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default="adam", show_default=True)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True, max=1e6),
    default=1e-2,
    show_default=True,
    help="Learning rate (the base one under muP).",
)
@click.option("--statistic", type=click.Choice(["l1", "rms"]), default="l1", show_default=True)
@click.option(
    "--tolerance",
    type=click.FloatRange(min=0, min_open=True, max=10),
    default=0.1,
    show_default=True,
    help="A group is stable when |slope| <= this.",
)
@click.option("--batch", type=click.IntRange(min=1, max=4096), default=8, show_default=True)
@click.option(
    "--seq",
    type=click.IntRange(min=1, max=4096),
    default=16,
    show_default=True,
    help="Sequence length of token inputs.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=0,
    show_default=True,
    help="Seed of the data and of the plan.",
)
@click.option("--check", is_flag=True, help="Exit 1 when a layer group is not stable.")
@plot_option("the coordinate-check figure")
@output_options("the coordinate check")
def coord_check_command(
    model,
    args,
    widths,
    width_arg,
    rules_arg,
    steps,
    optimizer,
    lr,
    statistic,
    tolerance,
    batch,
    seq,
    seed,
    check,
    plot_path,
    output,
    fmt,
) -> None:
    """Build MODEL at each of --widths, train it a few steps and fit each layer group's
    activation size against width: "stable" under muP, "grows as width^s" where a width's
    activations blow up (Yang et al. 2022, Tensor Programs V)."""
    from fanin.cli.common import is_rules_file, progress, rules_from_option
    from fanin.cli.errors import answer, fail, usage
    from fanin.cli.models import build_model, parse_args
    from fanin.diagnostics.coordinate_check import coord_check
    from fanin.errors import FaninError
    from fanin.models import ModelSpecError, build, parse_model_spec
    from fanin.report.coord_check import (
        coord_check_table,
        render_coord_check_json,
        render_coord_check_markdown,
        write_coord_plot,
    )

    inputs = [rules_arg] if is_rules_file(rules_arg) else []
    out = output_for(output, fmt, inputs=inputs)
    plot = plot_for(plot_path, inputs=inputs, outputs=[out])
    sizes = _widths(widths)
    overrides = parse_args(args)
    try:
        target, kwargs = parse_model_spec(model)
    except ModelSpecError as err:
        raise usage(err, "MODEL") from None
    name = width_arg or WIDTH_ARGS.get(target.removeprefix("fanin.models:"))
    if name is None:
        raise usage(f"give the factory's width argument with --width-arg for {model!r}", "--width-arg")
    if name in overrides or name in kwargs:
        raise usage(f"{name} is the width argument: --widths sets it, do not give it in the spec or --arg", "--arg")
    smallest = build_model(model, {**overrides, name: sizes[0]})
    data = _data(smallest, batch, seq, seed)
    if data is None:
        raise fail(
            f"cannot tell the input of {model!r}: its first layer is neither an nn.Embedding nor an "
            "nn.Linear; use fanin.coord_check from Python with your own data"
        )
    rules = rules_from_option(rules_arg, smallest)
    with progress("coord-check", len(sizes)) as (bar, task):

        def step(line: str) -> None:
            bar.update(task, description=line)
            bar.advance(task)

        try:
            result = coord_check(
                lambda w: build(model, **{**overrides, name: w}),
                sizes,
                data,
                steps=steps,
                optimizer=optimizer,
                lr=lr,
                rules=rules,
                statistic=statistic,
                tolerance=tolerance,
                seeds=(seed,),
                label=model,
                progress=step,
            )
        except (FaninError, ValueError, TypeError, RuntimeError) as err:
            raise fail(err) from None
    emit(out, result, Renderers(coord_check_table, render_coord_check_markdown, render_coord_check_json))
    write_figure(lambda tmp: write_coord_plot(result, tmp), plot)
    answer(not (check and any(v.kind != "stable" for v in result.verdicts)))
