"""Newton–Schulz orthogonalisation error: matrix measurements and the scalar map behind them.

Newton–Schulz (``subspace.newton_schulz``) starts from X_0 = M / ||M|| (Frobenius for Muon, spectral in SUMO
Lemma 3.2's proof) and applies X <- a X + b (X X^T) X [+ c (X X^T)^2 X] per step. With M = U diag(sigma) V^T each
singular value evolves independently through the odd scalar polynomial

    p_j(x) = a_j x + b_j x^3 (+ c_j x^5),      x_0,i = sigma_i / ||M||,      x_k,i = p_k(...p_1(x_0,i)),

so the output is U diag(p^k(x_0)) V^T and the error against the polar factor orth(M) = U V^T (SUMO §1.1,
E_i = orth(M) - NewtonSchulz_i(M)) is E = U diag(1 - p^k(x_0)) V^T restricted to the nonzero singular values:

    ||E||_2 = max_i |1 - p^k(x_0,i)|,     ||E||_F = sqrt(sum_i (1 - p^k(x_0,i))^2).

SUMO Lemma 3.3, assumption (A4) (paper-claims §1.5): ||E|| <= delta ||U V^T|| = delta sqrt(n) for a full-rank
moment with n = min(m, n) singular values, i.e. delta = ||E||_F / ||U V^T||_F; Remark 3.6 needs delta < 1/(4 sqrt n).

Muon's quintic (a, b, c) = (3.4445, -4.7750, 2.0315) (paper-claims §0) does not converge to 1: it maps the
normalised inputs into a *band* [min p^5, max p^5]; ``iterated_band`` computes it exactly on an interval.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from scipy.optimize import brentq

from subspace import newton_schulz, polar
from subspace.orthogonalize import resolve_schedule

from .spectra import as_numpy

__all__ = [
    "iterate_polynomial", "iterate_polynomial_with_derivative", "polynomial_critical_points", "Band",
    "iterated_band", "NSError", "ns_error", "ns_singular_values", "ns_delta", "normalized_singular_values",
]


def _schedule(coeffs, steps: int) -> list[tuple[float, ...]]:
    return resolve_schedule(coeffs, steps)


def _p(c: Sequence[float], x: np.ndarray) -> np.ndarray:
    x2 = x * x
    if len(c) == 2:
        return x * (c[0] + c[1] * x2)
    return x * (c[0] + x2 * (c[1] + c[2] * x2))


def _dp(c: Sequence[float], x: np.ndarray) -> np.ndarray:
    x2 = x * x
    if len(c) == 2:
        return c[0] + 3 * c[1] * x2
    return c[0] + x2 * (3 * c[1] + 5 * c[2] * x2)


def iterate_polynomial(x, coeffs="muon", steps: int = 5, *, return_all: bool = False) -> np.ndarray:
    """p_k(...p_1(x)) elementwise for the per-step schedule ``coeffs`` (any spec ``subspace.newton_schulz``
    accepts). ``return_all`` returns the whole orbit, shape (steps + 1, *x.shape)."""
    x = np.asarray(x, dtype=np.float64)
    orbit = [x]
    for c in _schedule(coeffs, steps):
        x = _p(c, x)
        orbit.append(x)
    return np.stack(orbit) if return_all else x


def iterate_polynomial_with_derivative(x, coeffs="muon", steps: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(p^k(x), (p^k)'(x)) by the chain rule (p^k)'(x) = prod_j p_j'(x_{j-1}); vectorised."""
    x = np.asarray(x, dtype=np.float64)
    d = np.ones_like(x)
    for c in _schedule(coeffs, steps):
        d = d * _dp(c, x)
        x = _p(c, x)
    return x, d


def polynomial_critical_points(c: Sequence[float]) -> np.ndarray:
    """Positive real roots of p'(x) = a + 3b x^2 (+ 5c x^4) for one step's coefficients, ascending."""
    if len(c) == 2:
        roots_y = np.roots([3 * c[1], c[0]]) if c[1] != 0 else np.array([])
    else:
        roots_y = np.roots([5 * c[2], 3 * c[1], c[0]])
    ys = [float(np.real(y)) for y in np.atleast_1d(roots_y) if abs(np.imag(y)) < 1e-12 and np.real(y) > 0]
    return np.sort(np.sqrt(ys))


@dataclass(frozen=True)
class Band:
    """Exact range [lo, hi] of p^k over an input interval [x_min, x_max], attained at argmin / argmax."""
    lo: float
    hi: float
    argmin: float
    argmax: float
    x_min: float
    x_max: float

    def contains(self, values, tol: float = 0.0) -> bool:
        v = np.asarray(values, dtype=np.float64)
        return bool(np.all(v >= self.lo - tol) and np.all(v <= self.hi + tol))


def iterated_band(x_min: float, x_max: float = 1.0, coeffs="muon", steps: int = 5, *,
                  grid: int = 20001) -> Band:
    """min and max of p^k on [x_min, x_max] (0 <= x_min <= x_max): dense grid plus critical points.

    The extrema of a smooth function on an interval are at the endpoints or at critical points. The grid
    (``grid`` points, geometric on [x_min, x_max] when x_min > 0 merged with a uniform one, so small inputs are
    resolved) brackets every sign change of (p^k)' = prod_j p_j'(x_{j-1}); each is refined by Brent's method to
    machine precision and p^k is evaluated there and at the endpoints. Two critical points inside one grid cell
    could be missed; ``grid`` controls that resolution.
    """
    if not (0 <= x_min <= x_max):
        raise ValueError(f"need 0 <= x_min <= x_max, got {x_min}, {x_max}")
    xs = np.linspace(x_min, x_max, grid)
    if x_min > 0 and x_max > x_min:
        xs = np.union1d(xs, np.geomspace(x_min, x_max, grid))
    ys, ds = iterate_polynomial_with_derivative(xs, coeffs, steps)
    cand_x = [x_min, x_max]
    sign_change = np.nonzero(np.sign(ds[:-1]) * np.sign(ds[1:]) < 0)[0]

    def dfun(t: float) -> float:
        return float(iterate_polynomial_with_derivative(np.array(t), coeffs, steps)[1])

    for i in sign_change:
        cand_x.append(brentq(dfun, xs[i], xs[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps))
    cand_x.extend(xs[ds == 0].tolist())
    cx = np.asarray(cand_x)
    cy = iterate_polynomial(cx, coeffs, steps)
    allx, ally = np.concatenate([cx, xs]), np.concatenate([cy, ys])
    i_lo, i_hi = int(np.argmin(ally)), int(np.argmax(ally))
    return Band(float(ally[i_lo]), float(ally[i_hi]), float(allx[i_lo]), float(allx[i_hi]), float(x_min), float(x_max))


@dataclass(frozen=True)
class NSError:
    """Newton–Schulz error E = polar(M) - NS_k(M) of one matrix.

    spectral, frobenius: ||E||_2, ||E||_F; delta_spectral = ||E||_2 / ||U V^T||_2 = ||E||_2 (if M != 0);
    delta_frobenius = ||E||_F / ||U V^T||_F = ||E||_F / sqrt(rank) (SUMO (A4)'s delta); rank: rank of M at
    ``subspace.polar``'s tolerance; singular_values: of the NS output (descending); inputs: the normalised
    input singular values x_0 = sigma / (||M|| + eps) that the scalar map acts on (descending).
    """
    spectral: float
    frobenius: float
    delta_spectral: float
    delta_frobenius: float
    rank: int
    singular_values: np.ndarray
    inputs: np.ndarray


def _to_torch64(M) -> torch.Tensor:
    if isinstance(M, torch.Tensor):
        return M.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(M, dtype=np.float64))


def normalized_singular_values(M, *, normalize: str = "frobenius", eps: float = 1e-7) -> np.ndarray:
    """x_0 = sigma_i(M) / (||M|| + eps), the scalar inputs of Newton–Schulz (descending, float64)."""
    A = as_numpy(M)
    s = np.linalg.svd(A, compute_uv=False)
    norm = np.sqrt((s ** 2).sum()) if normalize == "frobenius" else (s[0] if s.size else 0.0)
    return s / (norm + eps)


def ns_error(M, steps: int = 5, coeffs="muon", *, normalize: str = "frobenius", eps: float = 1e-7,
             dtype: torch.dtype | None = None) -> NSError:
    """Measure E = polar(M) - newton_schulz(M, steps, coeffs) for a 2-D M.

    M is taken in float64; ``dtype`` is NS's working precision (default float64; ``torch.bfloat16`` reproduces
    Muon's published code). The reference polar factor is ``subspace.polar`` in float64. Both norms of E are
    computed by a float64 SVD.
    """
    A = _to_torch64(M)
    if A.ndim != 2:
        raise ValueError(f"ns_error expects a 2-D matrix, got shape {tuple(A.shape)}")
    O = newton_schulz(A, steps=steps, coeffs=coeffs, normalize=normalize, eps=eps, dtype=dtype).to(torch.float64)
    P = polar(A)
    E = (P - O).numpy()
    sE = np.linalg.svd(E, compute_uv=False)
    spec = float(sE[0]) if sE.size else 0.0
    fro = float(np.sqrt((sE ** 2).sum()))
    rank = int(round(float((P.numpy() ** 2).sum())))  # ||U V^T||_F^2 = rank
    sO = np.linalg.svd(O.numpy(), compute_uv=False)
    return NSError(spectral=spec, frobenius=fro,
                   delta_spectral=spec if rank > 0 else float("nan"),
                   delta_frobenius=fro / np.sqrt(rank) if rank > 0 else float("nan"),
                   rank=rank, singular_values=sO,
                   inputs=normalized_singular_values(A, normalize=normalize, eps=eps))


def ns_singular_values(M, steps: int = 5, coeffs="muon", *, normalize: str = "frobenius", eps: float = 1e-7,
                       dtype: torch.dtype | None = None) -> np.ndarray:
    """Singular values of newton_schulz(M, ...) (descending): where NS actually puts the spectrum (the band)."""
    A = _to_torch64(M)
    O = newton_schulz(A, steps=steps, coeffs=coeffs, normalize=normalize, eps=eps, dtype=dtype)
    return np.linalg.svd(O.to(torch.float64).numpy(), compute_uv=False)


def ns_delta(M, steps: int = 5, coeffs="muon", *, ord: str = "fro", normalize: str = "frobenius",
             eps: float = 1e-7, dtype: torch.dtype | None = None) -> float:
    """delta = ||E|| / ||U V^T|| (SUMO Lemma 3.3 (A4)); ``ord="fro"`` (default, the sqrt(n) form) or ``"2"``."""
    r = ns_error(M, steps, coeffs, normalize=normalize, eps=eps, dtype=dtype)
    if ord in ("fro", "frobenius"):
        return r.delta_frobenius
    if ord in ("2", 2, "spectral"):
        return r.delta_spectral
    raise ValueError(f"ord must be 'fro' or '2', got {ord!r}")
