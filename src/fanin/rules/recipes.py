r"""Recipes: the initializations large models are trained with, each citing its paper and code.

Every recipe is a function of named parameters returning :class:`~fanin.rules.rules.Rules` (a
preset: ``fanin.plan(model, torchtitan_llama3(n_layers=32, dim=4096))``). A parameter a recipe
needs has no default that could be wrong for the model: leaving it out raises
:class:`~fanin.rules.rules.RuleError` saying which one, and :func:`for_model` reads it from the
documented attribute of a model (``config.num_hidden_layers``, ``config.d_model``, torchtitan's
``model_args.n_layers``, ...). Names follow each reference's modules, and the Hugging Face names
of the same layers where they differ (``wq``/``q_proj``, ``w2``/``down_proj``, ``output``/``lm_head``).

Where a recipe also changes the forward pass (DeepNorm's :math:`\alpha`, T-Fixup's removed
LayerNorm, Fixup's scalar multipliers and biases) the rule that carries its scale says so in its
text, which ``explain`` shows, and :data:`FORWARD` has the sentence: **fanin does the init part only.**

======================  ===================================================================================
recipe                  reference
======================  ===================================================================================
torchtitan_llama3       torchtitan ``models/llama3/model/model.py``: ``Transformer.init_weights``,
                        ``TransformerBlock.__init__`` (``depth_init``), ``Attention``/``FeedForward.init_weights``
megatron                Megatron-LM ``megatron/legacy/model/utils.py``: ``init_method_normal``,
                        ``scaled_init_method_normal`` (Shoeybi et al. 2019)
olmo                    OLMo ``olmo/initialization.py`` ``init_normal``, ``olmo/model.py``
                        ``OLMoBlock.reset_parameters`` / ``OLMo.reset_parameters`` (``mitchell``, ``full_megatron``)
gpt_neox                gpt-neox ``megatron/model/init_functions.py``: ``small_init_init_method``,
                        ``wang_init_method`` (Nguyen & Salazar 2019; Wang & Komatsuzaki 2021)
t5                      transformers ``models/t5/modeling_t5.py`` ``T5PreTrainedModel._init_weights``
                        (Mesh TensorFlow's per-module stds; Raffel et al. 2020)
deepnorm                Wang et al. 2022, *DeepNet*, Fig. 2 and Table 1; torchscale ``architecture/encoder.py``
tfixup                  Huang et al. 2020, *Improving Transformer Optimization Through Better Initialization*, Alg. 1
fixup                   Zhang et al. 2019, *Fixup Initialization*, §3 (rules 1-3); ``hongyi-zhang/Fixup``
zero_init_residual      torchvision ``models/resnet.py`` ``ResNet.__init__``; Goyal et al. 2017 §5.1
vit_timm, vit_jax,      timm ``models/vision_transformer.py``: ``VisionTransformer.init_weights``,
vit_moco                ``init_weights_vit_timm`` / ``_jax`` / ``_moco``
======================  ===================================================================================

>>> rules = torchtitan_llama3(n_layers=2, dim=16)
>>> [str(r) for r in rules][:1]
["name~'(?:.*\\\\.)?(?:tok_embeddings|embed_tokens)\\\\.weight' -> normal"]
>>> torchtitan_llama3(dim=16)  # doctest: +NORMALIZE_WHITESPACE
Traceback (most recent call last):
...
fanin.rules.rules.RuleError: torchtitan_llama3 needs n_layers (the number of transformer blocks: torchtitan's
model_args.n_layers, config.num_hidden_layers), got none. Give it, e.g. torchtitan_llama3(n_layers=32, ...), or read
it from the model: fanin.rules.recipes.for_model('torchtitan_llama3', model).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

from fanin.errors import describe_choice
from fanin.rules.rules import DepthScaledNormal, EmbeddingNormal, Init, Rule, RuleError, Rules, SchemeInit
from fanin.rules.selectors import Module, Name, Role
from fanin.schemes import Scheme

__all__ = [
    "FORWARD",
    "RECIPES",
    "bert",
    "deepnorm",
    "fixup",
    "for_model",
    "gpt2",
    "gpt_neox",
    "megatron",
    "olmo",
    "resnet",
    "t5",
    "tfixup",
    "torchtitan_llama3",
    "vit",
    "vit_jax",
    "vit_moco",
    "vit_timm",
    "zero_init_residual",
]

#: What a recipe changes in the forward pass (fanin sets the init only).
FORWARD = {
    "deepnorm": "DeepNorm changes the forward pass: x_{{l+1}} = LN(alpha * x_l + G(x_l)) with alpha = {alpha:.6g}; "
    "fanin does the init part only",
    "tfixup": "T-Fixup removes LayerNorm (and learning-rate warmup) from the model; fanin does the init part only",
    "fixup": "Fixup removes normalization and adds a scalar multiplier (init 1) at the end of each residual branch "
    "and scalar biases (init 0) before each convolution, linear and activation; fanin does the init part only",
}

# Where each documented parameter lives on a model: tried in order by for_model.
_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "n_layers": (
        "model_args.n_layers",
        "config.num_hidden_layers",
        "config.n_layer",
        "config.num_layers",
        "config.n_layers",
        "n_layers",
    ),
    "n_layer": (
        "config.n_layer",
        "config.num_hidden_layers",
        "config.num_layers",
        "model_args.n_layers",
        "n_layers",
        "n_layer",
    ),
    "dim": ("model_args.dim", "config.hidden_size", "config.n_embd", "config.d_model", "dim"),
    "d_model": ("config.d_model", "config.hidden_size", "config.n_embd", "model_args.dim", "d_model"),
    "d_kv": ("config.d_kv",),
    "d_ff": ("config.d_ff", "config.intermediate_size", "config.n_inner"),
    "n_heads": ("config.num_heads", "config.num_attention_heads", "config.n_head", "model_args.n_heads"),
    "encoder_layers": ("config.num_layers", "config.encoder_layers"),
    "decoder_layers": ("config.num_decoder_layers", "config.decoder_layers"),
}
_WHAT = {
    "n_layers": "the number of transformer blocks: torchtitan's model_args.n_layers, config.num_hidden_layers",
    "n_layer": "the number of transformer blocks: GPT2Config.n_layer",
    "dim": "the model width: torchtitan's model_args.dim, config.hidden_size",
    "d_model": "the model width: config.d_model, config.hidden_size",
    "d_kv": "the key/value width per head: T5Config.d_kv",
    "d_ff": "the feed-forward width: T5Config.d_ff",
    "n_heads": "the number of attention heads: T5Config.num_heads",
    "n_blocks": "L, the number of residual branches (blocks) of the network",
    "m": "the number of layers in each residual branch: 2 for BasicBlock, 3 for Bottleneck",
    "block": "the residual block type: 'basic' (zero bn2) or 'bottleneck' (zero bn3)",
    "encoder_layers": "N, the number of encoder layers",
    "decoder_layers": "M, the number of decoder layers",
}


def _need(recipe: str, **params: Any) -> None:
    for name, value in params.items():
        if value is None:
            example = f"{recipe}({name}=...)"
            raise RuleError(
                f"{recipe} needs {name} ({_WHAT.get(name, name)}), got none. Give it, e.g. {example[:-4]}"
                f"{_EXAMPLES.get(name, 32)}, ...), or read it from the model: "
                f"fanin.rules.recipes.for_model({recipe!r}, model)."
            )
        if name in (
            "n_layers",
            "n_layer",
            "dim",
            "d_model",
            "d_kv",
            "d_ff",
            "n_heads",
            "n_blocks",
            "m",
            "encoder_layers",
            "decoder_layers",
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise RuleError(f"{recipe} needs a positive int {name}, got {name}={value!r}")


_EXAMPLES = {
    "n_layers": 32,
    "n_layer": 12,
    "dim": 4096,
    "d_model": 512,
    "d_kv": 64,
    "d_ff": 2048,
    "n_heads": 8,
    "n_blocks": 8,
    "m": 2,
    "block": "'basic'",
    "encoder_layers": 6,
    "decoder_layers": 6,
}


def _number(recipe: str, name: str, value: object, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (positive and not value > 0):
        raise RuleError(f"{recipe} needs a {'positive ' if positive else ''}number {name}, got {name}={value!r}")
    return float(value)


def _names(*locals_: str) -> Name:
    """The weight of a module whose (last) name is one of ``locals_``, at any depth."""
    alternatives = "|".join(n.replace(".", r"\.") for n in locals_)
    return Name(rf"(?:.*\.)?(?:{alternatives})\.weight", regex=True)


def _in_layer(i: int, *locals_: str, what: str = "weight") -> Name:
    """``what`` of a module named one of ``locals_`` inside block ``i`` (``layers.i.``, ``blocks.i.``, ``h.i.``)."""
    alternatives = "|".join(n.replace(".", r"\.") for n in locals_)
    return Name(rf"(?:.*\.)?(?:layers|blocks|h|layer|block)\.{i}\.(?:.*\.)?(?:{alternatives})\.{what}", regex=True)


def _trunc(std: float, cut: float | None) -> str:
    """A truncated normal cut at ±cut·std (``None``: torch's default ±2, absolute)."""
    if cut is None:
        return f"trunc_normal(std={std!r})"
    return f"trunc_normal(std={std!r}, a={-cut * std!r}, b={cut * std!r})"


class Noted(SchemeInit):
    """A scheme whose rule says what else the recipe changes (shown by ``explain``)."""

    def __init__(self, scheme: object, note: str) -> None:
        from fanin.schemes import get

        super().__init__(get(scheme))  # type: ignore[arg-type]
        self.note = note

    def __str__(self) -> str:
        return f"{self.scheme} [{self.note}]"


class FromModule(Init):
    """A scheme computed from the owning module (its shape), with the formula as its text."""

    def __init__(self, build: Callable[[Any], str], text: str) -> None:
        self.build = build
        self.text = text

    def resolve(self, module, matched: int) -> Scheme:
        from fanin.schemes import get

        return get(self.build(module))

    def __str__(self) -> str:
        return self.text


_NORMS = Role("norm_weight")
_NORM_BIAS = Role("norm_bias")


def _ff_out_std(layer: int, cut: float | None) -> Callable[[Any], str]:
    """OLMo's ``ff_out`` of block ``layer``: std 1/sqrt(2 * in_features * (layer + 1)), read from the module."""

    def build(module: Any) -> str:
        return _trunc(1 / math.sqrt(2 * module.in_features * (layer + 1)), cut)

    return build


def _common(*, leftovers: str | None = None) -> list[Rule]:
    return [Rule(_NORMS, "ones"), Rule(_NORM_BIAS, "zeros"), Rule(Role("bias"), "zeros")]


# ------------------------------------------------------------- the classic presets: resnet, gpt2, bert, vit


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

    >>> gpt2()  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    fanin.rules.rules.RuleError: gpt2 needs n_layer (the number of transformer blocks: GPT2Config.n_layer), got none.
    Give it, e.g. gpt2(n_layer=12, ...), or read it from the model: fanin.rules.recipes.for_model('gpt2', model).
    """
    _need("gpt2", n_layer=n_layer)
    assert n_layer is not None  # _need refused None
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


# ------------------------------------------------------------------------------------ torchtitan


def torchtitan_llama3(
    n_layers: int | None = None, dim: int | None = None, depth_init: bool = True, as_released: bool = False
) -> Rules:
    r"""torchtitan's Llama 3 init (``models/llama3/model/model.py``).

    - token embedding: :math:`\mathcal{N}(0, 1)` (``Transformer.init_weights``: ``normal_`` with no std);
    - ``wq``, ``wk``, ``wv``, ``w1``: truncated :math:`\mathcal{N}(0, 0.02^2)`;
    - ``wo``, ``w2`` of block :math:`l` (0-based): std :math:`0.02/\sqrt{2(l+1)}` with ``depth_init``,
      else :math:`0.02/\sqrt{2 L}` (``TransformerBlock.__init__``, ``weight_init_std``);
    - output projection: std :math:`d^{-1/2}`, cut at :math:`\pm 3\sigma` (``final_out_std``, ``cutoff_factor = 3``);
    - RMSNorm weights 1.

    ``as_released=True`` is the code as released, with the two slips torchtitan#3334 reports
    (PR #3722): every ``trunc_normal_`` but the output's keeps torch's default bounds ±2
    *absolute*, 100σ at std 0.02, so nothing is truncated; and ``w3``, the SwiGLU value
    projection that does not write to the residual stream, gets the depth-scaled std too
    (``FeedForward.init_weights`` scales ``w2`` and ``w3``). The default is the corrected form:
    ±3σ cuts and ``w3`` at 0.02.

    >>> [str(r.init) for r in torchtitan_llama3(n_layers=2, dim=64)][-6:-3]  # doctest: +NORMALIZE_WHITESPACE
    ['trunc_normal(std=0.01, a=-0.03, b=0.03)', 'trunc_normal(std=0.02, a=-0.06, b=0.06)', 'trunc_normal(std=0.125,
    a=-0.375, b=0.375)']
    """
    _need("torchtitan_llama3", n_layers=n_layers, dim=dim)
    assert n_layers is not None and dim is not None
    cut = None if as_released else 3.0
    rules = [Rule(_names("tok_embeddings", "embed_tokens"), "normal")]
    for layer in range(n_layers):
        std = 0.02 / (2 * (layer + 1)) ** 0.5 if depth_init else 0.02 / (2 * n_layers) ** 0.5
        scaled = ("wo", "o_proj", "w2", "down_proj") + (("w3", "up_proj") if as_released else ())
        rules.append(Rule(_in_layer(layer, *scaled), _trunc(std, cut)))
        rules.append(
            Rule(
                _in_layer(layer, "wq", "wk", "wv", "q_proj", "k_proj", "v_proj", "w1", "gate_proj", "w3", "up_proj"),
                _trunc(0.02, cut),
            )
        )
    final = dim**-0.5
    rules.append(Rule(_names("output", "lm_head"), _trunc(final, 3.0)))
    rules += _common()
    return Rules(tuple(rules), name="torchtitan_llama3")


# ------------------------------------------------------------------------------------ Megatron-LM


def megatron(n_layers: int | None = None, sigma: float = 0.02) -> Rules:
    r"""Megatron-LM: ``init_method_normal(sigma)`` for every weight and embedding,
    ``scaled_init_method_normal(sigma, num_layers)`` — :math:`\mathcal{N}(0, (\sigma/\sqrt{2L})^2)` —
    for the layers that write to the residual stream (attention ``linear_proj``/``dense``, MLP
    ``linear_fc2``/``dense_4h_to_h``); biases 0, LayerNorm 1 / 0 (Shoeybi et al. 2019;
    ``megatron/legacy/model/utils.py``, ``megatron/core/transformer/transformer_config.py``).

    >>> [str(r.init) for r in megatron(n_layers=8)][:2]
    ['normal(std=0.005)', 'normal(std=0.02)']
    """
    _need("megatron", n_layers=n_layers)
    assert n_layers is not None
    sigma = _number("megatron", "sigma", sigma)
    out = Name(
        r"(?:.*\.)?(?:self_attention\.linear_proj|mlp\.linear_fc2|attention\.dense|self_attention\.dense|mlp\.dense_4h_to_h)\.weight",
        regex=True,
    )
    return Rules(
        (
            Rule(out, f"normal(std={sigma / math.sqrt(2.0 * n_layers)!r})"),
            Rule(Role("weight", "embedding"), f"normal(std={sigma!r})"),
            *_common(),
        ),
        name="megatron",
    )


# ------------------------------------------------------------------------------------------- OLMo

OLMO_INIT = ("full_megatron", "mitchell")


def olmo(
    init_fn: str = "mitchell",
    n_layers: int | None = None,
    d_model: int | None = None,
    init_std: float = 0.02,
    cutoff_factor: float = 3.0,
) -> Rules:
    r"""OLMo's ``mitchell`` and ``full_megatron`` inits (``olmo/model.py`` ``OLMoBlock.reset_parameters``,
    ``OLMo.reset_parameters``; ``olmo/initialization.py`` ``init_normal``: truncated normals cut at
    ±``cutoff_factor``·std). Module names are OLMo's: ``att_proj`` (fused q/k/v), ``attn_out``,
    ``ff_proj``, ``ff_out`` in each block, ``transformer.wte``/``wpe``, the final ``transformer.ff_out``.

    ``mitchell`` (block :math:`l`, 0-based): ``att_proj``, ``ff_proj`` :math:`1/\sqrt{d}`; ``attn_out``
    :math:`1/\sqrt{2 d (l+1)}`; block ``ff_out`` :math:`1/\sqrt{2\,h\,(l+1)}` with :math:`h` its
    ``in_features``; ``wte`` and the final ``ff_out`` :math:`1/\sqrt{d}`.
    ``full_megatron``: in-projections and embeddings ``init_std``; ``attn_out``, block ``ff_out``
    :math:`\text{init\_std}/\sqrt{2L}`; the final ``ff_out`` :math:`d^{-1/2}`.

    >>> [str(r.init) for r in olmo("full_megatron", n_layers=2, d_model=64)][:1]
    ['trunc_normal(std=0.01, a=-0.03, b=0.03)']
    """
    if init_fn not in OLMO_INIT:
        raise RuleError(describe_choice("OLMo init_fn", init_fn, OLMO_INIT))
    _need("olmo", n_layers=n_layers, d_model=d_model)
    assert n_layers is not None and d_model is not None
    init_std = _number("olmo", "init_std", init_std)
    cut = _number("olmo", "cutoff_factor", cutoff_factor)
    rules: list[Rule] = []
    final = Name(r"(?:.*\.)?transformer\.ff_out\.weight", regex=True)
    if init_fn == "full_megatron":
        out_std = init_std / math.sqrt(2.0 * n_layers)
        rules.append(Rule(Name(r"(?:.*\.)?blocks\.\d+\.(?:attn_out|ff_out)\.weight", regex=True), _trunc(out_std, cut)))
        rules.append(Rule(final, _trunc(d_model**-0.5, cut)))
        rules.append(Rule(Role("weight", "embedding"), _trunc(init_std, cut)))
    else:
        for layer in range(n_layers):
            rules.append(Rule(_in_layer(layer, "attn_out"), _trunc(1 / math.sqrt(2 * d_model * (layer + 1)), cut)))
            rules.append(
                Rule(
                    _in_layer(layer, "ff_out"),
                    FromModule(
                        _ff_out_std(layer, cut),
                        f"trunc_normal(std=1/sqrt(2*in_features*{layer + 1}), cut ±{cut:g} std)",
                    ),
                )
            )
        rules.append(Rule(Role("weight", "embedding"), _trunc(1 / math.sqrt(d_model), cut)))
    rules += _common()
    return Rules(tuple(rules), name=f"olmo({init_fn})")


# -------------------------------------------------------------------------------------- GPT-NeoX

NEOX_INIT = ("small_init", "wang_init")


def gpt_neox(
    n_layers: int | None = None,
    d_model: int | None = None,
    init_method: str = "small_init",
    output_layer_init_method: str = "wang_init",
) -> Rules:
    r"""GPT-NeoX (Black et al. 2022 §3; gpt-neox ``megatron/model/init_functions.py``):
    ``small_init`` :math:`\mathcal{N}(0, 2/(5d))` (Nguyen & Salazar 2019) and ``wang_init``
    :math:`\sigma = 2/(L\sqrt{d})` (Wang & Komatsuzaki 2021). ``init_method`` for every weight and
    embedding, ``output_layer_init_method`` for ``attention.dense`` and ``mlp.dense_4h_to_h``
    (``get_init_methods``); biases 0, LayerNorm 1 / 0.

    >>> [str(r.init) for r in gpt_neox(n_layers=4, d_model=100)][:2]
    ['normal(std=0.05)', 'normal(std=0.06324555320336758)']
    """
    for what, value in (("init_method", init_method), ("output_layer_init_method", output_layer_init_method)):
        if value not in NEOX_INIT:
            raise RuleError("gpt_neox: " + describe_choice(what, value, NEOX_INIT))
    _need("gpt_neox", n_layers=n_layers, d_model=d_model)
    assert n_layers is not None and d_model is not None
    std = {"small_init": math.sqrt(2 / (5 * d_model)), "wang_init": 2 / n_layers / math.sqrt(d_model)}
    out = Name(r"(?:.*\.)?(?:attention\.dense|mlp\.dense_4h_to_h)\.weight", regex=True)
    return Rules(
        (
            Rule(out, f"normal(std={std[output_layer_init_method]!r})"),
            Rule(Role("weight", "embedding"), f"normal(std={std[init_method]!r})"),
            *_common(),
        ),
        name="gpt_neox",
    )


# --------------------------------------------------------------------------------------------- T5


def t5(
    d_model: int | None = None,
    d_kv: int | None = None,
    d_ff: int | None = None,
    n_heads: int | None = None,
    factor: float = 1.0,
) -> Rules:
    r"""T5's per-module stds (transformers ``T5PreTrainedModel._init_weights``, after Mesh
    TensorFlow; Raffel et al. 2020), all :math:`\mathcal{N}(0, \sigma^2)` with ``factor`` =
    ``config.initializer_factor``: attention ``q`` :math:`f(d\,d_{kv})^{-1/2}`, ``k``/``v``
    :math:`f d^{-1/2}`, ``o`` :math:`f(h\,d_{kv})^{-1/2}`; ``wi``/``wi_0``/``wi_1`` :math:`f d^{-1/2}`,
    ``wo`` :math:`f d_{ff}^{-1/2}`; ``relative_attention_bias`` :math:`f d^{-1/2}`; the shared
    embedding and an untied ``lm_head`` :math:`f`; layer norms :math:`f`.

    >>> [str(r.init) for r in t5(d_model=64, d_kv=8, d_ff=256, n_heads=8)][:2]
    ['normal(std=0.04419417382415922)', 'normal(std=0.125)']
    """
    _need("t5", d_model=d_model, d_kv=d_kv, d_ff=d_ff, n_heads=n_heads)
    assert d_model is not None and d_kv is not None and d_ff is not None and n_heads is not None
    f = _number("t5", "factor", factor)
    return Rules(
        (
            Rule(_names("SelfAttention.q", "EncDecAttention.q"), f"normal(std={f * (d_model * d_kv) ** -0.5!r})"),
            Rule(
                _names("SelfAttention.k", "EncDecAttention.k", "SelfAttention.v", "EncDecAttention.v"),
                f"normal(std={f * d_model**-0.5!r})",
            ),
            Rule(_names("SelfAttention.o", "EncDecAttention.o"), f"normal(std={f * (n_heads * d_kv) ** -0.5!r})"),
            Rule(_names("wi", "wi_0", "wi_1"), f"normal(std={f * d_model**-0.5!r})"),
            Rule(_names("wo"), f"normal(std={f * d_ff**-0.5!r})"),
            Rule(_names("relative_attention_bias"), f"normal(std={f * d_model**-0.5!r})"),
            Rule(_names("shared", "embed_tokens", "lm_head"), f"normal(std={f!r})"),
            Rule(_NORMS, "ones" if f == 1.0 else f"constant(val={f!r})"),
            Rule(Role("bias"), "zeros"),
        ),
        name="t5",
    )


# ----------------------------------------------------------------------------------- DeepNet


DEEPNET_ARCHS = ("decoder", "encoder", "encoder_decoder")


def deepnet_constants(arch: str, encoder_layers: int | None = None, decoder_layers: int | None = None) -> dict:
    r"""DeepNet's :math:`\alpha` and :math:`\beta` (Wang et al. 2022, Table 1 / Fig. 2).

    Encoder-only (N layers): :math:`\alpha = (2N)^{1/4}`, :math:`\beta = (8N)^{-1/4}`; decoder-only
    (M layers): the same with M. Encoder-decoder: encoder :math:`\alpha_e = 0.81 (N^4 M)^{1/16}`,
    :math:`\beta_e = 0.87 (N^4 M)^{-1/16}`; decoder :math:`\alpha_d = (3M)^{1/4}`, :math:`\beta_d = (12M)^{-1/4}`.

    >>> deepnet_constants("decoder", decoder_layers=8)["decoder"]
    (2.0, 0.3535533905932738)
    """
    if arch == "encoder":
        _need("deepnorm", encoder_layers=encoder_layers)
        return {"encoder": ((2 * encoder_layers) ** 0.25, (8 * encoder_layers) ** -0.25)}  # type: ignore[operator]
    if arch == "decoder":
        _need("deepnorm", decoder_layers=decoder_layers)
        return {"decoder": ((2 * decoder_layers) ** 0.25, (8 * decoder_layers) ** -0.25)}  # type: ignore[operator]
    _need("deepnorm", encoder_layers=encoder_layers, decoder_layers=decoder_layers)
    n, m = encoder_layers, decoder_layers
    return {
        "encoder": (0.81 * (n**4 * m) ** (1 / 16), 0.87 * (n**4 * m) ** (-1 / 16)),  # type: ignore[operator]
        "decoder": ((3 * m) ** 0.25, (12 * m) ** -0.25),  # type: ignore[operator]
    }


_FFN = ("fc1", "fc2", "w1", "w2", "w3", "gate_proj", "up_proj", "down_proj", "c_fc", "mlp.c_proj")
_V_OUT = ("v_proj", "out_proj", "o_proj", "wv", "wo")
_Q_K = ("q_proj", "k_proj", "wq", "wk")


def deepnorm(arch: str = "decoder", encoder_layers: int | None = None, decoder_layers: int | None = None) -> Rules:
    r"""DeepNet / DeepNorm (Wang et al. 2022, Fig. 2): ``xavier_normal(gain=β)`` for the FFN weights
    (``fc1``/``fc2``, SwiGLU ``w1``..``w3``), the value and output projections (``v_proj``,
    ``out_proj``); ``xavier_normal(gain=1)`` for ``q_proj``/``k_proj``; biases 0, LayerNorm 1 / 0.
    β by :func:`deepnet_constants`; with ``arch="encoder_decoder"`` tensors under ``encoder.``
    and ``decoder.`` get their side's β. torchscale (``architecture/encoder.py``,
    ``decoder.py``) initializes fairseq-style and then divides the same weights by
    :math:`(8N)^{1/4}`, i.e. the same β.

    **Forward pass**: DeepNorm computes :math:`x_{l+1} = \mathrm{LN}(\alpha x_l + G(x_l))`;
    fanin does the init part only (the rules' text says so, with α).

    >>> str(list(deepnorm(decoder_layers=8))[0].init)  # doctest: +NORMALIZE_WHITESPACE
    'xavier_normal(gain=0.3535533905932738) [DeepNorm changes the forward pass: x_{l+1} = LN(alpha * x_l + G(x_l))
    with alpha = 2; fanin does the init part only]'
    """
    if arch not in DEEPNET_ARCHS:
        raise RuleError(describe_choice("DeepNet arch", arch, DEEPNET_ARCHS))
    constants = deepnet_constants(arch, encoder_layers, decoder_layers)
    rules: list[Rule] = []
    for side, (alpha, beta) in constants.items():
        prefix = rf"(?:.*\.)?{side}\." if arch == "encoder_decoder" else ""
        names = "|".join(n.replace(".", r"\.") for n in _FFN + _V_OUT)
        select = Name(rf"{prefix}(?:.*\.)?(?:{names})\.weight", regex=True)
        rules.append(Rule(select, Noted(f"xavier_normal(gain={beta!r})", FORWARD["deepnorm"].format(alpha=alpha))))
    rules.append(Rule(_names(*_Q_K), "xavier_normal"))
    rules += _common()
    return Rules(tuple(rules), leftovers="reset_parameters", name=f"deepnorm({arch})")


# ------------------------------------------------------------------------------------ T-Fixup


def tfixup(arch: str = "encoder_decoder", n_layers: int | None = None, d_model: int | None = None) -> Rules:
    r"""T-Fixup (Huang et al. 2020, Algorithm 1), N layers in the encoder and in the decoder:

    1. Xavier (uniform) for every weight but the input embeddings, which get :math:`\mathcal{N}(0, d^{-1})`
       (std :math:`d^{-1/2}`).
    2. Decoder: the attention value and output matrices and the MLP weights, and the input
       embeddings of encoder and decoder, scaled by :math:`(9N)^{-1/4}`.
    3. Encoder: the attention value and output matrices and the MLP weights scaled by
       :math:`0.67 N^{-1/4}`.

    A scale is the Xavier gain (``xavier_uniform(gain=c)`` is :math:`c` times ``xavier_uniform``).
    ``arch="encoder"``/``"decoder"`` for one stack (step 3 or 2 only, embeddings by :math:`(9N)^{-1/4}`).
    Reference code: layer6ai-labs/T-Fixup (fairseq), ``transformer.py``.

    **Forward pass**: T-Fixup removes LayerNorm and warmup; fanin does the init part only.

    >>> [str(r.init) for r in tfixup("decoder", n_layers=4, d_model=64)][0][:40]
    'xavier_uniform(gain=0.408248290463863) ['
    """
    if arch not in DEEPNET_ARCHS:
        raise RuleError(describe_choice("T-Fixup arch", arch, DEEPNET_ARCHS))
    _need("tfixup", n_layers=n_layers, d_model=d_model)
    assert n_layers is not None and d_model is not None
    dec, enc = (9 * n_layers) ** -0.25, 0.67 * n_layers**-0.25
    names = "|".join(n.replace(".", r"\.") for n in _FFN + _V_OUT)
    rules: list[Rule] = []
    for side, scale in (("decoder", dec), ("encoder", enc)):
        if arch not in (side, "encoder_decoder"):
            continue
        prefix = rf"(?:.*\.)?{side}\." if arch == "encoder_decoder" else ""
        rules.append(
            Rule(
                Name(rf"{prefix}(?:.*\.)?(?:{names})\.weight", regex=True),
                Noted(f"xavier_uniform(gain={scale!r})", FORWARD["tfixup"]),
            )
        )
    rules.append(Rule(Role("embedding"), f"normal(std={d_model**-0.5 * dec!r})"))
    rules.append(Rule(Role("weight"), "xavier_uniform"))
    rules += _common()
    return Rules(tuple(rules), name=f"tfixup({arch})")


# -------------------------------------------------------------------------------------- Fixup


def fixup(n_blocks: int | None = None, m: int | None = None) -> Rules:
    r"""Fixup (Zhang et al. 2019, §3) for a torchvision-style ResNet (``layerX.Y.conv1..conv{m}``,
    ``downsample.0``, ``fc``), L = ``n_blocks`` residual branches of ``m`` layers each:

    1. the classification layer (``fc``, weight and bias) and the last layer of each residual
       branch (``conv{m}``) are 0;
    2. the other layers of each branch: He init (:math:`\sigma = \sqrt{2/\text{fan\_out}}`, fan_out =
       out·k·k) scaled by :math:`L^{-1/(2m-2)}`;
    3. the downsampling convolutions: He init, unscaled. Other tensors keep their module's init.

    Reference code (``hongyi-zhang/Fixup``, ``imagenet/models/fixup_resnet_imagenet.py``):
    ``normal_(conv1.weight, std=sqrt(2 / (out * prod(k))) * num_layers ** (-0.5))`` for
    BasicBlock (m = 2), ``** (-0.25)`` for Bottleneck (m = 3).

    **Forward pass**: Fixup removes normalization and adds a scalar multiplier (1) and scalar
    biases (0) per branch; fanin does the init part only.

    >>> str(list(fixup(n_blocks=16, m=2))[1].init)[:62]
    'normal(std=sqrt(2/fan_out) * 16^(-1/2)) [Fixup removes normali'
    """
    _need("fixup", n_blocks=n_blocks, m=m)
    assert n_blocks is not None and m is not None
    if m < 2:
        raise RuleError(f"fixup needs m >= 2 layers per residual branch (L^(-1/(2m-2))), got m={m!r}")
    scale = n_blocks ** (-1 / (2 * m - 2))

    def he(module, k: float = 1.0) -> str:
        w = module.weight
        fan_out = w.shape[0] * math.prod(w.shape[2:])
        return f"normal(std={math.sqrt(2 / fan_out) * k!r})"

    inner = "|".join(f"conv{i}" for i in range(1, m))
    branch = r"(?:.*\.)?layer\d+\.\d+\."
    text = f"normal(std=sqrt(2/fan_out) * {n_blocks}^(-1/{2 * m - 2})) [{FORWARD['fixup']}]"
    return Rules(
        (
            Rule(Name(rf"{branch}conv{m}\.weight", regex=True), "zeros"),
            Rule(Name(rf"{branch}(?:{inner})\.weight", regex=True), FromModule(lambda mod: he(mod, scale), text)),
            Rule(Name(rf"{branch}downsample\.0\.weight", regex=True), FromModule(he, "normal(std=sqrt(2/fan_out))")),
            Rule(Name(r"(?:.*\.)?fc\.(?:weight|bias)", regex=True), "zeros"),
            Rule(Module("BatchNorm2d", "GroupNorm") & _NORMS, "ones"),
            Rule(Module("BatchNorm2d", "GroupNorm") & _NORM_BIAS, "zeros"),
        ),
        leftovers="reset_parameters",
        name="fixup",
    )


# ---------------------------------------------------------------------------- zero_init_residual

BLOCKS = ("basic", "bottleneck")


def zero_init_residual(block: str | None = None) -> Rules:
    r"""torchvision's ResNet with ``zero_init_residual=True`` (``models/resnet.py``, ``ResNet.__init__``;
    Goyal et al. 2017 §5.1): the ``resnet`` preset (fan_out Kaiming convs, norms 1 / 0), and the
    last BatchNorm of each residual branch with :math:`\gamma = 0` (``bn2`` of a BasicBlock, ``bn3``
    of a Bottleneck), so each block starts as the identity.

    >>> str(list(zero_init_residual("bottleneck"))[0])
    "name~'(?:.*\\\\.)?layer\\\\d+\\\\.\\\\d+\\\\.bn3\\\\.weight' -> zeros"
    """
    if block is None:
        _need("zero_init_residual", block=None)
    if block not in BLOCKS:
        raise RuleError(describe_choice("zero_init_residual block", block, BLOCKS))
    last = "bn2" if block == "basic" else "bn3"
    base = resnet()
    return Rules(
        (Rule(Name(rf"(?:.*\.)?layer\d+\.\d+\.{last}\.weight", regex=True), "zeros"), *base.rules),
        leftovers=base.leftovers,
        name=f"zero_init_residual({block})",
    )


# -------------------------------------------------------------------------------------- timm ViT


def vit_timm(std: float = 0.02) -> Rules:
    r"""timm ViT, mode ``''`` (``init_weights_vit_timm``): the ``vit`` preset — ``pos_embed``
    truncated :math:`\mathcal{N}(0, 0.02^2)` (cut at ±2, absolute, as timm's ``trunc_normal_``),
    ``cls_token``/``reg_token`` :math:`\mathcal{N}(0, 10^{-12})`, Linear weights truncated
    :math:`\mathcal{N}(0, 0.02^2)`, biases 0, the rest its module's ``reset_parameters``.

    timm draws its truncated normal by inverse CDF (``erfinv``), fanin's ``trunc_normal`` as torch
    does: the same distribution, other bits (``fanin.capture`` gives timm's bits).

    >>> len(vit_timm())
    6
    """
    rules = vit(std=_number("vit_timm", "std", std))
    return Rules(rules.rules, rules.leftovers, name="vit_timm")


def _vit_tokens() -> list[Rule]:
    return [
        Rule(Name("*pos_embed"), "trunc_normal(std=0.02)"),
        Rule(Name("*cls_token") | Name("*reg_token"), "normal(std=1e-06)"),
    ]


def vit_jax(head_bias: float = 0.0) -> Rules:
    r"""timm ViT, mode ``'jax'`` (``init_weights_vit_jax``): Linear weights Xavier uniform, the
    ``head`` weight 0 and bias ``head_bias`` (``'jax_nlhb'``: :math:`-\log(\text{classes})`); MLP
    biases :math:`\mathcal{N}(0, 10^{-12})`, other biases 0; Conv2d (the patch embedding) LeCun normal
    (truncated at ±2σ, :math:`\sigma = 1/(0.8796\sqrt{\text{fan\_in}})`, as ``lecun_normal_``); the tokens as in
    ``vit_timm``; the rest ``reset_parameters``.

    >>> [str(r.init) for r in vit_jax()][2:4]
    ['zeros', 'zeros']
    """
    hb = _number("vit_jax", "head_bias", head_bias, positive=False)
    head = Name("head.*") | Name("*.head.*")
    linear = Module("Linear")
    return Rules(
        (
            *_vit_tokens(),
            Rule(head & linear & Role("weight"), "zeros"),
            Rule(head & linear & Role("bias"), "zeros" if hb == 0 else f"constant(val={hb!r})"),
            Rule(linear & Role("weight"), "xavier_uniform"),
            Rule(linear & Role("bias") & Name("*mlp*"), "normal(std=1e-06)"),
            Rule(linear & Role("bias"), "zeros"),
            Rule(Module("Conv2d") & Role("weight"), "jax.lecun_normal"),
            Rule(Module("Conv2d") & Role("bias"), "zeros"),
        ),
        leftovers="reset_parameters",
        name="vit_jax",
    )


def vit_moco() -> Rules:
    r"""timm ViT, mode ``'moco'`` (``init_weights_vit_moco``, MoCo v3): Linear weights Xavier
    uniform, the fused ``qkv`` weight with the fans of one of its q, k, v blocks
    (:math:`\pm\sqrt{6/(\text{out}/3 + \text{in})}`: ``blocks=3``, :mod:`fanin.rules.blocks`),
    biases 0, the tokens as in ``vit_timm``, the rest ``reset_parameters``.

    >>> str(list(vit_moco())[2].init)
    'xavier_uniform per block of split(3)'
    """
    linear = Module("Linear")
    return Rules(
        (
            *_vit_tokens(),
            Rule(Name("*qkv.weight") & linear, "xavier_uniform", blocks=3),
            Rule(linear & Role("weight"), "xavier_uniform"),
            Rule(linear & Role("bias"), "zeros"),
        ),
        leftovers="reset_parameters",
        name="vit_moco",
    )


# ---------------------------------------------------------------------------------------- lookup

#: Recipe name -> function; the coordinator adds them to fanin.rules.presets.PRESETS.
RECIPES: dict[str, Callable[..., Rules]] = {
    "deepnorm": deepnorm,
    "fixup": fixup,
    "gpt_neox": gpt_neox,
    "megatron": megatron,
    "olmo": olmo,
    "t5": t5,
    "tfixup": tfixup,
    "torchtitan_llama3": torchtitan_llama3,
    "vit_jax": vit_jax,
    "vit_moco": vit_moco,
    "vit_timm": vit_timm,
    "zero_init_residual": zero_init_residual,
}


def _read(model: Any, path: str) -> Any:
    value = model
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def for_model(recipe: str, model: Any, **given: Any) -> Rules:
    """The recipe's rules with its parameters read from ``model``'s documented attributes
    (:data:`_ATTRIBUTES`: ``config.num_hidden_layers``, ``config.d_model``, torchtitan's
    ``model_args.n_layers``, ...) where ``given`` does not set them. A parameter neither given nor
    found raises the recipe's own error, naming the attributes looked at.

    >>> import torch
    >>> class M(torch.nn.Module):
    ...     class config:
    ...         n_layer = 6
    >>> str(list(for_model("gpt2", M()))[0].init)
    'normal(std=0.02/sqrt(2*6))'
    """
    factories: dict[str, Callable[..., Rules]] = {**RECIPES, "gpt2": gpt2}
    if recipe not in factories:
        raise RuleError(describe_choice("recipe", recipe, factories))
    factory = factories[recipe]
    params = inspect.signature(factory).parameters
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise RuleError(
            f"Recipe {recipe!r} got unexpected argument(s) {', '.join(unknown)}. Accepted: {', '.join(params)}."
        )
    args, _, looked = read_parameters(factory, model, given)
    return call_with_model_note(factory, args, model, looked)


def read_parameters(factory: Callable[..., Rules], model: Any, given: dict[str, Any]):
    """``(args, found, looked)``: ``given`` plus each required parameter of ``factory`` (default
    ``None``) that ``given`` leaves out, read from the first of its documented attributes
    (:data:`_ATTRIBUTES`) that ``model`` has; ``found`` maps each parameter read to the attribute it
    came from, ``looked`` says what was looked for in vain."""
    args = dict(given)
    found: dict[str, str] = {}
    looked: list[str] = []
    for name, p in inspect.signature(factory).parameters.items():
        if name in args or p.default is not None or name not in _ATTRIBUTES:
            continue
        for path in _ATTRIBUTES[name]:
            value = _read(model, path)
            if isinstance(value, int) and not isinstance(value, bool):
                args[name] = value
                found[name] = path
                break
        else:
            looked.append(f"{name} ({', '.join(_ATTRIBUTES[name])})")
    return args, found, looked


def call_with_model_note(factory: Callable[..., Rules], args: dict[str, Any], model: Any, looked: list[str]) -> Rules:
    """``factory(**args)``; a missing parameter's error also names the attributes looked for on ``model``."""
    try:
        return factory(**args)
    except RuleError as err:
        if looked:
            raise RuleError(f"{err} Looked on {type(model).__name__} for: {'; '.join(looked)}.") from None
        raise
