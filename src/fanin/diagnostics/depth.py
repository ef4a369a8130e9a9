r"""The depth experiment: how the std of activations evolves through a deep MLP, by initialization.

An MLP of ``depth`` bias-free Linear layers of ``width`` units, an optional activation after each,
a batch of ``batch`` inputs :math:`x \sim \mathcal{N}(0, 1)`. Each layer multiplies the second
moment by :math:`n \operatorname{Var}(W) E[f(z)^2]`, so the std either stays put, grows or shrinks
geometrically with depth (see :mod:`fanin.activations`).

The draws are those of the document the experiment comes from, which seeds ``random``, ``numpy``
and ``torch`` with 1, builds the 100 ``nn.Linear`` layers, re-initializes every weight and then
draws the input. Only torch's generator is ever drawn from, so fanin uses a private
``torch.Generator`` seeded with ``seed`` (the same stream, no global state touched), in that order:

1. construction: ``kaiming_uniform(a=sqrt(5))`` on each weight, layer by layer (what
   ``nn.Linear.reset_parameters`` draws; no bias);
2. the run's scheme (:func:`fanin.get`) on each weight, layer by layer;
3. the input, ``torch.randn(batch, width)``.

The run with "PyTorch's default init" therefore re-draws the default scheme after construction:
the same distribution as a freshly built ``nn.Linear``, with the second draw of the stream.

Each layer is accumulated in float64 and rounded to float32 (``accumulate="float64"``): every
output is then the correctly rounded float32 of its dot product (barring rare double roundings),
whatever the BLAS kernel. Float32 BLAS kernels sum in different orders on different CPUs and so
differ in the last bit: on an AMD EPYC with MKL (AVX2) ``F.linear`` gives a layer-0 std of 15.959931373596191
where the document and float64 accumulation give 15.959932327270508. ``accumulate="float32"``
runs ``F.linear`` as ``nn.Linear`` does. The std of each layer is ``x.std()`` of the float32
activations, as torch computes it.

**Verdicts**, checked in this order (the input std is 1):

- ``"exploding"``: some layer's std is non-finite or above ``EXPLODE_ABOVE`` (1e3);
- ``"vanishing"``: some layer's std is below ``VANISH_BELOW`` (1e-3), or the std after the last
  layer is below ``DECAY_BELOW`` (0.1, a tenth of the input's std of 1): a slow, algebraic decay
  (tanh with weights N(0, 1/n)) never reaches 1e-3 in 100 layers but loses the signal all the same;
- ``"saturating"``: (tanh) on average over the layers more than ``SATURATED_ABOVE`` (half) of the
  units have :math:`|y| > 0.99` (``SATURATION_LEVEL``), where :math:`\tanh' = 1 - y^2 < 0.02`: the
  forward std looks healthy but gradients through those units all but vanish;
- ``"stable"``: none of these.

What the six demo runs do (width 256, depth 100, seed 1; checked by the tests):

- ``normal``: N(0, 1) weights, no activation: x16 a layer; the activations overflow float32 at
  layer 31 (the document: "output is nan in 31 layers"). torch 2.13's float32 ``x.std()`` already
  returns NaN at layer 30, where the 4096 activations are still finite (|x| < 8.4e37; their std in
  float64 is 2.08e37, the document's figure): the squares pass float32's range (3.4e38) and, for
  a tensor of this size, torch's float32 reduction overflows (measured on torch 2.13: the std of
  N(0, 2e37^2) draws is finite for 256 values, inf or NaN from about 1024).
- ``scaled-normal``: N(0, 1/n): stable (0.9975, 1.0024, ..., 1.22 after layer 99; 0.93 to 1.22).
- ``tanh-normal``: tanh + N(0, 1): the digest of the document calls it vanishing, but the forward
  std stays at about 0.976 through all 100 layers; on average 87% of the units sit at |y| > 0.99:
  saturating. What does vanish is tanh + N(0, 1/n) (``normal(std=0.0625)``): 0.6274, 0.4891, ...,
  0.082 after layer 99. The digest gives no tanh figures, so this is unverified, but the tutorial
  the document follows probably ran this one as its vanishing tanh example. It is not one of the
  six demo runs; ``DepthConfig("tanh-scaled-normal", "tanh", "normal(std=0.0625)")`` runs it
  (vanishing, by ``DECAY_BELOW``).
- ``tanh-xavier``: tanh + Xavier uniform with gain 5/3: stable (std 0.64 to 0.76).
- ``relu-kaiming``: ReLU + Kaiming normal: stable (std 0.44 to 1.03; half the units are 0).
- ``relu-default``: ReLU + ``kaiming_uniform(a=sqrt(5))``: vanishing, about x0.41 a layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from fanin.activations import activation_function
from fanin.diagnostics.probing import probe
from fanin.diagnostics.serialize import json_rank, nonfinite_as_none, record_dict
from fanin.diagnostics.verdicts import (
    DECAY_BELOW,
    EXPLODE_ABOVE,
    SATURATED_ABOVE,
    SATURATION_LEVEL,
    VANISH_BELOW,
    VERDICTS,
    judge_depth,
    scan_stds,
)
from fanin.errors import describe_choice
from fanin.formulas.gains import calculate_gain
from fanin.rng.threads import one_thread
from fanin.schemes import get

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
    "demo_configs",
    "run_depth_experiment",
]

ACCUMULATE = ("float32", "float64")

# What nn.Linear(n, n, bias=False) draws at construction (torch.nn.Linear.reset_parameters).
CONSTRUCTION = "kaiming_uniform(a=sqrt(5))"
# Statistics kept per activation: tanh saturates at ±1, ReLU outputs exact zeros.
_SATURATES = ("tanh",)
_ZEROES = ("relu",)
_NO_ACTIVATION = (None, "linear", "identity")


@dataclass(frozen=True)
class DepthConfig:
    """One run of the depth experiment.

    ``activation`` is ``None`` (no activation) or a name of :func:`fanin.activations.activation_names`;
    ``scheme`` is a :func:`fanin.get` spec string. Everything is checked on construction.

    >>> DepthConfig("relu-kaiming", "relu", "kaiming_normal(nonlinearity='relu')", depth=3).depth
    3
    >>> DepthConfig("x", "relu", "kaimin_normal")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    fanin.errors.UnknownSchemeError: Unknown scheme 'kaimin_normal'. Did you mean 'kaiming_normal'...
    """

    name: str
    activation: str | None
    scheme: str
    depth: int = 100
    width: int = 256
    batch: int = 16
    seed: int = 1
    accumulate: str = "float64"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a depth run needs a non-empty name, got name={self.name!r}")
        for key, low in (("depth", 1), ("width", 1), ("batch", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an int >= {low}, got {key}={value!r}")
        if self.batch * self.width < 2:
            raise ValueError(f"x.std() needs 2 or more values a layer, got batch={self.batch}, width={self.width}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got seed={self.seed!r}")
        if self.accumulate not in ACCUMULATE:
            raise ValueError(describe_choice("accumulate", self.accumulate, ACCUMULATE))
        if not isinstance(self.scheme, str):
            raise TypeError(f"scheme must be a fanin spec string such as 'normal(std=1.0)', got scheme={self.scheme!r}")
        get(self.scheme)
        if self.activation not in _NO_ACTIVATION:
            activation_function(self.activation)

    def to_dict(self) -> dict[str, object]:
        return record_dict(self, floats=nonfinite_as_none)


@dataclass(frozen=True)
class DepthRun:
    """What one run measured, layer by layer (layer ``i`` is the output of the ``i``-th Linear +
    activation, counted from 0), and its verdict.

    ``stds`` are float32 ``x.std()`` values as Python floats, NaN where torch's std is NaN or once
    the activations have overflowed (the run stops there). ``saturated`` (tanh: fraction of
    ``|y| > 0.99``) and ``zeros`` (ReLU: fraction of exact zeros) are ``None`` for other
    activations. Layer indices are ``None`` where the event never happens:

    - ``nonfinite_layer``: first layer whose std is inf/NaN;
    - ``overflow_layer``: first layer whose activations contain inf/NaN;
    - ``explode_layer``: first layer whose std exceeds ``EXPLODE_ABOVE``;
    - ``vanish_layer``: first layer whose std falls below ``VANISH_BELOW``.
    """

    # The JSON form reads: the config, the verdict and its reason, the layers where it happens,
    # then the per-layer values.
    config: DepthConfig
    stds: tuple[float, ...] = field(metadata=json_rank(2))
    saturated: tuple[float, ...] | None = field(metadata=json_rank(2))
    zeros: tuple[float, ...] | None = field(metadata=json_rank(2))
    nonfinite_layer: int | None = field(metadata=json_rank(1))
    overflow_layer: int | None = field(metadata=json_rank(1))
    explode_layer: int | None = field(metadata=json_rank(1))
    vanish_layer: int | None = field(metadata=json_rank(1))
    verdict: str
    reason: str = field(compare=False)

    @property
    def name(self) -> str:
        return self.config.name

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict; non-finite stds become ``None``."""
        return record_dict(self, floats=nonfinite_as_none)


def demo_configs(depth: int = 100, width: int = 256, batch: int = 16, seed: int = 1) -> tuple[DepthConfig, ...]:
    """The six demo runs: the five of the document plus ReLU under PyTorch's default Linear init.

    >>> [c.scheme for c in demo_configs(width=100)][:2]
    ['normal(std=1.0)', 'normal(std=0.1)']
    """

    def config(name: str, activation: str | None, scheme: str) -> DepthConfig:
        return DepthConfig(name, activation, scheme, depth=depth, width=width, batch=batch, seed=seed)

    return (
        config("normal", None, "normal(std=1.0)"),
        config("scaled-normal", None, f"normal(std={1 / math.sqrt(width)!r})"),
        config("tanh-normal", "tanh", "normal(std=1.0)"),
        config("tanh-xavier", "tanh", f"xavier_uniform(gain={calculate_gain('tanh')!r})"),
        config("relu-kaiming", "relu", "kaiming_normal(nonlinearity='relu')"),
        config("relu-default", "relu", CONSTRUCTION),
    )


DEMO_CONFIGS = demo_configs()


def run_depth_experiment(config: DepthConfig) -> DepthRun:
    """Run ``config`` and judge it (on one torch thread, restored afterwards).

    >>> run = run_depth_experiment(DEMO_CONFIGS[0])
    >>> run.stds[:2], run.overflow_layer, run.verdict
    ((15.959932327270508, 256.6237487792969), 31, 'exploding')
    >>> run.nonfinite_layer in (30, 31)  # torch 2.13's float32 std: NaN at 30
    True
    """
    if not isinstance(config, DepthConfig):
        raise TypeError(f"run_depth_experiment takes a DepthConfig, got config={config!r}")
    # The tensors are small (16 x 256): torch's parallel regions cost more than they save, and on
    # a loaded machine each one waits for a descheduled worker (measured on 2 busy cores: 7 to 15 s
    # for the six demo runs instead of 0.45 s).
    with one_thread():
        return _run(config)


def _run(config: DepthConfig) -> DepthRun:
    n, depth = config.width, config.depth
    generator = torch.Generator().manual_seed(config.seed)
    weights = torch.empty(depth, n, n)
    construction, scheme = get(CONSTRUCTION), get(config.scheme)
    for w in weights:
        construction(w, generator=generator)
    for w in weights:
        scheme(w, generator=generator)
    x = torch.randn(config.batch, n, generator=generator)

    model = _depth_model(weights, config)
    # The probe's float64 statistics plus torch_std, the float32 x.std() the document printed.
    # The last module of each layer (its activation, or the Linear without one) is recorded.
    ends = {name for name, _ in model.named_children() if name.startswith("act")} or None
    report = probe(
        model,
        x,
        mode="eval",
        residual=False,
        layers=lambda name, module: name in ends if ends else isinstance(module, _DepthLinear),
    )
    nan = float("nan")
    stds, saturated, zeros = [nan] * depth, [nan] * depth, [nan] * depth
    overflow_layer = None
    for i, record in enumerate(report.layers):
        stds[i] = record.torch_std
        saturated[i] = nan if record.saturated is None else record.saturated
        zeros[i] = record.zeros
        if not record.finite:
            overflow_layer = i  # from here on every value is inf/NaN: the run stops here
            break

    track_saturated = config.activation in _SATURATES
    track_zeros = config.activation in _ZEROES
    scan = scan_stds(stds)
    sat = tuple(saturated) if track_saturated else None
    verdict, reason = judge_depth(stds, sat, overflow_layer)
    return DepthRun(
        config,
        tuple(stds),
        sat,
        tuple(zeros) if track_zeros else None,
        scan.nonfinite,
        overflow_layer,
        scan.explode,
        scan.vanish,
        verdict,
        reason,
    )


class _DepthLinear(nn.Module):
    """A bias-free Linear on a given weight, accumulated in float64 or run by F.linear."""

    def __init__(self, weight: torch.Tensor, accumulate: str) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.accumulate = accumulate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.accumulate == "float64":
            return (x.double() @ self.weight.double().T).float()
        return F.linear(x, self.weight)


class _Activation(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _depth_model(weights: torch.Tensor, config: DepthConfig) -> nn.Sequential:
    """Layer ``i`` is ``i`` (the Linear) and, with an activation, ``act{i}``: ``nn.Tanh``/``nn.ReLU``
    (the probe counts their saturated units and zeros) or the function of :mod:`fanin.activations`."""
    model = nn.Sequential()
    for i, w in enumerate(weights):
        model.add_module(str(i), _DepthLinear(w, config.accumulate))
        if config.activation not in _NO_ACTIVATION:
            if config.activation == "tanh":
                act: nn.Module = nn.Tanh()
            elif config.activation == "relu":
                act = nn.ReLU()
            else:
                act = _Activation(activation_function(config.activation))
            model.add_module(f"act{i}", act)
    return model
