r"""The one reader of rules: Python values (:func:`as_rules`: a preset name, a mapping, a list, ...)
and rules as data, a small schema read from TOML, JSON or a Python dict.

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

Reading is strict and bounded: a key given twice in a table (TOML or JSON) is an error, not
last-one-wins; a file is a regular file of at most :data:`MAX_FILE_BYTES` bytes (a FIFO,
a device or a directory is refused before it is opened); a document holds at most
:data:`MAX_RULES` rules and ``exclude`` nests at most :data:`MAX_EXCLUDE_DEPTH` levels; every
failure is a :class:`~fanin.rules.rules.RuleError` naming the file, the rule (``rules[2]``) and
what is accepted, quoting at most an excerpt of the bad value.

>>> doc = {"leftovers": "keep", "rules": [{"module": "Linear", "role": "bias", "init": "zeros"}]}
>>> r = rules_from_dict(doc)
>>> r.leftovers, str(r[0])
('keep', "module=Linear & role='bias' -> zeros")
>>> rules_from_dict({"rules": [{"name": "*", "init": "zeros", "colour": "red"}]})  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: rules[0]: unknown key 'colour'. Accepted keys: exclude, init, kind, module, name, ndim,
regex, role.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Mapping
from typing import Any

from fanin.errors import FaninError, describe_choice, shown
from fanin.rules.presets import preset
from fanin.rules.rules import LEFTOVERS, RULE_KINDS, Rule, RuleError, Rules, bind_rules
from fanin.rules.selectors import All, Kind, Module, Name, Ndim, Not, Role, Selector

__all__ = [
    "DOCUMENT_KEYS",
    "MAX_EXCLUDE_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_RULES",
    "RULE_KEYS",
    "as_rules",
    "bind",
    "is_document",
    "load_rules",
    "read_rules",
    "rules_from_dict",
    "selector_from_dict",
]

DOCUMENT_KEYS = ("leftovers", "preset", "rules")
SELECTOR_KEYS = ("exclude", "module", "name", "ndim", "regex", "role")
RULE_KEYS = ("exclude", "init", "kind", "module", "name", "ndim", "regex", "role")

#: The largest rules file :func:`load_rules` reads.
MAX_FILE_BYTES = 1 << 20
#: The most rules one document may hold.
MAX_RULES = 1000
#: How deeply ``exclude`` tables may nest.
MAX_EXCLUDE_DEPTH = 4

_NDIM = re.compile(r"^\s*(>=|<=|==|>|<)?\s*(\d{1,4})\s*$")
_INIT_FORMS = "a scheme spec, {name = ..., args = {...}}, 'keep', 'reset_parameters' or 'defaults:<framework>'"


def is_document(data: Mapping[Any, Any]) -> bool:
    """Whether a mapping is a rules document (keys among leftovers/preset/rules) rather than ``{glob: init}``."""
    return bool(data) and all(k in DOCUMENT_KEYS for k in data) and ("rules" in data or "preset" in data)


def _strings(where: str, key: str, value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise RuleError(f"{where}: {key} must be a string or a list of strings, got {key}={shown(value)}")
    return items


def _ndim(where: str, value: object) -> Ndim:
    if isinstance(value, int) and not isinstance(value, bool):
        return Ndim(value)
    match = _NDIM.match(value) if isinstance(value, str) else None
    if match is None:
        raise RuleError(f"{where}: ndim must be an int or '>=n', '<=n', '>n', '<n', '==n', got ndim={shown(value)}")
    op, n = match.group(1) or "==", int(match.group(2))
    if op == "<" and n == 0:
        raise RuleError(f"{where}: no tensor has ndim {value}")
    return {
        "==": lambda: Ndim(n),
        ">=": lambda: Ndim(min=n),
        "<=": lambda: Ndim(max=n),
        ">": lambda: Ndim(min=n + 1),
        "<": lambda: Ndim(max=n - 1),
    }[op]()


def selector_from_dict(data: Mapping[str, Any], where: str = "selector", _depth: int = 0) -> Selector:
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
                    f"{where}: exclude must be a table of selector keys ({', '.join(SELECTOR_KEYS)}), "
                    f"got exclude={shown(excluded)}"
                )
            if _depth >= MAX_EXCLUDE_DEPTH:
                raise RuleError(f"{where}: exclude tables nest at most {MAX_EXCLUDE_DEPTH} levels deep")
            parts.append(Not(selector_from_dict(excluded, f"{where}.exclude", _depth + 1)))
    except FaninError as err:
        if isinstance(err, RuleError):
            raise
        raise RuleError(f"{where}: {err}") from None
    if not parts:
        raise RuleError(
            f"{where}: a rule needs at least one of {', '.join(k for k in SELECTOR_KEYS if k != 'exclude')} (name = "
            f'"*" matches all)'
        )
    return parts[0] if len(parts) == 1 else All(*parts)


def _rule(data: object, where: str) -> Rule:
    if not isinstance(data, Mapping):
        raise RuleError(
            f"{where}: a rule is a table/object with selector keys and init, got {shown(data)} ({type(data).__name__})"
        )
    unknown = sorted(str(k) for k in set(data) - set(RULE_KEYS))
    if unknown:
        raise RuleError(f"{where}: unknown key {shown(unknown[0])}. Accepted keys: {', '.join(RULE_KEYS)}.")
    if "init" not in data:
        raise RuleError(
            f"{where}: missing key 'init' (a scheme spec, 'keep', 'reset_parameters' or 'defaults:<framework>')"
        )
    selector = selector_from_dict(data, where)
    kind = data.get("kind")
    if "kind" in data and kind not in RULE_KINDS:
        raise RuleError(f"{where}: kind: " + describe_choice("rule kind", kind, RULE_KINDS))
    if kind is not None and kind != "any":
        selector = selector & Kind(kind)
    try:
        return Rule(selector, data["init"], kind=kind)
    except (FaninError, TypeError, ValueError) as err:
        raise RuleError(f"{where}: init: {err}") from None


def rules_from_dict(data: Mapping[str, Any]) -> Rules:
    """Read a rules document (the schema above) from a dict; every error is a :class:`RuleError`."""
    if not isinstance(data, Mapping):
        raise RuleError(f"A rules document is a table/object, got {shown(data)} ({type(data).__name__})")
    unknown = sorted(str(k) for k in set(data) - set(DOCUMENT_KEYS))
    if unknown:
        raise RuleError(
            f"unknown top-level key {shown(unknown[0])} in a rules document. Accepted keys: {', '.join(DOCUMENT_KEYS)}."
        )
    rules: list[Rule] = []
    body = data.get("rules", [])
    if not isinstance(body, (Mapping, list)):
        raise RuleError(
            f"rules must be a list of rules or a table {{glob = init}}, got rules={shown(body)} ({type(body).__name__})"
        )
    if len(body) > MAX_RULES:
        raise RuleError(f"a rules document holds at most {MAX_RULES} rules, got {len(body)}")
    if isinstance(body, Mapping):
        for i, (glob, init) in enumerate(body.items()):
            if not isinstance(glob, str):
                raise RuleError(
                    f"rules[{i}]: the keys of a rules table are name globs, got {shown(glob)} ({type(glob).__name__})"
                )
            rules.append(_rule({"name": glob, "init": init}, f"rules[{i}] ({shown(glob)})"))
    else:
        for i, item in enumerate(body):
            rules.append(_rule(item, f"rules[{i}]"))
    leftovers = data.get("leftovers")
    if leftovers is not None and leftovers not in LEFTOVERS:
        raise RuleError("leftovers: " + describe_choice("leftovers policy", leftovers, LEFTOVERS))
    presets = data.get("preset", [])
    names = [presets] if isinstance(presets, str) else presets
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RuleError(
            "preset must be a preset name such as 'torch' or 'gpt2(n_layer=24)', or a list of them, "
            f"got preset={shown(presets)} ({type(presets).__name__})"
        )
    tail: list[Rule] = []
    preset_leftovers = None
    for i, name in enumerate(names):
        try:
            part = as_rules(name)
        except FaninError as err:
            raise RuleError(f"preset{'' if isinstance(presets, str) else f'[{i}]'}: {err}") from None
        tail.extend(part.rules)
        if len(rules) + len(tail) > MAX_RULES:
            raise RuleError(
                f"a rules document holds at most {MAX_RULES} rules, its presets included; preset={shown(presets)}"
            )
        preset_leftovers = preset_leftovers or part.leftovers
    return Rules((*rules, *tail), leftovers if leftovers is not None else preset_leftovers)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    pass


def _read(path: str) -> bytes:
    try:
        info = os.stat(path)
    except OSError as err:
        raise RuleError(f"Cannot read rules file {path!r}: {err.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file (a FIFO, socket or device)"
        raise RuleError(f"Cannot read rules file {path!r}: it is {kind}")
    if info.st_size > MAX_FILE_BYTES:
        raise RuleError(f"Rules file {path!r} is {info.st_size} bytes; rules files are at most {MAX_FILE_BYTES} bytes")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)  # bounded even if the file grows after the stat
    except OSError as err:
        raise RuleError(f"Cannot read rules file {path!r}: {err.strerror}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise RuleError(f"Rules file {path!r} is larger than {MAX_FILE_BYTES} bytes, the limit for rules files")
    return raw


def load_rules(path: str | os.PathLike[str]) -> Rules:
    """Read rules from a ``.toml`` or ``.json`` file (the schema above).

    TOML is read with :mod:`tomllib` (Python 3.11+) or ``tomli`` on 3.10; both refuse a key given
    twice. JSON objects are read with a hook that refuses one too.

    Args:
        path: The file: its suffix (``.toml`` or ``.json``, any case) says how it is read; a
            regular file of at most :data:`MAX_FILE_BYTES` bytes.

    Returns:
        The document's rules in file order, then its presets' rules; its leftovers policy, else
        its presets'.

    Raises:
        RuleError: The path is not a string or path-like, its suffix is not ``.toml`` or
            ``.json``, the file cannot be read, or the document is not valid; the message starts
            with the path.

    Examples:
        >>> import pathlib, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = pathlib.Path(tmp.name) / "init.json"
        >>> _ = path.write_text('{"leftovers": "keep", "rules": {"*.bias": "zeros"}}')
        >>> rules = load_rules(path)
        >>> rules.leftovers, [str(r) for r in rules]
        ('keep', ["name='*.bias' -> zeros"])
        >>> tmp.cleanup()
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        raise RuleError(f"A rules file path is a str or os.PathLike, got {shown(path)}")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in (".toml", ".json"):
        raise RuleError(f"Rules files are .toml or .json, got path={path!r}")
    raw = _read(path)
    try:
        text = raw.decode("utf-8")
        if suffix == ".json":
            data = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # Python 3.10
                import tomli as tomllib
            data = tomllib.loads(text)
    except _DuplicateKey as err:
        raise RuleError(
            f"Cannot parse rules file {path!r}: key {shown(err.args[0])} given twice in one object"
        ) from None
    except (RecursionError, MemoryError):
        raise RuleError(f"Cannot parse rules file {path!r}: it nests too deeply") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise RuleError(f"Cannot parse rules file {path!r}: {err}") from None
    if not isinstance(data, Mapping):
        raise RuleError(f"Rules file {path!r} must hold a table/object, got {type(data).__name__}")
    try:
        return rules_from_dict(data)
    except (FaninError, TypeError, ValueError, RecursionError) as err:
        raise RuleError(f"{path}: {err}") from None


# ------------------------------------------------------------------------------ Python values


def _from_mapping(mapping: Mapping[Any, Any]) -> list[Rule]:
    rules = []
    for key, value in mapping.items():
        if not isinstance(key, (str, Selector)):
            raise RuleError(
                f"A rule mapping has name globs or selectors as keys, got key={shown(key)} ({type(key).__name__})"
            )
        try:
            rules.append(Rule(key, value))
        except FaninError as err:
            if isinstance(err, RuleError) and str(err).startswith("Rule "):
                raise
            raise RuleError(f"Rule {shown(key)}: {err}") from None
    return rules


def as_rules(rules: object, model: object | None = None) -> Rules:
    """See :func:`read_rules`; with ``model``, rules that depend on the model are bound to it
    (:func:`fanin.rules.rules.bind_rules`)."""
    ruleset = read_rules(rules, model)
    return ruleset if model is None else bind_rules(ruleset, model)


def read_rules(rules: object, model: object | None = None) -> Rules:
    """Read rules: a :class:`Rules`, a :class:`Rule`, a preset name (``"torch"``,
    ``"gpt2(n_layer=24)"``; with ``model``, what a preset needs and is not given is read from the
    model's documented attributes, see :func:`fanin.rules.presets.preset`), a mapping
    ``{glob or selector: init}``, a rules document (``{"rules": [...], "leftovers": ...}``, see
    :func:`rules_from_dict`), or a list of any of these and ``(selector, init)`` pairs, concatenated
    in order. The leftovers policy is the first one stated.

    >>> len(as_rules(["bert", {"*": "zeros"}])) > 1
    True
    >>> as_rules(3)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    fanin.rules.rules.RuleError: Rules are a preset name, a mapping {name glob: scheme}, a Rule, a Rules, or a list of
    these; got rules=3 (int)
    """
    if isinstance(rules, Rules):
        return rules
    if isinstance(rules, Rule):
        return Rules((rules,))
    if isinstance(rules, str):
        return preset(rules, model)
    if isinstance(rules, Mapping):
        if is_document(rules):
            return rules_from_dict(rules)
        return Rules(tuple(_from_mapping(rules)))
    if isinstance(rules, (list, tuple)):
        out: list[Rule] = []
        leftovers = None
        for item in rules:
            if isinstance(item, tuple) and len(item) == 2 and not isinstance(item, Rule):
                out.append(Rule(item[0], item[1]))
                continue
            part = read_rules(item, model)
            out.extend(part.rules)
            leftovers = leftovers or part.leftovers
        return Rules(tuple(out), leftovers)
    raise RuleError(
        "Rules are a preset name, a mapping {name glob: scheme}, a Rule, a Rules, or a list of these; "
        f"got rules={shown(rules)} ({type(rules).__name__})"
    )


def bind(rules: object, model: object) -> Rules:
    """``rules`` (anything :func:`as_rules` reads) for ``model``: every rule with an ``expand(model)``
    method (a muP parametrization, :mod:`fanin.rules.parametrization`) replaced by the concrete rules
    it expands to, in place (so that the rules before it keep their precedence).

    >>> import torch
    >>> from fanin.rules.parametrization import mup
    >>> model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    >>> len(bind(mup(base_width=8), model)) > 1
    True
    """
    return as_rules(rules, model)
