"""GoLore's counterexample, problem (1) (He et al. 2025, §3; official simulation ``pkumelon/Golore exp/main.py``).

With p = n - r, A = [I_p, 0] in R^{p x n}, B = [[B_11, 0], [0, 0]] (B_11 = sigma * randn(p, p)) and
C = diag(0_p, I_r):

    f(X) = 1/2 ||A X||_F^2 + <B, X>,          grad f(X) = A^T A X + B = [[X_11 + B_11, X_12], [0, 0]],
    g(X; xi) = grad f(X) + xi * sigma * C,    xi = +-1 with probability 1/2 (one Rademacher scalar per draw).

A batch of b draws averages b independent xi (the "L.B. GaLore" variant; noise variance r sigma^2 / b).
f is L-smooth with L = ||A^T A||_2 = 1 and f* = -1/2 ||B_11||_F^2, attained on the affine set
{X : X_11 = -B_11, X_12 = 0} (the bottom r rows are free; ``x_star`` fixes them at 0).

Why GaLore stalls (paper-claims §2.1, §6.4): the noise sigma*C has r singular values equal to sigma in the bottom
rows. When X_12 = 0 (true at the official init and preserved by GaLore's block-diagonal updates) the stochastic
gradient is block diagonal, so if every singular value of grad f(X) is < sigma its top-r left singular vectors
are e_{p+1..n} and P^T grad f(X) = 0: the informative top block is never updated.

Random draws follow the official script exactly: one generator seeded with ``seed`` draws B_11 = randn(p, p) and
then X0's bottom block randn(r, n), both in float32 as the script does, then cast to ``dtype``; so seed 42 gives the
official problem bit for bit (f* = -23.2174... for n=10, r=4, sigma=1).

``noise_sigma`` (default: ``sigma``, the paper's coupling) sets the noise scale alone: the gradient noise is
xi * noise_sigma * C while B_11 and X0 keep the scale ``sigma``.  It lets a claim choose the ratio of the noise to
the initial gradient (GoLore's rate claims) without changing the problem's draw.
"""
from __future__ import annotations

import torch

from ._checks import as_generator, check_batch, check_dtype, check_int, check_matrix, check_real

__all__ = ["GoLoreCounterexample"]


class GoLoreCounterexample:
    """GoLore problem (1) with its constants: ``L`` = 1, ``f_star``, ``x_star`` and the GaLore stall test."""

    def __init__(self, n: int = 10, r: int = 4, sigma: float = 1.0, seed: int = 42,
                 dtype: torch.dtype = torch.float64, *, noise_sigma: float | None = None):
        self.n = check_int(n, "n", minimum=2)
        self.r = check_int(r, "r", minimum=1, maximum=self.n - 1)
        self.sigma = check_real(sigma, "sigma", minimum=0.0, strict_min=True)
        self.seed = check_int(seed, "seed", minimum=0)
        self.noise_sigma = self.sigma if noise_sigma is None else check_real(noise_sigma, "noise_sigma", minimum=0.0)
        self.dtype = check_dtype(dtype)
        p, n, r = self.n - self.r, self.n, self.r
        gen = torch.Generator().manual_seed(self.seed)
        # Official order and dtype: B first, then X0's random bottom block, both float32.
        B11 = torch.randn(p, p, generator=gen) * self.sigma
        bottom = torch.randn(r, n, generator=gen) * self.sigma
        self.A = torch.cat([torch.eye(p), torch.zeros(p, r)], dim=1).to(dtype)
        self.B = torch.zeros(n, n, dtype=dtype)
        self.B[:p, :p] = B11.to(dtype)
        self.C = torch.zeros(n, n, dtype=dtype)
        self.C[p:, p:] = torch.eye(r, dtype=dtype)
        self._x0 = torch.zeros(n, n, dtype=dtype)
        self._x0[:p, :p] = self.sigma / 2 * torch.eye(p, dtype=dtype)
        self._x0[p:, :] = bottom.to(dtype)

    # ----------------------------------------------------------------------------------------------- constants
    @property
    def p(self) -> int:
        """Number of informative rows, n - r."""
        return self.n - self.r

    @property
    def L(self) -> float:
        """Smoothness constant ||A^T A||_2 = 1 (the Hessian is A^T A acting on the rows of X)."""
        return 1.0

    @property
    def f_star(self) -> float:
        """Optimal value -1/2 ||B_11||_F^2 (computed in float64)."""
        return -0.5 * float(self.B.double().square().sum())

    @property
    def x_star(self) -> torch.Tensor:
        """A minimiser: X_11 = -B_11, X_12 = 0, bottom rows 0 (they are free; every such X is optimal)."""
        return -self.B.clone()

    def noise_variance(self, batch: int = 1) -> float:
        """E||g(X; xi) - grad f(X)||_F^2 = r noise_sigma^2 / batch."""
        return self.r * self.noise_sigma ** 2 / check_batch(batch)

    # ----------------------------------------------------------------------------------------------- oracle
    def _consts(self, X: torch.Tensor):
        check_matrix(X, (self.n, self.n))
        return (self.A.to(device=X.device, dtype=X.dtype), self.B.to(device=X.device, dtype=X.dtype))

    def loss(self, X: torch.Tensor) -> torch.Tensor:
        """f(X) = 1/2 ||A X||_F^2 + <B, X> (differentiable; in X's dtype)."""
        A, B = self._consts(X)
        AX = A @ X
        return 0.5 * (AX * AX).sum() + (B * X).sum()

    def grad(self, X: torch.Tensor) -> torch.Tensor:
        """grad f(X) = A^T A X + B."""
        A, B = self._consts(X)
        return A.mT @ (A @ X) + B

    def noise(self, generator: torch.Generator | int, batch: int = 1, *, like: torch.Tensor | None = None
              ) -> torch.Tensor:
        """xi_bar * noise_sigma * C with xi_bar the mean of ``batch`` independent Rademacher draws from ``generator``."""
        gen = as_generator(generator)
        b = check_batch(batch)
        xi = torch.randint(0, 2, (b,), generator=gen, dtype=torch.int64) * 2 - 1
        xi_bar = xi.to(torch.float64).mean()
        dtype = like.dtype if like is not None else self.dtype
        device = like.device if like is not None else None
        return (xi_bar * self.noise_sigma * self.C.double()).to(dtype=dtype, device=device)

    def stochastic_grad(self, X: torch.Tensor, generator: torch.Generator | int, batch: int = 1) -> torch.Tensor:
        """Unbiased stochastic gradient grad f(X) + xi_bar noise_sigma C (batch b averages b Rademacher draws)."""
        return self.grad(X) + self.noise(generator, batch, like=X)

    def x0(self) -> torch.Tensor:
        """The official initial point (a fresh copy): X0[:p] = sigma/2 [I_p, 0], X0[p:] = sigma * randn(r, n)."""
        return self._x0.clone()

    # ----------------------------------------------------------------------------------------------- mechanism
    def optimality_gap(self, X: torch.Tensor) -> float:
        """f(X) - f* (>= 0), evaluated in float64."""
        return float(self.loss(X.detach().double())) - self.f_star

    def galore_stall_condition(self, X: torch.Tensor) -> bool:
        """True iff every singular value of the true gradient is < noise_sigma (paper-claims §2.1 mechanism).

        When it holds and X_12 = 0, the top-r left singular subspace of any stochastic gradient is exactly
        span(e_{p+1}, ..., e_n), so GaLore's projected true gradient P^T grad f(X) vanishes.
        """
        G = self.grad(X.detach().double())
        return bool(torch.linalg.matrix_norm(G, ord=2) < self.noise_sigma)

    def projected_true_gradient(self, X: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
        """P^T grad f(X) for a left basis P (n x k): what a left-projected method sees of the true gradient."""
        G = self.grad(X)
        return P.to(G).mT @ G
