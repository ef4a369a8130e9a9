r"""``fanin.audit(source)``: how every tensor of a model or checkpoint looks initialized.

``source`` is an ``nn.Module``, a state_dict (any mapping of names to tensors, nested dicts
flattened) or a checkpoint path (:mod:`fanin.auditing.sources`). Each tensor is read once, in
chunks (:mod:`fanin.auditing.scanning`), and inferred (:mod:`fanin.auditing.inference`). Tensors sharing
storage (tied weights) are audited once and listed as tied; tensors that cannot be audited are
listed in :attr:`AuditReport.skipped` with the reason.

**Layouts**: for a module, each weight's layout is read from its module's type (PyTorch layers
store (out, in, \*kernel); transformers' ``Conv1D`` (GPT-2) stores (in, out) and is audited
transposed); for a state_dict or a checkpoint the ``layout`` argument says (default ``torch``).
A 1-D tensor whose sibling ``weight`` has 2 or more dims is audited at that weight's fans too,
which is how PyTorch initializes biases (:math:`\mathcal U(\pm 1/\sqrt{\text{fan\_in}})`).
Equivalent names list PyTorch's first, except for a keras-layout checkpoint.

**Small tensors** (fewer than :data:`POOL_BELOW` values, a continuous answer) that share role,
module type, parameter, shape, fans and dtype (the biases of every ``Linear(64, 32)``) are pooled
when Levene's (scale) and Kruskal-Wallis's (location) tests do not reject their homogeneity
(Bonferroni p >= 0.001): the pool is inferred as one sample, and each member that passes the
pool's first hypothesis takes the pool's answer (``pooled`` says with how many values).

**Training alarms** control the family-wise error rate over the audited tensors: Holm's step-down
procedure at ``alpha`` (default 0.01) on each tensor's evidence p-value
(:mod:`fanin.auditing.evidence`), so a checkpoint of fresh tensors is called trained anywhere with
probability at most ``alpha``. A norm layer that is not constant is trained regardless (a rule).

Examples:
    >>> import torch, fanin
    >>> torch.manual_seed(0) is not None
    True
    >>> report = audit(torch.nn.Linear(64, 32))
    >>> [r.inference.label for r in report.records]
    ['kaiming_uniform(a=sqrt(5))', "kaiming_uniform(a=sqrt(5)) at the layer weight's fans"]
    >>> report
    <AuditReport 'Linear': 2 tensors, 2 fresh, 0 look trained>
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from fanin.auditing.candidates import NOTES as _NOTES
from fanin.auditing.candidates import framework_rank, native_of, spec_framework
from fanin.auditing.dtypes import dtype_name
from fanin.auditing.evidence import holm
from fanin.auditing.hypotheses import PARAMS, Dist, SampleView, assess
from fanin.auditing.inference import ALPHA_FIT, Context, Inference, Match, Summary, analyse, decide
from fanin.auditing.roles import (
    ROLES,
    layer_count,
    name_pattern,
    parameter_kind,
    role_of,
)
from fanin.auditing.scanning import Scan, scan
from fanin.auditing.sources import Source, SourceInfo, open_source
from fanin.errors import describe_choice
from fanin.formulas.fans import compute_fans

__all__ = ["ALPHA", "POOL_BELOW", "AuditReport", "Pool", "RoleGroup", "TensorRecord", "audit", "audit_tensor"]

#: Family-wise level of the training alarms over one audit.
ALPHA = 0.01
#: Tensors with fewer values than this are pooled with their like (see the module docstring).
POOL_BELOW = 4096
_ALPHA_POOL = 1e-3
_CONTINUOUS = ("uniform", "normal", "truncated_normal", "unknown")

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TensorRecord:
    """One audited tensor. ``fans`` is (fan_in, fan_out) or ``None`` (fewer than 2 dims and no
    weight to take them from); ``fans_from`` names the weight a bias's fans come from; ``role``
    what it is for (:mod:`fanin.auditing.roles`); ``tied`` the names sharing its storage;
    ``pooled`` the pool whose answer it took."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    module_type: str | None
    layout: str
    fans: tuple[float, float] | None
    fans_from: str | None
    summary: Summary
    inference: Inference
    role: str = "other"
    tied: tuple[str, ...] = ()
    pooled: str | None = None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "module_type": self.module_type,
            "layout": self.layout,
            "fans": None if self.fans is None else {"fan_in": self.fans[0], "fan_out": self.fans[1]},
            "fans_from": self.fans_from,
            "role": self.role,
            "tied": list(self.tied),
            "pooled": self.pooled,
            "summary": self.summary.to_dict(),
            "inference": self.inference.to_dict(),
        }


@dataclass(frozen=True)
class Pool:
    """Small tensors inferred together: their names, the pooled values' count, the homogeneity
    p-value and the pooled inference."""

    label: str
    members: tuple[str, ...]
    numel: int
    homogeneity_p: float
    inference: Inference

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "members": list(self.members),
            "numel": self.numel,
            "homogeneity_p": self.homogeneity_p,
            "inference": self.inference.to_dict(),
        }


@dataclass(frozen=True)
class RoleGroup:
    """Tensors of one role with the same answer: the line a paper's summary shows."""

    role: str
    patterns: tuple[str, ...]
    count: int
    label: str
    description: str
    note: str
    names: tuple[str, ...]
    trained: bool
    relation: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__, patterns=list(self.patterns), names=list(self.names))


@dataclass(frozen=True)
class AuditReport:
    """What :func:`audit` found: every audited tensor of one source, in the source's order.

    ``print(report)`` shows the tables (:mod:`fanin.report.audit`); ``to_dict()`` is the JSON form.

    Attributes:
        source: The source's label (the module's class, ``"state_dict"`` or the path).
        layout_note: How the tensors' layout was decided (read from the modules, or assumed).
        records: One :class:`TensorRecord` per audited tensor.
        skipped: Name -> why the tensor was not audited (not floating-point, unreadable, ...).
        tied: Alias -> the name audited in its place (tensors sharing storage).
        alpha: The family-wise level of the training alarms.
        pools: The small tensors inferred together (:class:`Pool`).

    Examples:
        >>> report = audit(torch.nn.Linear(4, 4))
        >>> report.source, [r.name for r in report.records], report.trained
        ('Linear', ['weight', 'bias'], ())
    """

    source: str
    layout_note: str
    records: tuple[TensorRecord, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    tied: dict[str, str] = field(default_factory=dict)
    alpha: float = ALPHA
    pools: tuple[Pool, ...] = ()

    @property
    def trained(self) -> tuple[TensorRecord, ...]:
        return tuple(r for r in self.records if r.inference.trained)

    @property
    def headline(self) -> str:
        """One line: how many tensors, what they look like, how many look trained."""
        counts: dict[str, int] = {}
        for r in self.records:
            if not r.inference.trained and r.inference.family != "unknown":
                counts[r.inference.family] = counts.get(r.inference.family, 0) + 1
        trained = len(self.trained)
        # An unknown tensor (no hypothesis passes, or discrete values) is neither called fresh nor trained.
        unknown = sum(1 for r in self.records if not r.inference.trained and r.inference.family == "unknown")
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
        fresh = len(self.records) - trained - unknown
        n = len(self.records)
        text = f"{n} tensor{'s' * (n != 1)}: {fresh} fresh" + (f" ({parts})" if parts else "")
        if unknown:
            text += f", {unknown} unknown (no initialization fits)"
        if trained:
            text += f", {trained} look trained (family-wise level {self.alpha:g})"
        else:
            text += f"; no evidence of training (family-wise level {self.alpha:g})"
        extra = [f"{len(self.tied)} tied"] * bool(self.tied) + [f"{len(self.skipped)} skipped"] * bool(self.skipped)
        return text + (f"; {', '.join(extra)}" if extra else "")

    @property
    def groups(self) -> tuple[RoleGroup, ...]:
        """The summary by role (:func:`role_groups`)."""
        return role_groups(self.records)

    def record(self, name: str) -> TensorRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(describe_choice("tensor", name, [r.name for r in self.records]))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "layout_note": self.layout_note,
            "headline": self.headline,
            "alpha": self.alpha,
            "groups": [g.to_dict() for g in self.groups],
            "records": [r.to_dict() for r in self.records],
            "skipped": dict(self.skipped),
            "tied": dict(self.tied),
            "pools": [p.to_dict() for p in self.pools],
        }

    def __repr__(self) -> str:
        trained = len(self.trained)
        unknown = sum(1 for r in self.records if not r.inference.trained and r.inference.family == "unknown")
        n = len(self.records)
        return (
            f"<AuditReport {self.source!r}: {n} tensor{'s' * (n != 1)}, {n - trained - unknown} fresh, "
            + (f"{unknown} unknown, " if unknown else "")
            + f"{trained} look trained>"
        )

    def __str__(self) -> str:
        from fanin.report.audit import render_audit_text

        return render_audit_text(self)


# --------------------------------------------------------------------------- one tensor


def _fans_for(name: str, shape: tuple[int, ...], info: SourceInfo, source: Source):
    """(fans, fans_from, fans_shape): the tensor's own fans, or a 1-D tensor's weight's."""
    torch_shape = tuple(reversed(shape)) if info.transpose else shape
    if len(shape) >= 2:
        f = compute_fans(torch_shape)
        return (f.fan_in, f.fan_out), None, None
    prefix = name.rsplit(".", 1)[0] + "." if "." in name else ""
    weight = prefix + "weight"
    wshape = source.shapes.get(weight)
    if len(shape) == 1 and weight != name and wshape is not None and len(wshape) >= 2:
        winfo = source.infos.get(weight, info)
        wshape = tuple(reversed(wshape)) if winfo.transpose else tuple(wshape)
        f = compute_fans(wshape)
        return (f.fan_in, f.fan_out), weight, wshape
    return None, None, None


def _native(module_type: str | None, layout: str) -> str:
    """The native framework of the checkpoint's layout, PyTorch's for a module's tensor (a Conv1D
    module stored (in, out) is PyTorch code): Keras names first only for a keras-layout checkpoint."""
    return native_of(layout if module_type is None else "torch")


def audit_tensor(name: str, tensor: torch.Tensor, info: SourceInfo, source: Source) -> tuple[TensorRecord, Scan | None]:
    """The record of one tensor (``trained`` not yet decided) and its scan."""
    shape = tuple(tensor.shape)
    fans, fans_from, fans_shape = _fans_for(name, shape, info, source)
    values = tensor.t() if info.transpose and tensor.dim() == 2 else tensor
    ctx = Context(
        fans_shape,
        "the layer weight" if fans_shape else None,
        name,
        info.module_type,
        _native(info.module_type, info.layout),
    )
    inference, s = analyse(values, ctx)
    summary = (
        Summary.of(s, tensor.numel())
        if s is not None
        else Summary(tensor.numel(), math.nan, math.nan, math.nan, math.nan, math.nan, math.nan)
    )
    record = TensorRecord(
        name,
        shape,
        dtype_name(tensor.dtype),
        info.module_type,
        info.layout,
        fans,
        fans_from,
        summary,
        inference,
        role_of(name, info.module_type),
    )
    return record, s


def audit(
    source: object,
    *,
    layout: str = "torch",
    names: list[str] | None = None,
    progress: Progress | None = None,
    alpha: float = ALPHA,
) -> AuditReport:
    """Audit every floating-point tensor of ``source`` (or only ``names``); see the module docstring.

    Args:
        source: An ``nn.Module``, a state_dict (any mapping of names to tensors, nested dicts
            flattened), a checkpoint path (``.safetensors``, ``.pt``, ``.pth``, ``.bin``, ``.ckpt``,
            ``.pkl``) or a Hugging Face model directory (:func:`fanin.auditing.sources.open_source`).
        layout: ``"torch"`` or ``"keras"``: the layout assumed where no module says it (state_dicts
            and checkpoints).
        names: Audit only these tensors (each must be in ``source``); they are audited in the
            source's order.
        progress: ``progress(i, total, name)`` is called before each tensor (the CLI draws a bar
            with it).
        alpha: The family-wise level of the training alarms, in (0, 1).

    Returns:
        Every audited tensor in the source's order, with the skipped and tied tensors and the
        pooled small ones.

    Raises:
        ValueError: ``alpha`` is not in (0, 1), or ``layout`` is unknown.
        KeyError: A name in ``names`` is not a tensor of ``source``.
        CheckpointError: A checkpoint cannot be read as a set of named tensors
            (:class:`UnsafeCheckpointError` for a pickle the weights-only loader refuses).
        TypeError: ``source`` is none of the accepted kinds.

    Examples:
        >>> report = audit({"w": torch.zeros(8, 8), "b": torch.ones(8)})
        >>> report
        <AuditReport 'state_dict': 2 tensors, 2 fresh, 0 look trained>
        >>> [r.inference.label for r in report.records]
        ['zeros', 'ones']
    """
    if not (isinstance(alpha, (int, float)) and not isinstance(alpha, bool) and 0 < alpha < 1):
        raise ValueError(f"alpha is the family-wise level of the training alarms, in (0, 1); got alpha={alpha!r}")
    src = open_source(source, layout=layout)
    chosen = list(src.names)
    if names is not None:
        for n in names:
            if n not in src.shapes:
                raise KeyError(describe_choice("tensor", n, src.names))
        wanted = set(names)
        chosen = [n for n in src.names if n in wanted]
    records: list[TensorRecord] = []
    small: dict[str, torch.Tensor] = {}
    skipped: dict[str, str] = {}
    tied: dict[str, str] = {}
    for i, name in enumerate(chosen):
        if progress is not None:
            progress(i, len(chosen), name)
        if name in src.skipped:
            skipped[name] = src.skipped[name]
            continue
        if name in src.aliases:
            tied[name] = src.aliases[name]
            continue
        tensor = src.get(name)  # readable: a source lists every tensor it cannot read in skipped
        record, _ = audit_tensor(name, tensor, src.infos[name], src)
        records.append(record)
        if record.inference.family in _CONTINUOUS and 0 < tensor.numel() < POOL_BELOW:
            small[name] = tensor.detach().clone()
        del tensor  # one tensor in memory at a time when streaming
    by_name = {r.name: r for r in records}
    for alias, target in tied.items():
        if target in by_name:
            by_name[target] = replace(by_name[target], tied=(*by_name[target].tied, alias))
    records = [by_name[r.name] for r in records]
    records, pools = _pool(records, small, src)
    records = _consensus(records)
    return AuditReport(src.label, src.layout_note, tuple(_alarms(records, alpha)), skipped, tied, alpha, tuple(pools))


def _consensus(records: list[TensorRecord]) -> list[TensorRecord]:
    """Among a first match's equivalent names (the same distribution at that shape), the one that
    the most tensors of the source share comes first: a square conv's ``kaiming_normal`` is also
    ``kaiming_normal(mode='fan_out')``, which the model's other convs single out (ties keep the
    native framework first)."""
    counts: dict[str, int] = {}
    for r in records:
        if r.inference.matches:
            for n in set(r.inference.matches[0].names):
                counts[n] = counts.get(n, 0) + 1
    out = []
    for r in records:
        i = r.inference
        if not i.matches or len(i.matches[0].names) < 2:
            out.append(r)
            continue
        first = i.matches[0]
        # Within the native framework's names only: a torch module's xavier_uniform stays first
        # even where more tensors share keras.glorot_uniform (a Bilinear's 3-D weight has it alone).
        rank = _framework_rank(r)
        names = tuple(sorted(first.names, key=lambda n: (rank(n), -counts.get(n, 0))))  # stable: ties keep their order
        if names[0] == first.scheme:
            out.append(r)
            continue
        note = first.note if not _NOTES.get(names[0]) else _NOTES[names[0]]
        moved = replace(first, scheme=names[0], names=names, note=note)
        out.append(replace(r, inference=replace(i, matches=(moved, *i.matches[1:]))))
    return out


def _framework_rank(r: TensorRecord):
    """The rank of a name's framework in the record's native order
    (:data:`~fanin.auditing.candidates.FRAMEWORK_ORDER`)."""
    framework = framework_rank(_native(r.module_type, r.layout))
    return lambda spec: framework(spec_framework(spec))


def _alarms(records: list[TensorRecord], alpha: float) -> list[TensorRecord]:
    """Holm's procedure over the records' evidence p-values."""
    rejected = holm([r.inference.evidence_p for r in records], alpha)
    return [replace(r, inference=decide(r.inference, alpha, flag)) for r, flag in zip(records, rejected, strict=True)]


# --------------------------------------------------------------------------- pooling small tensors


def _pool_key(r: TensorRecord):
    return (r.role, parameter_kind(r.name), r.module_type, r.shape, r.fans, r.dtype)


def _homogeneity(parts: list[np.ndarray]) -> float:
    from scipy import stats

    if any(np.ptp(p) == 0 for p in parts):
        return 0.0
    p_scale = float(stats.levene(*parts, center="median").pvalue)
    p_loc = float(stats.kruskal(*parts).pvalue)
    return min(1.0, 2 * min(p_scale, p_loc))


def _pool(records: list[TensorRecord], small: dict[str, torch.Tensor], src: Source):
    groups: dict[tuple, list[TensorRecord]] = {}
    for r in records:
        if r.name in small and not any(e.p_value is None for e in r.inference.evidence):
            groups.setdefault(_pool_key(r), []).append(r)
    replaced: dict[str, TensorRecord] = {}
    pools = []
    for members in groups.values():
        if len(members) < 2:
            continue
        tensors = [small[m.name] for m in members]
        p_h = _homogeneity([t.double().reshape(-1).numpy() for t in tensors])
        if p_h < _ALPHA_POOL:
            continue
        first = members[0]
        info = src.infos[first.name]
        _, _, fans_shape = _fans_for(first.name, first.shape, info, src)
        pooled_values = torch.cat([t.reshape(-1) for t in tensors])
        ctx = Context(
            fans_shape,
            "the layer weight" if fans_shape else None,
            None,
            first.module_type,
            _native(info.module_type, info.layout),
            shape=tuple(reversed(first.shape)) if info.transpose and len(first.shape) == 2 else first.shape,
        )
        pooled, _ = analyse(pooled_values, ctx)
        label = _pool_label(first, len(members))
        pools.append(Pool(label, tuple(m.name for m in members), int(pooled_values.numel()), p_h, pooled))
        dist = _dist_of(pooled)
        if dist is None:
            continue
        for m, t in zip(members, tensors, strict=True):
            s = scan(t)
            fit = assess(dist, s, SampleView.of(s, t.dtype), t.dtype)
            if fit.p < ALPHA_FIT:
                continue
            note = (
                f"pooled with {len(members) - 1} other {label} ({pooled_values.numel()} values, homogeneity "
                f"p={p_h:.2g}); alone: {m.inference.label} ({m.inference.confidence})"
            )
            inference = replace(
                pooled,
                evidence=m.inference.evidence,
                evidence_p=m.inference.evidence_p,
                n=m.inference.n,
                notes=(*m.inference.notes, note),
                trained=False,
                reason=f"{pooled.reason}; {note}",
            )
            replaced[m.name] = replace(m, inference=inference, pooled=label)
    return [replaced.get(r.name, r) for r in records], pools


def _dist_of(inference: Inference) -> Dist | None:
    """The first hypothesis of a continuous inference as a distribution (its ``distribution``)."""
    if inference.family not in PARAMS or not inference.matches:
        return None
    return Dist(inference.family, tuple(inference.distribution[p] for p in PARAMS[inference.family]))


def _pool_label(r: TensorRecord, count: int) -> str:
    kind = parameter_kind(r.name)
    where = r.module_type or r.role
    if r.fans is not None:
        where += f"({r.fans[0]:g}->{r.fans[1]:g})"
    plural = "" if count == 1 else ("es" if kind.endswith("s") else "s")
    return f"{where} {kind}{plural}"


# --------------------------------------------------------------------------- summary by role


def role_groups(records: tuple[TensorRecord, ...] | list[TensorRecord]) -> tuple[RoleGroup, ...]:
    r"""Records grouped by (role, answer): the lines of a report's summary, roles in
    :data:`~fanin.auditing.roles.ROLES` order, larger groups first.

    Tensors of one name pattern whose fitted literals differ only by rounding (``normal(std=0.007)``
    and ``normal(std=0.0071)``) share one line when one of their literals is within 4 standard
    errors of every member's std. A fitted normal std that is another group's std over
    :math:`\sqrt{2L}` or :math:`\sqrt L` (L the model's number of blocks, within 4 standard errors)
    is noted as residual scaling (GPT-2's ``c_proj``)."""
    answers = _summary_answers(list(records))
    buckets: dict[tuple, list[TensorRecord]] = {}
    for r in records:
        label, description, _ = answers[r.name]
        key = (r.role, r.module_type if r.role == "other" else None, label, description)
        buckets.setdefault(key, []).append(r)
    layers = layer_count([r.name for r in records])
    stds = _literal_stds(buckets, answers)
    out = []
    for (role, module_type, label, description), members in buckets.items():
        first_inf = members[0].inference
        _, _, match = answers[members[0].name]
        patterns = tuple(dict.fromkeys(name_pattern(m.name) for m in members))
        relation = _relation(members, match, stds, layers) if match is not None else ""
        out.append(
            RoleGroup(
                role if module_type is None else f"{role} ({module_type})",
                patterns,
                len(members),
                label,
                description,
                match.note if match else "",
                match.names if match else (),
                first_inf.trained,
                relation,
            )
        )
    out.sort(key=lambda g: (_role_rank(g.role), -g.count, g.label))
    return tuple(out)


def _summary_answers(records: list[TensorRecord]) -> dict[str, tuple[str, str, Match | None]]:
    """name -> (label, description, first match or None) for the summary, with literals that
    differ by rounding within a name pattern unified (see :func:`role_groups`)."""
    out: dict[str, tuple[str, str, Match | None]] = {}
    for r in records:
        i = r.inference
        if i.trained or not i.matches:
            out[r.name] = ("looks trained" if i.trained else i.family, "looks trained" if i.trained else i.family, None)
        else:
            out[r.name] = (i.label, i.matches[0].description, i.matches[0])
    by_pattern: dict[tuple, list[tuple[TensorRecord, Match]]] = {}
    for r in records:
        m = out[r.name][2]
        if m is not None and m.fitted and m.family in ("normal", "uniform"):
            by_pattern.setdefault((name_pattern(r.name), r.shape, m.family), []).append((r, m))
    for members in by_pattern.values():
        matches = {m.scheme: m for _, m in members}
        if len(matches) < 2:
            continue
        for m in sorted(matches.values(), key=lambda m: (len(m.description), m.description)):
            std = _match_std(m)
            if std and all(_std_close(r, std) for r, _ in members):
                for r, _ in members:
                    out[r.name] = (m.label, m.description, m)
                break
    return out


def _match_std(m: Match) -> float | None:
    """The std a fitted normal or symmetric uniform literal describes (from its description)."""
    try:
        if m.family == "normal":
            mean, std = (float(v) for v in m.description[2:-1].split(","))
            return std if mean == 0 else None
        if m.description.startswith("U(±"):
            return float(m.description[3:-1]) / math.sqrt(3)
    except ValueError:
        return None
    return None


def _std_close(r: TensorRecord, std: float) -> bool:
    s = r.summary
    se = math.sqrt(max(s.kurtosis + 2, 0.1) / (4 * max(s.numel, 1)))
    return abs(s.std / std - 1) <= 4 * se + 1e-4


def _role_rank(role: str) -> int:
    base = role.split(" (")[0]
    return ROLES.index(base) if base in ROLES else len(ROLES)


def _literal_stds(buckets, answers) -> list[tuple[float, int]]:
    """(std, tensor count) of the fitted zero-mean normal answers, most common first."""
    found: dict[float, int] = {}
    for members in buckets.values():
        m = answers[members[0].name][2]
        if m is None or members[0].inference.trained or m.family != "normal" or not m.fitted:
            continue
        std = _match_std(m)
        if std:
            found[std] = found.get(std, 0) + len(members)
    return sorted(found.items(), key=lambda kv: -kv[1])


def _relation(members: list[TensorRecord], first: Match, stds: list[tuple[float, int]], layers: int) -> str:
    if layers < 1 or first.family != "normal" or not stds:
        return ""
    n = sum(m.summary.numel for m in members)
    var = sum(m.summary.std**2 * m.summary.numel for m in members) / n
    std = math.sqrt(var)
    se = math.sqrt(2 / (4 * n))
    for base, _ in stds:
        if base <= std * 1.5:
            continue
        for k, text in ((2 * layers, f"2·{layers}"), (layers, f"{layers}")):
            target = base / math.sqrt(k)
            if abs(std / target - 1) <= 4 * se + 1e-3:
                return f"= {base:g}/sqrt({text}): residual-branch scaling over {layers} blocks (GPT-2 style)"
    return ""
