r"""Fused and stacked parameters: fans from the logical layer, not from the storage.

One stored tensor often holds several logical layers:

=========================  ===================  ==================================================
layout                     storage              logical layers (what fans are computed from)
=========================  ===================  ==================================================
fused projection           (q+k+v, in)          row blocks (q, in), (k, in), (v, in), each with its
                                                own scheme (``nn.MultiheadAttention.in_proj_weight``,
                                                GPT-2 ``c_attn``, timm ``qkv``, Llama ``qkv_proj``)
gate-stacked RNN weight    (G·hidden, in)       G gate blocks (hidden, in): LSTM G=4, GRU G=3
stacked experts, out_in    (experts, out, in)   one (out, in) matrix per expert
stacked experts, in_out    (experts, in, out)   one (out, in) matrix per expert, stored transposed
                                                (Mixtral/Qwen-MoE ``gate_up_proj``/``down_proj``,
                                                torchtitan ``GroupedExperts`` ``w1``/``w2``/``w3``)
=========================  ===================  ==================================================

:class:`Layout` describes one of these; :func:`blocked` turns a scheme and a layout into a
scheme that fills each logical block with the scheme's values *computed for the block's shape*:
``xavier_uniform`` on a (3E, E) fused weight with ``Layout.split(3)`` draws each (E, E) block
from :math:`\mathcal{U}(\pm\sqrt{6/(E+E)})`, not :math:`\pm\sqrt{6/(3E+E)}`.

**Random source.** With a ``torch.Generator`` the blocks are drawn one after the other, in block
order, each as the scheme would draw a tensor of the block's shape (for a split layout this is
exactly ``scheme(weight[a:b])`` per block, as the libraries that init blocks separately do).
With a :class:`fanin.Stream` every block draws from the stream *of the whole tensor* at its own
element indices (a :class:`BoxStream`), so element ``i`` of the parameter has the same unit value
whatever the layout says, and a sharded parameter still gets its slice of the same values.

A transposed logical layout (``in_out`` experts) is drawn in storage order: an element-wise scheme
(uniform, normal, truncated normal) is resolved at the logical shape (its bounds or std, through
:class:`~fanin.rng.recording.DrawRecorder`) and then drawn over the stored block; an orthogonal
scheme is drawn on the stored block directly (the transpose of a Haar-orthogonal matrix is
Haar-orthogonal); other structured schemes (eye, dirac, sparse) need the storage layout to be
the logical one.

>>> import torch
>>> w = blocked("xavier_uniform", Layout.split(3))(torch.empty(24, 8), generator=torch.Generator().manual_seed(0))
>>> round(float(w[:8].abs().max()), 3) <= round((6 / 16) ** 0.5, 3)  # each block: fans (8, 8)
True
>>> block_fans(Layout.experts("in_out"), (4, 16, 32))
Fans(fan_in=16, fan_out=32, receptive_field=1, layout='torch')
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from fanin.errors import FaninError, describe_choice
from fanin.formulas.fans import Fans, compute_fans
from fanin.rng import sampling
from fanin.rng.recording import DrawRecorder
from fanin.rng.stream import Stream
from fanin.schemes import Scheme, get
from fanin.schemes.registry import SchemeEntry

__all__ = [
    "KINDS",
    "BlockError",
    "BoxStream",
    "Layout",
    "ObjectArg",
    "block_fans",
    "block_slices",
    "blocked",
    "detect",
    "is_blocked",
    "layout_of",
]

KINDS = ("experts", "split")
EXPERT_LAYOUTS = ("in_out", "out_in")
_ELEMENTWISE = ("uniform", "normal", "truncated_normal")


class BlockError(FaninError, ValueError):
    """A block layout that does not fit the tensor, or a scheme it cannot be drawn with."""


# ------------------------------------------------------------------------------------- streams


class BoxStream(Stream):
    """The stream of a whole tensor, seen from one box of it (``full_shape``, ``offsets``).

    A scheme filling the box with this stream gets exactly the values the whole tensor's stream
    has at those elements. ``squeeze`` removes the leading box dimension (a block that is one
    index of dim 0, e.g. one expert), so the scheme sees the logical shape.

    >>> s = Stream(0, "w")
    >>> full = s.normal_(torch.empty(4, 3), 0.0, 1.0)
    >>> part = BoxStream(s, (4, 3), (2, 0)).normal_(torch.empty(2, 3), 0.0, 1.0)
    >>> torch.equal(part, full[2:])
    True
    """

    __slots__ = ("_full", "_offsets", "_plain", "_squeeze")

    _full: tuple[int, ...]
    _offsets: tuple[int, ...]
    _squeeze: bool
    _plain: Stream

    def __init__(
        self, stream: Stream, full_shape: Sequence[int], offsets: Sequence[int], *, squeeze: bool = False
    ) -> None:
        super().__init__(stream.seed, stream.name)
        if isinstance(stream, BoxStream):  # a box of a box: one box of the outermost tensor
            if stream._squeeze:
                raise BlockError("a box inside a squeezed box is not supported")
            offsets = tuple(o + p for o, p in zip(stream._offsets, offsets, strict=True))
            full_shape = stream._full
        self._full = tuple(int(s) for s in full_shape)
        self._offsets = tuple(int(o) for o in offsets)
        self._squeeze = squeeze
        # The whole tensor's stream draws the box: its own internal fills must not be boxed again.
        self._plain = Stream(stream.seed, stream.name)

    def __repr__(self) -> str:
        return f"BoxStream({Stream(self.seed, self.name)!r}, full_shape={self._full}, offsets={self._offsets})"

    def _box(self, tensor: torch.Tensor, box: dict) -> tuple[torch.Tensor, dict]:
        if box.get("index") is not None:
            raise BlockError("a BoxStream takes offsets, not index=")
        inner = tuple(box.get("offsets") or (0,) * (tensor.ndim))
        view = tensor.unsqueeze(0) if self._squeeze else tensor
        if self._squeeze:
            inner = (0, *inner)
        offsets = tuple(o + i for o, i in zip(self._offsets, inner, strict=True))
        rest = {k: v for k, v in box.items() if k not in ("offsets", "full_shape", "index")}
        return view, {"full_shape": self._full, "offsets": offsets, **rest}

    def fill_(self, tensor, transform, **box):
        view, full = self._box(tensor, box)
        self._plain.fill_(view, transform, **full)
        return tensor

    def orthogonal_(self, tensor, gain=1.0, **box):
        """An orthogonal matrix *of the block* (QR of the block's Gaussian), whose Gaussian values
        are the whole tensor's stream at the block's elements (a block is whole rows of the
        tensor's (rows, cols) view, so those are a box of it)."""
        if box:
            raise BlockError("orthogonal on a box of a block is not supported")
        cols = math.prod(tuple(tensor.shape)[1:]) if tensor.ndim >= 2 else 1
        strides = [math.prod(self._full[d + 1 :]) for d in range(len(self._full))]
        first = sum(o * st for o, st in zip(self._offsets, strides, strict=True))
        whole = math.prod(self._full)
        if cols == 0 or first % cols or whole % cols:
            raise BlockError(
                f"orthogonal on block {tuple(tensor.shape)} at {self._offsets} of {self._full}: not whole rows"
            )
        gaussian = _BlockGaussian(self._plain, (whole // cols, cols), (first // cols, 0))
        Stream.orthogonal_(gaussian, tensor, gain)
        return tensor

    def sparse_mask(self, shape, num_zeros, *, device=None, **box):
        shape = tuple(shape)
        if self._squeeze:
            raise BlockError("sparse on a squeezed block is not supported")
        inner = tuple(box.get("offsets") or (0,) * len(shape))
        offsets = tuple(o + i for o, i in zip(self._offsets, inner, strict=True))
        return self._plain.sparse_mask(shape, num_zeros, full_shape=self._full, offsets=offsets, device=device)


class _BlockGaussian(Stream):
    """The Gaussian of one block, read from the whole tensor's stream (for :meth:`BoxStream.orthogonal_`)."""

    __slots__ = ("_box_full", "_box_offsets", "_whole")

    def __init__(self, stream: Stream, full_shape: tuple[int, int], offsets: tuple[int, int]) -> None:
        super().__init__(stream.seed, stream.name)
        self._whole, self._box_full, self._box_offsets = stream, full_shape, offsets

    def normal_(self, tensor, mean, std, **box):
        backend = box.get("backend", "auto")
        return self._whole.normal_(
            tensor, mean, std, full_shape=self._box_full, offsets=self._box_offsets, backend=backend
        )


# -------------------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class Layout:
    """How one stored tensor splits into logical layers.

    ``kind="split"``: dim 0 is cut into blocks of ``sizes`` rows (``schemes``, if given, one per
    block, else the rule's scheme for all). ``kind="experts"``: dim 0 indexes experts, each a
    matrix stored ``out_in`` (out, in) or ``in_out`` (in, out).

    >>> Layout.split(3).sizes_for((12, 4))
    (4, 4, 4)
    >>> Layout.split((8, 2, 2)).sizes_for((12, 4))
    (8, 2, 2)
    >>> Layout.split(5).sizes_for((12, 4))  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    fanin.rules.blocks.BlockError: Layout split(5) cuts dim 0 into 5 equal blocks, but the tensor has shape=(12, 4):
    12 is not a multiple of 5
    """

    kind: str
    parts: int | None = None
    sizes: tuple[int, ...] | None = None
    expert_layout: str | None = None
    schemes: tuple[Scheme, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise BlockError(describe_choice("block kind", self.kind, KINDS))
        if self.kind == "experts" and self.expert_layout not in EXPERT_LAYOUTS:
            raise BlockError(describe_choice("expert layout", self.expert_layout, EXPERT_LAYOUTS))

    @classmethod
    def split(cls, blocks: int | Sequence[int], schemes: Sequence[object] | None = None) -> Layout:
        """Row blocks of dim 0: ``blocks`` equal parts, or explicit sizes; optionally a scheme per block."""
        parts, sizes = None, None
        if isinstance(blocks, bool) or not isinstance(blocks, (int, Sequence)) or isinstance(blocks, str):
            raise BlockError(f"blocks is a number of equal parts or a sequence of sizes, got blocks={blocks!r}")
        if isinstance(blocks, int):
            if blocks < 1:
                raise BlockError(f"blocks must be >= 1, got blocks={blocks!r}")
            parts = blocks
        else:
            sizes = tuple(blocks)
            if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
                raise BlockError(f"block sizes are positive ints, got blocks={blocks!r}")
        resolved = None
        if schemes is not None:
            resolved = tuple(get(s) for s in schemes)  # type: ignore[arg-type]
            n = parts if parts is not None else len(sizes or ())
            if len(resolved) != n:
                raise BlockError(
                    f"Layout.split needs one scheme per block: {n} block(s), got {len(resolved)} scheme(s)"
                )
        return cls("split", parts=parts, sizes=sizes, schemes=resolved)

    @classmethod
    def experts(cls, layout: str = "out_in") -> Layout:
        """Stacked expert matrices: dim 0 indexes experts, each stored (out, in) or (in, out)."""
        return cls("experts", expert_layout=layout)

    def sizes_for(self, shape: Sequence[int]) -> tuple[int, ...]:
        """The block sizes along dim 0 for a tensor of ``shape`` (checked)."""
        shape = tuple(shape)
        if not shape:
            raise BlockError(f"Layout {self} needs a tensor with a dim 0, got shape={shape}")
        if self.kind == "experts":
            if len(shape) != 3:
                raise BlockError(f"Layout {self} needs a 3-D tensor (experts, a, b), got shape={shape}")
            return (1,) * shape[0]
        if self.parts is not None:
            if shape[0] % self.parts:
                raise BlockError(
                    f"Layout {self} cuts dim 0 into {self.parts} equal blocks, but the tensor has shape={shape}: "
                    f"{shape[0]} is not a multiple of {self.parts}"
                )
            return (shape[0] // self.parts,) * self.parts
        assert self.sizes is not None
        if sum(self.sizes) != shape[0]:
            raise BlockError(
                f"Layout {self} has blocks of {sum(self.sizes)} rows in all, but the tensor has shape={shape}"
            )
        return self.sizes

    def logical_shape(self, block_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The torch-layout (out, in, *k) shape of one block as stored (experts: without the expert dim)."""
        if self.kind == "experts":
            a, b = block_shape[-2:]
            return (a, b) if self.expert_layout == "out_in" else (b, a)
        return block_shape

    def __str__(self) -> str:
        if self.kind == "experts":
            return f"experts({self.expert_layout})"
        what = str(self.parts) if self.parts is not None else str(list(self.sizes or ()))
        if self.schemes is not None:
            what += ", " + "[" + ", ".join(str(s) for s in self.schemes) + "]"
        return f"split({what})"


def layout_of(spec: object) -> Layout:
    """Read a layout: a :class:`Layout`, an int or sizes (split), ``"experts"``/``"experts:in_out"``,
    or ``"split:3"``.

    >>> str(layout_of("experts:in_out")), str(layout_of(4))
    ('experts(in_out)', 'split(4)')
    """
    if isinstance(spec, Layout):
        return spec
    if isinstance(spec, str):
        kind, _, arg = spec.partition(":")
        if kind == "experts":
            return Layout.experts(arg or "out_in")
        if kind == "split" and arg.isdigit():
            return Layout.split(int(arg))
        raise BlockError(
            f"Cannot read block layout {spec!r}: accepted 'experts', 'experts:out_in', 'experts:in_out', "
            "'split:N', an int or a sequence of block sizes"
        )
    if isinstance(spec, (int, list, tuple)) and not isinstance(spec, bool):
        return Layout.split(spec)
    raise BlockError(f"A block layout is a Layout, an int, a sequence of sizes or 'experts[:layout]', got {spec!r}")


def block_fans(layout: Layout, shape: Sequence[int]) -> Fans:
    """The fans of one logical block of a tensor of ``shape`` (all blocks of a split with equal
    sizes share them; unequal splits report the first block's)."""
    shape = tuple(int(s) for s in shape)
    if layout.kind == "experts":
        layout.sizes_for(shape)
        in_axis, out_axis = (2, 1) if layout.expert_layout == "out_in" else (1, 2)
        return compute_fans(shape, "torch", in_axis=in_axis, out_axis=out_axis, batch_axis=0)
    first = layout.sizes_for(shape)[0]
    return compute_fans((first, *shape[1:]), "torch")


# -------------------------------------------------------------------------------------- schemes


def block_slices(layout: Layout, shape: tuple[int, ...]) -> list[tuple[int, int, Any, tuple[int, ...], bool]]:
    """``(start, size, view index, logical shape, squeezed)`` per block."""
    out: list[tuple[int, int, Any, tuple[int, ...], bool]] = []
    start = 0
    for size in layout.sizes_for(shape):
        if layout.kind == "experts":
            out.append((start, 1, start, layout.logical_shape(shape[1:]), True))
        else:
            out.append((start, size, slice(start, start + size), (size, *shape[1:]), False))
        start += size
    return out


def _resolved_draw(scheme: Scheme, logical: tuple[int, ...], dtype: torch.dtype) -> tuple | None:
    """The single element-wise draw ``scheme`` makes at ``logical`` shape (``None`` if it makes another kind)."""
    recorder = DrawRecorder(stop_at_structure=True)
    try:
        scheme(torch.empty((), dtype=dtype).expand(logical), generator=recorder)
    except (DrawRecorder.Stop, RuntimeError):
        return None
    if len(recorder.calls) == 1 and recorder.calls[0][0] in ("uniform", "normal", "truncated_normal"):
        return recorder.calls[0]
    return None


def _draw(view: torch.Tensor, call: tuple, generator) -> None:
    kind, *args = call
    if kind == "uniform":
        sampling.uniform_(view, args[0], args[1], generator)
    elif kind == "normal":
        sampling.normal_(view, args[0], args[1], generator)
    else:
        mean, std, a, b = args
        sampling.truncated_normal_(view, mean, std, a, b, generator=generator)


def _fill_block(scheme: Scheme, view: torch.Tensor, logical: tuple[int, ...], generator) -> None:
    if tuple(view.shape) == logical or scheme.family in ("constant",):
        scheme(view, generator=generator)
        return
    if scheme.family == "orthogonal":
        # Haar measure is invariant under transposition: orthogonal on the stored block is
        # orthogonal on the logical one (gain is the only argument that matters).
        scheme(view, generator=generator)
        return
    if scheme.family in _ELEMENTWISE:
        call = _resolved_draw(scheme, logical, view.dtype)
        if call is not None:
            _draw(view, call, generator)
            return
    raise BlockError(
        f"scheme {str(scheme)!r} cannot be drawn on a block stored as {tuple(view.shape)} whose logical "
        f"shape is {logical}: only element-wise (uniform, normal, truncated normal), constant and orthogonal "
        "schemes can be; give the block in its logical layout"
    )


def _blocked_fn(tensor: torch.Tensor, generator=None, *, scheme, layout):
    scheme, layout = scheme.value, layout.value
    shape = tuple(tensor.shape)
    schemes = layout.schemes
    with torch.no_grad():
        for i, (start, _size, index, logical, squeezed) in enumerate(block_slices(layout, shape)):
            s = schemes[i] if schemes is not None else scheme
            view = tensor[index]
            if isinstance(generator, Stream) and not isinstance(generator, DrawRecorder):
                offsets = (start,) + (0,) * (len(shape) - 1)
                gen: Any = BoxStream(generator, shape, offsets, squeeze=squeezed)
            else:
                gen = generator
            _fill_block(s, view, logical, gen)
    return tensor


class ObjectArg(str):
    """An argument that is an object (a scheme, a layout, captured steps), shown and serialized
    by its text: ``str(scheme)`` and ``to_json()`` carry the text, ``.value`` the object."""

    value: Any

    def __new__(cls, value: object) -> ObjectArg:
        self = super().__new__(cls, str(value))
        self.value = value
        return self

    def __repr__(self) -> str:
        return str.__str__(self)


def _family(layout: Layout, scheme: Scheme) -> str:
    # The registry's family of the blocks' values; a mix takes its first random family, so that a
    # sharded parameter is still refused a torch.Generator (fanin.rng.sharded).
    families = [s.family for s in (layout.schemes or (scheme,))]
    return next((f for f in families if f != "constant"), families[0])


def blocked(scheme: object, layout: object) -> Scheme:
    """``scheme`` drawn per logical block of ``layout`` (see the module docstring).

    >>> str(blocked("kaiming_uniform(a=sqrt(5))", "experts:in_out"))
    'fanin.blocks(scheme=kaiming_uniform(a=2.23606797749979), layout=experts(in_out))'
    """
    s = get(scheme)  # type: ignore[arg-type]
    lay = layout_of(layout)
    for sub in lay.schemes or (s,):
        if sub.family not in (*_ELEMENTWISE, "constant", "orthogonal") and sub.family != "identity":
            raise BlockError(f"scheme {str(sub)!r} (family {sub.family}) cannot be drawn per block")
    entry = SchemeEntry(
        "fanin.blocks",
        _blocked_fn,
        _family(lay, s),
        "fanin",
        {"scheme": None, "layout": None},
        takes_generator=True,
    )
    return Scheme(entry, scheme=ObjectArg(s), layout=ObjectArg(lay))


def is_blocked(scheme: object) -> bool:
    """True for a scheme made by :func:`blocked`."""
    return (
        isinstance(scheme, Scheme)
        and scheme.name == "fanin.blocks"
        and isinstance(scheme.args.get("layout"), ObjectArg)
    )


def parts_of(scheme: Scheme) -> tuple[Scheme, Layout]:
    """The inner scheme and the layout of a :func:`blocked` scheme."""
    return scheme.args["scheme"].value, scheme.args["layout"].value


# ------------------------------------------------------------------------------------ detection

_QKV_NAMES = re.compile(r"(^|[._])(qkv|in_proj|c_attn|query_key_value|Wqkv|qkv_proj|wqkv)([._]|$)")
_EXPERT_NAMES = re.compile(r"(^|[._])(experts?|moe)([._]|$)", re.IGNORECASE)
_EXPERT_IN_OUT = ("gate_up_proj", "down_proj", "w1", "w2", "w3")


@dataclass(frozen=True)
class Detected:
    """A stored tensor that holds several logical layers, and why fanin thinks so."""

    name: str
    layout: Layout
    evidence: str


def detect(model: torch.nn.Module) -> list[Detected]:
    """Tensors of ``model`` that are fused or stacked, by the common layouts:

    - ``nn.MultiheadAttention.in_proj_weight`` (3E, E): split(3);
    - RNN/LSTM/GRU ``weight_ih*``/``weight_hh*``: split into the module's gates (4 for LSTM, 3 for GRU);
    - a 2-D weight named ``qkv``/``in_proj``/``c_attn``/``query_key_value``/``qkv_proj`` whose rows
      are 3x its columns: split(3) (Conv1D-style storage (in, 3·out) is reported the same way, on dim 1
      being 3x dim 0, as a note: its blocks run along columns);
    - a 3-D parameter under a module named ``experts``/``moe``: experts; ``in_out`` when its last dim
      equals another expert tensor's middle dim and it is named as Hugging Face's and torchtitan's
      stacked experts (``gate_up_proj``, ``down_proj``, ``w1``..``w3``), ``out_in`` otherwise.

    >>> [(d.name, str(d.layout)) for d in detect(torch.nn.LSTM(3, 5))]
    [('weight_ih_l0', 'split(4)'), ('weight_hh_l0', 'split(4)')]
    """
    found: list[Detected] = []
    for module_name, module in model.named_modules():
        for local, p in module.named_parameters(recurse=False):
            name = f"{module_name}.{local}" if module_name else local
            shape = tuple(p.shape)
            if isinstance(module, torch.nn.MultiheadAttention) and local == "in_proj_weight":
                found.append(Detected(name, Layout.split(3), "nn.MultiheadAttention stacks q, k, v in in_proj_weight"))
            elif isinstance(module, (torch.nn.RNNBase, torch.nn.RNNCellBase)) and local.startswith(
                ("weight_ih", "weight_hh")
            ):
                gates = {"LSTM": 4, "GRU": 3, "LSTMCell": 4, "GRUCell": 3}.get(type(module).__name__, 1)
                if gates > 1:
                    found.append(
                        Detected(name, Layout.split(gates), f"{type(module).__name__} stacks {gates} gates on dim 0")
                    )
            elif len(shape) == 2 and _QKV_NAMES.search(name) and shape[0] == 3 * shape[1]:
                found.append(
                    Detected(
                        name,
                        Layout.split(3),
                        f"named like a fused q/k/v projection, shape {shape} = (3·{shape[1]}, {shape[1]})",
                    )
                )
            elif len(shape) == 3 and _EXPERT_NAMES.search(name):
                lay = "in_out" if local in _EXPERT_IN_OUT else "out_in"
                found.append(
                    Detected(
                        name,
                        Layout.experts(lay),
                        f"3-D parameter of an experts module (experts={shape[0]}), stored {lay}",
                    )
                )
    return found
