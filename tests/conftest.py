import pytest
import torch


@pytest.fixture(autouse=True)
def _restore_global_rng():
    """Tests that seed the global generator must not leak that state into other tests."""
    state = torch.random.get_rng_state()
    yield
    torch.random.set_rng_state(state)
