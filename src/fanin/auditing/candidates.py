r"""What every registered scheme would draw at a given shape: the candidates an audit compares with.

Nothing here lists schemes by hand. The candidates come from the one registry
(:func:`fanin.schemes.list_schemes`): each entry, with its defaults and with the commonly used
values of its arguments (:data:`ARG_VARIANTS`, keyed by *argument name*), is asked what it draws
at the audited shape by the one draw model (:func:`fanin.frameworks.draws.draw_of`, which runs
the scheme's own code there with a :class:`~fanin.rng.recording.DrawRecorder`: nothing drawn,
nothing written). So the bound or std of a candidate is the scheme's own formula evaluated at
that shape, e.g. for ``kaiming_uniform(a=sqrt(5))`` on a (64, 32) weight:

.. math:: \text{bound} = \text{gain}\sqrt{3/\text{fan\_in}}
          = \sqrt{2/(1+5)}\,\sqrt{3/32} = 1/\sqrt{32}

Orthogonal schemes are run for real on a small tensor of the same rank (their gain does not
depend on the shape; measured, so that delta-orthogonal kernels are covered and the scale ratio
is that of the values drawn) and identity schemes on the audited shape itself (they are
deterministic); constants are checked in the tensor's storage dtype.

Gate-block schemes (an argument named in :data:`GATE_ARGS`: one constant, one uniform bound or one
orthogonal matrix per equal block of rows, as PyTorch packs an RNN's gates) describe a tensor
block by block, so they are not whole-tensor candidates: :func:`gate_candidates` builds them from
the per-block parameters the audit measured, and keeps those whose own draw (on a small tensor
with the same blocks) shows the same per-block structure.

>>> import torch
>>> c = {c.scheme: c for c in continuous_candidates((64, 32))}
>>> abs(c["kaiming_uniform(a=sqrt(5))"].params["high"] - 1 / 32 ** 0.5) < 1e-15
True
>>> c["kaiming_uniform(a=sqrt(5))"].kind
'uniform'
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import EllipsisType

import torch

from fanin.auditing.hypotheses import Dist
from fanin.frameworks import FRAMEWORKS
from fanin.frameworks.draws import draw_of
from fanin.rng import Stream
from fanin.rng.transforms import Normal, TruncatedNormal, Uniform
from fanin.schemes.registry import REQUIRED, SchemeEntry, list_schemes, lookup
from fanin.schemes.scheme import Scheme

__all__ = [
    "ARG_VARIANTS",
    "DEFAULT_NATIVE",
    "FRAMEWORK_ORDER",
    "GATE_ARGS",
    "NOTES",
    "Candidate",
    "Group",
    "continuous_candidates",
    "continuous_groups",
    "entries_of",
    "fit_direct",
    "framework_rank",
    "gate_candidates",
    "group_candidates",
    "native_of",
    "pretty_spec",
    "probe",
    "spec_framework",
]

#: Values tried for an argument of that name, besides the scheme's default: the ones in common
#: use (PyTorch's layer default a=sqrt(5), the gains of relu/tanh/selu, the three fan modes).
ARG_VARIANTS: dict[str, tuple] = {
    "a": (0, math.sqrt(5)),
    "mode": ("fan_in", "fan_out", "fan_avg"),
    "nonlinearity": ("leaky_relu", "relu", "linear", "tanh", "selu", "sigmoid"),
    "gain": (1.0, math.sqrt(2), 5 / 3, 0.75),
    "scale": (1.0, 2.0, 1 / 3),
    "distribution": ("truncated_normal", "uniform", "untruncated_normal", "normal"),
    "groups": (1, 2, 4),
}

#: Where a scheme is known under another name: commentary shown next to a match (every
#: framework's default kernel initializer, from its record, and the literals in common use).
NOTES: dict[str, str] = {
    **{f.default_kernel: f.default_kernel_note for f in FRAMEWORKS if f.default_kernel is not None},
    "normal(std=0.02)": "GPT-2 / BERT style (initializer_range=0.02)",
    "trunc_normal(std=0.02)": "ViT / timm style",
    "ones": "norm-layer weight default",
    "zeros": "bias / norm-layer bias default",
}

#: Arguments that describe a tensor gate block by gate block (the first dimension split into equal
#: blocks), keyed by argument name like :data:`ARG_VARIANTS`, with the per-block kind they give:
#: ``values`` (one constant per block), ``bounds`` (one symmetric uniform bound per block),
#: ``gates`` (the number of blocks, each an independent orthogonal matrix).
GATE_ARGS: dict[str, str] = {"values": "constant", "bounds": "uniform", "gates": "orthogonal"}

# Parameters that never change the distribution.
_IGNORED = {"seed", "layout", "verify_shape"}
_MAX_VARIANTS = 400
_PROXY_ELEMENTS = 4096
# A normal cut at ±6.1 std leaves out 1.1e-9 of its mass: indistinguishable from the normal below
# a billion values (timm's trunc_normal_(std=0.02) cuts at ±2, i.e. ±100 std).
_UNCUT = 6.1

#: Schemes listed after every other equivalent name: a data-dependent scheme whose start is the
#: distribution (LSUV starts orthogonal, then rescales each layer by its activations).
DEMOTED = frozenset({"lsuv"})

#: Framework order of equivalent names, for each framework that can be an audit's native one
#: (its record's ``name_order``): the native framework first.
FRAMEWORK_ORDER: dict[str, tuple[str, ...]] = {f.name: f.name_order for f in FRAMEWORKS if f.name_order}


def native_of(layout: str) -> str:
    """The native framework of a tensor stored in ``layout`` (a :data:`fanin.auditing.sources.LAYOUTS`
    name): the first framework whose native layout it is and that orders names.

    >>> native_of("keras"), native_of("torch")
    ('keras', 'torch')
    """
    return next(f.name for f in FRAMEWORKS if f.name_order and f.layout == layout)


#: The native framework when nothing says otherwise: that of PyTorch modules and torch-layout tensors.
DEFAULT_NATIVE = native_of("torch")
# The framework whose scheme names carry no prefix ("kaiming_uniform").
_UNPREFIXED = next(f.name for f in FRAMEWORKS if not f.prefix)


def framework_rank(native: str) -> Callable[[str], int]:
    """The rank of a framework's name in ``native``'s :data:`FRAMEWORK_ORDER` (that of
    :data:`DEFAULT_NATIVE` for a framework that orders no names); the frameworks it does not list
    come last."""
    order = FRAMEWORK_ORDER.get(native, FRAMEWORK_ORDER[DEFAULT_NATIVE])

    def rank(framework: str) -> int:
        return order.index(framework) if framework in order else len(order)

    return rank


def spec_framework(spec: str) -> str:
    """The framework a scheme spec's name belongs to, read from its prefix.

    >>> spec_framework("keras.variance_scaling(scale=2.0)"), spec_framework("kaiming_uniform(a=sqrt(5))")
    ('keras', 'torch')
    """
    head = spec.split("(")[0]
    return head.split(".")[0] if "." in head else _UNPREFIXED


@dataclass(frozen=True)
class Candidate:
    """One named scheme evaluated at one shape.

    ``kind`` is the distribution it draws (``uniform``, ``normal``, ``truncated_normal``,
    ``orthogonal``, ``identity``, ``constant``, ``sparse``); ``params`` its exact parameters
    (uniform: low, high; normal: mean, std; truncated_normal: mean, std, lower, upper, all
    absolute; orthogonal/identity: gain; constant: value). ``fitted`` marks a scheme whose
    literal arguments were solved from the data (``normal(std=0.02)``) rather than a formula
    that predicts the scale from the shape.
    """

    scheme: str
    entry: str
    framework: str
    kind: str
    params: dict[str, float] = field(compare=False)
    fitted: bool = False

    @property
    def note(self) -> str:
        return NOTES.get(self.scheme.split(" at ")[0], "")

    def effective_kind(self) -> str:
        """The kind of :meth:`as_dist` (a truncated normal cut beyond ±6.1 std is a normal)."""
        return self.as_dist().kind if self.kind in _CONTINUOUS else self.kind

    def as_dist(self) -> Dist:
        """The candidate as a :class:`~fanin.auditing.hypotheses.Dist` (continuous kinds), a
        truncated normal whose cut leaves out less than 1e-9 of the mass being the normal."""
        p = self.params
        if self.kind in ("normal", "sparse"):
            return Dist("normal", (p.get("mean", 0.0), p["std"]))
        if self.kind == "uniform":
            return Dist("uniform", (p["low"], p["high"]))
        if self.kind == "truncated_normal":
            if min(p["upper"] - p["mean"], p["mean"] - p["lower"]) / p["std"] > _UNCUT:
                return Dist("normal", (p["mean"], p["std"]))
            return Dist("truncated_normal", (p["mean"], p["std"], p["lower"], p["upper"]))
        raise ValueError(f"a {self.kind} candidate is not a continuous distribution")

    @functools.cached_property
    def moments(self) -> tuple[float, float, float, float, float]:
        """(mean, std, excess kurtosis, lower, upper) of the distribution, computed once."""
        p = self.params
        if self.kind == "uniform":
            lo, hi = p["low"], p["high"]
            return (lo + hi) / 2, (hi - lo) / math.sqrt(12), -1.2, lo, hi
        if self.kind in ("normal", "sparse"):
            return p.get("mean", 0.0), p["std"], 0.0, -math.inf, math.inf
        d = self.dist()
        mean, var, _, kurt = (float(v) for v in d.stats(moments="mvsk"))
        lower, upper = (float(b) for b in d.support())
        return mean, math.sqrt(var), kurt, lower, upper

    @functools.cached_property
    def frozen(self):
        """:meth:`dist`, computed once."""
        return self.dist()

    def dist(self):
        """The candidate as a frozen ``scipy.stats`` distribution (continuous kinds only)."""
        from scipy import stats

        p = self.params
        if self.kind == "uniform":
            return stats.uniform(p["low"], p["high"] - p["low"])
        if self.kind == "normal" or self.kind == "sparse":
            return stats.norm(p.get("mean", 0.0), p["std"])
        if self.kind == "truncated_normal":
            return stats.truncnorm(
                (p["lower"] - p["mean"]) / p["std"], (p["upper"] - p["mean"]) / p["std"], loc=p["mean"], scale=p["std"]
            )
        raise ValueError(f"a {self.kind} candidate has no scipy distribution")


def pretty_spec(spec: str) -> str:
    """Write floats that are square roots of small integers as ``sqrt(k)`` (``fanin.get`` reads them back).

    >>> pretty_spec("kaiming_uniform(a=2.23606797749979)")
    'kaiming_uniform(a=sqrt(5))'
    """
    for k in (2, 3, 5, 6, 8, 10):
        spec = spec.replace(f"={math.sqrt(k)!r}", f"=sqrt({k})")
    return spec


def entries_of(families: set[str], *, gated: bool = False) -> list[SchemeEntry]:
    """The registered entries of those families, in sorted-name order: the whole-tensor ones, or
    with ``gated=True`` the gate-block ones (a parameter named in :data:`GATE_ARGS`)."""
    return [e for e in (lookup(n) for n in list_schemes()) if e.family in families and _is_gated(e) == gated]


def _is_gated(entry: SchemeEntry) -> bool:
    return any(k in GATE_ARGS for k in entry.parameters)


# The continuous draws a candidate is made of: the transform that checks their parameters, and
# the parameters' names (in the transform's order).
_CONTINUOUS = {"uniform": Uniform, "normal": Normal, "truncated_normal": TruncatedNormal}
_PARAMS = {"uniform": ("low", "high"), "normal": ("mean", "std"), "truncated_normal": ("mean", "std", "lower", "upper")}
# The draw model's kinds (fanin.frameworks.draws.KINDS) that are one continuous distribution: the
# candidate's kind, and the draw's parameters in _PARAMS's order.
_DRAWN = {
    "uniform": ("uniform", ("low", "high")),
    "normal": ("normal", ("mean", "std")),
    "truncated normal": ("truncated_normal", ("mean", "std", "low", "high")),
    "sparse normal": ("normal", ("mean", "std")),
}


def _variants(entry: SchemeEntry) -> Iterator[dict]:
    names = [k for k in entry.parameters if k in ARG_VARIANTS]
    # The default first (unless the argument is required), then the common values.
    grids = [((() if entry.parameters[k] is REQUIRED else (entry.parameters[k],)) + ARG_VARIANTS[k]) for k in names]
    for i, combo in enumerate(itertools.product(*grids)):
        if i >= _MAX_VARIANTS:
            return
        # A value equal to the default is left out, so the spec stays canonical ("uniform", not "uniform(a=0)").
        yield {k: v for k, v in zip(names, combo, strict=True) if not _equal(v, entry.parameters[k])}


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # defaults of any type
        return False


def _scheme(entry: SchemeEntry, args: dict) -> Scheme | None:
    try:
        return Scheme(entry, **args)
    except (ValueError, TypeError):
        return None


def probe(scheme: Scheme, shape: tuple[int, ...]) -> tuple[str, dict[str, float]] | None:
    """The (kind, params) that ``scheme`` draws from at ``shape`` (the draw model,
    :func:`fanin.frameworks.draws.draw_of`, in the audit's names); ``None`` when the scheme
    rejects the shape or draws something else than one continuous distribution. A sparse normal
    is its normal (the zeros are the audit's to find)."""
    try:
        draw = draw_of(scheme, tuple(shape))
    except Exception:  # a scheme that rejects the shape (any way it does) is not a candidate
        return None
    if draw is None or draw.kind not in _DRAWN:
        return None
    kind, drawn = _DRAWN[draw.kind]
    params = [draw.parameters[k] for k in drawn]
    try:
        _CONTINUOUS[kind](*params)  # parameters a real draw would refuse make no candidate
    except Exception:  # the transform's own checks, any error type
        return None
    return kind, dict(zip(_PARAMS[kind], params, strict=True))


def _dedupe(found: list[Candidate]) -> list[Candidate]:
    """One candidate per (entry, distribution, spec), shortest spec first within an entry's
    distribution: equal variants (``kaiming_normal`` and ``kaiming_normal(mode='fan_out')`` on a
    square kernel) all stay, so a report can name the one its other tensors single out."""
    best: dict[tuple, Candidate] = {}
    for c in found:
        key = (c.entry, c.kind, tuple(sorted((k, round(v, 12)) for k, v in c.params.items())), c.scheme)
        best.setdefault(key, c)
    return sorted(best.values(), key=lambda c: (c.entry, len(c.scheme), c.scheme))


@functools.lru_cache(maxsize=512)
def continuous_candidates(shape: tuple[int, ...]) -> tuple[Candidate, ...]:
    """Every registered uniform / normal / truncated-normal scheme, with its argument variants, at ``shape``."""
    found = []
    for entry in entries_of({"uniform", "normal", "truncated_normal"}):
        for args in _variants(entry):
            scheme = _scheme(entry, args)
            if scheme is None:
                continue
            got = probe(scheme, shape)
            if got is not None:
                found.append(Candidate(pretty_spec(str(scheme)), entry.name, entry.framework, *got))
    return tuple(_dedupe(found))


def _measure_gain(scheme: Scheme, shape: tuple[int, ...]) -> float | None:
    r"""The gain :math:`g` of the scheme's draw at ``shape``: :math:`\|M\|_F / \sqrt{\min(M)}` for
    the matrix :math:`M` it is orthogonal on (the tensor as (shape[0], rest), or for a
    delta-orthogonal kernel its centre tap, (out, in)), whose smaller side holds orthonormal
    vectors times :math:`g`."""
    try:
        w = scheme(torch.empty(shape, dtype=torch.float64), generator=Stream(0, "fanin.auditing.proxy"))
    except Exception:  # as in probe()
        return None
    if w.dim() >= 3:
        index: tuple[EllipsisType | int, ...] = (..., *(k // 2 for k in w.shape[2:]))
        rest = w.clone()
        rest[index] = 0
        if not bool(rest.any()):  # non-zero only at the centre tap
            w = w[index]
    m = w.reshape(w.shape[0], -1)
    return float(torch.linalg.norm(m) / math.sqrt(min(m.shape)))


def _proxy(shape: tuple[int, ...]) -> tuple[int, ...]:
    if math.prod(shape) <= _PROXY_ELEMENTS:
        return shape
    return tuple(min(d, 8) if i < 2 else min(d, 3) for i, d in enumerate(shape))


@functools.lru_cache(maxsize=128)
def orthogonal_candidates(shape: tuple[int, ...]) -> tuple[Candidate, ...]:
    """Every registered orthogonal scheme at its defaults and gain variants, with the gain it gives."""
    found = []
    proxy = _proxy(shape)
    for entry in entries_of({"orthogonal"}):
        for args in _variants(entry):
            scheme = _scheme(entry, args)
            gain = None if scheme is None else _measure_gain(scheme, proxy)
            if gain is not None and math.isfinite(gain):
                found.append(
                    Candidate(pretty_spec(str(scheme)), entry.name, entry.framework, "orthogonal", {"gain": gain})
                )
    return tuple(_dedupe(found))


def identity_candidates(shape: tuple[int, ...]) -> list[tuple[Candidate, torch.Tensor]]:
    """Every registered identity scheme (with its variants) run on ``shape``, with the tensor it gives."""
    out = []
    for entry in entries_of({"identity"}):
        for args in _variants(entry):
            scheme = _scheme(entry, args)
            if scheme is None:
                continue
            try:
                w = scheme(torch.zeros(shape, dtype=torch.float64), generator=Stream(0, "fanin.auditing.proxy"))
            except Exception:  # as in probe()
                continue
            gain = float(w.abs().max()) if w.numel() else 0.0
            out.append(
                (Candidate(pretty_spec(str(scheme)), entry.name, entry.framework, "identity", {"gain": gain}), w)
            )
    return out


def constant_candidates(value: float, dtype: torch.dtype = torch.float64) -> list[Candidate]:
    """The registered constant schemes that give ``value`` in ``dtype``: at their defaults, or with
    their one argument set to the shortest decimal that rounds to ``value``."""
    out = []
    short = _shortest(value, dtype)
    for entry in entries_of({"constant"}):
        attempts: list[dict[str, float]] = [{}]
        numeric = [k for k, d in entry.parameters.items() if k not in _IGNORED]
        if len(numeric) == 1:
            attempts.append({numeric[0]: short})
        for args in attempts:
            scheme = _scheme(entry, args)
            if scheme is None:
                continue
            try:
                w = scheme(torch.empty(2, 2, dtype=dtype), generator=Stream(0, "fanin.auditing.proxy"))
            except Exception:  # a scheme that cannot run here is not a candidate
                continue
            if bool((w == value).all()):
                out.append(
                    Candidate(
                        pretty_spec(str(scheme)),
                        entry.name,
                        entry.framework,
                        "constant",
                        {"value": short},
                        fitted=bool(args),
                    )
                )
                break
    return out


@dataclass(frozen=True)
class _Direct:
    """How an entry's literal arguments move its distribution at one shape: the draw ``p0`` at
    ``start`` and, for each *direct* argument, its column of d(parameter)/d(argument)."""

    entry: SchemeEntry
    kind: str
    start: dict
    p0: dict[str, float]
    args: tuple[str, ...]
    columns: tuple[tuple[float, ...], ...]  # one per direct argument, over sorted(p0)


def _linear(col: list[float]) -> bool:
    moved = [abs(c) > 1e-12 for c in col]
    return any(moved) and all(
        abs(abs(c) - 1) < 1e-9 or abs(abs(c) - 2) < 1e-9 or not m for c, m in zip(col, moved, strict=True)
    )


@functools.lru_cache(maxsize=1024)
def _direct_model(name: str, kind: str, shape: tuple[int, ...], fixed: tuple = ()) -> _Direct | None:
    """The :class:`_Direct` model of the entry ``name`` for ``kind`` at ``shape`` (``None`` when
    it has no direct argument): each numeric argument probed at three values, kept when it moves
    parameters one for one (or two for one: a cut at ±2·stddev) at both steps."""
    entry = lookup(name)
    base_args = {
        k: (1.0 if d is not None and not isinstance(d, (int, float)) else d)
        for k, d in entry.parameters.items()
        if k not in _IGNORED
    }
    numeric = {k: d for k, d in base_args.items() if not isinstance(d, bool) and isinstance(d, (int, float))}
    if entry.family == "sparse":
        std = entry.parameters["std"]
        numeric = {"std": std} if isinstance(std, (int, float)) else {}
    if not numeric:
        return None
    start = {**{k: float(v) for k, v in numeric.items()}, **dict(fixed)}
    scheme = _scheme(entry, start)
    got = probe(scheme, shape) if scheme is not None else None
    if got is None:
        return None
    got_kind, p0 = got
    if got_kind != ("normal" if kind == "sparse" else kind) and not (
        kind == "normal" and got_kind == "truncated_normal"
    ):
        return None
    keys = sorted(p0)
    args, columns = [], []
    for arg, value in numeric.items():
        cols = []
        for step in (0.5 * abs(value) if value else 0.25, 1.5 * abs(value) if value else 0.75):
            s2 = _scheme(entry, {**start, arg: float(value) + step})
            g2 = probe(s2, shape) if s2 is not None else None
            if g2 is None or g2[0] != got_kind:
                break
            cols.append([(g2[1][k] - p0[k]) / step for k in keys])
        if len(cols) == 2 and _linear(cols[0]) and all(abs(a - b) < 1e-9 for a, b in zip(*cols, strict=True)):
            args.append(arg)
            columns.append(tuple(cols[0]))
    if not args:
        return None
    return _Direct(entry, got_kind, start, p0, tuple(args), tuple(columns))


def fit_direct(kind: str, target: dict[str, float], shape: tuple[int, ...], nice) -> list[Candidate]:
    """Registered schemes whose *literal* arguments can be set to reproduce ``target``.

    For each entry whose default draw is of ``kind``, each numeric argument is probed at three
    values; an argument that moves distribution parameters one for one (``std`` -> std, ``a`` ->
    low, ``stddev`` -> std and the ±2·stddev cut), the same at both steps, is a *direct* argument
    (:func:`_direct_model`, computed once per entry and shape). The direct arguments are solved
    for ``target`` (least squares over the parameters that ``target`` names), each solution is
    rounded by ``nice(name, value)``, and the distribution follows from the linear model exactly.
    Every candidate returned has ``fitted=True``.
    """
    import numpy as np

    out = []
    families = {
        "uniform": {"uniform"},
        "normal": {"normal", "truncated_normal"},
        "truncated_normal": {"truncated_normal"},
        "sparse": {"sparse"},
    }[kind]
    fixed = (("sparsity", target["sparsity"]),) if kind == "sparse" else ()
    for entry in entries_of(families):
        model = _direct_model(entry.name, kind, shape, fixed if entry.family == "sparse" else ())
        if model is None:
            continue
        keys = sorted(model.p0)
        names = [k for k in sorted(target) if k in model.p0]
        a = np.array([[col[keys.index(k)] for k in names] for col in model.columns], dtype=float).T
        b = np.array([target[k] - model.p0[k] for k in names], dtype=float)
        delta, *_ = np.linalg.lstsq(a, b, rcond=None)
        args = dict(model.start)
        moved = {}
        for arg, d in zip(model.args, delta, strict=True):
            args[arg] = nice(arg, model.start[arg] + float(d))
            moved[arg] = args[arg] - model.start[arg]
        scheme = _scheme(entry, args)
        if scheme is None:
            continue
        params = {
            k: model.p0[k]
            + sum(col[keys.index(k)] * moved[arg] for arg, col in zip(model.args, model.columns, strict=True))
            for k in keys
        }
        try:  # parameters a real draw would refuse make no candidate
            _CONTINUOUS[model.kind](*(params[k] for k in _PARAMS[model.kind]))
        except Exception:  # the transform's own checks, any error type
            continue
        out.append(
            Candidate(
                pretty_spec(str(scheme)),
                entry.name,
                entry.framework,
                "sparse" if kind == "sparse" else model.kind,
                {**params, **({"sparsity": target["sparsity"]} if kind == "sparse" else {})},
                fitted=True,
            )
        )
    return out


def _gate_proxy(shape: tuple[int, ...], gates: int) -> tuple[int, ...]:
    h = shape[0] // gates
    return (gates * min(h, 32), *(min(d, 8) for d in shape[1:]))


def _block_gain(block: torch.Tensor) -> float:
    m = block.reshape(block.shape[0], -1)
    if m.shape[0] > m.shape[1]:
        m = m.T
    return float(torch.linalg.norm(m, dim=1).mean())


def _shows(kind: str, w: torch.Tensor, gates: int, per_block: list[float]) -> bool:
    """Whether ``w`` split into ``gates`` equal row blocks has the ``per_block`` parameters."""
    blocks = w.split(w.shape[0] // gates)
    if kind == "constant":
        return all(bool((b == v).all()) for b, v in zip(blocks, per_block, strict=True))
    if kind == "uniform":
        # A bound b: every |value| <= b, and (32 x 8 values per block) the largest above 0.9 b.
        return all(
            bool(b.abs().max() <= v * (1 + 1e-6)) and (v == 0 or float(b.abs().max()) >= 0.9 * v)
            for b, v in zip(blocks, per_block, strict=True)
        )
    return all(abs(_block_gain(b) / v - 1) < 1e-3 for b, v in zip(blocks, per_block, strict=True))


def gate_candidates(
    kind: str, per_block: list[float], shape: tuple[int, ...], dtype: torch.dtype = torch.float64
) -> list[Candidate]:
    r"""The registered gate-block schemes of ``kind`` that give ``per_block`` at ``shape``.

    ``kind`` is ``constant`` (``per_block``: the value of each block), ``uniform`` (the bound
    :math:`b_k` of each block, :math:`\mathcal{U}(\pm b_k)`) or ``orthogonal`` (the gain of each
    block). The blocks are the first dimension split into ``len(per_block)`` equal parts. Each
    entry's :data:`GATE_ARGS` argument is set from ``per_block`` (constants as the shortest decimal
    that rounds to the value in ``dtype``); an orthogonal entry's other arguments take their
    default, their :data:`ARG_VARIANTS` values and the gain itself. A scheme is kept when its own
    draw on a small tensor with the same blocks shows ``per_block``. Literal values read from the
    data make a ``fitted`` candidate; only an orthogonal scheme at a default or common scale is not.

    >>> [c.scheme for c in gate_candidates("constant", [0.0, 1.0, 0.0, 0.0], (8,))]
    ['fanin.gate_constant(values=[0.0, 1.0, 0.0, 0.0])']
    >>> [c.scheme for c in gate_candidates("orthogonal", [1.0, 1.0, 1.0], (12, 4))]
    ['fanin.gatewise_orthogonal(gates=3)']
    """
    gates = len(per_block)
    if not shape or gates < 1 or shape[0] % gates or shape[0] < gates:
        return []
    proxy = _gate_proxy(shape, gates)
    out = []
    for entry in entries_of({kind}, gated=True):
        arg = next(k for k in entry.parameters if k in GATE_ARGS)
        if GATE_ARGS[arg] != kind:
            continue
        attempts: list[tuple[dict[str, object], bool]]
        if kind == "constant":
            attempts = [({arg: [_shortest(v, dtype) for v in per_block]}, True)]
        elif kind == "uniform":
            attempts = [({arg: [float(v) for v in per_block]}, True)]
        else:
            others = [k for k in entry.parameters if k != arg and k not in _IGNORED]
            gain = per_block[0]
            attempts = []
            for k in others:
                values = [entry.parameters[k]] if entry.parameters[k] is not REQUIRED else []
                values += list(ARG_VARIANTS.get(k, ()))
                attempts += [({arg: gates, k: v}, False) for v in values]
                attempts += [({arg: gates, k: math.sqrt(r)}, True) for r in (2, 3, 5, 6)]
                attempts += [({arg: gates, k: float(f"{gain:.{d}g}")}, True) for d in range(1, 7)]
            if not others:
                attempts = [({arg: gates}, False)]
        for args, fitted in attempts:
            args = {k: v for k, v in args.items() if not _equal(v, entry.parameters[k])}
            scheme = _scheme(entry, args)
            if scheme is None:
                continue
            try:
                w = scheme(
                    torch.empty(proxy, dtype=dtype if kind == "constant" else torch.float64),
                    generator=Stream(0, "fanin.auditing.proxy"),
                )
            except Exception:  # as in probe()
                continue
            if _shows(kind, w, gates, per_block):
                out.append(
                    Candidate(
                        pretty_spec(str(scheme)),
                        entry.name,
                        entry.framework,
                        kind,
                        {"gain": per_block[0]} if kind == "orthogonal" else {},
                        fitted=fitted,
                    )
                )
                break
    return out


def _shortest(value: float, dtype: torch.dtype) -> float:
    """The shortest decimal that rounds to ``value`` in ``dtype``."""
    for digits in range(1, 18):
        short = float(f"{value:.{digits}g}")
        if torch.tensor(short, dtype=dtype).item() == value:
            return short
    return float(value)


@dataclass(frozen=True)
class Group:
    """Candidates that draw the same distribution at this shape: one hypothesis, several names.
    ``members`` are ordered native framework first; ``fitted`` when every member's arguments
    were solved from the data; ``at_fans`` when every member was evaluated at the layer weight's
    fans rather than the tensor's own shape."""

    dist: Dist
    members: tuple[Candidate, ...]
    fitted: bool
    at_fans: bool = False

    @property
    def first(self) -> Candidate:
        return self.members[0]


def _dist_key(d: Dist) -> tuple:
    return (d.kind, *(float(f"{v:.10g}") for v in d.params))


def _member_order(native: str):
    rank = framework_rank(native)

    def key(c: Candidate):
        return (c.entry in DEMOTED, rank(c.framework), not c.note, len(c.scheme), c.scheme)

    return key


def group_candidates(cands: list[Candidate], native: str = DEFAULT_NATIVE) -> list[Group]:
    """Group continuous candidates by distribution (:meth:`Candidate.as_dist`, equal to 10
    significant digits), members ordered by :data:`FRAMEWORK_ORDER` of ``native``, then noted
    before plain, then the shorter spec.

    >>> [g.first.scheme for g in group_candidates(list(continuous_candidates((64, 32))))
    ...  if "xavier_uniform" in [c.scheme for c in g.members]]
    ['xavier_uniform']
    """
    groups: dict[tuple, list[Candidate]] = {}
    dists: dict[tuple, Dist] = {}
    for c in cands:
        d = c.as_dist()
        key = _dist_key(d)
        groups.setdefault(key, []).append(c)
        dists.setdefault(key, d)
    out = []
    order = _member_order(native)
    for key, members in groups.items():
        seen, unique = set(), []
        for m in sorted(members, key=order):
            if m.scheme not in seen:
                seen.add(m.scheme)
                unique.append(m)
        out.append(Group(dists[key], tuple(unique), all(m.fitted for m in unique)))
    return out


@functools.lru_cache(maxsize=512)
def continuous_groups(
    shape: tuple[int, ...], fans_shape: tuple[int, ...] | None = None, native: str = DEFAULT_NATIVE
) -> tuple[Group, ...]:
    """:func:`group_candidates` of every continuous candidate at ``shape`` and, for a tensor whose
    scheme takes another tensor's fans (a bias), at ``fans_shape``; a group whose distribution
    only the fans' candidates draw is ``at_fans``."""
    own = list(continuous_candidates(shape))
    own_keys = {_dist_key(c.as_dist()) for c in own}
    extra = [] if fans_shape is None else list(continuous_candidates(tuple(fans_shape)))
    groups = group_candidates(own + extra, native)
    return tuple(Group(g.dist, g.members, g.fitted, _dist_key(g.dist) not in own_keys) for g in groups)
