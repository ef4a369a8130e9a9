"""What a tensor is for, read from its name and module type: the audit's grouping of tensors.

A *role* is one of ``attention``, ``mlp``, ``embedding``, ``norm``, ``output head``, ``conv``,
``recurrent`` or ``other``; with the parameter kind (``weight``, ``bias``, ``running_mean``, ...)
and the name *pattern* (every run of digits between dots written ``*``: ``h.*.attn.c_proj.weight``)
it groups the tensors of a model for the report's summary and for pooling small tensors.

Norm layers are recognised by module type (any class whose name ends in ``Norm`` or contains
``Norm`` followed by ``1d``/``2d``/``3d``, e.g. ``LayerNorm``, ``BatchNorm2d``, ``LlamaRMSNorm``)
or, without module types, by the name of the module (``ln_1``, ``ln_f``, ``layernorm``,
``layer_norm``, ``norm``, ``norm1``, ``input_layernorm``, ``bn1``, ``batch_norm``...). Every
library starts a norm layer's affine parameters and running statistics at a constant (ones or
zeros): :mod:`fanin.auditing.evidence` uses that.

>>> role_of("transformer.h.3.attn.c_proj.weight", "Conv1D")
'attention'
>>> role_of("model.layers.0.post_attention_layernorm.weight", None)
'norm'
>>> name_pattern("transformer.h.11.mlp.c_fc.weight")
'transformer.h.*.mlp.c_fc.weight'
"""

from __future__ import annotations

import re

__all__ = ["NORM_PARAMETERS", "ROLES", "is_norm", "layer_count", "name_pattern", "parameter_kind", "role_of"]

ROLES = ("attention", "mlp", "embedding", "norm", "output head", "conv", "recurrent", "other")

#: Parameters of a norm layer that start at a constant.
NORM_PARAMETERS = ("weight", "bias", "running_mean", "running_var", "scale", "gamma", "beta", "g", "b")

_NORM_TYPE = re.compile(r"Norm(\d[dD])?$|Norm\d[dD]")
_NORM_NAME = re.compile(
    r"^(ln(_?\w+)?|\w*layer_?norm\w*|\w*_norm|norm\d*|\w*rms_?norm\w*|bn\d*|batch_?norm\d*|\w*group_?norm\w*"
    r"|final_layer_norm|norm_\w+|\w+_ln|ln\d*)$",
    re.IGNORECASE,
)
_WORDS = {
    "attention": (
        "attn",
        "attention",
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "qkv",
        "query",
        "key",
        "value",
        "c_attn",
        "self_attn",
        "in_proj",
        "out_proj",
        "wq",
        "wk",
        "wv",
        "wo",
        "q_lin",
        "k_lin",
        "v_lin",
    ),
    "mlp": (
        "mlp",
        "ffn",
        "feed_forward",
        "fc1",
        "fc2",
        "c_fc",
        "intermediate",
        "up_proj",
        "down_proj",
        "gate_proj",
        "w1",
        "w2",
        "w3",
        "dense_h_to_4h",
        "dense_4h_to_h",
        "lin1",
        "lin2",
    ),
    "embedding": (
        "wte",
        "wpe",
        "embed",
        "embeddings",
        "embed_tokens",
        "word_embeddings",
        "position_embeddings",
        "token_type_embeddings",
        "embed_positions",
        "pos_embed",
        "cls_token",
        "patch_embed",
        "tok_embeddings",
    ),
    "output head": ("lm_head", "head", "classifier", "fc", "output_projection", "score", "pooler", "logits"),
    "recurrent": ("lstm", "gru", "rnn", "weight_ih", "weight_hh", "bias_ih", "bias_hh"),
}
_TYPES = {
    "embedding": ("Embedding", "EmbeddingBag"),
    "recurrent": ("LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"),
    "conv": ("Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"),
    "attention": ("MultiheadAttention",),
}


def parameter_kind(name: str) -> str:
    """The last component of a dotted name (``weight``, ``bias``, ``running_var``, ...)."""
    return name.rsplit(".", 1)[-1]


def _module_name(name: str) -> str:
    parts = name.split(".")
    return parts[-2] if len(parts) >= 2 else ""


def is_norm(name: str, module_type: str | None) -> bool:
    """Whether ``name`` is a norm layer's parameter or running statistic (see the module docstring)."""
    if parameter_kind(name) not in NORM_PARAMETERS:
        return False
    if module_type is not None:
        return bool(_NORM_TYPE.search(module_type))
    return bool(_NORM_NAME.match(_module_name(name)))


def role_of(name: str, module_type: str | None) -> str:
    """The role of the tensor ``name`` (one of :data:`ROLES`)."""
    if is_norm(name, module_type):
        return "norm"
    if module_type is not None:
        for role, types in _TYPES.items():
            if module_type in types:
                return role
    parts = [p.lower() for p in name.split(".")[:-1]]
    for role in ("attention", "mlp", "embedding", "recurrent", "output head"):
        if any(p in _WORDS[role] or any(p.startswith(w) for w in _WORDS[role] if len(w) > 3) for p in parts):
            return role
    if module_type is not None and module_type.startswith("Conv") and "1D" not in module_type:
        return "conv"
    if parts and parts[-1].startswith("conv"):
        return "conv"
    return "other"


def name_pattern(name: str) -> str:
    """``name`` with every all-digit component written ``*`` (layer indices)."""
    return ".".join("*" if p.isdigit() else p for p in name.split("."))


def layer_count(names: list[str]) -> int:
    """The number of repeated blocks: one more than the largest index in the first indexed position
    that the names share (``h.0 .. h.11`` -> 12); 0 when no name has an index."""
    best = 0
    for name in names:
        parts = name.split(".")
        for p in parts:
            if p.isdigit():
                best = max(best, int(p) + 1)
                break
    return best
