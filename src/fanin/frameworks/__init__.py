"""Frameworks as units: one module per framework, each with its schemes, its layer defaults and its record.

=====================================  ===========  =======  =====================================
module                                 framework    prefix   what it holds
=====================================  ===========  =======  =====================================
:mod:`fanin.frameworks.torch`          ``torch``    (none)   ``torch.nn.init``, bit for bit; layer
                                                             defaults: ``reset_parameters``
:mod:`fanin.frameworks.keras`          ``keras``    keras.   Keras 3 initializers; Keras layers
:mod:`fanin.frameworks.tf1`            ``tf1``      tf1.     ``tf.*_initializer`` (r1.15); TF 1.x
                                                             layers and cells
:mod:`fanin.frameworks.jax`            ``jax``      jax.     ``jax.nn.initializers``; Flax linen
                                       (``flax``)            layers (preset ``"flax"``)
:mod:`fanin.frameworks.fanin`          ``fanin``    fanin.   fanin's composites (gate blocks,
                                                             padded rows); ``lsuv``
=====================================  ===========  =======  =====================================

Each module defines a :class:`~fanin.frameworks.record.Framework` record (:data:`FRAMEWORKS`
lists them, :func:`get_framework` finds one by name or alias) and registers its schemes through
it (:func:`framework_of` gives a scheme's record); :mod:`fanin.frameworks.layers` and
:mod:`fanin.frameworks.shared` hold what several of them share, and :mod:`fanin.frameworks.draws`
says what any scheme draws at a shape (the one draw model). Importing this package registers every scheme: the registry
(:mod:`fanin.schemes.registry`) loads it on first lookup. The public faces :mod:`fanin.init`,
:mod:`fanin.keras`, :mod:`fanin.tf1`, :mod:`fanin.jax` and :mod:`fanin.composite` re-export the
modules' names.

JAX's framework is named ``"jax"``, as its schemes are; ``"flax"`` (the library whose layer
defaults it carries, and the name of that preset) is an alias wherever a framework is named:
``list_schemes("flax")``, ``"defaults:flax"``, ``fanin schemes --framework flax``.

>>> [f.name for f in FRAMEWORKS]
['torch', 'keras', 'tf1', 'jax', 'fanin']
>>> get_framework("flax").name, get_framework("flax").preset
('jax', 'flax')
>>> get_framework("pytorch")
Traceback (most recent call last):
...
fanin.errors.UnknownFrameworkError: Unknown framework 'pytorch'. Did you mean 'torch'? Accepted: 'fanin', 'flax',
'jax', 'keras', 'tf1', 'torch'.
"""

from __future__ import annotations

from fanin.errors import UnknownFrameworkError, describe_choice
from fanin.frameworks.fanin import FANIN
from fanin.frameworks.jax import JAX
from fanin.frameworks.keras import KERAS
from fanin.frameworks.record import Framework
from fanin.frameworks.tf1 import TF1
from fanin.frameworks.torch import TORCH
from fanin.schemes.registry import declare_framework

__all__ = ["FRAMEWORKS", "Framework", "framework_names", "framework_of", "get_framework"]

#: Every framework, in the order fanin presents them.
FRAMEWORKS: tuple[Framework, ...] = (TORCH, KERAS, TF1, JAX, FANIN)

_BY_NAME: dict[str, Framework] = {name: f for f in FRAMEWORKS for name in f.names}
for _framework in FRAMEWORKS:
    declare_framework(_framework.name, _framework.aliases)


def framework_names(*, with_layer_defaults: bool = False) -> list[str]:
    """The names and aliases users may type, sorted.

    Args:
        with_layer_defaults: Only those of the frameworks that have layer defaults (what
            ``"defaults:<framework>"`` accepts).

    Returns:
        The names, sorted.

    Examples:
        >>> framework_names(with_layer_defaults=True)
        ['flax', 'jax', 'keras', 'tf1', 'torch']
    """
    return sorted(n for n, f in _BY_NAME.items() if not with_layer_defaults or f.layer_defaults is not None)


def get_framework(name: str, *, with_layer_defaults: bool = False) -> Framework:
    """The record of the framework called ``name`` (or one of its aliases).

    Args:
        name: A framework name or alias (``"flax"`` is JAX's).
        with_layer_defaults: Accept only frameworks that have layer defaults.

    Returns:
        The framework's record.

    Raises:
        UnknownFrameworkError: No such framework (a ``ValueError`` naming the accepted names).
    """
    found = _BY_NAME.get(name) if isinstance(name, str) else None
    if found is None or (with_layer_defaults and found.layer_defaults is None):
        raise UnknownFrameworkError(
            describe_choice("framework", name, framework_names(with_layer_defaults=with_layer_defaults))
        )
    return found


def framework_of(scheme: object) -> Framework:
    """The record of the framework a :class:`~fanin.schemes.Scheme` (or its
    :class:`~fanin.schemes.registry.SchemeEntry`) belongs to.

    Every registered scheme names one of :data:`FRAMEWORKS` (the registry refuses any other).
    A scheme that rules build without registering it (a fused tensor drawn per block, a library's
    captured steps) is fanin's own, and fanin's record (torch's layout and fans rule) answers for it.

    Args:
        scheme: A scheme, a registry entry, or any object (fanin's record answers for it).

    Returns:
        The framework's record.

    Examples:
        >>> from fanin.schemes import get
        >>> framework_of(get("jax.lecun_normal")).name, framework_of(get("kaiming_normal")).name
        ('jax', 'torch')
    """
    entry = getattr(scheme, "entry", scheme)
    name = getattr(entry, "framework", None)
    return _BY_NAME.get(name, FANIN) if isinstance(name, str) else FANIN
