"""GoLore's Stiefel identities by Monte Carlo, inside their confidence intervals (paper-claims §2.5).

The property tests use level 1 - 1e-6 (Bonferroni-corrected over entries for the matrix identity), so a correct
implementation fails an example with probability about 1e-6; they are also derandomized so every run draws the
same examples.
"""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import mc_projection_residual, mc_projector_mean, sample_stiefel, z_value

LEVEL = 1 - 1e-6


@settings(derandomize=True)
@given(st.integers(1, 12), st.data(), st.integers(0, 2 ** 31 - 1), st.sampled_from(["qr", "polar"]))
def test_projector_mean_is_r_over_m_identity(m, data, seed, sampler):
    r = data.draw(st.integers(1, m))
    est = mc_projector_mean(m, r, 2000, torch.Generator().manual_seed(seed), level=LEVEL, sampler=sampler)
    assert est.within_ci, (est.max_deviation, est.halfwidth.max())
    assert est.max_deviation < 0.1
    np.testing.assert_allclose(np.trace(est.mean), r, atol=1e-9)  # trace(P P^T) = r for every sample


@settings(derandomize=True)
@given(st.integers(1, 10), st.integers(1, 6), st.data(), st.integers(0, 2 ** 31 - 1),
       st.sampled_from(["qr", "polar"]))
def test_projection_residual_expectation(m, n, data, seed, sampler):
    r = data.draw(st.integers(1, m))
    G = np.random.default_rng(seed).standard_normal((m, n)) * data.draw(st.floats(0.1, 10.0))
    est = mc_projection_residual(G, r, 2000, torch.Generator().manual_seed(seed), level=LEVEL, sampler=sampler)
    assert est.contains_target, (est.mean, est.target, est.stderr)
    assert est.target == pytest.approx((1 - r / m) * (G ** 2).sum())


@pytest.mark.parametrize("sampler", ["qr", "polar"])
def test_samples_are_orthonormal_and_reproducible(sampler):
    P = sample_stiefel(9, 4, 50, torch.Generator().manual_seed(3), sampler=sampler)
    eye = torch.eye(4, dtype=P.dtype)
    assert torch.allclose(P.mT @ P, eye.expand(50, 4, 4), atol=1e-12)
    P2 = sample_stiefel(9, 4, 50, torch.Generator().manual_seed(3), sampler=sampler)
    assert torch.equal(P, P2)


def test_confidence_interval_is_calibrated():
    """Coverage of the 90% CI over 200 independent replications lies in a binomial acceptance region
    (Binomial(200, 0.9) has sd ~4.2; [167, 193] is about +-3 sd)."""
    G = np.random.default_rng(0).standard_normal((6, 3))
    g = torch.Generator().manual_seed(123)
    hits = sum(mc_projection_residual(G, 2, 300, g, level=0.9).contains_target for _ in range(200))
    assert 167 <= hits <= 193


def test_wrong_target_is_detected():
    """Power: a Gaussian (not orthonormal) P would give E||P P^T G - G||^2 != (1 - r/m)||G||^2; a biased
    estimate (2 x the mean) falls outside the CI."""
    G = np.random.default_rng(1).standard_normal((8, 4))
    est = mc_projection_residual(G, 3, 4000, torch.Generator().manual_seed(0), level=LEVEL)
    assert not (est.ci_low <= 0.5 * est.target <= est.ci_high)
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
