"""Smooth non-convex matrix problems with known L, a known lower bound and known gradient-noise variance.

For A in R^{p x m}, Y in R^{p x n}, W in R^{m x n} and rho >= 0 (cf. GoLore assumptions A1-A3, paper-claims §2.2):

    f(W) = 1/2 ||A W - Y||_F^2 + rho * sum_ij h(W_ij),     h(x) = x^2 / (1 + x^2),
    grad f(W) = A^T (A W - Y) + rho * h'(W),             h'(x) = 2x / (1 + x^2)^2.

Constants (derived in the docstrings below):
* h''(x) = (2 - 6x^2) / (1 + x^2)^3 lies in [-1/2, 2] (max at x = 0, min at x^2 = 1), so the Hessian
  A^T A (x) I + rho diag(h''(W_ij)) has eigenvalues in [lambda_min(A^T A) - rho/2, ||A||_2^2 + 2 rho]:
  L = ||A||_2^2 + 2 rho, attained at W = 0 (tight). f is non-convex iff rho/2 > lambda_min(A^T A).
* f >= f_lower = 1/2 ||(I - A A^+) Y||_F^2 (least-squares residual; the regulariser is >= 0).
* Noise: g(W; z) = grad f(W) + sigma / sqrt(mn) * z, z ~ N(0, I): unbiased, E||g - grad f||_F^2 = sigma^2
  (sigma^2 / b for a batch average of b draws).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from ._checks import as_generator, check_batch, check_dtype, check_int, check_matrix, check_real
from .spectra import CONDITION_KINDS, sample_spectral_matrix, with_condition_number

__all__ = ["SmoothMatrixProblem"]


class SmoothMatrixProblem:
    """f(W) = 1/2 ||A W - Y||_F^2 + rho sum h(W_ij) with ``L``, ``f_lower``, ``sigma`` (see module docstring)."""

    def __init__(self, A: torch.Tensor, Y: torch.Tensor, rho: float = 0.5, sigma: float = 0.1, *,
                 init_scale: float = 1.0):
        if not isinstance(A, torch.Tensor) or A.ndim != 2 or A.dtype not in (torch.float32, torch.float64):
            raise ValueError("A must be a 2-D float32/float64 tensor")
        if not isinstance(Y, torch.Tensor) or Y.ndim != 2 or Y.shape[0] != A.shape[0]:
            raise ValueError(f"Y must be a 2-D tensor with {A.shape[0]} rows (A's rows)")
        self.A, self.Y = A, Y.to(A.dtype)
        self.p, self.m = A.shape
        self.n = Y.shape[1]
        self.dtype = A.dtype
        self.rho = check_real(rho, "rho", minimum=0.0)
        self.sigma = check_real(sigma, "sigma", minimum=0.0)
        self.init_scale = check_real(init_scale, "init_scale", minimum=0.0)
        Ad = A.double()
        s = torch.linalg.svdvals(Ad)
        self.singular_values_A = s
        self._L = float(s[0]) ** 2 + 2 * self.rho
        self._lmin_AtA = float(s[-1]) ** 2 if self.p >= self.m else 0.0
        resid = Y.double() - Ad @ torch.linalg.lstsq(Ad, Y.double(), driver="gelsd").solution
        self._f_lower = 0.5 * float(resid.square().sum())

    # ------------------------------------------------------------------------------------------- constructors
    @classmethod
    def random(cls, m: int = 16, n: int = 8, p: int = 12, rho: float = 0.5, sigma: float = 0.1,
               generator: torch.Generator | int = 0, *, label_noise: float = 0.1, init_scale: float = 1.0,
               dtype: torch.dtype = torch.float64) -> "SmoothMatrixProblem":
        """A = randn(p, m)/sqrt(p), Y = A W_true + label_noise * randn(p, n) with W_true = randn(m, n)."""
        m, n, p = check_int(m, "m"), check_int(n, "n"), check_int(p, "p")
        gen = as_generator(generator)
        dtype = check_dtype(dtype)
        label_noise = check_real(label_noise, "label_noise", minimum=0.0)
        A = torch.randn(p, m, generator=gen, dtype=torch.float64) / math.sqrt(p)
        W_true = torch.randn(m, n, generator=gen, dtype=torch.float64)
        Y = A @ W_true + label_noise * torch.randn(p, n, generator=gen, dtype=torch.float64)
        return cls(A.to(dtype), Y.to(dtype), rho, sigma, init_scale=init_scale)

    @classmethod
    def with_spectrum(cls, singular_values: Sequence[float] | torch.Tensor, m: int, n: int, p: int | None = None,
                      rho: float = 0.5, sigma: float = 0.1, generator: torch.Generator | int = 0, *,
                      label_noise: float = 0.1, init_scale: float = 1.0, dtype: torch.dtype = torch.float64
                      ) -> "SmoothMatrixProblem":
        """A (p x m, default p = m) with the prescribed singular values and Haar singular vectors."""
        m, n = check_int(m, "m"), check_int(n, "n")
        p = m if p is None else check_int(p, "p")
        gen = as_generator(generator)
        dtype = check_dtype(dtype)
        label_noise = check_real(label_noise, "label_noise", minimum=0.0)
        A = sample_spectral_matrix(singular_values, p, m, gen).matrix
        W_true = torch.randn(m, n, generator=gen, dtype=torch.float64)
        Y = A @ W_true + label_noise * torch.randn(p, n, generator=gen, dtype=torch.float64)
        return cls(A.to(dtype), Y.to(dtype), rho, sigma, init_scale=init_scale)

    @classmethod
    def ill_conditioned(cls, kappa: float, m: int = 16, n: int = 8, rho: float = 0.5, sigma: float = 0.1,
                        generator: torch.Generator | int = 0, *, kind: str = "geometric", top: float = 1.0,
                        **kwargs) -> "SmoothMatrixProblem":
        """Square A (m x m) with s_1(A) / s_m(A) = kappa (spectrum shape ``kind``, see spectra.CONDITION_KINDS)."""
        if kind not in CONDITION_KINDS:
            raise ValueError(f"kind must be one of {CONDITION_KINDS}, got {kind!r}")
        s = with_condition_number(kappa, check_int(m, "m"), kind=kind, top=top)
        return cls.with_spectrum(s, m, n, None, rho, sigma, generator, **kwargs)

    # ------------------------------------------------------------------------------------------- constants
    @property
    def L(self) -> float:
        """Smoothness ||A||_2^2 + 2 rho (tight: the Hessian at W = 0 has this top eigenvalue)."""
        return self._L

    @property
    def f_lower(self) -> float:
        """Lower bound 1/2 ||(I - A A^+) Y||_F^2 <= inf f."""
        return self._f_lower

    @property
    def is_nonconvex(self) -> bool:
        """rho / 2 > lambda_min(A^T A): the Hessian at |W_ij| = 1 has a negative eigenvalue."""
        return self.rho / 2 > self._lmin_AtA

    @property
    def condition_number(self) -> float:
        """s_1(A) / s_min(A) (inf when A^T A is singular)."""
        return float(self.singular_values_A[0]) / self._lmin_AtA ** 0.5 if self._lmin_AtA > 0 else math.inf

    def noise_variance(self, batch: int = 1) -> float:
        """E||g - grad f||_F^2 = sigma^2 / batch."""
        return self.sigma ** 2 / check_batch(batch)

    # ------------------------------------------------------------------------------------------- oracle
    def loss(self, W: torch.Tensor) -> torch.Tensor:
        check_matrix(W, (self.m, self.n), "W")
        R = self.A.to(W) @ W - self.Y.to(W)
        W2 = W * W
        return 0.5 * (R * R).sum() + self.rho * (W2 / (1 + W2)).sum()

    def grad(self, W: torch.Tensor) -> torch.Tensor:
        check_matrix(W, (self.m, self.n), "W")
        A = self.A.to(W)
        return A.mT @ (A @ W - self.Y.to(W)) + self.rho * 2 * W / (1 + W * W) ** 2

    def stochastic_grad(self, W: torch.Tensor, generator: torch.Generator | int, batch: int = 1) -> torch.Tensor:
        """grad f(W) + sigma / sqrt(mn) * mean of ``batch`` standard Gaussian matrices (drawn on the CPU)."""
        gen = as_generator(generator)
        b = check_batch(batch)
        z = torch.randn(b, self.m, self.n, generator=gen, dtype=torch.float64).mean(0)
        noise = self.sigma / math.sqrt(self.m * self.n) * z
        return self.grad(W) + noise.to(device=W.device, dtype=W.dtype)

    def x0(self, generator: torch.Generator | int) -> torch.Tensor:
        """Initial point init_scale * randn(m, n) from ``generator``."""
        gen = as_generator(generator)
        return (self.init_scale * torch.randn(self.m, self.n, generator=gen, dtype=torch.float64)).to(self.dtype)
