"""LAPACK calls (SVD, QR) at one torch thread.

MKL's LAPACK gives different bits at 1 and 2 threads, where torch's matmuls and reductions here do not
(tests/loop/test_threads.py). Running the few LAPACK calls (polar_svd, feature ranks, orthogonal
init) at one thread keeps a whole training run bit-identical at either count, which lets the loop
change the count to whatever is faster (loop/threads.py). They act on matrices of at most a few
hundred rows, so one thread costs little.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch at `count` CPU threads inside the block, the caller's count after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def one_thread() -> contextlib.AbstractContextManager[None]:
    return torch_threads(1)
