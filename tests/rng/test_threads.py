"""one_thread: torch on one thread inside, the count restored after, also with blocks in several threads."""

from __future__ import annotations

import threading

import pytest
import torch

from fanin.rng.threads import one_thread


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_one_thread_inside_and_the_count_restored_after(two_threads):
    with one_thread():
        assert torch.get_num_threads() == 1
        with one_thread():  # nested
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2


def test_restored_after_an_exception(two_threads):
    with pytest.raises(RuntimeError, match="inside"), one_thread():
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_blocks_of_two_threads_that_overlap_restore_the_count(two_threads):
    # A enters, B enters, A leaves, B leaves: saving per block, B would save A's 1 and restore it.
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with one_thread():
            a_in.set()
            b_in.wait(10)
        seen["after A left, B inside"] = torch.get_num_threads()
        a_out.set()

    def b():
        a_in.wait(10)
        with one_thread():
            b_in.set()
            a_out.wait(10)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"after A left, B inside": 1}  # still one thread while B's block runs
    assert torch.get_num_threads() == 2
