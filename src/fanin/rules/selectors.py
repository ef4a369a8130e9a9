"""Selectors: which parameters (and buffers) a rule covers.

A selector is a predicate on a :class:`Target` (one parameter or buffer of a model, seen with
the module that owns it). The basic selectors match one property each and compose with
``&`` (all), ``|`` (any) and ``~`` (not):

==============================  ===============================================================
selector                        matches
==============================  ===============================================================
``Name("*.weight")``            the qualified name, a glob (``fnmatch``; ``*`` also crosses dots).
                                A pattern starting with ``*.`` also matches at the top level, so
                                ``*.weight`` matches ``weight`` of a bare ``nn.Linear``.
``Name(r"h\\.\\d+\\..*", regex=True)``  the qualified name, a full match of an RE2 regular expression
                                (linear time: a pattern can never hang a plan)
``Module("Linear", nn.Conv2d)``  the owning module's type: a class (``isinstance``) or a class
                                name, bare or dotted (``"torch.nn.Linear"``), matched on the MRO
``Role("bias", "norm_weight")`` the parameter's role (see :data:`ROLES` and :func:`role_of`)
``Ndim(2)``, ``Ndim(min=2)``    the number of dimensions
``Kind("buffer")``              parameters or buffers
``Everything()``                every target
==============================  ===============================================================

>>> import torch
>>> lin = torch.nn.Linear(3, 2)
>>> t = Target.of(lin, "weight", "weight", "parameter", lin.weight)
>>> (Name("*.weight") & Module("Linear") & Ndim(2)).matches(t)
True
>>> str(Name("*.bias") | ~Role("weight"))
"name='*.bias' | ~role='weight'"
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any as AnyType

import torch

from fanin.errors import FaninError, describe_choice, shown

__all__ = [
    "KINDS",
    "MAX_PATTERN_LENGTH",
    "ROLES",
    "All",
    "Any",
    "Everything",
    "Kind",
    "Module",
    "Name",
    "Ndim",
    "Not",
    "Role",
    "Selector",
    "SelectorError",
    "Target",
    "role_of",
]

KINDS = ("buffer", "parameter")

#: The longest glob or regex a :class:`Name` accepts, in characters.
MAX_PATTERN_LENGTH = 1000

#: The roles :func:`role_of` assigns. ``weight``/``bias`` are the plain ones (Linear, Conv, ...).
ROLES = (
    "bias",
    "buffer",
    "embedding",
    "input_weight",
    "norm_bias",
    "norm_weight",
    "num_batches_tracked",
    "parameter",
    "recurrent_bias",
    "recurrent_weight",
    "running_mean",
    "running_var",
    "weight",
)

_NORM_TYPES = (
    torch.nn.modules.batchnorm._NormBase,
    torch.nn.LayerNorm,
    torch.nn.GroupNorm,
    torch.nn.LocalResponseNorm,
    *((torch.nn.RMSNorm,) if hasattr(torch.nn, "RMSNorm") else ()),
)
_EMBEDDING_TYPES = (torch.nn.Embedding, torch.nn.EmbeddingBag)
_RNN_TYPES = (torch.nn.RNNBase, torch.nn.RNNCellBase)


class SelectorError(FaninError, ValueError):
    """A selector built from arguments it cannot use."""


@dataclass(frozen=True)
class Target:
    """One tensor a plan may initialize: a parameter or a buffer, with its owning module.

    ``name`` is the qualified name in the model (``named_parameters``/``named_buffers``),
    ``module_name`` the owning module's qualified name, ``local`` the name inside that module.
    """

    name: str
    module_name: str
    local: str
    kind: str
    module_type: type
    role: str
    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @classmethod
    def of(cls, module: torch.nn.Module, name: str, local: str, kind: str, tensor: torch.Tensor) -> Target:
        module_name = name[: -len(local) - 1] if name != local else ""
        return cls(name, module_name, local, kind, type(module), role_of(module, local, kind), tuple(tensor.shape))


def role_of(module: torch.nn.Module, local: str, kind: str = "parameter") -> str:
    """The role of ``module``'s own tensor ``local``.

    Buffers: ``running_mean``, ``running_var``, ``num_batches_tracked`` (norm statistics) or
    ``buffer``. Parameters: ``embedding`` (the weight of ``Embedding``/``EmbeddingBag``),
    ``norm_weight``/``norm_bias`` (BatchNorm, InstanceNorm, LayerNorm, GroupNorm, RMSNorm, and any
    module whose class name ends in ``Norm``), ``input_weight``/``recurrent_weight``/
    ``recurrent_bias`` (``weight_ih*``, ``weight_hh*``/``weight_hr*``, ``bias_ih*``/``bias_hh*`` of
    RNN/LSTM/GRU and their cells), else ``bias`` for names containing ``bias``, ``weight`` for
    names containing ``weight``, and ``parameter`` for the rest (e.g. a ViT ``cls_token``).

    >>> role_of(torch.nn.LayerNorm(4), "weight")
    'norm_weight'
    >>> role_of(torch.nn.LSTM(2, 3), "weight_hh_l0")
    'recurrent_weight'
    >>> role_of(torch.nn.MultiheadAttention(4, 2), "in_proj_bias")
    'bias'
    """
    if kind == "buffer":
        return local if local in ("running_mean", "running_var", "num_batches_tracked") else "buffer"
    if isinstance(module, _EMBEDDING_TYPES) and local == "weight":
        return "embedding"
    is_norm = isinstance(module, _NORM_TYPES) or type(module).__name__.endswith("Norm")
    if is_norm and local in ("weight", "bias"):
        return "norm_" + local
    if isinstance(module, _RNN_TYPES):
        if local.startswith("weight_ih"):
            return "input_weight"
        if local.startswith(("weight_hh", "weight_hr")):
            return "recurrent_weight"
        if local.startswith(("bias_ih", "bias_hh")):
            return "recurrent_bias"
    if "bias" in local:
        return "bias"
    if "weight" in local:
        return "weight"
    return "parameter"


class Selector:
    """Base class: ``matches(target) -> bool``; ``&``, ``|`` and ``~`` compose."""

    def matches(self, target: Target) -> bool:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def __and__(self, other: Selector) -> Selector:
        return All(self, other)

    def __or__(self, other: Selector) -> Selector:
        return Any(self, other)

    def __invert__(self) -> Selector:
        return Not(self)

    def __repr__(self) -> str:
        return f"<selector {self}>"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, str(self)))


class Everything(Selector):
    """Every target.

    >>> str(Everything())
    '*'
    """

    def matches(self, target: Target) -> bool:
        return True

    def __str__(self) -> str:
        return "*"


class Name(Selector):
    """The qualified name: a glob (``fnmatch.fnmatchcase``) or, with ``regex=True``, a regular expression
    that must match the whole name.

    Regular expressions use RE2 (the ``google-re2`` binding), whose matching time is linear in the
    name's length whatever the pattern: a pattern from a rules file, such as ``(a+)+$``, can never
    hang a plan (Python's backtracking :mod:`re` takes hours on it against a 40-character name).
    The syntax is RE2's (https://github.com/google/re2/wiki/Syntax): Python's syntax minus
    backreferences (``\\1``) and lookaround (``(?=``, ``(?<=``), repetition counts up to 1000;
    ``\\d``, ``\\w`` and ``\\s`` are ASCII classes. Globs are linear too (:mod:`fnmatch`
    translates ``*`` to an atomic, non-backtracking group). Patterns are at most
    :data:`MAX_PATTERN_LENGTH` characters.

    >>> Name("*.weight").matches_name("weight"), Name("*.weight").matches_name("0.weight")
    (True, True)
    >>> Name(r"h\\.\\d+\\.attn\\..*", regex=True).matches_name("h.11.attn.c_proj.weight")
    True
    >>> Name(r"(a)\\1", regex=True)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    fanin.rules.selectors.SelectorError: Name got an invalid regex pattern='(a)\\\\1': invalid escape sequence: \\1
    (RE2 syntax: no backreferences or lookaround)
    """

    def __init__(self, pattern: str, *, regex: bool = False) -> None:
        if not isinstance(pattern, str) or not pattern:
            raise SelectorError(f"Name needs a non-empty str pattern, got pattern={shown(pattern)}")
        if len(pattern) > MAX_PATTERN_LENGTH:
            raise SelectorError(
                f"Name patterns are at most {MAX_PATTERN_LENGTH} characters, got pattern={shown(pattern)}"
            )
        self.pattern = pattern
        self.regex = bool(regex)
        self._compiled = _compile_regex(pattern) if self.regex else None

    def matches_name(self, name: str) -> bool:
        if self._compiled is not None:
            return self._compiled.fullmatch(name) is not None
        if fnmatch.fnmatchcase(name, self.pattern):
            return True
        # "*.weight" also names a top-level "weight": the leading "*." may match nothing.
        return self.pattern.startswith("*.") and fnmatch.fnmatchcase(name, self.pattern[2:])

    def matches(self, target: Target) -> bool:
        return self.matches_name(target.name)

    def __getstate__(self) -> dict[str, AnyType]:
        # A compiled RE2 pattern does not pickle: rebuild it from the pattern.
        return {"pattern": self.pattern, "regex": self.regex}

    def __setstate__(self, state: dict[str, AnyType]) -> None:
        self.__init__(state["pattern"], regex=state["regex"])  # type: ignore[misc]

    def __str__(self) -> str:
        return f"name~{self.pattern!r}" if self.regex else f"name={self.pattern!r}"


def _compile_regex(pattern: str):
    try:
        import re2
    except ImportError:  # pragma: no cover - google-re2 is a dependency of fanin
        raise SelectorError(
            "regex selectors need the google-re2 package (linear-time matching): pip install google-re2"
        ) from None
    options = re2.Options()
    options.log_errors = False  # the error is raised, not also logged to stderr
    try:
        return re2.compile(pattern, options)
    except re2.error as err:
        reason = err.args[0].decode("utf-8", "replace") if err.args and isinstance(err.args[0], bytes) else str(err)
        raise SelectorError(
            f"Name got an invalid regex pattern={shown(pattern)}: {reason} "
            "(RE2 syntax: no backreferences or lookaround)"
        ) from None


class Module(Selector):
    """The owning module's type: classes (``isinstance``) or class names, bare or dotted, on the MRO.

    >>> Module("Conv2d", torch.nn.Linear).matches_type(torch.nn.Conv2d)
    True
    >>> Module("torch.nn.modules.linear.Linear").matches_type(torch.nn.Linear)
    True
    """

    def __init__(self, *types: type | str) -> None:
        if not types:
            raise SelectorError("Module needs at least one module type or class name, got none")
        for t in types:
            if not (isinstance(t, str) and t) and not (isinstance(t, type) and issubclass(t, torch.nn.Module)):
                raise SelectorError(
                    f"Module takes torch.nn.Module subclasses or class names, got {shown(t)} ({type(t).__name__})"
                )
            if isinstance(t, str) and len(t) > MAX_PATTERN_LENGTH:
                raise SelectorError(f"Module class names are at most {MAX_PATTERN_LENGTH} characters, got {shown(t)}")
        self.types = tuple(types)

    def matches_type(self, cls: type) -> bool:
        for t in self.types:
            if isinstance(t, type):
                if issubclass(cls, t):
                    return True
                continue
            for base in cls.__mro__:
                if t in (base.__name__, f"{base.__module__}.{base.__qualname__}"):
                    return True
            # torch.nn.Linear is defined in torch.nn.modules.linear: accept the public path too.
            if t.startswith("torch.nn.") and any(t == f"torch.nn.{b.__name__}" for b in cls.__mro__):
                return True
        return False

    def matches(self, target: Target) -> bool:
        return self.matches_type(target.module_type)

    def __str__(self) -> str:
        names = [t if isinstance(t, str) else t.__name__ for t in self.types]
        return "module=" + ("|".join(names))


class Role(Selector):
    """The parameter's role (:func:`role_of`); several roles mean any of them.

    >>> Role("bias", "norm_bias")
    <selector role='bias'|'norm_bias'>
    >>> Role("weights")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    fanin.rules.selectors.SelectorError: Unknown role 'weights'. Did you mean 'weight' or 'norm_weight' or
    'input_weight'? Accepted: 'bias', 'buffer', 'embedding', 'input_weight', 'norm_bias', 'norm_weight',
    'num_batches_tracked', 'parameter', 'recurrent_bias', 'recurrent_weight', 'running_mean', 'running_var', 'weight'.
    """

    def __init__(self, *roles: str) -> None:
        if not roles:
            raise SelectorError(f"Role needs at least one role, got none. Accepted: {', '.join(map(repr, ROLES))}.")
        for r in roles:
            if r not in ROLES:
                raise SelectorError(describe_choice("role", r, ROLES))
        self.roles = tuple(roles)

    def matches(self, target: Target) -> bool:
        return target.role in self.roles

    def __str__(self) -> str:
        return "role=" + "|".join(repr(r) for r in self.roles)


class Ndim(Selector):
    """The number of dimensions: exactly ``n``, or within ``[min, max]``.

    >>> str(Ndim(2)), str(Ndim(min=2)), str(Ndim(max=1))
    ('ndim=2', 'ndim>=2', 'ndim<=1')
    """

    def __init__(self, n: int | None = None, *, min: int | None = None, max: int | None = None) -> None:
        for what, v in (("n", n), ("min", min), ("max", max)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise SelectorError(f"Ndim needs non-negative ints, got {what}={shown(v)}")
        if n is not None and (min is not None or max is not None):
            raise SelectorError(f"Ndim takes n or min/max, not both; got n={n!r}, min={min!r}, max={max!r}")
        if n is None and min is None and max is None:
            raise SelectorError("Ndim needs n, min or max, got none")
        if min is not None and max is not None and min > max:
            raise SelectorError(f"Ndim needs min <= max, got min={min!r}, max={max!r}")
        self.lo = n if n is not None else min
        self.hi = n if n is not None else max

    def matches(self, target: Target) -> bool:
        return (self.lo is None or target.ndim >= self.lo) and (self.hi is None or target.ndim <= self.hi)

    def __str__(self) -> str:
        if self.lo == self.hi:
            return f"ndim={self.lo}"
        if self.hi is None:
            return f"ndim>={self.lo}"
        if self.lo is None:
            return f"ndim<={self.hi}"
        return f"{self.lo}<=ndim<={self.hi}"


class Kind(Selector):
    """Parameters or buffers.

    >>> str(Kind("buffer"))
    "kind='buffer'"
    """

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise SelectorError(describe_choice("kind", kind, KINDS))
        self.kind = kind

    def matches(self, target: Target) -> bool:
        return target.kind == self.kind

    def __str__(self) -> str:
        return f"kind={self.kind!r}"


def _flatten(cls: type[All] | type[Any], parts: Iterable[Selector]) -> tuple[Selector, ...]:
    out: list[Selector] = []
    for p in parts:
        if not isinstance(p, Selector):
            raise SelectorError(f"{cls.__name__} composes selectors, got {shown(p)} ({type(p).__name__})")
        out.extend(p.parts if isinstance(p, cls) else (p,))
    return tuple(out)


class All(Selector):
    """All of the parts match (``a & b``)."""

    def __init__(self, *parts: Selector) -> None:
        self.parts = _flatten(All, parts)
        if not self.parts:
            raise SelectorError("All needs at least one selector")

    def matches(self, target: Target) -> bool:
        return all(p.matches(target) for p in self.parts)

    def __str__(self) -> str:
        return " & ".join(f"({p})" if isinstance(p, Any) else str(p) for p in self.parts)


class Any(Selector):
    """Any of the parts matches (``a | b``)."""

    def __init__(self, *parts: Selector) -> None:
        self.parts = _flatten(Any, parts)
        if not self.parts:
            raise SelectorError("Any needs at least one selector")

    def matches(self, target: Target) -> bool:
        return any(p.matches(target) for p in self.parts)

    def __str__(self) -> str:
        return " | ".join(str(p) for p in self.parts)


class Not(Selector):
    """The part does not match (``~a``)."""

    def __init__(self, part: Selector) -> None:
        if not isinstance(part, Selector):
            raise SelectorError(f"Not negates a selector, got {shown(part)} ({type(part).__name__})")
        self.part = part

    def matches(self, target: Target) -> bool:
        return not self.part.matches(target)

    def __str__(self) -> str:
        inner = str(self.part)
        return f"~({inner})" if isinstance(self.part, (All, Any)) else f"~{inner}"
