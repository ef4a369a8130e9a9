"""The plan as a record: one :class:`PlanEntry` per tensor, in execution order, and the :class:`Plan` holding them.

Records are plain data: ``to_dict``/``to_json`` give their fields, ``repr()`` is one line and
``str()`` (what ``print()`` shows) is the table of :func:`fanin.report.plan.render_plan_text`.
:func:`fanin.plan` makes them (:mod:`fanin.planning.resolve`); :func:`fanin.apply` and
:func:`fanin.materialize` execute them.

>>> import torch, fanin
>>> p = fanin.plan(torch.nn.Linear(4, 2), {"weight": "xavier_uniform", "bias": "zeros"}, seed=0)
>>> p, p["weight"].stream
(<Plan Linear: 2 tensors, 2 rules, leftovers=error, counter stream, seed=0>, (0, 'weight'))
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch

from fanin.errors import FaninError, describe_choice
from fanin.formulas.fans import Fans
from fanin.planning.stats import Statistics
from fanin.rules.rules import Rules
from fanin.rules.selectors import Target
from fanin.schemes import Scheme

if TYPE_CHECKING:
    from fanin.planning.linting import LintReport

__all__ = ["SOURCES", "Plan", "PlanEntry", "PlanMismatchError", "tensor_fields"]

SOURCES = ("generator", "global", "stream")


def tensor_fields(target: Target, dtype: torch.dtype) -> dict[str, Any]:
    """The fields of a :class:`PlanEntry` that describe its tensor, as planning and capture fill them.

    Args:
        target: The tensor as selectors see it.
        dtype: The tensor's dtype.

    Returns:
        ``name``, ``kind``, ``module``, ``module_type``, ``local``, ``role``, ``shape`` and ``dtype``
        (without the ``torch.`` prefix).
    """
    return {
        "name": target.name,
        "kind": target.kind,
        "module": target.module_name,
        "module_type": target.module_type.__name__,
        "local": target.local,
        "role": target.role,
        "shape": target.shape,
        "dtype": str(dtype).replace("torch.", ""),
    }


@dataclass(frozen=True)
class PlanEntry:
    """One tensor of the plan and what is done to it.

    ``action`` is ``"scheme"`` (``scheme`` is filled), ``"keep"``, ``"reset_parameters"`` or, for
    buffers :func:`fanin.materialize` fills through the module's own method, ``"hook"``
    (``hook`` names the method).
    ``rule_index`` is the index of the matching rule, ``None`` for a leftover (``rule`` then
    names the policy). ``stream`` is ``(seed, canonical name)`` when the plan has a seed.
    """

    name: str
    kind: str
    module: str
    module_type: str
    local: str
    role: str
    shape: tuple[int, ...]
    dtype: str
    fans: Fans | None
    rule_index: int | None
    rule: str
    action: str
    scheme: Scheme | None
    statistics: Statistics | None
    stream: tuple[int, str] | None
    aliases: tuple[str, ...] = ()
    hook: str | None = None

    @property
    def init(self) -> str:
        """What is done, as text: the scheme, ``keep`` or ``Type.reset_parameters()``."""
        if self.action == "scheme":
            return str(self.scheme)
        if self.action == "reset_parameters":
            return f"{self.module_type}.reset_parameters()"
        if self.action == "hook":
            return f"{self.module_type}.{self.hook}()"
        return self.action

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "module": self.module,
            "module_type": self.module_type,
            "local": self.local,
            "role": self.role,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "fans": None
            if self.fans is None
            else {
                "fan_in": self.fans.fan_in,
                "fan_out": self.fans.fan_out,
                "receptive_field": self.fans.receptive_field,
                "layout": self.fans.layout,
            },
            "rule_index": self.rule_index,
            "rule": self.rule,
            "action": self.action,
            "init": self.init,
            "scheme": None if self.scheme is None else self.scheme.to_config(),
            "statistics": None if self.statistics is None else self.statistics.to_dict(),
            "stream": None if self.stream is None else {"seed": self.stream[0], "name": self.stream[1]},
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Plan:
    """The resolved plan: one :class:`PlanEntry` per tensor, in execution order.

    Iterating a plan yields its entries; ``plan[name]`` finds one by name or alias (``KeyError``
    naming the nearest names otherwise); ``len(plan)`` counts them.

    Attributes:
        entries: One entry per tensor, in execution order.
        rules: The rules it was resolved from (numbered as the entries' ``rule_index``).
        leftovers: The policy applied to parameters no rule matched: ``"error"``, ``"keep"`` or
            ``"reset_parameters"``.
        seed: The counter-stream seed, ``None`` without one.
        source: Where the random values come from: ``"stream"`` (``seed`` set: one counter
            stream per tensor), ``"generator"`` (one ``torch.Generator`` shared in plan order) or
            ``"global"`` (torch's global RNG).
        model: The model's class name.
        skipped_buffers: The model's buffers that no rule covers (not part of the plan); not
            compared.

    Examples:
        >>> import torch, fanin
        >>> p = fanin.plan(torch.nn.Linear(4, 2), {"weight": "orthogonal", "bias": "zeros"})
        >>> len(p), p["bias"].init, p.source
        (2, 'zeros', 'global')
    """

    entries: tuple[PlanEntry, ...]
    rules: Rules
    leftovers: str
    seed: int | None = None
    source: str = "global"
    model: str = ""
    skipped_buffers: tuple[str, ...] = field(default=(), compare=False)

    def __iter__(self) -> Iterator[PlanEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, name: str) -> PlanEntry:
        for e in self.entries:
            if e.name == name or name in e.aliases:
                return e
        raise KeyError(describe_choice("tensor name", name, [e.name for e in self.entries]))

    def with_source(self, source: str) -> Plan:
        """This plan with another ``source``.

        Args:
            source: ``"generator"``, ``"global"`` or ``"stream"`` (:data:`SOURCES`).

        Returns:
            A copy of the plan, its ``source`` replaced.

        Raises:
            ValueError: ``source`` is not one of :data:`SOURCES`.
        """
        if source not in SOURCES:
            raise ValueError(describe_choice("source", source, SOURCES))
        return replace(self, source=source)

    # ------------------------------------------------------------------------------- renderers

    def __repr__(self) -> str:
        source = {
            "stream": f"counter stream, seed={self.seed}",
            "generator": "torch.Generator",
            "global": "torch global RNG",
        }.get(self.source, self.source)
        n, r = len(self.entries), len(self.rules)
        return (
            f"<Plan {self.model or 'model'}: {n} tensor{'s' * (n != 1)}, {r} rule{'s' * (r != 1)}, "
            f"leftovers={self.leftovers}, {source}>"
        )

    def __str__(self) -> str:
        """The plan's table as plain text, fitted to 80 columns (:func:`fanin.report.plan.render_plan_text`)."""
        from fanin.report.plan import render_plan_text

        return render_plan_text(self).rstrip("\n")

    def explain(self) -> str:
        """The plan as a table: one row per tensor, with the rule that matched it, what is done,
        the std and bound of the values and the stream key (``str(plan)``; for a given width or
        Markdown, :mod:`fanin.report.plan`).

        Returns:
            The table as plain text, fitted to 80 columns.

        Examples:
            >>> import torch, fanin
            >>> text = fanin.plan(torch.nn.Linear(4, 2), "torch").explain()
            >>> text.splitlines()[1].split()
            ['#', 'tensor', 'shape', 'rule', 'init', 'std']
        """
        return str(self)

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data, for JSON.

        Returns:
            ``model``, ``seed``, ``source``, ``leftovers``, ``rules`` (``{"index", "rule"}`` each) and
            ``entries`` (each entry's :meth:`PlanEntry.to_dict`).
        """
        return {
            "model": self.model,
            "seed": self.seed,
            "source": self.source,
            "leftovers": self.leftovers,
            "rules": [{"index": i, "rule": str(r)} for i, r in enumerate(self.rules)],
            "entries": [e.to_dict() for e in self.entries],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The plan as JSON text.

        Args:
            indent: The indentation, as :func:`json.dumps` takes it (``None``: one line).

        Returns:
            :meth:`to_dict`, dumped.
        """
        return json.dumps(self.to_dict(), indent=indent)

    def lint(self, model: torch.nn.Module | None = None) -> LintReport:
        """The init bugs this plan would make (:func:`fanin.planning.linting.lint`).

        Args:
            model: The model the plan was resolved on, to check what the plan leaves
                uninitialized and its buffers too; ``None`` runs the checks that need no model.

        Returns:
            The findings, errors first.
        """
        from fanin.planning.linting import lint

        return lint(model, self)


class PlanMismatchError(FaninError, ValueError):
    """A plan applied to a model it does not describe."""
