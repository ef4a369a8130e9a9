"""``fanin gain ACTIVATION``: the exact gain beside torch's table value and two Monte-Carlo estimates."""

from __future__ import annotations

import click

from fanin.cli.output import Renderers, emit, output_for, output_options

__all__ = ["gain_command"]


@click.command("gain", short_help="Exact gain of an activation, torch's value, Monte-Carlo checks.")
@click.argument("activation")
@click.option("--param", type=float, default=None, help="The activation's parameter (leaky_relu: negative slope).")
@click.option(
    "--samples",
    type=click.IntRange(min=2, max=100_000_000),
    default=100_000,
    show_default=True,
    help="Draws of z ~ N(0, 1) for the Monte-Carlo estimates.",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=2**63 - 1), default=0, show_default=True, help="Seed of the draws."
)
@output_options()
def gain_command(activation, param, samples, seed, output, fmt) -> None:
    """The gain of ACTIVATION, 1/sqrt(E[f(z)^2]) for z ~ N(0, 1): exact by quadrature, torch's
    calculate_gain value and why it differs, the Monte-Carlo estimate with its standard error, and
    the std ratio std(z)/std(f(z)), which equals the gain only when E[f(z)] = 0."""
    from fanin.activations import UnknownActivationError, compare_gains
    from fanin.cli.errors import usage
    from fanin.report.formats import render_gain, render_gain_json, render_gain_markdown

    out = output_for(output, fmt)
    try:
        comparison = compare_gains(activation, param, samples=samples, seed=seed)
    except UnknownActivationError as err:
        raise usage(err, "ACTIVATION") from None
    except (ValueError, TypeError) as err:
        raise usage(err, "--param") from None
    emit(out, comparison, Renderers(lambda c, _width: render_gain(c), render_gain_markdown, render_gain_json))
