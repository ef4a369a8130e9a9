"""Audit: infer how a model's tensors were initialized, and compare two models or checkpoints.

- :func:`audit` (``fanin.audit``): every tensor's shape, fans, statistics, inferred scheme, fit
  and confidence (:mod:`fanin.audit.infer` states the rules).
- :func:`diff` (``fanin.diff``): architecture and per-tensor comparison of two sources.
- Checkpoints are read without unpickling code (:mod:`fanin.audit.checkpoint`).
Renderers (table, Markdown, JSON, PNG) are in :mod:`fanin.report.audit`.
"""

from fanin.audit.audit import AuditReport, TensorRecord, audit
from fanin.audit.checkpoint import CheckpointError, UnsafeCheckpointError
from fanin.audit.diff import DiffReport, TensorDiff, diff
from fanin.audit.infer import Inference, Match, Summary, infer

__all__ = [
    "AuditReport",
    "CheckpointError",
    "DiffReport",
    "Inference",
    "Match",
    "Summary",
    "TensorDiff",
    "TensorRecord",
    "UnsafeCheckpointError",
    "audit",
    "diff",
    "infer",
]


class _CallableModule(type(__import__("sys"))):
    """``fanin.audit`` is both this package and the function: importing a submodule (which some
    tools do by re-binding ``fanin.audit`` to the package) must not break ``fanin.audit(model)``."""

    def __call__(self, source, **kwargs):
        return audit(source, **kwargs)


__import__("sys").modules[__name__].__class__ = _CallableModule
