"""The model zoo the capture, recipe and lint tests build from config (tiny sizes, nothing downloaded).

Each member is ``(name, factory, entry)``: ``factory()`` builds the model; ``entry`` is how the
library initializes it: ``"construction"`` (torchvision, timm ConvNeXt, plain torch layers: the
values are the constructor's) or the name of the model's init entry point, which the tests run
on a built model under a seed.

torchvision and timm (which imports torchvision) are installed from the registry built for CUDA
torch: their C ops fail to register beside the CPU torch (``operator torchvision::nms does not
exist``). :func:`import_torchvision` declares the missing op schemas before the import when the
real load fails -- in test setup only; no model the tests build calls those ops.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

import torch
from torch import nn

# The schemas torchvision's C++ library defines (torchvision/csrc/ops/*.cpp, TORCH_LIBRARY_FRAGMENT).
TORCHVISION_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int "
    "sampling_ratio, bool aligned) -> Tensor",
    "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
    "SymInt batch_size, SymInt channels, SymInt height, SymInt width, int sampling_ratio, bool aligned) -> Tensor",
    "ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int "
    "sampling_ratio) -> (Tensor, Tensor)",
    "_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, SymInt "
    "pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels, SymInt height, "
    "SymInt width) -> Tensor",
    "roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) -> (Tensor, "
    "Tensor)",
    "_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height, SymInt "
    "pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) -> "
    "(Tensor, Tensor)",
    "_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, SymInt "
    "pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor",
    "qroi_align(Tensor input, Tensor rois, float input_scale, int input_zero_point, float rois_scale, int "
    "rois_zero_point, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, bool "
    "aligned) -> Tensor",
    "deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, SymInt "
    "stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, "
    "bool use_mask) -> Tensor",
    "_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, "
    "SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt "
    "groups, SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    "_cuda_version() -> int",
)
_LIBRARY = None


def import_torchvision():
    """``import torchvision``, declaring its op schemas first when its C library cannot (test setup only)."""
    global _LIBRARY
    try:
        return importlib.import_module("torchvision")
    except RuntimeError as err:
        if "torchvision::" not in str(err):
            raise
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]
    _LIBRARY = torch.library.Library("torchvision", "FRAGMENT")
    for schema in TORCHVISION_SCHEMAS:
        _LIBRARY.define(schema)
    return importlib.import_module("torchvision")


def timm_module():
    import_torchvision()
    return importlib.import_module("timm")


# ----------------------------------------------------------------------------- transformers


def _hf(config_cls: str, model_cls: str, **config):
    def build():
        # transformers imports torchvision when it is installed: declare its ops first.
        if importlib.util.find_spec("torchvision") is not None:
            import_torchvision()
        import transformers

        return getattr(transformers, model_cls)(getattr(transformers, config_cls)(**config))

    return build


HF = {
    "gpt2": _hf(
        "GPT2Config",
        "GPT2LMHeadModel",
        n_layer=2,
        n_embd=32,
        n_head=2,
        vocab_size=64,
        n_positions=16,
        bos_token_id=0,
        eos_token_id=0,
    ),
    "bert": _hf(
        "BertConfig",
        "BertForMaskedLM",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=64,
        max_position_embeddings=16,
        pad_token_id=0,
    ),
    "llama": _hf(
        "LlamaConfig",
        "LlamaForCausalLM",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=64,
        max_position_embeddings=16,
    ),
    "t5": _hf(
        "T5Config",
        "T5ForConditionalGeneration",
        num_layers=2,
        num_decoder_layers=2,
        d_model=32,
        d_kv=8,
        num_heads=4,
        d_ff=64,
        vocab_size=64,
        decoder_start_token_id=0,
    ),
    "vit": _hf(
        "ViTConfig",
        "ViTForImageClassification",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=16,
        patch_size=8,
        num_labels=3,
    ),
    "qwen2": _hf(
        "Qwen2Config",
        "Qwen2ForCausalLM",
        num_hidden_layers=2,
        hidden_size=32,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=64,
        max_position_embeddings=16,
    ),
}


# ------------------------------------------------------------------------------------ timm


def timm_vit(weight_init: str = ""):
    vt = importlib.import_module("timm.models.vision_transformer")
    return vt.VisionTransformer(
        img_size=16, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=5, weight_init=weight_init
    )


def timm_convnext():
    cn = importlib.import_module("timm.models.convnext")
    return cn.ConvNeXt(depths=(1, 1, 1, 1), dims=(8, 16, 24, 32), num_classes=5)


def timm_resnet():
    rn = importlib.import_module("timm.models.resnet")
    return rn.ResNet(rn.BasicBlock, [1, 1, 1, 1], num_classes=5)


# ----------------------------------------------------------------------------- torchvision


def tv_resnet():
    tv = import_torchvision()
    return tv.models.resnet.ResNet(tv.models.resnet.BasicBlock, [1, 1, 1, 1], num_classes=5)


def tv_mobilenet():
    tv = import_torchvision()
    return tv.models.mobilenet_v2(width_mult=0.25, num_classes=5)


def tv_vit():
    tv = import_torchvision()
    return tv.models.vision_transformer.VisionTransformer(
        image_size=16, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes=5
    )


# --------------------------------------------------------------------------------- plain torch


def plain():
    return nn.ModuleDict(
        {
            "lin": nn.Linear(6, 5),
            "conv": nn.Conv2d(3, 4, 3),
            "convt": nn.ConvTranspose1d(4, 2, 3),
            "bil": nn.Bilinear(3, 4, 2),
            "emb": nn.Embedding(7, 4, padding_idx=1),
            "bn": nn.BatchNorm1d(4),
            "ln": nn.LayerNorm(4),
            "gn": nn.GroupNorm(2, 4),
            "lstm": nn.LSTM(3, 4, num_layers=2),
            "gru": nn.GRUCell(3, 4),
            "mha": nn.MultiheadAttention(8, 2),
            "prelu": nn.PReLU(3),
        }
    )


# ---------------------------------------------------------------- torchtitan Llama 3, restated
# torchtitan/models/llama3/model/model.py (Attention/FeedForward/TransformerBlock/Transformer.init_weights),
# as released: trunc_normal_ with its default bounds, w3 depth-scaled (torchtitan#3334). Tiny sizes.


class TTAttention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.wq, self.wk, self.wv, self.wo = (nn.Linear(dim, dim, bias=False) for _ in range(4))

    def init_weights(self, init_std):
        for linear in (self.wq, self.wk, self.wv):
            nn.init.trunc_normal_(linear.weight, mean=0.0, std=0.02)
        nn.init.trunc_normal_(self.wo.weight, mean=0.0, std=init_std)


class TTFeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def init_weights(self, init_std):
        nn.init.trunc_normal_(self.w1.weight, mean=0.0, std=0.02)
        for linear in (self.w2, self.w3):
            nn.init.trunc_normal_(linear.weight, mean=0.0, std=init_std)


class TTBlock(nn.Module):
    def __init__(self, layer_id, dim, n_layers, depth_init):
        super().__init__()
        self.attention = TTAttention(dim)
        self.feed_forward = TTFeedForward(dim, 3 * dim)
        self.attention_norm = nn.RMSNorm(dim)
        self.ffn_norm = nn.RMSNorm(dim)
        self.weight_init_std = 0.02 / (2 * (layer_id + 1)) ** 0.5 if depth_init else 0.02 / (2 * n_layers) ** 0.5

    def init_weights(self):
        for norm in (self.attention_norm, self.ffn_norm):
            norm.reset_parameters()
        self.attention.init_weights(self.weight_init_std)
        self.feed_forward.init_weights(self.weight_init_std)


class TTTransformer(nn.Module):
    def __init__(self, dim=32, n_layers=3, vocab=50, depth_init=True):
        super().__init__()
        self.dim = dim
        self.tok_embeddings = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleDict({str(i): TTBlock(i, dim, n_layers, depth_init) for i in range(n_layers)})
        self.norm = nn.RMSNorm(dim)
        self.output = nn.Linear(dim, vocab, bias=False)

    def init_weights(self):
        nn.init.normal_(self.tok_embeddings.weight)
        for layer in self.layers.values():
            layer.init_weights()
        self.norm.reset_parameters()
        final_out_std = self.dim**-0.5
        cutoff_factor = 3
        nn.init.trunc_normal_(
            self.output.weight,
            mean=0.0,
            std=final_out_std,
            a=-cutoff_factor * final_out_std,
            b=cutoff_factor * final_out_std,
        )


#: (name, factory, entry): entry is "construction" or the init method the library runs.
ZOO = [
    *[(f"hf-{k}", v, "initialize_weights") for k, v in HF.items()],
    ("timm-vit", timm_vit, "init_weights"),
    ("timm-convnext", timm_convnext, "construction"),
    ("timm-resnet", timm_resnet, "init_weights"),
    ("tv-resnet", tv_resnet, "construction"),
    ("tv-mobilenet", tv_mobilenet, "construction"),
    ("tv-vit", tv_vit, "construction"),
    ("torch-layers", plain, "construction"),
]


def require(member: str) -> None:
    """Skip the calling test when the package a zoo member needs is not installed."""
    import pytest

    package = needs(member)
    if package == "transformers":
        pytest.importorskip("transformers")
    elif package == "torchvision":
        try:
            import_torchvision()
        except ImportError:
            pytest.skip("torchvision/timm not installed")
        pytest.importorskip("timm")


def needs(name: str) -> str | None:
    """The optional package a zoo member needs."""
    if name.startswith("hf-"):
        return "transformers"
    if name.startswith(("timm-", "tv-")):
        return "torchvision"
    return None


def library_init(model: nn.Module, entry: str, seed: int) -> None:
    """Run the library's own init entry point on ``model`` under torch's global RNG seeded ``seed``."""
    for m in model.modules():
        if "_is_hf_initialized" in m.__dict__:
            m._is_hf_initialized = False
    for t in [*model.parameters(), *model.buffers()]:
        if hasattr(t, "_is_hf_initialized"):
            t._is_hf_initialized = False
    torch.manual_seed(seed)
    with torch.no_grad():
        getattr(model, entry)()
