"""fanin.materialize: meta models become real in one pass; nothing left on meta; errors before allocation."""

import pytest
import torch
from torch import nn

import fanin
import fanin.models
from fanin.rules import Kind, Name, RuleError


def meta(factory, **kwargs):
    with torch.device("meta"):
        return factory(**kwargs)


def all_tensors(model):
    return [*model.parameters(), *model.buffers()]


def test_gpt_on_meta_becomes_real_equal_to_apply_on_a_real_model():
    model = meta(fanin.models.gpt, n_layer=2)
    record = fanin.materialize(model, "gpt2(n_layer=2)", seed=0)
    assert not any(t.is_meta for t in all_tensors(model))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.lm_head.weight is model.wte.weight  # still tied
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    # the causal mask came from the module's reset_buffers() hook
    assert torch.equal(model.h[0].attn.mask, torch.ones(32, 32, dtype=torch.bool).tril())
    assert record["h.0.attn.mask"].init == "CausalSelfAttention.reset_buffers()"
    real = fanin.models.gpt(n_layer=2)
    fanin.apply(real, "gpt2(n_layer=2)", seed=0)
    for (name, a), b in zip(real.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # and the model runs
    assert model(torch.zeros(1, 4, dtype=torch.long)).shape == (1, 4, 256)


def test_batchnorm_running_stats_and_torch_preset_with_generator():
    def build():
        return nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Linear(3, 2))

    torch.manual_seed(0)
    reference = build()
    model = meta(build)
    fanin.materialize(model, "torch", generator=torch.Generator().manual_seed(0))
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_reset_parameters_rules_on_meta():
    torch.manual_seed(1)
    reference = nn.Linear(4, 3)
    model = meta(nn.Linear, in_features=4, out_features=3)
    torch.manual_seed(1)
    fanin.materialize(model, {"*": "reset_parameters"})
    assert torch.equal(model.weight, reference.weight) and torch.equal(model.bias, reference.bias)


def test_missing_rule_raises_before_anything_is_allocated():
    model = meta(fanin.models.gpt, n_layer=1)
    with pytest.raises(RuleError, match=r"parameter\(s\) match no rule: 'wte.weight', 'wpe.weight', 'h.0.ln_1.weight'"):
        fanin.materialize(model, {"*c_attn*": "normal"}, seed=0)
    assert all(t.is_meta for t in all_tensors(model))


def test_kept_parameter_on_meta_is_an_error():
    model = meta(nn.Linear, in_features=2, out_features=2)
    with pytest.raises(RuleError) as info:
        fanin.materialize(model, {"weight": "ones"}, leftovers="keep")
    assert str(info.value) == (
        "1 parameter(s) on the meta device would be kept, i.e. stay uninitialized: 'bias'. Give them a rule, "
        "or use leftovers='reset_parameters'."
    )
    assert model.weight.is_meta


def test_meta_buffer_without_rule_or_hook_is_an_error_and_a_rule_fixes_it():
    class Rotary(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(4, 4)
            self.register_buffer("inv_freq", torch.empty(2), persistent=False)

    model = meta(Rotary)
    with pytest.raises(RuleError) as info:
        fanin.materialize(model, {"*": "zeros"})
    assert str(info.value) == (
        "1 buffer(s) on the meta device have no rule and no module hook (reset_buffers or reset_running_stats): "
        "'inv_freq'. Add a rule with kind='buffer' for them, or define reset_buffers() on their module."
    )
    assert model.proj.weight.is_meta
    fanin.materialize(model, [(Name("inv_freq") & Kind("buffer"), "constant(val=0.5)"), ("*", "zeros")])
    assert torch.equal(model.inv_freq, torch.full((2,), 0.5))


def test_partly_real_model_moves_the_rest_and_peak_is_one_copy():
    model = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with torch.device("meta"):
        model.append(nn.Linear(3, 2))
    record = fanin.materialize(model, {"2.*": "zeros"}, leftovers="keep", device="cpu")
    assert not any(t.is_meta for t in all_tensors(model))
    assert [e.action for e in record] == ["keep"] * 4 + ["scheme"] * 2


def test_materialize_errors():
    with pytest.raises(ValueError, match=r"materialize allocates real tensors, got device=meta"):
        fanin.materialize(nn.Linear(2, 2), "torch", device="meta")
    with pytest.raises(TypeError, match=r"materialize needs a torch.nn.Module, got model=1 \(int\)"):
        fanin.materialize(1, "torch")


_PEAK_SCRIPT = r"""
import json, sys
import torch, fanin
from torch import nn

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

with torch.device("meta"):
    model = nn.Sequential(*[nn.Linear(1024, 1024) for _ in range(24)])  # 24 x 4 MiB of weights
fanin.Stream(0, "warm-up").uniform_(torch.empty(70000), -1.0, 1.0)  # load the kernels first
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM := current RSS
base = status("VmRSS")
fanin.materialize(model, {"*.weight": "xavier_uniform", "*.bias": "zeros"}, seed=0)
size = sum(p.numel() * p.element_size() for p in model.parameters())
json.dump({"peak": status("VmHWM") - base, "size": size}, sys.stdout)
"""


def test_materialize_peak_memory_is_about_the_model_size():
    # Measured in a fresh process (peak RSS, Linux /proc): materializing allocates each tensor
    # once and keeps no second copy, so the peak rise stays within 1.25x of the parameters' bytes
    # (allocator slack and page granularity make up the rest).
    import json
    import subprocess
    import sys

    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, check=True)
    measured = json.loads(out.stdout)
    assert measured["size"] == 24 * (1024 * 1024 + 1024) * 4
    assert measured["peak"] <= 1.25 * measured["size"], measured


# --- all or nothing -----------------------------------------------------------------------------------


def snapshot(model):
    """(name, object, device) of every parameter and buffer: a failed materialize changes none of them."""
    return [(n, id(t), t.device.type) for n, t in [*model.named_parameters(), *model.named_buffers()]]


def test_a_value_that_cannot_be_computed_leaves_the_model_on_meta(monkeypatch):
    import threading

    class Locked(nn.Linear):
        def __init__(self, *args):
            super().__init__(*args)
            self.lock = threading.Lock()  # deep-copying this module fails with "cannot pickle"

        def reset_parameters(self):
            if getattr(self, "armed", False):
                raise RuntimeError("broken reset")
            super().reset_parameters()

    model = meta(lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), Locked(3, 2)))
    before = snapshot(model)
    record = fanin.materialize(model, {"0.*": "ones", "*": "reset_parameters"})  # the lock is no obstacle
    assert record["2.weight"].init == "Locked.reset_parameters()" and not model[2].weight.is_meta
    model = meta(lambda: nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), Locked(3, 2)))
    model[2].armed = True
    before = snapshot(model)
    with pytest.raises(fanin.errors.ApplyError) as info:
        fanin.materialize(model, {"0.*": "ones", "*": "reset_parameters"})
    assert str(info.value) == (
        "Cannot compute '2.weight': Locked.reset_parameters() of module '2' raised RuntimeError: broken reset. "
        "Nothing was written."
    )
    assert snapshot(model) == before and all(t.is_meta for t in all_tensors(model))


@pytest.mark.parametrize("error", [RuntimeError("store failed"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_failing_swap_puts_every_tensor_back(error):
    class Exploding(dict):
        # a module store that refuses the first real tensor: the swap fails half-way
        def __setitem__(self, key, value):
            if isinstance(value, torch.Tensor) and not value.is_meta:
                raise error
            super().__setitem__(key, value)

    model = meta(lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 2)))
    model[1].__dict__["_parameters"] = Exploding(model[1]._parameters)
    before = snapshot(model)
    with pytest.raises(type(error)):
        fanin.materialize(model, {"*": "zeros"}, seed=0)
    assert snapshot(model) == before and all(t.is_meta for t in all_tensors(model))


def test_materialize_refuses_what_plan_refuses():
    model = meta(lambda: nn.Sequential(nn.Linear(3, 2)))
    with pytest.raises(RuleError, match=r"scheme 'orthogonal' cannot initialize '0.bias' \(Linear '0'\)"):
        fanin.materialize(model, {"*": "orthogonal"})
    assert all(t.is_meta for t in all_tensors(model))
