"""What a parametrization was asked for: :class:`MupSpec` (the arguments of :func:`fanin.mup`,
:func:`fanin.depth_mup`, :func:`fanin.u_mup`) and :class:`Attention` (where the queries are).

Plain data, validated when built (not at plan time), comparable and hashable so that rules holding
them compare as rules do.

>>> str(MupSpec("mup", base_width=64, std=0.02))
'mup(base_width=64, std=0.02)'
>>> Attention("*.attn.c_attn", split=3, n_head=4)
Attention(query='*.attn.c_attn', split=3, n_head=4, head_dim=None)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

from fanin.errors import describe_choice
from fanin.rules.parametrization.roles import ROLES, MupError, globs

__all__ = ["KINDS", "MULTIPLIERS", "Attention", "MupSpec", "as_attention"]

KINDS = ("depth_mup", "mup", "u_mup")
#: Where muP's readout multiplier goes: in the forward pass (TP5 Table 8, microsoft/mup's
#: MuReadout; works with tied embeddings) or folded into the readout's init and learning rate
#: (TP5 Table 3, no multiplier; needs an untied readout).
MULTIPLIERS = ("forward", "init")


def _positive_int(what: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MupError(f"{what} must be a positive int, got {what}={value!r}")


def _positive_float(what: str, value: object, *, optional: bool = True) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise MupError(f"{what} must be a positive finite number, got {what}={value!r}")


@dataclass(frozen=True)
class Attention:
    """Where a model's attention queries come from, so that its logits can be rescaled.

    ``query``: a glob on module names (``"*.attn.c_attn"``, ``"*.q_proj"``): Linear layers whose
    output holds the queries; ``split``: their output's last dimension is ``split`` equal parts and
    the queries are the first (``3`` for a fused ``[q | k | v]`` projection). ``n_head`` (a head count
    that stays fixed as the width grows, so the head dimension grows) or ``head_dim`` (a fixed head
    dimension): exactly one.

    Scaling the queries by ``c`` scales the logits ``q·k`` by ``c``: muP's ``1/d_head`` logits in a
    model written with ``1/√d_head`` need ``c = √(d_head₀/d_head)`` (equal to the model's own scale at
    the base width), u-muP's ``1/d_head`` needs ``c = 1/√d_head``.
    """

    query: str
    split: int = 1
    n_head: int | None = None
    head_dim: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query:
            raise MupError(f"Attention needs a module-name glob query=, got query={self.query!r}")
        _positive_int("split", self.split, optional=False)
        _positive_int("n_head", self.n_head)
        _positive_int("head_dim", self.head_dim)
        if (self.n_head is None) == (self.head_dim is None):
            raise MupError(
                "Attention needs exactly one of n_head= (a fixed head count: the head dimension grows with "
                f"width) or head_dim= (a fixed head dimension), got n_head={self.n_head!r}, head_dim={self.head_dim!r}"
            )


def as_attention(value: object) -> Attention | None:
    """``None``, an :class:`Attention`, or a mapping of its arguments."""
    if value is None or isinstance(value, Attention):
        return value
    if isinstance(value, Mapping):
        accepted = [f.name for f in fields(Attention)]
        unknown = sorted(set(value) - set(accepted))
        if unknown:
            raise MupError(describe_choice("Attention argument", unknown[0], accepted))
        return Attention(**value)
    raise MupError(
        "attention takes fanin.Attention(query=..., split=..., n_head=... or head_dim=...) or a mapping of those, "
        f"got attention={value!r} ({type(value).__name__})"
    )


@dataclass(frozen=True)
class MupSpec:
    """The arguments of one parametrization; see :func:`fanin.mup` for their meaning."""

    kind: str
    base_width: int | None = None
    width: int | None = None
    std: float | None = None
    embedding_std: float | None = None
    output_mult: float = 1.0
    multipliers: str = "forward"
    zero_readout: bool = False
    readout: tuple[str, ...] | None = None
    inputs: tuple[str, ...] | None = None
    roles: tuple[tuple[str, str], ...] | None = None
    attention: Attention | None = None
    base_depth: int | None = None
    branches: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MupError(describe_choice("parametrization", self.kind, KINDS))
        needs_base = self.kind != "u_mup"
        _positive_int("base_width", self.base_width, optional=not needs_base)
        if not needs_base and self.base_width is not None:
            raise MupError(f"u_mup has no base model (absolute fans), got base_width={self.base_width!r}")
        _positive_int("width", self.width)
        _positive_float("std", self.std)
        _positive_float("embedding_std", self.embedding_std)
        _positive_float("output_mult", self.output_mult, optional=False)
        if self.multipliers not in MULTIPLIERS:
            raise MupError(describe_choice("multipliers", self.multipliers, MULTIPLIERS))
        if self.multipliers == "init" and self.output_mult != 1.0:
            raise MupError(
                f"output_mult={self.output_mult!r} is a forward multiplier: use multipliers='forward' with it "
                "(multipliers='init' folds 1/width into the readout's init and learning rate only)"
            )
        if self.kind == "u_mup" and (
            self.std is not None or self.embedding_std is not None or self.multipliers != "forward"
        ):
            raise MupError(
                "u_mup initializes every weight with unit variance and scales in the forward pass: it takes no "
                f"std/embedding_std/multipliers, got std={self.std!r}, embedding_std={self.embedding_std!r}, "
                f"multipliers={self.multipliers!r}"
            )
        if not isinstance(self.zero_readout, bool):
            raise MupError(f"zero_readout must be True or False, got zero_readout={self.zero_readout!r}")
        object.__setattr__(self, "readout", globs("readout", self.readout))
        object.__setattr__(self, "inputs", globs("inputs", self.inputs))
        object.__setattr__(self, "branches", globs("branches", self.branches))
        object.__setattr__(self, "attention", as_attention(self.attention))
        if self.roles is not None:
            items = tuple(self.roles.items()) if isinstance(self.roles, Mapping) else self.roles
            for pattern, role in items:
                if role not in ROLES:
                    raise MupError(describe_choice("role", role, ROLES) + f" (in roles={{{pattern!r}: {role!r}}})")
            object.__setattr__(self, "roles", tuple(items))
        if self.kind == "depth_mup":
            _positive_int("base_depth", self.base_depth, optional=False)
            if self.branches is None:
                raise MupError(
                    "depth_mup needs branches=: globs naming the residual branches, the modules f whose output "
                    "is added to the stream (x + f(x)), e.g. branches=('*.attn', '*.mlp')"
                )
        elif self.base_depth is not None or self.branches is not None:
            raise MupError(
                f"{self.kind} does not scale depth; base_depth/branches are depth_mup's, got "
                f"base_depth={self.base_depth!r}, branches={self.branches!r}"
            )

    def __str__(self) -> str:
        defaults = {f.name: f.default for f in fields(self)}
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "kind" or value == defaults[f.name]:
                continue
            if f.name == "roles":
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            parts.append(f"{f.name}={value!r}")
        return f"{self.kind}({', '.join(parts)})"
