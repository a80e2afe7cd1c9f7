"""Matrices with prescribed singular values, and the spectrum shapes the experiments sweep.

``matrix_with_spectrum(s, m, n, generator)`` returns M = U diag(s) V^T with U in St(m, k), V in St(n, k) drawn
Haar-uniformly (``subspace.stiefel``), k = len(s) <= min(m, n). Its singular values are s sorted in decreasing order
padded with min(m, n) - k zeros, and its polar factor (SUMO §3 "Orthogonalization_SVD", Muon's target) is exactly
U_+ V_+^T over the positive entries of s (the unique polar factor when all min(m, n) singular values are positive).

Condition numbers here are of the singular values, kappa = s_1 / s_k. (SUMO Lemma 3.2 uses the condition number of
A A^T, which is kappa^2.)
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch

from subspace import stiefel

from ._checks import as_generator, check_dtype, check_int, check_real

__all__ = ["SpectralMatrix", "sample_spectral_matrix", "matrix_with_spectrum", "geometric_spectrum",
           "power_law_spectrum", "clustered_spectrum", "rank_deficient_spectrum", "with_condition_number",
           "CONDITION_KINDS"]


class SpectralMatrix(NamedTuple):
    """M = U diag(S) V^T with its factors: U (m x k), S (k,), V (n x k); ``polar`` = U_+ V_+^T."""
    matrix: torch.Tensor
    U: torch.Tensor
    S: torch.Tensor
    V: torch.Tensor

    @property
    def polar(self) -> torch.Tensor:
        """Exact polar factor U_+ V_+^T (columns with S = 0 dropped: the partial isometry onto range(M))."""
        keep = (self.S > 0).to(self.U.dtype)
        return (self.U * keep) @ self.V.mT

    @property
    def singular_values(self) -> torch.Tensor:
        """All min(m, n) singular values in decreasing order (S sorted, zero padded)."""
        m, n = self.matrix.shape
        full = torch.zeros(min(m, n), dtype=self.S.dtype)
        full[: self.S.numel()] = torch.sort(self.S, descending=True).values
        return full


def _as_spectrum(singular_values, dtype: torch.dtype) -> torch.Tensor:
    s = torch.as_tensor(singular_values, dtype=torch.float64).flatten().clone()
    if s.numel() == 0:
        raise ValueError("singular_values must be non-empty")
    if not torch.isfinite(s).all() or (s < 0).any():
        raise ValueError("singular_values must be finite and >= 0")
    return s.to(dtype)


def sample_spectral_matrix(singular_values: Sequence[float] | torch.Tensor, m: int, n: int,
                           generator: torch.Generator | int, *, dtype: torch.dtype = torch.float64
                           ) -> SpectralMatrix:
    """Draw U ~ Haar(St(m, k)) then V ~ Haar(St(n, k)) from ``generator`` and return U diag(s) V^T with factors."""
    m = check_int(m, "m")
    n = check_int(n, "n")
    dtype = check_dtype(dtype)
    s = _as_spectrum(singular_values, dtype)
    k = s.numel()
    if k > min(m, n):
        raise ValueError(f"singular_values has {k} entries, more than min(m, n) = {min(m, n)}")
    gen = as_generator(generator)
    U = stiefel(m, k, gen, dtype=torch.float64).to(dtype)
    V = stiefel(n, k, gen, dtype=torch.float64).to(dtype)
    return SpectralMatrix((U * s) @ V.mT, U, s, V)


def matrix_with_spectrum(singular_values: Sequence[float] | torch.Tensor, m: int, n: int,
                         generator: torch.Generator | int, *, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """An m x n matrix with exactly the given singular values (plus zeros) and Haar-random singular vectors."""
    return sample_spectral_matrix(singular_values, m, n, generator, dtype=dtype).matrix


# ------------------------------------------------------------------------------------------- spectrum makers
def geometric_spectrum(k: int, ratio: float, top: float = 1.0) -> torch.Tensor:
    """s_i = top * ratio^i, i = 0..k-1 (0 < ratio <= 1): condition number ratio^{-(k-1)}."""
    k = check_int(k, "k")
    ratio = check_real(ratio, "ratio", minimum=0.0, maximum=1.0, strict_min=True)
    top = check_real(top, "top", minimum=0.0, strict_min=True)
    return top * ratio ** torch.arange(k, dtype=torch.float64)


def power_law_spectrum(k: int, alpha: float, top: float = 1.0) -> torch.Tensor:
    """s_i = top * i^{-alpha}, i = 1..k (alpha >= 0): condition number k^alpha."""
    k = check_int(k, "k")
    alpha = check_real(alpha, "alpha", minimum=0.0)
    top = check_real(top, "top", minimum=0.0, strict_min=True)
    return top * torch.arange(1, k + 1, dtype=torch.float64).pow(-alpha)


def clustered_spectrum(sizes: Sequence[int], values: Sequence[float], spread: float = 0.0,
                       generator: torch.Generator | int | None = None) -> torch.Tensor:
    """Clusters: sizes[j] values near values[j], each multiplied by 1 + spread * u, u ~ U(-1, 1) (sorted, desc).

    ``spread`` in [0, 1); a positive spread needs a ``generator``. spread = 0 gives exact repeated values.
    """
    sizes = list(sizes)
    values = list(values)
    if len(sizes) == 0 or len(sizes) != len(values):
        raise ValueError(f"sizes and values must be non-empty and of equal length, got {len(sizes)} and {len(values)}")
    for j, sz in enumerate(sizes):
        check_int(sz, f"sizes[{j}]")
    for j, v in enumerate(values):
        check_real(v, f"values[{j}]", minimum=0.0, strict_min=True)
    spread = check_real(spread, "spread", minimum=0.0, maximum=1.0, strict_max=True)
    s = torch.cat([torch.full((sz,), float(v), dtype=torch.float64) for sz, v in zip(sizes, values)])
    if spread > 0:
        if generator is None:
            raise ValueError("generator is required when spread > 0")
        u = torch.rand(s.numel(), generator=as_generator(generator), dtype=torch.float64) * 2 - 1
        s = s * (1 + spread * u)
    return torch.sort(s, descending=True).values


def rank_deficient_spectrum(k: int, rank: int, kappa: float = 10.0, top: float = 1.0) -> torch.Tensor:
    """``rank`` geometric values from top down to top/kappa, then k - rank exact zeros."""
    k = check_int(k, "k")
    rank = check_int(rank, "rank", minimum=0, maximum=k)
    s = torch.zeros(k, dtype=torch.float64)
    if rank > 0:
        s[:rank] = with_condition_number(kappa, rank, kind="geometric", top=top)
    return s


CONDITION_KINDS = ("geometric", "linear", "power", "two-cluster", "one-large", "one-small")


def with_condition_number(kappa: float, k: int, kind: str = "geometric", top: float = 1.0) -> torch.Tensor:
    """k decreasing singular values with s_1 = top and s_k = top / kappa (so s_1 / s_k = kappa).

    kinds: ``geometric`` (top kappa^{-i/(k-1)}), ``linear`` (evenly spaced), ``power`` (top i^{-alpha},
    alpha = log kappa / log k), ``two-cluster`` (ceil(k/2) at top, the rest at top/kappa), ``one-large``
    (s_1 = top, the rest top/kappa), ``one-small`` (all top but s_k = top/kappa).
    """
    kappa = check_real(kappa, "kappa", minimum=1.0)
    k = check_int(k, "k")
    top = check_real(top, "top", minimum=0.0, strict_min=True)
    if kind not in CONDITION_KINDS:
        raise ValueError(f"kind must be one of {CONDITION_KINDS}, got {kind!r}")
    if k == 1:
        if kappa != 1.0:
            raise ValueError(f"kappa must be 1 when k = 1, got {kappa!r}")
        return torch.tensor([top], dtype=torch.float64)
    bottom = top / kappa
    i = torch.arange(k, dtype=torch.float64)
    if kind == "geometric":
        s = top * kappa ** (-i / (k - 1))
    elif kind == "linear":
        s = top + (bottom - top) * i / (k - 1)
    elif kind == "power":
        s = top * (i + 1).pow(-math.log(kappa) / math.log(k))
    else:  # piecewise constant: the first n_top values at top, the rest at bottom (float64 throughout)
        n_top = {"two-cluster": math.ceil(k / 2), "one-large": 1, "one-small": k - 1}[kind]
        s = torch.full((k,), bottom, dtype=torch.float64)
        s[:n_top] = top
    s[0], s[-1] = top, bottom  # exact end points
    return s
