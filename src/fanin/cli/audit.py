"""``fanin audit`` and ``fanin diff``: parse, call :mod:`fanin.auditing`, pick a renderer, write.

A source is a checkpoint path (.safetensors, .pt, .pth, .bin, .ckpt; pickles are loaded
weights-only) or ``package.module:factory``, a function called with no arguments that returns an
``nn.Module`` (your own code, imported as Python imports it).
"""

from __future__ import annotations

from pathlib import Path

import click

from fanin.cli.common import stdout_console

__all__ = ["audit_command", "diff_command"]

FORMATS = ("table", "markdown", "json")


def _load(spec: str, param: str):
    """A checkpoint path as it is, or the model an import path ``package.module:factory`` builds."""
    if Path(spec).exists() or ":" not in spec:
        return spec
    from fanin.models import ModelSpecError, build

    try:
        return build(spec)
    except ModelSpecError as err:
        raise click.BadParameter(f"{spec!r} is neither a file nor a buildable 'package.module:factory': {err}",
                                 param_hint=param) from None


def _progress_bar():
    from rich.console import Console
    from rich.progress import Progress

    stderr = Console(stderr=True)
    return Progress(console=stderr, transient=True, disable=not stderr.is_terminal)


def _emit(text_or_table, fmt: str, output: str | None) -> None:
    if output is not None:
        try:
            Path(output).write_text(text_or_table)
        except OSError as err:
            raise click.ClickException(f"Cannot write the report to {output}: {err}") from None
        click.echo(f"wrote {output}", err=True)
        return
    if fmt == "table":
        stdout_console().print(text_or_table)
    else:
        click.echo(text_or_table, nl=False)


def _format_for(output: str | None, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    if output is not None and output.endswith(".json"):
        return "json"
    if output is not None:
        return "markdown"
    return "table"


@click.command("audit")
@click.argument("source", metavar="PATH_OR_MODEL")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report here (Markdown, or JSON for a .json name) instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Report format.")
@click.option("--layout", type=click.Choice(["torch", "keras"]), default="torch", show_default=True,
              help="Weight layout of a checkpoint (a module's layouts come from its layer types).")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None,
              help="Write a PNG of histograms against the inferred densities.")
@click.option("--tensor", "names", multiple=True, metavar="NAME", help="Only these tensors (repeatable).")
def audit_command(source, output, fmt, layout, plot_path, names) -> None:
    """How every tensor of PATH_OR_MODEL looks initialized: scheme, scale, fit, confidence."""
    from fanin.auditing import CheckpointError, audit
    from fanin.report.audit import render_audit_json, render_audit_markdown, render_audit_table

    fmt = _format_for(output, fmt)
    model = _load(source, "PATH_OR_MODEL")
    with _progress_bar() as progress:
        task = progress.add_task("audit", total=None)

        def step(i, total, name):
            progress.update(task, total=total, completed=i, description=f"audit {name}")

        try:
            report = audit(model, layout=layout, names=list(names) or None, progress=step)
        except CheckpointError as err:
            raise click.ClickException(str(err)) from None
        except KeyError as err:
            raise click.BadParameter(str(err.args[0]), param_hint="--tensor") from None
    if fmt == "table" and output is None:
        rendered = render_audit_table(report)
    elif fmt == "json":
        rendered = render_audit_json(report)
    else:
        rendered = render_audit_markdown(report)
    if fmt == "table" and output is not None:
        rendered = render_audit_markdown(report)
    _emit(rendered, fmt, output)
    if plot_path is not None:
        _plot(report, model, layout, plot_path, list(names) or None)


def _plot(report, model, layout, plot_path, names):
    from fanin.auditing.sources import open_source
    from fanin.report.audit import write_audit_plot
    from fanin.report.plot import MissingExtraError

    src = open_source(model, layout=layout)
    chosen = names or [r.name for r in report.records
                       if r.inference.family in ("uniform", "normal", "truncated_normal", "unknown", "sparse")][:6]
    values = {n: src.get(n) for n in chosen}
    try:
        written = write_audit_plot(report, plot_path, chosen, values=values)
    except MissingExtraError as err:
        raise click.ClickException(str(err)) from None
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except OSError as err:
        raise click.ClickException(f"Cannot write the plot to {plot_path}: {err}") from None
    click.echo(f"wrote {written}", err=True)


@click.command("diff")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report here (Markdown, or JSON for a .json name) instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Report format.")
@click.option("--layout", type=click.Choice(["torch", "keras"]), default="torch", show_default=True)
@click.option("--rtol", type=float, default=1e-5, show_default=True, help="Relative tolerance of 'close'.")
@click.option("--atol", type=float, default=1e-8, show_default=True, help="Absolute tolerance of 'close'.")
def diff_command(a, b, output, fmt, layout, rtol, atol) -> None:
    """Were A and B initialized the same way? One line first, then per tensor."""
    from fanin.auditing import CheckpointError, diff
    from fanin.report.audit import render_diff_json, render_diff_markdown, render_diff_table

    fmt = _format_for(output, fmt)
    ma, mb = _load(a, "A"), _load(b, "B")
    with _progress_bar() as progress:
        task = progress.add_task("diff", total=None)

        def step(i, total, name):
            progress.update(task, total=total, completed=i, description=f"diff {name}")

        try:
            report = diff(ma, mb, layout=layout, rtol=rtol, atol=atol, progress=step)
        except CheckpointError as err:
            raise click.ClickException(str(err)) from None
    if fmt == "json":
        rendered = render_diff_json(report)
    elif fmt == "table" and output is None:
        rendered = render_diff_table(report)
    else:
        rendered = render_diff_markdown(report)
    _emit(rendered, fmt, output)
