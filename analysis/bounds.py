"""Closed-form bounds and identities of the papers, as plain functions (predicted values for the claims).

Each function states its source (paper-claims.md section) and its preconditions. "[R]" marks a formula
reconstructed from a proof because the displayed statement was lost; "[I]" an inference.

SUMO Lemma 3.2 (paper-claims §1.4, [R])
    ||E_i||_2 <= (1 - 1/kappa)^(2^i),    ||E_i||_F <= sqrt(r) (1 - 1/kappa)^(2^i),
    kappa = sigma_1/sigma_m "the condition number of A A^T". The statement is ambiguous about which matrix's
    condition number enters: the lemma says A A^T while Newton–Schulz iterates on A (whose singular values are the
    square roots), and the proof starts from X_0 = B/||B||_2 with ||X_0 - O||_2 = 1 - sigma_m/sigma_1, i.e. it
    treats kappa as the condition number of the matrix being iterated on. ``ns_worst_singular_value`` exposes the
    two readings (``kappa_of="input"``: smallest normalised singular value 1/kappa; ``"gram"``: 1/sqrt(kappa)).

    Under the lemma's literal reading (kappa = kappa(A A^T), NS on A, spectral normalisation, classical cubic
    iteration) the bound is TRUE: with s = sigma/sigma_1 and d = 1 - s^2 one has
        1 - p(s)^2 - (1 - s^2)^2 = -u (1 - u)^2 / 4 <= 0   (u = s^2),
    i.e. d_{k+1} <= d_k^2, so 1 - s_k <= 1 - s_k^2 = d_k <= d_0^(2^k) = (1 - 1/kappa(A A^T))^(2^k) for the worst
    s_0 = 1/sqrt(kappa(A A^T)). Under the proof's reading (kappa of the iterated matrix, s_0 = 1/kappa) it fails
    (kappa = 10, i = 5: 0.341 vs 0.0343). With Frobenius normalisation (Muon) it fails even at kappa = 1, and
    for Muon's quintic the error does not go to zero at all.

Cubic Newton–Schulz worst-case error (exact, [I] elementary)
    With spectral normalisation the singular values follow s <- (3 s - s^3)/2, which is increasing on [0, 1] and
    maps [0, 1] into itself, so the worst singular value is the smallest, s_0 = sigma_min/sigma_1. With e = 1 - s:
        e_{k+1} = e_k^2 (3 - e_k) / 2      (derived symbolically in ``analysis.symbolic``),
    so ||E_k||_2 = e_k(e_0) exactly and ||E_k||_F <= sqrt(r) e_k(e_0). Since e (3 - e)/2 <= 3/2 the error obeys
    e_k <= (3/2 e_0)^(2^k) / (3/2) (quadratic with constant 3/2, not 1), hence the literal bound e_0^(2^k) can fail.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "sumo_lemma32_bound", "ns_worst_singular_value", "cubic_ns_error", "cubic_ns_error_bound",
    "cubic_ns_quadratic_bound", "galore_lemma33_bound", "galore_lemma33_rate", "galore_lemma33_applies",
    "galore_lemma33_trajectory", "GaLoreLemma33Check", "sumo_lemma31_constant", "Lemma31Constant", "sumo_lemma31_bound", "sumo_lemma31_trajectory", "sumo_delta_threshold",
    "sumo_remark36_holds", "sumo_lemma33_step_size", "stiefel_projector_mean", "stiefel_residual_expectation",
    "SUBSET_NORM_RATES", "subset_norm_exponents", "subset_norm_regime",
]


# ---------------------------------------------------------------------------------------------------------------
# SUMO Lemma 3.2 and the exact cubic Newton–Schulz error

def sumo_lemma32_bound(kappa, i, *, r: int = 1, norm: str = "spectral"):
    """SUMO Lemma 3.2 as reconstructed [R]: (1 - 1/kappa)^(2^i) (spectral) or sqrt(r) (1 - 1/kappa)^(2^i)
    (Frobenius). kappa >= 1; vectorised over kappa and i. Which condition number kappa is (of A A^T as stated, or
    of the matrix NS iterates on as in the proof) is the caller's choice; see ``ns_worst_singular_value``."""
    kappa = np.asarray(kappa, dtype=np.float64)
    i = np.asarray(i)
    if np.any(kappa < 1):
        raise ValueError("kappa must be >= 1")
    base = (1.0 - 1.0 / kappa) ** (2.0 ** i)
    if norm == "spectral":
        out = base
    elif norm in ("frobenius", "fro"):
        out = math.sqrt(r) * base
    else:
        raise ValueError(f"norm must be 'spectral' or 'frobenius', got {norm!r}")
    return float(out) if np.ndim(out) == 0 else out


def ns_worst_singular_value(kappa, *, kappa_of: str = "gram"):
    """Smallest spectrally normalised singular value s_0 = sigma_min(X)/sigma_1(X) of the matrix X Newton–Schulz
    iterates on, given a condition number kappa:

    * ``"gram"`` (the lemma's literal text): kappa = kappa(A A^T) and NS iterates on A, so s_0 = 1/sqrt(kappa).
    * ``"input"`` (the proof's X_0 = B/||B||_2 reading): kappa is the condition number of the iterated matrix,
      s_0 = 1/kappa. This is the reading of the counterexample in paper-claims §1.4.
    """
    kappa = np.asarray(kappa, dtype=np.float64)
    if kappa_of == "gram":
        out = 1.0 / np.sqrt(kappa)
    elif kappa_of == "input":
        out = 1.0 / kappa
    else:
        raise ValueError(f"kappa_of must be 'gram' or 'input', got {kappa_of!r}")
    return float(out) if np.ndim(out) == 0 else out


def cubic_ns_error(e0, k: int):
    """Exact error e_k of the classical cubic NS on a singular value with initial error e0 = 1 - s0 in [0, 1]:
    e_{j+1} = e_j^2 (3 - e_j) / 2 (vectorised over e0)."""
    e = np.asarray(e0, dtype=np.float64)
    if np.any((e < 0) | (e > 1)):
        raise ValueError("e0 must lie in [0, 1] (singular values normalised into [0, 1])")
    for _ in range(int(k)):
        e = e * e * (3.0 - e) / 2.0
    return float(e) if np.ndim(e) == 0 else e


def cubic_ns_error_bound(kappa, k: int, *, r: int = 1, norm: str = "spectral", kappa_of: str = "input"):
    """Exact worst-case ||E_k|| of cubic NS with spectral normalisation over all matrices of condition number
    kappa (a candidate corrected SUMO Lemma 3.2): e_k(1 - s_0) with s_0 from ``ns_worst_singular_value``;
    Frobenius: sqrt(r) e_k, an upper bound (sigma_1 maps to 1 exactly, so the supremum over rank-r matrices is
    sqrt(r - 1) e_k, attained when the other r - 1 singular values all equal sigma_min)."""
    e = cubic_ns_error(1.0 - ns_worst_singular_value(kappa, kappa_of=kappa_of), k)
    if norm == "spectral":
        return e
    if norm in ("frobenius", "fro"):
        return math.sqrt(r) * e if np.ndim(e) == 0 else math.sqrt(r) * np.asarray(e)
    raise ValueError(f"norm must be 'spectral' or 'frobenius', got {norm!r}")


def cubic_ns_quadratic_bound(e0, k: int):
    """Quadratic-convergence bound of cubic NS with its true constant: e_k <= min(e_0, (1.5 e_0)^(2^k) / 1.5).

    Proof: e_{j+1} = e_j^2 (3 - e_j)/2 <= 1.5 e_j^2, so u_j = 1.5 e_j satisfies u_{j+1} <= u_j^2; and
    e_{j+1} <= e_j since e(3 - e)/2 <= 1 on [0, 1]. Informative only for e_0 < 2/3.
    """
    e0 = np.asarray(e0, dtype=np.float64)
    with np.errstate(over="ignore"):  # (1.5 e0)^(2^k) = inf for e0 > 2/3 and large k: the min picks e0
        out = np.minimum(e0, (1.5 * e0) ** (2.0 ** int(k)) / 1.5)
    return float(out) if np.ndim(out) == 0 else out


# ---------------------------------------------------------------------------------------------------------------
# GaLore Lemma 3.3 (stable rank of the gradient decays)

def galore_lemma33_bound(sr_parallel: float, perp_over_par: float, eta: float, lam1: float, lam2: float,
                         steps):
    """GaLore Lemma 3.3 (paper-claims §5.1, [V]):

        sr(G_t) <= sr(G^par_{t0}) + ((1 - eta lam2)/(1 - eta lam1))^(2 (t - t0)) ||G_{t0} - G^par_{t0}||_F^2
                                                                              / ||G^par_{t0}||_2^2,

    with ``perp_over_par`` = ||G_{t0} - G^par_{t0}||_F^2 / ||G^par_{t0}||_2^2 and ``steps`` = t - t0 (vectorised).
    Preconditions: lam1 < lam2 the two smallest distinct eigenvalues of S = (1/N) sum_i C_i (x) B_i and
    0 < eta lam_max(S) < 1 (so every factor 1 - eta lam lies in (0, 1)).
    """
    if not (lam1 < lam2):
        raise ValueError("need lam1 < lam2")
    ratio = (1.0 - eta * lam2) / (1.0 - eta * lam1)
    out = sr_parallel + ratio ** (2.0 * np.asarray(steps, dtype=np.float64)) * perp_over_par
    return float(out) if np.ndim(out) == 0 else out


def galore_lemma33_rate(eta: float, lam1: float, lam2: float) -> float:
    """q = ((1 - eta lam2)/(1 - eta lam1))^2, the per-step factor of the Lemma 3.3 bound (paper-claims §5.1)."""
    if not (lam1 < lam2):
        raise ValueError("need lam1 < lam2")
    return ((1.0 - eta * lam2) / (1.0 - eta * lam1)) ** 2


def galore_lemma33_applies(eta: float, lam1: float, lam2: float, lam_max: float) -> bool:
    """The step-size preconditions of the Lemma 3.3 proof: 1 - eta lam1 != 0 and |1 - eta l| <= |1 - eta lam2| for
    every eigenvalue l >= lam2 of S (it suffices to check l = lam_max); implied by 0 < eta lam_max <= 1."""
    if not (lam1 < lam2):
        raise ValueError("need lam1 < lam2")
    return (1 - eta * lam1) != 0 and abs(1 - eta * lam_max) <= abs(1 - eta * lam2)


@dataclass(frozen=True)
class GaLoreLemma33Check:
    """Measured stable rank of G_t and the Lemma 3.3 bound for t - t0 = 0..steps (arrays of length steps + 1), with
    the spectrum of S and the structure of V1 and G^par the verdicts depend on."""
    stable_rank: np.ndarray
    bound: np.ndarray
    lam1: float
    lam2: float
    lam_max: float
    eta: float
    v1_dim: int
    rectangular: bool               # V1 = {P_J X P_K} (``ReversibleGradient.v1_is_rectangular``)
    parallel_rank: int              # numerical rank of G^par_t0
    par_fro_share: float            # ||G^par_t0||_F / ||G_t0||_F
    applies: bool                   # ``galore_lemma33_applies`` (step-size preconditions of the proof)
    max_relative_violation: float   # max_t (sr - bound)/bound, <= 0 when the bound holds


def galore_lemma33_trajectory(problem, G_t0, eta: float, steps: int) -> GaLoreLemma33Check:
    """Run GaLore Lemma 3.3's setting on a ``synthetic.ReversibleGradient`` and return measured sr(G_t) next to the
    bound.

    ``problem``: G(W) = (1/N) sum_i (A_i - B_i W C_i) (B_i, C_i PSD); ``G_t0`` the gradient at t0 (e.g.
    ``problem.gradient(W0)``, a tensor or array). G_t is propagated by the exact recursion
    G_t = G_{t-1} - eta S(G_{t-1}) (``problem.trajectory``), the consequence of SGD W_t = W_{t-1} + eta G_{t-1};
    G^par_t0 = ``problem.project_v1(G_t0)`` (V1 and its tie tolerance: ``synthetic.reversible.TIE_RTOL``).
    Raises ValueError when lam2 does not exist or G^par_t0 = 0 (the lemma does not apply).
    """
    import torch
    from synthetic.reversible import matrix_rank, stable_rank

    problem._need_gap()
    lam1, lam2, lam_max = float(problem.lambda1), float(problem.lambda2), float(problem.lambda_max)
    G0 = torch.as_tensor(G_t0, dtype=torch.float64)
    G_par = problem.project_v1(G0)
    par_spec2 = float(torch.linalg.matrix_norm(G_par, ord=2)) ** 2
    if par_spec2 == 0:
        raise ValueError("G_{t0} has no component in the lam1-eigenspace; the bound is undefined")
    perp = float((G0 - G_par).square().sum()) / par_spec2
    srs = np.asarray([stable_rank(G) for G in problem.trajectory(G0, eta, steps)])
    bound = np.asarray(galore_lemma33_bound(stable_rank(G_par), perp, eta, lam1, lam2, np.arange(steps + 1)))
    return GaLoreLemma33Check(
        srs, bound, lam1, lam2, lam_max, float(eta), int(problem.v1_dim), bool(problem.v1_is_rectangular),
        matrix_rank(G_par, 1e-10), float(G_par.norm() / G0.norm()),
        galore_lemma33_applies(eta, lam1, lam2, lam_max), float(np.max((srs - bound) / bound)))


def _apply_S(B, C, G):
    """(1/N) sum_i B_i G C_i (NumPy), used only by ``sumo_lemma31_trajectory`` below (SUMO section)."""
    return sum(np.asarray(b, float) @ G @ np.asarray(c, float) for b, c in zip(B, C)) / len(B)


# ---------------------------------------------------------------------------------------------------------------
# SUMO Lemma 3.1, Lemma 3.3 and Remark 3.6

@dataclass(frozen=True)
class Lemma31Constant:
    """C = (max{beta, 1 - eta lam1} / max{beta, 1 - eta lam2})^2 and whether the proof gives decay (C > 1)."""
    C: float
    decays: bool
    precondition: str


def sumo_lemma31_constant(beta: float, eta: float, lam1: float, lam2: float) -> Lemma31Constant:
    """SUMO Lemma 3.1 decay constant (paper-claims §1.3, [R] from the proof; [I] precondition):
    kappa_M(t) <= O(C^{-t}), C = (max{beta, 1 - eta lam1} / max{beta, 1 - eta lam2})^2.

    C > 1 iff 1 - eta lam1 > max{beta, 1 - eta lam2}; with lam1 < lam2 that is 1 - eta lam1 > beta. If
    beta >= 1 - eta lam1 the ratio is 1 and the argument gives no decay (the statement as written needs
    1 - eta lam1 > beta). Assumes 0 < eta lam < 1 for lam in {lam1, lam2}.
    """
    if not (lam1 < lam2):
        raise ValueError("need lam1 < lam2")
    num, den = max(beta, 1 - eta * lam1), max(beta, 1 - eta * lam2)
    C = (num / den) ** 2
    return Lemma31Constant(C=float(C), decays=bool(1 - eta * lam1 > beta and C > 1),
                           precondition="1 - eta*lam1 > beta (and lam1 < lam2)")


def sumo_lemma31_trajectory(A: Sequence[np.ndarray], B: Sequence[np.ndarray], C: Sequence[np.ndarray],
                            W0: np.ndarray, eta: float, beta: float, steps: int, *, squared: bool = True,
                            normalize: str = "frobenius") -> np.ndarray:
    """kappa_M(t), t = 0..steps, in SUMO Lemma 3.1's setting (paper-claims §1.3): gradients of GaLore's reversible
    form G(W) = (1/N) sum_i (A_i - B_i W C_i) along SGD W_t = W_{t-1} + eta G_{t-1}, and the moment
    M^(t) = beta M^(t-1) + G^(t) with M^(0) = G^(0) (G_t propagated by its exact linear recursion, see
    ``_apply_S``). kappa_M as in ``analysis.spectra.sumo_kappa``."""
    from .spectra import sumo_kappa

    N = len(A)

    def grad(W):
        return sum(np.asarray(a, float) - np.asarray(b, float) @ W @ np.asarray(c, float)
                   for a, b, c in zip(A, B, C)) / N

    G = grad(np.array(W0, dtype=np.float64))
    M = G.copy()
    out = [sumo_kappa(M, squared=squared, normalize=normalize)]
    for _ in range(steps):
        G = G - eta * _apply_S(B, C, G)
        M = beta * M + G
        out.append(sumo_kappa(M, squared=squared, normalize=normalize))
    return np.asarray(out)


def sumo_lemma31_bound(t, C: float, constant: float = 1.0):
    """constant * C^{-t}: the O(C^{-t}) envelope of kappa_M(t) (the O-constant is not given by the paper)."""
    out = constant * np.power(float(C), -np.asarray(t, dtype=np.float64))
    return float(out) if np.ndim(out) == 0 else out


def sumo_delta_threshold(n: int) -> float:
    """SUMO Remark 3.6 (paper-claims §1.5): the analysis needs 1 - 4 sqrt(n) delta > 0, i.e. delta < 1/(4 sqrt n)."""
    return 1.0 / (4.0 * math.sqrt(n))


def sumo_remark36_holds(delta: float, n: int) -> bool:
    """True iff 1 - 4 sqrt(n) delta > 0 (Remark 3.6's precondition)."""
    return 1.0 - 4.0 * math.sqrt(n) * delta > 0


def sumo_lemma33_step_size(R: float, L: float, T: int, m: int, delta: float, sigma: float) -> dict:
    """SUMO Lemma 3.3's parameters (paper-claims §1.5, [V]; B = 1):
    alpha = min(sqrt(R L)/(sigma sqrt T), 1), beta = 1 - alpha,
    eta = sqrt(4 R / ((10/(1 - beta) + 2m + 4m delta + 2m delta^2) T L)),  R = L(W0) - L*."""
    alpha = min(math.sqrt(R * L) / (sigma * math.sqrt(T)), 1.0) if sigma > 0 else 1.0
    beta = 1.0 - alpha
    eta = math.sqrt(4 * R / ((10 / (1 - beta) + 2 * m + 4 * m * delta + 2 * m * delta ** 2) * T * L))
    return {"alpha": alpha, "beta": beta, "eta": eta}


# ---------------------------------------------------------------------------------------------------------------
# GoLore Stiefel identities

def stiefel_projector_mean(m: int, r: int) -> np.ndarray:
    """E[P P^T] = (r/m) I_m for P uniform on St(m, r) (paper-claims §2.5; rotation invariance + trace r)."""
    if not 1 <= r <= m:
        raise ValueError("need 1 <= r <= m")
    return (r / m) * np.eye(m)


def stiefel_residual_expectation(G, r: int) -> float:
    """E ||P P^T G - G||_F^2 = (1 - r/m) ||G||_F^2 for P uniform on St(m, r), G in R^{m x n} fixed (§2.5).
    Follows from ||P P^T G - G||_F^2 = ||G||_F^2 - ||P^T G||_F^2 and E[P P^T] = (r/m) I."""
    from .spectra import as_numpy
    G = as_numpy(G)
    m = G.shape[0]
    if not 1 <= r <= m:
        raise ValueError("need 1 <= r <= m")
    return (1.0 - r / m) * float((G ** 2).sum())


# ---------------------------------------------------------------------------------------------------------------
# Subset-Norm rates (paper-claims §4.1, [V] from the authors' summary figure)

#: Exponents (a, b) of the rate O~(d^a / sqrt(T) + d^b / T) under coordinate-noise density beta in [0, 1];
#: each entry maps beta to (a, b). Memory: coordinate O(d), subset O(sqrt d), norm O(1).
SUBSET_NORM_RATES = {
    "coordinate": {"k": "1", "memory": "O(d)",
                   "sqrtT": lambda beta: 1.5 + beta, "T": lambda beta: 2.5},
    "subset": {"k": "O(sqrt(d))", "memory": "O(sqrt(d))",
               "sqrtT": lambda beta: 0.3 + 1.8 * beta,
               "T": lambda beta: beta + 1.0 if beta <= 2.0 / 3.0 else 1.6 * beta + 0.6},
    "norm": {"k": "d", "memory": "O(1)",
             "sqrtT": lambda beta: 2.5 * beta, "T": lambda beta: 3.0 * beta},
}


def subset_norm_regime(k, d: int | None = None) -> str:
    """Map a subset size to its row of the table: k = 1 -> "coordinate"; k = d -> "norm"; k = "sqrt" or an
    integer strictly between (the table only covers k = O(sqrt d)) -> "subset". Strings "1", "sqrt", "d" work."""
    if isinstance(k, str):
        return {"1": "coordinate", "sqrt": "subset", "d": "norm"}[k]
    if k == 1:
        return "coordinate"
    if d is not None and k == d:
        return "norm"
    if d is not None and not 1 < k < d:
        raise ValueError(f"need 1 <= k <= d, got k={k}, d={d}")
    return "subset"


def subset_norm_exponents(k, beta: float, d: int | None = None) -> tuple[float, float]:
    """Predicted exponents (a, b) of d in the Subset-Norm rate O~(d^a/sqrt T + d^b/T) for subset size k and
    noise-density beta in [0, 1] (paper-claims §4.1). The subset row is the paper's k = O(sqrt d) result."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError("beta must lie in [0, 1]")
    row = SUBSET_NORM_RATES[subset_norm_regime(k, d)]
    return float(row["sqrtT"](beta)), float(row["T"](beta))
