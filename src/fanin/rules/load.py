r"""Rules as data: a small schema, read from TOML, JSON or a Python dict.

A rules document (docs/rules.md has more examples)::

    leftovers = "error"            # optional: "error" (default), "keep", "reset_parameters"
    preset = "torch"               # optional: a preset (or a list) tried after the rules

    [[rules]]                      # tried in order, first match wins
    name = "*.attn.c_proj.weight"  # glob on the qualified name   (or: regex = "...")
    init = "normal(std=0.002)"     # a scheme spec, {name=..., args={...}}, "keep",
                                   # "reset_parameters" or "defaults:<framework>"
    [[rules]]
    module = ["Linear", "Conv2d"]  # class names (bare or dotted), any of them
    role = "weight"                # or a list: see fanin.rules.selectors.ROLES
    ndim = ">=2"                   # an int, or ">=n", "<=n", ">n", "<n", "==n"
    exclude = {name = "head.*"}    # a selector (same keys) the tensor must NOT match
    init = {name = "kaiming_normal", args = {mode = "fan_out", nonlinearity = "relu"}}

Selector keys in one rule must all match. ``kind = "buffer"`` (or ``"any"``) lets a rule cover
buffers. ``rules`` may instead be a table ``{glob = init}`` (in order). In JSON the same document
is an object with the same keys.

>>> doc = {"leftovers": "keep", "rules": [{"module": "Linear", "role": "bias", "init": "zeros"}]}
>>> r = rules_from_dict(doc)
>>> r.leftovers, str(r[0])
('keep', "module=Linear & role='bias' -> zeros")
>>> rules_from_dict({"rules": [{"name": "*", "init": "zeros", "colour": "red"}]})
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: rules[0]: unknown key 'colour'. Accepted keys: exclude, init, kind, module, name, ndim, regex, role.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from fanin.errors import FaninError
from fanin.rules.rules import Rule, RuleError, Rules, as_rules
from fanin.rules.selectors import All, Kind, Module, Name, Ndim, Not, Role, Selector

__all__ = ["DOCUMENT_KEYS", "RULE_KEYS", "is_document", "load_rules", "rules_from_dict", "selector_from_dict"]

DOCUMENT_KEYS = ("leftovers", "preset", "rules")
SELECTOR_KEYS = ("exclude", "module", "name", "ndim", "regex", "role")
RULE_KEYS = ("exclude", "init", "kind", "module", "name", "ndim", "regex", "role")

_NDIM = re.compile(r"^\s*(>=|<=|==|>|<)?\s*(\d+)\s*$")


def is_document(data: Mapping[Any, Any]) -> bool:
    """Whether a mapping is a rules document (keys among leftovers/preset/rules) rather than ``{glob: init}``."""
    return bool(data) and all(k in DOCUMENT_KEYS for k in data) and ("rules" in data or "preset" in data)


def _strings(where: str, key: str, value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise RuleError(f"{where}: {key} must be a string or a list of strings, got {key}={value!r}")
    return items


def _ndim(where: str, value: object) -> Ndim:
    if isinstance(value, int) and not isinstance(value, bool):
        return Ndim(value)
    match = _NDIM.match(value) if isinstance(value, str) else None
    if match is None:
        raise RuleError(f"{where}: ndim must be an int or '>=n', '<=n', '>n', '<n', '==n', got ndim={value!r}")
    op, n = match.group(1) or "==", int(match.group(2))
    if op == "<" and n == 0:
        raise RuleError(f"{where}: no tensor has ndim {value}")
    return {"==": lambda: Ndim(n), ">=": lambda: Ndim(min=n), "<=": lambda: Ndim(max=n),
            ">": lambda: Ndim(min=n + 1), "<": lambda: Ndim(max=n - 1)}[op]()


def selector_from_dict(data: Mapping[str, Any], where: str = "selector") -> Selector:
    """The selector that a rule's (or an ``exclude``'s) keys describe: all of them must match."""
    parts: list[Selector] = []
    try:
        if "name" in data:
            parts.append(Name(data["name"]))
        if "regex" in data:
            parts.append(Name(data["regex"], regex=True))
        if "module" in data:
            parts.append(Module(*_strings(where, "module", data["module"])))
        if "role" in data:
            parts.append(Role(*_strings(where, "role", data["role"])))
        if "ndim" in data:
            parts.append(_ndim(where, data["ndim"]))
        if "exclude" in data:
            excluded = data["exclude"]
            if not isinstance(excluded, Mapping) or set(excluded) - set(SELECTOR_KEYS) or not excluded:
                raise RuleError(
                    f"{where}: exclude must be a table of selector keys ({', '.join(SELECTOR_KEYS)}), got exclude={excluded!r}"
                )
            parts.append(Not(selector_from_dict(excluded, f"{where}.exclude")))
    except FaninError as err:
        if isinstance(err, RuleError):
            raise
        raise RuleError(f"{where}: {err}") from None
    if not parts:
        raise RuleError(f"{where}: a rule needs at least one of {', '.join(k for k in SELECTOR_KEYS if k != 'exclude')} (name = \"*\" matches all)")
    return parts[0] if len(parts) == 1 else All(*parts)


def _rule(data: object, where: str) -> Rule:
    if not isinstance(data, Mapping):
        raise RuleError(f"{where}: a rule is a table/object with selector keys and init, got {data!r}")
    unknown = sorted(set(data) - set(RULE_KEYS))
    if unknown:
        raise RuleError(f"{where}: unknown key {unknown[0]!r}. Accepted keys: {', '.join(RULE_KEYS)}.")
    if "init" not in data:
        raise RuleError(f"{where}: missing key 'init' (a scheme spec, 'keep', 'reset_parameters' or 'defaults:<framework>')")
    selector = selector_from_dict(data, where)
    kind = data.get("kind")
    if kind is not None and "kind" in data:
        selector = selector & Kind(kind) if kind != "any" else selector
    try:
        return Rule(selector, data["init"], kind=kind)
    except FaninError as err:
        if isinstance(err, RuleError):
            raise RuleError(f"{where}: {err}") from None
        raise RuleError(f"{where}: {err}") from None


def rules_from_dict(data: Mapping[str, Any]) -> Rules:
    """Read a rules document (the schema above) from a dict."""
    if not isinstance(data, Mapping):
        raise RuleError(f"A rules document is a table/object, got {type(data).__name__}")
    unknown = sorted(set(data) - set(DOCUMENT_KEYS))
    if unknown:
        raise RuleError(f"unknown top-level key {unknown[0]!r} in a rules document. Accepted keys: {', '.join(DOCUMENT_KEYS)}.")
    rules: list[Rule] = []
    body = data.get("rules", [])
    if isinstance(body, Mapping):
        for i, (glob, init) in enumerate(body.items()):
            rules.append(_rule({"name": glob, "init": init}, f"rules[{i}] ({glob!r})"))
    elif isinstance(body, list):
        for i, item in enumerate(body):
            rules.append(_rule(item, f"rules[{i}]"))
    else:
        raise RuleError(f"rules must be a list of rules or a table {{glob = init}}, got rules={body!r}")
    leftovers = data.get("leftovers")
    presets = data.get("preset", [])
    tail = as_rules([presets] if isinstance(presets, str) else list(presets))
    return Rules((*rules, *tail.rules), leftovers if leftovers is not None else tail.leftovers)


def load_rules(path: str | os.PathLike[str]) -> Rules:
    """Read rules from a ``.toml`` or ``.json`` file (the schema above).

    TOML is read with :mod:`tomllib` (Python 3.11+) or ``tomli`` on 3.10.
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".toml", ".json"):
        raise RuleError(f"Rules files are .toml or .json, got path={path!r}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as err:
        raise RuleError(f"Cannot read rules file {path!r}: {err.strerror}") from None
    try:
        if suffix == ".json":
            data = json.loads(raw.decode("utf-8"))
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise RuleError(f"Cannot parse rules file {path!r}: {err}") from None
    if not isinstance(data, Mapping):
        raise RuleError(f"Rules file {path!r} must hold a table/object, got {type(data).__name__}")
    try:
        return rules_from_dict(data)
    except RuleError as err:
        raise RuleError(f"{path}: {err}") from None
