"""``fanin probe MODEL``: one forward (and optionally backward) pass of a model with hooks, its
per-layer statistics and verdicts (:func:`fanin.probe`).

MODEL is any form of :mod:`fanin.cli.models` that builds a model. The model is built, and its
inputs drawn, under ``--seed``; with ``--rules`` it is first initialized by :func:`fanin.apply`.
Built-in models have default inputs; a model whose first layer is an ``nn.Embedding`` gets token
ids in ``[0, num_embeddings)`` unless ``--int-inputs`` says otherwise.
"""

from __future__ import annotations

import click

from fanin.cli.common import rules_option
from fanin.cli.models import arg_option
from fanin.cli.output import Renderers, emit, output_for, output_options, plot_for, plot_option, write_figure

__all__ = ["probe_command"]

# Inputs of the built-in demo models when --input-shape is not given (batch of 8).
_DEFAULT_INPUTS = {"mlp": ("in_features", 16, ()), "cnn": ("in_channels", 3, (32, 32))}
_MAX_INPUT_ELEMENTS = 2**31  # one input tensor; beyond it the draw alone needs 8 GiB


def _parse_shape(text: str) -> tuple[int, ...]:
    from fanin.cli.errors import usage

    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise usage(f"expected positive integers separated by commas, e.g. 16,256, got {text!r}", "--input-shape")
    numel = 1
    for d in shape:
        numel *= d
    if numel > _MAX_INPUT_ELEMENTS:
        raise usage(f"an input of shape {text} has {numel} elements, more than {_MAX_INPUT_ELEMENTS}", "--input-shape")
    return shape


def _default_inputs(target: str, kwargs: dict[str, object], batch: int = 8) -> tuple[list[tuple[int, ...]], int | None]:
    """Input shapes (and the vocabulary of integer inputs) of a built-in demo model."""
    target = target.removeprefix("fanin.models:")
    if target == "gpt":
        return [(batch, int(kwargs.get("block_size", 32)))], int(kwargs.get("vocab_size", 256))  # type: ignore[call-overload]
    if target in _DEFAULT_INPUTS:
        key, default, tail = _DEFAULT_INPUTS[target]
        return [(batch, int(kwargs.get(key, default)), *tail)], None  # type: ignore[call-overload]
    return [], None


def _first_embedding(module) -> int | None:
    """``num_embeddings`` when the model's first parameterized module is an ``nn.Embedding``."""
    from torch import nn

    for _, sub in module.named_modules():
        if any(True for _ in sub.parameters(recurse=False)):
            return sub.num_embeddings if isinstance(sub, nn.Embedding) else None
    return None


@click.command("probe", short_help="Statistics of every layer of a model in one pass; verdicts.")
@click.argument("model")
@arg_option
@click.option(
    "--input-shape",
    "shapes",
    multiple=True,
    metavar="D0,D1,...",
    help="Shape of an input (repeat for several positional inputs). Built-in models have defaults.",
)
@click.option(
    "--int-inputs",
    type=click.IntRange(min=1),
    default=None,
    metavar="VOCAB",
    help="Draw the inputs as integers in [0, VOCAB) (token ids) instead of N(0, 1).",
)
@rules_option(None, "Initialize with fanin.apply first: a rules file (.toml or .json) or a preset.")
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=2**63 - 1),
    default=0,
    show_default=True,
    help="Seed of the model's construction, the rules, the inputs and the backward cotangent.",
)
@click.option("--backward", is_flag=True, help="Also run the backward pass (gradient statistics).")
@click.option(
    "--mode",
    type=click.Choice(["eval", "train"]),
    default="eval",
    show_default=True,
    help="The modules' mode during the pass (dropout, batch-norm statistics).",
)
@click.option(
    "--residual",
    "residual",
    multiple=True,
    metavar="GLOB",
    help="Name the residual blocks (glob on module names) instead of detecting them.",
)
@click.option("--check", is_flag=True, help="Exit with status 1 when a verdict is not stable.")
@output_options()
@plot_option("a figure of activation (and gradient) std by layer")
def probe_command(
    model, args, shapes, int_inputs, rules_arg, seed, backward, mode, residual, check, output, fmt, plot_path
):
    """Probe MODEL: activation and gradient statistics of every layer in execution order, and
    verdicts (exploding, vanishing, saturating, dead units, residual growth, stable). MODEL is a
    built-in model (cnn, gpt, mlp) or 'package.module:factory', with --arg KEY=VALUE."""
    import dataclasses

    import torch

    from fanin.cli.common import is_rules_file, progress, rules_from_option
    from fanin.cli.errors import answer, describe, fail, usage
    from fanin.cli.models import build_model, parse_args
    from fanin.diagnostics.probing import default_layer, probe
    from fanin.errors import FaninError
    from fanin.models import parse_model_spec
    from fanin.report import probe_table, render_json, render_markdown, write_plot
    from fanin.report.text import rich_escape

    inputs_paths = [rules_arg] if rules_arg is not None and is_rules_file(rules_arg) else []
    out = output_for(output, fmt, inputs=inputs_paths)
    plot = plot_for(plot_path, inputs=inputs_paths, outputs=[out])
    overrides = parse_args(args)
    input_shapes = [_parse_shape(s) for s in shapes]
    module = build_model(model, overrides, seed=seed)
    rules = rules_from_option(rules_arg, module) if rules_arg is not None else None
    if not input_shapes:
        target, kwargs = parse_model_spec(model)
        input_shapes, vocab = _default_inputs(target, {**kwargs, **overrides})
        int_inputs = int_inputs or vocab
    if not input_shapes:
        raise usage(f"give the input's shape with --input-shape (e.g. --input-shape 16,256) for {model}")
    if int_inputs is None:
        vocab = _first_embedding(module)
        if vocab is not None:
            int_inputs = vocab
            click.echo(
                f"note: {model} starts with an nn.Embedding: its inputs are token ids in [0, {vocab}) "
                "(--int-inputs VOCAB to choose)",
                err=True,
            )

    if rules is not None:
        from fanin.planning import apply

        try:
            apply(module, rules, seed=seed)
        except (FaninError, ValueError, TypeError) as err:
            raise fail(err) from None

    generator = torch.Generator().manual_seed(seed)
    try:
        if int_inputs is not None:
            inputs = tuple(torch.randint(int_inputs, s, generator=generator) for s in input_shapes)
        else:
            inputs = tuple(torch.randn(s, generator=generator) for s in input_shapes)
    except (RuntimeError, MemoryError) as err:
        raise fail(f"cannot draw inputs of shape {input_shapes}: {describe(err)}") from None

    total = sum(1 for name, m in module.named_modules() if default_layer(name, m))
    with progress(f"probe {rich_escape(model)}", total=total) as (bar, task):
        try:
            report = probe(
                module,
                inputs,
                backward=backward,
                mode=mode,
                residual=list(residual) or None,
                seed=seed,
                label=model,
                on_layer=lambda record: bar.advance(task),
            )
        except (FaninError, ValueError, TypeError) as err:
            raise fail(f"probing {model} failed: {describe(err)}") from None
        except (RuntimeError, MemoryError, IndexError) as err:
            text = describe(err)
            if int_inputs is None and "indices" in text and ("Long" in text or "Int" in text):
                raise fail(
                    f"probing {model} failed: the model takes integer inputs (token ids), not N(0, 1) "
                    "floats: give --int-inputs VOCAB"
                ) from None
            raise fail(f"probing {model} failed: {type(err).__name__}: {text}") from None
    report = dataclasses.replace(report, input_dtypes=tuple(str(t.dtype).replace("torch.", "") for t in inputs))

    emit(out, report, Renderers(probe_table, render_markdown, render_json))
    write_figure(lambda path: write_plot(report, path), plot)
    if check:
        answer(report.healthy)
