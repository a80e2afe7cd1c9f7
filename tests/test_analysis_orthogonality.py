"""Newton–Schulz error measurements: the band, the scalar map, metamorphic invariances, delta vs Remark 3.6."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from analysis import (iterate_polynomial, iterate_polynomial_with_derivative, iterated_band, level_threshold,
                      normalized_singular_values, ns_delta, ns_error, ns_singular_values,
                      polynomial_critical_points, sumo_delta_threshold, sumo_remark36_holds)
from subspace import COEFFICIENTS, newton_schulz

THRESHOLD_068 = level_threshold(0.68).x_hi  # smallest x0 with p^5(x0) >= 0.68 (certified, ~1.5e-3)


def _orthogonal(rng, k):
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


@st.composite
def above_threshold(draw):
    """M = c U diag(x) V^T with ||x||_2 = 1 and every nonzero x_i >= (1 + 1e-6) * THRESHOLD_068, rank k
    (the rest exactly zero); the smallest x_i is drawn down to the threshold itself."""
    m = draw(st.integers(1, 10))
    n = draw(st.integers(1, 10))
    k = draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    t = draw(st.floats(THRESHOLD_068 * (1 + 1e-6), 1.0 / math.sqrt(k)))
    rest = 10 ** rng.uniform(-2, 0, size=k - 1)
    x = np.concatenate([[t], math.sqrt(1 - t * t) * rest / max(np.linalg.norm(rest), 1e-300)]) if k > 1 else np.ones(1)
    x = np.maximum(x, t)  # guard (cannot bind after the normalisation unless rest has tiny entries)
    x = x / np.linalg.norm(x)
    assert x.min() >= THRESHOLD_068
    c = draw(st.floats(1.0, 1e3))
    U, V = _orthogonal(rng, m)[:, :k], _orthogonal(rng, n)[:, :k]
    return c * (U * x) @ V.T, k


def test_band_of_muon_quintic_matches_reference_numbers():
    # paper-claims §0: x0 in [1e-3, 1] -> [0.4705, 1.2024]; [3e-3, 1] -> [0.6818, 1.2024]; [1e-2, 1] -> [0.6818, 1.1344]
    b = iterated_band(1e-3, 1.0)
    assert (round(b.lo, 4), round(b.hi, 4)) == (0.4705, 1.2024)
    b = iterated_band(3e-3, 1.0)
    assert (round(b.lo, 4), round(b.hi, 4)) == (0.6818, 1.2024)
    b = iterated_band(1e-2, 1.0)
    assert (round(b.lo, 4), round(b.hi, 4)) == (0.6818, 1.1344)
    # exact: endpoints are attained, a dense random sample never leaves the band
    xs = np.random.default_rng(0).uniform(1e-3, 1.0, 200_000)
    ys = iterate_polynomial(xs)
    b1 = iterated_band(1e-3, 1.0)
    assert b1.lo - 1e-12 <= ys.min() and ys.max() <= b1.hi + 1e-12
    assert iterate_polynomial(b1.argmin) == pytest.approx(b1.lo, abs=1e-15)
    assert iterate_polynomial(b1.argmax) == pytest.approx(b1.hi, abs=1e-15)


@given(above_threshold())
def test_ns5_singular_values_land_in_band_above_threshold(case):
    """TRUE: inputs sigma_i/||M||_F >= threshold(0.68) => NS5 output singular values in band(threshold, 1)."""
    M, k = case
    band = iterated_band(THRESHOLD_068, 1.0)
    assert band.lo >= 0.68 - 1e-9 and band.hi <= 1.2024
    sv = ns_singular_values(torch.tensor(M))[:k]
    assert band.contains(sv, tol=1e-8), (sv, band)
    # and exactly where the scalar map puts them
    x = normalized_singular_values(M)[:k]
    np.testing.assert_allclose(sv, np.sort(iterate_polynomial(x))[::-1], atol=1e-8)


def test_below_threshold_singular_values_are_not_orthogonalised():
    # sigma/||G||_F ~ 1e-4: NS5 multiplies by ~3.4445^5 ~ 485 instead of mapping to ~1
    M = np.diag([1.0, 1e-4])
    sv = ns_singular_values(M)
    assert sv[1] == pytest.approx(3.4445 ** 5 * 1e-4, rel=0.02)
    assert sv[1] < 0.68


@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 2 ** 32 - 1), st.sampled_from(["muon", "cubic"]),
       st.integers(0, 6), st.sampled_from(["frobenius", "spectral"]), st.floats(1e-3, 1e3))
def test_ns_error_metamorphic_rotation_and_scaling(m, n, seed, coeffs, steps, normalize, c):
    """Metamorphic: ||E|| is unchanged by M -> U M V (orthogonal) and by M -> c M (c > 0; eps = 0)."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((m, n))
    ref = ns_error(M, steps, coeffs, normalize=normalize, eps=0.0)
    rot = ns_error(_orthogonal(rng, m) @ M @ _orthogonal(rng, n), steps, coeffs, normalize=normalize, eps=0.0)
    sc = ns_error(c * M, steps, coeffs, normalize=normalize, eps=0.0)
    for other in (rot, sc):
        assert other.spectral == pytest.approx(ref.spectral, abs=1e-9)
        assert other.frobenius == pytest.approx(ref.frobenius, abs=1e-9)
        np.testing.assert_allclose(other.singular_values, ref.singular_values, atol=1e-9)


@given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 2 ** 32 - 1), st.sampled_from(["muon", "cubic"]),
       st.integers(0, 6))
def test_matrix_error_equals_scalar_prediction(m, n, seed, coeffs, steps):
    """||E||_2 = max_i |1 - p^k(x_i)|, ||E||_F = sqrt(sum_i (1 - p^k(x_i))^2) on the nonzero singular values."""
    rng = np.random.default_rng(seed)
    k = min(m, n)
    x = 10 ** rng.uniform(-2, 0, size=k)
    M = (_orthogonal(rng, m)[:, :k] * x) @ _orthogonal(rng, n)[:, :k].T
    r = ns_error(M, steps, coeffs)
    e = np.abs(1 - iterate_polynomial(r.inputs, coeffs, steps))
    assert r.rank == k
    assert r.spectral == pytest.approx(e.max(), abs=1e-9)
    assert r.frobenius == pytest.approx(np.sqrt((e ** 2).sum()), abs=1e-9)
    assert r.delta_frobenius == pytest.approx(r.frobenius / math.sqrt(k), rel=1e-12)


def test_scalar_map_matches_newton_schulz_on_diagonal_and_schedules():
    x = np.array([0.9, 0.5, 0.1, 0.01])
    D = torch.tensor(np.diag(x), dtype=torch.float64)
    sched = [(3.0, -2.0, 0.5), (1.5, -0.5), COEFFICIENTS["muon"]]
    out = newton_schulz(D, steps=3, coeffs=sched, normalize="spectral", eps=0.0)
    pred = iterate_polynomial(x / x.max(), sched, 3)
    np.testing.assert_allclose(np.diag(out.numpy()), pred, atol=1e-14)
    orbit = iterate_polynomial(x, "cubic", 4, return_all=True)
    assert orbit.shape == (5, 4)
    y, d = iterate_polynomial_with_derivative(0.3, "muon", 3)
    h = 1e-6
    fd = (iterate_polynomial(0.3 + h, "muon", 3) - iterate_polynomial(0.3 - h, "muon", 3)) / (2 * h)
    assert d == pytest.approx(fd, rel=1e-6)
    xc = polynomial_critical_points(COEFFICIENTS["muon"])
    assert xc[0] == pytest.approx(0.5545, abs=1e-4)
    assert iterate_polynomial_with_derivative(xc, "muon", 1)[1] == pytest.approx(0.0, abs=1e-12)


def test_finding_muon_ns5_delta_violates_remark_36():
    """FINDING: for Muon's NS5 on a Gaussian moment, delta = ||E||_F/||UV^T||_F ~ 0.2 >> 1/(4 sqrt n)."""
    g = torch.Generator().manual_seed(0)
    for (m, n) in [(8, 32), (64, 256)]:
        M = torch.randn(m, n, generator=g, dtype=torch.float64)
        d = ns_delta(M)
        assert 0.1 < d < 0.4
        assert d > sumo_delta_threshold(min(m, n))
        assert not sumo_remark36_holds(d, min(m, n))
    # the bfloat16 path (Muon's published precision) gives about the same delta
    dbf = ns_delta(M, dtype=torch.bfloat16)
    assert abs(dbf - d) < 0.02
