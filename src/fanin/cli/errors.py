"""How the CLI fails: exit status 2 for usage, 1 for a failure or a "no" answer, never a traceback.

- :class:`Group` wraps every command: a known error (fanin's own, a checkpoint, a file, memory)
  becomes one line ``Error: ...`` and exit status 1; anything else one line naming its type and
  asking for a report, also status 1. ``FANIN_TRACEBACK=1`` in the environment lets the exception
  through instead, with its traceback (for debugging fanin itself).
- :func:`usage` raises a usage error (status 2) for an option or argument, :func:`fail` a failure
  (status 1); both print one line, with names from files and models made printable.
- :func:`answer` ends a command whose question (``--check``, ``--exit-code``) was answered "no"
  with status 1, after the report has been written.

Status 2 is for what was typed: an unknown name, option value or model, a missing input path, an
output path that cannot be written. Status 1 is for what happened: a file that cannot be read, a
model that fails to build or run, rules that do not cover a model.
"""

from __future__ import annotations

import os

import click

__all__ = ["TRACEBACK_ENV", "Group", "answer", "describe", "fail", "one_line", "usage"]

TRACEBACK_ENV = "FANIN_TRACEBACK"
EXIT_NO = 1


MAX_MESSAGE = 600  # characters of an error line; what a huge input would make longer is elided in the middle


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with its middle elided when longer than ``limit`` (a 100,000-character input stays
    recognisable by its start and the message keeps its end: the accepted values)."""
    if len(text) <= limit:
        return text
    head, tail = limit * 2 // 3, limit // 3
    return f"{text[:head]} ...({len(text) - head - tail} characters)... {text[-tail:]}"


def one_line(message: object) -> str:
    """``message`` as one printable line: its lines joined with "; ", control characters escaped,
    at most :data:`MAX_MESSAGE` characters."""
    from fanin.report.text import printable

    lines = [printable(part).strip() for part in str(message).splitlines()]
    return bounded("; ".join(line for line in lines if line) or "(no message)")


def describe(err: BaseException) -> str:
    """One line for an exception: its message, or its type where the message is empty or is only
    a name (``KeyError('x')``)."""
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    if isinstance(err, OSError) and err.strerror:
        where = f" ({err.filename})" if err.filename else ""
        text = f"{err.strerror}{where}"
    return one_line(text) if text.strip() else type(err).__name__


def usage(message: object, param: str | None = None) -> click.UsageError:
    """A usage error (exit status 2) about ``param`` (an option such as ``"--arg"``, or an argument)."""
    if param is None:
        return click.UsageError(one_line(message))
    return click.BadParameter(one_line(message), param_hint=param)


def fail(message: object) -> click.ClickException:
    """A failure (exit status 1) with a one-line message."""
    return click.ClickException(one_line(message))


def answer(yes: bool) -> None:
    """End the command with status 1 when the answer to its question is "no"."""
    if not yes:
        raise SystemExit(EXIT_NO)


def _known(err: Exception) -> str | None:
    """The one-line message of an error fanin knows how to report, else ``None``."""
    from fanin.errors import FaninError

    if isinstance(err, FaninError):
        return describe(err)
    if isinstance(err, MemoryError):
        return "out of memory" + (f": {describe(err)}" if str(err) else "")
    if isinstance(err, RecursionError):
        return f"structure too deeply nested to process ({describe(err)})"
    if isinstance(err, OSError):
        return describe(err)
    if isinstance(err, EOFError):
        # click would read an EOFError as Ctrl-D and print only "Aborted!"
        return f"unexpected end of input: {describe(err)}"
    if isinstance(err, RuntimeError) and "can't allocate memory" in str(err):
        return "out of memory: " + describe(err)
    return None


class Group(click.Group):
    """The ``fanin`` command group: every subcommand's errors end as one line (see the module)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.ClickException as err:
            # click's own messages echo what was typed (an unknown option of 5,000 dashes): one bounded line
            err.message = one_line(err.message)  # type: ignore[misc]  # click declares it Final; set once here
            raise
        except (click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as err:
            if os.environ.get(TRACEBACK_ENV):
                raise
            command = ctx.invoked_subcommand or "fanin"
            known = _known(err)
            if known is not None:
                raise fail(known) from None
            raise fail(
                f"fanin {command} failed unexpectedly: {type(err).__name__}: {describe(err)} "
                f"(set {TRACEBACK_ENV}=1 to see the traceback, and please report it)"
            ) from None
