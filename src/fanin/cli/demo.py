"""``fanin demo``: the depth experiment, std of the activations through a deep MLP for six initializations."""

from __future__ import annotations

import click

from fanin.cli.output import Renderers, emit, output_for, output_options, plot_for, plot_option, write_figure

__all__ = ["demo_command"]


@click.command("demo", short_help="Activation std through a deep MLP, for six initializations.")
@click.option("--depth", type=click.IntRange(min=1, max=10_000), default=100, show_default=True, help="Linear layers.")
@click.option(
    "--width", type=click.IntRange(min=1, max=65_536), default=256, show_default=True, help="Units per layer."
)
@click.option(
    "--batch", type=click.IntRange(min=1, max=65_536), default=16, show_default=True, help="Inputs per batch."
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=1,
    show_default=True,
    help="Seed of the torch.Generator.",
)
@click.option("--run", "names", multiple=True, metavar="NAME", help="Only these runs (repeatable).")
@click.option(
    "--accumulate",
    type=click.Choice(["float64", "float32"]),
    default="float64",
    show_default=True,
    help="Accumulate each layer in float64 (machine-independent) or run F.linear in float32.",
)
@output_options()
@plot_option("a figure of std against depth")
def demo_command(depth, width, batch, seed, names, accumulate, output, fmt, plot_path) -> None:
    """The depth experiment: the std of the activations through DEPTH bias-free Linear layers of
    WIDTH units, for six initializations, with a verdict for each (exploding, vanishing,
    saturating, stable)."""
    import dataclasses

    from fanin.cli.common import progress
    from fanin.cli.errors import usage
    from fanin.diagnostics import demo_configs, run_depth_experiment
    from fanin.errors import describe_choice
    from fanin.report import depth_report, render_json, render_markdown, render_table, write_plot
    from fanin.report.text import rich_escape

    out = output_for(output, fmt)
    plot = plot_for(plot_path, outputs=[out])
    configs = tuple(
        dataclasses.replace(c, accumulate=accumulate)
        for c in demo_configs(depth=depth, width=width, batch=batch, seed=seed)
    )
    known = [c.name for c in configs]
    for name in names:
        if name not in known:
            raise usage(describe_choice("run", name, known), "--run")
    if names:
        configs = tuple(c for c in configs if c.name in names)

    runs = []
    with progress("depth experiment", total=len(configs)) as (bar, task):
        for config in configs:
            bar.update(task, description=f"run {rich_escape(config.name)}")
            runs.append(run_depth_experiment(config))
            bar.advance(task)
    report = depth_report(runs)
    emit(out, report, Renderers(render_table, render_markdown, render_json))
    write_figure(lambda path: write_plot(report, path), plot)
