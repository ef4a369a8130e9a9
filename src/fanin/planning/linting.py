r"""``fanin.lint``: the initialization bugs that recur in public trackers, found in a plan and a model.

Each finding names the tensor, the evidence and the fix, with a severity: ``error`` (the init is
wrong: ``fanin lint --check`` exits 1), ``warning`` (very likely wrong), ``info`` (worth knowing,
not a problem). The checks:

===========================  ========  ==============================================================
check                        severity  what
===========================  ========  ==============================================================
``truncation-never-cuts``    warning   a truncated normal whose bounds lie beyond 4σ: the bounds are
                                       absolute, not in units of std (torchtitan#3334). ``info`` when
                                       they are ``trunc_normal_``'s defaults ±2 (no cut was asked for)
``std-looks-like-variance``  warning   a normal std equal to :math:`k/\text{fan}` (a variance) where
                                       :math:`\sqrt{k/\text{fan}}` is meant, or :math:`(k/\text{fan})^{1/4}`
                                       (the reverse), :math:`k \in \{1, 2, 2/5, 1/3\}` (gpt-neox PR#1087).
                                       Only fans >= 128: below, the two readings coincide too often
``depth-scaled-twice``       error     a residual output projection whose std is its block's input
                                       std divided by a *product* of two depth factors
                                       (:math:`2L`, :math:`2(l+1)`, ...) and not by one (Megatron-LM PR#4381)
``depth-scaled-off-residual`` warning  an input projection (SwiGLU ``w3``/``up_proj``, ...) that does not
                                       write to the residual stream but has the block's depth-scaled
                                       std while the other input projections do not (torchtitan#3334)
``dtensor-local-fans``       error     a sharded parameter whose values have the std of a scheme on its
                                       *local* shard's shape, not the global one (Megatron-Bridge#5843);
                                       or a plan resolved on local shapes
``fans-from-storage``        warning   stacked expert weights (experts, a, b) drawn by a fan-based scheme
                                       with the fans of the 3-D storage, not of one expert's matrix
``uninitialized``            error     a parameter no rule covers, a kept parameter still on meta, one
                                       created by ``torch.empty`` and never written, non-finite values
``buffer-not-initialized``   error     a buffer on meta that nothing will fill, non-finite buffer values,
                                       an ``inv_freq`` that is not :math:`\theta^{-2i/d}` (positive,
                                       at most 1, decreasing) (torchtitan#3106, transformers#46620)
``tied-different-schemes``   warning   tied tensors whose names match rules with different schemes: one
                                       silently wins (DeepSpeed#2650)
``zero-blocks-gradient``     error     two zero-initialized multiplicative tensors one after the other in
                                       the same module: each one's gradient is the other's output, so
                                       both stay zero (Fixup's zero last layer plus a zero BatchNorm γ)
``opaque``                   warning   a captured write fanin could not read
===========================  ========  ==============================================================

>>> import torch
>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
>>> report = lint(model, {"*.weight": "trunc_normal(std=0.02, a=-3.0, b=3.0)", "*.bias": "zeros"})
>>> [(f.check, f.severity, f.tensor) for f in report][:1]
[('truncation-never-cuts', 'warning', '0.weight')]
>>> print(report.findings[0].fix)
trunc_normal's bounds are absolute: for a cut at ±3σ pass a=-0.06, b=0.06 (or use normal(std=0.02))
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch

from fanin.errors import describe_choice
from fanin.frameworks.draws import draw_of
from fanin.planning.records import Plan, PlanEntry
from fanin.planning.resolve import plan
from fanin.rng.sharded import is_dtensor
from fanin.rules.load import as_rules
from fanin.rules.rules import FrameworkDefaults, RuleError
from fanin.rules.selectors import Target
from fanin.rules.targets import collect_targets

__all__ = ["CHECKS", "SEVERITIES", "Finding", "LintReport", "lint"]

SEVERITIES = ("error", "warning", "info")
CHECKS = (
    "buffer-not-initialized",
    "depth-scaled-off-residual",
    "depth-scaled-twice",
    "dtensor-local-fans",
    "fans-from-storage",
    "opaque",
    "std-looks-like-variance",
    "tied-different-schemes",
    "truncation-never-cuts",
    "uninitialized",
    "zero-blocks-gradient",
)

#: The smallest fan at which a std is read as a variance (or the reverse).
MIN_FAN = 128
#: z above which a sharded tensor's measured std is called inconsistent with the global-shape std.
Z_LIMIT = 6.0


@dataclass(frozen=True)
class Finding:
    """One problem: which check, how bad, which tensor, what shows it, how to fix it."""

    check: str
    severity: str
    tensor: str
    evidence: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class LintReport:
    """The findings of :func:`lint`, errors first. ``exit_code(check=True)`` is 1 when there is an error.

    Iterating a report yields its findings; ``len(report)`` counts them; ``str(report)`` is the
    text report (:func:`fanin.report.lint.render_lint_text`).

    Attributes:
        findings: The findings, errors first, then warnings, then infos.
        model: The model's class name (the plan's, when linted without a model).
        rules: The name of the rules (a preset's name), ``"captured"`` for a captured plan, else
            ``"rules"``.

    Examples:
        >>> import torch
        >>> report = lint(torch.nn.Linear(4, 2), {"weight": "xavier_uniform"})
        >>> [(f.check, f.severity, f.tensor) for f in report], report.exit_code()
        ([('uninitialized', 'error', 'bias')], 1)
    """

    findings: tuple[Finding, ...]
    model: str = ""
    rules: str = ""

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def of(self, severity: str) -> tuple[Finding, ...]:
        """The findings of one severity.

        Args:
            severity: ``"error"``, ``"warning"`` or ``"info"`` (:data:`SEVERITIES`).

        Returns:
            Those findings, in report order.

        Raises:
            ValueError: ``severity`` is not one of :data:`SEVERITIES`.
        """
        if severity not in SEVERITIES:
            raise ValueError(describe_choice("severity", severity, SEVERITIES))
        return tuple(f for f in self.findings if f.severity == severity)

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings of severity ``"error"``."""
        return self.of("error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        """The findings of severity ``"warning"``."""
        return self.of("warning")

    @property
    def problems(self) -> tuple[Finding, ...]:
        """Errors and warnings (what a clean init has none of)."""
        return tuple(f for f in self.findings if f.severity != "info")

    def exit_code(self, check: bool = True) -> int:
        """The exit status of ``fanin lint``.

        Args:
            check: Whether errors fail (``--check``).

        Returns:
            1 when ``check`` and there is an error, else 0.
        """
        return 1 if check and self.errors else 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data, for JSON.

        Returns:
            ``model``, ``rules`` and ``findings`` (each with ``check``, ``severity``, ``tensor``,
            ``evidence``, ``fix``).
        """
        return {"model": self.model, "rules": self.rules, "findings": [f.to_dict() for f in self.findings]}

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text.

        Args:
            indent: The indentation, as :func:`json.dumps` takes it (``None``: one line).

        Returns:
            :meth:`to_dict`, dumped.
        """
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        from fanin.report.lint import render_lint_text

        return render_lint_text(self)

    def __repr__(self) -> str:
        counts = ", ".join(f"{len(self.of(s))} {s}{'s' if len(self.of(s)) != 1 else ''}" for s in SEVERITIES)
        return f"<LintReport {self.model!r} ({self.rules}): {counts}>"


# ------------------------------------------------------------------------------------ the draws


def _draw(e: PlanEntry):
    """``(kind, mean, std, low, high)`` of the single element-wise draw an entry makes, or ``None``."""
    if e.scheme is None:
        return None
    if e.scheme.name == "captured.steps":
        steps = e.scheme.args["steps"].value
        if len(steps) == 1 and steps[0][0] == "erfinv":
            _, _low, _high, scale, shift, a, b = steps[0]
            return ("truncated_normal", shift, scale / math.sqrt(2.0), a, b)
        if len(steps) == 1 and steps[0][0] == "scheme":
            return _record(steps[0][1], e.shape)
        return None
    return _record(e.scheme, e.shape)


def _record(scheme, shape):
    """The normal or truncated normal ``scheme`` draws at ``shape`` (:func:`fanin.frameworks.draws.draw_of`),
    as ``(kind, mean, std, low, high)`` with the parameters it passes; ``None`` for anything else."""
    if scheme.family not in ("normal", "truncated_normal", "uniform") or scheme.arguments.get("seed") is not None:
        return None  # a scheme with its own seed draws from a generator the plan does not hold
    try:
        draw = draw_of(scheme, tuple(shape))
    except (RuntimeError, ValueError, TypeError):
        return None
    if draw is None or draw.kind not in ("normal", "truncated normal"):
        return None
    drawn = draw.parameters
    if draw.kind == "normal":
        return ("normal", drawn["mean"], drawn["std"], None, None)
    return ("truncated_normal", drawn["mean"], drawn["std"], drawn["low"], drawn["high"])


def _default_bounds(e: PlanEntry) -> bool:
    """Whether a truncated normal kept ``trunc_normal_``'s default bounds (-2, 2): no cut was asked for."""
    s = e.scheme
    if s is None:
        return False
    if s.name == "trunc_normal":
        return "a" not in s.args and "b" not in s.args
    if s.name == "captured.steps":
        steps = s.args["steps"].value
        return len(steps) == 1 and steps[0][0] == "erfinv" and (steps[0][5], steps[0][6]) == (-2.0, 2.0)
    return False


def _truncation(entries) -> list[Finding]:
    out = []
    for e in entries:
        d = _draw(e)
        if d is None or d[0] != "truncated_normal":
            continue
        _, mean, std, low, high = d
        k = min(mean - low, high - mean) / std
        if k <= 4.0:
            continue
        default = _default_bounds(e)
        out.append(
            Finding(
                "truncation-never-cuts",
                "info" if default else "warning",
                e.name,
                f"{e.init} cuts at [{low:g}, {high:g}] = ±{k:.3g}σ with σ={std:.4g}"
                + (" (trunc_normal_'s default bounds)" if default else "")
                + f": a normal value passes 4σ with probability 6.3e-5, so the cut never applies (rule: {e.rule})",
                f"trunc_normal's bounds are absolute: for a cut at ±3σ pass a={-3 * std + mean:.4g}, "
                f"b={3 * std + mean:.4g} (or use normal(std={std:.4g}))",
            )
        )
    return out


_K = ((1.0, "1"), (2.0, "2"), (0.4, "2/5"), (1.0 / 3.0, "1/3"))
_EXPLICIT_STD = ("normal", "trunc_normal", "fanin.padded_normal", "captured.steps")


def _variance(entries) -> list[Finding]:
    out = []
    for e in entries:
        # Only a std written as a number can be a variance by mistake: fan-based schemes (kaiming,
        # xavier, lecun) compute theirs.
        if e.scheme is None or e.scheme.name not in _EXPLICIT_STD:
            continue
        d = _draw(e)
        if d is None or d[0] not in ("normal", "truncated_normal") or e.fans is None or len(e.shape) < 2:
            continue
        std = d[2]
        fans = {"fan_in": e.fans.fan_in, "fan_out": e.fans.fan_out, "fan_avg": (e.fans.fan_in + e.fans.fan_out) / 2}
        if any(math.isclose(std, math.sqrt(k / f), rel_tol=1e-9) for k, _ in _K for f in fans.values() if f):
            continue  # it is also a std of the usual form: no evidence of a mix-up
        readings: list[tuple[str, str, float]] = []  # (kind, formula, the std meant)
        for fan_name, fan in fans.items():
            if fan < MIN_FAN:
                continue
            for k, k_text in _K:
                right = math.sqrt(k / fan)
                if math.isclose(std, k / fan, rel_tol=1e-9):
                    readings.append(("variance", f"{k_text}/{fan_name} ({fan:g})", right))
                elif math.isclose(std, math.sqrt(right), rel_tol=1e-9):
                    readings.append(("root", f"({k_text}/{fan_name})^(1/4) with {fan_name}={fan:g}", right))
        if readings:
            kind, _, right = readings[0]
            what = (
                "that is a variance"
                if kind == "variance"
                else "the square root of a std, i.e. a std was used as a variance"
            )
            formulas = " or ".join(f for k, f, _ in readings if k == kind)
            out.append(
                Finding(
                    "std-looks-like-variance",
                    "warning",
                    e.name,
                    f"std {std:.6g} = {formulas}: {what} (rule: {e.rule})",
                    "the std is "
                    + " or ".join(f"{r:.6g}" for r in dict.fromkeys(r for k, _, r in readings if k == kind)),
                )
            )
    return out


# ---------------------------------------------------------------------------------- depth scaling

_LAYER = re.compile(r"(?:^|\.)(?:layers|blocks|h|layer|block)\.(\d+)\.")
RESIDUAL_OUT = (
    "wo",
    "w2",
    "o_proj",
    "down_proj",
    "c_proj",
    "attn_out",
    "ff_out",
    "dense_4h_to_h",
    "linear_proj",
    "linear_fc2",
    "out_proj",
    "fc2",
    "proj",
    "dense",
)
IN_PROJ = (
    "wq",
    "wk",
    "wv",
    "w1",
    "w3",
    "q_proj",
    "k_proj",
    "v_proj",
    "gate_proj",
    "up_proj",
    "c_attn",
    "c_fc",
    "qkv",
    "fc1",
    "dense_h_to_4h",
    "linear_qkv",
    "linear_fc1",
    "att_proj",
    "ff_proj",
    "query_key_value",
    "query",
    "key",
    "value",
    "in_proj",
)
# In-projections whose output does not go straight into the residual stream's writer alone but
# is multiplied into a gated unit (SwiGLU value projection): scaling them scales the branch.
_GATED_VALUE = ("w3", "up_proj")


def _local(name: str) -> str:
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 else ""


def _depth(entries) -> list[Finding]:
    blocks: dict[int, list[tuple[PlanEntry, float]]] = {}
    for e in entries:
        m = _LAYER.search(e.name)
        d = _draw(e)
        if m is None or d is None or d[0] not in ("normal", "truncated_normal") or e.local != "weight":
            continue
        blocks.setdefault(int(m.group(1)), []).append((e, d[2]))
    if not blocks:
        return []
    n_layers = max(blocks) + 1
    out = []
    for layer, items in sorted(blocks.items()):
        ins = [(e, s) for e, s in items if _local(e.name) in IN_PROJ]
        outs = [(e, s) for e, s in items if _local(e.name) in RESIDUAL_OUT]
        if not ins or not outs:
            continue
        base = max((s for _, s in ins), key=lambda s: sum(math.isclose(s, t, rel_tol=1e-9) for _, t in ins))
        once = {
            f"sqrt(2L)={math.sqrt(2 * n_layers):.4g}": math.sqrt(2 * n_layers),
            f"sqrt(L)={math.sqrt(n_layers):.4g}": math.sqrt(n_layers),
            f"sqrt(2(l+1))={math.sqrt(2 * (layer + 1)):.4g}": math.sqrt(2 * (layer + 1)),
            f"sqrt(l+1)={math.sqrt(layer + 1):.4g}": math.sqrt(layer + 1),
        }
        twice = {f"{a} x {b}": x * y for a, x in once.items() for b, y in once.items()}
        residual_std = None
        for e, s in outs:
            r = base / s
            if r <= 1 + 1e-9:
                continue
            if any(math.isclose(r, f, rel_tol=1e-6) for f in once.values()):
                residual_std = s
                continue
            hit = next((k for k, f in twice.items() if math.isclose(r, f, rel_tol=1e-6)), None)
            if hit is not None:
                once_std = base / math.sqrt(2 * n_layers)
                out.append(
                    Finding(
                        "depth-scaled-twice",
                        "error",
                        e.name,
                        f"std {s:.6g} = block input std {base:.6g} / {r:.6g}, and {r:.6g} = {hit} (L={n_layers}, "
                        f"l={layer}): "
                        f"two depth factors, not one (rule: {e.rule})",
                        f"scale the residual projection once: std {once_std:.6g} (= {base:.6g}/sqrt(2L))",
                    )
                )
            else:
                residual_std = residual_std or s
        if residual_std is None:
            continue
        for e, s in ins:
            if math.isclose(s, residual_std, rel_tol=1e-9) and not math.isclose(s, base, rel_tol=1e-9):
                gated = _local(e.name) in _GATED_VALUE
                out.append(
                    Finding(
                        "depth-scaled-off-residual",
                        "warning",
                        e.name,
                        f"std {s:.6g} is this block's residual-output std, while its other input projections have "
                        f"{base:.6g}; "
                        + (
                            "it is the SwiGLU value projection: its output is multiplied by the gate and goes through "
                            "the "
                            "down projection, so it does not write to the residual stream"
                            if gated
                            else "an input projection does not write to the residual stream"
                        )
                        + f" (rule: {e.rule})",
                        f"give it the input-projection std {base:.6g}; depth scaling belongs to the projection that "
                        f"writes "
                        "the residual stream (torchtitan PR#3722)",
                    )
                )
    return out


# ----------------------------------------------------------------------------- model-side checks


def _dtensor(model, entries) -> list[Finding]:
    out: list[Finding] = []
    if model is None:
        return out
    params = dict(model.named_parameters())
    for e in entries:
        t = params.get(e.name)
        if t is None or not is_dtensor(t):
            continue
        local = tuple(t.to_local().shape)
        if tuple(e.shape) != tuple(t.shape):
            out.append(
                Finding(
                    "dtensor-local-fans",
                    "error",
                    e.name,
                    f"the plan has shape {e.shape}, the sharded parameter's global shape is {tuple(t.shape)}",
                    "resolve the plan on the model with its DTensor parameters (global shapes), not on local shards",
                )
            )
            continue
        d_global = _draw(e)
        if d_global is None or d_global[0] != "normal" or local == tuple(e.shape) or t.to_local().is_meta:
            continue
        d_local = _record(e.scheme, local) if e.scheme is not None else None
        if d_local is None or math.isclose(d_local[2], d_global[2], rel_tol=0.05):
            continue
        values = t.to_local().detach().double().flatten()
        n = values.numel()
        if n < 1000:
            continue
        measured = float(values.std())
        se = d_global[2] / math.sqrt(2 * n)
        z = abs(measured - d_global[2]) / se
        if z > Z_LIMIT and abs(measured - d_local[2]) < abs(measured - d_global[2]):
            out.append(
                Finding(
                    "dtensor-local-fans",
                    "error",
                    e.name,
                    f"its local shard {local} has std {measured:.5g}: {z:.0f} standard errors from the std "
                    f"{d_global[2]:.5g} "
                    f"that {e.init} gives the global shape {tuple(t.shape)}, and close to the {d_local[2]:.5g} it "
                    f"gives the "
                    "local shape: the fans were taken from the shard",
                    "compute fans from the global shape (DTensor.shape), e.g. fanin.apply(model, rules, seed=...), "
                    "which draws each shard's part of the global init",
                )
            )
    return out


_FAN_BASED = ("kaiming", "xavier", "glorot", "lecun", "he_", "variance_scaling")


def _stacked(model, entries) -> list[Finding]:
    """Stacked expert weights drawn with fans of the whole 3-D storage instead of one expert's matrix."""
    if model is None:
        return []
    from fanin.rules.blocks import block_fans, detect, is_blocked

    experts = {d.name: d for d in detect(model) if d.layout.kind == "experts"}
    out = []
    for e in entries:
        d = experts.get(e.name)
        if d is None or e.scheme is None or is_blocked(e.scheme) or e.fans is None:
            continue
        if not any(k in e.scheme.name for k in _FAN_BASED):
            continue
        per_expert = block_fans(d.layout, e.shape)
        if (e.fans.fan_in, e.fans.fan_out) == (per_expert.fan_in, per_expert.fan_out):
            continue
        out.append(
            Finding(
                "fans-from-storage",
                "warning",
                e.name,
                f"{e.init} on stacked experts {e.shape} ({d.evidence}) takes fans ({e.fans.fan_in:g}, "
                f"{e.fans.fan_out:g}) "
                f"from the 3-D storage; one expert's matrix has ({per_expert.fan_in:g}, {per_expert.fan_out:g})",
                f"declare the layout: Rule({e.name!r}, {str(e.scheme)!r}, "
                f"fans={f'experts:{d.layout.expert_layout}'!r})",
            )
        )
    return out


def _uninitialized(model, p: Plan | None, unmatched: list[str]) -> list[Finding]:
    out = [
        Finding("uninitialized", "error", name, "no rule covers it", "add a rule for it, or a leftovers policy")
        for name in unmatched
    ]
    if p is None:
        return out
    tensors = {}
    if model is not None:
        tensors = {n: t for n, t in model.named_parameters()}
    for e in p:
        if e.action != "keep" or e.kind != "parameter":
            continue
        t = tensors.get(e.name)
        if e.rule.startswith("created by torch.empty"):
            out.append(
                Finding(
                    "uninitialized",
                    "error",
                    e.name,
                    f"{e.rule}: it holds whatever memory it got",
                    "initialize it in the init code, or give it a rule",
                )
            )
        elif t is not None and t.is_meta:
            out.append(
                Finding(
                    "uninitialized",
                    "error",
                    e.name,
                    "kept by the plan, and on the meta device: it has no values",
                    "give it a rule, or leftovers='reset_parameters'",
                )
            )
        elif t is not None and t.is_floating_point() and not _local_values(t).isfinite().all():
            out.append(
                Finding(
                    "uninitialized", "error", e.name, "kept by the plan, and holds non-finite values", "give it a rule"
                )
            )
    return out


def _local_values(t: torch.Tensor) -> torch.Tensor:
    return cast(Any, t).to_local().detach() if is_dtensor(t) else t.detach()


def _buffers(model, p: Plan | None) -> list[Finding]:
    out: list[Finding] = []
    if model is None:
        return out
    from fanin.planning.materializing import BUFFER_HOOKS

    planned = {e.name for e in p} if p is not None else set()
    everything = [*model.parameters(), *model.buffers()]
    all_meta = bool(everything) and all(t.is_meta for t in everything)
    for _module_name, module, own in collect_targets(model):
        hook = next((h for h in BUFFER_HOOKS if callable(getattr(module, h, None))), None)
        for target, tensor, _aliases in own:
            if target.kind != "buffer":
                continue
            name = target.name
            if tensor.is_meta:
                if all_meta and (name in planned or hook is not None):
                    continue  # a meta model that materialize will fill
                where = "the model is on meta and" if all_meta else "after materialization it is still on meta:"
                out.append(
                    Finding(
                        "buffer-not-initialized",
                        "error",
                        name,
                        f"{where} no rule and no module hook ({' or '.join(BUFFER_HOOKS)}) fills it",
                        "add a rule with kind='buffer', or define reset_buffers() on its module",
                    )
                )
                continue
            values = _local_values(tensor)
            if values.is_floating_point() and values.numel() and not values.isfinite().all():
                bad = int((~values.isfinite()).sum())
                out.append(
                    Finding(
                        "buffer-not-initialized",
                        "error",
                        name,
                        f"{bad} of its {values.numel()} values are not finite",
                        "recompute it (its module's reset_buffers(), or the model's init entry point)",
                    )
                )
                continue
            if target.local.endswith("inv_freq") and values.is_floating_point() and values.numel() > 1:
                v = values.double().flatten()
                ok = bool((v > 0).all()) and float(v.max()) <= 1.0 + 1e-6 and bool((v[1:] <= v[:-1]).all())
                if not ok:
                    out.append(
                        Finding(
                            "buffer-not-initialized",
                            "error",
                            name,
                            f"inv_freq should be theta^(-2i/d): positive, at most 1, decreasing; it has min "
                            f"{float(v.min()):.4g}, "
                            f"max {float(v.max()):.4g}",
                            "recompute it after materialization (Hugging Face: the rotary module's rope init; "
                            "fanin.capture(model) records the values and materialize copies them)",
                        )
                    )
    return out


def _tied(model, p: Plan) -> list[Finding]:
    out: list[Finding] = []
    if model is None or not len(p.rules):
        return out
    modules = dict(model.named_modules())
    for e in p:
        if not e.aliases or e.rule_index is None:
            continue
        for alias in e.aliases:
            module_name, _, local = alias.rpartition(".")
            module = modules.get(module_name)
            if module is None:
                continue
            tensor = (module._parameters if e.kind == "parameter" else module._buffers).get(local)
            if tensor is None:
                continue
            target = Target.of(module, alias, local, e.kind, tensor)
            for i, rule in enumerate(p.rules):
                if isinstance(rule.init, FrameworkDefaults):
                    continue
                if rule.covers_kind(target) and rule.select.matches(target):
                    scheme = rule.init.resolve(module, 1)
                    if (
                        i != e.rule_index
                        and scheme is not None
                        and e.scheme is not None
                        and str(scheme) != str(e.scheme)
                    ):
                        out.append(
                            Finding(
                                "tied-different-schemes",
                                "info" if _padding_only(scheme, e.scheme) else "warning",
                                e.name,
                                f"{e.name} and {alias} are one tensor; the plan initializes it by rule #{e.rule_index} "
                                f"({e.scheme}), but rule #{i}, which matches {alias}, says {scheme}",
                                f"decide which one it is and make the rules agree (e.g. a rule for {e.name} first)",
                            )
                        )
                    break
    return out


def _padding_only(a, b) -> bool:
    """Two schemes that differ only in a padding row being zero (an embedding tied to an output layer)."""
    pair = {a.name, b.name}
    if pair != {"normal", "fanin.padded_normal"}:
        return False
    x, y = a.arguments, b.arguments
    return (x["mean"], x["std"]) == (y["mean"], y["std"])


_MULTIPLICATIVE = ("weight",)


def _zero_chain(model, p: Plan) -> list[Finding]:
    out: list[Finding] = []
    if model is None:
        return out
    zero = {e.name for e in p if e.scheme is not None and str(e.scheme) == "zeros" and e.local in _MULTIPLICATIVE}
    for parent_name, parent in model.named_modules():
        previous = None
        for child_name, child in parent.named_children():
            w = child._parameters.get("weight")
            if w is None:
                continue
            full = f"{parent_name}.{child_name}.weight" if parent_name else f"{child_name}.weight"
            if full in zero and previous is not None and previous in zero:
                out.append(
                    Finding(
                        "zero-blocks-gradient",
                        "error",
                        full,
                        f"{previous} and {full} are both 0 and follow each other in {parent_name or 'the model'}: the "
                        "gradient of each is the other's output times the upstream gradient, so both stay 0 and the "
                        "branch never trains",
                        f"zero only the last of them (Fixup: the last convolution; zero_init_residual: the last "
                        f"BatchNorm's weight), and initialize {previous} normally",
                    )
                )
            previous = full
    return out


# ------------------------------------------------------------------------------------------ lint


def lint(model: torch.nn.Module | Plan | None = None, rules: object = None) -> LintReport:
    """Lint the init of ``model`` by ``rules`` (a preset, rules, or a :class:`Plan`).

    The checks are listed in the module docstring. Parameters no rule covers are reported
    (``uninitialized``) instead of raised.

    Args:
        model: The model, or a plan alone (``lint(plan)``, the same as ``lint(None, plan)``), or
            ``None``: a plan alone gets the checks that need no model.
        rules: Rules as :func:`fanin.plan` takes them (resolved on ``model``), a :class:`Plan`, or
            ``None`` to lint the model's own init (:func:`fanin.planning.capturing.capture`).

    Returns:
        The findings, errors first.

    Raises:
        TypeError: ``model`` is neither a ``torch.nn.Module`` nor a plan, or neither a model nor
            a plan is given.
        RuleError: The rules cannot be resolved on ``model`` (other than parameters matching no
            rule).
        CaptureError: The model's own init cannot be captured.

    Examples:
        >>> import torch
        >>> report = lint(torch.nn.Linear(256, 256), {"weight": "normal(std=0.00390625)", "bias": "zeros"})
        >>> [(f.check, f.severity) for f in report], report.findings[0].fix
        ([('std-looks-like-variance', 'warning')], 'the std is 0.0625')
    """
    if isinstance(model, Plan) and rules is None:
        model, rules = None, model
    if model is not None and not isinstance(model, torch.nn.Module):
        raise TypeError(f"lint needs a torch.nn.Module (or a Plan), got model={model!r} ({type(model).__name__})")
    unmatched: list[str] = []
    if isinstance(rules, Plan):
        p: Plan = rules
    elif rules is None:
        if model is None:
            raise TypeError("lint needs a model, a plan, or both; got neither")
        from fanin.planning.capturing import capture

        p = capture(model)
    else:
        ruleset = as_rules(rules, model)
        module = cast(torch.nn.Module, model)  # plan() refuses anything else itself
        try:
            p = plan(module, ruleset)
        except RuleError as err:
            if "match no rule" not in str(err):
                raise
            p = plan(module, ruleset, leftovers="keep")
            unmatched = [e.name for e in p if e.rule == "leftovers=keep"]
    entries = [e for e in p if e.action == "scheme"]
    findings: list[Finding] = []
    findings += _uninitialized(model, p, unmatched)
    findings += _buffers(model, p)
    findings += _dtensor(model, entries)
    findings += _stacked(model, entries)
    findings += _depth(entries)
    findings += _zero_chain(model, p)
    findings += _tied(model, p)
    findings += _variance(entries)
    findings += _truncation(entries)
    opaque = getattr(p, "opaque", ())
    findings += [
        Finding(
            "opaque",
            "warning",
            name,
            f"the captured init wrote it in a way fanin cannot read: {why}",
            "applied, it is replayed by its module's own method; write it with a torch.nn.init scheme to get a plan",
        )
        for name, why in opaque
    ]
    order = {s: i for i, s in enumerate(SEVERITIES)}
    findings.sort(key=lambda f: order[f.severity])
    name = p.rules.name or ("captured" if getattr(p, "entry_point", "") else "rules")
    return LintReport(tuple(findings), model=type(model).__name__ if model is not None else p.model, rules=str(name))
