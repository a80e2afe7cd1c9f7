"""Orthogonalizers: the exact polar factor and Newton–Schulz iterations with coefficient schedules as data.

For M = U diag(s) V^T (thin SVD) the polar factor is orth(M) = (M M^T)^{-1/2} M = U V^T
(SUMO §3, eq. "Orthogonalization_SVD"; Muon's target). Newton–Schulz approximates it by an odd matrix
polynomial applied to X_0 = M / ||M|| (Frobenius or spectral pre-normalisation):

    X_{k+1} = a X_k + b (X_k X_k^T) X_k + c (X_k X_k^T)^2 X_k,

which acts on every singular value independently through the scalar map p(x) = a x + b x^3 + c x^5.
``"cubic"`` = (1.5, -0.5) is the classical iteration (converges quadratically to 1 for x in (0, sqrt 3));
``"muon"`` = (3.4445, -4.7750, 2.0315) is Keller Jordan's quintic (KellerJordan/Muon ``muon.py``), which does
not converge to 1 but maps x in [1.5e-3, 1] into roughly [0.68, 1.20] after five steps.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch

__all__ = ["COEFFICIENTS", "polar", "polar_from_gram", "newton_schulz", "ns_iterate", "resolve_schedule"]

COEFFICIENTS: dict[str, tuple[float, ...]] = {
    "muon": (3.4445, -4.7750, 2.0315),
    "cubic": (1.5, -0.5),
}

Schedule = Union[str, Sequence[float], Sequence[Sequence[float]]]


def _decomposition_dtype(dtype: torch.dtype) -> torch.dtype:
    """Decompositions run in float32, or float64 when the input already is float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def polar(M: torch.Tensor, *, rtol: float | None = None, method: str = "svd") -> torch.Tensor:
    """Exact polar factor U V^T of M (batched over leading dims), returned in M's dtype.

    The SVD runs in float32 (float64 for float64 input) whatever M's dtype. Singular values at or below
    ``rtol * s_max`` (default ``max(m, n) * machine eps``) are treated as zero, so a zero or rank-deficient M
    gives the partial isometry onto its range (the limit Newton–Schulz converges to) rather than an
    arbitrary orthogonal completion, and never NaN. If the float32 SVD fails to converge it is retried in
    float64; if that fails too, the classical cubic Newton–Schulz iteration (30 steps) is used.

    ``method="gram"``: O = (X X^T)^{-1/2} X on the wide orientation X, through an eigendecomposition of the small
    k x k Gram matrix in float64 (cost k^2 l + k^3 instead of an SVD of the k x l matrix). Its round-off on a
    direction with singular value s is ~eps64 (s_max/s)^2, below float32 SVD's ~eps32 s_max/s whenever
    s_max/s < 1e8; directions with s <= sqrt(max(m, n) eps64) s_max (default ``rtol``) count as zero. If the
    eigensolver fails, the SVD route is taken.
    """
    if M.ndim < 2:
        raise ValueError(f"polar: M must have at least 2 dims, got shape {tuple(M.shape)}")
    if method not in ("svd", "gram"):
        raise ValueError(f"method={method!r} is invalid; allowed: ['svd', 'gram']")
    if method == "gram":
        try:
            return _polar_gram(M, rtol)
        except torch.linalg.LinAlgError:
            pass  # the SVD route below, then cubic Newton–Schulz
    work = M.to(_decomposition_dtype(M.dtype))
    try:
        U, S, Vh = _robust_svd(work)
    except torch.linalg.LinAlgError:
        return newton_schulz(M, steps=30, coeffs="cubic", normalize="spectral")
    eps = torch.finfo(S.dtype).eps
    tol = (rtol if rtol is not None else max(M.shape[-2:]) * eps) * S[..., :1]
    keep = (S > tol).to(S.dtype)
    return ((U * keep.unsqueeze(-2)) @ Vh).to(M.dtype)


def _polar_gram(M: torch.Tensor, rtol: float | None) -> torch.Tensor:
    tall = M.size(-2) > M.size(-1)
    X = (M.mT if tall else M).to(torch.float64)
    O = polar_from_gram(X, X @ X.mT, max(M.shape[-2:]), rtol)
    return (O.mT if tall else O).to(M.dtype)


def polar_from_gram(X: torch.Tensor, gram: torch.Tensor, long: int, rtol: float | None = None) -> torch.Tensor:
    """O = (X X^T)^{-1/2} X for a wide float64 X (k x l) from its k x k Gram ``gram`` (``polar(method="gram")``;
    ``subspace.sharded`` passes the Gram all-reduced over a column-split X). Directions with eigenvalue at or below
    rtol^2 w_max count as zero; the default rtol is sqrt(``long`` eps64), ``long`` the larger side of the matrix."""
    w, V = torch.linalg.eigh(gram)
    tol = (rtol if rtol is not None else (long * torch.finfo(torch.float64).eps) ** 0.5)
    w_max = w[..., -1:].clamp_min(0)
    keep = w > (tol ** 2) * w_max
    inv_sqrt = torch.where(keep, w.clamp_min(torch.finfo(torch.float64).tiny).rsqrt(), torch.zeros_like(w))
    return (V * inv_sqrt.unsqueeze(-2)) @ (V.mT @ X)


def _robust_svd(work: torch.Tensor):
    """Thin SVD with a float64 retry when LAPACK fails to converge."""
    try:
        return torch.linalg.svd(work, full_matrices=False)
    except torch.linalg.LinAlgError:
        U, S, Vh = torch.linalg.svd(work.double(), full_matrices=False)
        return U.to(work.dtype), S.to(work.dtype), Vh.to(work.dtype)


def resolve_schedule(coeffs: Schedule, steps: int) -> list[tuple[float, ...]]:
    """Turn a coefficient spec into one (a, b[, c]) tuple per step.

    Accepted: a name in ``COEFFICIENTS``; one tuple of 2 (cubic) or 3 (quintic) odd-polynomial coefficients used
    at every step; or a list of such tuples, one per step (then ``steps`` must equal its length).
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(coeffs, str):
        if coeffs not in COEFFICIENTS:
            raise ValueError(f"coeffs: unknown schedule {coeffs!r}; allowed names: {sorted(COEFFICIENTS)}, "
                             "a tuple (a, b) or (a, b, c), or a list of per-step tuples")
        return [COEFFICIENTS[coeffs]] * steps
    seq = list(coeffs)
    if seq and all(isinstance(c, (int, float)) for c in seq):
        _check_tuple(seq)
        return [tuple(float(c) for c in seq)] * steps
    if not seq or not all(isinstance(c, (tuple, list)) for c in seq):
        raise ValueError(f"coeffs: expected a name, a tuple of 2 or 3 numbers, or a list of such tuples; got {coeffs!r}")
    if len(seq) != steps:
        raise ValueError(f"coeffs: a per-step schedule of length {len(seq)} needs steps={len(seq)}, got steps={steps}")
    for c in seq:
        _check_tuple(c)
    return [tuple(float(x) for x in c) for c in seq]


def _check_tuple(c: Sequence[float]) -> None:
    if len(c) not in (2, 3):
        raise ValueError(f"coeffs: a step needs 2 (cubic) or 3 (quintic) coefficients, got {tuple(c)!r}")


def newton_schulz(M: torch.Tensor, steps: int = 5, coeffs: Schedule = "muon", *,
                  normalize: str = "frobenius", eps: float = 1e-7,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """Newton–Schulz approximation of the polar factor of M (batched over leading dims).

    X_0 = M / (||M||_F + eps) (``normalize="frobenius"``, Muon) or M / (||M||_2 + eps) (``"spectral"``, the
    SUMO Lemma 3.2 proof), then ``steps`` applications of X <- a X + b (X X^T) X [+ c (X X^T)^2 X].
    The iteration runs on the wide orientation (rows <= cols) so the Gram matrix is the small one. ``dtype``
    is the working precision (default: M's dtype; Muon's published code uses bfloat16); the result has
    M's dtype. Matches ``zeropower_via_newtonschulz5`` of KellerJordan/Muon for coeffs="muon",
    dtype=torch.bfloat16.
    """
    if M.ndim < 2:
        raise ValueError(f"newton_schulz: M must have at least 2 dims, got shape {tuple(M.shape)}")
    if normalize not in ("frobenius", "spectral"):
        raise ValueError(f"normalize must be 'frobenius' or 'spectral', got {normalize!r}")
    schedule = resolve_schedule(coeffs, steps)
    X = M.to(dtype or M.dtype)
    tall = M.size(-2) > M.size(-1)
    if tall:
        X = X.mT
    if normalize == "frobenius":
        norm = X.norm(dim=(-2, -1), keepdim=True)
    else:
        norm = torch.linalg.matrix_norm(X.to(_decomposition_dtype(X.dtype)), ord=2, keepdim=True).to(X.dtype)
    X = ns_iterate(X / (norm + eps), schedule)
    if tall:
        X = X.mT
    return X.to(M.dtype)


def ns_iterate(X: torch.Tensor, schedule, gram=None) -> torch.Tensor:
    """The Newton–Schulz steps X <- a X + b (X X^T) X [+ c (X X^T)^2 X] on a wide, pre-scaled X, one per tuple of
    ``schedule``; ``gram(X)`` forms X X^T (default: locally; ``subspace.sharded`` all-reduces a column-split X's)."""
    for c in schedule:
        A = X @ X.mT if gram is None else gram(X)
        if len(c) == 2:
            X = c[0] * X + c[1] * (A @ X)
        else:
            B = c[1] * A + (c[2] * A) @ A  # Muon's association (c * A) @ A: the same roundings in bfloat16
            X = c[0] * X + B @ X
    return X
