"""Coordinate-noise models with controllable density beta, for Subset-Norm rates (paper-claims §4.1).

The Subset-Norm rates are stated "under coordinate noise sparsity beta" (beta = 0 sparse, beta = 1 dense); the paper's
exact definition is not available to us (a [GAP]), so we use this documented model. For dimension d and beta in [0, 1]:

    k = clamp(round(d^beta), 1, d) noisy coordinates (a support chosen by ``placement``),
    scale s_j = sigma / sqrt(k) on the support, 0 elsewhere,      xi_j = s_j z_j,  z_j iid, E z = 0, E z^2 = 1,

so the noise is unbiased with total variance E||xi||^2 = ||s||_2^2 = sigma^2 for every beta, and the effective support
(||s||_1 / ||s||_2)^2 = k ~ d^beta (i.e. ||s||_1 = d^{beta/2} ||s||_2). z is Gaussian or Rademacher (both
sub-gaussian, as the paper's high-probability analysis assumes).

``CoordinateNoiseProblem`` adds it to a separable smooth non-convex function in dimension d:

    f(x) = sum_j [ lambda/2 (x_j - c_j)^2 + rho h(x_j - c_j) ],   h(u) = u^2 / (1 + u^2),

with h'' in [-1/2, 2], so L = lambda + 2 rho; f* = 0 at x* = c, the unique stationary point (u (lambda + 2 rho /
(1+u^2)^2) = 0 iff u = 0); non-convex iff rho > 2 lambda. Use it to measure iterations-to-epsilon against d for
Subset-Norm subset sizes 1, ~sqrt(d) and d (``subset_sizes``).
"""
from __future__ import annotations

import math

import torch

from ._checks import as_generator, check_batch, check_dtype, check_int, check_real

__all__ = ["noisy_count", "coordinate_noise_scales", "CoordinateNoise", "CoordinateNoiseProblem", "subset_sizes",
           "PLACEMENTS", "DISTRIBUTIONS"]

PLACEMENTS = ("random", "first")
DISTRIBUTIONS = ("gaussian", "rademacher")


def noisy_count(d: int, beta: float) -> int:
    """k = clamp(round(d^beta), 1, d): the number of coordinates that carry noise."""
    d = check_int(d, "d")
    beta = check_real(beta, "beta", minimum=0.0, maximum=1.0)
    return min(d, max(1, int(round(d ** beta))))


def coordinate_noise_scales(d: int, beta: float, sigma: float, generator: torch.Generator | int | None = None, *,
                            placement: str = "random") -> torch.Tensor:
    """Scale vector s (d,): sigma / sqrt(k) on k = noisy_count(d, beta) coordinates, 0 elsewhere (float64).

    ``placement='random'`` picks the support uniformly with ``generator`` (required); ``'first'`` uses 0..k-1.
    """
    k = noisy_count(d, beta)
    sigma = check_real(sigma, "sigma", minimum=0.0)
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    s = torch.zeros(d, dtype=torch.float64)
    if placement == "first":
        support = torch.arange(k)
    else:
        if generator is None:
            raise ValueError("generator is required for placement='random'")
        support = torch.randperm(d, generator=as_generator(generator))[:k]
    s[support] = sigma / math.sqrt(k)
    return s


class CoordinateNoise:
    """xi = s * z, fixed scales s (any shape), z iid Gaussian or Rademacher: E xi = 0, E||xi||^2 = ||s||^2."""

    def __init__(self, scales: torch.Tensor, distribution: str = "gaussian"):
        if not isinstance(scales, torch.Tensor) or not torch.isfinite(scales).all() or (scales < 0).any():
            raise ValueError("scales must be a tensor of finite values >= 0")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        self.scales = scales.double()
        self.distribution = distribution

    @property
    def variance(self) -> float:
        """E||xi||^2 = ||s||_2^2."""
        return float(self.scales.square().sum())

    @property
    def support_size(self) -> int:
        return int((self.scales > 0).sum())

    @property
    def effective_support(self) -> float:
        """(||s||_1 / ||s||_2)^2: k for a flat scale vector on k coordinates."""
        v = self.variance
        return float(self.scales.sum()) ** 2 / v if v > 0 else 0.0

    def sample(self, generator: torch.Generator | int, batch: int = 1, *, dtype: torch.dtype = torch.float64
               ) -> torch.Tensor:
        """One draw of xi (the mean of ``batch`` draws: variance / batch), shaped like ``scales``."""
        gen = as_generator(generator)
        b = check_batch(batch)
        shape = (b, *self.scales.shape)
        if self.distribution == "gaussian":
            z = torch.randn(shape, generator=gen, dtype=torch.float64)
        else:
            z = (torch.randint(0, 2, shape, generator=gen) * 2 - 1).to(torch.float64)
        return (self.scales * z.mean(0)).to(check_dtype(dtype))


def subset_sizes(d: int) -> tuple[int, int, int]:
    """(1, k, d) with k the largest divisor of d that is <= round(sqrt(d)) (equal subsets, like the SN code)."""
    d = check_int(d, "d")
    target = max(1, int(round(math.sqrt(d))))
    k = max(j for j in range(1, target + 1) if d % j == 0)
    return 1, k, d


class CoordinateNoiseProblem:
    """Separable smooth non-convex f in dimension d plus coordinate noise of density beta (module docstring).

    The variable has shape ``shape`` (default (d,); any shape with prod = d, e.g. a matrix for Adam-SN).
    """

    def __init__(self, d: int, beta: float, sigma: float = 1.0, seed: int = 0, *, rho: float = 4.0,
                 curvature: float = 1.0, center_scale: float = 1.0, init_scale: float = 1.0,
                 shape: tuple[int, ...] | None = None, placement: str = "random", distribution: str = "gaussian",
                 dtype: torch.dtype = torch.float64):
        self.d = check_int(d, "d")
        self.beta = check_real(beta, "beta", minimum=0.0, maximum=1.0)
        self.sigma = check_real(sigma, "sigma", minimum=0.0)
        self.seed = check_int(seed, "seed", minimum=0)
        self.rho = check_real(rho, "rho", minimum=0.0)
        self.curvature = check_real(curvature, "curvature", minimum=0.0, strict_min=True)
        self.center_scale = check_real(center_scale, "center_scale", minimum=0.0)
        self.init_scale = check_real(init_scale, "init_scale", minimum=0.0)
        self.dtype = check_dtype(dtype)
        if shape is None:
            shape = (self.d,)
        shape = tuple(shape)
        if not shape or any(not isinstance(s, int) or s < 1 for s in shape) or math.prod(shape) != self.d:
            raise ValueError(f"shape must be a tuple of positive ints with product d = {self.d}, got {shape!r}")
        self.shape = shape
        gen = torch.Generator().manual_seed(self.seed)
        self.center = (self.center_scale * torch.randn(shape, generator=gen, dtype=torch.float64)).to(dtype)
        scales = coordinate_noise_scales(self.d, self.beta, self.sigma, gen, placement=placement)
        self.noise = CoordinateNoise(scales.reshape(shape), distribution)

    @property
    def L(self) -> float:
        """lambda + 2 rho (h'' <= 2; tight at x = c)."""
        return self.curvature + 2 * self.rho

    @property
    def f_star(self) -> float:
        return 0.0

    @property
    def x_star(self) -> torch.Tensor:
        return self.center.clone()

    @property
    def is_nonconvex(self) -> bool:
        """lambda - rho / 2 < 0: negative curvature where |x_j - c_j| = 1."""
        return self.rho > 2 * self.curvature

    @property
    def noisy_coordinates(self) -> int:
        return self.noise.support_size

    def noise_variance(self, batch: int = 1) -> float:
        return self.noise.variance / check_batch(batch)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or tuple(x.shape) != self.shape or \
                x.dtype not in (torch.float32, torch.float64):
            raise ValueError(f"x must be a float32/float64 tensor of shape {self.shape}")
        return x

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        u = self._check(x) - self.center.to(x)
        u2 = u * u
        return (0.5 * self.curvature * u2 + self.rho * u2 / (1 + u2)).sum()

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        u = self._check(x) - self.center.to(x)
        return self.curvature * u + self.rho * 2 * u / (1 + u * u) ** 2

    def stochastic_grad(self, x: torch.Tensor, generator: torch.Generator | int, batch: int = 1) -> torch.Tensor:
        """grad f(x) + xi, xi from the coordinate-noise model (mean of ``batch`` draws)."""
        g = self.grad(x)
        return g + self.noise.sample(generator, batch).to(device=x.device, dtype=x.dtype)

    def x0(self, generator: torch.Generator | int) -> torch.Tensor:
        """c + init_scale * randn(shape) from ``generator`` (Delta = f(x0) grows like d)."""
        gen = as_generator(generator)
        z = torch.randn(self.shape, generator=gen, dtype=torch.float64)
        return (self.center.double() + self.init_scale * z).to(self.dtype)
