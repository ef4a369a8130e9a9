"""Option values that several commands read the same way."""

from __future__ import annotations

import os

import click

__all__ = ["rules_from_option"]


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
