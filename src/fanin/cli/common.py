"""What several commands share: reading ``--rules`` and the console results are printed on."""

from __future__ import annotations

import os
import sys

import click

__all__ = ["rules_from_option", "stdout_console"]


def rules_from_option(rules_arg: str):
    """``--rules FILE|PRESET``: the rules loaded from a ``.toml``/``.json`` file (or any path), else the
    preset name itself, for :func:`fanin.plan` / :func:`fanin.apply` to resolve."""
    if not (rules_arg.lower().endswith((".toml", ".json")) or os.path.sep in rules_arg):
        return rules_arg
    from fanin.rules import RuleError, load_rules

    try:
        return load_rules(rules_arg)
    except RuleError as err:
        raise click.BadParameter(str(err), param_hint="--rules") from None


def stdout_console():
    """The rich console for results: the terminal's width, or 200 columns when stdout is a pipe or
    a file (so tables are not cut at rich's 80-column default)."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)
