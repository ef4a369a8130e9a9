r"""The per-tensor numbers of a parametrization: init std, learning-rate factors, forward multipliers.

:func:`build_table` turns a :class:`~fanin.rules.parametrization.spec.MupSpec` and a model (a meta
model is enough: only shapes and the module graph are read) into a :class:`MupTable`; the rules
that :func:`fanin.mup` expands to initialize from it, :func:`fanin.mup_param_groups` and
:func:`fanin.mup_hooks` read it back from the plan (:func:`mup_table`).

**Notation.** ``n``/``n₀``: a tensor's fan_in at the model's width and at the base width
(``n₀ = n · base_width / width`` for a width dimension), ``m = width / base_width``, ``σ₀`` the
std at the base width (``std=``, or ``1/√n₀`` when not given), ``η`` the learning rate tuned at
the base width, ``L``/``L₀`` the number of residual branches of the model and of the base.

**muP** (Yang et al., 2022, "Tensor Programs V", Table 8 -- the formulation microsoft/mup
implements; Table 3 with ``multipliers="init"``):

===========  ==========================  ===================  ==========  ==============
role         init std                    forward multiplier   Adam LR     SGD LR
===========  ==========================  ===================  ==========  ==============
embedding    ``embedding_std`` (1)       --                   η           η·m
input        ``std`` or ``1/√n``         --                   η           η·m
hidden       ``σ₀·√(n₀/n)``              --                   η/m         η
readout      ``σ₀``                      ``output_mult/m``    η           η·m
  (init)     ``σ₀/m`` (Table 3)          --                   η/m         η/m
vector       biases 0, norm weights 1    --                   η           η·m
fixed        0                           --                   η           η
===========  ==========================  ===================  ==========  ==============

Attention (TP5 Definition 4.1: logits ``q·k/d`` instead of ``q·k/√d``): with
``attention=Attention(query=..., n_head=...)`` the queries are multiplied by
``√(d_head₀/d_head) = 1/√m``, which turns a model's ``1/√d_head`` into ``√d_head₀/d_head``.

**Depth-muP** (Yang et al., 2023, "Tensor Programs VI", Depth-μP: block multiplier ``a/√L``,
Adam learning rate ``η/√L``; Bordelon et al., 2023: branch scale ``1/√L`` with μP): on top of
muP, each residual branch's output is multiplied by ``√(L₀/L)`` and the Adam learning rate of the
tensors inside a branch by ``√(L₀/L)`` (SGD: unchanged).

**u-muP** (Blake et al., 2024): every weight N(0, 1); forward multipliers ``1/√fan_in`` on
Linear/Conv outputs and ``1/fan_in`` on the readout; attention logits ``1/d_head``; Adam learning
rates ``η/√fan_in`` for weights (for an embedding ``η/√d_embedding``), ``η`` for the readout and
vectors (``unit_scaling.optim``). SGD learning rates follow from TP5 Table 3 by abc-symmetry
(``A·θ``, ``B/θ``, ``C_SGD/θ²``): ``η·fan_in`` (hidden, readout), ``η·fan_in·fan_out`` (input),
``η·fan_out`` (embedding, vectors).

>>> import torch
>>> model = torch.nn.Sequential(
...     torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)
... )
>>> table = build_table(MupSpec("mup", base_width=64), model)
>>> rows = [(r.name, r.role, round(r.std, 4), r.adam_lr, r.sgd_lr) for r in table.rows if r.kind == "weight"]
>>> rows  # doctest: +NORMALIZE_WHITESPACE
[('0.weight', 'input', 0.3536, 1.0, 4.0), ('2.weight', 'hidden', 0.0625, 0.25, 1.0), ('4.weight', 'readout', 0.125,
1.0, 4.0)]
>>> [(x.module, x.kind, x.factor) for x in table.multipliers]
[('4', 'readout', 0.25)]
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from torch import nn

from fanin.rules.parametrization.roles import Graph, MupError, TensorRole, read_roles
from fanin.rules.parametrization.spec import MupSpec
from fanin.rules.rules import DepthScaledNormal, Rules
from fanin.rules.selectors import Name

__all__ = ["MULTIPLIER_KINDS", "Multiplier", "MupRow", "MupTable", "build_table", "literal", "mup_table"]

#: What a forward multiplier scales: the readout's output, the queries, a residual branch's
#: output, or a Linear/Conv output (u-muP's 1/√fan_in).
MULTIPLIER_KINDS = ("branch", "query", "readout", "weight")

TP5_T8 = "TP5 Table 8"
TP5_T3 = "TP5 Table 3"
TP6 = "TP6 Depth-μP"
UMUP = "u-μP (Blake et al. 2024)"


def literal(text: object) -> str:
    """``text`` with every non-printable character written as its escape: names from models are shown as they are."""
    s = str(text)
    return s if s.isprintable() else s.encode("unicode_escape").decode("ascii")


@dataclass(frozen=True)
class MupRow:
    """One parameter: its role, fans and base fans, what the parametrization initializes it with
    (``init`` a scheme spec, ``None`` when it leaves the tensor to other rules), the factors its
    learning rate is multiplied by, and the equations they come from."""

    name: str
    aliases: tuple[str, ...]
    module: str
    shape: tuple[int, ...]
    role: str
    kind: str
    why: str
    fan_in: int
    fan_out: int
    base_fan_in: float | None
    base_fan_out: float | None
    init: str | None
    std: float | None
    init_equation: str
    adam_lr: float
    sgd_lr: float
    lr_equation: str
    branch: str | None = None
    tied_readout: str | None = None

    def lr_factor(self, optimizer: str) -> float:
        """The factor for an Adam-like (``"adam"``) or SGD-like (``"sgd"``) optimizer."""
        return self.sgd_lr if optimizer == "sgd" else self.adam_lr


@dataclass(frozen=True)
class Multiplier:
    """A forward multiplier: ``module``'s output (its first ``1/split`` of the last dimension
    when ``split > 1``) times ``factor``; with ``on="input"`` its input instead (muP's readout, as
    microsoft/mup's ``MuReadout`` divides the readout's input, so its bias is not scaled).
    ``inside_layer``: it belongs to the layer's own output (the readout's ``1/m``, u-muP's
    ``1/√fan_in``), so a coordinate check records the output after
    it; a query or branch multiplier belongs to the next operation (the logits, the residual add)."""

    module: str
    kind: str
    factor: float
    equation: str
    split: int = 1
    inside_layer: bool = True
    on: str = "output"


@dataclass(frozen=True)
class MupTable:
    """A parametrization bound to one model: a row per parameter, the forward multipliers, and
    ``notes``: ``(what, text)`` pairs saying what the plan does and what it leaves to
    :func:`fanin.mup_param_groups`, :func:`fanin.mup_hooks` or the model's code. ``overridden``
    (filled by :func:`mup_table`): tensors a rule other than the parametrization's initialized."""

    spec: MupSpec
    model: str
    width: int | None
    width_mult: float | None
    depth: int | None
    rows: tuple[MupRow, ...]
    multipliers: tuple[Multiplier, ...]
    notes: tuple[tuple[str, str], ...]
    readout: tuple[str, ...] = ()
    overridden: tuple[tuple[str, str], ...] = field(default=(), compare=False)

    def __iter__(self) -> Iterator[MupRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str) -> MupRow:
        for r in self.rows:
            if r.name == name or name in r.aliases:
                return r
        from fanin.errors import describe_choice

        raise KeyError(describe_choice("tensor name", name, [r.name for r in self.rows]))

    def __repr__(self) -> str:
        width = f", width={self.width} (x{self.width_mult:g})" if self.width_mult is not None else ""
        depth = f", depth={self.depth}" if self.depth is not None else ""
        return (
            f"<MupTable {self.spec} on {literal(self.model)}: {len(self.rows)} tensors{width}{depth}, "
            f"{len(self.multipliers)} forward multipliers>"
        )

    def to_dict(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        return {
            "spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.items()},
            "parametrization": str(self.spec),
            "model": self.model,
            "width": self.width,
            "width_mult": self.width_mult,
            "depth": self.depth,
            "readout": list(self.readout),
            "rows": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(r).items()} for r in self.rows],
            "multipliers": [asdict(x) for x in self.multipliers],
            "notes": [{"what": w, "text": t} for w, t in self.notes],
            "overridden": [{"tensor": n, "rule": r} for n, r in self.overridden],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def describe(self) -> str:
        """Plain text: what is done and what is not, then one line per tensor and per multiplier
        (:func:`fanin.report.mup.render_mup_text`)."""
        from fanin.report.mup import render_mup_text

        return render_mup_text(self)


# ------------------------------------------------------------------------------------ building


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _branches(spec: MupSpec, model: nn.Module) -> list[str]:
    if spec.branches is None:
        return []
    selectors = [Name(g) for g in spec.branches]
    found = [n for n, _ in model.named_modules() if n and any(s.matches_name(n) for s in selectors)]
    if not found:
        raise MupError(
            f"branches={list(spec.branches)!r} matches no module of {type(model).__name__}: name the residual "
            "branches, the modules f whose output is added to the stream (x + f(x))"
        )
    nested = [(a, b) for a in found for b in found if a != b and b.startswith(a + ".")]
    if nested:
        raise MupError(
            f"branches={list(spec.branches)!r} matches {nested[0][1]!r} inside {nested[0][0]!r}: a branch is counted "
            f"once"
        )
    return found


def _branch_of(module: str, branches: list[str]) -> str | None:
    for b in branches:
        if module == b or module.startswith(b + "."):
            return b
    return None


def _vector_init(t: TensorRole) -> tuple[str | None, float | None, str]:
    if t.kind == "norm_weight":
        return "ones", 0.0, "1 (a norm's weight)"
    if t.kind in ("bias", "norm_bias", "recurrent_bias"):
        return "zeros", 0.0, "0 (a bias)"
    return None, None, "left to other rules (not a bias or norm parameter)"


def _mup_row(spec: MupSpec, t: TensorRole, m: float) -> MupRow:
    base_in = t.fan_in / m if t.width_axes in ("both", "fan_in") else None
    base_out = t.fan_out / m if t.width_axes in ("both", "fan_out") else None
    n = t.fan_in
    init: str | None
    std: float | None
    if t.role == "hidden":
        assert base_in is not None
        if spec.std is None:
            std = 1.0 / math.sqrt(n)
            eq = f"σ = 1/√n = 1/√{n} (σ₀ = 1/√n₀ at the base fan_in n₀ = {base_in:g})"
        else:
            std = spec.std * math.sqrt(base_in / n)
            eq = f"σ = σ₀·√(n₀/n) = {_fmt(spec.std)}·√({base_in:g}/{n})"
        init, eq = f"normal(std={std!r})", eq + f"; {TP5_T8}, hidden weights: Var ∝ 1/fan_in"
        adam, sgd = 1.0 / m, 1.0
        lr_eq = (
            f"Adam η·n₀/n = η/{_fmt(m)}, SGD η "
            f"({TP5_T8}, hidden: Adam LR ∝ 1/fan_in, SGD LR ∝ fan_in/fan_out ratio = 1)"
        )
    elif t.role in ("embedding", "input"):
        if t.role == "embedding":
            std = spec.embedding_std or spec.std or 1.0
            source = "embedding_std" if spec.embedding_std else "std" if spec.std else "torch's nn.Embedding N(0, 1)"
            eq = f"σ = {_fmt(std)} ({source}), constant in width"
        else:
            std = spec.std or 1.0 / math.sqrt(n)
            eq = f"σ = {_fmt(std)} ({'std' if spec.std else f'1/√fan_in, fan_in = {n} fixed'}), constant in width"
        init, eq = f"normal(std={std!r})", eq + f"; {TP5_T8}, input weights: Var ∝ 1/fan_in, fan_in fixed"
        if t.tied_readout is not None and spec.multipliers == "forward":
            eq += (
                f"; tied to the readout {literal(t.tied_readout)!r}: its output × output_mult/m = "
                f"{_fmt(spec.output_mult / m)} in the forward pass: NOT done by the init (fanin.mup_hooks)"
            )
        adam, sgd = 1.0, m
        lr_eq = f"Adam η, SGD η·m = η·{_fmt(m)} ({TP5_T8}, input weights: Adam LR ∝ 1, SGD LR ∝ fan_out)"
    elif t.role == "readout":
        assert base_in is not None
        s0 = spec.std or 1.0 / math.sqrt(base_in)
        s0_text = _fmt(spec.std) if spec.std else f"1/√n₀ = 1/√{base_in:g}"
        if spec.multipliers == "forward":
            std = 0.0 if spec.zero_readout else s0
            eq = (
                f"σ = σ₀ = {s0_text}, constant in width; output × output_mult/m = {_fmt(spec.output_mult)}/{_fmt(m)} = "
                f"{_fmt(spec.output_mult / m)} in the forward pass: NOT done by the init (fanin.mup_hooks) "
                f"({TP5_T8}, output weights: Var ∝ 1, multiplier 1/fan_in)"
            )
            adam, sgd = 1.0, m
            lr_eq = f"Adam η, SGD η·m = η·{_fmt(m)} ({TP5_T8}, output weights: Adam LR ∝ 1, SGD LR ∝ fan_in)"
        else:
            std = 0.0 if spec.zero_readout else s0 / m
            eq = f"σ = σ₀/m = ({s0_text})/{_fmt(m)}, no forward multiplier ({TP5_T3}, output weights: Var ∝ 1/fan_in²)"
            adam, sgd = 1.0 / m, 1.0 / m
            lr_eq = f"Adam η/m, SGD η/m = η/{_fmt(m)} ({TP5_T3}, output weights: Adam and SGD LR ∝ 1/fan_in)"
        if spec.zero_readout:
            init, eq = "zeros", "0 (zero_readout=True, as microsoft/mup's MuReadout(readout_zero_init=True))"
        else:
            init = f"normal(std={std!r})"
    elif t.role == "vector":
        init, std, eq = _vector_init(t)
        adam, sgd = 1.0, m
        lr_eq = f"Adam η, SGD η·m = η·{_fmt(m)} ({TP5_T8}, vector-like (biases, norms): Adam LR ∝ 1, SGD LR ∝ fan_out)"
    else:  # fixed
        init, std, eq = _vector_init(t)
        adam, sgd = 1.0, 1.0
        lr_eq = "Adam η, SGD η (no width dimension)"
    return MupRow(
        t.name,
        t.aliases,
        t.module,
        t.shape,
        t.role,
        t.kind,
        t.why,
        t.fan_in,
        t.fan_out,
        base_in,
        base_out,
        init,
        std,
        eq,
        adam,
        sgd,
        lr_eq,
        tied_readout=t.tied_readout,
    )


def _u_mup_row(t: TensorRole) -> MupRow:
    n, n_out = t.fan_in, t.fan_out
    init: str | None
    std: float | None
    if t.role in ("hidden", "input", "readout", "embedding"):
        init, std, eq = "normal(std=1.0)", 1.0, f"σ = 1 (unit scale; {UMUP})"
    else:
        init, std, eq = _vector_init(t)
    if t.role == "hidden":
        adam, sgd = n**-0.5, float(n)
        lr_eq = f"Adam η/√fan_in = η/√{n} ({UMUP}, unit_scaling.optim), SGD η·fan_in ({TP5_T3} by abc-symmetry)"
    elif t.role == "input":
        adam, sgd = n**-0.5, float(n * n_out)
        lr_eq = f"Adam η/√fan_in = η/√{n} ({UMUP}), SGD η·fan_in·fan_out = η·{n * n_out} ({TP5_T3} by abc-symmetry)"
    elif t.role == "embedding":
        adam, sgd = n_out**-0.5, float(n_out)
        lr_eq = f"Adam η/√d = η/√{n_out} ({UMUP}: an embedding's lr uses its output dim), SGD η·fan_out ({TP5_T3})"
    elif t.role == "readout":
        adam, sgd = 1.0, float(n)
        lr_eq = f"Adam η ({UMUP}), SGD η·fan_in = η·{n} ({TP5_T3} by abc-symmetry)"
    elif t.role == "vector":
        adam, sgd = 1.0, float(n_out)
        lr_eq = f"Adam η ({UMUP}), SGD η·fan_out = η·{n_out} ({TP5_T3})"
    else:
        adam, sgd = 1.0, 1.0
        lr_eq = "Adam η, SGD η (no width dimension)"
    return MupRow(
        t.name,
        t.aliases,
        t.module,
        t.shape,
        t.role,
        t.kind,
        t.why,
        t.fan_in,
        t.fan_out,
        None,
        None,
        init,
        std,
        eq,
        adam,
        sgd,
        lr_eq,
        tied_readout=t.tied_readout,
    )


def _attention(spec: MupSpec, model: nn.Module, m: float | None) -> list[Multiplier]:
    a = spec.attention
    if a is None:
        return []
    selector = Name(a.query)
    found = [(n, mod) for n, mod in model.named_modules() if n and selector.matches_name(n)]
    if not found:
        raise MupError(f"attention query={a.query!r} matches no module of {type(model).__name__}")
    out = []
    for name, module in found:
        if not isinstance(module, nn.Linear):
            raise MupError(
                f"attention query={a.query!r} matches {name!r} ({type(module).__name__}): the queries must be a "
                f"Linear's output"
            )
        if module.out_features % a.split:
            raise MupError(
                f"attention split={a.split}: {name!r} has out_features={module.out_features}, not divisible by "
                f"{a.split}"
            )
        q_width = module.out_features // a.split
        if a.n_head is not None and q_width % a.n_head:
            raise MupError(
                f"attention n_head={a.n_head}: the queries of {name!r} are {q_width} wide, not divisible by {a.n_head}"
            )
        head_dim = a.head_dim if a.head_dim is not None else q_width // a.n_head  # type: ignore[operator]
        if spec.kind == "u_mup":
            factor = head_dim**-0.5
            eq = f"logits q·k/d_head (u-μP) from the model's q·k/√d_head: queries × 1/√d_head = 1/√{head_dim}"
        elif a.n_head is not None:
            assert m is not None
            factor = m**-0.5
            eq = (
                f"logits √d₀·q·k/d (TP5 Definition 4.1: 1/d attention, equal to 1/√d at the base width) from the "
                f"model's q·k/√d: queries × √(d₀/d) = 1/√m = 1/√{_fmt(m)}, d = d_head = {head_dim}"
            )
        else:
            continue  # a fixed head_dim: 1/d and 1/√d differ by a constant, nothing grows with width
        out.append(Multiplier(name, "query", factor, eq, a.split, inside_layer=False))
    return out


def build_table(spec: MupSpec, model: nn.Module) -> MupTable:
    """The parametrization ``spec`` for ``model``: read the graph, compute every number."""
    graph: Graph = read_roles(
        model,
        width=spec.width,
        base_width=spec.base_width,
        readout=spec.readout,
        inputs=spec.inputs,
        roles=dict(spec.roles) if spec.roles is not None else None,
        need_width=spec.kind != "u_mup",
    )
    m = graph.width / spec.base_width if spec.base_width is not None and graph.width is not None else None
    tied = [t for t in graph.tensors if t.tied_readout is not None]
    if tied and spec.multipliers == "init":
        raise MupError(
            f"{tied[0].name!r} is both an input embedding and the readout ({tied[0].tied_readout!r}, tied): "
            "multipliers='init' (TP5 Table 3) needs different inits for them; use multipliers='forward' "
            "(TP5 Table 8, compatible with weight sharing)"
        )
    if tied and spec.kind == "u_mup":
        raise MupError(
            f"{tied[0].name!r} is both an input embedding and the readout ({tied[0].tied_readout!r}, tied): "
            "u_mup gives them different learning rates; untie them, or use fanin.mup"
        )
    branches = _branches(spec, model)
    rows = []
    for t in graph.tensors:
        row = _u_mup_row(t) if spec.kind == "u_mup" else _mup_row(spec, t, m)  # type: ignore[arg-type]
        branch = _branch_of(t.module, branches)
        if branch is not None:
            c = math.sqrt(spec.base_depth / len(branches))  # type: ignore[operator]
            row = replace(
                row,
                branch=branch,
                adam_lr=row.adam_lr * c,
                lr_equation=row.lr_equation
                + f"; Adam × √(L₀/L) = √({spec.base_depth}/{len(branches)}) in a residual branch ({TP6}: Adam LR η/√L)",
            )
        rows.append(row)

    multipliers: list[Multiplier] = []
    if spec.kind == "u_mup":
        modules = dict(model.named_modules())
        for r in rows:
            if r.role in ("hidden", "input") and r.kind == "weight":
                if not isinstance(modules[r.module], (nn.Linear, nn.modules.conv._ConvNd)):
                    raise MupError(
                        f"u_mup scales each weight's output by 1/√fan_in in the forward pass; fanin does that for "
                        f"Linear/Conv modules, not for {r.name!r} ({modules[r.module].__class__.__name__}): use "
                        f"fanin.mup, "
                        "or give it another role with roles="
                    )
                multipliers.append(
                    Multiplier(r.module, "weight", r.fan_in**-0.5, f"output × 1/√fan_in = 1/√{r.fan_in} ({UMUP})")
                )
        for name in graph.readout:
            fan_in = graph[f"{name}.weight" if name else "weight"].fan_in
            multipliers.append(Multiplier(name, "readout", 1.0 / fan_in, f"output × 1/fan_in = 1/{fan_in} ({UMUP})"))
    elif spec.multipliers == "forward":
        assert m is not None
        for name in graph.readout:
            multipliers.append(
                Multiplier(
                    name,
                    "readout",
                    spec.output_mult / m,
                    f"input × output_mult/m = {_fmt(spec.output_mult)}/{_fmt(m)}, i.e. W·x/m + b ({TP5_T8}: output "
                    "multiplier 1/fan_in; microsoft/mup MuReadout)",
                    on="input",
                )
            )
    multipliers += _attention(spec, model, m)
    if branches:
        c = math.sqrt(spec.base_depth / len(branches))  # type: ignore[operator]
        for b in branches:
            multipliers.append(
                Multiplier(
                    b,
                    "branch",
                    c,
                    f"branch output × √(L₀/L) = √({spec.base_depth}/{len(branches)}) ({TP6}: multiplier a/√L)",
                    inside_layer=False,
                )
            )

    notes = _notes(spec, graph, multipliers, branches)
    return MupTable(
        spec=spec,
        model=type(model).__name__,
        width=graph.width,
        width_mult=m,
        depth=len(branches) if branches else None,
        rows=tuple(rows),
        multipliers=tuple(multipliers),
        notes=tuple(notes),
        readout=graph.readout,
    )


def _notes(spec: MupSpec, graph: Graph, multipliers: list[Multiplier], branches: list[str]) -> list[tuple[str, str]]:
    notes = [
        ("init", "done by the plan (fanin.plan / apply / materialize): each tensor's std below"),
        (
            "learning rates",
            (
                "per-tensor factors below: NOT applied unless the optimizer is built from "
                "fanin.mup_param_groups(model, plan, lr=..., optimizer=...)"
            ),
        ),
    ]
    if multipliers:
        kinds = sorted({x.kind for x in multipliers})
        notes.append(
            (
                "forward multipliers",
                (
                    f"{len(multipliers)} ({', '.join(kinds)}): NOT in the model's code and NOT done by the init; "
                    "install them with fanin.mup_hooks(model, plan) or write them into the model's forward"
                ),
            )
        )
    elif spec.kind != "u_mup" and spec.multipliers == "init":
        notes.append(
            (
                "forward multipliers",
                "none needed: the readout's 1/width is folded into its init and learning rate (TP5 Table 3)",
            )
        )
    if graph.attention and spec.attention is None:
        shown = ", ".join(repr(literal(a)) for a in graph.attention[:4]) + (", ..." if len(graph.attention) > 4 else "")
        notes.append(
            (
                "not done",
                (
                    f"attention ({shown}): muP needs logits q·k/d_head, not q·k/√d_head (TP5 Definition 4.1); the "
                    f"model keeps "
                    "its own scale. Pass attention=fanin.Attention(query=..., split=..., n_head=...) or change the "
                    "model's code"
                ),
            )
        )
    elif spec.attention is not None and not any(x.kind == "query" for x in multipliers):
        notes.append(("attention", "head_dim is fixed: 1/d_head and 1/√d_head differ by a constant, nothing to change"))
    if spec.kind == "u_mup":
        notes.append(
            (
                "not done",
                (
                    "u-μP's unit-scaled operations (scaled GELU/SiLU/softmax, residual_add/split with τ, the loss and "
                    "the "
                    "backward-pass scales of unit_scaling): fanin sets weights, multipliers and learning rates only"
                ),
            )
        )
    if branches:
        notes.append(
            (
                "depth",
                (
                    f"L = {len(branches)} residual branches (base L₀ = {spec.base_depth}); TP6 finds Depth-μP optimal "
                    f"for "
                    "blocks of one layer, with fundamental limitations for deeper blocks (such as transformers')"
                ),
            )
        )
    return notes


# ------------------------------------------------------------------------------------- reading


def _scales_depth(init: object) -> bool:
    return isinstance(init, DepthScaledNormal) or bool(getattr(init, "scales_depth", False))


def _tables(plan: Any) -> tuple[list[MupTable], set[int]]:
    # A plan (fanin.planning.records.Plan, a layer above the rules) is read by what it holds: its
    # rules and its entries.
    if not (isinstance(getattr(plan, "rules", None), Rules) and isinstance(getattr(plan, "entries", None), tuple)):
        raise TypeError(f"mup_table needs a fanin.Plan, got plan={plan!r} ({type(plan).__name__})")
    tables: dict[int, MupTable] = {}
    own: set[int] = set()
    for i, rule in enumerate(plan.rules):
        table = getattr(rule.init, "table", None)
        if isinstance(table, MupTable):
            tables.setdefault(id(table), table)
            own.add(i)
    return list(tables.values()), own


def depth_conflicts(plan) -> list[tuple[str, str, str]]:
    """``(tensor, rule, why)`` for every tensor of a muP / depth-muP plan that a depth-scaled rule
    initializes (:class:`~fanin.rules.rules.DepthScaledNormal`, or an init with ``scales_depth =
    True``); empty for a plan without a parametrization. :func:`mup_table` refuses such plans; a
    lint can report them one by one."""
    tables, _ = _tables(plan)
    if len(tables) != 1:
        return []
    kind = tables[0].spec.kind
    if kind == "depth_mup":
        why = (
            "depth would be counted twice: depth_mup already multiplies each residual branch by √(L₀/L) in the "
            "forward pass and scales its Adam learning rate"
        )
    else:
        why = (
            f"{kind} scales these tensors with width; a depth-scaled std constant in width breaks that, and "
            "depth belongs to fanin.depth_mup"
        )
    return [
        (e.name, e.rule, why) for e in plan if e.rule_index is not None and _scales_depth(plan.rules[e.rule_index].init)
    ]


def mup_table(plan: Any) -> MupTable:
    """The :class:`MupTable` of a plan resolved with :func:`fanin.mup` / ``depth_mup`` / ``u_mup`` rules.

    Refuses a plan in which a rule that scales residual projections by depth
    (:class:`~fanin.rules.rules.DepthScaledNormal`, the ``gpt2`` preset's ``c_proj`` rule, or any
    init with ``scales_depth = True``) initializes a tensor (:func:`depth_conflicts`): with
    depth-muP depth would be counted twice, and with muP that tensor's init would not scale with
    width.

    Args:
        plan: A :class:`fanin.Plan` (typed ``Any``: plans are a layer above the rules) resolved
            with exactly one parametrization's rules.

    Returns:
        The parametrization's table for the plan's model: a row per parameter, the forward
        multipliers and the notes; its ``overridden`` lists the tensors that another rule
        initialized although the parametrization has an init for them.

    Raises:
        TypeError: ``plan`` is not a plan.
        MupError: The plan has no parametrization's rules, or more than one parametrization, or
            a depth-scaled rule initializes one of its tensors.

    Examples:
        >>> import torch, fanin
        >>> model = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        >>> table = mup_table(fanin.plan(model, fanin.mup(base_width=64), seed=0))
        >>> table
        <MupTable mup(base_width=64) on Sequential: 4 tensors, width=256 (x4), 1 forward multipliers>
        >>> [(r.name, r.role, r.init) for r in table][2]
        ('2.weight', 'readout', 'normal(std=0.125)')
    """
    tables, own = _tables(plan)
    if not tables:
        raise MupError(
            "this plan has no muP rules: resolve it with fanin.mup(...), fanin.depth_mup(...) or fanin.u_mup(...) "
            f"(its rules: {', '.join(literal(r) for r in plan.rules) or 'none'})"
        )
    if len(tables) > 1:
        found = sorted({str(t.spec) for t in tables})
        raise MupError(f"this plan holds {len(tables)} parametrizations ({', '.join(found)}): use one")
    table = tables[0]
    conflicts = depth_conflicts(plan)
    if conflicts:
        names = ", ".join(repr(literal(n)) for n, _, _ in conflicts[:6]) + (
            f", ... ({len(conflicts) - 6} more)" if len(conflicts) > 6 else ""
        )
        raise MupError(
            f"{len(conflicts)} tensor(s) are initialized by a rule that scales residual projections by depth "
            f"({names}; rule {literal(conflicts[0][1])!r}) in a {table.spec} plan: {conflicts[0][2]}. Drop that rule "
            f"(e.g. "
            "the gpt2 preset's '*c_proj.weight' rule) and let the parametrization initialize them."
        )
    described = {r.name for r in table.rows}
    overridden = tuple(
        (e.name, e.rule)
        for e in plan
        if e.kind == "parameter" and e.rule_index not in own and e.name in described and table[e.name].init is not None
    )
    return replace(table, overridden=overridden)


def check_model(table: MupTable, model: nn.Module) -> dict[str, nn.Parameter]:
    """``model``'s parameters by name, checked to be the tensors ``table`` describes (names, shapes)."""
    params = dict(model.named_parameters())
    mismatched = []
    for r in table.rows:
        p = params.get(r.name)
        if p is None:
            p = next((params[a] for a in r.aliases if a in params), None)
        if p is None or tuple(p.shape) != r.shape:
            mismatched.append(
                f"{r.name!r} of shape={r.shape}: "
                + ("no such parameter" if p is None else f"the model's is {tuple(p.shape)}")
            )
    names = {n for r in table.rows for n in (r.name, *r.aliases)}
    extra = [n for n in params if n not in names]
    if mismatched or extra:
        found = mismatched[:3] + [f"{n!r}: not in the plan" for n in extra[:3]]
        raise MupError(
            f"the plan does not describe this model ({type(model).__name__}): {'; '.join(literal(f) for f in found)}. "
            "Resolve the plan on this model: fanin.plan(model, rules)."
        )
    return params
