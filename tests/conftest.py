import importlib.util

import pytest
import torch


def pytest_configure(config):
    """transformers and timm import torchvision whenever it is installed, and the registry's
    torchvision is built for CUDA torch: its C ops fail to register beside the CPU torch. Declare
    their schemas before the first import (test setup only: see tests/support/zoo.py)."""
    if importlib.util.find_spec("torchvision") is not None:
        from support import zoo

        zoo.import_torchvision()


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests that seed the global generator must not leak that state into other tests."""
    state = torch.random.get_rng_state()
    yield
    torch.random.set_rng_state(state)
