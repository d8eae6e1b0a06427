"""How a run uses the machine: thread pools (progress bars: :mod:`actionbank_env.core.progress`)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["thread_limits"]


@contextlib.contextmanager
def thread_limits(n_threads: int) -> Iterator[None]:
    """Limit BLAS/OpenMP pools (and torch, if loaded later) to ``n_threads`` for the block."""
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(limits=n_threads):
            yield
    finally:
        if torch is not None and old is not None:
            torch.set_num_threads(old)
