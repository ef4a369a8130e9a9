"""``fanin audit`` and ``fanin diff``: parse, call :mod:`fanin.auditing`, pick a renderer, write.

A source is any form of :mod:`fanin.cli.models`: a checkpoint file (.safetensors, .pt, .pth,
.bin, .ckpt; pickles are loaded weights-only) or directory, a built-in model (``mlp``, ``cnn``,
``gpt``: its PyTorch default initialization, built under ``--seed``) or ``package.module:factory``.
"""

from __future__ import annotations

import os

import click

from fanin.cli.common import FiniteFloat
from fanin.cli.models import arg_option
from fanin.cli.output import Renderers, emit, output_for, output_options, plot_for, plot_option, write_figure

__all__ = ["audit_command", "diff_command"]

# fanin.auditing.sources.LAYOUTS (weight layouts, not frameworks), spelled out so that loading the CLI
# does not import torch (a test checks that the two agree).
LAYOUTS = ("keras", "torch")
_LAYOUT = click.option(
    "--layout",
    type=click.Choice(LAYOUTS),
    default="torch",
    show_default=True,
    help="Weight layout of a checkpoint (a module's layouts come from its layer types).",
)
_SEED = click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=0,
    show_default=True,
    help="Seed under which a built model (not a checkpoint) is constructed (both A and B for diff).",
)


def _inputs(*sources) -> list[str]:
    return [s for s in sources if isinstance(s, str) and os.path.exists(s)]


@click.command("audit", short_help="How each tensor of a checkpoint or model looks initialized.")
@click.argument("source", metavar="SOURCE")
@arg_option
@_LAYOUT
@click.option("--tensor", "names", multiple=True, metavar="NAME", help="Only these tensors (repeatable).")
@_SEED
@output_options()
@plot_option("histograms of the tensors against the inferred densities")
def audit_command(source, args, layout, names, seed, output, fmt, plot_path) -> None:
    """How every tensor of SOURCE looks initialized: scheme, scale, fit, confidence. SOURCE is a
    checkpoint file or directory, a built-in model (cnn, gpt, mlp) or 'package.module:factory'."""
    from fanin.auditing import audit
    from fanin.cli.common import progress
    from fanin.cli.errors import fail, usage
    from fanin.cli.models import model_or_checkpoint, parse_args
    from fanin.report.audit import render_audit_json, render_audit_markdown, render_audit_table
    from fanin.report.text import rich_escape

    out = output_for(output, fmt, inputs=_inputs(source))
    plot = plot_for(plot_path, inputs=_inputs(source), outputs=[out])
    model = model_or_checkpoint(source, parse_args(args), param="SOURCE", seed=seed)
    with progress("audit") as (bar, task):

        def step(i, total, name):
            bar.update(task, total=total, completed=i, description=f"audit {rich_escape(name)}")

        try:
            report = audit(model, layout=layout, names=list(names) or None, progress=step)
        except KeyError as err:
            raise usage(err.args[0] if err.args else err, "--tensor") from None
        except (ValueError, TypeError, OSError) as err:
            raise fail(err) from None
    emit(out, report, Renderers(render_audit_table, render_audit_markdown, render_audit_json))
    write_figure(lambda path: _plot(report, model, layout, path, list(names) or None), plot)


def _plot(report, model, layout, path, names):
    """The figure of the ``--tensor`` names (default: every tensor with a spread of values), its
    values read one tensor at a time from the source again."""
    from fanin.auditing.sources import open_source
    from fanin.report.audit import write_audit_plot

    return write_audit_plot(report, path, names, values=open_source(model, layout=layout))


@click.command("diff", short_help="Were two checkpoints or models initialized the same way?")
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@arg_option
@_LAYOUT
@click.option(
    "--rtol", type=FiniteFloat(min=0, max=1e6), default=1e-5, show_default=True, help="Relative tolerance of 'close'."
)
@click.option(
    "--atol", type=FiniteFloat(min=0, max=1e6), default=1e-8, show_default=True, help="Absolute tolerance of 'close'."
)
@click.option(
    "--alpha",
    type=FiniteFloat(min=0, max=1, min_open=True, max_open=True),
    default=None,
    help="Family-wise level of 'different' (Holm over the compared tensors; default: "
    "fanin.auditing.comparison.ALPHA, 0.001).",
)
@click.option(
    "--exit-code",
    "exit_code",
    is_flag=True,
    help="Exit with status 1 when a tensor is different (or only on one side, or reshaped).",
)
@_SEED
@output_options()
def diff_command(a, b, args, layout, rtol, atol, alpha, exit_code, seed, output, fmt) -> None:
    """Were A and B initialized the same way? One line first, then per tensor. A and B are
    checkpoint files or directories, built-in models or 'package.module:factory'."""
    from fanin.auditing import diff
    from fanin.cli.common import progress
    from fanin.cli.errors import answer, fail
    from fanin.cli.models import model_or_checkpoint, parse_args
    from fanin.report.audit import render_diff_json, render_diff_markdown, render_diff_table
    from fanin.report.text import rich_escape

    out = output_for(output, fmt, inputs=_inputs(a, b))
    overrides = parse_args(args)
    ma = model_or_checkpoint(a, overrides, param="A", seed=seed)
    mb = model_or_checkpoint(b, overrides, param="B", seed=seed)
    with progress("diff") as (bar, task):

        def step(i, total, name):
            bar.update(task, total=total, completed=i, description=f"diff {rich_escape(name)}")

        try:
            report = diff(
                ma,
                mb,
                layout=layout,
                rtol=rtol,
                atol=atol,
                progress=step,
                **({} if alpha is None else {"alpha": alpha}),
            )
        except (ValueError, TypeError, OSError) as err:
            raise fail(err) from None
    emit(out, report, Renderers(render_diff_table, render_diff_markdown, render_diff_json))
    if exit_code:
        answer(not report.any_different)
