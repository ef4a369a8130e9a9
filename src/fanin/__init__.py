"""fanin: exact, reproducible and explainable weight initialization for PyTorch.

The public face: every name below is re-exported from the module that defines it, and loaded on
first use (``import fanin`` itself does not import torch, so ``fanin --version`` and ``fanin --help``
answer at once).

>>> import torch, fanin
>>> w = torch.empty(256, 128)
>>> fanin.get("kaiming_normal(nonlinearity='relu')")(w, generator=torch.Generator().manual_seed(0)).shape
torch.Size([256, 128])
>>> fanin.compute_fans((256, 128))
Fans(fan_in=128, fan_out=256, receptive_field=1, layout='torch')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public names, literally, for tools (ruff, mypy, the API reference) to read;
# tests/test_public_api.py checks that __all__, the imports under TYPE_CHECKING and _EXPORTS agree.
__all__ = [
    "STREAM_VERSION",
    "CapturedPlan",
    "CoordCheck",
    "FaninError",
    "Fans",
    "LintReport",
    "Plan",
    "ProbeReport",
    "Rule",
    "Scheme",
    "SchemeArgumentError",
    "SchemeSpecError",
    "Stream",
    "UnknownSchemeError",
    "__version__",
    "apply",
    "audit",
    "calculate_gain",
    "capture",
    "compare_gains",
    "compute_fans",
    "coord_check",
    "depth_mup",
    "diff",
    "gain",
    "get",
    "init",
    "jax",
    "keras",
    "kernel_shape_from_torch",
    "lint",
    "list_schemes",
    "load_rules",
    "lsuv_",
    "materialize",
    "mup",
    "mup_hooks",
    "mup_param_groups",
    "mup_table",
    "plan",
    "predict_second_moments",
    "probe",
    "signal_propagation",
    "streams_for",
    "tf1",
    "u_mup",
]

# name -> the module that defines it (not a package that re-exports it: pytest's importlib mode
# can rebind a package attribute to a submodule of the same name);
# a name that is its own module (fanin.init, ...) maps to None.
_EXPORTS: dict[str, str | None] = {
    # schemes and their namespaces
    "init": None,
    "keras": None,
    "tf1": None,
    "jax": None,
    "FaninError": "fanin.errors",
    "SchemeArgumentError": "fanin.errors",
    "SchemeSpecError": "fanin.errors",
    "UnknownSchemeError": "fanin.errors",
    "Fans": "fanin.formulas.fans",
    "calculate_gain": "fanin.formulas.gains",
    "compute_fans": "fanin.formulas.fans",
    "kernel_shape_from_torch": "fanin.formulas.fans",
    "compare_gains": "fanin.activations",
    "gain": "fanin.activations",
    "Scheme": "fanin.schemes.scheme",
    "get": "fanin.schemes.spec",
    "list_schemes": "fanin.schemes.registry",
    # the counter stream
    "STREAM_VERSION": "fanin.rng.stream",
    "Stream": "fanin.rng.stream",
    "streams_for": "fanin.rng.stream",
    # whole models
    "Plan": "fanin.planning.records",
    "Rule": "fanin.rules.rules",
    "apply": "fanin.planning.applying",
    "load_rules": "fanin.rules.load",
    "materialize": "fanin.planning.materializing",
    "plan": "fanin.planning.resolve",
    "capture": "fanin.planning.capturing",
    "CapturedPlan": "fanin.planning.capturing",
    "lint": "fanin.planning.linting",
    "LintReport": "fanin.planning.linting",
    "mup": "fanin.rules.parametrization.rules",
    "depth_mup": "fanin.rules.parametrization.rules",
    "u_mup": "fanin.rules.parametrization.rules",
    "mup_table": "fanin.rules.parametrization.table",
    "mup_param_groups": "fanin.rules.parametrization.optim",
    "mup_hooks": "fanin.rules.parametrization.hooks",
    "coord_check": "fanin.diagnostics.coordinate_check",
    "CoordCheck": "fanin.diagnostics.coordinate_check",
    # diagnostics
    "ProbeReport": "fanin.diagnostics.records",
    "probe": "fanin.diagnostics.probing",
    "lsuv_": "fanin.diagnostics.lsuv",
    "predict_second_moments": "fanin.diagnostics.theory",
    "signal_propagation": "fanin.diagnostics.theory",
    # audit
    "audit": "fanin.auditing.run",
    "diff": "fanin.auditing.comparison",
}


def __getattr__(name: str) -> object:
    try:
        source = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'fanin' has no attribute {name!r}") from None
    value = (
        importlib.import_module(f"fanin.{name}") if source is None else getattr(importlib.import_module(source), name)
    )
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what static tools see; at run time the names load on first use (__getattr__)
    from fanin import init, jax, keras, tf1
    from fanin.activations import compare_gains, gain
    from fanin.auditing.comparison import diff
    from fanin.auditing.run import audit
    from fanin.diagnostics.coordinate_check import CoordCheck, coord_check
    from fanin.diagnostics.lsuv import lsuv_
    from fanin.diagnostics.probing import probe
    from fanin.diagnostics.records import ProbeReport
    from fanin.diagnostics.theory import predict_second_moments, signal_propagation
    from fanin.errors import FaninError, SchemeArgumentError, SchemeSpecError, UnknownSchemeError
    from fanin.formulas.fans import Fans, compute_fans, kernel_shape_from_torch
    from fanin.formulas.gains import calculate_gain
    from fanin.planning.applying import apply
    from fanin.planning.capturing import CapturedPlan, capture
    from fanin.planning.linting import LintReport, lint
    from fanin.planning.materializing import materialize
    from fanin.planning.records import Plan
    from fanin.planning.resolve import plan
    from fanin.rng.stream import STREAM_VERSION, Stream, streams_for
    from fanin.rules.load import load_rules
    from fanin.rules.parametrization.hooks import mup_hooks
    from fanin.rules.parametrization.optim import mup_param_groups
    from fanin.rules.parametrization.rules import depth_mup, mup, u_mup
    from fanin.rules.parametrization.table import mup_table
    from fanin.rules.rules import Rule
    from fanin.schemes.registry import list_schemes
    from fanin.schemes.scheme import Scheme
    from fanin.schemes.spec import get
