"""The tensors of a model as selectors see them: one :class:`~fanin.rules.selectors.Target` per tensor.

A model's parameters and buffers are listed module by module, in ``named_modules()`` order and,
within a module, in registration order (parameters first). A tensor shared between modules or
names (a tied parameter) is listed once, under its first name, with the other names as aliases.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
>>> [(t.name, t.kind) for _, _, own in collect_targets(model) for t, _, _ in own][-2:]
[('1.running_var', 'buffer'), ('1.num_batches_tracked', 'buffer')]
"""

from __future__ import annotations

import torch

from fanin.rules.rules import RuleError
from fanin.rules.selectors import Target

__all__ = ["Targets", "collect_targets", "is_uninitialized"]

#: ``[(module name, module, [(target, tensor, aliases), ...]), ...]``: what :func:`collect_targets` returns.
Targets = list[tuple[str, torch.nn.Module, list[tuple[Target, torch.Tensor, tuple[str, ...]]]]]


def is_uninitialized(tensor: torch.Tensor) -> bool:
    """Whether ``tensor`` is a lazy module's ``UninitializedParameter``/``UninitializedBuffer`` (no shape yet)."""
    return isinstance(tensor, (torch.nn.parameter.UninitializedParameter, torch.nn.parameter.UninitializedBuffer))


def collect_targets(model: torch.nn.Module) -> Targets:
    """``[(module_name, module, [(Target, tensor, aliases), ...]), ...]`` in ``named_modules`` order.

    Tensors shared between modules or names are listed once, under the first name. A lazy
    parameter or buffer (no shape yet) is refused with a :class:`~fanin.rules.rules.RuleError`.
    """
    first: dict[int, str] = {}
    aliases: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in first:
            aliases[id(p)].append(name)
        else:
            first[id(p)], aliases[id(p)] = name, []
    for name, b in model.named_buffers(remove_duplicate=False):
        if id(b) in first:
            aliases[id(b)].append(name)
        else:
            first[id(b)], aliases[id(b)] = name, []
    out: Targets = []
    for module_name, module in model.named_modules():
        own = []
        for kind, items in (("parameter", module._parameters.items()), ("buffer", module._buffers.items())):
            for local, tensor in items:
                if tensor is None:
                    continue
                name = f"{module_name}.{local}" if module_name else local
                if first.get(id(tensor)) != name:
                    continue  # a tied alias, listed under its first name
                if is_uninitialized(tensor):
                    raise RuleError(
                        f"{name!r} of {type(module).__name__} (module {module_name or '<root>'!r}) is an uninitialized "
                        "lazy parameter or buffer, which has no shape yet: run one forward pass, then plan"
                    )
                own.append((Target.of(module, name, local, kind, tensor), tensor, tuple(aliases[id(tensor)])))
        out.append((module_name, module, own))
    return out
