"""Running torch on one thread, for results that must not depend on the thread count."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch

__all__ = ["one_thread"]

# torch's intra-op thread count belongs to the process, not to a Python thread: the blocks of all
# threads share one saved count, restored when the last of them leaves.
_lock = threading.Lock()
_inside = 0
_saved = 0


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)``; the previous count is restored on exit.

    LAPACK's QR changes its rounding with the thread count (measured with MKL: 2-4 threads move
    95-98% of Q's elements against 1 thread), so a factorization whose bits are promised runs here.

    Safe to enter from several Python threads at once (``fanin.apply`` on two models from two
    threads): the count is process-wide, so the first block to enter saves it, the last to leave
    restores it, and torch runs on one thread while any block is inside. Saving and restoring
    per block would let the second block save the first one's 1 and leave torch on one thread.

    >>> before = torch.get_num_threads()
    >>> with one_thread():
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    global _inside, _saved
    with _lock:
        if _inside == 0:
            _saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                torch.set_num_threads(_saved)
