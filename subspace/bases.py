"""Orthonormal bases of r-dimensional subspaces of R^k: the ways a projector picks its subspace.

All functions return a (k, r) matrix Q with Q^T Q = I_r (to working precision), computed in float32 or better.

* ``svd_basis``: top-r left singular vectors of G (GaLore Alg. 2; GoLore's GaLore arm).
* ``randomized_svd_basis``: Halko, Martinsson & Tropp (2011) Alg. 4.4 / 5.1: range finder with oversampling p
  and q power iterations (SUMO Alg. 1 "Truncated_Randomized_SVD").
* ``stiefel``: a uniform (Haar) sample on St(k, r) = {Q : Q^T Q = I_r}: QR of a Gaussian matrix with the sign
  of diag(R) folded into Q (Mezzadri 2007), so the law is exactly rotation invariant (GoLore §4).
"""
from __future__ import annotations

import hashlib

import torch

from .sharded import Rows, orthonormal

__all__ = ["svd_basis", "randomized_svd_basis", "stiefel", "canonical_basis", "align_signs", "stream_generator"]


def stream_generator(seed: int, position: int, step: int) -> torch.Generator:
    """The CPU generator of one random draw in the per-parameter streams (``random_stream="per-parameter"``),
    seeded by a 64-bit BLAKE2b hash of (seed, the parameter's position in the optimizer, the step): no draw
    depends on the order in which parameters step, or on any draw before it."""
    key = f"{seed}/{position}/{step}".encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little"))


def _work_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def stiefel(m: int, r: int, generator: torch.Generator | None = None, *,
            dtype: torch.dtype = torch.float32, device: torch.device | str | None = None,
            method: str = "qr") -> torch.Tensor:
    """Uniform sample from the Stiefel manifold St(m, r): an (m, r) matrix with orthonormal columns.

    Draws Z ~ N(0, 1)^{m x r} from ``generator`` (on the CPU, so a seed gives the same basis on every device
    and every DDP rank). ``method="qr"``: Z = Q R and the sample is Q diag(sign(diag R)) (Mezzadri 2007).
    ``method="polar"``: the sample is Z (Z^T Z)^(-1/2) (Chikuse 2012, Thm 2.2.1; GoLore Prop. 1 and its code,
    pkumelon/Golore@7ee5a8a golore_projector.py ``get_random_orthogonal_matrix``), computed from the float64
    eigensystem of the r x r matrix Z^T Z. Both laws are exactly Haar; for one Z the two samples differ.
    """
    if not isinstance(m, int) or not isinstance(r, int) or m < 1 or r < 1:
        raise ValueError(f"stiefel: m and r must be positive ints, got m={m!r}, r={r!r}")
    if r > m:
        raise ValueError(f"stiefel: r={r} must not exceed m={m}")
    if method not in ("qr", "polar"):
        raise ValueError(f"method={method!r} is invalid; allowed: ['qr', 'polar']")
    Z = torch.randn(m, r, generator=generator, dtype=_work_dtype(dtype))
    if method == "polar":
        w, V = torch.linalg.eigh(Z.double().mT @ Z.double())
        return ((Z.double() @ V) * w.rsqrt() @ V.mT).to(dtype=dtype, device=device)
    Q, R = torch.linalg.qr(Z)
    signs = torch.sign(torch.diagonal(R))
    signs[signs == 0] = 1.0
    return (Q * signs).to(dtype=dtype, device=device)


def canonical_basis(k: int, r: int, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """First r standard basis vectors: the documented last-resort basis when every SVD fails."""
    return torch.eye(k, r, dtype=dtype, device=device)


def svd_basis(G: torch.Tensor, r: int, side: str = "left", driver: str = "svd", rows: Rows | None = None) -> torch.Tensor:
    """Top-r singular vectors of G: left ones (k = rows) or right ones (k = cols), as a (k, r) matrix.

    ``driver="svd"``: thin SVD of G in its own orientation (as the official GaLore code does), in float32 or
    float64. ``driver="gram"``: top-r eigenvectors of the k x k Gram matrix (G G^T or G^T G) formed and
    decomposed in float64 from G's exact values (the same subspace, signs may differ). Its error on the subspace
    is ~ eps64 s1^2 / (s_r^2 - s_{r+1}^2), far below a float32 SVD's ~ eps32 s1 / (s_r - s_{r+1}) for any
    condition number below eps32 / eps64 ~ 5e8; forming the Gram in float32 first would cost it the subspace
    (sin theta = 0.1 on a float32 gradient with s1 / s_r = 2.5e3). A failure to converge is retried in float64,
    then with the other driver; if all fail, ``torch.linalg.LinAlgError`` propagates so the caller can keep its
    previous basis. The basis is returned in float32 (float64 for float64 input).

    G may be the local rows of a row-split matrix (``rows``, ``subspace.sharded``): the right basis by the Gram
    driver takes the n x n float64 Gram sum_i G_i^T G_i (one all-reduce) when that sends less than gathering G
    (for float32, m > 4 n); otherwise, and for the left basis (its m x m Gram couples rows of different ranks) and
    the SVD driver (whose signs the official codes keep), every rank decomposes the all-gathered G.
    """
    if driver not in ("svd", "gram"):
        raise ValueError(f"driver={driver!r} is invalid; allowed: ['svd', 'gram']")
    out_dtype = _work_dtype(G.dtype)
    rows = rows or Rows.whole(G.shape[0])
    n = G.shape[1]
    if (rows.group is not None and driver == "gram" and side == "right"
            and rows.reduce_is_cheaper(8 * n * n, rows.size * n * G.element_size())):
        try:
            return _gram_eigh_basis(G, r, side, rows).to(out_dtype)
        except torch.linalg.LinAlgError:
            pass
    G = rows.gather(G)
    if driver == "gram":
        try:
            return _gram_eigh_basis(G, r, side).to(out_dtype)
        except torch.linalg.LinAlgError:
            pass
    work = G.to(out_dtype)
    try:
        U, _, Vh = torch.linalg.svd(work, full_matrices=False)
    except torch.linalg.LinAlgError:
        try:
            U, _, Vh = torch.linalg.svd(work.double(), full_matrices=False)
        except torch.linalg.LinAlgError:
            return _gram_eigh_basis(G, r, side).to(out_dtype)
    return (U[:, :r] if side == "left" else Vh[:r].mT).to(out_dtype)


def _gram_eigh_basis(G: torch.Tensor, r: int, side: str, rows: Rows | None = None) -> torch.Tensor:
    """Top-r eigenvectors of the float64 Gram matrix of G (float64 result); the right Gram of a row-split G is
    the all-reduced sum of the local ones."""
    G64 = G.to(torch.float64)
    gram = G64 @ G64.mT if side == "left" else (rows or Rows.whole(G.shape[0])).sum(G64.mT @ G64)
    return top_eigenvectors(gram, r)


def top_eigenvectors(S: torch.Tensor, r: int) -> torch.Tensor:
    """The eigenvectors of the r largest eigenvalues of a symmetric S, largest first."""
    return torch.linalg.eigh(S)[1][:, -r:].flip(-1)


def randomized_svd_basis(G: torch.Tensor, r: int, side: str = "left", *, oversample: int = 5,
                         power_iters: int = 2, generator: torch.Generator | None = None,
                         rows: Rows | None = None) -> torch.Tensor:
    """Approximate top-r singular vectors of G by a randomized range finder (Halko et al. 2011).

    For the left side: Y = (G G^T)^q G Omega with Omega ~ N(0,1)^{n x (r+p)}, re-orthonormalised by QR after
    every multiplication (Alg. 4.4); Q = qr(Y); then the exact SVD of the small (r+p) x n matrix Q^T G gives
    the top-r directions U = Q U_small[:, :r]. The right side applies the same to G^T. Cost O(mn(r+p)(2q+1)).
    The products and decompositions run in float64 (Omega is drawn in float32, float64 for float64 input), so
    round-off adds only ~ eps64 s1 / (s_r - s_{r+1}) to the method's own randomized error, which decays like
    (s_{r+p+1} / s_r)^(2q+1) (Halko et al. 2011, Cor. 10.10). The basis is returned in float32 (float64 for
    float64 input).

    G may be the local rows of a row-split matrix (``rows``, ``subspace.sharded``): A is then split by rows
    (left) or by columns (right); every product that contracts the split index is one all-reduce of a k x (r+p)
    or (r+p) x l sketch, a split factor is orthonormalised from its (r+p) x (r+p) Gram (``sharded.orthonormal``),
    the small SVD of a column-split Q^T A comes from its (r+p) x (r+p) Gram, and a row-split basis is all-gathered
    (k x r). Omega is drawn whole on every rank, so the sketch is the single-process one.
    """
    rows = rows or Rows.whole(G.shape[0])
    split_rows = side == "left"  # which index of A holds W's (possibly split) rows
    A = (G if split_rows else G.mT).to(torch.float64)
    k, n = (rows.size, A.shape[1]) if split_rows else (A.shape[0], rows.size)
    width = min(r + oversample, k, n)
    omega = torch.randn(n, width, generator=generator, dtype=_work_dtype(G.dtype)).to(A)
    times = (lambda X: A @ X) if split_rows else (lambda X: rows.sum(A @ X))          # A X, contracting n
    times_t = (lambda Y: rows.sum(A.mT @ Y)) if split_rows else (lambda Y: A.mT @ Y)  # A^T Y, contracting k
    Q = orthonormal(rows, times(omega if split_rows else rows.take(omega)), split_rows)
    for _ in range(power_iters):
        Z = orthonormal(rows, times_t(Q), not split_rows)
        Q = orthonormal(rows, times(Z), split_rows)
    B = rows.sum(Q.mT @ A) if split_rows else Q.mT @ A
    if split_rows or rows.group is None:
        U_small = torch.linalg.svd(B, full_matrices=False)[0]
    else:
        U_small = top_eigenvectors(rows.sum(B @ B.mT), B.shape[0])
    basis = rows.gather(Q @ U_small[:, :r]) if split_rows else Q @ U_small[:, :r]
    if basis.shape[1] < r:  # G had fewer than r columns in the sketch: complete with the canonical basis
        basis = torch.linalg.qr(torch.cat([basis, canonical_basis(k, r, dtype=basis.dtype, device=basis.device)], 1))[0][:, :r]
    return basis.to(_work_dtype(G.dtype))


def align_signs(Q: torch.Tensor, reference: torch.Tensor | None = None, min_overlap: float = 1e-3) -> torch.Tensor:
    """Canonical column signs of a basis, so a kept moment does not depend on which decomposition found it.

    Column j is flipped so that q_j^T p_j > 0 for the previous basis P (``reference``) when |q_j^T p_j| >
    ``min_overlap``; otherwise (and for a first basis) so that its entry of largest magnitude is positive.
    Both rules are equivariant under a sign flip of q_j, so the result is the same whatever signs the SVD or
    eigensolver returned. The subspace and the column order are unchanged. No host synchronisation.
    """
    largest = Q.gather(0, Q.abs().argmax(dim=0, keepdim=True))[0]
    signs = torch.sign(largest)
    if reference is not None:
        overlap = (Q * reference.to(Q.dtype)).sum(dim=0)
        signs = torch.where(overlap.abs() > min_overlap, torch.sign(overlap), signs)
    return Q * torch.where(signs == 0, torch.ones_like(signs), signs)
