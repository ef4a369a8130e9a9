"""``Scheme``: a registered scheme function with its arguments bound and validated."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fanin.errors import SchemeArgumentError, shown

if TYPE_CHECKING:
    import torch
from fanin.rng.sampling import check_generator
from fanin.rng.sharded import call_scheme, is_dtensor
from fanin.schemes.checks import check_arguments
from fanin.schemes.registry import REQUIRED, SchemeEntry, lookup

__all__ = ["Scheme"]


class Scheme:
    """An initializer: a scheme name and the arguments it was built with.

    Calling it fills a tensor in place and returns it, like the ``torch.nn.init`` functions.
    ``str(scheme)`` and ``scheme.to_config()`` both round-trip through :func:`fanin.get`.

    The arguments are validated when the scheme is built, for every scheme: every number finite
    (:func:`fanin.schemes.checks.check_arguments`), then the scheme's own domain checks.

    Args:
        name: A registered scheme name or alias, or its registry entry.
        **args: The scheme's arguments by name; those equal to the defaults are dropped (the
            canonical form).

    Raises:
        UnknownSchemeError: ``name`` is not registered.
        SchemeArgumentError: An argument is unknown, missing or out of its domain.

    Examples:
        >>> import torch
        >>> s = Scheme("kaiming_normal", mode="fan_out", nonlinearity="relu")
        >>> str(s)
        "kaiming_normal(mode='fan_out', nonlinearity='relu')"
        >>> w = s(torch.empty(4, 3), generator=torch.Generator().manual_seed(0))
        >>> s.to_config()
        {'name': 'kaiming_normal', 'args': {'mode': 'fan_out', 'nonlinearity': 'relu'}}
    """

    __slots__ = ("_args", "_entry")

    def __init__(self, name: str | SchemeEntry, /, **args: Any) -> None:
        entry = name if isinstance(name, SchemeEntry) else lookup(name)
        unknown = sorted(set(args) - set(entry.parameters))
        if unknown:
            accepted = ", ".join(entry.parameters) or "none"
            raise SchemeArgumentError(
                f"Scheme {entry.name!r} got unexpected argument(s) "
                + ", ".join(f"{k if len(k) <= 60 else shown(k)}={shown(args[k])}" for k in unknown[:8])
                + (f", ... ({len(unknown) - 8} more)" if len(unknown) > 8 else "")
                + f". Accepted arguments: {accepted}."
                + _suggest(unknown, entry.parameters)
            )
        missing = [k for k, d in entry.parameters.items() if d is REQUIRED and k not in args]
        if missing:
            raise SchemeArgumentError(
                f"Scheme {entry.name!r} needs argument(s) {', '.join(missing)}, e.g. "
                f"{entry.name}({', '.join(f'{k}=...' for k in missing)})"
            )
        # Keep only what differs from the defaults, in signature order: the canonical form.
        self._entry = entry
        self._args = {k: args[k] for k in entry.parameters if k in args and not _same(args[k], entry.parameters[k])}
        check_arguments(entry.name, self.arguments)
        if entry.validate is not None:
            entry.validate(**self.arguments)

    @property
    def name(self) -> str:
        """The canonical scheme name."""
        return self._entry.name

    @property
    def entry(self) -> SchemeEntry:
        """The registry entry of the scheme."""
        return self._entry

    @property
    def family(self) -> str:
        """The scheme's family (uniform, normal, orthogonal, ...)."""
        return self._entry.family

    @property
    def framework(self) -> str:
        """The name of the scheme's framework."""
        return self._entry.framework

    @property
    def args(self) -> dict[str, Any]:
        """The arguments that differ from the scheme's defaults."""
        return dict(self._args)

    @property
    def arguments(self) -> dict[str, Any]:
        """Every argument, defaults filled in."""
        return {k: self._args.get(k, d) for k, d in self._entry.parameters.items()}

    def __call__(self, tensor: torch.Tensor, generator: object = None) -> torch.Tensor:
        """Fill ``tensor`` in place (only its local shard for a DTensor) and return it.

        Args:
            tensor: The tensor to fill.
            generator: A ``torch.Generator``, a :class:`fanin.Stream` or ``None`` (torch's global
                RNG); checked even by schemes that draw nothing.

        Returns:
            ``tensor``, filled.
        """
        if is_dtensor(tensor):  # sharded: fill only the local shard (fanin.rng.sharded)
            return call_scheme(self, tensor, generator)
        filled: torch.Tensor
        if self._entry.takes_generator:
            filled = self._entry.fn(tensor, generator=generator, **self._args)
            return filled
        # Deterministic schemes (constants, identities) draw nothing; the generator is still checked.
        check_generator(generator)
        filled = self._entry.fn(tensor, **self._args)
        return filled

    def to_config(self) -> dict[str, Any]:
        """The config dict that :func:`fanin.get` reads back.

        Returns:
            ``{"name": ..., "args": {...}}``, the arguments that differ from the defaults.
        """
        return {"name": self.name, "args": dict(self._args)}

    def __str__(self) -> str:
        if not self._args:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self._args.items())})"

    def __repr__(self) -> str:
        return f"fanin.get({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Scheme):
            return NotImplemented
        return self.name == other.name and self._args == other._args

    def __hash__(self) -> int:
        return hash((self.name, str(self)))


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def _suggest(unknown: list[str], parameters: Mapping[str, object]) -> str:
    import difflib

    hints = []
    for k in unknown[:8]:
        if len(k) > 100:
            continue
        close = difflib.get_close_matches(k, list(parameters), n=1)
        if close:
            hints.append(f"{k!r} -> {close[0]!r}")
    return (" Did you mean " + ", ".join(hints) + "?") if hints else ""
