"""``fanin explain MODEL``: print the resolved initialization plan of a model.

MODEL is any form of :mod:`fanin.cli.models` that builds a model (a built-in demo or
``package.module:factory``, with arguments). It is built on the meta device (no memory, no
values) and planned; nothing is initialized.
"""

from __future__ import annotations

import click

from fanin.cli.common import rules_option
from fanin.cli.models import arg_option
from fanin.cli.output import Renderers, emit, output_for, output_options

__all__ = ["CAPTURED", "explain_command"]

CAPTURED = "captured"  # --rules captured: the model's own init, recorded by fanin.capture


@click.command("explain", short_help="Show which rule and scheme initialize each tensor of a model.")
@click.argument("model")
@arg_option
@rules_option(
    "torch",
    "A rules file (.toml or .json), a preset (torch, keras, tf1, flax, gpt2, bert, vit, "
    "resnet, a recipe such as megatron or a parametrization such as 'mup(base_width=64)'), or "
    "'captured': the model's own init code, recorded (fanin.capture).",
)
@click.option(
    "--seed", type=click.IntRange(min=0, max=2**64 - 1), default=None, help="Plan with counter streams under this seed."
)
@click.option(
    "--leftovers",
    type=click.Choice(["error", "keep", "reset_parameters"]),
    default=None,
    help="What to do with parameters no rule matches (default: the rules' own policy, else error).",
)
@output_options("the plan")
def explain_command(model, args, rules_arg, seed, leftovers, output, fmt) -> None:
    """Print which rule and scheme initialize each tensor of MODEL, with fans, std, bound and
    stream key. MODEL is a built-in model (cnn, gpt, mlp) or 'package.module:factory', with
    arguments in the spec ("gpt(n_layer=4)") or as --arg KEY=VALUE."""
    from fanin.cli.common import is_rules_file, rules_from_option
    from fanin.cli.errors import fail, usage
    from fanin.cli.models import build_model, captured_plan, parse_args
    from fanin.errors import FaninError
    from fanin.planning import plan
    from fanin.report.plan import plan_table, render_plan_json, render_plan_markdown

    out = output_for(output, fmt, inputs=[rules_arg] if is_rules_file(rules_arg) else [])
    if rules_arg == CAPTURED:
        if leftovers is not None:
            raise usage(
                "--leftovers applies to rules; a captured plan covers what the model's own init does", "--leftovers"
            )
        resolved = captured_plan(model, parse_args(args), seed=seed)
    else:
        module = build_model(model, parse_args(args), meta=True)
        rules = rules_from_option(rules_arg, module)
        try:
            resolved = plan(module, rules, seed=seed, leftovers=leftovers)
        except (FaninError, ValueError, TypeError) as err:
            raise fail(err) from None
    emit(out, resolved, Renderers(plan_table, render_plan_markdown, render_plan_json))
