"""Orthonormal bases of r-dimensional subspaces of R^k: the ways a projector picks its subspace.

All functions return a (k, r) matrix Q with Q^T Q = I_r (to working precision), computed in float32 or better.

* ``svd_basis``: top-r left singular vectors of G (GaLore Alg. 2; GoLore's GaLore arm).
* ``randomized_svd_basis``: Halko, Martinsson & Tropp (2011) Alg. 4.4 / 5.1: range finder with oversampling p
  and q power iterations (SUMO Alg. 1 "Truncated_Randomized_SVD").
* ``stiefel``: a uniform (Haar) sample on St(k, r) = {Q : Q^T Q = I_r}: QR of a Gaussian matrix with the sign
  of diag(R) folded into Q (Mezzadri 2007), so the law is exactly rotation invariant (GoLore §4).
"""
from __future__ import annotations

import torch

__all__ = ["svd_basis", "randomized_svd_basis", "stiefel", "canonical_basis"]


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def stiefel(m: int, r: int, generator: torch.Generator | None = None, *,
            dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
    """Uniform sample from the Stiefel manifold St(m, r): an (m, r) matrix with orthonormal columns.

    Draws Z ~ N(0, 1)^{m x r} from ``generator`` (on the CPU, so a seed gives the same basis on every device
    and every DDP rank), takes Z = Q R and returns Q diag(sign(diag R)).
    """
    if not isinstance(m, int) or not isinstance(r, int) or m < 1 or r < 1:
        raise ValueError(f"stiefel: m and r must be positive ints, got m={m!r}, r={r!r}")
    if r > m:
        raise ValueError(f"stiefel: r={r} must not exceed m={m}")
    Z = torch.randn(m, r, generator=generator, dtype=_work_dtype(dtype))
    Q, R = torch.linalg.qr(Z)
    signs = torch.sign(torch.diagonal(R))
    signs[signs == 0] = 1.0
    return (Q * signs).to(dtype=dtype, device=device)


def canonical_basis(k: int, r: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """First r standard basis vectors: the documented last-resort basis when every SVD fails."""
    return torch.eye(k, r, dtype=dtype, device=device)


def svd_basis(G: torch.Tensor, r: int, side: str = "left", driver: str = "svd") -> torch.Tensor:
    """Top-r singular vectors of G: left ones (k = rows) or right ones (k = cols), as a (k, r) matrix.

    ``driver="svd"``: thin SVD of G in its own orientation (as the official GaLore code does), in float32 or
    float64. ``driver="gram"``: top-r eigenvectors of the k x k Gram matrix (G G^T or G^T G) in float64, the same
    subspace (singular-vector signs may differ) at a fraction of the cost when k << max(m, n); float64 keeps the
    squared condition number harmless for the top-r directions. A failure to converge is retried in float64,
    then with the other driver; if all fail, ``torch.linalg.LinAlgError`` propagates so the caller can keep its
    previous basis.
    """
    if driver not in ("svd", "gram"):
        raise ValueError(f"driver={driver!r} is invalid; allowed: ['svd', 'gram']")
    work = G.to(_work_dtype(G.dtype))
    if driver == "gram":
        try:
            return _gram_eigh_basis(work, r, side)
        except torch.linalg.LinAlgError:
            pass
    try:
        U, _, Vh = torch.linalg.svd(work, full_matrices=False)
    except torch.linalg.LinAlgError:
        try:
            U, _, Vh = torch.linalg.svd(work.double(), full_matrices=False)
        except torch.linalg.LinAlgError:
            return _gram_eigh_basis(work, r, side)
    return (U[:, :r] if side == "left" else Vh[:r].mT).to(work.dtype)


def _gram_eigh_basis(work: torch.Tensor, r: int, side: str) -> torch.Tensor:
    gram = work @ work.mT if side == "left" else work.mT @ work
    _, vecs = torch.linalg.eigh(gram.double())
    return vecs[:, -r:].flip(-1).to(work.dtype)


def randomized_svd_basis(G: torch.Tensor, r: int, side: str = "left", *, oversample: int = 5,
                         power_iters: int = 2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Approximate top-r singular vectors of G by a randomized range finder (Halko et al. 2011).

    For the left side: Y = (G G^T)^q G Omega with Omega ~ N(0,1)^{n x (r+p)}, re-orthonormalised by QR after
    every multiplication (Alg. 4.4); Q = qr(Y); then the exact SVD of the small (r+p) x n matrix Q^T G gives
    the top-r directions U = Q U_small[:, :r]. The right side applies the same to G^T. Cost O(mn(r+p)(2q+1)).
    """
    work = G.to(_work_dtype(G.dtype))
    A = work if side == "left" else work.mT
    k, n = A.shape
    width = min(r + oversample, k, n)
    omega = torch.randn(n, width, generator=generator, dtype=work.dtype).to(A.device)
    Q, _ = torch.linalg.qr(A @ omega)
    for _ in range(power_iters):
        Z, _ = torch.linalg.qr(A.mT @ Q)
        Q, _ = torch.linalg.qr(A @ Z)
    small = Q.mT @ A
    try:
        U_small, _, _ = torch.linalg.svd(small, full_matrices=False)
    except torch.linalg.LinAlgError:
        U_small, _, _ = torch.linalg.svd(small.double(), full_matrices=False)
        U_small = U_small.to(work.dtype)
    basis = Q @ U_small[:, :r]
    if basis.shape[1] < r:  # G had fewer than r columns in the sketch: complete with the canonical basis
        basis = torch.linalg.qr(torch.cat([basis, canonical_basis(k, r, dtype=basis.dtype, device=basis.device)], 1))[0][:, :r]
    return basis
