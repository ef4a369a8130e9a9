"""The model forms every model-taking command accepts, and the one way they are read.

- a built-in demo model: ``mlp``, ``cnn``, ``gpt`` (:data:`fanin.models.MODELS`);
- ``package.module:factory``: a function or class returning an ``nn.Module``, imported as Python
  imports it (your own code);
- either with keyword arguments, in the spec (``"gpt(n_layer=4)"``) or as repeated
  ``--arg KEY=VALUE`` (values are Python literals, read with :func:`ast.literal_eval`; nothing is
  evaluated); a wrong argument lists the ones the factory accepts;
- where the command reads checkpoints (``audit``, ``diff``): a checkpoint file or directory. A
  path that exists is always read as a checkpoint (write ``./mlp`` or a full path to be explicit);
  a name is built as a model.

Built models are constructed under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``,
so the same command gives the same model and the global RNG is left as it was.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from fanin.cli.errors import fail, usage

__all__ = ["CHECKPOINT_SUFFIXES", "arg_option", "build_model", "captured_plan", "model_or_checkpoint", "parse_args"]

CHECKPOINT_SUFFIXES = (".bin", ".ckpt", ".pt", ".pth", ".safetensors")


def arg_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--arg KEY=VALUE`` (parameter ``args``), repeatable."""
    return click.option(
        "--arg",
        "args",
        multiple=True,
        metavar="KEY=VALUE",
        help="Keyword argument of the model's factory (a Python literal); repeatable.",
    )(fn)


def parse_args(args: tuple[str, ...]) -> dict[str, object]:
    """``("depth=6", "name='x'")`` -> ``{"depth": 6, "name": "x"}``; a usage error for anything else."""
    out: dict[str, object] = {}
    for text in args:
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise usage(f"expected KEY=VALUE, got {text!r}", "--arg")
        if key in out:
            raise usage(f"{key} is given twice ({text!r})", "--arg")
        try:
            out[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise usage(
                f"the value of {key} must be a Python literal (number, string in quotes, True/False/None, tuple, "
                f"list, dict), got {text!r}",
                "--arg",
            ) from None
    return out


def _buildable(spec: str) -> bool:
    from fanin.models import MODELS, ModelSpecError, parse_model_spec

    try:
        target, _ = parse_model_spec(spec)
    except ModelSpecError:
        return "(" in spec  # a malformed spec with arguments: building it says what is wrong
    return ":" in target or target in MODELS


def build_model(spec: str, args: dict[str, object], *, param: str = "MODEL", seed: int = 0, meta: bool = False):
    """The ``nn.Module`` of ``spec`` and ``args`` (usage errors for unknown models or arguments,
    failures for factories that raise). ``meta``: build on the meta device (no memory, no values)."""
    import torch

    from fanin.models import ModelBuildError, ModelSpecError, build

    if not _buildable(spec) and os.path.exists(spec):
        raise usage(
            f"{spec!r} is a file or directory, and this command builds a model: give a built-in model "
            "(cnn, gpt, mlp) or 'package.module:factory'; fanin audit reads checkpoints",
            param,
        )
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if meta:
                with torch.device("meta"):
                    return build(spec, **args)
            return build(spec, **args)
    except ModelSpecError as err:
        raise usage(err, param) from None
    except ModelBuildError as err:
        raise fail(err) from None


def model_or_checkpoint(spec: str, args: dict[str, object], *, param: str, seed: int = 0):
    """A checkpoint path (an existing file or directory) as it is, else the model ``spec`` builds."""
    if os.path.exists(spec):
        if args:
            raise usage(f"--arg configures a model's factory; {spec!r} is a checkpoint, read as it is", "--arg")
        return spec
    if not _buildable(spec):
        from fanin.errors import describe_choice
        from fanin.models import MODELS

        looks_like_path = Path(spec).suffix.lower() in CHECKPOINT_SUFFIXES or os.sep in spec or "/" in spec
        if looks_like_path:
            raise usage(f"No such file or directory: {spec!r}", param)
        raise usage(
            describe_choice("model", spec, MODELS)
            + " Or give a checkpoint file or directory, or an import path 'package.module:factory'.",
            param,
        )
    return build_model(spec, args, param=param, seed=seed)


def captured_plan(spec: str, args: dict[str, object], *, seed: int | None = None, param: str = "MODEL"):
    """``fanin.capture`` of the model ``spec`` builds: its construction (every module's own
    ``reset_parameters``, a Hugging Face model's ``_init_weights``, ...) recorded as a plan. The
    model is built once first, so a spec or argument that is wrong is a usage error as for every
    other command; a factory or init code that fails is a failure."""
    from fanin.errors import FaninError
    from fanin.models import build
    from fanin.planning.capturing import capture

    build_model(spec, args, param=param, meta=True)
    try:
        return capture(lambda: build(spec, **args), seed=seed)
    except (FaninError, ValueError, TypeError, RuntimeError) as err:
        raise fail(f"cannot capture the init of {spec!r}: {err}") from None
