"""One registry of schemes: the CLI, presets, audit, docs and contract tests all iterate it.

A *scheme function* fills a tensor in place, ``fn(tensor, *, generator=None, **args) -> tensor``
(the ``torch.nn.init`` convention). Registering it under a name makes it reachable from
:func:`fanin.get` as a :class:`~fanin.schemes.scheme.Scheme` with bound, validated arguments.

Names are ``name`` for PyTorch's schemes and ``framework.name`` for the others
(``keras.glorot_normal``, ``tf1.truncated_normal_initializer``, ``jax.lecun_normal``). The schemes
are defined by the framework modules of :mod:`fanin.frameworks`, each through its
:class:`~fanin.frameworks.record.Framework` record; the registry loads that package on first
lookup (by name: it is the one import here of a layer to the right, a plugin load, and nothing of
it is used here), so that ``fanin.get`` works whichever of fanin's modules was imported first.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fanin.errors import UnknownSchemeError, describe_choice

__all__ = [
    "FAMILIES",
    "REQUIRED",
    "SchemeEntry",
    "declare_framework",
    "entry_for",
    "list_schemes",
    "lookup",
    "register",
]

# What the values of a scheme look like, for audits and docs.
FAMILIES = (
    "constant",
    "identity",
    "normal",
    "orthogonal",
    "sparse",
    "truncated_normal",
    "uniform",
)

# The package whose import registers every scheme (it lists the framework modules).
PROVIDER = "fanin.frameworks"


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = _Required()


@dataclass(frozen=True)
class SchemeEntry:
    """A registered scheme function and what is known about it.

    ``framework`` names its framework (:func:`fanin.frameworks.get_framework` gives the record);
    ``element_local`` says that every element it writes comes from that element's own draw, so
    the scheme may run on a DTensor's local shard (decided by the framework's record when the
    scheme is registered through it; ``False`` for any other registration).
    """

    name: str
    fn: Callable[..., Any]
    family: str
    framework: str
    parameters: dict[str, object]
    aliases: tuple[str, ...] = ()
    takes_generator: bool = True
    validate: Callable[..., None] | None = field(default=None, compare=False)
    element_local: bool = False

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.fn) or ""
        return doc.splitlines()[0] if doc else ""


_REGISTRY: dict[str, SchemeEntry] = {}
_ALIASES: dict[str, str] = {}
_BY_FUNCTION: dict[Callable[..., Any], str] = {}
_FRAMEWORKS: dict[str, str] = {}  # a framework's name or alias -> its name
_loaded = False


def register(
    name: str,
    *,
    family: str,
    framework: str,
    aliases: tuple[str, ...] = (),
    validate: Callable[..., None] | None = None,
    element_local: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a scheme function under ``name`` (a decorator; the function is returned unchanged).

    fanin's own schemes register through their framework's record
    (:meth:`fanin.frameworks.record.Framework.register`), which sets ``framework`` and ``element_local``.

    Args:
        name: The canonical name.
        family: The scheme's family (one of ``FAMILIES``: uniform, normal, orthogonal, ...).
        framework: The name or an alias of a declared framework.
        aliases: Other names :func:`lookup` accepts.
        validate: Called as ``validate(**args)`` with the full argument set (defaults filled in)
            when a :class:`~fanin.schemes.Scheme` is built, so bad arguments fail at construction,
            not when the scheme runs.
        element_local: Whether the function writes every element from its own draw only (so it
            may run on a DTensor's local shard).

    Returns:
        The decorator.

    Raises:
        ValueError: An unknown family or framework, or a name already registered.
    """
    if family not in FAMILIES:
        raise ValueError(describe_choice("family", family, FAMILIES))
    if not (isinstance(framework, str) and framework in _FRAMEWORKS):
        _load_providers()  # a scheme registered before fanin's own: the frameworks are declared there
    if not (isinstance(framework, str) and framework in _FRAMEWORKS):
        raise ValueError(describe_choice("framework", framework, _FRAMEWORKS))
    framework = _FRAMEWORKS[framework]

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        params: dict[str, object] = {}
        signature = inspect.signature(fn).parameters
        for i, p in enumerate(signature.values()):
            if i == 0 or p.name == "generator" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            params[p.name] = REQUIRED if p.default is p.empty else p.default
        if name in _REGISTRY and _same_definition(_REGISTRY[name].fn, fn):
            # The same source defining the same function again: a second import of the module
            # (pytest's importlib import mode does this for doctests). The first entry stands.
            return fn
        if name in _REGISTRY or name in _ALIASES:
            raise ValueError(f"scheme {name!r} is already registered")
        entry = SchemeEntry(
            name, fn, family, framework, params, tuple(aliases), "generator" in signature, validate, element_local
        )
        _REGISTRY[name] = entry
        for alias in aliases:
            _ALIASES[alias] = name
        _BY_FUNCTION[fn] = name
        return fn

    return decorator


def _same_definition(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    a, b = inspect.unwrap(a), inspect.unwrap(b)
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return (
        code_a is not None
        and code_b is not None
        and a.__qualname__ == b.__qualname__
        and code_a.co_filename == code_b.co_filename
        and code_a.co_firstlineno == code_b.co_firstlineno
    )


def _load_providers() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module(PROVIDER)


def declare_framework(name: str, aliases: tuple[str, ...] = ()) -> None:
    """Make ``name`` (and its ``aliases``) a framework that schemes may be registered under and
    :func:`list_schemes` accepts; called for each record of :mod:`fanin.frameworks`.

    Args:
        name: The framework's name.
        aliases: Other names of it.

    Raises:
        ValueError: A name already names another framework.
    """
    for key in (name, *aliases):
        if _FRAMEWORKS.get(key, name) != name:
            raise ValueError(f"framework name {key!r} already names framework {_FRAMEWORKS[key]!r}")
    _FRAMEWORKS.update(dict.fromkeys((name, *aliases), name))


def lookup(name: str) -> SchemeEntry:
    """The entry registered under ``name`` or one of its aliases.

    Args:
        name: A scheme name or alias.

    Returns:
        The registry entry.

    Raises:
        UnknownSchemeError: ``name`` is not registered (the message names close matches).
    """
    _load_providers()
    if not isinstance(name, str):
        raise UnknownSchemeError(describe_choice("scheme", name, [*_REGISTRY, *_ALIASES]))
    canonical = _ALIASES.get(name, name)
    try:
        return _REGISTRY[canonical]
    except KeyError:
        raise UnknownSchemeError(describe_choice("scheme", name, [*_REGISTRY, *_ALIASES])) from None


def entry_for(fn: Callable[..., Any]) -> SchemeEntry | None:
    """The entry of a registered scheme function, or ``None``.

    Args:
        fn: A function.

    Returns:
        Its registry entry, or ``None`` when ``fn`` is not registered.
    """
    _load_providers()
    name = _BY_FUNCTION.get(fn)
    return _REGISTRY[name] if name is not None else None


def list_schemes(framework: str | None = None) -> list[str]:
    """Sorted canonical names of the registered schemes, optionally of one framework.

    Args:
        framework: A framework name or an alias of one (``"flax"`` is JAX's); ``None``: every
            framework.

    Returns:
        The canonical names, sorted.

    Raises:
        ValueError: ``framework`` names no framework with registered schemes.

    Examples:
        >>> "kaiming_normal" in list_schemes()
        True
        >>> list_schemes("jax")[:2] == list_schemes("flax")[:2] == ['jax.constant', 'jax.delta_orthogonal']
        True
    """
    _load_providers()
    frameworks = sorted({e.framework for e in _REGISTRY.values()})
    if framework is not None:
        canonical = _FRAMEWORKS.get(framework) if isinstance(framework, str) else None
        if canonical not in frameworks:
            accepted = [k for k, v in _FRAMEWORKS.items() if v in frameworks]
            raise ValueError(describe_choice("framework", framework, accepted))
        framework = canonical
    return sorted(n for n, e in _REGISTRY.items() if framework is None or e.framework == framework)
