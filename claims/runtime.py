"""The runner's run-time policy for a claim (``claims.runner`` applies it; torch is imported only when a claim runs)."""
from __future__ import annotations

import contextlib

__all__ = ["single_thread"]


@contextlib.contextmanager
def single_thread(device: str = "cpu"):
    """One torch thread and one BLAS/OpenMP thread for numpy and scipy (``threadpoolctl``) while the claims' small
    tensors are on the CPU: thread hand-offs there cost more than the work (a 64x256 SVD runs ~20x slower with 2
    threads on a 2-core machine, in torch and in numpy's OpenBLAS alike), and no result depends on a thread count.
    The previous counts are restored."""
    if not str(device).startswith("cpu"):
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)
