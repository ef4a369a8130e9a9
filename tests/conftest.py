import importlib.util
from pathlib import Path

import pytest
import torch


def pytest_configure(config):
    """transformers and timm import torchvision whenever it is installed, and the registry's
    torchvision is built for CUDA torch: its C ops fail to register beside the CPU torch. Declare
    their schemas before the first import (test setup only: see tests/rules/_zoo.py)."""
    if importlib.util.find_spec("torchvision") is not None:
        spec = importlib.util.spec_from_file_location("_fanin_rules_zoo", Path(__file__).parent / "rules" / "_zoo.py")
        zoo = importlib.util.module_from_spec(spec)
        import sys

        sys.modules["_fanin_rules_zoo"] = zoo
        spec.loader.exec_module(zoo)
        zoo.import_torchvision()


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests that seed the global generator must not leak that state into other tests."""
    state = torch.random.get_rng_state()
    yield
    torch.random.set_rng_state(state)
