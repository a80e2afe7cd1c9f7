"""Hamiltonian tracking for Online Subspace Descent in continuous time (OSD, paper-claims §3.2-3.3, system (7),
Theorem 4.5).

State: W in R^{m x n}, a projection P in R^{m x r} (left projection, not necessarily orthonormal), the projected
optimizer state M^ (and V^ for Adam) in R^{r x n}; G^ = P^T grad L(W). Examples 4.1-4.3 of the paper:

* Momentum:  dW/dt = -P M^,  dM^/dt = a (G^ - M^);  H = L(W) + ||M^||^2 / (2a);  dH/dt = -||M^||^2 <= 0.
* Adam:      dW/dt = -P M^/(sqrt(V^) + e),  dM^/dt = a (G^ - M^),  dV^/dt = b (G^{.2} - V^);
             H = L(W) + (1/2a) <M^/(sqrt(V^) + e), M^>. With D = sqrt(V^) + e the chain rule gives
                 dH/dt = -sum (M^2/D) [1 + (b/4a) (G^2 - V)/(D sqrt V)]
             and since (G^2 - V)/(D sqrt V) >= -sqrt(V)/D > -1, dH/dt <= -(1 - b/(4a)) sum M^2/D <= 0 when a >= b/4.
             For a < b/4 the bracket is negative where G^ ~ 0 and V >> e^2, and H increases.
* Lion-K:    dW/dt = P grad K((1-b) M^ - b G^),  dM^/dt = -a (G^ + M^);  H = a L(W) + (1/(1-b)) K((1-b) M^);
             dH/dt = -(a/b) <Y, grad K(X+Y) - grad K(X)> - (a/(1-b)) <grad K(X), X> <= 0, X = (1-b) M^, Y = -b G^
             (K convex with minimum at 0; b in (0, 1)). K = ||.||_1 ("l1", grad K = sign) or the smoothed
             pseudo-Huber K_mu(x) = sum sqrt(x^2 + mu^2) - mu ("smooth", K'' <= 1/mu).

H does not depend on P, and the cross terms <grad L, P dX> - <P^T grad L, dX> cancel by adjointness, so dH/dt has
the sign above for *any* P-dynamics dP/dt = Gamma(P, grad L) (eq. (8)). Two P-dynamics are provided:
(i) ``projection="pca"``: online-PCA gradient flow (eq. (6)) dP/dt = -rho grad_P [||P P^T G~ - G~||_F^2
    + lambda ||P^T P - I||_F^2], G~ = G/||G||_F, with gradient 2 P (P^T A P) + 2 (A P)(P^T P) - 4 A P
    + 4 lambda P (P^T P - I), A = G~ G~^T;
(ii) any schedule t -> P(t) (e.g. ``rotation_schedule``: P(t) = expm(t Omega) P_0 with Omega skew-symmetric).

Discretisation and its tolerance. The flow is integrated by explicit Euler with step h: z_{k+1} = z_k + h F(z_k).
Taylor's theorem with the Lagrange remainder along the segment [z_k, z_{k+1}] gives exactly
    H(z_{k+1}) - H(z_k) = h dH/dt(z_k) + R_k,   R_k = (1/2) dz^T grad^2 H(xi) dz,   dz = z_{k+1} - z_k,
and dH/dt(z_k) <= 0, so the per-step increase is at most R_k = O(h^2). ``tolerance`` is a rigorous upper bound on
R_k (given the smoothness l of L, ||grad L(x) - grad L(y)|| <= l ||x - y||) plus a round-off allowance
1000 eps (|H_k| + ||grad L|| ||W|| + |kinetic part|):
* L part: (l/2) ||dW||^2 (Lion: a l/2 ||dW||^2); if l is not given, the measured Bregman remainder
  L(W') - L(W) - <grad L(W), dW> is used instead.
* Momentum: ||dM||^2/(2a) (exact, H is quadratic in M).
* Adam: per coordinate phi(M, V) = M^2/(2a D(V)); entrywise bounds of |phi_MM| = 1/(aD), |phi_MV| = |M| D'/(a D^2),
  |phi_VV| = (M^2/2a)(2 D'^2/D^3 + 1/(4 V^{3/2} D^2)) (D' = 1/(2 sqrt V)) over the segment, using V >= min(V, V')
  and |M| <= max(|M|, |M'|); needs V > 0 (kept by Euler when h b < 1).
* Lion smooth: (1-b)/(2 mu) ||dM||^2; Lion l1: the exact convexity gap (1/(1-b)) sum(|x'| - sign(x) x').
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["HamiltonianTrajectory", "osd_hamiltonian", "online_pca_gradient", "rotation_schedule",
           "quadratic_loss"]

_EPS = np.finfo(np.float64).eps


@dataclass
class HamiltonianTrajectory:
    """Trajectory of H and diagnostics, one entry per visited state (K + 1) or per step (K)."""
    t: np.ndarray
    H: np.ndarray
    dHdt: np.ndarray                 # analytic dH/dt at each visited state
    increments: np.ndarray           # H_{k+1} - H_k
    tolerance: np.ndarray            # allowed increase: rigorous bound on the 2nd-order remainder + round-off
    loss: np.ndarray
    grad_norm: np.ndarray            # ||grad L(W_k)||_F
    projected_grad_norm: np.ndarray  # ||P_k^T grad L(W_k)||_F
    orth_error: np.ndarray           # ||P_k^T P_k - I||_F
    W: np.ndarray
    P: np.ndarray
    M: np.ndarray
    V: np.ndarray | None
    optimizer: str
    h: float

    @property
    def max_increase(self) -> float:
        """max_k (H_{k+1} - H_k); negative when H strictly decreases at every step."""
        return float(self.increments.max()) if self.increments.size else 0.0

    @property
    def worst_excess(self) -> float:
        """max_k (H_{k+1} - H_k - tolerance_k); <= 0 iff H is non-increasing up to the discretisation tolerance."""
        return float((self.increments - self.tolerance).max()) if self.increments.size else -np.inf

    def non_increasing(self) -> bool:
        return self.worst_excess <= 0.0


def online_pca_gradient(P: np.ndarray, G: np.ndarray, lam: float = 0.1) -> np.ndarray:
    """grad_P [ ||P P^T G~ - G~||_F^2 + lam ||P^T P - I||_F^2 ], G~ = G/||G||_F (OSD eq. (6)); zero if G = 0."""
    nrm = np.linalg.norm(G)
    PtP = P.T @ P
    grad = 4.0 * lam * P @ (PtP - np.eye(P.shape[1]))
    if nrm > 0:
        Gt = G / nrm
        AP = Gt @ (Gt.T @ P)
        grad = grad + 2.0 * P @ (P.T @ AP) + 2.0 * AP @ PtP - 4.0 * AP
    return grad


def rotation_schedule(P0: np.ndarray, *, scale: float = 1.0, seed: int = 0) -> Callable[[float], np.ndarray]:
    """A smooth random rotation of the subspace: t -> expm(t Omega) P0, Omega = scale (X - X^T)/sqrt(2m),
    X ~ N(0, 1)^{m x m} from ``numpy.random.default_rng(seed)``.

    expm is evaluated through the eigendecomposition of the Hermitian matrix i Omega = Q diag(lam) Q^H:
    expm(t Omega) = Q diag(exp(-i lam t)) Q^H (exactly orthogonal up to rounding; one decomposition per schedule).
    """
    P0 = np.asarray(P0, dtype=np.float64)
    m = P0.shape[0]
    X = np.random.default_rng(seed).standard_normal((m, m))
    Omega = scale * (X - X.T) / np.sqrt(2 * m)
    lam, Q = np.linalg.eigh(1j * Omega)
    QhP = Q.conj().T @ P0

    def schedule(t: float) -> np.ndarray:
        return np.real((Q * np.exp(-1j * lam * t)) @ QhP)

    return schedule


def quadratic_loss(A: np.ndarray, B: np.ndarray):
    """L(W) = 0.5 ||A W - B||_F^2: returns (loss, grad, smoothness l = ||A||_2^2)."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)

    def loss(W):
        R = A @ W - B
        return 0.5 * float((R * R).sum())

    def grad(W):
        return A.T @ (A @ W - B)

    return loss, grad, float(np.linalg.norm(A, 2) ** 2)


def _k_value(X, K, mu):
    if K == "l1":
        return float(np.abs(X).sum())
    return float((np.sqrt(X * X + mu * mu) - mu).sum())


def _k_grad(X, K, mu):
    if K == "l1":
        return np.sign(X)
    return X / np.sqrt(X * X + mu * mu)


def osd_hamiltonian(loss: Callable, grad: Callable, W0, P0, *, optimizer: str = "momentum", a: float = 1.0,
                    b: float | None = None, e: float = 1e-8, K: str = "smooth", mu: float = 1e-2,
                    h: float = 1e-3, steps: int = 1000, projection="pca", pca_rate: float = 1.0,
                    pca_lambda: float = 0.1, smoothness: float | None = None, M0=None, V0=None
                    ) -> HamiltonianTrajectory:
    """Integrate OSD system (7) by explicit Euler (step ``h``, ``steps`` steps) and track H (module docstring).

    optimizer: "momentum" (a > 0), "adam" (a > 0, b > 0; a >= b/4 for the theorem; V0 > 0 elementwise, default
    ones), "lion" (a >= 0, b in (0, 1); ``K`` = "smooth" (pseudo-Huber, ``mu``) or "l1").
    projection: "pca" (online-PCA gradient flow with rate ``pca_rate`` and ``pca_lambda``), "fixed", or a
    callable t -> P(t). ``smoothness``: Lipschitz constant l of grad L (for the rigorous tolerance).
    M0 defaults to zeros (r x n).
    """
    W = np.array(W0, dtype=np.float64)
    P = np.array(P0, dtype=np.float64)
    m, n = W.shape
    r = P.shape[1]
    if P.shape[0] != m:
        raise ValueError(f"P0 must have {m} rows, got shape {P.shape}")
    M = np.zeros((r, n)) if M0 is None else np.array(M0, dtype=np.float64)
    V = None
    if optimizer == "momentum":
        if a <= 0:
            raise ValueError("momentum needs a > 0")
    elif optimizer == "adam":
        if a <= 0 or b is None or b <= 0:
            raise ValueError("adam needs a > 0 and b > 0")
        if h * b >= 1:
            raise ValueError("adam needs h*b < 1 so that Euler keeps V > 0")
        V = np.ones((r, n)) if V0 is None else np.array(V0, dtype=np.float64)
        if np.any(V <= 0):
            raise ValueError("adam needs V0 > 0 elementwise")
    elif optimizer == "lion":
        if a < 0 or b is None or not 0 < b < 1:
            raise ValueError("lion needs a >= 0 and b in (0, 1)")
        if K not in ("smooth", "l1"):
            raise ValueError("K must be 'smooth' or 'l1'")
    else:
        raise ValueError(f"optimizer must be 'momentum', 'adam' or 'lion', got {optimizer!r}")
    if callable(projection):
        P = np.array(projection(0.0), dtype=np.float64)
    elif projection not in ("pca", "fixed"):
        raise ValueError("projection must be 'pca', 'fixed' or a callable t -> P")

    def kinetic(M, V):
        if optimizer == "momentum":
            return float((M * M).sum()) / (2 * a)
        if optimizer == "adam":
            return float((M * M / (np.sqrt(V) + e)).sum()) / (2 * a)
        return _k_value((1 - b) * M, K, mu) / (1 - b)

    def hamiltonian(Lw, M, V):
        return (a * Lw if optimizer == "lion" else Lw) + kinetic(M, V)

    ts, Hs, dHs, incs, tols, losses, gns, pgns, orths = [], [], [], [], [], [], [], [], []
    t = 0.0
    Lw = float(loss(W))
    for k in range(steps + 1):
        G = np.asarray(grad(W), dtype=np.float64)
        Gh = P.T @ G
        # vector field
        if optimizer == "momentum":
            dW = -P @ M
            dM = a * (Gh - M)
            dV = None
            dH = float((G * dW).sum()) + float((M * dM).sum()) / a
        elif optimizer == "adam":
            D = np.sqrt(V) + e
            dW = -P @ (M / D)
            dM = a * (Gh - M)
            dV = b * (Gh * Gh - V)
            dH = (float((G * dW).sum()) + float((M / D * dM).sum()) / a
                  - float((M * M * dV / (2 * np.sqrt(V) * D * D)).sum()) / (2 * a))
        else:
            X = (1 - b) * M
            dW = P @ _k_grad(X - b * Gh, K, mu)
            dM = -a * (Gh + M)
            dV = None
            dH = a * float((G * dW).sum()) + float((_k_grad(X, K, mu) * dM).sum())
        Hk = hamiltonian(Lw, M, V)
        ts.append(t)
        Hs.append(Hk)
        dHs.append(dH)
        losses.append(Lw)
        gns.append(float(np.linalg.norm(G)))
        pgns.append(float(np.linalg.norm(Gh)))
        orths.append(float(np.linalg.norm(P.T @ P - np.eye(r))))
        if k == steps:
            break
        # Euler step
        W_new = W + h * dW
        M_new = M + h * dM
        V_new = V + h * dV if V is not None else None
        if callable(projection):
            P_new = np.array(projection(t + h), dtype=np.float64)
        elif projection == "pca":
            P_new = P - h * pca_rate * online_pca_gradient(P, G, pca_lambda)
        else:
            P_new = P
        Lw_new = float(loss(W_new))
        ddW, ddM = W_new - W, M_new - M
        # second-order remainder bound
        if smoothness is not None:
            rem_L = 0.5 * smoothness * float((ddW * ddW).sum())
        else:
            rem_L = max(0.0, Lw_new - Lw - float((G * ddW).sum()))
        if optimizer == "momentum":
            rem_K = float((ddM * ddM).sum()) / (2 * a)
        elif optimizer == "adam":
            ddV = V_new - V
            Vlo = np.minimum(V, V_new)
            Mmax = np.maximum(np.abs(M), np.abs(M_new))
            Dlo = np.sqrt(Vlo) + e
            Dp = 1.0 / (2 * np.sqrt(Vlo))
            hMM = 1.0 / (a * Dlo)
            hMV = Mmax * Dp / (a * Dlo ** 2)
            hVV = (Mmax ** 2 / (2 * a)) * (2 * Dp ** 2 / Dlo ** 3 + 1.0 / (4 * Vlo ** 1.5 * Dlo ** 2))
            rem_K = 0.5 * float((hMM * ddM ** 2 + 2 * hMV * np.abs(ddM) * np.abs(ddV) + hVV * ddV ** 2).sum())
        else:
            if K == "smooth":
                rem_K = (1 - b) / (2 * mu) * float((ddM * ddM).sum())
            else:
                x, x_new = (1 - b) * M, (1 - b) * M_new
                rem_K = float((np.abs(x_new) - np.sign(x) * x_new).sum()) / (1 - b)
            rem_L = a * rem_L
        H_new = hamiltonian(Lw_new, M_new, V_new)
        roundoff = 1e3 * _EPS * (abs(Hk) + abs(H_new) + (a if optimizer == "lion" else 1.0)
                                 * float(np.linalg.norm(G) * np.linalg.norm(W)) + abs(kinetic(M, V)) + 1e-300)
        incs.append(H_new - Hk)
        tols.append(rem_L + rem_K + roundoff)
        W, M, V, P, Lw, t = W_new, M_new, V_new, P_new, Lw_new, t + h
    return HamiltonianTrajectory(
        t=np.asarray(ts), H=np.asarray(Hs), dHdt=np.asarray(dHs), increments=np.asarray(incs),
        tolerance=np.asarray(tols), loss=np.asarray(losses), grad_norm=np.asarray(gns),
        projected_grad_norm=np.asarray(pgns), orth_error=np.asarray(orths), W=W, P=P, M=M, V=V,
        optimizer=optimizer, h=h)
