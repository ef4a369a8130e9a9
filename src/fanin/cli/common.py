"""What several commands share beyond outputs and models: ``--rules`` and progress on stderr."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

from fanin.cli.errors import fail, usage

__all__ = ["FiniteFloat", "is_rules_file", "progress", "rules_from_option", "rules_option"]


class FiniteFloat(click.FloatRange):
    """A float option in a range that also refuses NaN (which every comparison lets through)."""

    name = "finite float"

    def convert(self, value, param, ctx):
        import math

        rv = super().convert(value, param, ctx)
        if isinstance(rv, float) and math.isnan(rv):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        return rv


def rules_option(default: str | None, help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--rules FILE|PRESET`` (parameter ``rules_arg``)."""
    return click.option(
        "--rules", "rules_arg", default=default, show_default=default is not None, metavar="FILE|PRESET", help=help
    )


def is_rules_file(rules_arg: str) -> bool:
    """A ``.toml``/``.json`` name or any path with a directory part is a file; anything else a preset."""
    return rules_arg.lower().endswith((".toml", ".json")) or os.sep in rules_arg or "/" in rules_arg


def rules_from_option(rules_arg: str, model=None):
    """``--rules FILE|PRESET``: the rules read from a ``.toml``/``.json`` file, or the preset's
    rules (what a preset needs and is not given is read from ``model``'s documented attributes).
    A preset that does not exist and a file that is not there are usage errors (status 2); a file
    that exists but cannot be read as rules is a failure (status 1)."""
    from fanin.errors import FaninError

    if not is_rules_file(rules_arg):
        from fanin.rules.presets import preset

        try:
            return preset(rules_arg, model)
        except (FaninError, ValueError, TypeError) as err:
            raise usage(err, "--rules") from None
    from fanin.rules import load_rules

    if not os.path.isfile(rules_arg):
        what = "is not a file" if os.path.exists(rules_arg) else "does not exist"
        raise usage(f"Cannot read rules file {rules_arg!r}: it {what}", "--rules")
    try:
        return load_rules(rules_arg)
    except (FaninError, ValueError, TypeError, OSError, RecursionError, MemoryError) as err:
        raise fail(f"rules file {rules_arg!r}: {err}") from None


def progress(description: str, total: int | None = None):
    """A transient progress bar on stderr, shown only on a terminal: ``with progress(...) as (bar, task)``."""
    from contextlib import contextmanager

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    @contextmanager
    def bar():
        stderr = Console(stderr=True)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=stderr, transient=True, disable=not stderr.is_terminal) as p:
            yield p, p.add_task(description, total=total)

    return bar()
