"""``fanin lint MODEL``: the initialization bugs that recur, found before training.

By default the model's own init is checked (what its construction and init code do, recorded by
:func:`fanin.capture`); ``--rules`` checks a plan of those rules instead. Each finding names the
tensor, the evidence and the fix (:mod:`fanin.planning.linting` lists the checks). ``--check`` exits 1
when there is an error.
"""

from __future__ import annotations

import click

from fanin.cli.common import rules_option
from fanin.cli.models import arg_option
from fanin.cli.output import Renderers, emit, output_for, output_options

__all__ = ["lint_command"]


@click.command("lint", short_help="Find recurring init bugs in a model, with the fix for each.")
@click.argument("model")
@arg_option
@rules_option(
    "captured", "Check a plan of these rules (a rules file or a preset) instead of the model's own init ('captured')."
)
@click.option("--check", is_flag=True, help="Exit 1 when a finding is an error.")
@output_options("the findings")
def lint_command(model, args, rules_arg, check, output, fmt) -> None:
    """Lint the initialization of MODEL (a built-in model or 'package.module:factory', with
    arguments): truncation bounds that never truncate, a std that looks like a variance, depth
    scaling applied twice or to a tensor off the residual stream, fans from a shard, tensors left
    uninitialized, buffers left on meta or non-finite, tied tensors initialized twice, a zero init
    that blocks a branch's gradient."""
    from fanin.cli.common import is_rules_file, rules_from_option
    from fanin.cli.errors import answer, fail
    from fanin.cli.explain import CAPTURED
    from fanin.cli.models import build_model, captured_plan, parse_args
    from fanin.errors import FaninError
    from fanin.planning.linting import lint
    from fanin.report.lint import lint_table, render_lint_json, render_lint_markdown

    out = output_for(output, fmt, inputs=[rules_arg] if is_rules_file(rules_arg) else [])
    overrides = parse_args(args)
    module = build_model(model, overrides)
    try:
        if rules_arg == CAPTURED:
            report = lint(module, captured_plan(model, overrides))
        else:
            report = lint(module, rules_from_option(rules_arg, module))
    except (FaninError, ValueError, TypeError) as err:
        raise fail(err) from None
    emit(out, report, Renderers(lint_table, render_lint_markdown, render_lint_json))
    answer(not (check and report.errors))
