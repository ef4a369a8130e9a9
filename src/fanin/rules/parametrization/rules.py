"""``fanin.mup``, ``fanin.depth_mup``, ``fanin.u_mup``: parametrizations as rules.

Each returns rules like a preset's, with one rule that depends on the model's graph (which layer
is the readout, what the width is): it is *bound* to a model, i.e. expanded into concrete rules,
one per group of tensors with the same init, each citing the equation it implements. A rule
placed before it in a list still wins (first match wins), so overrides go first::

    rules = [{"*.bias": "zeros"}, fanin.mup(base_width=64)]

>>> import torch, fanin
>>> with torch.device("meta"):
...     model = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
>>> rules = mup(base_width=64)
>>> plan = fanin.plan(model, rules.bind(model), seed=0)
>>> [(e.name, e.init) for e in plan]  # doctest: +NORMALIZE_WHITESPACE
[('0.weight', 'normal(std=0.35355339059327373)'), ('0.bias', 'zeros'), ('2.weight', 'normal(std=0.125)'), ('2.bias',
'zeros')]
>>> print(plan.rules[2])  # doctest: +NORMALIZE_WHITESPACE
mup:readout['2.weight'] -> normal(std=0.125) [σ = σ₀ = 1/√n₀ = 1/√64, constant in width; output × output_mult/m = 1/4
= 0.25 in the forward pass: NOT done by the init (fanin.mup_hooks) (TP5 Table 8, output weights: Var ∝ 1, multiplier
1/fan_in)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from fanin.rules.parametrization.roles import MupError
from fanin.rules.parametrization.spec import Attention, MupSpec
from fanin.rules.parametrization.table import MupTable, build_table, literal
from fanin.rules.rules import Init, Rule, Rules, bind_rules
from fanin.rules.selectors import Selector, Target
from fanin.schemes import Scheme, get

__all__ = ["ParametrizationRule", "ParametrizationRules", "TableInit", "Tensors", "depth_mup", "mup", "u_mup"]


class Tensors(Selector):
    """Exactly the named tensors (a group of one parametrization's table), shown as ``kind:role[first, +n]``."""

    def __init__(self, names: Sequence[str], label: str) -> None:
        self.names = tuple(names)
        self._set = frozenset(self.names)
        self.label = label

    def matches(self, target: Target) -> bool:
        return target.name in self._set

    def __str__(self) -> str:
        more = f", +{len(self.names) - 1}" if len(self.names) > 1 else ""
        return f"{self.label}[{literal(self.names[0])!r}{more}]"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tensors) and (self.names, self.label) == (other.names, other.label)

    def __hash__(self) -> int:
        return hash((self.names, self.label))


class TableInit(Init):
    """A scheme computed by a parametrization for a group of tensors; ``table`` is where it came from."""

    def __init__(self, scheme: Scheme, equation: str, table: MupTable, role: str) -> None:
        self.scheme = scheme
        self.equation = equation
        self.table = table
        self.role = role

    def resolve(self, module, matched: int) -> Scheme:
        return self.scheme

    def __str__(self) -> str:
        return f"{self.scheme} [{self.equation}]"


class _Unbound(Selector):
    def __init__(self, spec: MupSpec) -> None:
        self.spec = spec

    def matches(self, target: Target) -> bool:
        raise MupError(
            f"{self.spec} depends on the model's graph (its readout, its width) and was not bound to the model: "
            "pass rules.bind(model) (or fanin.rules.load.bind(rules, model) for a list of rules) to "
            "fanin.plan / apply / materialize"
        )

    def __str__(self) -> str:
        return str(self.spec)


class _UnboundInit(Init):
    def __init__(self, spec: MupSpec) -> None:
        self.spec = spec

    def __str__(self) -> str:
        return "bound to the model's graph by fanin.plan"


@dataclass(frozen=True, eq=False, repr=False)
class ParametrizationRule(Rule):
    """The one rule of a parametrization before it sees a model; :meth:`expand` gives the concrete rules."""

    spec: MupSpec = None  # type: ignore[assignment]

    def __init__(self, spec: MupSpec) -> None:
        super().__init__(_Unbound(spec), _UnboundInit(spec))
        object.__setattr__(self, "spec", spec)

    def table(self, model: nn.Module) -> MupTable:
        """This parametrization's numbers for ``model``."""
        return build_table(self.spec, model)

    def expand(self, model: nn.Module) -> tuple[Rule, ...]:
        """One rule per group of tensors that the table initializes alike (same role, scheme and equation)."""
        table = self.table(model)
        groups: dict[tuple[str, str, str], list[str]] = {}
        for row in table.rows:
            if row.init is not None:
                groups.setdefault((row.role, row.init, row.init_equation), []).append(row.name)
        return tuple(
            Rule(Tensors(names, f"{self.spec.kind}:{role}"), TableInit(get(init), equation, table, role))
            for (role, init, equation), names in groups.items()
        )

    def __str__(self) -> str:
        return f"{self.spec} (bound to the model when planned)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ParametrizationRule) and self.spec == other.spec

    def __hash__(self) -> int:
        return hash(self.spec)


@dataclass(frozen=True, repr=False)
class ParametrizationRules(Rules):
    """What :func:`mup` / :func:`depth_mup` / :func:`u_mup` return: rules holding one :class:`ParametrizationRule`."""

    def __str__(self) -> str:
        return self.name or str(self.spec)

    def __repr__(self) -> str:
        return f"<rules {self}>"

    @property
    def spec(self) -> MupSpec:
        return next(r.spec for r in self.rules if isinstance(r, ParametrizationRule))

    def bind(self, model: nn.Module) -> Rules:
        """These rules for ``model``: the parametrization's rule replaced by the concrete rules it
        expands to (:func:`fanin.rules.rules.bind_rules`; for a list of rules, :func:`fanin.rules.load.bind`)."""
        return bind_rules(self, model)

    def table(self, model: nn.Module) -> MupTable:
        """The per-tensor numbers for ``model``, without planning."""
        return build_table(self.spec, model)


def _rules(spec: MupSpec) -> ParametrizationRules:
    return ParametrizationRules((ParametrizationRule(spec),), name=str(spec))


def _roles(roles: Mapping[str, str] | None) -> tuple[tuple[str, str], ...] | None:
    if roles is None:
        return None
    if not isinstance(roles, Mapping):
        raise MupError(f"roles takes a mapping {{tensor-name glob: role}}, got roles={roles!r}")
    return tuple(roles.items())


def mup(
    base_width: int,
    *,
    width: int | None = None,
    std: float | None = None,
    embedding_std: float | None = None,
    output_mult: float = 1.0,
    multipliers: str = "forward",
    zero_readout: bool = False,
    readout: str | Sequence[str] | None = None,
    inputs: str | Sequence[str] | None = None,
    roles: Mapping[str, str] | None = None,
    attention: Attention | Mapping | None = None,
) -> ParametrizationRules:
    r"""Maximal-update parametrization (Yang et al., 2022, "Tensor Programs V") relative to a base
    width given as a number: no base model is built.

    The per-tensor numbers are in :mod:`fanin.rules.parametrization.table`; the init is done by
    the plan, the learning rates by :func:`fanin.mup_param_groups`, the forward multipliers by
    :func:`fanin.mup_hooks` (or the model's code). :func:`fanin.mup_table` says which is which.

    Args:
        base_width: The width at which the hyperparameters were tuned (muP equals standard
            parametrization there).
        width: The model's width (default: read from its input layers).
        std: The std of the weights at the base width (default ``1/√fan_in``, i.e. LeCun normal
            at the base width).
        embedding_std: The std of the embeddings (default ``std``, else 1 as ``nn.Embedding``).
        output_mult: The readout's output multiplier at the base width (with
            ``multipliers="forward"``).
        multipliers: ``"forward"`` (TP5 Table 8, microsoft/mup's ``MuReadout``): the readout keeps
            its base std and its output is multiplied by ``output_mult·base_width/width``;
            ``"init"`` (TP5 Table 3): folded into the readout's init (``σ₀/m``) and learning rate
            (needs an untied readout).
        zero_readout: The readout starts at 0.
        readout: Module-name globs for the readout layer(s) (default: see
            :mod:`fanin.rules.parametrization.roles`).
        inputs: Module-name globs for the input layers (default: see
            :mod:`fanin.rules.parametrization.roles`).
        roles: ``{tensor-name glob: role}`` overrides of the roles found.
        attention: An :class:`~fanin.rules.parametrization.spec.Attention` (or a mapping of its
            arguments) naming the queries, so that :func:`fanin.mup_hooks` can make the logits
            ``1/d``.

    Returns:
        Rules holding the parametrization's one rule, bound to a model when planned
        (:meth:`~fanin.rules.parametrization.rules.ParametrizationRules.bind`).

    Raises:
        MupError: An argument is out of its domain (a width or std that is not positive, an
            unknown ``multipliers`` or role, ``output_mult`` with ``multipliers="init"``, ...).

    Examples:
        >>> str(mup(base_width=64, std=0.02))
        'mup(base_width=64, std=0.02)'
        >>> mup(base_width=0)
        Traceback (most recent call last):
        ...
        fanin.rules.parametrization.roles.MupError: base_width must be a positive int, got base_width=0
    """
    return _rules(
        MupSpec(
            "mup",
            base_width=base_width,
            width=width,
            std=std,
            embedding_std=embedding_std,
            output_mult=output_mult,
            multipliers=multipliers,
            zero_readout=zero_readout,
            readout=readout,  # type: ignore[arg-type]  # MupSpec normalizes it
            inputs=inputs,  # type: ignore[arg-type]
            roles=_roles(roles),
            attention=attention,  # type: ignore[arg-type]
        )
    )


def depth_mup(
    base_width: int,
    base_depth: int,
    *,
    branches: str | Sequence[str],
    width: int | None = None,
    std: float | None = None,
    embedding_std: float | None = None,
    output_mult: float = 1.0,
    multipliers: str = "forward",
    zero_readout: bool = False,
    readout: str | Sequence[str] | None = None,
    inputs: str | Sequence[str] | None = None,
    roles: Mapping[str, str] | None = None,
    attention: Attention | Mapping | None = None,
) -> ParametrizationRules:
    r"""muP in width and Depth-μP in depth (Yang et al., 2023, "Tensor Programs VI"; Bordelon et
    al., 2023): :func:`mup`, and each residual branch -- a module named by ``branches`` whose
    output is added to the stream -- multiplied by :math:`\sqrt{L_0/L}` in the forward pass, the
    Adam learning rate of its tensors by :math:`\sqrt{L_0/L}`. ``L`` counts the model's branches
    (every module ``branches`` matches), ``base_depth`` the base model's, in the same unit (two per
    transformer block with ``("*.attn", "*.mlp")``).

    Args:
        base_width: The width at which the hyperparameters were tuned, as in :func:`mup`.
        base_depth: The base model's number of branches, in the unit ``branches`` counts.
        branches: Module-name globs naming the residual branches (the modules ``f`` whose output
            is added to the stream, ``x + f(x)``).
        width: As in :func:`mup`.
        std: As in :func:`mup`.
        embedding_std: As in :func:`mup`.
        output_mult: As in :func:`mup`.
        multipliers: As in :func:`mup`.
        zero_readout: As in :func:`mup`.
        readout: Module-name globs for the readout layer(s) (default: see
            :mod:`fanin.rules.parametrization.roles`).
        inputs: Module-name globs for the input layers (default: see
            :mod:`fanin.rules.parametrization.roles`).
        roles: ``{tensor-name glob: role}`` overrides of the roles found.
        attention: An :class:`~fanin.rules.parametrization.spec.Attention` (or a mapping of its
            arguments) naming the queries, so that :func:`fanin.mup_hooks` can make the logits
            ``1/d``.

    Returns:
        Rules holding the parametrization's one rule, bound to a model when planned.

    Raises:
        MupError: An argument is out of its domain, as in :func:`mup`, or ``base_depth`` is not a
            positive int.

    Examples:
        >>> str(depth_mup(64, 4, branches=("*.attn", "*.mlp")))
        "depth_mup(base_width=64, base_depth=4, branches=['*.attn', '*.mlp'])"
    """
    return _rules(
        MupSpec(
            "depth_mup",
            base_width=base_width,
            width=width,
            std=std,
            embedding_std=embedding_std,
            output_mult=output_mult,
            multipliers=multipliers,
            zero_readout=zero_readout,
            readout=readout,  # type: ignore[arg-type]  # MupSpec normalizes it
            inputs=inputs,  # type: ignore[arg-type]
            roles=_roles(roles),
            attention=attention,  # type: ignore[arg-type]  # MupSpec normalizes it
            base_depth=base_depth,
            branches=branches,  # type: ignore[arg-type]
        )
    )


def u_mup(
    *,
    zero_readout: bool = False,
    readout: str | Sequence[str] | None = None,
    inputs: str | Sequence[str] | None = None,
    roles: Mapping[str, str] | None = None,
    attention: Attention | Mapping | None = None,
) -> ParametrizationRules:
    r"""The unit-scaled maximal update parametrization (Blake et al., 2024): no base model; every
    weight N(0, 1), the scale in forward multipliers (:math:`1/\sqrt{\text{fan\_in}}` on
    Linear/Conv outputs, :math:`1/\text{fan\_in}` on the readout, attention logits
    :math:`1/d_\text{head}`) and per-tensor Adam learning rates. Only the weights' part of u-μP:
    its unit-scaled operations (nonlinearities, residual adds, loss) are the model's to adopt.

    Args:
        zero_readout: The readout starts at 0.
        readout: Module-name globs for the readout layer(s) (default: see
            :mod:`fanin.rules.parametrization.roles`).
        inputs: Module-name globs for the input layers (default: see
            :mod:`fanin.rules.parametrization.roles`).
        roles: ``{tensor-name glob: role}`` overrides of the roles found.
        attention: An :class:`~fanin.rules.parametrization.spec.Attention` (or a mapping of its
            arguments) naming the queries, so that :func:`fanin.mup_hooks` can make the logits
            ``1/d``.

    Returns:
        Rules holding the parametrization's one rule, bound to a model when planned.

    Raises:
        MupError: An argument is out of its domain (an unknown role, a bad ``attention``, ...).

    Examples:
        >>> str(u_mup(zero_readout=True))
        'u_mup(zero_readout=True)'
    """
    return _rules(
        MupSpec(
            "u_mup",
            zero_readout=zero_readout,
            readout=readout,  # type: ignore[arg-type]  # MupSpec normalizes it
            inputs=inputs,  # type: ignore[arg-type]
            roles=_roles(roles),
            attention=attention,  # type: ignore[arg-type]
        )
    )
