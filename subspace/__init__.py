"""The shared optimizer core: projector x base update x orthogonalizer x outer step, as torch optimizers.

    opt = subspace.make("galore", subspace.param_groups(model), lr=1e-2, rank=128)

``available()`` lists the presets; ``PRESETS[name].doc`` states each one's equations and state-size formula.
"""
from .bases import randomized_svd_basis, stiefel, svd_basis
from .config import DTYPES
from .groups import param_groups
from .optimizer import SubspaceOptimizer
from .orthogonalize import COEFFICIENTS, newton_schulz, polar
from .presets import PRESETS, available, make, state_numel

__all__ = ["available", "make", "param_groups", "state_numel", "PRESETS", "SubspaceOptimizer", "DTYPES",
           "polar", "newton_schulz", "COEFFICIENTS", "stiefel", "svd_basis", "randomized_svd_basis"]
