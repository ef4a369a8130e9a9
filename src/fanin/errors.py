"""Error types raised by fanin and the one helper that words their messages.

Every error fanin raises for bad input subclasses :class:`ValueError` or :class:`TypeError`, so
code written against ``torch.nn.init`` keeps catching what it caught before. Messages follow one
shape: the constraint, what was received as ``name=value``, the accepted values (sorted) and,
where one exists, a close match.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "FaninError",
    "SchemeArgumentError",
    "SchemeSpecError",
    "UnknownSchemeError",
    "describe_choice",
]


class FaninError(Exception):
    """Base class of fanin's own errors."""


class UnknownSchemeError(FaninError, ValueError):
    """A scheme name that is not in the registry."""


class SchemeSpecError(FaninError, ValueError):
    """A scheme specification (string, dict or object) that cannot be read."""


class SchemeArgumentError(FaninError, ValueError):
    """A scheme built with arguments it does not accept."""


def describe_choice(what: str, given: object, accepted: Iterable[str], *, show: int = 60) -> str:
    """Word the error for a value that is not one of ``accepted``.

    >>> describe_choice("scheme", "kaimin_normal", ["kaiming_normal", "zeros"])
    "Unknown scheme 'kaimin_normal'. Did you mean 'kaiming_normal'? Accepted: 'kaiming_normal', 'zeros'."
    """
    names = sorted(set(accepted))
    message = f"Unknown {what} {given!r}."
    if isinstance(given, str):
        close = difflib.get_close_matches(given, names, n=3, cutoff=0.6)
        if close:
            message += " Did you mean " + " or ".join(repr(c) for c in close) + "?"
    listed = ", ".join(repr(n) for n in names[:show])
    if len(names) > show:
        listed += f", ... ({len(names) - show} more)"
    return f"{message} Accepted: {listed}."
