"""Presets: named rule lists for well-known initialization recipes.

==========  ====================================================================================
preset      rules (first match wins)
==========  ====================================================================================
torch       ``defaults:torch``: every built-in layer's own ``reset_parameters``, as schemes with
            their numbers (bit-identical to construction with a ``torch.Generator``, see below)
keras       ``defaults:keras``: what a Keras layer of the same architecture gets (glorot_uniform
            kernels, zero biases, orthogonal recurrent kernels, forget-gate bias 1, ...)
tf1         ``defaults:tf1``: TensorFlow 1.x (``tf.layers``/``get_variable`` defaults)
flax        ``defaults:flax`` (``"flax"`` is the framework ``jax``'s alias): Flax linen
            (lecun_normal kernels, zero biases, ...)
resnet      Conv2d weight: kaiming_normal(mode='fan_out', nonlinearity='relu');
            BatchNorm2d/GroupNorm weight 1, bias 0 (torchvision's ResNet); the rest (the final
            Linear, conv biases) ``leftovers='reset_parameters'``
gpt2        ``*c_proj.weight``: N(0, (0.02/sqrt(2·n_layer))²) (the residual projections); other
            weights N(0, 0.02²); embeddings N(0, 0.02²), their padding_idx row (if any) 0; biases and norm
            biases 0; norm weights 1. ``n_layer`` is required (never guessed).
bert        weights and embeddings N(0, 0.02²) (a padding_idx row, if any, 0); biases 0; LayerNorm 1 / 0
vit         timm's ``init_weights`` ('timm' mode): ``*pos_embed`` trunc_normal(std=0.02),
            ``*cls_token``/``*reg_token`` N(0, 1e-12); Linear weight trunc_normal(std=0.02)
            (cut at ±2, absolute, as timm's ``trunc_normal_``), Linear bias 0; norms 1 / 0; the
            rest (the patch-embedding Conv2d) ``leftovers='reset_parameters'``
==========  ====================================================================================

muP, depth-muP and u-muP are presets as well (``"mup(base_width=64)"``): their rules bind to the
model when planned (:mod:`fanin.rules.parametrization`).

The recipes large models are trained with (torchtitan Llama 3, Megatron-LM, OLMo, GPT-NeoX, T5,
DeepNorm, T-Fixup, Fixup, zero_init_residual, the timm ViT modes) are presets too, each citing its
paper and reference code: :mod:`fanin.rules.recipes`.

A preset is named by a string, with keyword arguments where it takes them:
``"gpt2(n_layer=24, std=0.02)"``, ``"bert(std=0.02)"``, ``"vit(std=0.02)"``.

The ``"torch"`` preset reproduces construction bit for bit with a ``torch.Generator`` (or the
global RNG) when the model's construction order equals its module order. Exceptions: modules
that deep-copy a constructed layer (``nn.TransformerEncoder``/``TransformerDecoder`` clone one
layer N times, so all N copies hold the same values at construction, while a plan draws each
one), and models whose ``__init__`` creates modules in an order other than their attribute order.

>>> [str(r) for r in preset("resnet")][:1]
["module=Conv2d & role='weight' -> kaiming_normal(mode='fan_out', nonlinearity='relu')"]
>>> preset("gpt2(n_layer=12)")[0].init.scheme_for(24)
fanin.get('normal(std=0.004082482904638631)')
>>> preset("bret")  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: Unknown preset 'bret'. Did you mean 'bert' or 'resnet'? Accepted: 'bert', 'deepnorm',
'depth_mup', 'fixup', 'flax', 'gpt2', 'gpt_neox', 'keras', 'megatron', 'mup', 'olmo', 'resnet', 't5', 'tf1', 'tfixup',
'torch', 'torchtitan_llama3', 'u_mup', 'vit', 'vit_jax', 'vit_moco', 'vit_timm', 'zero_init_residual'.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

from fanin.errors import FaninError, describe_choice, shown
from fanin.frameworks import FRAMEWORKS
from fanin.rules.parametrization import depth_mup, mup, u_mup
from fanin.rules.recipes import RECIPES, bert, call_with_model_note, gpt2, read_parameters, resnet, vit
from fanin.rules.rules import FrameworkDefaults, Rule, RuleError, Rules
from fanin.rules.selectors import Everything

__all__ = ["PRESETS", "bert", "framework", "gpt2", "list_presets", "preset", "resnet", "vit"]


def framework(name: str) -> Rules:
    """Every module as framework ``name`` (a name or an alias) initializes it by default."""
    return Rules((Rule(Everything(), FrameworkDefaults(name)),), name=name)


def _framework_preset(name: str) -> Callable[[], Rules]:
    """The preset ``name`` of a framework's layer defaults (:attr:`fanin.frameworks.Framework.preset`)."""

    def rules() -> Rules:
        return framework(name)

    rules.__name__ = rules.__qualname__ = name
    rules.__doc__ = f"Every module as the {name!r} preset's framework initializes it by default."
    return rules


PRESETS: dict[str, Callable[..., Rules]] = {
    **{f.preset: _framework_preset(f.preset) for f in FRAMEWORKS if f.preset is not None},
    "bert": bert,
    "gpt2": gpt2,
    "resnet": resnet,
    "vit": vit,
    **RECIPES,
    "depth_mup": depth_mup,
    "mup": mup,
    "u_mup": u_mup,
}


def list_presets() -> list[str]:
    """Sorted preset names.

    >>> list_presets()  # doctest: +NORMALIZE_WHITESPACE
    ['bert', 'deepnorm', 'depth_mup', 'fixup', 'flax', 'gpt2', 'gpt_neox', 'keras', 'megatron', 'mup', 'olmo',
    'resnet', 't5', 'tf1', 'tfixup', 'torch', 'torchtitan_llama3', 'u_mup', 'vit', 'vit_jax', 'vit_moco', 'vit_timm',
    'zero_init_residual']
    """
    return sorted(PRESETS)


def preset(spec: str, model: object | None = None) -> Rules:
    """The rules of preset ``spec``: a name, optionally with keyword arguments (``"gpt2(n_layer=24)"``).

    With ``model``, a parameter the preset needs and the spec does not give is read from the
    model's documented attributes (:func:`fanin.rules.recipes.read_parameters`: ``config.n_layer``,
    ``config.num_hidden_layers``, ...), and the rules' name says where it came from; without it,
    or when the model has none of them, the error names the parameter.

    The spec is read as scheme specs are (:func:`fanin.schemes.spec.parse_call`: literals only,
    bounded in length and nesting, no argument twice); every error is a :class:`RuleError`.
    """
    from fanin.schemes.spec import parse_call

    if not isinstance(spec, str):
        raise RuleError(
            f"A preset is named by a str such as 'gpt2(n_layer=24)', got {shown(spec)} ({type(spec).__name__})"
        )
    try:
        name, positional, args, quoted = parse_call(spec, "preset")
    except FaninError as err:
        head = spec.split("(", 1)[0].strip()
        if head not in PRESETS:  # the name decides which error helps: an unknown name first
            raise RuleError(describe_choice("preset", head, PRESETS)) from None
        raise RuleError(f"{err}; arguments are keyword literals, e.g. gpt2(n_layer=24)") from None
    if name not in PRESETS:
        raise RuleError(describe_choice("preset", name, PRESETS))
    if positional:
        raise RuleError(f"Cannot read preset {quoted}: arguments are keywords, e.g. gpt2(n_layer=24)")
    factory = PRESETS[name]
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise RuleError(
            f"Preset {name!r} got unexpected argument(s) "
            f"{', '.join(f'{shown(k)[1:-1]}={shown(args[k])}' for k in unknown[:8])}. "
            f"Accepted arguments: {', '.join(accepted) or 'none'}."
        )
    found: dict[str, str] = {}
    looked: list[str] = []
    if model is not None:
        args, found, looked = read_parameters(factory, model, args)
    try:
        rules = call_with_model_note(factory, args, model, looked)
    except FaninError as err:
        if isinstance(err, RuleError):
            raise
        raise RuleError(f"Preset {quoted}: {err}") from None
    name = spec.strip()
    if found:
        name += " with " + ", ".join(f"{k}={args[k]!r} (the model's {path})" for k, path in found.items())
    return dataclasses.replace(rules, name=name)  # keeps the rules' own type (a parametrization binds to the model)
