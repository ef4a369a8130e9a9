r"""``fanin.capture``: a model's own initialization code, recorded as a :class:`Plan`.

:func:`capture` runs the model's own init on a scratch copy (on the meta device: no memory, no
values) under a :class:`torch.overrides.TorchFunctionMode` that sees every call the code makes:

- ``torch.nn.init`` (and ``fanin.init``) functions, recognized by their code objects wherever they
  are imported from (``from torch.nn.init import xavier_uniform_`` included): the scheme and its
  arguments are read off the call (``kaiming_normal(mode='fan_out', nonlinearity='relu')``);
- in-place patterns written by hand: ``normal_``, ``uniform_``, ``zero_``, ``fill_``, ``copy_`` of
  a constant or of computed values (rotary ``inv_freq``), ``x[i] = 0``, scaling afterwards
  (``div_``/``mul_``: timm's ``fix_init_weight``), and the erfinv truncated normal that timm and
  older transformers write by hand (``uniform_(2l-1, 2u-1)``, ``erfinv_``, ``mul_(std·√2)``,
  ``add_(mean)``, ``clamp_(a, b)``);
- tensors created by the code (``nn.Parameter(torch.zeros(...))``, ``torch.ones(d) * 1e-5``).

**The entry point** (``init=``), in this order: a callable ``init(scratch_model)`` or a method name;
a Hugging Face ``PreTrainedModel``'s ``initialize_weights()`` (transformers 5; ``init_weights()``
before), with the ``_is_hf_initialized`` flags cleared so every module is initialized; a model's
own ``init_weights()`` (timm's ViT and ResNet, torchtitan's models); else every module's
``reset_parameters()`` in ``model.modules()`` order. Passing a *factory* instead of a model
(``capture(lambda: torchvision.models.resnet18())``, a class, a ``functools.partial``) captures the
construction itself: layers' own ``reset_parameters`` and the constructor's init loops. A
transformers factory is captured on a CPU construction: transformers initializes in ``post_init``
only on a real device, and before it ties the weights (``device="meta"`` runs its init after the
construction instead, and says in ``draw_order`` when tied tensors make that differ).

**What the plan says.** One entry per tensor the code writes, with the scheme of its *last*
write (init code often re-initializes: GPT-2's residual projections get N(0, 0.02²) and then the
depth-scaled std), its fans, statistics and, in ``rule``, where it came from
(``GPT2PreTrainedModel._init_weights``). A tensor written as a whole and then partly (an
embedding's padding row zeroed) gets the composite scheme (``fanin.padded_normal``); row blocks
written one by one (per-gate, per-projection) get a block scheme (:mod:`fanin.rules.blocks`).
Parameters the code never writes are ``keep``. What cannot be interpreted (a copy of another
tensor's random values, an in-place op with no scheme) is listed in :attr:`CapturedPlan.opaque`
with the reason; applied, it is replayed by running the writing module's own method on a copy.

**Bits.** Entries are in the order of the library's draws. Applied with a ``torch.Generator``
(or torch's global RNG) the captured plan reproduces the library's init bit for bit: overwritten
draws that consumed random numbers are drawn again into scratch space before the entry that
follows them (so the generator is where the library's was), and hand-written algorithms are
replayed op for op. :attr:`CapturedPlan.draw_order` is ``None`` when this holds and says why
otherwise (an explicit generator inside the init code, draws interleaved across tensors, random
ops with no scheme). Applied with ``seed=``, every tensor draws its last scheme from its own
counter stream: the same distributions, name-keyed, shardable, on meta models.

>>> import torch, fanin
>>> from fanin.planning.capturing import capture
>>> factory = lambda: torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
>>> p = capture(factory)
>>> [(e.name, e.init, e.rule) for e in p][:2]  # doctest: +NORMALIZE_WHITESPACE
[('0.weight', 'kaiming_uniform(a=2.23606797749979)', 'Linear.reset_parameters'), ('0.bias', 'uniform(a=-0.5, b=0.5)',
'Linear.reset_parameters')]
>>> torch.manual_seed(0); reference = factory()
<torch._C.Generator object at ...>
>>> model = factory(); _ = fanin.apply(model, p, generator=torch.Generator().manual_seed(0))
>>> all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
True
"""

from __future__ import annotations

import copy
import inspect
import itertools
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, cast

import torch
from torch.overrides import TorchFunctionMode

from fanin.errors import FaninError
from fanin.planning.executor import check_random_source, reset_method, stream_key
from fanin.planning.records import Plan, PlanEntry, tensor_fields
from fanin.planning.resolve import fans_for
from fanin.planning.stats import Statistics, scheme_statistics
from fanin.rng.recording import DrawRecorder
from fanin.rng.stream import Stream
from fanin.rules.blocks import BoxStream, Layout, ObjectArg, blocked
from fanin.rules.rules import Rules
from fanin.rules.selectors import Target
from fanin.rules.targets import collect_targets
from fanin.schemes import Scheme
from fanin.schemes.registry import SchemeEntry

__all__ = ["CaptureError", "CapturedPlan", "capture"]

#: The largest computed tensor (``copy_`` of values, e.g. a rotary ``inv_freq``) kept as values.
MAX_VALUES = 1 << 16

_TORCH_INIT = {  # function name -> (fanin scheme, argument names)
    "uniform_": ("uniform", ("a", "b")),
    "normal_": ("normal", ("mean", "std")),
    "trunc_normal_": ("trunc_normal", ("mean", "std", "a", "b")),
    "constant_": ("constant", ("val",)),
    "ones_": ("ones", ()),
    "zeros_": ("zeros", ()),
    "eye_": ("eye", ()),
    "dirac_": ("dirac", ("groups",)),
    "xavier_uniform_": ("xavier_uniform", ("gain",)),
    "xavier_normal_": ("xavier_normal", ("gain",)),
    "kaiming_uniform_": ("kaiming_uniform", ("a", "mode", "nonlinearity")),
    "kaiming_normal_": ("kaiming_normal", ("a", "mode", "nonlinearity")),
    "orthogonal_": ("orthogonal", ("gain",)),
    "sparse_": ("sparse", ("sparsity", "std")),
}
_RANDOM_SCHEMES = {
    "uniform",
    "normal",
    "trunc_normal",
    "xavier_uniform",
    "xavier_normal",
    "kaiming_uniform",
    "kaiming_normal",
    "orthogonal",
    "sparse",
}

# Frames that are plumbing, not the init code a user wants cited.
_PLUMBING_FILES = (
    "torch/nn/init.py",
    "torch/overrides.py",
    "torch/utils/_contextlib.py",
    "torch/nn/modules/module.py",
    "torch/_tensor.py",
    "torch/nn/parameter.py",
    "torch/utils/_device.py",
    "transformers/initialization.py",
    "timm/layers/weight_init.py",
    "timm/models/_manipulate.py",
    "fanin/frameworks/torch.py",
    "fanin/rng/",
    "fanin/planning/capturing.py",
    "/contextlib.py",
    "/copy.py",
    "/functools.py",
)
_PLUMBING_FUNCTIONS = ("smart_apply", "_initialize_weights", "initialize_weights", "init_weights", "post_init")

_FACTORIES = {
    "zeros": "zeros",
    "zeros_like": "zeros",
    "new_zeros": "zeros",
    "ones": "ones",
    "ones_like": "ones",
    "new_ones": "ones",
    "full": "full",
    "full_like": "full",
    "new_full": "full",
    "empty": "empty",
    "empty_like": "empty",
    "new_empty": "empty",
    "empty_strided": "empty",
    "randn": "randn",
    "randn_like": "randn",
    "rand": "rand",
    "rand_like": "rand",
    "tensor": "values",
    "as_tensor": "values",
    "arange": "values",
    "linspace": "values",
    "logspace": "values",
    "eye": "values",
    "new_tensor": "values",
}
_RANDOM_OPS = ("random_", "bernoulli_", "exponential_", "cauchy_", "log_normal_", "geometric_")
_RANDOM_FACTORIES = ("randint", "randint_like", "randperm", "normal", "bernoulli", "multinomial", "poisson")
_AFFINE = ("mul_", "div_", "add_", "sub_", "clamp_", "clamp_min_", "clamp_max_", "neg_", "erfinv_")
_NOT_WRITES = ("requires_grad_", "retain_grad", "share_memory_", "detach_", "set_", "resize_", "record_stream")
_DERIVED = (
    "mul",
    "__mul__",
    "__rmul__",
    "add",
    "__add__",
    "__radd__",
    "sub",
    "__sub__",
    "__rsub__",
    "rsub",
    "div",
    "__truediv__",
    "neg",
    "__neg__",
    "to",
    "clone",
    "contiguous",
    "float",
    "double",
    "half",
    "bfloat16",
    "type_as",
    "expand",
    "repeat",
)


class CaptureError(FaninError, ValueError):
    """A model or init entry point that cannot be captured."""


# ------------------------------------------------------------------------------ captured schemes


def _steps_fn(tensor: torch.Tensor, generator=None, *, steps) -> torch.Tensor:
    with torch.no_grad():
        _run(steps.value, tensor, generator)
    return tensor


def _run(steps: tuple, tensor: torch.Tensor, generator) -> None:
    for step in steps:
        kind = step[0]
        if kind == "scheme":
            step[1](tensor, generator=generator)
        elif kind == "values":
            _, values, dtype, shape = step
            tensor.copy_(torch.tensor(values, dtype=dtype, device=tensor.device).reshape(shape))
        elif kind == "op":
            _, op, args = step
            getattr(tensor, op)(*args)
        elif kind == "erfinv":
            _, low, high, scale, shift, a, b = step
            if isinstance(generator, Stream):
                # The same distribution, element-local: N(shift, (scale/√2)²) cut to [a, b].
                generator.truncated_normal_(tensor, shift, scale / math.sqrt(2.0), a, b)
            else:
                tensor.uniform_(low, high, generator=generator)
                tensor.erfinv_().mul_(scale).add_(shift).clamp_(min=a, max=b)
        elif kind == "rows":
            _, r0, r1, squeezed, inner = step
            view = tensor[r0] if squeezed else tensor[r0:r1]
            gen = generator
            if isinstance(generator, Stream) and not isinstance(generator, DrawRecorder):
                gen = BoxStream(generator, tuple(tensor.shape), (r0,) + (0,) * (tensor.ndim - 1), squeeze=squeezed)
            _run(inner, view, gen)
        elif kind == "from":
            _, dtype, inner = step
            tmp = torch.empty(tuple(tensor.shape), dtype=dtype, device=tensor.device)
            _run(inner, tmp, generator)
            tensor.copy_(tmp)
        else:  # pragma: no cover - every step kind is built below
            raise AssertionError(kind)


class _Steps(tuple):
    """The steps of a captured scheme, shown as the code ran them."""

    def __repr__(self) -> str:
        return "; ".join(_describe(s) for s in self)


def _describe(step: tuple) -> str:
    kind = step[0]
    if kind == "scheme":
        return str(step[1])
    if kind == "values":
        return f"values[{len(step[1])}] {str(step[2]).replace('torch.', '')}"
    if kind == "op":
        return f"{step[1]}({', '.join(repr(a) for a in step[2])})"
    if kind == "erfinv":
        _, _low, _high, scale, shift, a, b = step
        return f"erfinv trunc_normal(mean={shift!r}, std={scale / math.sqrt(2.0)!r}, a={a!r}, b={b!r})"
    if kind == "rows":
        rows = f"[{step[1]}]" if step[3] else f"[{step[1]}:{step[2]}]"
        return f"rows{rows}: " + ", ".join(_describe(s) for s in step[4])
    return f"as {str(step[1]).replace('torch.', '')}: " + ", ".join(_describe(s) for s in step[2])


def _random(steps: tuple) -> bool:
    for s in steps:
        if s[0] == "scheme" and s[1].family not in ("constant", "identity"):
            return True
        if s[0] == "erfinv" or (s[0] in ("rows", "from") and _random(s[-1])):
            return True
    return False


def _steps_scheme(steps: tuple) -> Scheme:
    """The steps as one scheme (``captured.steps``), unless they are one registered scheme."""
    if len(steps) == 1 and steps[0][0] == "scheme":
        return steps[0][1]
    family = "normal" if _random(steps) else "constant"
    entry = SchemeEntry("captured.steps", _steps_fn, family, "captured", {"steps": None}, takes_generator=True)
    return Scheme(entry, steps=ObjectArg(_Steps(steps)))


def _with_burns(scheme: Scheme, burns: tuple) -> Scheme:
    """``scheme`` drawing the library's overwritten draws first (into scratch), when a torch.Generator is used."""
    if not burns:
        return scheme
    inner = scheme.entry

    def fn(tensor, generator=None, **args):
        if not isinstance(generator, Stream):
            for burn, shape, dtype in burns:
                device = generator.device if isinstance(generator, torch.Generator) else tensor.device
                with torch.no_grad():
                    burn(torch.empty(shape, dtype=dtype, device=device), generator=generator)
        if inner.takes_generator:
            return inner.fn(tensor, generator=generator, **args)
        return inner.fn(tensor, **args)

    fn.__module__ = __name__
    return Scheme(replace(inner, fn=fn, takes_generator=True), **scheme.args)


def _replay_scheme(method: str, replay: Callable[[torch.Tensor], None]) -> Scheme:
    """An opaque write, replayed by the module's own method on a copy (torch's global RNG)."""

    def fn(tensor, method=method):
        with torch.no_grad():
            replay(tensor)
        return tensor

    entry = SchemeEntry("captured.replay", fn, "identity", "captured", {"method": None}, takes_generator=False)
    return Scheme(entry, method=method)


# ---------------------------------------------------------------------------------- the record


@dataclass
class _Event:
    time: int
    region: tuple  # (storage offset, shape, stride)
    steps: tuple | None  # None: opaque
    source: str
    rng: tuple[int, ...] = ()  # sequence numbers of the random draws it made
    burn: tuple = ()  # ((fn(tensor, generator), shape, dtype), ...) to redo those draws
    reason: str = ""
    replay: Any = None  # (function, bound self, arguments) of the writing frame, for opaque replays
    created: str | None = None  # for creations: 'empty', 'constant', ...
    copied: bool = False  # its draws are another tensor's (a copy_ or cast of it)


class _Recorder:
    def __init__(self) -> None:
        self.time = 0
        self.events: dict[int, list[_Event]] = {}
        self.storages: dict[int, Any] = {}  # keeps storages alive, so their ids stay unique
        self.constants: dict[int, float] = {}
        self.active: list = []  # frames of known init functions now running, outermost first
        self.known = _known_codes()
        self.notes: list[str] = []
        self.unreplayable: list[str] = []

    # -------------------------------------------------------------- helpers
    def tick(self) -> int:
        self.time += 1
        return self.time

    def next_rng(self) -> int:
        # Draws are numbered on the same clock as writes, so both order the same timeline.
        return self.tick()

    def key(self, t: torch.Tensor) -> int:
        storage = t.untyped_storage()
        k = storage._cdata
        self.storages.setdefault(k, storage)
        return k

    def add(self, t: torch.Tensor, event: _Event) -> None:
        self.events.setdefault(self.key(t), []).append(event)

    def known_frame(self):
        """The outermost known init function now running (its frame), or ``None``."""
        return self.active[0] if self.active else None

    def profile(self, frame, event, arg) -> None:
        """``sys.setprofile`` hook: a known init function is recorded when it is called, with its
        arguments, whatever it then does (torch's trunc_normal_ returns at once on meta)."""
        if event == "call":
            spec = self.known.get(frame.f_code)
            if spec is not None:
                if not self.active:
                    self.init_call(dict(frame.f_locals), spec, _source(frame.f_back), _replay_of(frame.f_back))
                self.active.append(frame)
        elif event == "return" and self.active and frame is self.active[-1]:
            self.active.pop()

    # -------------------------------------------------------------- events
    def init_call(self, frame_or_args, spec, source: str, replay) -> None:
        """A known init function wrote its ``tensor`` argument."""
        name, arg_names = spec
        values = frame_or_args
        tensor = values.get("tensor")
        if not isinstance(tensor, torch.Tensor):
            return
        from fanin.schemes.registry import lookup

        defaults = lookup(name).parameters
        args = {}
        for a in arg_names:
            if a in values:
                v = values[a]
                if isinstance(v, torch.Tensor) or (
                    isinstance(v, int) and not isinstance(v, bool) and isinstance(defaults.get(a), float)
                ):
                    v = float(v)  # normal_(w, mean=0) is normal(mean=0.0): the scheme's own type
                args[a] = v
        if values.get("generator") is not None:
            self.notes.append(
                f"{source} passes its own generator to {name}: its draws cannot be replayed in the library's order"
            )
            self.unreplayable.append(source)
        try:
            scheme = (
                _constant(float(args["val"]))
                if name == "constant" and isinstance(args.get("val"), (int, float))
                else Scheme(name, **args)
            )
        except (TypeError, ValueError) as err:
            self.add(
                tensor,
                _Event(self.tick(), _region(tensor), None, source, reason=f"{name}({args}): {err}", replay=replay),
            )
            return
        rng: tuple[int, ...] = ()
        burn: tuple = ()
        if name in _RANDOM_SCHEMES and tensor.numel() > 0:
            rng = (self.next_rng(),)
            burn = ((scheme, tuple(tensor.shape), tensor.dtype),)
        self.add(tensor, _Event(self.tick(), _region(tensor), (("scheme", scheme),), source, rng, burn, replay=replay))

    def write(self, name: str, args: tuple, kwargs: dict) -> None:
        target = args[0]
        if self.active:
            return  # a known init function's own work, recorded when it was called
        caller = sys._getframe(2)
        source, replay = _source(caller), _replay_of(caller)
        region = _region(target)
        t = self.tick()
        if name in ("uniform_", "normal_"):
            a = _arg(args, kwargs, 1, "from" if name == "uniform_" else "mean", 0.0)
            b = _arg(args, kwargs, 2, "to" if name == "uniform_" else "std", 1.0)
            if kwargs.get("generator") is not None:
                self.notes.append(
                    f"{source} draws {name} from its own generator: not replayable in the library's order"
                )
                self.unreplayable.append(source)
            scheme = (
                Scheme("uniform", a=float(a), b=float(b))
                if name == "uniform_"
                else Scheme("normal", mean=float(a), std=float(b))
            )
            rng = (self.next_rng(),) if target.numel() else ()
            burn = ((scheme, tuple(target.shape), target.dtype),) if rng else ()
            steps: tuple | None = (("scheme", scheme),)
            if name == "uniform_":
                steps = (("op", "uniform_", (float(a), float(b))),)  # the start of a hand-written erfinv
            self.add(target, _Event(t, region, steps, source, rng, burn, replay=replay))
        elif name == "zero_":
            self.add(target, _Event(t, region, (("scheme", Scheme("zeros")),), source, replay=replay))
        elif name == "fill_":
            value = _scalar(_arg(args, kwargs, 1, "value", None))
            steps = None if value is None else (("scheme", _constant(value)),)
            self.add(target, _Event(t, region, steps, source, reason="fill_ with a tensor", replay=replay))
        elif name == "copy_":
            self.add(target, self.copy_event(t, region, _arg(args, kwargs, 1, "src", None), source, replay, target))
        elif name == "__setitem__":
            index, value = args[1], args[2]
            try:
                view = target[index]
            except Exception:
                view = None
            if view is None or view.untyped_storage()._cdata != target.untyped_storage()._cdata:
                self.add(
                    target,
                    _Event(t, region, None, source, reason="indexed assignment with advanced indexing", replay=replay),
                )
                return
            scalar = _scalar(value)
            if scalar is not None:
                self.add(target, _Event(t, _region(view), (("scheme", _constant(scalar)),), source, replay=replay))
            else:
                self.add(target, self.copy_event(t, _region(view), value, source, replay, view))
        elif name in _AFFINE:
            values = [_scalar(a) for a in args[1:]] + [_scalar(v) for v in kwargs.values()]
            if (
                any(v is None for v in values)
                or (name == "add_" and "alpha" in kwargs)
                or (name == "clamp_" and len(args) + len(kwargs) < 2)
            ):
                self.add(target, _Event(t, region, None, source, reason=f"{name} with tensor arguments", replay=replay))
                return
            if name == "clamp_":
                lo = _scalar(_arg(args, kwargs, 1, "min", None))
                hi = _scalar(_arg(args, kwargs, 2, "max", None))
                op_args: tuple = (lo, hi)
            else:
                op_args = tuple(values)
            self.add(target, _Event(t, region, (("op", name, op_args),), source, replay=replay))
        elif name in _RANDOM_OPS:
            self.unreplayable.append(f"{source}: {name}")
            self.add(
                target,
                _Event(t, region, None, source, rng=(self.next_rng(),), reason=f"{name} has no scheme", replay=replay),
            )
        else:
            self.add(target, _Event(t, region, None, source, reason=f"in-place {name}", replay=replay))

    def copy_event(self, t, region, src, source, replay, target) -> _Event:
        if not isinstance(src, torch.Tensor):
            scalar = _scalar(src)
            if scalar is None:
                return _Event(t, region, None, source, reason=f"copy_ of {type(src).__name__}", replay=replay)
            return _Event(t, region, (("scheme", _constant(scalar)),), source, replay=replay)
        k = src.untyped_storage()._cdata
        if k in self.constants:
            return _Event(t, region, (("scheme", _constant(self.constants[k])),), source, replay=replay)
        if not src.is_meta:
            flat = src.detach().reshape(-1)
            if flat.numel() and bool((flat == flat[0]).all()) and torch.isfinite(flat[0]):
                return _Event(t, region, (("scheme", _constant(float(flat[0]))),), source, replay=replay)
            if flat.numel() <= MAX_VALUES and tuple(src.shape) == tuple(target.shape):
                values = tuple(float(v) for v in flat.tolist())
                return _Event(t, region, (("values", values, src.dtype, tuple(src.shape)),), source, replay=replay)
        program = self.program_of(src)
        if program is not None and tuple(src.shape) == tuple(target.shape):
            steps, rng, burn = program
            if src.dtype != target.dtype:
                steps = (("from", src.dtype, steps),)
            return _Event(t, region, steps, source, rng, burn, replay=replay, copied=True)
        return _Event(t, region, None, source, reason="copy_ of a computed tensor", replay=replay)

    def program_of(self, src: torch.Tensor):
        """The steps that made a scratch tensor's whole value, if fanin can read them."""
        events = self.events.get(src.untyped_storage()._cdata, [])
        root = _region(src)
        prog = _program(events, root)
        if prog is None or prog.opaque or not prog.steps:
            return None
        return prog.steps, prog.rng, prog.burn

    def create(self, kind: str, out: torch.Tensor, args: tuple, kwargs: dict) -> None:
        if not isinstance(out, torch.Tensor):
            return
        if self.known_frame() is not None:
            return  # scratch space of a known init function
        caller = sys._getframe(2)
        source = _source(caller)
        t = self.tick()
        k = self.key(out)
        if kind in ("zeros", "ones", "full"):
            value = (
                0.0
                if kind == "zeros"
                else 1.0
                if kind == "ones"
                else _scalar(_arg(args, kwargs, -1, "fill_value", None))
            )
            if value is None:
                return
            self.constants[k] = value
            self.add(out, _Event(t, _region(out), (("scheme", _constant(value)),), source, created="constant"))
        elif kind == "empty":
            self.add(out, _Event(t, _region(out), (), source, created="empty"))
        elif kind in ("randn", "rand"):
            scheme = Scheme("normal") if kind == "randn" else Scheme("uniform")
            if kwargs.get("generator") is not None:
                self.unreplayable.append(f"{source}: torch.{kind} with its own generator")
            rng = (self.next_rng(),) if out.numel() else ()
            burn = ((scheme, tuple(out.shape), out.dtype),) if rng else ()
            self.add(out, _Event(t, _region(out), (("scheme", scheme),), source, rng, burn, created="random"))
        elif kind == "values":
            if not out.is_meta and out.numel() <= MAX_VALUES and out.is_floating_point():
                values = tuple(float(v) for v in out.detach().reshape(-1).tolist())
                self.add(
                    out,
                    _Event(
                        t, _region(out), (("values", values, out.dtype, tuple(out.shape)),), source, created="values"
                    ),
                )
            else:
                self.add(
                    out,
                    _Event(
                        t, _region(out), None, source, reason="created from values fanin cannot read", created="values"
                    ),
                )

    def random_factory(self, name: str, out) -> None:
        if self.known_frame() is not None:
            return
        source = _source(sys._getframe(2))
        self.unreplayable.append(f"{source}: torch.{name}")
        self.tick()

    def derived(self, name: str, args: tuple, kwargs: dict, out) -> None:
        """An out-of-place op on a constant tensor (``torch.ones(d) * 1e-5``) or a cast/copy of a scratch tensor."""
        if not isinstance(out, torch.Tensor) or self.known_frame() is not None:
            return
        inputs = [a for a in args if isinstance(a, torch.Tensor)]
        if len(inputs) != 1 or out.untyped_storage()._cdata == inputs[0].untyped_storage()._cdata:
            return
        src = inputs[0]
        k = src.untyped_storage()._cdata
        if k in self.constants:
            try:
                probe = torch.full((1,), self.constants[k], dtype=src.dtype)
                value = func_on(name, probe, args, kwargs, src)
            except Exception:
                value = None
            if value is not None:
                self.constants[self.key(out)] = value
                self.add(
                    out,
                    _Event(
                        self.tick(),
                        _region(out),
                        (("scheme", _constant(value)),),
                        _source(sys._getframe(2)),
                        created="constant",
                    ),
                )
            return
        if name in ("to", "clone", "contiguous", "float", "double", "half", "bfloat16", "type_as") and k in self.events:
            program = self.program_of(src)
            if program is None:
                return
            steps, rng, burn = program
            if src.dtype != out.dtype:
                steps = (("from", src.dtype, steps),)
            self.add(
                out,
                _Event(
                    self.tick(), _region(out), steps, _source(sys._getframe(2)), rng, burn, created="copy", copied=True
                ),
            )


def func_on(name: str, probe: torch.Tensor, args: tuple, kwargs: dict, src: torch.Tensor) -> float | None:
    """The value of a constant tensor after ``name`` (evaluated on one element, so rounding is torch's)."""
    other = [probe if a is src else a for a in args]
    if any(isinstance(a, torch.Tensor) and a is not probe for a in other):
        return None
    kw = {k: v for k, v in kwargs.items() if not isinstance(v, torch.Tensor) and k not in ("device", "memory_format")}
    op = getattr(torch.Tensor, name)
    if name in ("expand", "repeat"):
        result = probe
    elif name == "to":
        dtypes = [a for a in other[1:] if isinstance(a, torch.dtype)] + ([kw["dtype"]] if "dtype" in kw else [])
        result = probe.to(dtypes[0]) if dtypes else probe
    else:
        result = op(*other, **kw)
    if not isinstance(result, torch.Tensor) or result.numel() != 1:
        return None
    return float(result.reshape(-1)[0])


class _Mode(TorchFunctionMode):
    def __init__(self, recorder: _Recorder) -> None:
        super().__init__()
        self.r = recorder

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        r = self.r
        name = getattr(func, "__name__", "")
        if name in ("any", "all") and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            if r.known_frame() is not None:  # a rejection loop on meta: nothing left to redraw
                return torch.tensor(name == "all")
        if name == "__set__" and args and isinstance(args[0], torch.Tensor):
            pass  # ``param.data = t``: the parameter's storage becomes t's, read at the end
        elif (
            args
            and isinstance(args[0], torch.Tensor)
            and ((name.endswith("_") and not name.startswith("_") and name not in _NOT_WRITES) or name == "__setitem__")
        ):
            r.write(name, args, kwargs)
        out = func(*args, **kwargs)
        if name in _FACTORIES:
            r.create(_FACTORIES[name], out, args, kwargs)
        elif name in _RANDOM_FACTORIES:
            r.random_factory(name, out)
        elif name in _DERIVED:
            r.derived(name, args, kwargs, out)
        return out


def _known_codes() -> dict:
    codes = {}
    modules = [torch.nn.init]
    fanin_init = sys.modules.get("fanin.frameworks.torch")
    if fanin_init is not None:
        modules.append(fanin_init)
    for module in modules:
        for fname, spec in _TORCH_INIT.items():
            fn = getattr(module, fname, None)
            code = getattr(inspect.unwrap(fn), "__code__", None) if fn is not None else None
            if code is not None:
                codes[code] = spec
    return codes


def _arg(args: tuple, kwargs: dict, index: int, name: str, default):
    if name in kwargs:
        return kwargs[name]
    if index >= 0 and len(args) > index:
        return args[index]
    if index < 0 and len(args) > 1:
        return args[index]
    return default


def _scalar(v) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_meta:
        return float(v.reshape(-1)[0])
    return None


def _constant(value: float) -> Scheme:
    if value == 0.0 and math.copysign(1.0, value) > 0:
        return Scheme("zeros")
    if value == 1.0:
        return Scheme("ones")
    return Scheme("constant", val=value)


def _region(t: torch.Tensor) -> tuple:
    return (t.storage_offset(), tuple(t.shape), tuple(t.stride()))


def _is_plumbing(frame) -> bool:
    path = frame.f_code.co_filename.replace("\\", "/")
    return any(p in path for p in _PLUMBING_FILES) or (
        frame.f_code.co_name in _PLUMBING_FUNCTIONS and "transformers" in path
    )


def _source(frame) -> str:
    """The init code that wrote: the first frame, outward, that is not plumbing."""
    while frame is not None and _is_plumbing(frame):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return getattr(frame.f_code, "co_qualname", frame.f_code.co_name)


def _replay_of(frame):
    """(function, self, arguments) of the writing method, for replaying an opaque write."""
    while frame is not None and _is_plumbing(frame):
        frame = frame.f_back
    if frame is None:
        return None
    info = inspect.getargvalues(frame)
    return (frame.f_code, {a: info.locals.get(a) for a in info.args})


# --------------------------------------------------------------------------------- interpreting


@dataclass
class _Program:
    steps: tuple = ()
    rng: tuple[int, ...] = ()
    burn: tuple = ()
    sources: list[str] = field(default_factory=list)
    opaque: str | None = None
    replay: Any = None
    overwritten: list[_Event] = field(default_factory=list)
    written: bool = False
    uninitialized: bool = False
    first_time: int = 0
    copied: bool = False


def _classify(region: tuple, root: tuple):
    """``"whole"``, ``("rows", r0, r1, squeezed)`` or ``None`` for a region relative to the root tensor."""
    off, shape, stride = region
    roff, rshape, rstride = root
    numel = math.prod(rshape)
    if off == roff and shape == rshape and (stride == rstride or numel <= 1):
        return "whole"
    if off == roff and math.prod(shape) == numel and _contiguous(shape, stride) and _contiguous(rshape, rstride):
        return "whole"
    if not rshape or rstride[0] == 0:
        return None
    row = rstride[0]
    rel = off - roff
    if rel % row:
        return None
    r0 = rel // row
    if shape == rshape[1:] and stride == rstride[1:] and 0 <= r0 < rshape[0]:
        return ("rows", r0, r0 + 1, True)
    if len(shape) == len(rshape) and shape[1:] == rshape[1:] and stride == rstride and r0 + shape[0] <= rshape[0]:
        return ("rows", r0, r0 + shape[0], False)
    return None


def _contiguous(shape, stride) -> bool:
    expected = 1
    for n, s in zip(reversed(shape), reversed(stride), strict=True):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _inside(region: tuple, root: tuple) -> bool:
    off = region[0]
    roff, rshape, rstride = root
    span = sum((n - 1) * s for n, s in zip(rshape, rstride, strict=True)) + 1 if all(rshape) else 0
    return roff <= off < roff + max(span, 1)


def _program(events: list[_Event], root: tuple) -> _Program | None:
    prog = _Program()
    for e in events:
        if not _inside(e.region, root):
            continue
        where = _classify(e.region, root)
        if not prog.first_time:
            prog.first_time = e.time
        if e.created == "empty" and where == "whole":
            prog.uninitialized = True
            continue
        if where is None:
            prog.opaque = prog.opaque or f"{e.source} writes a part of it fanin cannot place (offset/stride)"
            prog.replay = prog.replay or e.replay
            prog.rng += e.rng
            continue
        if e.steps is None:
            prog.opaque = e.reason or "an op with no scheme"
            prog.replay = e.replay
            prog.sources.append(e.source)
            prog.rng += e.rng
            prog.written = True
            continue
        is_op = len(e.steps) == 1 and e.steps[0][0] == "op" and e.steps[0][1] != "uniform_"
        if where == "whole" and not is_op:
            # A new whole value: what was there before is overwritten (its draws become burns).
            if prog.written:
                prog.overwritten.append(_Event(0, (), prog.steps, "", prog.rng, prog.burn))
            prog.steps, prog.rng, prog.burn = tuple(e.steps), tuple(e.rng), tuple(e.burn)
            prog.copied = e.copied
            prog.sources = [e.source]
            prog.opaque, prog.replay = None, e.replay
        elif where == "whole":
            prog.steps += tuple(e.steps)
            prog.sources.append(e.source)
        else:
            _, r0, r1, squeezed = where
            prog.steps += (("rows", r0, r1, squeezed, tuple(e.steps)),)
            prog.rng += tuple(e.rng)
            prog.burn += tuple(e.burn)
            prog.copied = prog.copied or e.copied
            prog.sources.append(e.source)
        prog.written = True
        prog.uninitialized = False
    return prog


def _simplify(steps: tuple, shape: tuple[int, ...]) -> tuple:
    """Read hand-written patterns as the schemes they are."""
    out = list(steps)
    # uniform_(2l-1, 2u-1), erfinv_, mul_(std·√2), add_(mean), clamp_(a, b): the erfinv truncated normal.
    i = 0
    while i < len(out):
        s = out[i]
        if s[0] == "op" and s[1] == "uniform_":
            ops = [o[1] if o[0] == "op" else None for o in out[i + 1 : i + 5]]
            if ops == ["erfinv_", "mul_", "add_", "clamp_"]:
                low, high = s[2]
                (scale,), (shift,), (a, b) = out[i + 2][2], out[i + 3][2], out[i + 4][2]
                if a is not None and b is not None:
                    out[i : i + 5] = [("erfinv", low, high, scale, shift, a, b)]
                    i += 1
                    continue
            out[i] = ("scheme", Scheme("uniform", a=s[2][0], b=s[2][1]))
        elif s[0] in ("rows", "from"):
            out[i] = (*s[:-1], _simplify(s[-1], shape))
        i += 1
    return tuple(out)


def _as_scheme(steps: tuple, shape: tuple[int, ...]) -> Scheme:
    """One scheme for the steps: a registered one, padded_normal, a block scheme, or captured.steps."""
    if len(steps) == 2 and steps[0][0] == "scheme" and steps[0][1].name == "normal" and steps[1][0] == "rows":
        _, r0, _r1, squeezed, inner = steps[1]
        if squeezed and len(inner) == 1 and inner[0][0] == "scheme" and inner[0][1].name == "zeros" and len(shape) == 2:
            normal = steps[0][1].arguments
            return Scheme("fanin.padded_normal", padding_idx=r0, mean=normal["mean"], std=normal["std"])
    if steps and all(s[0] == "rows" and not s[3] and len(s[4]) == 1 and s[4][0][0] == "scheme" for s in steps):
        starts = [s[1] for s in steps]
        if (
            starts == sorted(starts)
            and starts[0] == 0
            and all(a[2] == b[1] for a, b in itertools.pairwise(steps))
            and steps[-1][2] == shape[0]
        ):
            schemes = [s[4][0][1] for s in steps]
            sizes = [s[2] - s[1] for s in steps]
            if len(set(map(str, schemes))) == 1 and len(set(sizes)) == 1:
                return blocked(schemes[0], Layout.split(len(sizes)))
            return blocked(schemes[0], Layout.split(sizes, schemes))
    return _steps_scheme(steps)


def _statistics(scheme: Scheme, steps: tuple, shape: tuple[int, ...], dtype: torch.dtype) -> Statistics | None:
    """What the steps draw: the scheme's statistics, carried through scaling and shifts."""
    if len(steps) == 1 and steps[0][0] == "scheme":
        try:
            return scheme_statistics(steps[0][1], shape, dtype)
        except (ValueError, TypeError):
            return None
    if scheme.name == "fanin.padded_normal":
        return scheme_statistics(
            Scheme("normal", mean=scheme.arguments["mean"], std=scheme.arguments["std"]), shape, dtype
        )
    base, rest = steps[0], steps[1:]
    if base[0] == "erfinv":
        _, _low, _high, scale, shift, a, b = base
        std = scale / math.sqrt(2.0)
        stats: Statistics | None = scheme_statistics(
            Scheme("trunc_normal", mean=shift, std=std, a=a, b=b), shape, dtype
        )
    elif base[0] == "scheme":
        try:
            stats = scheme_statistics(base[1], shape, dtype)
        except (ValueError, TypeError):
            stats = None
    else:
        return None
    for s in rest:
        if stats is None or s[0] != "op" or stats.std is None:
            return None
        op, args = s[1], s[2]
        mean, std, lo, hi = stats.mean or 0.0, stats.std, stats.low, stats.high
        if op in ("mul_", "div_"):
            k = args[0] if op == "mul_" else 1.0 / args[0]
            mean, std = mean * k, std * abs(k)
            lo, hi = (None if lo is None else lo * k), (None if hi is None else hi * k)
            if k < 0 and lo is not None and hi is not None:
                lo, hi = hi, lo
        elif op in ("add_", "sub_"):
            k = args[0] if op == "add_" else -args[0]
            mean = mean + k
            lo, hi = (None if lo is None else lo + k), (None if hi is None else hi + k)
        else:
            return None
        stats = Statistics(stats.distribution, mean, std, lo, hi)
    return stats


# ------------------------------------------------------------------------------------- the plan


@dataclass(frozen=True, repr=False)
class CapturedPlan(Plan):
    """A :class:`Plan` read from a model's own init code (see :mod:`fanin.planning.capturing`).

    It has the fields of a :class:`Plan` and these:

    Attributes:
        entry_point: What ran (``"GPT2LMHeadModel.initialize_weights()"``, ``"<lambda>() (construction)"``).
        opaque: ``(tensor, reason)`` for writes fanin could not interpret (replayed by the writing
            module's own method when applied).
        draw_order: ``None`` when a ``torch.Generator`` reproduces the library's values bit for
            bit, else the reason it cannot.
        burns: ``(tensor, count)``: the overwritten library draws redone before that tensor.
        notes: What else the capture saw.

    Examples:
        >>> import torch
        >>> p = capture(lambda: torch.nn.Linear(4, 3))
        >>> p.entry_point, p.opaque, p.draw_order
        ('<lambda>() (construction)', (), None)
    """

    entry_point: str = ""
    opaque: tuple[tuple[str, str], ...] = ()
    draw_order: str | None = None
    burns: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()

    def __repr__(self) -> str:
        n, opaque = len(self.entries), len(self.opaque)
        return (
            f"<CapturedPlan {self.model or 'model'}: {n} tensor{'s' * (n != 1)} from {self.entry_point or 'init code'}"
            f"{f', {opaque} opaque' if opaque else ''}>"
        )


def _clear_hf_flags(model: torch.nn.Module) -> None:
    for m in model.modules():
        if "_is_hf_initialized" in m.__dict__:
            m._is_hf_initialized = False  # type: ignore[assignment]  # torch types module attributes as tensors or modules
    for t in [*model.parameters(), *model.buffers()]:
        if hasattr(t, "_is_hf_initialized"):
            t._is_hf_initialized = False


def _is_hf(model: torch.nn.Module) -> bool:
    return any(c.__name__ == "PreTrainedModel" and c.__module__.startswith("transformers") for c in type(model).__mro__)


def _entry_point(model: torch.nn.Module, init) -> tuple[str, Callable[[torch.nn.Module], None]]:
    if init is not None:
        if isinstance(init, str):
            method = getattr(model, init, None)
            if not callable(method):
                raise CaptureError(f"capture(init={init!r}): {type(model).__name__} has no method {init!r}")
            return f"{type(model).__name__}.{init}()", lambda m: getattr(m, init)()
        if callable(init):
            return getattr(init, "__qualname__", repr(init)), init
        raise CaptureError(
            f"capture's init is a callable init(model) or a method name, got init={init!r} ({type(init).__name__})"
        )
    if _is_hf(model):
        for attr in ("initialize_weights", "init_weights"):
            if callable(getattr(model, attr, None)):

                def run(m, attr=attr):
                    _clear_hf_flags(m)
                    getattr(m, attr)()

                return f"{type(model).__name__}.{attr}()", run
    if callable(getattr(model, "init_weights", None)):
        return f"{type(model).__name__}.init_weights()", lambda m: m.init_weights()

    def reset_all(m: torch.nn.Module) -> None:
        for module in m.modules():
            fn = reset_method(module)
            if fn is not None:
                fn()

    return "reset_parameters() of every module", reset_all


def _meta_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of ``model`` whose parameters and buffers are on meta (global shapes), ties kept."""
    memo: dict[int, Any] = {}
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) in memo:
            continue
        empty = torch.empty(tuple(t.shape), dtype=t.dtype, device="meta")
        memo[id(t)] = (
            torch.nn.Parameter(empty, requires_grad=t.requires_grad) if isinstance(t, torch.nn.Parameter) else empty
        )
    for m in model.modules():  # plain tensor attributes that alias a buffer (rotary original_inv_freq)
        for v in m.__dict__.values():
            if isinstance(v, torch.Tensor) and id(v) not in memo and not v.is_meta and v.numel() > MAX_VALUES:
                memo[id(v)] = torch.empty(tuple(v.shape), dtype=v.dtype, device="meta")
    return copy.deepcopy(model, memo)


def _cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    clone = copy.deepcopy(model)
    if any(t.is_meta for t in [*clone.parameters(), *clone.buffers()]):
        clone = clone.to_empty(device="cpu")
    return clone


def _meta_failure(err: BaseException) -> bool:
    text = str(err).lower()
    return isinstance(err, NotImplementedError) or "meta" in text


def _record(run: Callable[[], Any]) -> tuple[_Recorder, Any]:
    recorder = _Recorder()
    state = torch.random.get_rng_state()
    previous = sys.getprofile()
    try:
        with torch.no_grad(), _Mode(recorder):
            sys.setprofile(recorder.profile)
            try:
                result = run()
            finally:
                sys.setprofile(previous)
    finally:
        torch.random.set_rng_state(state)
    return recorder, result


def capture(
    model: torch.nn.Module | Callable[[], torch.nn.Module],
    init: str | Callable[[torch.nn.Module], Any] | None = None,
    *,
    seed: int | None = None,
    device: str | None = None,
) -> CapturedPlan:
    """The plan of what ``model``'s own init code does (see the module docstring).

    Args:
        model: A module (its init is run on a scratch copy; the model is not touched), or a
            factory that builds one: a callable of no arguments, a class, a ``functools.partial``
            (its construction is captured).
        init: The entry point, only with a module: a callable ``init(scratch_model)`` or the name
            of a method of the model; default: detected (see the module docstring).
        seed: The plan's counter-stream seed (as :func:`fanin.plan`).
        device: ``"meta"`` or ``"cpu"`` for the scratch copy; by default meta, and a CPU copy
            when the init code reads values (meta tensors have none).

    Returns:
        The captured plan: one entry per tensor the code writes (its last write), ``keep`` for
        the parameters it never writes.

    Raises:
        TypeError: ``seed`` is not an int in ``[0, 2**64)``.
        CaptureError: ``device`` is not ``"meta"`` or ``"cpu"``; ``model`` is neither a module nor a
            factory, or the factory does not return a module; ``init`` is given with a factory, or is
            neither a callable nor a method of the model; or the entry point fails.

    Examples:
        >>> import torch
        >>> p = capture(torch.nn.Linear(4, 3))
        >>> p.entry_point, [e.init for e in p]
        ('reset_parameters() of every module', ['kaiming_uniform(a=2.23606797749979)', 'uniform(a=-0.5, b=0.5)'])
    """
    check_random_source(seed)
    if device not in (None, "meta", "cpu"):
        raise CaptureError(f"capture's device is 'meta' or 'cpu' (the scratch copy), got device={device!r}")
    devices = [device] if device is not None else ["meta", "cpu"]
    if isinstance(model, torch.nn.Module):
        entry_name, entry = _entry_point(model, init)

        def attempt(dev: str):
            scratch = _meta_copy(model) if dev == "meta" else _cpu_copy(model)
            recorder, _ = _record(lambda: entry(scratch))
            return recorder, scratch
    elif callable(model):
        if init is not None:
            raise CaptureError("capture(factory) captures the construction; init= applies to a built model")
        entry_name = f"{getattr(model, '__qualname__', type(model).__name__)}() (construction)"
        factory = model

        def attempt(dev: str):
            def build():
                with torch.device(dev):
                    built = factory()
                if not isinstance(built, torch.nn.Module):
                    raise CaptureError(f"capture's factory must return a torch.nn.Module, got {type(built).__name__}")
                if dev == "meta" and _is_hf(built):
                    # transformers skips its init when it constructs under a meta device context
                    # (PreTrainedModel.init_weights) and ties the weights first; on a real device
                    # post_init draws every tensor, then ties. Run the init here, on the tied model.
                    if device is None:
                        raise _RealDevice("transformers initializes only when it constructs on a real device")
                    _entry_point(built, None)[1](built)
                    if any(True for _ in _tied_names(built)):
                        recorder_notes.append(
                            "transformers ran its init after tying the weights (constructed on meta): "
                            "tied tensors are drawn once, not as the construction draws them"
                        )
                return built

            return _record(build)
    else:
        raise CaptureError(
            f"capture needs a torch.nn.Module or a factory of one, got model={model!r} ({type(model).__name__})"
        )

    notes: list[str] = []
    recorder_notes: list[str] = []
    for i, dev in enumerate(devices):
        try:
            recorder, scratch = attempt(dev)
            break
        except _RealDevice as why:
            notes.append(f"{why}: captured on a CPU construction")
            continue
        except CaptureError:
            raise
        except Exception as err:
            if dev == "meta" and i + 1 < len(devices) and _meta_failure(err):
                notes.append(
                    f"the init code reads values ({type(err).__name__}: {str(err).splitlines()[0][:120]}): captured "
                    f"on a CPU copy"
                )
                continue
            raise CaptureError(
                f"the init entry point {entry_name} failed on a {dev} copy: {type(err).__name__}: {err}"
            ) from err
    if recorder_notes:
        recorder.unreplayable.extend(recorder_notes)
    return _assemble(scratch, recorder, entry_name, seed, notes)


class _RealDevice(Exception):
    """The factory must run on a real device to initialize as it does in use."""


def _tied_names(model: torch.nn.Module):
    seen: set[int] = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            yield name
        seen.add(id(p))


def _assemble(
    scratch: torch.nn.Module, recorder: _Recorder, entry_name: str, seed: int | None, notes: list[str]
) -> CapturedPlan:
    # (order key, entry kwargs, (module, tensor) or None, what, program)
    rows: list[tuple[int, dict[str, Any], tuple[torch.nn.Module, torch.Tensor] | None, str, _Program]] = []
    opaque: list[tuple[str, str]] = []
    programs: list[tuple[Target, dict[str, Any], torch.nn.Module, torch.Tensor, _Program]] = []
    for _module_name, module, own in collect_targets(scratch):
        for target, tensor, aliases in own:
            events = recorder.events.get(tensor.untyped_storage()._cdata, [])
            prog = _program(events, _region(tensor))
            if prog is None:
                continue
            base: dict[str, Any] = {**tensor_fields(target, tensor.dtype), "aliases": aliases}
            programs.append((target, base, module, tensor, prog))
    # A value drawn for one tensor and copied into another (a deep-copied layer, copy_ between
    # parameters) belongs to the tensor that drew it; the copy cannot be redrawn independently.
    drawn = {r: t.name for t, _, _, _, prog in programs if not prog.copied for r in prog.rng}
    for t, _, _, _, prog in programs:  # copies of a tensor the model does not keep: the first copy has its values
        if prog.copied and prog.rng and not any(r in drawn for r in prog.rng):
            drawn.update({r: t.name for r in prog.rng})
            prog.copied = False
    for target, base, module, tensor, prog in programs:
        if prog.copied and any(r in drawn for r in prog.rng):
            other = drawn[next(r for r in prog.rng if r in drawn)]
            prog.opaque, prog.replay = f"a copy of {other}'s random values", None
            prog.rng = ()
        if not prog.written and not prog.opaque:
            if target.kind == "parameter":
                why = "created by torch.empty and never written" if prog.uninitialized else "not written"
                rows.append((prog.first_time or 10**12, base, None, why, prog))
            continue
        rows.append((min(prog.rng) if prog.rng else prog.first_time, base, (module, tensor), "write", prog))

    # Order: the library's order of first draws (entries without draws by their first write).
    rows.sort(key=lambda r: r[0])
    firsts = [(min(r[4].rng), i) for i, r in enumerate(rows) if r[3] == "write" and r[4].rng and not r[4].opaque]
    final_rng = {n for r in rows if r[3] == "write" for n in r[4].rng}
    # Every other draw the library made: overwritten values and scratch tensors the model does not keep.
    extra: list[tuple[int, tuple | None]] = []
    for r in rows:
        for e in r[4].overwritten:
            extra += list(zip(e.rng, e.burn, strict=True)) if len(e.burn) == len(e.rng) else [(n, None) for n in e.rng]
    seen = {n for n, _ in extra} | final_rng
    for events in recorder.events.values():
        for e in events:
            for j, n in enumerate(e.rng):
                if n not in seen:
                    seen.add(n)
                    extra.append((n, e.burn[j] if j < len(e.burn) else None))
    burns_for: dict[int, list] = {}
    reasons = list(dict.fromkeys(recorder.unreplayable))
    for n, burn in sorted(extra, key=lambda x: x[0]):
        later = [i for first, i in firsts if first > n]
        if not later:
            continue  # after the last kept draw: changes no value
        if burn is None:
            reasons.append("a random draw with no scheme is overwritten")
            continue
        burns_for.setdefault(min(later, key=lambda i: rows[i][0]), []).append(burn)
    # The replayed sequence must be the library's: each entry's draws contiguous after its burns.
    sequence = sorted(
        [n for r in rows if r[3] == "write" and not r[4].opaque for n in r[4].rng]
        + [n for n, b in extra if b is not None and any(f > n for f, _ in firsts)]
    )
    walk: list[int] = []
    burn_numbers = {id(b): n for n, b in extra if b is not None}
    for i, r in enumerate(rows):
        walk += [burn_numbers[id(b)] for b in burns_for.get(i, [])]
        if r[3] == "write" and not r[4].opaque:
            walk += list(r[4].rng)
    if walk != sequence:
        reasons.append("the library interleaves the draws of different tensors")
    if any(r[4].opaque and r[4].rng for r in rows):
        reasons.append("an opaque write draws random numbers")
    if any(r[4].opaque and r[4].opaque.startswith("a copy of") for r in rows):
        reasons.append("copies of another tensor's random values are drawn afresh")

    entries: list[PlanEntry] = []
    burn_counts: list[tuple[str, int]] = []
    for i, (_, base, owner, what, prog) in enumerate(rows):
        source = "; ".join(dict.fromkeys(prog.sources)) or entry_name
        if what != "write":
            entries.append(
                PlanEntry(
                    fans=None,
                    rule_index=None,
                    rule=f"{what} by {entry_name}",
                    action="keep",
                    scheme=None,
                    statistics=None,
                    stream=None,
                    **base,
                )
            )
            continue
        assert owner is not None  # every "write" row holds its module and tensor
        shape, dtype = base["shape"], owner[1].dtype
        if prog.opaque:
            opaque.append((base["name"], prog.opaque))
            scheme, action = _opaque_action(owner[0], base, prog)
            entries.append(
                PlanEntry(
                    fans=None,
                    rule_index=None,
                    rule=f"{source} (opaque: {prog.opaque})",
                    action=action,
                    scheme=scheme,
                    statistics=None,
                    stream=None,
                    **base,
                )
            )
            continue
        steps = _simplify(prog.steps, shape)
        scheme = _as_scheme(steps, shape)
        stats = _statistics(scheme, steps, shape, dtype if dtype.is_floating_point else torch.float32)
        burns = tuple(burns_for.get(i, ()))
        if burns:
            burn_counts.append((base["name"], len(burns)))
        entries.append(
            PlanEntry(
                fans=fans_for(shape, scheme),
                rule_index=None,
                rule=source,
                action="scheme",
                scheme=_with_burns(scheme, burns),
                statistics=stats,
                stream=stream_key(seed, base["name"]),
                **base,
            )
        )
    return CapturedPlan(
        entries=tuple(entries),
        rules=Rules((), leftovers="keep", name="captured"),
        leftovers="keep",
        seed=seed,
        source="stream" if seed is not None else "global",
        model=type(scratch).__name__,
        entry_point=entry_name,
        opaque=tuple(opaque),
        draw_order="; ".join(dict.fromkeys(reasons)) or None,
        burns=tuple(burn_counts),
        notes=tuple(dict.fromkeys([*notes, *recorder.notes])),
    )


def _opaque_action(module: torch.nn.Module, base: dict, prog: _Program):
    """How an opaque write is applied: the writing method run on a copy of the module, or reset_parameters."""
    replay = prog.replay
    local, kind = base["local"], base["kind"]
    if replay is not None:
        code, arguments = replay
        fn = _function_of(code, arguments)
        # The smallest module among the method's arguments that holds the tensor's module: the
        # module itself (HF's _init_weights(module)) or an ancestor (self.reset_parameters()).
        holders = []
        for k, v in arguments.items():
            if isinstance(v, torch.nn.Module):
                path = next((n for n, m in v.named_modules() if m is module), None)
                if path is not None:
                    holders.append((sum(1 for _ in v.modules()), k, v, path))
        if fn is not None and holders:
            _, key, holder, path = min(holders, key=lambda h: h[0])

            def run(tensor: torch.Tensor) -> None:
                clone = copy.deepcopy(holder)
                if any(t.is_meta for t in [*clone.parameters(), *clone.buffers()]):
                    clone = clone.to_empty(device=tensor.device)
                fn(**{k: (clone if k == key else v) for k, v in arguments.items()})
                owner = clone.get_submodule(path) if path else clone
                store = owner._parameters if kind == "parameter" else owner._buffers
                tensor.copy_(cast(torch.Tensor, store[local]))

            return _replay_scheme(getattr(code, "co_qualname", code.co_name), run), "scheme"
    if reset_method(module) is not None:
        return None, "reset_parameters"
    return None, "keep"


def _function_of(code, arguments: dict):
    """The function object of ``code``, found on the ``self`` argument's class or its module's globals."""
    this = arguments.get("self")
    if this is not None:
        for cls in type(this).__mro__:
            for v in vars(cls).values():
                if getattr(v, "__code__", None) is code:
                    return v
    return None
