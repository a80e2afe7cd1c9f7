"""Properties of analysis.spectra: rank summaries, the kappas and principal angles."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from analysis import (condition_number, effective_rank, gram_condition_number, numerical_rank, principal_angles,
                      projection_distance, singular_values, stable_rank, subspace_overlap, sumo_kappa)


def _orthogonal(rng, k):
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


@st.composite
def low_rank_matrices(draw):
    """A nonzero m x n matrix of exact rank k (product of Gaussian factors), 1 <= k <= min(m, n) <= 8."""
    m = draw(st.integers(1, 8))
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    scale = draw(st.floats(1e-3, 1e3))
    return scale * rng.standard_normal((m, k)) @ rng.standard_normal((k, n)), k


@st.composite
def conditioned_wide(draw):
    """m x n (m <= n) matrix U diag(s) V^T with s log-uniform in [1/kappa, 1], kappa(M) <= 1e3."""
    m = draw(st.integers(1, 6))
    n = draw(st.integers(m, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    log_kappa = draw(st.floats(0.0, 3.0))
    s = np.sort(10 ** (-log_kappa * rng.random(m)))[::-1]
    s[0], s[-1] = 1.0, 10 ** (-log_kappa) if m > 1 else 1.0
    U, V = _orthogonal(rng, m), _orthogonal(rng, n)[:, :m]
    return (U * s) @ V.T, s


@given(low_rank_matrices())
def test_stable_and_effective_rank_between_one_and_rank(case):
    M, k = case
    assert numerical_rank(M) == k
    sr, er = stable_rank(M), effective_rank(M)
    tol = 1e-10
    assert 1 - tol <= sr <= k + tol
    assert 1 - tol <= er <= k + tol


def test_ranks_equal_k_for_flat_spectrum():
    rng = np.random.default_rng(0)
    Q = _orthogonal(rng, 7)[:, :4]
    M = 3.0 * Q @ _orthogonal(rng, 4)
    assert stable_rank(M) == pytest.approx(4.0, rel=1e-12)
    assert effective_rank(M) == pytest.approx(4.0, rel=1e-12)


@given(conditioned_wide())
def test_kappa_relationships(case):
    M, s = case
    kM = condition_number(M)
    assert kM == pytest.approx(s[0] / s[-1], rel=1e-9)
    # kappa(M M^T) = kappa(M)^2, both from the explicit Gram matrix and from the helper
    assert condition_number(M @ M.T) == pytest.approx(kM ** 2, rel=1e-6)
    assert gram_condition_number(M) == pytest.approx(kM ** 2, rel=1e-12)
    # SUMO's kappa_M = 1 - 1/sr and its variants
    sr = stable_rank(M)
    assert sumo_kappa(M) == pytest.approx(1 - 1 / sr, rel=1e-9, abs=1e-14)
    assert sumo_kappa(M, normalize="spectral") == pytest.approx(sr - 1, rel=1e-9, abs=1e-14)
    assert sumo_kappa(M, squared=False) == pytest.approx(math.sqrt(max(1 - 1 / sr, 0)), rel=1e-7, abs=1e-7)
    # kappa_M is the relative error of the best rank-one approximation, computed explicitly
    U, sv, Vt = np.linalg.svd(M)
    R = M - sv[0] * np.outer(U[:, 0], Vt[0])
    assert sumo_kappa(M) == pytest.approx((R ** 2).sum() / (M ** 2).sum(), rel=1e-8, abs=1e-14)


@given(conditioned_wide(), st.floats(1e-3, 1e3), st.integers(0, 2 ** 32 - 1))
def test_kappas_invariant_under_rotation_and_scaling(case, c, seed):
    M, _ = case
    rng = np.random.default_rng(seed)
    N = c * _orthogonal(rng, M.shape[0]) @ M @ _orthogonal(rng, M.shape[1])
    assert condition_number(N) == pytest.approx(condition_number(M), rel=1e-8)
    assert stable_rank(N) == pytest.approx(stable_rank(M), rel=1e-10)
    assert effective_rank(N) == pytest.approx(effective_rank(M), rel=1e-10)
    assert sumo_kappa(N) == pytest.approx(sumo_kappa(M), rel=1e-8, abs=1e-13)


def test_rank_deficient_condition_number_uses_nonzero_singular_values():
    M = np.diag([4.0, 2.0, 0.0])
    assert condition_number(M) == pytest.approx(2.0)
    assert numerical_rank(M) == 2
    assert math.isnan(condition_number(np.zeros((3, 2))))
    assert math.isnan(stable_rank(np.zeros((3, 2))))
    assert math.isnan(effective_rank(np.zeros((3, 2))))
    assert math.isnan(sumo_kappa(np.zeros((2, 2))))


def test_rank_tolerance_follows_input_dtype():
    # 1e-9 relative is noise for float32 (eps ~1.2e-7) but signal for float64
    M = np.diag([1.0, 1e-9])
    assert numerical_rank(M) == 2
    assert numerical_rank(torch.tensor(M, dtype=torch.float32)) == 1
    assert condition_number(torch.tensor(M, dtype=torch.float32)) == pytest.approx(1.0)


def test_batched_matches_per_matrix():
    rng = np.random.default_rng(1)
    Ms = rng.standard_normal((5, 4, 6))
    np.testing.assert_allclose(stable_rank(Ms), [stable_rank(M) for M in Ms], rtol=1e-12)
    np.testing.assert_allclose(effective_rank(Ms), [effective_rank(M) for M in Ms], rtol=1e-12)
    np.testing.assert_allclose(condition_number(Ms), [condition_number(M) for M in Ms], rtol=1e-12)
    np.testing.assert_allclose(sumo_kappa(Ms), [sumo_kappa(M) for M in Ms], rtol=1e-12)
    np.testing.assert_allclose(singular_values(torch.tensor(Ms)), singular_values(Ms), rtol=1e-12)


@given(st.integers(2, 9), st.integers(0, 2 ** 32 - 1), st.floats(1e-9, math.pi / 2))
def test_principal_angles_known_angle(k, seed, theta):
    rng = np.random.default_rng(seed)
    Q = _orthogonal(rng, k)
    a = Q[:, :1]
    b = math.cos(theta) * Q[:, :1] + math.sin(theta) * Q[:, 1:2]
    got = principal_angles(a, 5.0 * b)
    assert got.shape == (1,)
    assert got[0] == pytest.approx(theta, rel=1e-7, abs=1e-12)  # small angles keep relative accuracy
    assert projection_distance(a, b) == pytest.approx(math.sin(theta), rel=1e-7, abs=1e-12)


@given(st.integers(1, 8), st.integers(0, 2 ** 32 - 1), st.data())
def test_principal_angles_invariances(k, seed, data):
    m = data.draw(st.integers(k, 10))
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, k))
    R = rng.standard_normal((k, k)) + 3 * np.eye(k)  # invertible: same span
    np.testing.assert_allclose(principal_angles(A, A @ R), 0.0, atol=1e-6)
    assert subspace_overlap(A, A @ R) == pytest.approx(1.0, abs=1e-10)
    if k < m:
        Q = np.linalg.qr(A, mode="complete")[0]
        np.testing.assert_allclose(principal_angles(A, Q[:, k:]), math.pi / 2, atol=1e-10)
        B = rng.standard_normal((m, k))
        np.testing.assert_allclose(principal_angles(A, B), principal_angles(B, A), atol=1e-10)
        th = principal_angles(A, B)
        assert np.all(np.diff(th) >= -1e-12) and np.all((th >= 0) & (th <= math.pi / 2 + 1e-12))
        assert subspace_overlap(A, B) == pytest.approx(
            np.linalg.norm(np.linalg.qr(A)[0].T @ np.linalg.qr(B)[0]) ** 2 / k, rel=1e-9)
