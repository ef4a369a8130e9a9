"""Presets: named rule lists for well-known initialization recipes.

==========  ====================================================================================
preset      rules (first match wins)
==========  ====================================================================================
torch       ``defaults:torch``: every built-in layer's own ``reset_parameters``, as schemes with
            their numbers (bit-identical to construction with a ``torch.Generator``, see below)
keras       ``defaults:keras``: what a Keras layer of the same architecture gets (glorot_uniform
            kernels, zero biases, orthogonal recurrent kernels, forget-gate bias 1, ...)
tf1         ``defaults:tf1``: TensorFlow 1.x (``tf.layers``/``get_variable`` defaults)
flax        ``defaults:flax``: Flax linen (lecun_normal kernels, zero biases, ...)
resnet      Conv2d weight: kaiming_normal(mode='fan_out', nonlinearity='relu');
            BatchNorm2d/GroupNorm weight 1, bias 0 (torchvision's ResNet); the rest (the final
            Linear, conv biases) ``leftovers='reset_parameters'``
gpt2        ``*c_proj.weight``: N(0, (0.02/sqrt(2·n_layer))²) (the residual projections); other
            weights N(0, 0.02²); embeddings N(0, 0.02²) with the padding row 0; biases and norm
            biases 0; norm weights 1. ``n_layer`` is required (never guessed).
bert        weights and embeddings N(0, 0.02²) (padding row 0); biases 0; LayerNorm 1 / 0
vit         timm's ``init_weights`` ('timm' mode): ``*pos_embed`` trunc_normal(std=0.02),
            ``*cls_token``/``*reg_token`` N(0, 1e-12); Linear weight trunc_normal(std=0.02)
            (cut at ±2, absolute, as timm's ``trunc_normal_``), Linear bias 0; norms 1 / 0; the
            rest (the patch-embedding Conv2d) ``leftovers='reset_parameters'``
==========  ====================================================================================

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
>>> preset("bret")
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: Unknown preset 'bret'. Did you mean 'bert' or 'resnet'? Accepted: 'bert', 'flax', 'gpt2', 'keras', 'resnet', 'tf1', 'torch', 'vit'.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Callable

from fanin.errors import FaninError, describe_choice
from fanin.rules.rules import (
    DepthScaledNormal,
    EmbeddingNormal,
    FrameworkDefaults,
    Rule,
    RuleError,
    Rules,
)
from fanin.rules.selectors import Everything, Module, Name, Role

__all__ = ["PRESETS", "bert", "framework", "gpt2", "list_presets", "preset", "resnet", "vit"]


def framework(name: str) -> Rules:
    """Every module as framework ``name`` initializes it by default."""
    return Rules((Rule(Everything(), FrameworkDefaults(name)),), name=name)


def resnet() -> Rules:
    """torchvision's ResNet recipe (He et al., 2015): fan_out Kaiming normal convs, unit norms."""
    norms = Module("BatchNorm2d", "GroupNorm")
    return Rules(
        (
            Rule(Module("Conv2d") & Role("weight"), "kaiming_normal(mode='fan_out', nonlinearity='relu')"),
            Rule(norms & Role("norm_weight"), "ones"),
            Rule(norms & Role("norm_bias"), "zeros"),
        ),
        leftovers="reset_parameters",
        name="resnet",
    )


def gpt2(n_layer: int | None = None, std: float = 0.02) -> Rules:
    r"""GPT-2 (Radford et al., 2019; Hugging Face ``GPT2PreTrainedModel._init_weights``): the
    residual projections ``*c_proj.weight`` get :math:`\mathcal{N}(0, (\text{std}/\sqrt{2 n_\text{layer}})^2)`.

    ``n_layer`` is the number of transformer blocks (``GPT2Config.n_layer``) and has no default: it
    is not guessed from the model. ``fanin.rules.recipes.for_model("gpt2", model)`` reads it from
    ``model.config.n_layer``.

    >>> gpt2()
    Traceback (most recent call last):
    ...
    fanin.rules.rules.RuleError: gpt2 needs n_layer (the number of transformer blocks: GPT2Config.n_layer), got none. Give it, e.g. gpt2(n_layer=12, ...), or read it from the model: fanin.rules.recipes.for_model('gpt2', model).
    """
    from fanin.rules.recipes import _need

    _need("gpt2", n_layer=n_layer)
    return Rules(
        (
            Rule(Name("*c_proj.weight") & Role("weight"), DepthScaledNormal(std, n_layer=n_layer, per_layer=2)),
            Rule(Role("weight"), f"normal(std={std!r})"),
            Rule(Role("embedding"), EmbeddingNormal(std)),
            Rule(Role("bias", "norm_bias"), "zeros"),
            Rule(Role("norm_weight"), "ones"),
        ),
        name="gpt2",
    )


def bert(std: float = 0.02) -> Rules:
    """BERT (Devlin et al., 2019; Hugging Face ``BertPreTrainedModel._init_weights``)."""
    return Rules(
        (
            Rule(Role("weight"), f"normal(std={std!r})"),
            Rule(Role("embedding"), EmbeddingNormal(std)),
            Rule(Role("bias", "norm_bias"), "zeros"),
            Rule(Role("norm_weight"), "ones"),
        ),
        name="bert",
    )


def vit(std: float = 0.02) -> Rules:
    """ViT as timm initializes it (``VisionTransformer.init_weights``, mode 'timm')."""
    return Rules(
        (
            Rule(Name("*pos_embed"), f"trunc_normal(std={std!r})"),
            Rule(Name("*cls_token") | Name("*reg_token"), "normal(std=1e-06)"),
            Rule(Module("Linear") & Role("weight"), f"trunc_normal(std={std!r})"),
            Rule(Module("Linear") & Role("bias"), "zeros"),
            Rule(Role("norm_weight"), "ones"),
            Rule(Role("norm_bias"), "zeros"),
        ),
        leftovers="reset_parameters",
        name="vit",
    )


PRESETS: dict[str, Callable[..., Rules]] = {
    "bert": bert,
    "flax": lambda: framework("flax"),
    "gpt2": gpt2,
    "keras": lambda: framework("keras"),
    "resnet": resnet,
    "tf1": lambda: framework("tf1"),
    "torch": lambda: framework("torch"),
    "vit": vit,
}


def list_presets() -> list[str]:
    """Sorted preset names.

    >>> list_presets()
    ['bert', 'flax', 'gpt2', 'keras', 'resnet', 'tf1', 'torch', 'vit']
    """
    return sorted(PRESETS)


def preset(spec: str) -> Rules:
    """The rules of preset ``spec``: a name, optionally with keyword arguments (``"gpt2(n_layer=24)"``)."""
    from fanin.schemes.spec import parse_spec

    text = spec.strip()
    name = text.split("(", 1)[0].strip()
    if name not in PRESETS:
        raise RuleError(describe_choice("preset", name, PRESETS))
    factory = PRESETS[name]
    if "(" in text:
        try:
            node = ast.parse(text, mode="eval").body
        except SyntaxError:
            node = None
        if isinstance(node, ast.Call) and node.args:
            raise RuleError(f"Cannot read preset {spec!r}: arguments are keywords, e.g. gpt2(n_layer=24)")
        try:
            _, args = parse_spec(text)
        except (FaninError, ValueError) as err:
            raise RuleError(f"Cannot read preset {spec!r}: arguments are keyword literals, e.g. gpt2(n_layer=24); {err}") from None
    else:
        args = {}
    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise RuleError(
            f"Preset {name!r} got unexpected argument(s) {', '.join(f'{k}={args[k]!r}' for k in unknown)}. "
            f"Accepted arguments: {', '.join(accepted) or 'none'}."
        )
    rules = factory(**args)
    return Rules(rules.rules, rules.leftovers, name=text)
