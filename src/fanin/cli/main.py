"""The ``fanin`` command: parse, call the library, pick a renderer, write.

Results go to stdout; progress, written paths and warnings to stderr. Everything a command needs
beyond click is imported when that command runs.
"""

from __future__ import annotations

import click

from fanin import __version__
from fanin.cli.common import stdout_console

__all__ = ["main"]

FORMATS = ("table", "markdown", "json")
FRAMEWORKS = ("torch", "keras", "tf1", "jax")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="fanin", message="%(prog)s %(version)s")
def main() -> None:
    """Exact, reproducible and explainable weight initialization for PyTorch."""


@main.command()
@click.option("--depth", type=click.IntRange(min=1), default=100, show_default=True, help="Linear layers.")
@click.option("--width", type=click.IntRange(min=1), default=256, show_default=True, help="Units per layer.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Inputs per batch.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the torch.Generator.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="Write a PNG of std vs depth.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--run", "names", multiple=True, metavar="NAME", help="Only these runs (repeatable).")
@click.option(
    "--accumulate",
    type=click.Choice(["float64", "float32"]),
    default="float64",
    show_default=True,
    help="Accumulate each layer in float64 (machine-independent) or run F.linear in float32.",
)
def demo(depth, width, batch, seed, plot_path, fmt, names, accumulate) -> None:
    """The depth experiment: std of the activations through a deep MLP, six initializations."""
    import dataclasses

    from rich.console import Console
    from rich.progress import Progress

    from fanin.diagnostics import demo_configs, run_depth_experiment
    from fanin.errors import describe_choice
    from fanin.report import MissingExtraError, depth_report, render_json, render_markdown, render_table
    from fanin.report.plot import require_matplotlib

    configs = demo_configs(depth=depth, width=width, batch=batch, seed=seed)
    configs = tuple(dataclasses.replace(c, accumulate=accumulate) for c in configs)
    known = [c.name for c in configs]
    for name in names:
        if name not in known:
            raise click.BadParameter(describe_choice("run", name, known), param_hint="--run")
    if names:
        configs = tuple(c for c in configs if c.name in names)
    if plot_path is not None:
        try:
            require_matplotlib()  # before the runs, not after
        except MissingExtraError as err:
            raise click.ClickException(str(err)) from None

    stderr = Console(stderr=True)
    runs = []
    with Progress(console=stderr, transient=True, disable=not stderr.is_terminal) as progress:
        task = progress.add_task("depth experiment", total=len(configs))
        for config in configs:
            progress.update(task, description=f"run {config.name}")
            runs.append(run_depth_experiment(config))
            progress.advance(task)
    report = depth_report(runs)

    if fmt == "table":
        stdout = stdout_console()
        stdout.print(render_table(report))
    elif fmt == "markdown":
        click.echo(render_markdown(report), nl=False)
    else:
        click.echo(render_json(report), nl=False)

    if plot_path is not None:
        from fanin.report import write_plot

        try:
            written = write_plot(report, plot_path)
        except OSError as err:
            raise click.ClickException(f"Cannot write the plot to {plot_path}: {err}") from None
        click.echo(f"wrote {written}", err=True)


@main.command("gain")
@click.argument("activation")
@click.option("--param", type=float, default=None, help="The activation's parameter (leaky_relu: negative slope).")
@click.option("--samples", type=click.IntRange(min=2), default=10_000, show_default=True, help="Empirical samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the empirical draws.")
def gain_command(activation, param, samples, seed) -> None:
    """Exact gain of ACTIVATION, torch's table value and the empirical std ratio."""
    from fanin.gains import UnknownActivationError, compare_gains
    from fanin.report import render_gain

    try:
        comparison = compare_gains(activation, param, samples=samples, seed=seed)
    except UnknownActivationError as err:
        raise click.BadParameter(str(err), param_hint="ACTIVATION") from None
    except (ValueError, TypeError) as err:
        raise click.UsageError(str(err)) from None
    click.echo(render_gain(comparison), nl=False)


@main.command("schemes")
@click.option("--framework", type=click.Choice(FRAMEWORKS), default=None, help="Only this framework's schemes.")
def schemes_command(framework) -> None:
    """List the registered schemes: name, framework, family and summary."""
    from fanin.report import render_schemes
    from fanin.schemes import list_schemes, lookup

    try:
        names = list_schemes(framework)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    click.echo(render_schemes(lookup(name) for name in names), nl=False)


from fanin.cli.explain import explain_command  # noqa: E402  (issue 4)

main.add_command(explain_command)

from fanin.cli.probe import probe_command  # noqa: E402  (issue 5)

main.add_command(probe_command)

from fanin.cli.audit import audit_command, diff_command  # noqa: E402  (issue 6)

main.add_command(audit_command)
main.add_command(diff_command)
