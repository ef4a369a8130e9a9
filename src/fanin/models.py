"""Small demo models for ``fanin explain`` and the examples: ``mlp``, ``cnn`` and ``gpt``.

``gpt`` is GPT-2 shaped (nanoGPT naming: ``wte``, ``wpe``, ``h.N.attn.c_attn``/``c_proj``,
``h.N.mlp.c_fc``/``c_proj``, ``ln_f``, a ``lm_head`` tied to ``wte``) with a causal-mask buffer
that its attention recomputes in ``reset_buffers()``, the hook :func:`fanin.materialize` calls.

>>> model = build("gpt(n_layer=2, n_embd=16)")
>>> sum(p.numel() for p in model.parameters())
11200
>>> build("mlp")(torch.zeros(1, 16)).shape
torch.Size([1, 10])
"""

from __future__ import annotations

import ast
import importlib
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fanin.errors import FaninError, describe_choice

__all__ = [
    "GPT",
    "MAX_SPEC_LENGTH",
    "MODELS",
    "ModelBuildError",
    "ModelSpecError",
    "accepted_arguments",
    "build",
    "cnn",
    "gpt",
    "mlp",
    "parse_model_spec",
]


class ModelSpecError(FaninError, ValueError):
    """A model spec that names no model or passes arguments it cannot read."""


class ModelBuildError(FaninError, ValueError):
    """The factory of a well-formed model spec raised while building the model (the cause is chained)."""


def mlp(in_features: int = 16, hidden: int = 32, depth: int = 2, out_features: int = 10) -> nn.Sequential:
    """Linear/ReLU layers: ``in_features -> hidden (x depth) -> out_features``."""
    layers: list[nn.Module] = []
    width = in_features
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def cnn(in_channels: int = 3, channels: int = 16, classes: int = 10) -> nn.Sequential:
    """A ResNet-style stem: conv/BatchNorm/ReLU twice, global pooling, a Linear head."""
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, 2 * channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(2 * channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * channels, classes),
    )


class CausalSelfAttention(nn.Module):
    mask: torch.Tensor

    def __init__(self, n_embd: int, n_head: int, block_size: int) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ModelSpecError(f"gpt needs n_embd divisible by n_head, got n_embd={n_embd}, n_head={n_head}")
        self.n_head = n_head
        self.block_size = block_size
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer("mask", torch.empty(block_size, block_size, dtype=torch.bool), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """Recompute the causal mask (lower triangle), e.g. after materializing from meta."""
        with torch.no_grad():
            self.mask.copy_(
                torch.ones(self.block_size, self.block_size, dtype=torch.bool, device=self.mask.device).tril()
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
        att = att.masked_fill(~self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        return self.c_proj((att @ v).transpose(1, 2).reshape(b, t, c))


class MLP(nn.Module):
    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd)
        self.c_proj = nn.Linear(4 * n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(nn.functional.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, n_embd: int, n_head: int, block_size: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = MLP(n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """A GPT-2 style decoder (Radford et al., 2019), nanoGPT layout, ``lm_head`` tied to ``wte``.

    ``n_layer`` (the number of blocks) is kept as an attribute: depth-scaled presets such as
    ``"gpt2"`` read it from there.
    """

    def __init__(
        self, vocab_size: int = 256, block_size: int = 32, n_layer: int = 2, n_head: int = 2, n_embd: int = 32
    ) -> None:
        super().__init__()
        self.n_layer = n_layer
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head, block_size) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def gpt(vocab_size: int = 256, block_size: int = 32, n_layer: int = 2, n_head: int = 2, n_embd: int = 32) -> GPT:
    """A small :class:`GPT`."""
    return GPT(vocab_size, block_size, n_layer, n_head, n_embd)


MODELS: dict[str, Callable[..., nn.Module]] = {"cnn": cnn, "gpt": gpt, "mlp": mlp}
MAX_SPEC_LENGTH = 10_000  # characters of a model spec; a longer one is refused before it is parsed


def parse_model_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split ``"name(key=literal, ...)"`` or ``"package.module:factory(key=literal)"`` into the
    target and keyword arguments (literals only, nothing is evaluated).

    >>> parse_model_spec("gpt(n_layer=4, n_embd=64)")
    ('gpt', {'n_layer': 4, 'n_embd': 64})
    >>> parse_model_spec("torchvision.models:resnet18(num_classes=10)")
    ('torchvision.models:resnet18', {'num_classes': 10})
    """
    text = spec.strip()
    if len(text) > MAX_SPEC_LENGTH:
        raise ModelSpecError(
            f"Cannot read model spec {spec[:60]!r}...: {len(text)} characters, more than {MAX_SPEC_LENGTH}"
        )
    target, paren, rest = text.partition("(")
    target = target.strip()
    if not target:
        raise ModelSpecError(f"Cannot read model spec {spec!r}: expected 'name(key=value)' or 'package.module:factory'")
    if not paren:
        return target, {}
    if not rest.rstrip().endswith(")"):
        raise ModelSpecError(f"Cannot read model spec {spec!r}: the argument list is not closed with ')'")
    try:
        node = ast.parse("f(" + rest, mode="eval").body
    except (SyntaxError, RecursionError, MemoryError, ValueError) as err:
        raise ModelSpecError(
            f"Cannot read model spec {spec!r}: {getattr(err, 'msg', None) or type(err).__name__}"
        ) from None
    if not isinstance(node, ast.Call) or node.args or any(kw.arg is None for kw in node.keywords):
        raise ModelSpecError(f"Cannot read model spec {spec!r}: arguments are keyword literals, e.g. gpt(n_layer=4)")
    kwargs: dict[str, Any] = {}
    for kw in node.keywords:
        assert kw.arg is not None  # **mapping was refused above
        if kw.arg in kwargs:
            raise ModelSpecError(f"Cannot read model spec {spec!r}: {kw.arg} is given twice")
        try:
            kwargs[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
            raise ModelSpecError(
                f"Cannot read model spec {spec!r}: the value of {kw.arg} must be a literal (number, string, "
                "True/False/None, tuple, list, dict)"
            ) from None
    return target, kwargs


def accepted_arguments(factory: Callable[..., Any]) -> list[str] | None:
    """The keyword arguments ``factory`` accepts, sorted; ``None`` when it takes any (``**kwargs``)
    or its signature cannot be read.

    >>> accepted_arguments(mlp)
    ['depth', 'hidden', 'in_features', 'out_features']
    """
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return sorted(
        p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def _check_arguments(target: str, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    accepted = accepted_arguments(factory)
    if accepted is None:
        return
    for key, value in kwargs.items():
        if key not in accepted:
            raise ModelSpecError(
                describe_choice(f"argument of {target}", key, accepted).replace("Accepted:", "Accepted arguments:")
                if accepted
                else f"{target} takes no arguments, got {key}={value!r}"
            )
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as err:
        raise ModelSpecError(
            f"Cannot build {target!r} with {kwargs!r}: {err}. Accepted arguments: {', '.join(accepted) or 'none'}."
        ) from None


def build(spec: str, **overrides: Any) -> nn.Module:
    """The model ``spec`` names: a built-in demo (:data:`MODELS`) or an import path ``module:factory``,
    called with the spec's keyword arguments updated by ``overrides``.

    Build it under ``with torch.device("meta"):`` to get its shapes without memory.

    Raises :class:`ModelSpecError` for a spec that names nothing buildable or arguments the factory
    does not accept (the message lists the accepted ones), :class:`ModelBuildError` when the
    factory itself raises (out of memory, a constraint of the model), with the cause chained.

    >>> build("mlp", widht=8)
    Traceback (most recent call last):
    ...
    fanin.models.ModelSpecError: Unknown argument of mlp 'widht'. Accepted arguments: 'depth', 'hidden',
    'in_features', 'out_features'.
    """
    target, kwargs = parse_model_spec(spec)
    kwargs.update(overrides)
    if ":" in target:
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ModelSpecError(f"Cannot import {module_name!r} for model spec {spec!r}: {err}") from None
        except Exception as err:  # the module's own code raised while importing
            raise ModelBuildError(
                f"Importing {module_name!r} for model spec {spec!r} failed: {type(err).__name__}: {err}"
            ) from err
        factory: Any = module
        for part in attr.split("."):
            factory = getattr(factory, part, None)
            if factory is None:
                raise ModelSpecError(f"Module {module_name!r} has no attribute {attr!r} (model spec {spec!r})")
    elif target in MODELS:
        factory = MODELS[target]
    else:
        raise ModelSpecError(
            describe_choice("model", target, MODELS) + " Or give an import path 'package.module:factory'."
        )
    if not callable(factory):
        raise ModelSpecError(f"{target!r} is not callable (model spec {spec!r})")
    _check_arguments(target, factory, kwargs)
    try:
        model = factory(**kwargs)
    except ModelSpecError:
        raise
    except Exception as err:
        shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise ModelBuildError(f"Building {target}({shown}) failed: {type(err).__name__}: {err}") from err
    if not isinstance(model, nn.Module):
        raise ModelSpecError(f"{target!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model
