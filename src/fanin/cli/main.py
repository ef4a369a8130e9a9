"""The ``fanin`` command: parse, call the library, pick a renderer, write.

Every command follows one convention (:mod:`fanin.cli.output` for ``-o``/``--format``/``--plot``,
:mod:`fanin.cli.models` for the model forms, :mod:`fanin.cli.errors` for exit statuses: 0 done,
1 failed or the answer to ``--check``/``--exit-code`` is "no", 2 usage). Results go to stdout;
progress, written paths and notes to stderr. Everything a command needs beyond click is imported
when that command runs.
"""

from __future__ import annotations

import click

from fanin import __version__
from fanin.cli.audit import audit_command, diff_command
from fanin.cli.coord_check import coord_check_command
from fanin.cli.demo import demo_command
from fanin.cli.errors import Group
from fanin.cli.explain import explain_command
from fanin.cli.gain import gain_command
from fanin.cli.lint import lint_command
from fanin.cli.probe import probe_command
from fanin.cli.schemes import schemes_command

__all__ = ["main"]


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="fanin", message="%(prog)s %(version)s")
def main() -> None:
    """Exact, reproducible and explainable weight initialization for PyTorch.

    Exit status: 0 done, 1 failed (or --check/--exit-code answered "no"), 2 usage error.
    Set FANIN_TRACEBACK=1 to see the traceback of an unexpected error.
    """


for command in (
    demo_command,
    gain_command,
    schemes_command,
    explain_command,
    lint_command,
    probe_command,
    coord_check_command,
    audit_command,
    diff_command,
):
    main.add_command(command)
