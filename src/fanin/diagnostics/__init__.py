"""Diagnostics: experiments that show what an initialization does to a network.

:func:`probe` lives in :mod:`fanin.diagnostics.probing` (the module is not named ``probe``, so
that ``fanin.diagnostics.probe`` is always the function, whatever imports the submodule), its
records in :mod:`fanin.diagnostics.records`; their renderers are in :mod:`fanin.report`.
"""

from fanin.diagnostics.depth import (
    DECAY_BELOW,
    DEMO_CONFIGS,
    EXPLODE_ABOVE,
    SATURATED_ABOVE,
    SATURATION_LEVEL,
    VANISH_BELOW,
    VERDICTS,
    DepthConfig,
    DepthRun,
    demo_configs,
    run_depth_experiment,
)
from fanin.diagnostics.probing import ProbeError, probe
from fanin.diagnostics.records import BlockStats, LayerStats, ParamStats, ProbeReport, UnhealthyModelError, load_report
from fanin.diagnostics.verdicts import Verdict

__all__ = [
    "DECAY_BELOW",
    "DEMO_CONFIGS",
    "EXPLODE_ABOVE",
    "SATURATED_ABOVE",
    "SATURATION_LEVEL",
    "VANISH_BELOW",
    "VERDICTS",
    "BlockStats",
    "DepthConfig",
    "DepthRun",
    "LayerStats",
    "ParamStats",
    "ProbeError",
    "ProbeReport",
    "UnhealthyModelError",
    "Verdict",
    "demo_configs",
    "load_report",
    "probe",
    "run_depth_experiment",
]
