"""``fanin explain MODEL``: print the resolved initialization plan of a model.

MODEL is a built-in demo model (``mlp``, ``cnn``, ``gpt``; see :mod:`fanin.models`) or an import
path ``package.module:factory``, either with keyword arguments: ``"gpt(n_layer=4)"``. The model is
built on the meta device (no memory, no values) and planned; nothing is initialized.
"""

from __future__ import annotations

import click

from fanin.cli.common import stdout_console

__all__ = ["explain_command"]

FORMATS = ("table", "markdown", "json")


def _markdown(plan) -> str:
    lines = [
        f"# fanin plan: {plan.model} ({len(plan)} tensors, source: {plan.source}"
        + (f", seed={plan.seed}" if plan.seed is not None else "")
        + ")",
        "",
        "| # | tensor | shape | fan in/out | rule | init | std | bound | stream key |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, e in enumerate(plan):
        fans = "" if e.fans is None else f"{e.fans.fan_in:g}/{e.fans.fan_out:g}"
        s = e.statistics
        std = "" if s is None or s.std is None else f"{s.std:.4g}"
        bound = "" if s is None or s.bound is None else f"{s.bound:.4g}"
        rule = f"#{e.rule_index} {e.rule}" if e.rule_index is not None else e.rule
        key = "" if e.stream is None else f"({e.stream[0]}, {e.stream[1]})"
        cells = [str(i), e.name, "×".join(map(str, e.shape)), fans, rule, e.init, std, bound, key]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", "Rules (first match wins):", ""]
    lines += [f"{i}. `{r}`" for i, r in enumerate(plan.rules)]
    lines += ["", f"Leftovers: {plan.leftovers}", ""]
    return "\n".join(lines)


@click.command("explain")
@click.argument("model")
@click.option(
    "--rules",
    "rules_arg",
    default="torch",
    show_default=True,
    metavar="FILE|PRESET",
    help="A rules file (.toml or .json) or a preset name (torch, keras, tf1, flax, resnet, gpt2, bert, vit).",
)
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Plan with counter streams under this seed.")
@click.option(
    "--leftovers",
    type=click.Choice(["error", "keep", "reset_parameters"]),
    default=None,
    help="What to do with parameters no rule matches (default: the rules' own policy, else error).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
def explain_command(model, rules_arg, seed, leftovers, fmt) -> None:
    """Print which rule and scheme initialize each parameter of MODEL, with fans, std and stream key."""

    import torch

    from fanin.cli.common import rules_from_option
    from fanin.models import ModelSpecError, build
    from fanin.rules import RuleError, plan

    try:
        with torch.device("meta"):
            module = build(model)
    except ModelSpecError as err:
        raise click.BadParameter(str(err), param_hint="MODEL") from None
    rules = rules_from_option(rules_arg)
    try:
        resolved = plan(module, rules, seed=seed, leftovers=leftovers)
    except (RuleError, ValueError, TypeError) as err:
        raise click.ClickException(str(err)) from None
    if fmt == "json":
        click.echo(resolved.to_json())
    elif fmt == "markdown":
        click.echo(_markdown(resolved), nl=False)
    else:
        stdout_console().print(resolved.explain())
