"""The shared optimizer core: projectors x base updates x orthogonalizers x outer step, as torch optimizers."""
from .bases import randomized_svd_basis, stiefel, svd_basis
from .orthogonalize import COEFFICIENTS, newton_schulz, polar

__all__ = ["polar", "newton_schulz", "COEFFICIENTS", "stiefel", "svd_basis", "randomized_svd_basis"]
