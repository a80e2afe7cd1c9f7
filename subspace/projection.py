"""Projectors: which r-dimensional subspace of the smaller side a gradient is compressed to, and when it changes.

A gradient G (m x n) is oriented as A = G (m < n, left projection) or A = G^T (m >= n, right projection), so A is
k x l with k = min(m, n) (GaLore's rule: compress the smaller side, state r x max(m, n); ``side`` may force one). A basis is a k x r matrix
Q with orthonormal columns; the projected gradient is R = Q^T A (r x l) and the back-projection of a direction D is
Q D. The SVD-based bases are computed from G in its own orientation, as the official GaLore code does, so that the
singular-vector signs agree with it.
"""
from __future__ import annotations

import torch

from .bases import randomized_svd_basis, stiefel, svd_basis
from .sharded import Rows, fro
from .updates import adam_combine

__all__ = ["orient", "refresh_due", "new_basis", "move_moments", "online_pca_grad", "online_pca_step"]


def orient(G: torch.Tensor, side: str = "auto", m: int | None = None) -> tuple[torch.Tensor, bool]:
    """Return (A, left): A = G for a left projection, else G^T. ``side="auto"`` projects the smaller side
    (left iff m < n, GaLore's rule); ``"left"``/``"right"`` force one (the GoLore simulation projects left).
    ``m``: the whole matrix's row count when G holds some of its rows (``subspace.sharded``)."""
    left = (G.shape[0] if m is None else m) < G.shape[1] if side == "auto" else side == "left"
    return (G if left else G.mT), left


def refresh_due(step: int, gap: int, index: str) -> bool:
    """GaLore/GoLore/SUMO papers: t mod T == 0 with t = 0, 1, ... (``"zero"``); SUMO/SN-SM codes: (t+1) mod T == 0."""
    return (step if index == "zero" else step + 1) % gap == 0


def new_basis(kind, G: torch.Tensor, r: int, left: bool, generator: torch.Generator, group: dict,
              dtype: torch.dtype, step: int, rows: Rows | None = None) -> torch.Tensor:
    """A fresh k x r orthonormal basis for G (m x n) from the named projector, or from a callable one.

    ``svd``: top-r singular vectors (GaLore Alg. 2, SUMO "Truncated_SVD", OSD initialisation), through
    ``svd_driver`` (float64 Gram eigendecomposition by default, thin float32 SVD for the official codes);
    ``rsvd``: Halko et al. randomized range finder with ``oversample`` and ``power_iters`` (SUMO Alg. 1);
    ``stiefel``: uniform on St(k, r) (GoLore §4) by ``stiefel_method``, drawn on the CPU from the optimizer's
    generator so every device and DDP rank draws the same basis; a callable ``fn(A, r, t)`` gets the oriented
    k x l gradient A and the step count t and must return a k x r basis with orthonormal columns (checked).
    If every decomposition route fails, ``torch.linalg.LinAlgError`` propagates: the optimizer then keeps the
    previous basis, or takes the canonical one on a first refresh.
    G may be the local rows of a row-split gradient (``rows``): the basis is then the whole matrix's, the same on
    every rank (a callable gets the all-gathered gradient; see ``subspace.sharded`` for what each route sends).
    """
    side = "left" if left else "right"
    rows = rows or Rows.whole(G.shape[0])
    k = rows.size if left else G.shape[1]
    if callable(kind):
        whole = rows.gather(G)
        Q = _checked_user_basis(kind(whole if left else whole.mT, r, step), k, r)
    elif kind == "stiefel":
        Q = stiefel(k, r, generator, method=group["stiefel_method"])
    elif kind == "rsvd":
        Q = randomized_svd_basis(G, r, side, oversample=int(group["oversample"]),
                                 power_iters=int(group["power_iters"]), generator=generator, rows=rows)
    else:
        Q = svd_basis(G, r, side, driver=group["svd_driver"], rows=rows)
    return Q.to(device=G.device, dtype=dtype)


def _checked_user_basis(Q, k: int, r: int) -> torch.Tensor:
    if not torch.is_tensor(Q) or tuple(Q.shape) != (k, r):
        shape = tuple(Q.shape) if torch.is_tensor(Q) else type(Q).__name__
        raise ValueError(f"projector: the callable returned {shape}; it must return a ({k}, {r}) tensor")
    gram_error = (Q.mT.double() @ Q.double() - torch.eye(r, dtype=torch.float64, device=Q.device)).abs().max()
    if not bool(gram_error <= 1e-3):
        raise ValueError(f"projector: the callable's basis is not orthonormal (max |Q^T Q - I| = {float(gram_error):.3g})")
    return Q


def move_moments(state: dict, Q_old: torch.Tensor, Q_new: torch.Tensor, policy: str,
                 subspace_keys) -> torch.Tensor | None:
    """Carry subspace states across a basis change; return the first moment the state must hold after this step
    (None: the one this step updates).

    ``keep``: reuse the coordinates as they are (GaLore code and paper; reference §2.3).
    ``transport``: M <- (Q_new^T Q_old) M for the first moment (SUMO Alg. 1 block 1.1, GoLore's momentum projection);
    second moments are kept (as both official codes do: an elementwise square does not transport linearly).
    ``reset``: set the subspace states to zero (SN-SM, paper-claims §4.2).
    ``transport-step``: this step uses the transported M; afterwards the state holds the old M, without this
    step's gradient (pkumelon/Golore@7ee5a8a golore_torch/adamw.py and sgd.py rebind the local buffer).
    ``reset-after``: this step uses the kept M; afterwards the state holds zero (timmytonga/sn-sm@a4c1a4a5
    subspace_momentum.py replaces the stored tensor after taking a local reference).
    """
    if policy == "keep" or "exp_avg" not in state:
        return None
    M = state["exp_avg"]
    if policy == "reset-after":
        return torch.zeros_like(M)
    if policy == "reset":
        for key in subspace_keys:
            if key in state:
                state[key].zero_()
        return None
    after = M.clone() if policy == "transport-step" else None
    M.copy_((Q_new.mT @ Q_old.to(Q_new.dtype)) @ M)
    return after


def online_pca_grad(P: torch.Tensor, A: torch.Tensor, orth: float, R: torch.Tensor | None = None,
                    rows: Rows | None = None, left: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient and value of OSD's online-PCA loss (OSD eq. 6) at P (k x r) for the gradient A (k x l).

    L(P) = ||P P^T A~ - A~||_F^2 + orth ||P^T P - I||_F^2 with A~ = A / ||A||_F (A~ = 0 when A = 0). With
    R~ = P^T A~ (pass ``R = P^T A`` when already computed) and E = P R~ - A~ the reconstruction term's gradient
    2 (E A~^T P + A~ E^T P) equals 2 [P (R~ R~^T) + (A~ R~^T)(P^T P) - 2 A~ R~^T]: one k x l x r product;
    its value is tr(R~^T P^T P R~) - 2 ||R~||^2 + ||A~||^2. The penalty adds 4 orth P (P^T P - I).

    A may hold some rows of a row-split gradient (``rows``; P and the result are whole): for a left projection
    A's rows are split, R is whole and the k x r product A R~^T is all-gathered; for a right one A's and R's
    columns are split and the sums over them (||A||, R~ R~^T, A R~^T, the value's traces) are all-reduced.
    """
    rows = rows or Rows.whole(A.shape[0] if left else A.shape[1])
    cols = (lambda x: x) if left else rows.sum  # sums over A's columns
    norm = fro(rows, A, True)
    inv = torch.where(norm > 0, 1.0 / norm, torch.zeros_like(norm))
    Rt = ((rows.take(P) if left else P).mT @ A if R is None else R) * inv
    AR = (rows.gather(A @ Rt.mT) if left else cols(A @ Rt.mT)) * inv
    PtP = P.mT @ P
    grad = 2.0 * (P @ cols(Rt @ Rt.mT) + AR @ PtP - 2.0 * AR)
    loss = cols((Rt * (PtP @ Rt)).sum() - 2.0 * (Rt * Rt).sum()) + (norm * inv) ** 2
    if orth:
        D = PtP - torch.eye(P.shape[1], dtype=P.dtype, device=P.device)
        grad = grad + 4.0 * orth * (P @ D)
        loss = loss + orth * (D * D).sum()
    return grad, loss


def online_pca_step(state: dict, A: torch.Tensor, group: dict, R: torch.Tensor | None = None,
                    rows: Rows | None = None, left: bool = True) -> None:
    """One AdamW step (torch semantics, betas (0.9, 0.999), eps 1e-8) of the basis P on the online-PCA loss.

    Learning rate: alpha * lr (``pca_lr_rule="ratio"``, OSD Alg. 1 remark, alpha = ``pca_lr_ratio`` = 5) or
    (1/T) * lr / lr_peak (``"gap"``, the official code). Decay lambda^P = ``pca_weight_decay`` (None: the weight's
    decay, as the paper sets lambda^P = lambda^W; the code uses 0.01). The step is taken after the weight update, so
    the new P acts from the next step (OSD Alg. 1 and code alike). No re-orthonormalisation.
    """
    P = state["basis"]
    grad, _ = online_pca_grad(P, A.to(P.dtype), float(group["pca_orth"]), R, rows, left)
    if group["pca_lr_rule"] == "ratio":
        lr = float(group["pca_lr_ratio"]) * group["lr"]
    else:
        lr = group["lr"] / group.get("initial_lr", group["lr"]) / group["update_gap"] if group["lr"] else 0.0
    wd = group["pca_weight_decay"] if group["pca_weight_decay"] is not None else group["weight_decay"]
    state["pca_step"] += 1
    betas = (0.9, 0.999)
    M, V = state["pca_exp_avg"], state["pca_exp_avg_sq"]
    M.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    V.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    P.mul_(1.0 - lr * wd)
    P.add_(adam_combine(M, V, state["pca_step"], betas, 1e-8, "torch"), alpha=-lr)
