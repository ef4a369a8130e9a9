"""fanin: exact, reproducible and explainable weight initialization for PyTorch.

>>> import torch, fanin
>>> w = torch.empty(256, 128)
>>> fanin.get("kaiming_normal(nonlinearity='relu')")(w, generator=torch.Generator().manual_seed(0)).shape
torch.Size([256, 128])
>>> fanin.compute_fans((256, 128))
Fans(fan_in=128, fan_out=256, receptive_field=1, layout='torch')
"""

from fanin import init, jax, keras, tf1
from fanin.errors import FaninError, SchemeArgumentError, SchemeSpecError, UnknownSchemeError
from fanin.formulas import Fans, calculate_gain, compute_fans, kernel_shape_from_torch
from fanin.gains import compare_gains, gain
from fanin.rng import STREAM_VERSION, Stream, streams_for
from fanin.schemes import Scheme, get, list_schemes
from fanin.diagnostics import probe  # noqa: E402  (issue 5)
from fanin.diagnostics import ProbeReport  # noqa: E402  (issue 5)
from fanin.rules import Plan, Rule, apply, load_rules, materialize, plan  # noqa: E402  (issue 4)
from fanin.diagnostics.lsuv import lsuv_  # noqa: E402  (issue 5)
from fanin.diagnostics.theory import predict_second_moments, signal_propagation  # noqa: E402  (issue 5)
from fanin.auditing import audit, diff  # noqa: E402  (issue 6)

__version__ = "0.1.0"

__all__ = [
    "audit",
    "diff",
    "lsuv_",
    "predict_second_moments",
    "signal_propagation",
    "ProbeReport",
    "probe",
    "Plan",
    "Rule",
    "apply",
    "load_rules",
    "materialize",
    "plan",
    "FaninError",
    "Fans",
    "Scheme",
    "Stream",
    "STREAM_VERSION",
    "SchemeArgumentError",
    "SchemeSpecError",
    "UnknownSchemeError",
    "__version__",
    "calculate_gain",
    "compare_gains",
    "compute_fans",
    "gain",
    "get",
    "init",
    "jax",
    "keras",
    "kernel_shape_from_torch",
    "list_schemes",
    "streams_for",
    "tf1",
]
