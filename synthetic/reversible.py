"""Reversible-layer gradients and their moments (GaLore §3.2, Lemma 3.3, Cor. 3.5; SUMO Lemma 3.1, App. B).

A reversible layer trained with an l2 loss has the gradient form (GaLore Thm 3.2(a), batch N)

    G(W) = (1/N) sum_i (A_i - B_i W C_i),      A_i in R^{m x n}, B_i (m x m) and C_i (n x n) PSD,

where G is the *negative* gradient of phi(W) = (1/N) sum_i [1/2 <W, B_i W C_i> - <A_i, W>]. With the paper's SGD
W_t = W_{t-1} + eta G_{t-1}, vec(G_t) = (I - eta S) vec(G_{t-1}) for S = (1/N) sum_i C_i (x) B_i (column-major vec;
S acts on matrices as G -> (1/N) sum_i B_i G C_i). With lambda_1 < lambda_2 the two smallest distinct eigenvalues of S
and G^par the projection onto the lambda_1 eigenspace V1, GaLore Lemma 3.3 states

    sr(G_t) <= sr(G^par_t0) + q^{t-t0} ||G_t0 - G^par_t0||_F^2 / ||G^par_t0||_2^2,   q = ((1-eta l2)/(1-eta l1))^2,

sr(G) = ||G||_F^2 / ||G||_2^2. The proof also needs |1 - eta l| <= |1 - eta l2| for every eigenvalue l >= l2 and
||G_t||_2 >= ||G^par_t||_2. The latter holds when V1 = span{u_j v_k^T : j in J, k in K} for orthonormal u's, v's (a
"rectangular" V1: G^par = P_J G P_K is a two-sided projection), e.g. a one-dimensional V1 with a decomposable
eigenvector (Cor. 3.5) or ``ReversibleLayer.random``. It FAILS otherwise: for m = n = N = 2, B = (I, e1 e1^T),
C = (I, e2 e2^T), V1 = {G : G_12 = 0} and G_t0 = [[1, 1], [1, -1]] give sr(G_t0) = 2 > 1.528 = the bound at t = t0
(and sr(G_t) exceeds the bound at every later t too).

SUMO Lemma 3.1 applies the same to M_t = beta M_{t-1} + G_t: the residual of the best rank-one approximation decays
like C^{-t}, C = (max(beta, 1-eta l1) / max(beta, 1-eta l2))^2 > 1 only when 1 - eta l1 > beta. For a rank-one limit
both rates are conservative: the residual is 4th order in the components sharing u_1's row or v_1's column, and
decays about 2-3x faster in the exponent (measured).

This module is the ONE implementation of the problem: the gradient, S (``apply_S``, ``S_matrix``), its spectrum, the
lambda_1-eigenspace V1 (``v1_basis``, ``project_v1``, ``v1_is_rectangular``) and the exact recursion
G_t = G_{t-1} - eta S(G_{t-1}) (``trajectory``). The Lemma 3.3 bound and its trajectory check are in
``analysis.bounds`` (``galore_lemma33_bound``, ``galore_lemma33_trajectory``), built on these classes; the claims in
``claims/galore.py`` only call them.

Tie tolerance (one, ``TIE_RTOL`` = 1e-9). An eigenvalue of S counts as lambda_1 iff it lies within
TIE_RTOL * max|eigenvalue| of the smallest. Origin: ``eigh`` of the symmetric mn x mn matrix S returns eigenvalues
with absolute error <= c mn u ||S||_2 (u = 2^-53; c a small constant), i.e. <= ~5e-13 ||S||_2 even at
m n = MAX_DENSE_DIM, so exact ties (singular B_i, C_i, repeated factors) are merged with three orders of margin,
while a genuine gap below 1e-9 ||S||_2 (probability ~1e-9 per pair for continuous random draws) would be merged
too: the tolerance sits between round-off and any gap a random instance produces. It is relative (S -> c S leaves V1
unchanged). ``ReversibleLayer`` applies it to its exact eigenvalue grid.

``ReversibleLayer`` builds B_i = U diag(b_i) U^T, C_i = V diag(c_i) V^T from shared orthonormal bases U, V, so S has the
KNOWN eigenvalues Lambda[j, k] = (1/N) sum_i b_i[j] c_i[k] with eigenvectors u_j v_k^T (all decomposable, so a
one-dimensional V1 gives a rank-one limit, GaLore Cor. 3.5). ``TwoLayerNet`` gives the same form for bias-free
linear and ReLU teacher-student networks.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from subspace import stiefel

from ._checks import as_generator, check_dtype, check_int, check_matrix, check_real

__all__ = ["ReversibleGradient", "ReversibleLayer", "TwoLayerNet", "stable_rank", "rank_one_residual",
           "moment_trajectory", "MAX_DENSE_DIM", "TIE_RTOL", "RANK_RTOL"]

MAX_DENSE_DIM = 4096  # largest m*n for which S is formed densely
#: Relative tolerance merging eigenvalues of S into lambda_1 (module docstring: between eigh round-off and any gap).
TIE_RTOL = 1e-9
#: Relative singular-value cut for the numerical ranks used by ``v1_is_rectangular`` and ``matrix_rank``: the basis
#: of V1 is exact to ~sqrt(mn) u / (relative gap) (Davis-Kahan), far below 1e-8 for every instance the claims use.
RANK_RTOL = 1e-8


def matrix_rank(X: torch.Tensor, rtol: float = RANK_RTOL) -> int:
    """Number of singular values of X above ``rtol`` times the largest (0 for X = 0)."""
    s = torch.linalg.svdvals(X.detach().double())
    return int((s > rtol * float(s[0])).sum()) if s.numel() and float(s[0]) > 0 else 0


def stable_rank(G: torch.Tensor) -> float:
    """sr(G) = ||G||_F^2 / ||G||_2^2 (in float64; nan for G = 0)."""
    s = torch.linalg.svdvals(G.detach().double())
    top = float(s[0]) if s.numel() else 0.0
    return float(s.square().sum()) / top ** 2 if top > 0 else math.nan


def rank_one_residual(M: torch.Tensor) -> float:
    """kappa_M = ||M - P_(1) M||_F^2 / ||M||_F^2 = 1 - 1/sr(M) (SUMO Lemma 3.1, reconstructed definition)."""
    sr = stable_rank(M)
    return 1.0 - 1.0 / sr if sr == sr else math.nan


def moment_trajectory(gradients: Sequence[torch.Tensor], beta: float, *, ema: bool = False) -> list[torch.Tensor]:
    """M_t = beta M_{t-1} + G_t (SUMO Alg. 1) or, with ``ema``, M_t = beta M_{t-1} + (1-beta) G_t; M_{-1} = 0."""
    beta = check_real(beta, "beta", minimum=0.0, maximum=1.0, strict_max=True)
    out: list[torch.Tensor] = []
    M = None
    for G in gradients:
        g = (1 - beta) * G if ema else G
        M = g.clone() if M is None else beta * M + g
        out.append(M)
    return out


def _check_stack(T, name: str, shape_tail: tuple[int, int] | None = None) -> torch.Tensor:
    if not isinstance(T, torch.Tensor) or T.ndim != 3 or T.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name} must be a float32/float64 tensor of shape (N, rows, cols)")
    if shape_tail is not None and tuple(T.shape[1:]) != shape_tail:
        raise ValueError(f"{name} must have trailing shape {shape_tail}, got {tuple(T.shape[1:])}")
    return T


def _check_psd(T: torch.Tensor, name: str) -> None:
    Td = T.double()
    scale = max(float(Td.abs().max()), 1e-300)
    if float((Td - Td.mT).abs().max()) > 1e-10 * scale:
        raise ValueError(f"{name} must be symmetric (PSD)")
    if float(torch.linalg.eigvalsh(0.5 * (Td + Td.mT)).min()) < -1e-10 * scale * T.shape[-1]:
        raise ValueError(f"{name} must be positive semidefinite")


class ReversibleGradient:
    """G(W) = (1/N) sum_i (A_i - B_i W C_i) with constant A_i and PSD B_i, C_i (GaLore eq. (8)).

    The spectrum of S is computed densely (m*n <= MAX_DENSE_DIM); eigenvalues within ``tie_rtol * max|eig|`` of the
    smallest count as lambda_1 (``TIE_RTOL``, module docstring). Subclasses with a known spectrum override
    ``eigenvalues``, ``v1_basis`` and ``project_v1``. ``from_arrays`` takes lists of NumPy arrays.
    """

    def __init__(self, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, *, tie_rtol: float = TIE_RTOL,
                 check_psd: bool = True):
        A = _check_stack(A, "A")
        N, m, n = A.shape
        if N < 1:
            raise ValueError("A must hold at least one term (N >= 1)")
        B = _check_stack(B, "B", (m, m))
        C = _check_stack(C, "C", (n, n))
        if B.shape[0] != N or C.shape[0] != N:
            raise ValueError(f"A, B, C must have the same number of terms N, got {N}, {B.shape[0]}, {C.shape[0]}")
        if check_psd:
            _check_psd(B, "B")
            _check_psd(C, "C")
        self.tie_rtol = check_real(tie_rtol, "tie_rtol", minimum=0.0)
        self.A, self.B, self.C = A, B.to(A.dtype), C.to(A.dtype)
        self.N, self.m, self.n = N, m, n
        self.dtype = A.dtype
        self._dense = None

    @classmethod
    def from_arrays(cls, A, B, C, **kwargs) -> "ReversibleGradient":
        """The problem from sequences of N matrices each (NumPy arrays or tensors), stacked in float64."""
        stack = lambda seq: torch.stack([torch.as_tensor(x, dtype=torch.float64) for x in seq])
        return cls(stack(A), stack(B), stack(C), **kwargs)

    # ------------------------------------------------------------------------------------------- oracle
    def gradient(self, W: torch.Tensor) -> torch.Tensor:
        """G(W) = (1/N) sum_i (A_i - B_i W C_i): the paper's gradient, i.e. minus the gradient of ``loss``."""
        check_matrix(W, (self.m, self.n), "W")
        A, B, C = (T.to(W) for T in (self.A, self.B, self.C))
        return (A - B @ W @ C).mean(0)

    def loss(self, W: torch.Tensor) -> torch.Tensor:
        """phi(W) = (1/N) sum_i [1/2 <W, B_i W C_i> - <A_i, W>], whose gradient is -G(W)."""
        check_matrix(W, (self.m, self.n), "W")
        A, B, C = (T.to(W) for T in (self.A, self.B, self.C))
        return (0.5 * (W * (B @ W @ C)).sum((1, 2)) - (A * W).sum((1, 2))).mean()

    def apply_S(self, G: torch.Tensor) -> torch.Tensor:
        """S acting on a matrix: (1/N) sum_i B_i G C_i (= mat(S vec(G)))."""
        check_matrix(G, (self.m, self.n), "G")
        B, C = self.B.to(G), self.C.to(G)
        return (B @ G @ C).mean(0)

    def S_matrix(self) -> torch.Tensor:
        """Dense S = (1/N) sum_i C_i (x) B_i, (mn x mn), acting on column-major vec (vec(G) = G.mT.flatten())."""
        if self.m * self.n > MAX_DENSE_DIM:
            raise ValueError(f"m*n = {self.m * self.n} exceeds MAX_DENSE_DIM = {MAX_DENSE_DIM} for a dense S")
        return torch.stack([torch.kron(Ci, Bi) for Bi, Ci in zip(self.B.double(), self.C.double())]).mean(0)

    # ------------------------------------------------------------------------------------------- spectrum
    def _dense_spectrum(self):
        if self._dense is None:
            S = self.S_matrix()
            evals, evecs = torch.linalg.eigh(0.5 * (S + S.mT))
            tol = self.tie_rtol * max(float(evals.abs().max()), 1e-300)
            in_v1 = evals <= evals[0] + tol
            self._dense = (evals, evecs[:, in_v1], float(evals[0]),
                           float(evals[~in_v1][0]) if (~in_v1).any() else math.nan, int(in_v1.sum()))
        return self._dense

    @property
    def eigenvalues(self) -> torch.Tensor:
        """All m*n eigenvalues of S, ascending (float64)."""
        return self._dense_spectrum()[0]

    @property
    def lambda1(self) -> float:
        """Smallest eigenvalue of S."""
        return self._dense_spectrum()[2]

    @property
    def lambda2(self) -> float:
        """Second smallest distinct eigenvalue of S (nan if S is a multiple of the identity)."""
        return self._dense_spectrum()[3]

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def v1_dim(self) -> int:
        """Dimension of the lambda_1 eigenspace V1."""
        return self._dense_spectrum()[4]

    @property
    def v1_basis(self) -> torch.Tensor:
        """Orthonormal basis of V1, (mn x v1_dim) float64, in column-major vec (column l is vec of a matrix)."""
        return self._dense_spectrum()[1]

    def v1_matrices(self) -> list[torch.Tensor]:
        """The basis of V1 as m x n matrices."""
        E1 = self.v1_basis
        return [E1[:, l].reshape(self.n, self.m).mT for l in range(E1.shape[1])]

    @property
    def v1_is_rectangular(self) -> bool:
        """Is V1 = {P_J X P_K : X} for subspaces J, K?  With J (K) the sum of the column (row) spaces of V1's basis
        matrices, V1 lies in the (dim J dim K)-dimensional space {P_J X P_K}; equality iff dim V1 = dim J dim K.
        Ranks by ``matrix_rank`` (``RANK_RTOL``)."""
        mats = self.v1_matrices()
        return len(mats) == matrix_rank(torch.cat(mats, 1)) * matrix_rank(torch.cat([M.mT for M in mats], 1))

    def project_v1(self, G: torch.Tensor) -> torch.Tensor:
        """G^par: orthogonal (Frobenius) projection of G onto the lambda_1 eigenspace V1 of S."""
        check_matrix(G, (self.m, self.n), "G")
        E1 = self.v1_basis
        v = G.detach().double().mT.reshape(-1)
        return (E1 @ (E1.mT @ v)).reshape(self.n, self.m).mT.to(G.dtype)

    def trajectory(self, G_t0: torch.Tensor, eta: float, steps: int) -> list[torch.Tensor]:
        """[G_t0, ..., G_{t0+steps}] by the exact recursion G_t = G_{t-1} - eta S(G_{t-1}) (float64).

        Along SGD W_t = W_{t-1} + eta G_{t-1} this is the gradient exactly; propagating G (instead of recomputing
        A - B W C, which has a round-off floor of eps ||A||) keeps full relative accuracy as G_t -> 0."""
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        steps = check_int(steps, "steps", minimum=0)
        G = check_matrix(G_t0, (self.m, self.n), "G_t0").detach().double()
        out = [G]
        for _ in range(steps):
            G = G - eta * self.apply_S(G)
            out.append(G)
        return out

    def evolve(self, G: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
        """(I - eta S)^steps applied to G: the exact G_{t0+steps} of the SGD recursion started at G_t0 = G."""
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        steps = check_int(steps, "steps", minimum=0)
        for _ in range(steps):
            G = G - eta * self.apply_S(G)
        return G

    # ------------------------------------------------------------------------------------------- trajectories
    def sgd_trajectory(self, W0: torch.Tensor, eta: float, steps: int, *, return_weights: bool = False):
        """G_0..G_steps along W_t = W_{t-1} + eta G_{t-1} (the paper's sign: G is the negative gradient).

        Returns the list of G_t, or (list of W_t, list of G_t) with ``return_weights``.
        """
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        steps = check_int(steps, "steps", minimum=0)
        W = check_matrix(W0, (self.m, self.n), "W0").clone()
        Ws, Gs = [W], [self.gradient(W)]
        for _ in range(steps):
            W = W + eta * Gs[-1]
            Ws.append(W)
            Gs.append(self.gradient(W))
        return (Ws, Gs) if return_weights else Gs

    def moment_trajectory(self, W0: torch.Tensor, eta: float, beta: float, steps: int, *, ema: bool = False):
        """Moments M_t = beta M_{t-1} + G_t (or the EMA form) of the G_t of ``sgd_trajectory`` (SUMO Lemma 3.1)."""
        return moment_trajectory(self.sgd_trajectory(W0, eta, steps), beta, ema=ema)

    # ------------------------------------------------------------------------------------------- spectral gap
    def _need_gap(self) -> None:
        if not self.lambda2 == self.lambda2:
            raise ValueError("S has a single distinct eigenvalue: lambda_2 does not exist")

    # ------------------------------------------------------------------------------------------- SUMO Lemma 3.1
    def sumo_rate(self, eta: float, beta: float) -> float:
        """C = (max(beta, 1 - eta l1) / max(beta, 1 - eta l2))^2 of SUMO Lemma 3.1 (decay kappa_M = O(C^{-t}))."""
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        beta = check_real(beta, "beta", minimum=0.0, maximum=1.0, strict_max=True)
        self._need_gap()
        return (max(beta, 1 - eta * self.lambda1) / max(beta, 1 - eta * self.lambda2)) ** 2

    def sumo_precondition(self, eta: float, beta: float) -> bool:
        """1 - eta lambda_1 > beta: the only case where C > 1 and SUMO Lemma 3.1 predicts decay."""
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        beta = check_real(beta, "beta", minimum=0.0, maximum=1.0, strict_max=True)
        return 1 - eta * self.lambda1 > beta

    def sumo_moment_bound(self, G0: torch.Tensor, eta: float, beta: float, steps: int) -> torch.Tensor:
        """Explicit form of the SUMO Lemma 3.1 proof for M_t = sum_{s=0}^t beta^{t-s} G_s, G_s = (I - eta S)^s G0:

            sr(M_t) <= sr(G0^par) + (a_t(l2) / a_t(l1))^2 ||G0 - G0^par||_F^2 / ||G0^par||_2^2,
            a_t(l) = sum_{s=0}^t beta^{t-s} (1 - eta l)^s,

        valid when 0 < eta lambda_max <= 1 (then 0 <= a_t(l) is decreasing in l) and ||M_t||_2 >= ||M_t^par||_2.
        (a_t(l2)/a_t(l1))^2 = O(C^{-t}). The same bound holds for the EMA form (a common factor 1 - beta).
        """
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        beta = check_real(beta, "beta", minimum=0.0, maximum=1.0, strict_max=True)
        steps = check_int(steps, "steps", minimum=0)
        self._need_gap()
        G = G0.detach().double()
        par = self.project_v1(G)
        spec = float(torch.linalg.matrix_norm(par, ord=2))
        if spec == 0.0:
            return torch.full((steps + 1,), math.inf, dtype=torch.float64)
        ratio = float((G - par).square().sum()) / spec ** 2
        r1, r2 = 1 - eta * self.lambda1, 1 - eta * self.lambda2
        a1 = a2 = 0.0
        out = []
        for t in range(steps + 1):
            a1 = beta * a1 + r1 ** t
            a2 = beta * a2 + r2 ** t
            out.append(stable_rank(par) + (a2 / a1) ** 2 * ratio)
        return torch.tensor(out, dtype=torch.float64)


class ReversibleLayer(ReversibleGradient):
    """Reversible layer with KNOWN spectrum: B_i = U diag(b_i) U^T, C_i = V diag(c_i) V^T (shared bases).

    S = (V (x) U) diag(vec Lambda) (V (x) U)^T with Lambda[j, k] = (1/N) sum_i b_i[j] c_i[k] >= 0; its eigenvector for
    Lambda[j, k] is u_j v_k^T. V1 = span{u_j v_k^T : Lambda[j, k] = lambda_1} and G^par = U (mask * (U^T G V)) V^T.
    When the lambda_1 cells form a rectangle J x K (``v1_is_rectangular``; always so for ``random``) this is the
    two-sided projection U_J U_J^T G V_K V_K^T, so ||G||_2 >= ||G^par||_2 and Lemma 3.3 holds under
    ``analysis.bounds.galore_lemma33_applies``; for other masks the literal lemma can fail (module docstring).
    """

    def __init__(self, A: torch.Tensor, b: torch.Tensor, c: torch.Tensor, U: torch.Tensor, V: torch.Tensor, *,
                 tie_rtol: float = TIE_RTOL):
        A = _check_stack(A, "A")
        N, m, n = A.shape
        dtype = A.dtype
        if not isinstance(b, torch.Tensor) or tuple(b.shape) != (N, m):
            raise ValueError(f"b must be a tensor of shape (N, m) = {(N, m)}")
        if not isinstance(c, torch.Tensor) or tuple(c.shape) != (N, n):
            raise ValueError(f"c must be a tensor of shape (N, n) = {(N, n)}")
        if (b < 0).any() or (c < 0).any() or not torch.isfinite(b).all() or not torch.isfinite(c).all():
            raise ValueError("b and c must be finite and >= 0 (B_i, C_i PSD)")
        for name, Q, k in (("U", U, m), ("V", V, n)):
            if not isinstance(Q, torch.Tensor) or tuple(Q.shape) != (k, k):
                raise ValueError(f"{name} must be a ({k}, {k}) orthogonal matrix")
            err = float((Q.double().mT @ Q.double() - torch.eye(k, dtype=torch.float64)).abs().max())
            if err > 1e-6:
                raise ValueError(f"{name} must be orthogonal (max |{name}^T {name} - I| = {err:.2e})")
        self.b, self.c = b.double(), c.double()
        self.U, self.V = U.double(), V.double()
        B = (self.U * self.b[:, None, :]) @ self.U.mT
        C = (self.V * self.c[:, None, :]) @ self.V.mT
        super().__init__(A, B.to(dtype), C.to(dtype), tie_rtol=tie_rtol, check_psd=False)
        # Elementwise (not matmul) so equal factors give bitwise-equal sums.
        self.eigenvalue_grid = (self.b[:, :, None] * self.c[:, None, :]).sum(0) / N
        lam = self.eigenvalue_grid
        tol = self.tie_rtol * max(float(lam.max()), 1e-300)
        self.v1_mask = lam <= lam.min() + tol
        self._l1 = float(lam.min())
        self._l2 = float(lam[~self.v1_mask].min()) if (~self.v1_mask).any() else math.nan

    @classmethod
    def random(cls, m: int, n: int, N: int = 3, generator: torch.Generator | int = 0, *,
               v1_shape: tuple[int, int] = (1, 1), lambda1: float = 1.0, gap: float = 0.5, spread: float = 1.0,
               a_scale: float = 1.0, dtype: torch.dtype = torch.float64) -> "ReversibleLayer":
        """Random instance with lambda_1 = ``lambda1`` of multiplicity p*q for ``v1_shape`` = (p, q).

        U ~ Haar(O(m)), V ~ Haar(O(n)); b_i[j] = lambda1 for j < p and lambda1 (1 + gap + spread u) otherwise,
        c_i[k] = 1 for k < q and 1 + gap + spread u otherwise (u ~ U(0, 1)), A_i = a_scale * randn(m, n).
        Hence lambda_2 >= lambda1 (1 + gap) and lambda_max <= lambda1 (1 + gap + spread)^2. v1_shape = (1, 1) makes
        V1 one-dimensional with a decomposable eigenvector (GaLore Cor. 3.5: G_t tends to rank one); in general
        G^par has rank <= min(p, q).
        """
        m, n = check_int(m, "m"), check_int(n, "n")
        N = check_int(N, "N")
        gen = as_generator(generator)
        dtype = check_dtype(dtype)
        if not (isinstance(v1_shape, (tuple, list)) and len(v1_shape) == 2):
            raise ValueError(f"v1_shape must be a pair (p, q), got {v1_shape!r}")
        p = check_int(v1_shape[0], "v1_shape[0]", maximum=m)
        q = check_int(v1_shape[1], "v1_shape[1]", maximum=n)
        if (p, q) == (m, n):
            raise ValueError("v1_shape must not cover all of (m, n): lambda_2 would not exist")
        lambda1 = check_real(lambda1, "lambda1", minimum=0.0, strict_min=True)
        gap = check_real(gap, "gap", minimum=0.0, strict_min=True)
        spread = check_real(spread, "spread", minimum=0.0)
        a_scale = check_real(a_scale, "a_scale", minimum=0.0)
        U = stiefel(m, m, gen, dtype=torch.float64)
        V = stiefel(n, n, gen, dtype=torch.float64)
        b = lambda1 * (1 + gap + spread * torch.rand(N, m, generator=gen, dtype=torch.float64))
        c = 1 + gap + spread * torch.rand(N, n, generator=gen, dtype=torch.float64)
        b[:, :p] = lambda1
        c[:, :q] = 1.0
        A = a_scale * torch.randn(N, m, n, generator=gen, dtype=torch.float64)
        return cls(A.to(dtype), b, c, U, V)

    # Known spectrum: no dense eigendecomposition needed.
    @property
    def eigenvalues(self) -> torch.Tensor:
        return torch.sort(self.eigenvalue_grid.flatten()).values

    @property
    def lambda1(self) -> float:
        return self._l1

    @property
    def lambda2(self) -> float:
        return self._l2

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalue_grid.max())

    @property
    def v1_dim(self) -> int:
        return int(self.v1_mask.sum())

    @property
    def v1_is_rectangular(self) -> bool:
        """True iff the lambda_1 cells of the grid are a product set J x K (G^par is then a two-sided projection)."""
        rows, cols = self.v1_mask.any(1), self.v1_mask.any(0)
        return bool(torch.equal(self.v1_mask, rows[:, None] & cols[None, :]))

    @property
    def v1_rank(self) -> int:
        """Largest possible rank of G^par: min(#rows, #cols) touched by the lambda_1 cells of the grid."""
        return min(int(self.v1_mask.any(1).sum()), int(self.v1_mask.any(0).sum()))

    @property
    def v1_basis(self) -> torch.Tensor:
        """vec(u_j v_k^T) = v_k (x) u_j for the lambda_1 cells (j, k) of the grid (orthonormal, column-major vec)."""
        cells = torch.nonzero(self.v1_mask)
        return torch.stack([torch.kron(self.V[:, k], self.U[:, j]) for j, k in cells.tolist()], 1)

    def project_v1(self, G: torch.Tensor) -> torch.Tensor:
        check_matrix(G, (self.m, self.n), "G")
        Gh = self.U.mT @ G.detach().double() @ self.V
        return (self.U @ (Gh * self.v1_mask) @ self.V.mT).to(G.dtype)

    def evolve(self, G: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
        """Closed form (I - eta S)^steps G = U ((1 - eta Lambda)^steps * (U^T G V)) V^T."""
        eta = check_real(eta, "eta", minimum=0.0, strict_min=True)
        steps = check_int(steps, "steps", minimum=0)
        check_matrix(G, (self.m, self.n), "G")
        Gh = self.U.mT @ G.double() @ self.V
        return (self.U @ (Gh * (1 - eta * self.eigenvalue_grid) ** steps) @ self.V.mT).to(G.dtype)


class TwoLayerNet:
    """Bias-free two-layer teacher-student regression, y = W2 act(W1 x), act in {linear, relu} (GaLore Thm 3.2(a)).

    phi(W1, W2) = (1/N) sum_i 1/2 ||y_i - W2 act(W1 x_i)||^2 with teacher targets y_i = W2* act(W1* x_i).
    With h_i = act(W1 x_i) and D_i = diag(1[W1 x_i > 0]) (I for linear), the paper's (negative) layer gradients are
    reversible, G_l = (1/N) sum_i (A_i - B_i W_l C_i):
      layer 2: A_i = y_i h_i^T,            B_i = I,                   C_i = h_i h_i^T;
      layer 1: A_i = D_i W2^T y_i x_i^T,   B_i = D_i W2^T W2 D_i,     C_i = x_i x_i^T.
    The terms are constant in W_l for layer 2 and for a linear layer 1; for ReLU, while the activation pattern holds.
    """

    ACTIVATIONS = ("linear", "relu")

    def __init__(self, d_in: int = 8, hidden: int = 6, d_out: int = 4, n_samples: int = 16,
                 activation: str = "relu", seed: int = 0, dtype: torch.dtype = torch.float64):
        self.d_in, self.hidden = check_int(d_in, "d_in"), check_int(hidden, "hidden")
        self.d_out, self.n_samples = check_int(d_out, "d_out"), check_int(n_samples, "n_samples")
        if activation not in self.ACTIVATIONS:
            raise ValueError(f"activation must be one of {self.ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.dtype = check_dtype(dtype)
        gen = torch.Generator().manual_seed(check_int(seed, "seed", minimum=0))
        self.X = torch.randn(self.d_in, self.n_samples, generator=gen, dtype=torch.float64).to(dtype)
        self.teacher = self._draw(gen)
        self.Y = self.forward(*self.teacher)

    def _draw(self, gen: torch.Generator):
        W1 = torch.randn(self.hidden, self.d_in, generator=gen, dtype=torch.float64) / math.sqrt(self.d_in)
        W2 = torch.randn(self.d_out, self.hidden, generator=gen, dtype=torch.float64) / math.sqrt(self.hidden)
        return W1.to(self.dtype), W2.to(self.dtype)

    def x0(self, generator: torch.Generator | int) -> tuple[torch.Tensor, torch.Tensor]:
        """Student initial weights (W1, W2), scaled 1/sqrt(fan_in), drawn from ``generator``."""
        return self._draw(as_generator(generator))

    def _act(self, Z: torch.Tensor) -> torch.Tensor:
        return torch.relu(Z) if self.activation == "relu" else Z

    def _check(self, W1, W2):
        check_matrix(W1, (self.hidden, self.d_in), "W1")
        check_matrix(W2, (self.d_out, self.hidden), "W2")

    def forward(self, W1: torch.Tensor, W2: torch.Tensor, X: torch.Tensor | None = None) -> torch.Tensor:
        """Outputs W2 act(W1 X), one column per sample."""
        self._check(W1, W2)
        X = self.X.to(W1) if X is None else X
        return W2 @ self._act(W1 @ X)

    def loss(self, W1: torch.Tensor, W2: torch.Tensor) -> torch.Tensor:
        """phi = (1/N) sum_i 1/2 ||y_i - f(x_i)||^2 (f* = 0 at the teacher)."""
        R = self.Y.to(W1) - self.forward(W1, W2)
        return 0.5 * R.square().sum() / self.n_samples

    def gradients(self, W1: torch.Tensor, W2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(G1, G2) = (-d phi / d W1, -d phi / d W2), the paper's sign convention."""
        self._check(W1, W2)
        X, Y = self.X.to(W1), self.Y.to(W1)
        Z = W1 @ X
        H = self._act(Z)
        R = (Y - W2 @ H) / self.n_samples
        G2 = R @ H.mT
        back = W2.mT @ R
        if self.activation == "relu":
            back = back * (Z > 0).to(back.dtype)
        return back @ X.mT, G2

    def reversible_terms(self, layer: int, W1: torch.Tensor, W2: torch.Tensor):
        """Stacks (A, B, C) with G_layer = (1/N) sum_i (A_i - B_i W_layer C_i) at (W1, W2)."""
        self._check(W1, W2)
        if layer not in (1, 2):
            raise ValueError(f"layer must be 1 or 2, got {layer!r}")
        X, Y = self.X.to(W1).mT, self.Y.to(W1).mT            # rows are samples
        Z = X @ W1.mT
        H = self._act(Z)
        if layer == 2:
            A = Y[:, :, None] * H[:, None, :]
            B = torch.eye(self.d_out, dtype=W1.dtype).expand(self.n_samples, -1, -1).clone()
            C = H[:, :, None] * H[:, None, :]
            return A, B, C
        D = (Z > 0).to(W1.dtype) if self.activation == "relu" else torch.ones_like(Z)
        Jt_y = D * (Y @ W2)                                   # rows D_i W2^T y_i
        A = Jt_y[:, :, None] * X[:, None, :]
        WtW = W2.mT @ W2
        B = D[:, :, None] * WtW * D[:, None, :]
        C = X[:, :, None] * X[:, None, :]
        return A, B, C

    def reversible_layer(self, layer: int, W1: torch.Tensor, W2: torch.Tensor, **kwargs) -> ReversibleGradient:
        """The layer's gradient frozen at (W1, W2) as a ``ReversibleGradient`` (dense spectrum of S)."""
        return ReversibleGradient(*self.reversible_terms(layer, W1, W2), **kwargs)
