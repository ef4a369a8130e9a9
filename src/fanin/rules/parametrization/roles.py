"""The role of every parameter in a width/depth parametrization, read from the module graph.

muP (Yang et al., 2022, "Tensor Programs V", §4 and Table 3) sorts a network's tensors by which of
their dimensions grow with width:

==========  ==========================================  =====================================
role        what it is                                   width dimensions
==========  ==========================================  =====================================
embedding   the weight of an ``nn.Embedding`` input      fan_out (the embedding dimension)
input       a Linear/Conv fed by the data                fan_out
hidden      any other Linear/Conv (and ≥2-D) weight      fan_in and fan_out
readout     the layer feeding the loss                   fan_in
vector      biases and norm parameters of width dims     their one dimension
fixed       tensors with no width dimension              none (e.g. the readout's bias)
==========  ==========================================  =====================================

How the graph is read (each step can be overridden):

- **inputs**: every ``nn.Embedding``/``nn.EmbeddingBag``; if the model has none, the first
  ``nn.Linear``/``nn.Conv*d`` in ``named_modules()`` order. ``inputs=`` (module-name globs)
  names them instead.
- **readout**: the last ``nn.Linear``/``nn.Conv*d`` in ``named_modules()`` order, i.e. the layer
  registered last (``lm_head``, a classifier ``head``, an MLP's last layer); ``readout=`` names it.
  When its weight is an embedding's weight (tied, as in GPT-2), the tensor keeps the embedding
  role and the readout is marked on it (``tied_readout``).
- **width**: ``width=`` or, when not given, the output dimension of the input layers (the
  embedding dimension, ``out_features``, ``out_channels``); they must agree.
- tensors of other module types are classified by their dimensions: a dimension that is a
  multiple of the width is a width dimension (``roles=`` overrides any tensor's role).

A width dimension of size ``d`` has the base size ``d · base_width / width``, which must be a
whole number: a tensor whose dimension does not scale with the width cannot be given a base size,
and is refused with its name (give its role in ``roles=``).

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
>>> graph = read_roles(model)
>>> [(t.name, t.role, t.width_axes) for t in graph.tensors]  # doctest: +NORMALIZE_WHITESPACE
[('0.weight', 'input', 'fan_out'), ('0.bias', 'vector', 'fan_out'), ('2.weight', 'readout', 'fan_in'), ('2.bias',
'fixed', 'none')]
>>> graph.width, graph.readout
(32, ('2',))
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import nn

from fanin.errors import FaninError, describe_choice
from fanin.rules.selectors import Name
from fanin.rules.targets import collect_targets

__all__ = ["AXES", "ROLES", "Graph", "MupError", "TensorRole", "globs", "read_roles"]

ROLES = ("embedding", "fixed", "hidden", "input", "readout", "vector")
#: Which fans of a tensor grow with width: both (hidden), fan_in (readout), fan_out (input
#: weights, and the one dimension of a vector), none (fixed).
AXES = ("both", "fan_in", "fan_out", "none")
_AXES_OF = {
    "embedding": "fan_out",
    "input": "fan_out",
    "hidden": "both",
    "readout": "fan_in",
    "vector": "fan_out",
    "fixed": "none",
}

_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)
_EMBEDDINGS = (nn.Embedding, nn.EmbeddingBag)


class MupError(FaninError, ValueError):
    """A parametrization (muP, depth-muP, u-muP) that cannot be set up for this model or plan."""


@dataclass(frozen=True)
class TensorRole:
    """One parameter's role: its name (and tied aliases), shape, fans and which of them grow with width.

    ``fan_in``/``fan_out`` follow torch's layout (``shape[1]·receptive field`` /
    ``shape[0]·receptive field``), except for an embedding (``num_embeddings``, ``embedding_dim``):
    its one-hot input is the fan_in. A vector's one dimension is its ``fan_out``. ``why`` says how
    the role was found; ``kind`` is its role as :func:`fanin.rules.selectors.role_of` gives it
    (``weight``, ``bias``, ``norm_weight``, ...).
    """

    name: str
    aliases: tuple[str, ...]
    module: str
    module_type: str
    shape: tuple[int, ...]
    role: str
    fan_in: int
    fan_out: int
    width_axes: str
    why: str
    tied_readout: str | None = None
    kind: str = "weight"

    @property
    def n_width(self) -> int:
        """How many fans grow with width: 2 (matrix-like), 1 (vector-like) or 0."""
        return {"both": 2, "fan_in": 1, "fan_out": 1, "none": 0}[self.width_axes]


@dataclass(frozen=True)
class Graph:
    """What :func:`read_roles` found: every parameter's role, the width, the input and readout layers."""

    tensors: tuple[TensorRole, ...]
    width: int | None
    inputs: tuple[str, ...]
    readout: tuple[str, ...]
    attention: tuple[str, ...]

    def __getitem__(self, name: str) -> TensorRole:
        for t in self.tensors:
            if t.name == name or name in t.aliases:
                return t
        raise KeyError(describe_choice("tensor name", name, [t.name for t in self.tensors]))


def globs(what: str, value: object) -> tuple[str, ...] | None:
    """``None``, a glob or a sequence of globs, as a tuple (validated)."""
    if value is None:
        return None
    items = (value,) if isinstance(value, str) else value
    if (
        not isinstance(items, Sequence)
        or isinstance(items, (bytes, bytearray))
        or not items
        or not all(isinstance(g, str) and g for g in items)
    ):
        raise MupError(f"{what} takes a module-name glob or a list of globs, got {what}={value!r}")
    return tuple(items)


def _matching(patterns: tuple[str, ...], names: list[str]) -> list[str]:
    selectors = [Name(p) for p in patterns]
    return [n for n in names if any(s.matches_name(n) for s in selectors)]


def _out_dim(module: nn.Module) -> int:
    if isinstance(module, _EMBEDDINGS):
        return int(module.embedding_dim)
    if isinstance(module, nn.Linear):
        return int(module.out_features)
    return int(module.out_channels)  # type: ignore[arg-type]


def _fans(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    if isinstance(module, _EMBEDDINGS) and len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) >= 2:
        rf = math.prod(shape[2:])
        return shape[1] * rf, shape[0] * rf
    n = shape[0] if shape else 1
    return 1, n


def read_roles(
    model: nn.Module,
    *,
    width: int | None = None,
    base_width: int | None = None,
    readout: Sequence[str] | str | None = None,
    inputs: Sequence[str] | str | None = None,
    roles: Mapping[str, str] | None = None,
    need_width: bool = True,
) -> Graph:
    """Every parameter's :class:`TensorRole` (see the module docstring for how the graph is read).

    ``base_width`` given: every width dimension is checked to have a whole base size.
    ``need_width=False`` (u-muP, whose rules use absolute fans) does not require a width.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"read_roles needs a torch.nn.Module, got model={model!r} ({type(model).__name__})")
    readout_globs = globs("readout", readout)
    input_globs = globs("inputs", inputs)
    overrides = _overrides(roles)
    modules = dict(model.named_modules())
    names = list(modules)
    layers = [n for n in names if isinstance(modules[n], _LAYERS)]

    if readout_globs is not None:
        readout_names = _matching(readout_globs, names)
        if not readout_names:
            raise MupError(
                f"readout={list(readout_globs)!r} matches no module of {type(model).__name__}; modules: "
                f"{_sample(names)}"
            )
        bad = [n for n in readout_names if not isinstance(modules[n], (*_LAYERS, *_EMBEDDINGS))]
        if bad:
            raise MupError(
                f"readout={list(readout_globs)!r} matches {bad[0]!r} ({type(modules[bad[0]]).__name__}), not a Linear "
                f"or Conv layer"
            )
    else:
        if not layers:
            raise MupError(
                f"{type(model).__name__} has no Linear or Conv layer to be its readout: name it with readout="
            )
        readout_names = [layers[-1]]

    if input_globs is not None:
        input_names = _matching(input_globs, names)
        if not input_names:
            raise MupError(
                f"inputs={list(input_globs)!r} matches no module of {type(model).__name__}; modules: {_sample(names)}"
            )
        bad = [n for n in input_names if not isinstance(modules[n], (*_LAYERS, *_EMBEDDINGS))]
        if bad:
            raise MupError(
                f"inputs={list(input_globs)!r} matches {bad[0]!r} ({type(modules[bad[0]]).__name__}), not an "
                f"Embedding, Linear or Conv layer"
            )
        input_why = f"inputs={list(input_globs)!r}"
    else:
        input_names = [n for n in names if isinstance(modules[n], _EMBEDDINGS)]
        input_why = "an Embedding (input weights)"
        if not input_names:
            first = [n for n in layers if n not in readout_names]
            input_names = first[:1]
            input_why = "the first Linear/Conv in module order (input weights)"
    clash = sorted(set(input_names) & set(readout_names))
    if clash:
        raise MupError(
            f"module {clash[0]!r} is both an input layer and the readout: name them with inputs= and readout="
        )

    if width is None and need_width:
        dims = {n: _out_dim(modules[n]) for n in input_names}
        if not dims:
            raise MupError(
                f"{type(model).__name__} has no input layer to read its width from: give width= (or inputs=)"
            )
        if len(set(dims.values())) > 1:
            raise MupError(
                f"the input layers of {type(model).__name__} have different output sizes {dims!r}: give width= "
                "(the model's width, e.g. d_model)"
            )
        width = next(iter(dims.values()))
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise MupError(f"width must be a positive int, got width={width!r}")

    readout_of: dict[int, str] = {}
    for n in readout_names:
        w = modules[n]._parameters.get("weight")
        if w is not None:
            readout_of[id(w)] = n
    readout_biases = {
        id(modules[n]._parameters["bias"]) for n in readout_names if modules[n]._parameters.get("bias") is not None
    }
    input_ids = {
        id(modules[n]._parameters["weight"]) for n in input_names if modules[n]._parameters.get("weight") is not None
    }

    found: list[TensorRole] = []
    for module_name, module, own in collect_targets(model):
        for target, tensor, aliases in own:
            if target.kind != "parameter":
                continue
            shape = tuple(int(s) for s in tensor.shape)
            fan_in, fan_out = _fans(module, shape)
            tied = readout_of.get(id(tensor)) if id(tensor) in input_ids else None
            role, why = _role(
                module, target.role, tensor, shape, width, input_ids, readout_of, readout_biases, input_why
            )
            override = _override_for(overrides, target.name, aliases)
            if override is not None:
                role, why = override, f"roles={{{_pattern_for(overrides, target.name, aliases)!r}: {override!r}}}"
                tied = None
            axes = _AXES_OF[role]
            if role == "vector" and len(shape) >= 2 and not isinstance(module, _EMBEDDINGS):
                # A vector-like tensor of several dims (a cls token (1, 1, d)): its width dim is its fan_out.
                grows = [d for d in shape if width is not None and d % width == 0] or [max(shape)]
                fan_in, fan_out = 1, grows[0]
            t = TensorRole(
                target.name,
                aliases,
                module_name,
                type(module).__name__,
                shape,
                role,
                fan_in,
                fan_out,
                axes,
                why,
                tied,
                target.role,
            )
            if base_width is not None and width is not None:
                _check_base(t, width, base_width)
            found.append(t)
    attention = tuple(n for n in names if "attention" in type(modules[n]).__name__.lower())
    return Graph(tuple(found), width, tuple(input_names), tuple(readout_names), attention)


def _role(
    module, selector_role, tensor, shape, width, input_ids, readout_of, readout_biases, input_why
) -> tuple[str, str]:
    if id(tensor) in input_ids:
        kind = "embedding" if isinstance(module, _EMBEDDINGS) else "input"
        if id(tensor) in readout_of:
            return kind, f"{input_why}, tied to the readout {readout_of[id(tensor)]!r}"
        return kind, input_why
    if id(tensor) in readout_of:
        return "readout", "the readout (the layer feeding the loss)"
    if id(tensor) in readout_biases:
        return "fixed", "the readout's bias (no width dimension)"
    if isinstance(module, _LAYERS) and len(shape) >= 2:
        return "hidden", f"a {type(module).__name__} weight between width dimensions"
    if selector_role in ("bias", "norm_weight", "norm_bias", "recurrent_bias") and len(shape) == 1:
        return "vector", f"a {selector_role.replace('_', ' ')} (one width dimension)"
    if selector_role in ("input_weight", "recurrent_weight"):
        return "hidden", f"an RNN {selector_role.replace('_', ' ')}"
    # Anything else: its dimensions that are multiples of the width are width dimensions.
    if width is None:
        return ("hidden", "a >=2-D weight") if len(shape) >= 2 else ("vector", "a 1-D parameter")
    grows = [d % width == 0 for d in shape]
    if len(shape) >= 2 and grows[0] and grows[1]:
        return "hidden", f"dims {shape[0]} and {shape[1]} are multiples of width={width}"
    if sum(grows) == 1:
        return "vector", f"one dim is a multiple of width={width}"
    if not any(grows):
        return "fixed", f"no dim is a multiple of width={width}"
    raise MupError(
        f"cannot tell the role of {type(module).__name__} parameter of shape={shape} from its dimensions "
        f"(width={width}): give it with roles={{name: role}} ({', '.join(ROLES)})"
    )


def _check_base(t: TensorRole, width: int, base_width: int) -> None:
    dims = {
        "both": (("fan_in", t.fan_in), ("fan_out", t.fan_out)),
        "fan_in": (("fan_in", t.fan_in),),
        "fan_out": (("fan_out", t.fan_out),),
        "none": (),
    }[t.width_axes]
    for what, d in dims:
        if (d * base_width) % width:
            raise MupError(
                f"{t.name!r} ({t.role}, {t.why}) has {what}={d}, which does not scale with width={width}: its base "
                f"size {what}·base_width/width = {d * base_width / width:g} is not a whole number. Give its role "
                f"with roles={{{t.name!r}: ...}} ({', '.join(ROLES)}), or the model's width with width="
            )


def _overrides(roles: Mapping[str, str] | None) -> list[tuple[Name, str, str]]:
    if roles is None:
        return []
    if not isinstance(roles, Mapping):
        raise MupError(f"roles takes a mapping {{tensor-name glob: role}}, got roles={roles!r}")
    out = []
    for pattern, role in roles.items():
        if not isinstance(pattern, str) or not pattern:
            raise MupError(f"roles keys are tensor-name globs, got {pattern!r}")
        if role not in ROLES:
            raise MupError(describe_choice("role", role, ROLES) + f" (in roles={{{pattern!r}: {role!r}}})")
        out.append((Name(pattern), pattern, role))
    return out


def _override_for(overrides, name: str, aliases: tuple[str, ...]) -> str | None:
    for selector, _, role in overrides:
        if any(selector.matches_name(n) for n in (name, *aliases)):
            return role
    return None


def _pattern_for(overrides, name: str, aliases: tuple[str, ...]) -> str:
    return next(p for s, p, _ in overrides if any(s.matches_name(n) for n in (name, *aliases)))


def _sample(names: list[str]) -> str:
    shown = [repr(n) for n in names if n][:8]
    return ", ".join(shown) + (", ..." if len([n for n in names if n]) > 8 else "")
