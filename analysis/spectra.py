"""Singular spectra and the scalar summaries the papers build on them.

Every function accepts a 2-D ``numpy`` array or ``torch`` tensor (leading batch dimensions are accepted where
noted) and works in float64 NumPy. Undefined quantities (a zero matrix has no condition number, stable rank or
effective rank) are returned as ``nan``, never raised.

Definitions (sigma_1 >= sigma_2 >= ... >= 0 the singular values of M in R^{m x n}):

* **stable rank** sr(M) = ||M||_F^2 / ||M||_2^2 = sum_i sigma_i^2 / sigma_1^2, with 1 <= sr(M) <= rank(M)
  (GaLore Lemma 3.3, paper-claims §5.1).
* **effective rank** (Roy & Vetterli 2007) erank(M) = exp(H(p)), p_i = sigma_i / sum_j sigma_j,
  H(p) = -sum_i p_i log p_i (0 log 0 = 0); 1 <= erank(M) <= rank(M).
* **numerical rank**: the number of sigma_i > rtol * sigma_1 with the NumPy / LAPACK default
  rtol = max(m, n) * eps(dtype of the input) (float32 input carries float32 precision).
* **condition number of M**: kappa(M) = sigma_1 / sigma_min, sigma_min the smallest singular value above the rank
  tolerance (the "nonzero" ones), so a rank-deficient M has a finite kappa of its range.
* **condition number of M M^T** (SUMO Lemma 3.2, paper-claims §1.4: "kappa = sigma_1/sigma_m the condition number of
  A A^T"): the nonzero eigenvalues of M M^T are sigma_i^2, hence kappa(M M^T) = kappa(M)^2 exactly.
  ``gram_condition_number`` evaluates it from the singular values of M (accurate); forming M M^T explicitly
  squares the rounding error.
* **SUMO's kappa_M** (Lemma 3.1, eq. (1), paper-claims §1.3, reconstructed [R]): the relative error of the best
  rank-one approximation, kappa_M = ||M - P_1 M||_F^2 / ||M||_F^2 = 1 - sigma_1^2/||M||_F^2 = 1 - 1/sr(M).
  It is *not* a singular-value ratio. Variants (all decay at the same exponential rate): unsquared
  sqrt(1 - 1/sr) and the spectral normalisation (||M||_F^2 - sigma_1^2)/sigma_1^2 = sr - 1.
* **principal angles** between span(A) and span(B) (Björck & Golub 1973): theta_1 <= ... <= theta_q in [0, pi/2],
  cos theta_i the singular values of Q_A^T Q_B; computed as atan2(sin, cos) with the sines from
  (I - Q_A Q_A^T) Q_B so that small angles keep full relative accuracy (Knyazev & Argentati 2002).
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "as_numpy", "singular_values", "rank_tolerance", "numerical_rank", "stable_rank", "effective_rank",
    "condition_number", "gram_condition_number", "sumo_kappa", "principal_angles", "subspace_overlap",
    "projection_distance",
]


def _input_eps(M) -> float:
    """Machine epsilon of the input's dtype (float64 for integer / unknown dtypes)."""
    try:
        import torch
        if isinstance(M, torch.Tensor):
            return torch.finfo(M.dtype).eps if M.dtype.is_floating_point else float(np.finfo(np.float64).eps)
    except ImportError:  # pragma: no cover
        pass
    dt = np.asarray(M).dtype
    return float(np.finfo(dt).eps) if np.issubdtype(dt, np.floating) else float(np.finfo(np.float64).eps)


def as_numpy(M) -> np.ndarray:
    """``M`` (torch tensor, array or nested list) as a float64 NumPy array (a copy for tensors)."""
    try:
        import torch
        if isinstance(M, torch.Tensor):
            return M.detach().to("cpu", dtype=torch.float64).numpy()
    except ImportError:  # pragma: no cover
        pass
    return np.asarray(M, dtype=np.float64)


def _matrix(M) -> np.ndarray:
    A = as_numpy(M)
    if A.ndim < 2:
        raise ValueError(f"expected a matrix (ndim >= 2), got shape {A.shape}")
    return A


def singular_values(M) -> np.ndarray:
    """Singular values of M in descending order, float64; batched over leading dims (shape (..., min(m, n)))."""
    return np.linalg.svd(_matrix(M), compute_uv=False)


def rank_tolerance(M, rtol: float | None = None) -> np.ndarray:
    """Absolute threshold below which a singular value counts as zero: ``rtol * sigma_1``.

    Default rtol = max(m, n) * eps(input dtype) (the ``numpy.linalg.matrix_rank`` convention).
    """
    A = _matrix(M)
    s = np.linalg.svd(A, compute_uv=False)
    if rtol is None:
        rtol = max(A.shape[-2:]) * _input_eps(M)
    return rtol * s[..., 0]


def _nonzero_mask(s: np.ndarray, shape, rtol: float | None, eps: float) -> np.ndarray:
    if rtol is None:
        rtol = max(shape[-2:]) * eps
    return s > rtol * s[..., :1]


def numerical_rank(M, rtol: float | None = None) -> np.ndarray | int:
    """Number of singular values above ``rtol * sigma_1`` (see ``rank_tolerance``); batched."""
    A = _matrix(M)
    s = np.linalg.svd(A, compute_uv=False)
    r = _nonzero_mask(s, A.shape, rtol, _input_eps(M)).sum(-1)
    return int(r) if np.ndim(r) == 0 else r


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def stable_rank(M) -> float | np.ndarray:
    """sr(M) = ||M||_F^2 / ||M||_2^2 (GaLore Lemma 3.3). In [1, rank(M)]; ``nan`` for a zero matrix; batched."""
    s = singular_values(M)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s[..., 0] > 0, (s ** 2).sum(-1) / np.where(s[..., 0] > 0, s[..., 0] ** 2, 1.0), np.nan)
    return _scalar(out)


def effective_rank(M) -> float | np.ndarray:
    """Roy & Vetterli (2007) effective rank exp(-sum p_i log p_i), p = sigma / sum(sigma). In [1, rank(M)]."""
    s = singular_values(M)
    total = s.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(total > 0, s / np.where(total > 0, total, 1.0), 0.0)
        plogp = np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    out = np.where(total[..., 0] > 0, np.exp(-plogp.sum(-1)), np.nan)
    return _scalar(out)


def condition_number(M, rtol: float | None = None) -> float | np.ndarray:
    """kappa(M) = sigma_1 / sigma_min over the singular values above ``rtol * sigma_1`` (default
    max(m, n) * eps(input dtype)). ``nan`` for a zero matrix; batched."""
    A = _matrix(M)
    s = np.linalg.svd(A, compute_uv=False)
    keep = _nonzero_mask(s, A.shape, rtol, _input_eps(M))
    smin = np.where(keep, s, np.inf).min(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(s[..., 0] > 0, s[..., 0] / np.where(np.isfinite(smin), smin, 1.0), np.nan)
    return _scalar(out)


def gram_condition_number(M, rtol: float | None = None) -> float | np.ndarray:
    """kappa(M M^T) over its nonzero eigenvalues = kappa(M)^2 (SUMO Lemma 3.2's kappa), from M's singular values."""
    k = condition_number(M, rtol)
    return k ** 2


def sumo_kappa(M, *, squared: bool = True, normalize: str = "frobenius") -> float | np.ndarray:
    """SUMO Lemma 3.1's kappa_M: relative error of the best rank-one approximation (paper-claims §1.3, [R]).

    ``squared=True, normalize="frobenius"`` (default, most probable reading):
        kappa_M = ||M - P_1 M||_F^2 / ||M||_F^2 = 1 - sigma_1^2 / ||M||_F^2 = 1 - 1/sr(M), in [0, 1).
    ``squared=False``: the square root of that (unsquared Frobenius ratio).
    ``normalize="spectral"``: ||M - P_1 M||_F^2 / sigma_1^2 = sr(M) - 1 (square root of it if not squared).
    ``nan`` for a zero matrix; batched.
    """
    if normalize not in ("frobenius", "spectral"):
        raise ValueError(f"normalize must be 'frobenius' or 'spectral', got {normalize!r}")
    s = singular_values(M)
    fro2 = (s ** 2).sum(-1)
    resid = (s[..., 1:] ** 2).sum(-1)  # ||M - P_1 M||_F^2, exact from the tail (no cancellation)
    denom = fro2 if normalize == "frobenius" else s[..., 0] ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(denom > 0, resid / np.where(denom > 0, denom, 1.0), np.nan)
    if not squared:
        out = np.sqrt(out)
    return _scalar(out)


def _orth_basis(A: np.ndarray, rtol: float | None) -> np.ndarray:
    """Orthonormal basis of range(A) by SVD, dropping directions below the rank tolerance."""
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return U[:, :0]
    tol = (rtol if rtol is not None else max(A.shape) * np.finfo(np.float64).eps) * s[0]
    return U[:, s > tol]


def principal_angles(A, B, *, rtol: float | None = None) -> np.ndarray:
    """Principal angles (radians, ascending) between span(A) and span(B), A in R^{k x p}, B in R^{k x q}.

    Columns need not be orthonormal; each span is taken at its numerical rank. Returns min(rank A, rank B)
    angles: theta_i = atan2(sin_i, cos_i) with cos_i the singular values of Q_A^T Q_B (descending) and sin_i
    those of (I - Q_A Q_A^T) Q_B (ascending) when rank B <= rank A (roles swapped otherwise).
    """
    QA, QB = _orth_basis(_matrix(A), rtol), _orth_basis(_matrix(B), rtol)
    if QA.shape[0] != QB.shape[0]:
        raise ValueError(f"A and B must have the same number of rows, got {QA.shape[0]} and {QB.shape[0]}")
    if QB.shape[1] > QA.shape[1]:
        QA, QB = QB, QA
    q = QB.shape[1]
    if q == 0:
        return np.zeros(0)
    cos = np.clip(np.linalg.svd(QA.T @ QB, compute_uv=False)[:q], 0.0, 1.0)
    sin = np.clip(np.sort(np.linalg.svd(QB - QA @ (QA.T @ QB), compute_uv=False))[:q], 0.0, 1.0)
    return np.arctan2(sin, cos)


def subspace_overlap(A, B, *, rtol: float | None = None) -> float:
    """Mean squared cosine of the principal angles = ||Q_A^T Q_B||_F^2 / min(p, q), in [0, 1] (1: nested spans)."""
    th = principal_angles(A, B, rtol=rtol)
    return float(np.mean(np.cos(th) ** 2)) if th.size else math.nan


def projection_distance(A, B, *, rtol: float | None = None) -> float:
    """||P_A - P_B||_2 between the orthogonal projectors onto span(A) and span(B).

    Equal dimensions: sin(theta_max); different dimensions: 1 (a unit vector of the larger span is orthogonal to
    the smaller one).
    """
    QA, QB = _orth_basis(_matrix(A), rtol), _orth_basis(_matrix(B), rtol)
    if QA.shape[1] != QB.shape[1]:
        return 1.0
    th = principal_angles(QA, QB)
    return float(np.sin(th.max())) if th.size else 0.0
