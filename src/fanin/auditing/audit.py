"""``fanin.audit(source)``: how every tensor of a model or checkpoint looks initialized.

``source`` is an ``nn.Module``, a state_dict (any mapping of names to tensors, nested dicts
flattened) or a path to a checkpoint (see :mod:`fanin.auditing.checkpoint`: safetensors streamed,
pickle files loaded weights-only). For every floating-point tensor the report gives its shape,
its fans, summary statistics and :func:`fanin.auditing.infer.infer`'s answer.

Layouts: for a module, each weight's layout is read from its module's type: PyTorch layers store
(out, in, *kernel) (``torch``); transformers' ``Conv1D`` (GPT-2) stores (in, out) and is audited
transposed. For a state_dict or a checkpoint the layout is the ``layout`` argument (default
``torch``), and the report says it was assumed. A bias (or any 1-D tensor) whose sibling
``weight`` has 2 or more dims is audited at that weight's fans, which is how PyTorch initializes
biases (U(±1/sqrt(fan_in)) with the weight's fan_in).

>>> import torch, fanin
>>> torch.manual_seed(0) is not None
True
>>> report = audit(torch.nn.Linear(64, 32))
>>> [r.inference.label for r in report.records]
['kaiming_uniform(a=sqrt(5))', "kaiming_uniform(a=sqrt(5)) at the layer weight's fans"]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fanin.auditing.infer import Inference, Summary, infer, summarize
from fanin.auditing.sources import Source, SourceInfo, open_source
from fanin.errors import describe_choice
from fanin.formulas.fans import compute_fans

__all__ = ["AuditReport", "TensorRecord", "audit"]

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TensorRecord:
    """One audited tensor. ``fans`` is (fan_in, fan_out) or ``None`` (fewer than 2 dims and no
    weight to take them from); ``fans_from`` names the weight a bias's fans come from."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    module_type: str | None
    layout: str
    fans: tuple[float, float] | None
    fans_from: str | None
    summary: Summary
    inference: Inference

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "module_type": self.module_type,
            "layout": self.layout,
            "fans": None if self.fans is None else {"fan_in": self.fans[0], "fan_out": self.fans[1]},
            "fans_from": self.fans_from,
            "summary": self.summary.to_dict(),
            "inference": self.inference.to_dict(),
        }


@dataclass(frozen=True)
class AuditReport:
    """Every audited tensor of one source, in the source's order, and what was skipped."""

    source: str
    layout_note: str
    records: tuple[TensorRecord, ...]
    skipped: tuple[str, ...] = ()

    @property
    def headline(self) -> str:
        """One line: how many tensors, grouped by what they look like."""
        counts: dict[str, int] = {}
        for r in self.records:
            key = "looks trained" if r.inference.trained else r.inference.family
            counts[key] = counts.get(key, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
        trained = counts.get("looks trained", 0)
        verdict = "freshly initialized" if not trained else f"{trained} look trained"
        return f"{len(self.records)} tensors ({parts}); {verdict}"

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
            "records": [r.to_dict() for r in self.records],
            "skipped": list(self.skipped),
        }


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
        wshape = tuple(reversed(wshape)) if winfo.transpose else wshape
        f = compute_fans(wshape)
        return (f.fan_in, f.fan_out), weight, wshape
    return None, None, None


def audit_tensor(name: str, tensor: torch.Tensor, info: SourceInfo, source: Source) -> TensorRecord:
    shape = tuple(tensor.shape)
    fans, fans_from, fans_shape = _fans_for(name, shape, info, source)
    values = tensor.t() if info.transpose else tensor
    inference = infer(values, fans_shape=fans_shape)
    summary = summarize(tensor.detach().double().reshape(-1).cpu().numpy())
    return TensorRecord(name, shape, str(tensor.dtype).replace("torch.", ""), info.module_type, info.layout, fans,
                        fans_from, summary, inference)


def audit(source: object, *, layout: str = "torch", names: list[str] | None = None,
          progress: Progress | None = None) -> AuditReport:
    """Audit every floating-point tensor of ``source`` (or only ``names``); see the module docstring.

    ``progress(i, total, name)`` is called before each tensor (the CLI draws a bar with it).
    Integer tensors (``num_batches_tracked``, position ids) are listed in ``skipped``.
    """
    src = open_source(source, layout=layout)
    chosen = src.names
    if names is not None:
        for n in names:
            if n not in src.shapes:
                raise KeyError(describe_choice("tensor", n, src.names))
        chosen = [n for n in src.names if n in set(names)]
    records, skipped = [], []
    for i, name in enumerate(chosen):
        if progress is not None:
            progress(i, len(chosen), name)
        tensor = src.get(name)
        if not tensor.is_floating_point():
            skipped.append(name)
            continue
        records.append(audit_tensor(name, tensor, src.infos[name], src))
        del tensor  # one tensor in memory at a time when streaming
    return AuditReport(src.label, src.layout_note, tuple(records), tuple(skipped))

