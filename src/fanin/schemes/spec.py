"""``get``: turn a name, a spec string, a config dict or a scheme object into a :class:`Scheme`.

Spec strings are parsed with :mod:`ast` and only literals are accepted (numbers, strings, None,
True/False, tuples, lists, dicts, ``inf``/``nan`` and ``sqrt(x)``): nothing is ever evaluated.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Mapping
from typing import Any

from fanin.errors import SchemeSpecError
from fanin.schemes.registry import entry_for, lookup
from fanin.schemes.scheme import Scheme

__all__ = ["get", "parse_spec"]

_NAMES = {"inf": math.inf, "nan": math.nan, "None": None, "True": True, "False": False}
_FUNCTIONS: dict[str, Callable[[float], float]] = {"sqrt": math.sqrt}


def get(spec: str | Mapping[str, Any] | Scheme | Callable) -> Scheme:
    """The scheme that ``spec`` describes.

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
        f"spec={spec!r} ({type(spec).__name__})"
    )


def _from_config(config: Mapping[str, Any]) -> Scheme:
    extra = sorted(set(config) - {"name", "args"})
    if "name" not in config or extra:
        raise SchemeSpecError(
            f"A scheme config has the keys 'name' and optionally 'args'; got keys {sorted(config)!r}"
        )
    args = config.get("args") or {}
    if not isinstance(args, Mapping):
        raise SchemeSpecError(f"A scheme config's 'args' must be a dict, got args={args!r}")
    return Scheme(config["name"], **dict(args))


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(arg=value, ...)"`` into the name and literal arguments, never evaluating code.

    Positional arguments bind to the scheme's parameters in order.

    >>> parse_spec("uniform(-1, b=2)")
    ('uniform', {'a': -1, 'b': 2})
    >>> parse_spec("uniform(a=open('/etc/passwd'))")
    Traceback (most recent call last):
    ...
    fanin.errors.SchemeSpecError: Cannot read scheme spec "uniform(a=open('/etc/passwd'))": argument values must be literals (numbers, strings, None, True/False, tuples, lists, dicts, inf, nan, sqrt(x)); found a call of open
    """
    text = spec.strip()
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError as err:
        raise SchemeSpecError(f"Cannot read scheme spec {spec!r}: {err.msg} at column {err.offset}") from None
    if isinstance(node, ast.Call):
        name = _dotted(node.func, spec)
        try:
            positional = [_literal(a) for a in node.args]
            keywords = {}
            for kw in node.keywords:
                if kw.arg is None:
                    raise SchemeSpecError(f"Cannot read scheme spec {spec!r}: '**' is not allowed")
                keywords[kw.arg] = _literal(kw.value)
        except _NotLiteral as err:
            raise SchemeSpecError(
                f"Cannot read scheme spec {spec!r}: argument values must be literals (numbers, strings, "
                f"None, True/False, tuples, lists, dicts, inf, nan, sqrt(x)); found {err}"
            ) from None
        if positional:
            params = [p for p, _ in lookup(name).parameters.items()]
            if len(positional) > len(params):
                raise SchemeSpecError(
                    f"Cannot read scheme spec {spec!r}: {name} takes at most {len(params)} positional "
                    f"argument(s) ({', '.join(params)}), got {len(positional)}"
                )
            for p, value in zip(params, positional):
                if p in keywords:
                    raise SchemeSpecError(f"Cannot read scheme spec {spec!r}: argument {p!r} given twice")
                keywords[p] = value
            keywords = {p: keywords[p] for p in params if p in keywords} | keywords
        return name, keywords
    return _dotted(node, spec), {}


class _NotLiteral(Exception):
    pass


def _dotted(node: ast.AST, spec: str) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value, spec)}.{node.attr}"
    raise SchemeSpecError(
        f"Cannot read scheme spec {spec!r}: expected a scheme name such as 'kaiming_normal' or "
        "'keras.glorot_uniform(seed=1)'"
    )


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and not isinstance(node.value, bytes):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _NotLiteral(f"a sign before {value!r}")
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, (ast.Tuple, ast.List)):
        items = [_literal(e) for e in node.elts]
        return tuple(items) if isinstance(node, ast.Tuple) else items
    if isinstance(node, ast.Dict):
        if any(k is None for k in node.keys):
            raise _NotLiteral("'**' in a dict")
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS:
        if len(node.args) == 1 and not node.keywords:
            value = _literal(node.args[0])
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return _FUNCTIONS[node.func.id](value)
    if isinstance(node, ast.Call):
        called = node.func.id if isinstance(node.func, ast.Name) else type(node.func).__name__
        raise _NotLiteral(f"a call of {called}")
    raise _NotLiteral(f"a {type(node).__name__} expression")


