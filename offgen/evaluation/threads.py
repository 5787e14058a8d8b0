"""The torch thread count while evaluating beside envpool.

On a 2-core machine, torch's default (one thread per core) made batched IMPALA inference 2.7-20x
slower than one thread while envpool stepped environments on the same cores (measured while
evaluating and collecting): the threads of both libraries contend for the cores, and torch's
threads spin-wait. Evaluation therefore runs torch with **one thread by default** and restores
the previous count afterwards. On machines with many free cores a larger count can pay off for big
batches; ``--torch-threads 0`` (``torch_threads=None``) leaves torch's own setting alone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["DEFAULT_TORCH_THREADS", "torch_threads_set"]

DEFAULT_TORCH_THREADS = 1


@contextmanager
def torch_threads_set(count: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(count)`` (``None``: unchanged).

    torch is not imported by this: a policy that uses torch has imported it already, and one that
    does not needs no setting.
    """
    torch = sys.modules.get("torch")
    if count is None or torch is None:
        yield
        return
    if count < 1:
        raise ValueError(f"torch_threads must be >= 1 or None, got {count}")
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
