"""Base updates and the full-space preconditioner: pure functions on tensors and a state dict.

Notation: R is the (projected) gradient, M the first moment, V the second moment, t the 1-indexed step,
bc_i = 1 - beta_i^t. All functions update the state tensors in place and return the direction.
"""
from __future__ import annotations

import math

import torch

__all__ = ["adam_combine", "adam_moments", "momentum_direction", "subset_norm_stat", "shape_factor"]


def adam_combine(numerator: torch.Tensor, V: torch.Tensor, t: int, betas, eps: float, style: str,
                 bias_correction: bool = True) -> torch.Tensor:
    """Adam's ratio N = M_hat / (sqrt(V_hat) + eps) in one of two eps placements.

    ``"torch"`` (torch.optim.AdamW, GaLore paper Alg. 2): (M / bc1) / (sqrt(V) / sqrt(bc2) + eps).
    ``"hf"`` (old transformers.AdamW, used by the GaLore/GoLore/OSD/SN-SM codes): M / (sqrt(V) + eps) * sqrt(bc2)/bc1,
    i.e. eps acts on the un-corrected sqrt(V).
    """
    bc1 = 1.0 - betas[0] ** t if bias_correction else 1.0
    bc2 = 1.0 - betas[1] ** t if bias_correction else 1.0
    if style == "hf":
        return torch.div(numerator, V.sqrt().add_(eps)).mul_(math.sqrt(bc2) / bc1)
    return torch.div(numerator, V.sqrt().div_(math.sqrt(bc2)).add_(eps)).div_(bc1)


def adam_moments(R: torch.Tensor, state: dict, betas) -> tuple[torch.Tensor, torch.Tensor]:
    """M <- b1 M + (1-b1) R,  V <- b2 V + (1-b2) R^2 (GaLore Alg. 2 lines 6-7)."""
    M, V = state["exp_avg"], state["exp_avg_sq"]
    M.mul_(betas[0]).add_(R, alpha=1.0 - betas[0])
    V.mul_(betas[1]).addcmul_(R, R, value=1.0 - betas[1])
    return M, V


def momentum_direction(R: torch.Tensor, state: dict, mu: float, dampening: float, nesterov: bool,
                       overwrite: bool = False, start_at_gradient: bool = False) -> torch.Tensor:
    """M <- mu M + (1 - dampening) R; direction M, or (1 - dampening) R + mu M with Nesterov.

    dampening = 0 is SUMO Alg. 1 block 2 and GoLore's MSGD; dampening = mu is the EMA of Muon (M.lerp_(R, 1-mu)).
    M starts at zero (the papers); ``start_at_gradient`` makes the first buffer R itself, undamped, as
    torch.optim.SGD and the GaLore/GoLore SGD codes do (equal to the zero start only when dampening = 0).
    ``overwrite`` reproduces the official SUMO code, which stores the Nesterov mix back into the buffer
    (effective momentum mu^2, reference-implementations §4.2).
    """
    M = state["exp_avg"]
    if start_at_gradient:
        M.copy_(R)
    else:
        M.mul_(mu).add_(R, alpha=1.0 - dampening)
    if not nesterov:
        return M
    mixed = R.mul(1.0 - dampening).add_(M, alpha=mu)
    if overwrite:
        M.copy_(mixed)
        return M
    return mixed


def subset_norm_stat(G: torch.Tensor, subset, reduce: str, rows: int | None = None,
                     sum_rows=None) -> tuple[torch.Tensor, tuple]:
    """Per-subset squared norm ||g_Psi||^2 of a gradient and the shape the update must take to divide by it.

    ``subset="heuristic"`` (SN-SM code, paper-claims §4.1): for G of shape (m, n) one subset per index of the larger
    dimension spanning the smaller one, so the statistic is (m, 1) if m >= n else (1, n): state max(m, n).
    An integer k: G is flattened into contiguous chunks of k' elements, k' the largest divisor of numel <= k, and the
    statistic has shape (numel/k', 1). ``reduce="mean"`` divides the sum by the subset size.
    For G the local rows of a row-split gradient (``subspace.sharded``), ``rows`` is the whole matrix's row count
    and ``sum_rows`` all-reduces the partial column sums (heuristic subsets only).
    """
    if subset == "heuristic" and G.ndim == 2:
        m = G.shape[0] if rows is None else rows
        dim = 1 if m >= G.shape[1] else 0
        stat = (G * G).sum(dim=dim, keepdim=True)
        if dim == 0 and sum_rows is not None:
            stat = sum_rows(stat)
        size = m if dim == 0 else G.shape[1]
        view = tuple(G.shape)
    else:
        numel = G.numel()
        k = int(subset) if subset != "heuristic" else max(1, int(math.isqrt(numel)))
        k = max(d for d in range(1, min(k, numel) + 1) if numel % d == 0)
        chunks = G.reshape(numel // k, k)
        stat = (chunks * chunks).sum(dim=1, keepdim=True)
        size = k
        view = (numel // k, k)
    if reduce == "mean":
        stat = stat / size
    return stat, view


def shape_factor(kind: str, m: int, n: int) -> float:
    """Shape-dependent update scale: 1, Moonlight's 0.2 sqrt(max(m, n)) (SUMO code) or Muon's sqrt(max(1, m/n))."""
    if kind == "moonlight":
        return 0.2 * math.sqrt(max(m, n))
    if kind == "muon":
        return math.sqrt(max(1.0, m / n))
    return 1.0
