"""The shared optimizer core: projector x base update x orthogonalizer x outer step, as torch optimizers.

    opt = subspace.GaLore(model, lr=1e-2, rank=128)          # or subspace.make("galore", model, ...)

``available()`` lists the presets; each has a typed constructor (``CONSTRUCTORS[name]``: ``AdamW``, ``GaLore``,
``GoLore``, ``GaLoreSGDM``, ``GoLoreSGDM``, ``SUMO``, ``SUMONS5``, ``Muon``, ``OSD``, ``AdamSN``, ``AdamSNSM``) whose
signature and docstring give every key it reads, its default, the equations, the source and the state size.
"""
from .bases import randomized_svd_basis, stiefel, svd_basis
from .config import DTYPES
from .groups import as_groups, param_groups
from .fused import fuse_into_backward
from .optimizer import SubspaceOptimizer
from .orthogonalize import COEFFICIENTS, newton_schulz, polar
from .presets import (CONSTRUCTORS, PRESETS, AdamSN, AdamSNSM, AdamW, GaLore, GaLoreSGDM, GoLore, GoLoreSGDM, Muon,
                      OSD, PresetOptimizer, SUMO, SUMONS5, available, make, moment_numel, state_bytes, state_numel)

__all__ = ["available", "make", "param_groups", "as_groups", "state_numel", "state_bytes", "moment_numel", "fuse_into_backward", "PRESETS", "CONSTRUCTORS",
           "SubspaceOptimizer", "PresetOptimizer", "AdamW", "GaLore", "GoLore", "GaLoreSGDM", "GoLoreSGDM", "SUMO",
           "SUMONS5", "Muon", "OSD", "AdamSN", "AdamSNSM", "DTYPES", "polar", "newton_schulz", "COEFFICIENTS",
           "stiefel", "svd_basis", "randomized_svd_basis"]
from .factorized import FactorizedLinear, FactorizedOptimizer, factorize, make_factorized, unfactorize  # noqa: E402
__all__ += ["make_factorized", "factorize", "unfactorize", "FactorizedLinear", "FactorizedOptimizer"]
