"""``get``: turn a name, a spec string, a config dict or a scheme object into a :class:`Scheme`.

Spec strings are parsed with :mod:`ast` and only literals are accepted (numbers, strings, None,
True/False, tuples, lists, dicts, ``inf``/``nan`` and ``sqrt(x)``): nothing is ever evaluated.
Parsing is bounded: a spec is at most :data:`MAX_SPEC_LENGTH` characters, its values nest at
most :data:`MAX_NESTING` levels, and an argument (or a dict key) given twice is an error rather
than the last one winning.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from fanin.errors import SchemeSpecError, shown
from fanin.schemes.registry import entry_for, lookup
from fanin.schemes.scheme import Scheme

__all__ = ["MAX_NESTING", "MAX_SPEC_LENGTH", "get", "parse_call", "parse_spec"]

#: The longest spec string :func:`parse_spec` reads, in characters.
MAX_SPEC_LENGTH = 10_000
#: How deeply a spec's values may nest (brackets, signs and ``sqrt`` calls each count one level).
MAX_NESTING = 16

_NAMES = {"inf": math.inf, "nan": math.nan, "None": None, "True": True, "False": False}
_FUNCTIONS: dict[str, Callable[[float], float]] = {"sqrt": math.sqrt}


def get(spec: str | Mapping[str, Any] | Scheme | Callable[..., Any]) -> Scheme:
    """The scheme that ``spec`` describes.

    Args:
        spec: A name or spec string (``"kaiming_normal(mode='fan_out')"``, read by
            :func:`parse_spec`), a config dict ``{"name": ..., "args": {...}}`` (what
            :meth:`Scheme.to_config` gives), a :class:`Scheme` (returned as is) or a registered
            scheme function.

    Returns:
        The scheme, its arguments validated.

    Raises:
        SchemeSpecError: The string or config cannot be read.
        UnknownSchemeError: The name is not registered.
        SchemeArgumentError: An argument is unknown, missing or out of its domain.
        TypeError: ``spec`` is none of the accepted kinds.

    Examples:
        >>> get("kaiming_normal(mode='fan_out', nonlinearity='relu')")
        fanin.get("kaiming_normal(mode='fan_out', nonlinearity='relu')")
        >>> get({"name": "keras.glorot_normal", "args": {}}) == get("keras.glorot_normal")
        True
        >>> get("kaiming_uniform(a=sqrt(5))").args
        {'a': 2.23606797749979}
    """
    if isinstance(spec, Scheme):
        return spec
    if isinstance(spec, str):
        name, args = parse_spec(spec)
        return Scheme(name, **args)
    if isinstance(spec, Mapping):
        return _from_config(spec)
    if callable(spec):
        entry = entry_for(spec)
        if entry is not None:
            return Scheme(entry)
    raise TypeError(
        "A scheme spec must be a name or spec string ('kaiming_normal(mode=\"fan_out\")'), a config "
        f"dict ({{'name': ..., 'args': {{...}}}}), a Scheme or a registered scheme function; got "
        f"spec={shown(spec)} ({type(spec).__name__})"
    )


def _from_config(config: Mapping[str, Any]) -> Scheme:
    extra = sorted(set(config) - {"name", "args"})
    if "name" not in config or extra:
        raise SchemeSpecError(
            f"A scheme config has the keys 'name' and optionally 'args'; got keys {shown(sorted(map(str, config)))}"
        )
    args = config.get("args") or {}
    if not isinstance(args, Mapping):
        raise SchemeSpecError(f"A scheme config's 'args' must be a dict, got args={shown(args)}")
    keys = [k for k in args if not isinstance(k, str)]
    if keys:
        raise SchemeSpecError(f"A scheme config's 'args' has argument names as keys, got key {shown(keys[0])}")
    return Scheme(config["name"], **dict(args))


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(arg=value, ...)"`` into the name and literal arguments, never evaluating code.

    Positional arguments bind to the scheme's parameters in order. A spec is at most
    :data:`MAX_SPEC_LENGTH` characters and its values nest at most :data:`MAX_NESTING` levels
    (brackets, signs, ``sqrt``); an argument given twice, or a key repeated in a dict, is an error.
    Messages quote a bounded excerpt of the spec (:func:`fanin.errors.shown`).

    Args:
        spec: The spec string.

    Returns:
        The scheme name and its arguments by name.

    Raises:
        SchemeSpecError: The string cannot be read as a spec.
        UnknownSchemeError: Positional arguments are given for a name that is not registered.

    Examples:
        >>> parse_spec("uniform(-1, b=2)")
        ('uniform', {'a': -1, 'b': 2})
        >>> parse_spec("uniform(a=open('/etc/passwd'))")
        Traceback (most recent call last):
        ...
        fanin.errors.SchemeSpecError: Cannot read scheme spec "uniform(a=open('/etc/passwd'))": argument values must be
        literals (numbers, strings, None, True/False, tuples, lists, dicts, inf, nan, sqrt(x)); found a call of open
        >>> parse_spec("normal(std=0.02, std=3.0)")
        Traceback (most recent call last):
        ...
        fanin.errors.SchemeSpecError: Cannot read scheme spec 'normal(std=0.02, std=3.0)': argument 'std' given twice
    """
    name, positional, keywords, quoted = parse_call(spec)
    if positional:
        params = [p for p, _ in lookup(name).parameters.items()]
        if len(positional) > len(params):
            raise SchemeSpecError(
                f"Cannot read scheme spec {quoted}: {name} takes at most {len(params)} positional "
                f"argument(s) ({', '.join(params)}), got {len(positional)}"
            )
        for p, value in zip(params, positional, strict=False):
            if p in keywords:
                raise SchemeSpecError(f"Cannot read scheme spec {quoted}: argument {p!r} given twice")
            keywords[p] = value
        keywords = {p: keywords[p] for p in params if p in keywords} | keywords
    return name, keywords


def parse_call(spec: str, what: str = "scheme spec") -> tuple[str, list[Any], dict[str, Any], str]:
    """``(name, positional values, keyword values, quoted excerpt)`` of ``"name(...)"``, bounded as
    :func:`parse_spec` describes.

    Args:
        spec: The string to read.
        what: The kind of string, for messages.

    Returns:
        The dotted name, the positional values, the keyword values and a bounded quoted excerpt
        of ``spec``.

    Raises:
        SchemeSpecError: ``spec`` is not a str, too long, not a call of literals, or nests too deep.

    Examples:
        >>> parse_call("gpt2(n_layer=24)", "preset")[:3]
        ('gpt2', [], {'n_layer': 24})
    """
    if not isinstance(spec, str):
        raise SchemeSpecError(f"A {what} is a str, got {shown(spec)} ({type(spec).__name__})")
    quoted = shown(spec)
    if len(spec) > MAX_SPEC_LENGTH:
        raise SchemeSpecError(
            f"Cannot read {what} {quoted}: it is at most {MAX_SPEC_LENGTH} characters, got "
            f"{len(spec)}; pass large values as a config dict ({{'name': ..., 'args': {{...}}}}) or a Scheme"
        )
    try:
        node = ast.parse(spec.strip(), mode="eval").body
    except SyntaxError as err:
        where = f" at column {err.offset}" if err.offset is not None else ""
        raise SchemeSpecError(f"Cannot read {what} {quoted}: {err.msg}{where}") from None
    except ValueError as err:  # null bytes (a SyntaxError from Python 3.12 on), too many digits
        raise SchemeSpecError(f"Cannot read {what} {quoted}: {err}") from None
    except (RecursionError, MemoryError):
        raise SchemeSpecError(f"Cannot read {what} {quoted}: {_too_deep()}") from None
    if not isinstance(node, ast.Call):
        return _dotted(node, quoted, what), [], {}, quoted
    name = _dotted(node.func, quoted, what)
    keywords: dict[str, Any] = {}
    try:
        positional = [_literal(a, 1) for a in node.args]
        for kw in node.keywords:
            if kw.arg is None:
                raise SchemeSpecError(f"Cannot read {what} {quoted}: '**' is not allowed")
            if kw.arg in keywords:
                raise SchemeSpecError(f"Cannot read {what} {quoted}: argument {shown(kw.arg)} given twice")
            keywords[kw.arg] = _literal(kw.value, 1)
    except _NotLiteral as err:
        raise SchemeSpecError(
            f"Cannot read {what} {quoted}: argument values must be literals (numbers, strings, "
            f"None, True/False, tuples, lists, dicts, inf, nan, sqrt(x)); found {err}"
        ) from None
    except _BadLiteral as err:
        raise SchemeSpecError(f"Cannot read {what} {quoted}: {err}") from None
    return name, positional, keywords, quoted


class _NotLiteral(Exception):
    pass


class _BadLiteral(Exception):
    pass


def _too_deep() -> str:
    return f"it nests too deeply (at most {MAX_NESTING} levels of brackets, signs and sqrt)"


def _dotted(node: ast.AST, quoted: str, what: str) -> str:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):  # a loop, not recursion: a.b.c... may be long
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    example = "'kaiming_normal' or 'keras.glorot_uniform(seed=1)'" if what == "scheme spec" else "'gpt2(n_layer=24)'"
    raise SchemeSpecError(f"Cannot read {what} {quoted}: expected a {what.split()[0]} name such as {example}")


def _literal(node: ast.AST, depth: int) -> Any:
    if depth > MAX_NESTING:
        raise _BadLiteral(_too_deep())
    if isinstance(node, ast.Constant) and not isinstance(node.value, bytes):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand, depth + 1)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _NotLiteral(f"a sign before {shown(value)}")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e, depth + 1) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _NotLiteral("'**' in a dict")
        out: dict[Any, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            key = _literal(k, depth + 1)  # type: ignore[arg-type]
            try:
                repeated = key in out
            except TypeError:  # an unhashable key (a list)
                raise _BadLiteral(
                    f"a dict key must be a number, string, None, True/False or tuple, got {shown(key)}"
                ) from None
            if repeated:
                raise _BadLiteral(f"dict key {shown(key)} given twice")
            out[key] = _literal(v, depth + 1)
        return out
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if len(node.args) == 1 and not node.keywords:
            value = _literal(node.args[0], depth + 1)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    return _FUNCTIONS[node.func.id](value)
                except (ValueError, OverflowError):
                    raise _BadLiteral(f"{node.func.id}({shown(value)}) is not a real number") from None
    if isinstance(node, ast.Call):
        called = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
        raise _NotLiteral(f"a call of {called if len(called) <= 60 else shown(called)}")
    raise _NotLiteral(f"a {type(node).__name__} expression")
