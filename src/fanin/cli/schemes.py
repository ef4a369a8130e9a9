"""``fanin schemes``: the registered schemes, one a row, with a plain-text summary."""

from __future__ import annotations

import click

from fanin.cli.output import Renderers, emit, output_for, output_options

__all__ = ["schemes_command"]


@click.command("schemes", short_help="List the registered schemes, with a summary of each.")
@click.option(
    "--framework",
    default=None,
    metavar="NAME",
    help="Only this framework's schemes: fanin, jax (or flax), keras, tf1, torch.",
)
@output_options("the list")
def schemes_command(framework, output, fmt) -> None:
    """List the registered schemes: name, framework, family and a one-sentence summary."""
    from fanin.cli.errors import usage
    from fanin.errors import UnknownFrameworkError
    from fanin.frameworks import get_framework
    from fanin.report.formats import render_schemes, render_schemes_json, render_schemes_markdown
    from fanin.schemes import list_schemes, lookup

    out = output_for(output, fmt)
    if framework is not None:
        try:
            framework = get_framework(framework).name
        except UnknownFrameworkError as err:
            raise usage(str(err), "--framework") from None
    entries = [lookup(name) for name in list_schemes(framework)]
    emit(out, entries, Renderers(render_schemes, render_schemes_markdown, render_schemes_json))
