"""Audit: infer how a model's tensors were initialized, and compare two models or checkpoints.

- :func:`audit` (``fanin.audit``, a function; this package is ``fanin.auditing`` so that the
  two never share a name): every tensor's shape, fans, statistics, inferred scheme, fit
  and confidence (:mod:`fanin.auditing.inference` states the rules).
- :func:`diff` (``fanin.diff``): architecture and per-tensor comparison of two sources.
- Checkpoints are read without unpickling code (:mod:`fanin.auditing.checkpoint`).
Renderers (table, Markdown, JSON, PNG) are in :mod:`fanin.report.audit`.
"""

from fanin.auditing.checkpoint import CheckpointError, UnsafeCheckpointError
from fanin.auditing.comparison import DiffReport, TensorDiff, diff
from fanin.auditing.inference import Inference, Match, Summary, infer
from fanin.auditing.run import AuditReport, TensorRecord, audit

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
