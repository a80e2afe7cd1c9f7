"""Problem generators that carry their known constants (L, f*, spectra, optima, noise variances).

One idea per module: ``golore`` (GoLore counterexample, problem (1)), ``reversible`` (reversible-layer gradients,
GaLore Lemma 3.3 / SUMO Lemma 3.1), ``spectra`` (matrices with prescribed singular values), ``smooth`` (smooth
non-convex matrix problems with known L and noise), ``noise`` (Subset-Norm coordinate-noise models).
Every random draw takes an explicit ``torch.Generator`` or seed; nothing touches the global RNG.
"""
from .golore import GoLoreCounterexample
from .noise import (CoordinateNoise, CoordinateNoiseProblem, coordinate_noise_scales, noisy_count,
                    subset_sizes)
from .reversible import (ReversibleGradient, ReversibleLayer, TwoLayerNet, moment_trajectory, rank_one_residual,
                         stable_rank)
from .smooth import SmoothMatrixProblem
from .spectra import (CONDITION_KINDS, SpectralMatrix, clustered_spectrum, geometric_spectrum,
                      matrix_with_spectrum, power_law_spectrum, rank_deficient_spectrum, sample_spectral_matrix,
                      with_condition_number)

__all__ = [
    "GoLoreCounterexample",
    "ReversibleGradient", "ReversibleLayer", "TwoLayerNet", "stable_rank", "rank_one_residual",
    "moment_trajectory",
    "SpectralMatrix", "sample_spectral_matrix", "matrix_with_spectrum", "geometric_spectrum",
    "power_law_spectrum", "clustered_spectrum", "rank_deficient_spectrum", "with_condition_number",
    "CONDITION_KINDS",
    "SmoothMatrixProblem",
    "CoordinateNoise", "CoordinateNoiseProblem", "coordinate_noise_scales", "noisy_count", "subset_sizes",
]
