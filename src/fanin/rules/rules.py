"""Rules: a selector and what to do with the tensors it covers, and rule lists.

Rules are read from Python values and files by :func:`fanin.rules.load.as_rules`.

A :class:`Rule` pairs a :class:`~fanin.rules.selectors.Selector` with an *init*:

- a scheme (anything :func:`fanin.get` reads: ``"xavier_uniform"``, ``"normal(std=0.02)"``, a
  config dict, a :class:`~fanin.Scheme`),
- ``"keep"``: leave the tensor as it is (recorded in the plan),
- ``"reset_parameters"``: defer to the owning module's own ``reset_parameters()``,
- ``"defaults:<framework>"`` (``torch``, ``keras``, ``tf1``, ``jax`` or its alias ``flax``): the
  schemes that framework gives the owning module's type
  (:func:`fanin.rules.defaults.default_schemes`); the rule covers exactly the tensors that
  function lists, in the order it lists them,
- :class:`DepthScaledNormal`: GPT-2's residual projections, ``std / sqrt(per_layer · n_layer)``.

**Precedence**: rules are tried in order and the first rule that matches a tensor wins; a
mapping ``{glob: scheme}`` is a list of rules in its (insertion) order; a preset inside a list
contributes its rules at that position. A tensor no rule matches is a *leftover*, handled by the
leftovers policy: ``"error"`` (the default), ``"keep"`` or ``"reset_parameters"``.

By default a rule covers parameters only; ``kind="buffer"`` or ``kind="any"`` (or a selector on a
buffer role such as ``Role("running_var")``) lets it cover buffers.

>>> from fanin.rules.load import as_rules
>>> rules = as_rules({"*.weight": "xavier_uniform", "*.bias": "zeros"})
>>> [str(r) for r in rules]
["name='*.weight' -> xavier_uniform", "name='*.bias' -> zeros"]
>>> str(Rule(Role("bias"), "reset_parameters"))
"role='bias' -> reset_parameters"
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from fanin.errors import FaninError, UnknownFrameworkError, describe_choice, shown
from fanin.frameworks import framework_names, get_framework
from fanin.rules.blocks import BlockError, Layout, blocked, layout_of
from fanin.rules.selectors import All, Any, Kind, Name, Not, Role, Selector, Target
from fanin.schemes import Scheme, get

__all__ = [
    "LEFTOVERS",
    "RULE_KINDS",
    "BlockedInit",
    "DepthScaledNormal",
    "EmbeddingNormal",
    "FrameworkDefaults",
    "Init",
    "Keep",
    "ResetParameters",
    "Rule",
    "RuleError",
    "Rules",
    "SchemeInit",
    "as_init",
    "bind_rules",
    "describe_rules",
    "rule_layout",
]

LEFTOVERS = ("error", "keep", "reset_parameters")
RULE_KINDS = ("any", "buffer", "parameter")


class RuleError(FaninError, ValueError):
    """Rules that cannot be read, or that do not cover a model."""


# --------------------------------------------------------------------------------------- inits


class Init:
    """What a rule does to the tensors it covers.

    ``resolve(module, matched)`` gives the scheme for one tensor of ``module`` when the rule
    covers ``matched`` tensors in all (``None`` for inits that are not schemes).
    """

    action = "scheme"

    def resolve(self, module, matched: int) -> Scheme | None:
        return None

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash((type(self).__name__, str(self)))

    def __repr__(self) -> str:
        return f"<init {self}>"


class SchemeInit(Init):
    """A registered scheme, the same for every tensor the rule covers."""

    def __init__(self, scheme: Scheme) -> None:
        self.scheme = scheme

    def resolve(self, module, matched: int) -> Scheme:
        return self.scheme

    def __str__(self) -> str:
        return str(self.scheme)


class EmbeddingNormal(Init):
    r"""N(mean, std²) for an embedding table, with its ``padding_idx`` row zero when it has one
    (``fanin.padded_normal``), as Hugging Face's BERT and GPT-2 ``_init_weights`` do.

    Each table gets the scheme that describes it: ``normal`` for a table without a padding row,
    ``fanin.padded_normal`` for one with (the plan shows which).

    >>> import torch
    >>> EmbeddingNormal(0.02).resolve(torch.nn.Embedding(5, 2, padding_idx=0), 1)
    fanin.get('fanin.padded_normal(padding_idx=0, std=0.02)')
    >>> EmbeddingNormal(0.02).resolve(torch.nn.Embedding(5, 2), 1)
    fanin.get('normal(std=0.02)')
    >>> str(EmbeddingNormal(0.02))
    'normal(std=0.02), padding_idx row (if any) 0'
    """

    def __init__(self, std: float = 0.02, mean: float = 0.0) -> None:
        self.std = std
        self.mean = mean
        self.resolve(None, 1)  # validates std and mean now, not at plan time

    def resolve(self, module, matched: int) -> Scheme:
        padding_idx = getattr(module, "padding_idx", None)
        if padding_idx is None:
            return Scheme("normal", mean=self.mean, std=self.std)
        return Scheme("fanin.padded_normal", padding_idx=int(padding_idx), mean=self.mean, std=self.std)

    def __str__(self) -> str:
        mean = f"mean={self.mean!r}, " if self.mean else ""
        return f"normal({mean}std={self.std!r}), padding_idx row (if any) 0"


class Keep(Init):
    """Leave the tensor as it is; the plan records that it was kept."""

    action = "keep"

    def __str__(self) -> str:
        return "keep"


class ResetParameters(Init):
    """Defer to the owning module's ``reset_parameters()`` (``_reset_parameters()`` for
    ``MultiheadAttention``), run on a copy of the module so that the model is only written when
    every tensor of the plan has its new value."""

    action = "reset_parameters"

    def __str__(self) -> str:
        return "reset_parameters"


class FrameworkDefaults(Init):
    """The schemes a framework gives a module of this type by default (see :mod:`fanin.rules.defaults`).

    ``framework`` is a name or an alias of a framework that has layer defaults
    (:func:`fanin.frameworks.get_framework` checks it); the init keeps it as written, so a rule
    reads back as it was given.

    >>> str(FrameworkDefaults("flax")), str(FrameworkDefaults("jax"))
    ('defaults:flax', 'defaults:jax')
    """

    action = "defaults"

    def __init__(self, framework: str) -> None:
        try:
            get_framework(framework, with_layer_defaults=True)
        except UnknownFrameworkError as err:
            raise RuleError(str(err)) from None
        self.framework = framework

    def __str__(self) -> str:
        return f"defaults:{self.framework}"


class DepthScaledNormal(Init):
    r"""N(0, σ²) with :math:`\sigma = \text{std} / \sqrt{\text{per\_layer} \cdot n_\text{layer}}`.

    GPT-2 (Radford et al., 2019) scales the weights of the residual projections by
    :math:`1/\sqrt{N}`, N the number of residual layers: two per block (attention and MLP).
    ``n_layer`` (the number of blocks) is required: it is never guessed from the model.

    >>> DepthScaledNormal(0.02, n_layer=12).scheme_for(24)
    fanin.get('normal(std=0.004082482904638631)')
    """

    def __init__(self, std: float = 0.02, *, n_layer: int, per_layer: int = 2) -> None:
        if isinstance(std, bool) or not isinstance(std, (int, float)) or not 0 < std < math.inf:
            raise RuleError(f"DepthScaledNormal needs a finite std > 0, got std={shown(std)}")
        for what, v in (("n_layer", n_layer), ("per_layer", per_layer)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise RuleError(f"DepthScaledNormal needs a positive int {what}, got {what}={shown(v)}")
        self.std = float(std)
        self.n_layer = n_layer
        self.per_layer = per_layer

    def resolve(self, module, matched: int) -> Scheme:
        return self.scheme_for(matched)

    def scheme_for(self, matched: int) -> Scheme:
        """The scheme (the same whichever number of tensors, ``matched``, the rule covers)."""
        return Scheme("normal", std=self.std / math.sqrt(self.per_layer * self.n_layer))

    def __str__(self) -> str:
        return f"normal(std={self.std!r}/sqrt({self.per_layer}*{self.n_layer}))"


def as_init(init: object) -> Init:
    """Read an init: an :class:`Init`, ``"keep"``, ``"reset_parameters"``, ``"defaults:<framework>"``
    or a scheme spec.

    >>> as_init("defaults:keras"), as_init("kaiming_normal(mode='fan_out')")
    (<init defaults:keras>, <init kaiming_normal(mode='fan_out')>)
    """
    if isinstance(init, Init):
        return init
    if isinstance(init, str):
        text = init.strip()
        if text == "keep":
            return Keep()
        if text == "reset_parameters":
            return ResetParameters()
        if text.startswith("defaults:"):
            return FrameworkDefaults(text.split(":", 1)[1])
    try:
        return SchemeInit(get(init))  # type: ignore[arg-type]
    except TypeError:
        raise RuleError(
            "A rule's init is a scheme spec ('xavier_uniform', 'normal(std=0.02)', {'name': ..., 'args': "
            "{...}}, a Scheme), 'keep', 'reset_parameters' or 'defaults:<framework>' "
            f"({', '.join(framework_names(with_layer_defaults=True))}); got init={shown(init)} ({type(init).__name__})"
        ) from None


# --------------------------------------------------------------------------------------- rules


class BlockedInit(Init):
    """A rule's init drawn per logical block: ``Rule(select, init, blocks=3)`` or ``fans="experts:in_out"``
    (:mod:`fanin.rules.blocks`).

    >>> str(BlockedInit(as_init("xavier_uniform"), Layout.split(3)))
    'xavier_uniform per block of split(3)'
    """

    def __init__(self, inner: Init, layout: Layout) -> None:
        if isinstance(inner, (FrameworkDefaults, Keep, ResetParameters)):
            raise RuleError(
                f"blocks=/fans= apply to a scheme, not to {inner}: give the rule a scheme "
                "(e.g. Rule('*in_proj_weight', 'xavier_uniform', blocks=3))"
            )
        self.inner = inner
        self.layout = layout

    def resolve(self, module: object, matched: int) -> Scheme:
        return blocked(self.inner.resolve(module, matched), self.layout)

    def __str__(self) -> str:
        return f"{self.inner} per block of {self.layout}"


def rule_layout(blocks: object = None, fans: object = None) -> Layout | None:
    """The layout a rule's ``blocks=``/``fans=`` give (one of them at most)."""
    if blocks is not None and fans is not None:
        raise RuleError(f"give blocks= or fans=, not both; got blocks={blocks!r}, fans={fans!r}")
    spec = blocks if blocks is not None else fans
    if spec is None:
        return None
    try:
        return layout_of(spec)
    except BlockError as err:
        raise RuleError(str(err)) from None


def _mentions_buffers(selector: Selector) -> bool:
    if isinstance(selector, Kind):
        return selector.kind == "buffer"
    if isinstance(selector, Role):
        return any(r in ("running_mean", "running_var", "num_batches_tracked", "buffer") for r in selector.roles)
    if isinstance(selector, (All, Any)):
        return any(_mentions_buffers(p) for p in selector.parts)
    if isinstance(selector, Not):
        return _mentions_buffers(selector.part)
    return False


@dataclass(frozen=True, eq=False)
class Rule:
    """A selector and an init. ``select`` may be a glob string (a :class:`Name`).

    Args:
        select: Which tensors: a :class:`~fanin.rules.selectors.Selector`, or a glob on the
            qualified name (read as a :class:`Name`).
        init: What is done to them: a scheme spec (``"xavier_uniform"``, ``"normal(std=0.02)"``,
            ``{"name": ..., "args": {...}}``, a :class:`~fanin.schemes.Scheme`), ``"keep"``,
            ``"reset_parameters"``, ``"defaults:<framework>"`` or an :class:`Init`
            (:func:`as_init`).
        kind: Which tensors the rule may cover: ``"parameter"``, ``"buffer"`` or ``"any"``.
            Default: ``"any"`` when the selector names a buffer role or ``Kind("buffer")``, or
            for a ``defaults:`` rule (which covers parameters and buffers alike, as the framework
            lists them); else ``"parameter"``.
        blocks: The tensor holds several logical layers as row blocks: a number of equal
            row blocks, their sizes, or a :class:`~fanin.rules.blocks.Layout`; the scheme
            is drawn per block with the block's fans (:mod:`fanin.rules.blocks`).
        fans: The same for stacked expert weights: ``"experts"`` (``"experts:out_in"``) or
            ``"experts:in_out"``; not together with ``blocks``.

    Attributes:
        select: The selector.
        init: The init (a :class:`BlockedInit` around it with ``blocks`` or ``fans``).
        kind: ``"parameter"``, ``"buffer"`` or ``"any"``.

    Raises:
        RuleError: ``select`` is neither a selector nor a string, ``init`` cannot be read,
            ``kind`` is not one of the three, or the layout cannot be read or both ``blocks`` and
            ``fans`` are given.

    Examples:
        >>> Rule("*.weight", "orthogonal").kind
        'parameter'
        >>> Rule(Role("running_var"), "ones").kind
        'any'
        >>> str(Rule("*.c_attn.weight", "xavier_uniform", blocks=3))
        "name='*.c_attn.weight' -> xavier_uniform per block of split(3)"
    """

    select: Selector
    init: Init
    kind: str = "parameter"

    def __init__(
        self,
        select: Selector | str,
        init: object,
        *,
        kind: str | None = None,
        blocks: object = None,
        fans: object = None,
    ) -> None:
        if isinstance(select, str):
            select = Name(select)
        if not isinstance(select, Selector):
            raise RuleError(
                f"A rule's selector is a Selector or a name glob, got select={shown(select)} ({type(select).__name__})"
            )
        init = as_init(init)
        if blocks is not None or fans is not None:
            # A fused or stacked tensor: the scheme per logical block (fanin.rules.blocks).
            layout = rule_layout(blocks, fans)
            if layout is not None:
                init = BlockedInit(init, layout)
        if kind is None:
            kind = "any" if isinstance(init, FrameworkDefaults) or _mentions_buffers(select) else "parameter"
        if kind not in RULE_KINDS:
            raise RuleError(describe_choice("rule kind", kind, RULE_KINDS))
        object.__setattr__(self, "select", select)
        object.__setattr__(self, "init", init)
        object.__setattr__(self, "kind", kind)

    def covers_kind(self, target: Target) -> bool:
        """Whether the rule may cover ``target`` by its kind (not whether its selector matches).

        Args:
            target: A tensor of the model, as the planner sees it.

        Returns:
            ``True`` when :attr:`kind` is ``"any"`` or the target's kind.
        """
        return self.kind == "any" or self.kind == target.kind

    def __str__(self) -> str:
        kind = "" if self.kind == "parameter" or isinstance(self.init, FrameworkDefaults) else f" [{self.kind}]"
        return f"{self.select}{kind} -> {self.init}"

    def __repr__(self) -> str:
        return f"Rule({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Rule):
            return NotImplemented
        return (self.select, self.init, self.kind) == (other.select, other.init, other.kind)

    def __hash__(self) -> int:
        return hash((self.select, self.init, self.kind))


@dataclass(frozen=True)
class Rules(Sequence[Rule]):
    """An ordered list of rules (first match wins) and a leftovers policy (``None``: not stated,
    which :func:`fanin.plan` reads as ``"error"``)."""

    rules: tuple[Rule, ...] = ()
    leftovers: str | None = None
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.leftovers is not None and self.leftovers not in LEFTOVERS:
            raise RuleError(describe_choice("leftovers policy", self.leftovers, LEFTOVERS))

    def __getitem__(self, i):
        return self.rules[i]

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def describe(self) -> str:
        """The rules, numbered as the plan numbers them, and the leftovers policy.

        >>> print(Rules((Rule("*.weight", "ones"),)).describe())
        #0 name='*.weight' -> ones
        leftovers: error
        """
        lines = [f"#{i} {r}" for i, r in enumerate(self.rules)]
        lines.append(f"leftovers: {self.leftovers or 'error'}")
        return "\n".join(lines)


def bind_rules(rules: Rules, model: object) -> Rules:
    """``rules`` for ``model``: every rule whose meaning depends on the model (it has an
    ``expand(model)`` method, as a muP parametrization that reads the model's width and readout
    does) replaced, in place, by the concrete rules it expands to, so the rules before it keep
    their precedence. Rules with nothing to bind come back as they are."""
    if not any(hasattr(r, "expand") for r in rules):
        return rules
    out: list[Rule] = []
    for r in rules:
        out.extend(r.expand(model) if hasattr(r, "expand") else (r,))
    return Rules(tuple(out), rules.leftovers, name=rules.name)


def describe_rules(rules: Iterable[Rule]) -> str:
    return "; ".join(f"#{i} {r}" for i, r in enumerate(rules))
