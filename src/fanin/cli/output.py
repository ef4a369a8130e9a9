"""The one output convention of every command: ``-o/--output FILE``, ``--format``, ``--plot FILE``.

- ``-o/--output FILE`` writes the report to FILE instead of stdout, in the format of its suffix
  (:data:`SUFFIXES`: ``.txt`` the plain-text table, ``.md`` Markdown, ``.json`` JSON) unless
  ``--format`` says otherwise; a suffix and a ``--format`` that disagree are refused, as is a
  suffix that names no format (a FILE without a suffix needs ``--format``).
- ``--format table|markdown|json`` alone chooses what is printed on stdout (default ``table``: on a
  terminal, fitted to its width; into a pipe or file, plain text as wide as it needs, or
  ``$COLUMNS`` wide when that is set).
- ``--plot FILE`` writes the command's figure, in the format of its suffix (PNG, SVG or PDF).

Every output path is checked before the work starts (:func:`output_for`, :func:`plot_for`): its
directory exists and is writable, it is not a directory or a special file, and it is none of the
command's inputs (compared by resolved path and by inode, so a link or a second name of an input
is caught too; nothing is written inside an input directory over a file that is already there).
Files are written to a temporary name in the same directory and renamed into place
(:func:`fanin.report.files.atomic_write`), so a failure leaves any old file as it was. Written
paths are announced on stderr; results go to stdout.

A new command follows it with :func:`output_options` (and :func:`plot_option`), resolves the
paths first, does its work, then calls :func:`emit` with its :class:`Renderers`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from fanin.cli.errors import fail, usage

__all__ = [
    "FORMATS",
    "SUFFIXES",
    "Output",
    "Renderers",
    "emit",
    "output_for",
    "output_options",
    "plot_for",
    "plot_option",
    "results_width",
    "write_figure",
    "wrote",
]

FORMATS = ("table", "markdown", "json")
SUFFIXES = {".json": "json", ".md": "markdown", ".txt": "table"}


def output_options(what: str = "the report") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-o/--output FILE`` and ``--format`` (parameters ``output`` and ``fmt``)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            default=None,
            help="Format of the report: table (plain text in a file), markdown or json "
            "[default: from the suffix of -o, else table].",
        )(fn)
        fn = click.option(
            "-o",
            "--output",
            "output",
            metavar="FILE",
            default=None,
            help=f"Write {what} to FILE (.txt, .md or .json) instead of stdout.",
        )(fn)
        return fn

    return decorate


def plot_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--plot FILE`` (parameter ``plot_path``)."""
    return click.option(
        "--plot",
        "plot_path",
        metavar="FILE",
        default=None,
        help=f"Write {what} to FILE (.png, .svg or .pdf; needs fanin[plot]).",
    )


@dataclass(frozen=True)
class Output:
    """Where a report goes (``path`` ``None``: stdout) and in which format."""

    format: str
    path: Path | None = None


@dataclass(frozen=True)
class Renderers:
    """A command's renderers: ``table(report, width)`` returns a rich renderable or text (``width``
    ``None``: natural width), ``markdown(report)`` and ``json(report)`` return text."""

    table: Callable[[Any, int | None], Any]
    markdown: Callable[[Any], str]
    json: Callable[[Any], str]


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _inside(path: Path, directory: Path) -> bool:
    try:
        return path.resolve().is_relative_to(directory.resolve())
    except OSError:
        return False


def check_destination(
    path: str, option: str, inputs: Iterable[str | os.PathLike[str]] = (), taken: Iterable[Path] = ()
) -> Path:
    """``path`` as a :class:`Path` once it is known to be writable and not an input; a usage
    error (status 2) naming ``option`` otherwise."""
    if not path or path.endswith(("/", os.sep)):
        raise usage(f"expected a file path, got {path!r}", option)
    p = Path(path)
    if p.is_dir():
        raise usage(f"{path!r} is a directory; give a file path", option)
    if p.exists() and not p.is_file():
        raise usage(
            f"{path!r} is not a regular file; give a file path (without {option}, results go to stdout)", option
        )
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise usage(f"the directory of {path!r} does not exist ({str(parent)!r})", option)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise usage(f"the directory of {path!r} is not writable ({str(parent)!r})", option)
    if p.exists() and not os.access(p, os.W_OK):
        raise usage(f"{path!r} exists and is read-only", option)
    for given in inputs:
        source = Path(given)
        if not source.exists():
            continue
        if _same(p, source):
            raise usage(f"{path!r} is an input of this command ({str(given)!r}); write the output elsewhere", option)
        if source.is_dir() and p.exists() and _inside(p, source):
            raise usage(
                f"{path!r} is a file inside the input directory {str(given)!r}; write the output elsewhere", option
            )
    for other in taken:
        if _same(p, other):
            raise usage(f"{path!r} is already the destination of another output of this command", option)
    return p


def output_for(output: str | None, fmt: str | None, *, inputs: Iterable[str | os.PathLike[str]] = ()) -> Output:
    """The :class:`Output` of ``-o``/``--format``, checked (see the module): call it before the work.
    ``fmt`` is one of :data:`FORMATS` (click's choice has checked it) or ``None``."""
    if output is None:
        return Output(fmt or "table")
    path = check_destination(output, "-o/--output", inputs)
    suffix = path.suffix.lower()
    accepted = ", ".join(f"{s} ({f})" for s, f in sorted(SUFFIXES.items()))
    by_suffix = SUFFIXES.get(suffix)
    if by_suffix is None:
        if suffix or fmt is None:
            raise usage(
                f"cannot tell the report's format from output={output!r}: the suffix is "
                f"{suffix or 'missing'}; accepted suffixes: {accepted}",
                "-o/--output",
            )
        return Output(fmt, path)
    if fmt is not None and fmt != by_suffix:
        raise usage(
            f"--format {fmt} disagrees with the suffix of output={output!r} ({suffix} is {by_suffix}); "
            "give one or make them agree",
            "-o/--output",
        )
    return Output(by_suffix, path)


def plot_for(
    plot_path: str | None, *, inputs: Iterable[str | os.PathLike[str]] = (), outputs: Iterable[Output] = ()
) -> Path | None:
    """The checked ``--plot`` path (suffix, matplotlib installed, writable, not an input), or ``None``."""
    if plot_path is None:
        return None
    from fanin.report.plot import FigureFormatError, MissingExtraError, figure_format, require_matplotlib

    path = check_destination(plot_path, "--plot", inputs, [o.path for o in outputs if o.path is not None])
    try:
        figure_format(plot_path)
    except FigureFormatError as err:
        raise usage(str(err), "--plot") from None
    try:
        require_matplotlib()
    except MissingExtraError as err:
        raise fail(str(err)) from None
    return path


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()


def results_width() -> int | None:
    """The width tables are fitted to on stdout: the terminal's, else ``$COLUMNS``, else ``None``
    (as wide as they need)."""
    if stdout_is_terminal():
        return shutil.get_terminal_size().columns
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def wrote(path: Path) -> None:
    click.echo(f"wrote {path}", err=True)


def _write(path: Path, text: str) -> None:
    from fanin.report.files import atomic_write

    try:
        atomic_write(path, text)
    except OSError as err:
        raise fail(f"Cannot write the report to {path}: {err.strerror or err}") from None
    wrote(path)


def emit(out: Output, report: Any, renderers: Renderers) -> None:
    """Render ``report`` in ``out.format`` and write it where ``out`` says."""
    from fanin.report.table import plain_text

    if out.format == "table":
        if out.path is not None:
            rendered = renderers.table(report, None)
            _write(out.path, rendered if isinstance(rendered, str) else plain_text(rendered, None))
            return
        if stdout_is_terminal():
            from rich.console import Console

            console = Console(highlight=False)
            rendered = renderers.table(report, console.width)
            if isinstance(rendered, str):
                click.echo(rendered, nl=False)
            else:
                console.print(rendered)
            return
        width = results_width()
        rendered = renderers.table(report, width)
        click.echo(rendered if isinstance(rendered, str) else plain_text(rendered, width), nl=False)
        return
    text = renderers.markdown(report) if out.format == "markdown" else renderers.json(report)
    if out.path is not None:
        _write(out.path, text)
    else:
        click.echo(text, nl=False)


def write_figure(draw: Callable[[Path], Any], path: Path | None) -> None:
    """Call ``draw(tmp)`` (a renderer writing the figure to a path) on a temporary file beside
    ``path`` with its suffix, rename it into place and announce it: atomic whatever the renderer
    does. Nothing for ``None``."""
    if path is None:
        return
    from fanin.report.files import atomic_path

    try:
        with atomic_path(path) as tmp:
            draw(tmp)
    except OSError as err:
        raise fail(f"Cannot write the plot to {path}: {err.strerror or err}") from None
    wrote(path)
