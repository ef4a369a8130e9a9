"""Shared by the rules tests: "nothing changed" means every tensor of the model is bitwise the same."""

import pytest
import torch


class ModelState:
    """Snapshots of a model's state dict as raw bytes (NaN payloads and -0.0 included)."""

    @staticmethod
    def bits(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        out = {}
        for name, tensor in model.state_dict(keep_vars=True).items():
            tensor = tensor.detach()
            if tensor.layout != torch.strided:
                tensor = tensor.to_dense()
            out[name] = tensor.clone().contiguous().reshape(-1).view(torch.uint8)
        return out

    @classmethod
    def assert_unchanged(cls, model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
        after = cls.bits(model)
        assert after.keys() == before.keys()
        changed = [name for name in before if not torch.equal(before[name], after[name])]
        assert not changed, f"written: {changed}"


@pytest.fixture(scope="session")
def state() -> type[ModelState]:
    return ModelState
