"""Diagnostics: experiments that show what an initialization does to a network."""

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
from fanin.diagnostics.probe import ProbeError, probe
from fanin.diagnostics.verdicts import Verdict

__all__ = [
    "DECAY_BELOW",
    "DEMO_CONFIGS",
    "EXPLODE_ABOVE",
    "SATURATED_ABOVE",
    "SATURATION_LEVEL",
    "VANISH_BELOW",
    "VERDICTS",
    "DepthConfig",
    "DepthRun",
    "ProbeError",
    "Verdict",
    "demo_configs",
    "probe",
    "run_depth_experiment",
]
