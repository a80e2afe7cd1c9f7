"""The dtype names every command accepts and the bytes an optimizer state holds."""
from __future__ import annotations

import torch

from subspace import DTYPES

__all__ = ["DTYPES", "state_bytes"]


def state_bytes(state: dict) -> int:
    """Bytes held by the tensors of one parameter's optimizer state; 0-d tensors (step counters) are not counted."""
    return sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v) and v.ndim > 0)
