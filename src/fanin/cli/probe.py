"""``fanin probe MODEL``: one forward (and optionally backward) pass of a model with hooks, its
per-layer statistics and verdicts (:func:`fanin.probe`).

MODEL is a built-in demo model (``mlp``, ``cnn``, ``gpt``) or an import path
``package.module:factory``, with keyword arguments in the spec (``"mlp(depth=8)"``) or as
repeated ``--arg key=value`` (values read with :func:`ast.literal_eval`); the loader is
:func:`fanin.models.build`. The model is built, and its inputs drawn, under ``--seed``; with
``--rules`` it is first initialized by :func:`fanin.apply`.
"""

from __future__ import annotations

import ast

import click

from fanin.cli.common import stdout_console

__all__ = ["probe_command"]

FORMATS = ("table", "markdown", "json")
OUTPUTS = (".png", ".md", ".json")
# Inputs of the built-in demo models when --input-shape is not given (batch of 8).
_DEFAULT_INPUTS = {"mlp": ("in_features", 16, ()), "cnn": ("in_channels", 3, (32, 32))}


def _parse_arg(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise click.BadParameter(f"expected key=value, got {text!r}", param_hint="--arg")
    try:
        return key.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        raise click.BadParameter(
            f"the value of {key.strip()} must be a Python literal (number, string in quotes, True/False/None, "
            f"tuple, list, dict), got {text!r}",
            param_hint="--arg",
        ) from None


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise click.BadParameter(
            f"expected positive integers separated by commas, e.g. 16,256, got {text!r}", param_hint="--input-shape"
        )
    return shape


def _default_inputs(target: str, kwargs: dict[str, object], batch: int = 8) -> tuple[list[tuple[int, ...]], int | None]:
    """Input shapes (and the vocabulary of integer inputs) of a built-in demo model."""
    if target == "gpt":
        return [(batch, int(kwargs.get("block_size", 32)))], int(kwargs.get("vocab_size", 256))
    if target in _DEFAULT_INPUTS:
        key, default, tail = _DEFAULT_INPUTS[target]
        return [(batch, int(kwargs.get(key, default)), *tail)], None
    return [], None


@click.command("probe")
@click.argument("model")
@click.option("--arg", "args", multiple=True, metavar="KEY=VALUE", help="Keyword argument of the model factory.")
@click.option(
    "--input-shape", "shapes", multiple=True, metavar="D0,D1,...",
    help="Shape of an N(0, 1) input (repeat for several positional inputs). Built-in models have defaults.",
)
@click.option(
    "--int-inputs", type=click.IntRange(min=1), default=None, metavar="VOCAB",
    help="Draw the inputs as integers in [0, VOCAB) (token ids) instead of N(0, 1).",
)
@click.option("--rules", "rules_arg", default=None, metavar="FILE|PRESET", help="Initialize with fanin.apply first.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the model's construction, the rules, the inputs and the backward cotangent.")
@click.option("--backward", is_flag=True, help="Also run the backward pass (gradient statistics).")
@click.option("--mode", type=click.Choice(["eval", "train"]), default="eval", show_default=True)
@click.option("--residual", "residual", multiple=True, metavar="GLOB",
              help="Name the residual blocks (glob on module names) instead of detecting them.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", "output", type=click.Path(dir_okay=False), default=None,
              help="Also write the report to a .png, .md or .json file.")
@click.option("--check", is_flag=True, help="Exit with status 1 when the verdict is not stable.")
def probe_command(model, args, shapes, int_inputs, rules_arg, seed, backward, mode, residual, fmt, output, check):
    """Probe MODEL: activation and gradient statistics of every layer in execution order, verdicts."""
    import os

    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from fanin.diagnostics.probing import ProbeError, default_layer, probe
    from fanin.models import ModelSpecError, build, parse_model_spec
    from fanin.report import MissingExtraError, render_json, render_markdown, render_table, write_plot
    from fanin.report.plot import require_matplotlib

    suffix = os.path.splitext(output)[1].lower() if output else None
    if output is not None and suffix not in OUTPUTS:
        raise click.BadParameter(
            f"the output's suffix must be one of {', '.join(OUTPUTS)}, got output={output!r}", param_hint="-o"
        )
    if suffix == ".png":
        try:
            require_matplotlib()  # before the run, not after
        except MissingExtraError as err:
            raise click.ClickException(str(err)) from None
    overrides = dict(_parse_arg(a) for a in args)
    input_shapes = [_parse_shape(s) for s in shapes]

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            module = build(model, **overrides)
        except ModelSpecError as err:
            raise click.BadParameter(str(err), param_hint="MODEL") from None
    if not input_shapes:
        target, kwargs = parse_model_spec(model)
        input_shapes, vocab = _default_inputs(target, {**kwargs, **overrides})
        int_inputs = int_inputs or vocab
    if not input_shapes:
        raise click.UsageError(f"give the input's shape with --input-shape (e.g. --input-shape 16,256) for {model}")

    if rules_arg is not None:
        from fanin.cli.common import rules_from_option
        from fanin.rules import RuleError, apply

        rules = rules_from_option(rules_arg)
        try:
            apply(module, rules, seed=seed)
        except (RuleError, ValueError, TypeError) as err:
            raise click.ClickException(str(err)) from None

    generator = torch.Generator().manual_seed(seed)
    if int_inputs is not None:
        inputs = tuple(torch.randint(int_inputs, s, generator=generator) for s in input_shapes)
    else:
        inputs = tuple(torch.randn(s, generator=generator) for s in input_shapes)

    stderr = Console(stderr=True)
    total = sum(1 for name, m in module.named_modules() if default_layer(name, m))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=stderr, transient=True, disable=not stderr.is_terminal) as progress:
        task = progress.add_task(f"probe {model}", total=total)
        try:
            report = probe(
                module, inputs, backward=backward, mode=mode, residual=list(residual) or None, seed=seed,
                label=model, on_layer=lambda record: progress.advance(task),
            )
        except (ProbeError, RuntimeError) as err:
            raise click.ClickException(f"probing {model} failed: {err}") from None

    if fmt == "table":
        stdout_console().print(render_table(report))
    elif fmt == "markdown":
        click.echo(render_markdown(report), nl=False)
    else:
        click.echo(render_json(report), nl=False)
    if output is not None:
        try:
            if suffix == ".png":
                write_plot(report, output)
            elif suffix == ".md":
                with open(output, "w", encoding="utf-8") as fh:
                    fh.write(render_markdown(report))
            else:
                report.save(output)
        except OSError as err:
            raise click.ClickException(f"Cannot write the report to {output}: {err}") from None
        click.echo(f"wrote {output}", err=True)
    if check and not report.healthy:
        raise SystemExit(1)

