"""Error types raised by fanin and the one helper that words their messages.

Every error fanin raises for bad input subclasses :class:`ValueError` or :class:`TypeError`, so
code written against ``torch.nn.init`` keeps catching what it caught before. Messages follow one
shape: the constraint, what was received as ``name=value``, the accepted values (sorted) and,
where one exists, a close match.
"""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Iterable

__all__ = [
    "ApplyError",
    "FaninError",
    "SchemeArgumentError",
    "SchemeSpecError",
    "UnknownFrameworkError",
    "UnknownSchemeError",
    "describe_choice",
    "shown",
]

#: Strings longer than this are not compared for a close match (difflib is quadratic in the worst case).
_CLOSE_MATCH_LENGTH = 100


class FaninError(Exception):
    """Base class of fanin's own errors."""


class UnknownSchemeError(FaninError, ValueError):
    """A scheme name that is not in the registry."""


class UnknownFrameworkError(FaninError, ValueError):
    """A framework name that is none of :data:`fanin.frameworks.FRAMEWORKS`' names or aliases."""


class SchemeSpecError(FaninError, ValueError):
    """A scheme specification (string, dict or object) that cannot be read."""


class SchemeArgumentError(FaninError, ValueError):
    """A scheme built with arguments it does not accept."""


class ApplyError(FaninError, ValueError):
    """A model that :func:`fanin.apply` or :func:`fanin.materialize` cannot write; nothing was written.

    Raised before the first write for a destination that cannot take its value, and when a
    value cannot be computed (the original exception is chained as ``__cause__``).
    """


class _Shown(reprlib.Repr):
    """``repr`` bounded in length and depth: what an error message quotes of a value it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = self.maxfrozenset = 8
        self.maxlong = 40
        self.maxother = 80
        self.maxstring = 80

    def repr_str(self, x: str, level: int) -> str:
        if len(x) <= self.maxstring:
            return repr(x)
        return f"{x[: self.maxstring - 20]!r}... ({len(x)} characters)"

    def repr_instance(self, x: object, level: int) -> str:
        try:
            text = repr(x)
        except Exception:
            return f"<{type(x).__name__} object>"
        return text if len(text) <= self.maxother else text[: self.maxother - 3] + "..."


_SHOWN = _Shown()


def shown(value: object) -> str:
    """``repr(value)``, cut to a bounded excerpt: a message never quotes megabytes of bad input.

    Strings keep their first characters and say how long they were; containers show their first
    items and at most three levels.

    Args:
        value: Any value.

    Returns:
        The bounded ``repr``.

    Examples:
        >>> shown("normal(std=0.02)")
        "'normal(std=0.02)'"
        >>> shown("x" * 10_000)
        "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (10000 characters)"
        >>> shown(list(range(100)))
        '[0, 1, 2, 3, 4, 5, 6, 7, ...]'
    """
    return _SHOWN.repr(value)


def describe_choice(what: str, given: object, accepted: Iterable[str], *, show: int = 60) -> str:
    """Word the error for a value that is not one of ``accepted``.

    Args:
        what: What the value is (``"scheme"``, ``"layout"``, ...).
        given: The value received.
        accepted: The accepted values (listed sorted, without repeats).
        show: At most this many accepted values are listed.

    Returns:
        The message: the value, up to three close matches, the accepted values.

    Examples:
        >>> describe_choice("scheme", "kaimin_normal", ["kaiming_normal", "zeros"])
        "Unknown scheme 'kaimin_normal'. Did you mean 'kaiming_normal'? Accepted: 'kaiming_normal', 'zeros'."
    """
    names = sorted(set(accepted))
    message = f"Unknown {what} {shown(given)}."
    if isinstance(given, str) and len(given) <= _CLOSE_MATCH_LENGTH:
        close = difflib.get_close_matches(given, names, n=3, cutoff=0.6)
        if close:
            message += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    listed = ", ".join(repr(n) for n in names[:show])
    if len(names) > show:
        listed += f", ... ({len(names) - show} more)"
    return f"{message} Accepted: {listed}."
