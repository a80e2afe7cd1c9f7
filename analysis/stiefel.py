"""Monte Carlo checks of GoLore's Stiefel identities (paper-claims §2.5).

For P uniform (Haar) on St(m, r) = {P in R^{m x r}: P^T P = I_r} and a fixed G in R^{m x n}:

    E[P P^T] = (r/m) I_m,        E ||P P^T G - G||_F^2 = (1 - r/m) ||G||_F^2.

Samples come from an explicit ``torch.Generator`` in batches: ``sampler="qr"`` is QR of a Gaussian with the signs
of diag(R) folded into Q (Mezzadri 2007; the law of ``subspace.stiefel``), ``sampler="polar"`` is
Z (Z^T Z)^{-1/2} (GoLore's ``get_random_orthogonal_matrix``), evaluated as U V^T from the SVD of Z; both are
exactly Haar.

Confidence intervals are normal (CLT) intervals mean +- z * s/sqrt(N), z = Phi^{-1}(1 - (1 - level)/2), with s the
sample standard deviation. For the matrix identity the max-entry deviation max_ij |mean_ij - (r/m) delta_ij| is
reported with a Bonferroni-corrected simultaneous interval: each of the m(m+1)/2 distinct entries gets level
1 - (1 - level)/(m(m+1)/2), so all intervals hold together with probability >= level (asymptotically).
Every half-width also carries a round-off allowance of 1000 * eps(float64) * scale (scale 1 for P P^T,
||G||_F^2 for the residual): when r = m the samples are exactly I and 0 up to rounding, with zero variance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import norm as _normal

from .spectra import as_numpy

__all__ = ["sample_stiefel", "MonteCarloEstimate", "ProjectorMeanEstimate", "mc_projector_mean",
           "mc_projection_residual", "z_value"]


def z_value(level: float) -> float:
    """Two-sided standard normal quantile Phi^{-1}(1 - (1 - level)/2)."""
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie in (0, 1)")
    return float(_normal.ppf(1.0 - (1.0 - level) / 2.0))


def sample_stiefel(m: int, r: int, n: int, generator: torch.Generator, *, sampler: str = "qr",
                   dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``n`` independent Haar samples from St(m, r), shape (n, m, r), drawn from ``generator`` (CPU)."""
    if not 1 <= r <= m:
        raise ValueError(f"need 1 <= r <= m, got m={m}, r={r}")
    Z = torch.randn(n, m, r, generator=generator, dtype=dtype)
    if sampler == "qr":
        Q, R = torch.linalg.qr(Z)
        signs = torch.sign(torch.diagonal(R, dim1=-2, dim2=-1))
        signs[signs == 0] = 1.0
        return Q * signs.unsqueeze(-2)
    if sampler == "polar":
        U, _, Vh = torch.linalg.svd(Z, full_matrices=False)  # Z (Z^T Z)^{-1/2} = U V^T, stably
        return U @ Vh
    raise ValueError(f"sampler must be 'qr' or 'polar', got {sampler!r}")


@dataclass(frozen=True)
class MonteCarloEstimate:
    """A scalar Monte Carlo mean with its normal CI and the predicted value."""
    mean: float
    stderr: float
    ci_low: float
    ci_high: float
    level: float
    n: int
    target: float

    @property
    def contains_target(self) -> bool:
        return self.ci_low <= self.target <= self.ci_high


@dataclass(frozen=True)
class ProjectorMeanEstimate:
    """Estimate of E[P P^T]: the mean matrix, entrywise standard errors, the max-entry deviation from (r/m) I
    and the Bonferroni simultaneous half-widths (``within_ci``: every entry's deviation is inside its interval)."""
    mean: np.ndarray
    stderr: np.ndarray
    max_deviation: float
    halfwidth: np.ndarray
    level: float
    n: int
    target: np.ndarray

    @property
    def within_ci(self) -> bool:
        return bool(np.all(np.abs(self.mean - self.target) <= self.halfwidth))


def _batches(n: int, batch: int):
    done = 0
    while done < n:
        b = min(batch, n - done)
        yield b
        done += b


def mc_projector_mean(m: int, r: int, n_samples: int, generator: torch.Generator, *, level: float = 0.95,
                      batch: int = 4096, sampler: str = "qr") -> ProjectorMeanEstimate:
    """Estimate E[P P^T] from ``n_samples`` Haar draws (sums and sums of squares accumulated in float64)."""
    s1 = torch.zeros(m, m, dtype=torch.float64)
    s2 = torch.zeros(m, m, dtype=torch.float64)
    for b in _batches(n_samples, batch):
        P = sample_stiefel(m, r, b, generator, sampler=sampler)
        PP = P @ P.mT
        s1 += PP.sum(0)
        s2 += (PP * PP).sum(0)
    N = n_samples
    mean = (s1 / N).numpy()
    var = np.maximum((s2.numpy() - N * mean ** 2) / max(N - 1, 1), 0.0)
    se = np.sqrt(var / N)
    n_entries = m * (m + 1) // 2
    z = z_value(1.0 - (1.0 - level) / n_entries)
    target = (r / m) * np.eye(m)
    roundoff = 1e3 * np.finfo(np.float64).eps
    return ProjectorMeanEstimate(mean=mean, stderr=se, max_deviation=float(np.abs(mean - target).max()),
                                 halfwidth=z * se + roundoff, level=level, n=N, target=target)


def mc_projection_residual(G, r: int, n_samples: int, generator: torch.Generator, *, level: float = 0.95,
                           batch: int = 4096, sampler: str = "qr") -> MonteCarloEstimate:
    """Estimate E ||P P^T G - G||_F^2 (computed directly, not via the identity) with a normal CI; the target is
    (1 - r/m) ||G||_F^2."""
    Gt = torch.as_tensor(as_numpy(G))
    m = Gt.shape[0]
    vals = []
    for b in _batches(n_samples, batch):
        P = sample_stiefel(m, r, b, generator, sampler=sampler)
        R = P @ (P.mT @ Gt) - Gt
        vals.append((R * R).sum(dim=(-2, -1)))
    v = torch.cat(vals).numpy()
    N = v.size
    mean = float(v.mean())
    se = float(v.std(ddof=1) / np.sqrt(N)) if N > 1 else float("inf")
    fro2 = float((Gt ** 2).sum())
    half = z_value(level) * se + 1e3 * np.finfo(np.float64).eps * fro2
    return MonteCarloEstimate(mean=mean, stderr=se, ci_low=mean - half, ci_high=mean + half, level=level,
                              n=N, target=(1.0 - r / m) * fro2)
