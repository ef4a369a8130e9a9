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

# name -> the module that defines it (not a package that re-exports it: pytest's importlib mode
# can rebind a package attribute such as fanin.auditing.audit to the submodule of that name);
# a name that is its own module (fanin.init, ...) maps to None.
_EXPORTS: dict[str, str | None] = {
    # schemes and their namespaces (issue 2)
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
    "compare_gains": "fanin.gains",
    "gain": "fanin.gains",
    "Scheme": "fanin.schemes.scheme",
    "get": "fanin.schemes.spec",
    "list_schemes": "fanin.schemes.registry",
    # the counter stream (issue 3)
    "STREAM_VERSION": "fanin.rng.stream",
    "Stream": "fanin.rng.stream",
    "streams_for": "fanin.rng.stream",
    # whole models (issue 4)
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
    "coord_check": "fanin.diagnostics.coord_check",
    "CoordCheck": "fanin.diagnostics.coord_check",
    # diagnostics (issue 5)
    "ProbeReport": "fanin.diagnostics.records",
    "probe": "fanin.diagnostics.probing",
    "lsuv_": "fanin.diagnostics.lsuv",
    "predict_second_moments": "fanin.diagnostics.theory",
    "signal_propagation": "fanin.diagnostics.theory",
    # audit (issue 6)
    "audit": "fanin.auditing.audit",
    "diff": "fanin.auditing.diff",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> object:
    try:
        source = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'fanin' has no attribute {name!r}") from None
    value = importlib.import_module(f"fanin.{name}") if source is None else getattr(importlib.import_module(source), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:  # what static tools see; at run time the names load on first use
    from fanin import init, jax, keras, tf1
    from fanin.auditing import audit, diff
    from fanin.diagnostics import ProbeReport, probe
    from fanin.diagnostics.lsuv import lsuv_
    from fanin.diagnostics.theory import predict_second_moments, signal_propagation
    from fanin.errors import FaninError, SchemeArgumentError, SchemeSpecError, UnknownSchemeError
    from fanin.formulas import Fans, calculate_gain, compute_fans, kernel_shape_from_torch
    from fanin.gains import compare_gains, gain
    from fanin.rng import STREAM_VERSION, Stream, streams_for
    from fanin.planning import Plan, apply, materialize, plan
    from fanin.planning.capturing import CapturedPlan, capture
    from fanin.planning.linting import LintReport, lint
    from fanin.rules import Rule, load_rules
    from fanin.rules.parametrization import depth_mup, mup, mup_hooks, mup_param_groups, mup_table, u_mup
    from fanin.diagnostics.coord_check import CoordCheck, coord_check
    from fanin.schemes import Scheme, get, list_schemes
