"""Measurement and theory: spectra and kappas, Newton–Schulz error, closed-form bounds, Stiefel Monte Carlo,
rate fits with confidence intervals, OSD Hamiltonian tracking, FLOP counts and sympy derivations.

One idea per module; ``analysis.plotting`` (figures) is imported separately so this package stays free of
matplotlib.
"""
from .bounds import (SUBSET_NORM_RATES, GaLoreLemma33Check, Lemma31Constant, cubic_ns_error,
                     cubic_ns_error_bound, cubic_ns_quadratic_bound, galore_lemma33_bound,
                     galore_lemma33_trajectory, ns_worst_singular_value, stiefel_projector_mean,
                     stiefel_residual_expectation, subset_norm_exponents, subset_norm_regime,
                     sumo_delta_threshold, sumo_lemma31_bound, sumo_lemma31_constant, sumo_lemma31_trajectory,
                     sumo_lemma32_bound, sumo_lemma33_step_size, sumo_remark36_holds)
from .flops import (flops_matmul, flops_ns, flops_ns_step, flops_online_pca_step, flops_qr, flops_qr_gaussian,
                    flops_randomized_svd, flops_svd, sumo_remark37_flops)
from .hamiltonian import (HamiltonianTrajectory, online_pca_gradient, osd_hamiltonian, quadratic_loss,
                          rotation_schedule)
from .orthogonality import (Band, NSError, iterate_polynomial, iterate_polynomial_with_derivative, iterated_band,
                            normalized_singular_values, ns_delta, ns_error, ns_singular_values,
                            polynomial_critical_points)
from .rates import (Comparison, SlopeFit, compare_methods, gradient_norm_summaries, loglog_slope, running_mean,
                    running_min, steps_to_target)
from .spectra import (as_numpy, condition_number, effective_rank, gram_condition_number, numerical_rank,
                      principal_angles, projection_distance, rank_tolerance, singular_values, stable_rank,
                      subspace_overlap, sumo_kappa)
from .stiefel import (MonteCarloEstimate, ProjectorMeanEstimate, mc_projection_residual, mc_projector_mean,
                      sample_stiefel, z_value)
from .symbolic import (Cycle, FixedPoint, Threshold, cubic_error_recursion, find_cycle, fixed_points,
                       level_threshold, odd_polynomial, sumo_flops_expressions, sumo_flops_ratio)

__all__ = [
    # spectra
    "as_numpy", "singular_values", "rank_tolerance", "numerical_rank", "stable_rank", "effective_rank",
    "condition_number", "gram_condition_number", "sumo_kappa", "principal_angles", "subspace_overlap",
    "projection_distance",
    # orthogonality
    "iterate_polynomial", "iterate_polynomial_with_derivative", "polynomial_critical_points", "Band",
    "iterated_band", "NSError", "ns_error", "ns_singular_values", "ns_delta", "normalized_singular_values",
    # bounds
    "sumo_lemma32_bound", "ns_worst_singular_value", "cubic_ns_error", "cubic_ns_error_bound",
    "cubic_ns_quadratic_bound", "galore_lemma33_bound", "galore_lemma33_trajectory", "GaLoreLemma33Check",
    "sumo_lemma31_constant", "Lemma31Constant", "sumo_lemma31_bound", "sumo_lemma31_trajectory",
    "sumo_delta_threshold",
    "sumo_remark36_holds", "sumo_lemma33_step_size", "stiefel_projector_mean", "stiefel_residual_expectation",
    "SUBSET_NORM_RATES", "subset_norm_exponents", "subset_norm_regime",
    # stiefel
    "sample_stiefel", "MonteCarloEstimate", "ProjectorMeanEstimate", "mc_projector_mean",
    "mc_projection_residual", "z_value",
    # rates
    "SlopeFit", "loglog_slope", "steps_to_target", "running_min", "running_mean", "gradient_norm_summaries",
    "Comparison", "compare_methods",
    # hamiltonian
    "HamiltonianTrajectory", "osd_hamiltonian", "online_pca_gradient", "rotation_schedule", "quadratic_loss",
    # flops
    "flops_matmul", "flops_qr", "flops_svd", "flops_randomized_svd", "flops_ns_step", "flops_ns",
    "flops_online_pca_step", "flops_qr_gaussian", "sumo_remark37_flops",
    # symbolic
    "odd_polynomial", "FixedPoint", "fixed_points", "Cycle", "find_cycle", "Threshold", "level_threshold",
    "cubic_error_recursion", "sumo_flops_expressions", "sumo_flops_ratio",
]
