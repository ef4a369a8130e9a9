r"""``Framework``: what fanin knows about one framework, in one record.

Every registered scheme belongs to one framework (:attr:`fanin.schemes.SchemeEntry.framework`
names it, :func:`fanin.frameworks.get_framework` gives its record). Code outside
:mod:`fanin.frameworks` asks the record instead of switching on a framework's name:

==================  =============================================================================
field / method      what it answers
==================  =============================================================================
``prefix``          the scheme-name prefix (``"keras."``; ``""`` for torch's own names)
``layout``          the native weight layout, a :data:`fanin.formulas.fans.LAYOUTS` name: torch
                    ``(out, in, *kernel)``; keras and tf1 ``(*kernel, in, out)``; jax the same with
                    named axes. It is also the framework's fans rule.
:meth:`fans`        the fans its schemes compute for a tensor (a torch weight is read as the
                    equivalent native kernel unless the scheme's ``layout`` argument says otherwise),
                    with the scheme arguments named in ``fan_axes``
:meth:`orthogonal_  how its orthogonal schemes flatten a kernel to a matrix: torch
shape`              (shape[0], prod(shape[1:])), the others (prod(shape[:-1]), shape[-1])
``orthogonal``      the names of its schemes that draw gain·Q for that flattened matrix (the
                    other schemes of the orthogonal family, delta-orthogonal and per-gate, are
                    structured); :meth:`orthogonal_matrix` gives the matrix one of them draws
``element_local``   the families whose schemes (registered through :meth:`register`) write every
                    element from its own draw only, so they may run on a DTensor's local shard
                    (:mod:`fanin.rng.sharded`); other schemes are computed whole on every rank
``preset``          the name of the preset of its layer defaults, ``None`` for none
``layer_defaults``  what a layer of each built-in torch type gets in that framework
                    (:class:`fanin.frameworks.layers.LayerDefaults`), ``None`` for none
``default_kernel``  the spec of its default kernel initializer (a dense or convolution layer's
                    weight), as the audit names it, with ``default_kernel_note`` saying so
``name_order``      the frameworks whose equivalent scheme names the audit lists, in this order,
                    for a tensor stored in this framework's layout (``()``: not an audit's native)
==================  =============================================================================

>>> from fanin.frameworks import get_framework
>>> keras = get_framework("keras")
>>> keras.fans((8, 3, 5, 5))  # a torch Conv2d weight, as Keras computes it for the kernel (5, 5, 3, 8)
Fans(fan_in=75, fan_out=200, receptive_field=25, layout='keras')
>>> keras.orthogonal_shape((5, 5, 3, 8))
(75, 8)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fanin.formulas.fans import LAYOUTS, Fans, compute_fans, kernel_shape_from_torch
from fanin.schemes.registry import FAMILIES, declare_framework, register

if TYPE_CHECKING:
    from fanin.frameworks.layers import LayerDefaults

__all__ = ["ELEMENTWISE", "Framework"]

#: The families whose values are drawn element by element (uniform, normal, truncated normal).
ELEMENTWISE = frozenset({"normal", "truncated_normal", "uniform"})


@dataclass(frozen=True)
class Framework:
    """One framework: its names, its layout and fans rule, what may run shard-locally, its presets.

    ``fan_axes`` maps the axis keywords of :func:`fanin.formulas.fans.compute_fans` to the scheme
    arguments that carry them, with their defaults: ``(("in_axis", "in_axis", -2), ...)`` for
    JAX, ``(("in_axis", "input_axes", None), ("out_axis", "output_axes", None))`` for Keras.
    """

    name: str
    title: str
    prefix: str
    layout: str
    aliases: tuple[str, ...] = ()
    fan_axes: tuple[tuple[str, str, Any], ...] = ()
    element_local: frozenset[str] = frozenset()
    orthogonal: frozenset[str] = frozenset()
    preset: str | None = None
    layer_defaults: LayerDefaults | None = field(default=None, compare=False, repr=False)
    default_kernel: str | None = None
    default_kernel_note: str = ""
    name_order: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"framework {self.name!r}: layout={self.layout!r} is not one of {LAYOUTS}")
        if self.prefix and not self.prefix.endswith("."):
            raise ValueError(f"framework {self.name!r}: a scheme-name prefix ends with '.', got prefix={self.prefix!r}")
        unknown = sorted(set(self.element_local) - set(FAMILIES))
        if unknown:
            raise ValueError(f"framework {self.name!r}: element_local names unknown families {unknown}")
        foreign = sorted(n for n in self.orthogonal if not self._owns(n))
        if foreign:
            raise ValueError(f"framework {self.name!r}: orthogonal names schemes of other frameworks {foreign}")
        if (self.preset is None) != (self.layer_defaults is None):
            raise ValueError(f"framework {self.name!r}: a preset needs layer defaults, and layer defaults a preset")

    @property
    def names(self) -> tuple[str, ...]:
        """The name and the aliases, as users may type them."""
        return (self.name, *self.aliases)

    def kernel_shape(self, shape: Sequence[int], layout: str = "torch") -> tuple[int, ...]:
        """The native kernel shape of a tensor of ``shape`` stored in ``layout`` (``"torch"``: a torch weight).

        Args:
            shape: The tensor's shape.
            layout: ``"torch"`` (a torch weight, permuted to the native kernel) or the native layout
                (returned as is).

        Returns:
            The native kernel shape.

        Examples:
            >>> from fanin.frameworks import get_framework
            >>> get_framework("jax").kernel_shape((32, 16, 3, 3))
            (3, 3, 16, 32)
        """
        shape = tuple(int(s) for s in shape)
        if self.layout == "torch" or layout != "torch":
            return shape
        return kernel_shape_from_torch(shape)

    def fans(self, shape: Sequence[int], arguments: Mapping[str, Any] | None = None) -> Fans:
        """The fans this framework's schemes compute for a tensor of ``shape``.

        Args:
            shape: The tensor's shape.
            arguments: The scheme's arguments: its ``layout`` and those named in ``fan_axes``
                (defaults for the missing ones).

        Returns:
            The fans.

        Raises:
            ValueError: What :func:`~fanin.formulas.fans.compute_fans` raises for a shape the rule
                cannot read (a 1-D tensor for torch's rule, axes out of range).

        Examples:
            >>> from fanin.frameworks import get_framework
            >>> get_framework("jax").fans((11, 100), {"out_axis": 0, "layout": "jax"}).fan_in  # Flax Embed
            100.00000000000001
        """
        args: Mapping[str, Any] = {} if arguments is None else arguments
        kernel = self.kernel_shape(shape, args.get("layout", "torch"))
        axes = {keyword: args.get(argument, default) for keyword, argument, default in self.fan_axes}
        return compute_fans(kernel, self.layout, **axes)

    def orthogonal_shape(self, kernel: Sequence[int]) -> tuple[int, int]:
        """The (rows, cols) matrix a kernel is flattened to by this framework's orthogonal initializer.

        Args:
            kernel: The native kernel shape (2 or more dims).

        Returns:
            ``(rows, cols)``: torch (shape[0], prod(shape[1:])), the others (prod(shape[:-1]), shape[-1]).

        Examples:
            >>> from fanin.frameworks import get_framework
            >>> torch_rule, tf1_rule = get_framework("torch"), get_framework("tf1")
            >>> torch_rule.orthogonal_shape((8, 3, 5, 5)), tf1_rule.orthogonal_shape((5, 5, 3, 8))
            ((8, 75), (75, 8))
        """
        kernel = tuple(int(s) for s in kernel)
        if self.layout == "torch":
            return kernel[0], math.prod(kernel[1:])
        return math.prod(kernel[:-1]), kernel[-1]

    def orthogonal_matrix(
        self, name: str, shape: Sequence[int], arguments: Mapping[str, Any] | None = None
    ) -> tuple[int, int] | None:
        """The (rows, cols) matrix that scheme ``name`` of this framework draws gain·Q for.

        Args:
            name: A scheme name of this framework.
            shape: The tensor's shape (2 or more dims).
            arguments: The scheme's arguments (its ``layout``: a torch weight unless it says otherwise).

        Returns:
            ``(rows, cols)``, or ``None`` when ``name`` is not one of :attr:`orthogonal`.

        Examples:
            >>> from fanin.frameworks import get_framework
            >>> keras = get_framework("keras")
            >>> keras.orthogonal_matrix("keras.orthogonal", (8, 3, 5, 5)), keras.orthogonal_matrix(
            ...     "keras.zeros", (8, 3)
            ... )
            ((75, 8), None)
        """
        if name not in self.orthogonal:
            return None
        layout = (arguments or {}).get("layout")
        return self.orthogonal_shape(self.kernel_shape(shape, "torch" if layout is None else layout))

    def _owns(self, name: str) -> bool:
        return (name.partition(".")[0] + "." if "." in name else "") == self.prefix

    def register(
        self,
        name: str,
        *,
        family: str,
        aliases: tuple[str, ...] = (),
        validate: Callable[..., None] | None = None,
    ) -> Callable[[Callable], Callable]:
        """Register a scheme function of this framework (a decorator, see :func:`fanin.schemes.registry.register`).

        The entry is element-local when its family is one of ``element_local``.

        Args:
            name: The scheme name, with the framework's prefix.
            family: The scheme's family.
            aliases: Other names of the scheme.
            validate: The argument check run when a scheme is built.

        Returns:
            The decorator.

        Raises:
            ValueError: ``name`` does not carry the framework's prefix, or what
                :func:`fanin.schemes.registry.register` raises.
        """
        if not self._owns(name):
            rule = f"starts with {self.prefix!r}" if self.prefix else "has no prefix (no '.')"
            raise ValueError(f"the name of a {self.name} scheme {rule}, got name={name!r}")
        declare_framework(self.name, self.aliases)
        return register(
            name,
            family=family,
            framework=self.name,
            aliases=aliases,
            validate=validate,
            element_local=family in self.element_local,
        )
