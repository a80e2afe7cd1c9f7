"""Closed-form bounds: TRUE ones are tested as properties, violated ones are asserted as findings."""
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from analysis import (SUBSET_NORM_RATES, condition_number, cubic_ns_error, cubic_ns_error_bound,
                      cubic_ns_quadratic_bound, galore_lemma33_bound, galore_lemma33_trajectory,
                      gram_condition_number, ns_error, ns_worst_singular_value, stiefel_projector_mean,
                      stiefel_residual_expectation, subset_norm_exponents, subset_norm_regime,
                      sumo_delta_threshold, sumo_lemma31_bound, sumo_lemma31_constant, sumo_lemma31_trajectory,
                      sumo_lemma32_bound, sumo_lemma33_step_size, sumo_remark36_holds)


def _orthogonal(rng, k):
    Q, R = np.linalg.qr(rng.standard_normal((k, k)))
    return Q * np.sign(np.diag(R))


def _matrix_with_spectrum(rng, m, n, s):
    k = len(s)
    return (_orthogonal(rng, m)[:, :k] * np.asarray(s)) @ _orthogonal(rng, n)[:, :k].T


# ------------------------------------------------------------------------------------------------ SUMO Lemma 3.2

def test_finding_literal_sumo_lemma32_fails_for_cubic_ns_at_kappa_10():
    """FINDING (paper-claims §1.4): with kappa the condition number of the matrix NS iterates on (the proof's
    X_0 = B/||B||_2 reading), the bound (1 - 1/kappa)^(2^i) is violated by the classical cubic iteration:
    kappa = 10, i = 5: measured ||E_5||_2 = 0.3413 vs bound 0.0343 (10x)."""
    rng = np.random.default_rng(0)
    A = _matrix_with_spectrum(rng, 8, 8, np.geomspace(1.0, 0.1, 8))
    kappa = condition_number(A)
    assert kappa == pytest.approx(10.0)
    r = ns_error(A, 5, "cubic", normalize="spectral", eps=0.0)
    bound = sumo_lemma32_bound(kappa, 5)
    assert bound == pytest.approx(0.0343, abs=1e-4)
    assert r.spectral == pytest.approx(0.3413, abs=1e-4)
    assert r.spectral > 9 * bound                                        # violated
    assert r.frobenius > sumo_lemma32_bound(kappa, 5, r=8, norm="frobenius")
    # the measured error is exactly the scalar recursion e_{k+1} = e_k^2 (3 - e_k)/2
    assert r.spectral == pytest.approx(cubic_ns_error_bound(10.0, 5, kappa_of="input"), abs=1e-10)
    # also violated at kappa = 100 and 1000 (paper-claims: 0.924 vs 0.725, 0.992 vs 0.969)
    for kap, true, bnd in [(100.0, 0.9242, 0.7250), (1000.0, 0.9924, 0.9685)]:
        assert cubic_ns_error_bound(kap, 5) == pytest.approx(true, abs=1e-4)
        assert sumo_lemma32_bound(kap, 5) == pytest.approx(bnd, abs=1e-4)


def test_finding_sumo_lemma32_fails_with_frobenius_normalisation_and_for_muon():
    """FINDING: with Muon's Frobenius pre-normalisation the bound fails even at kappa = 1 (A = I_4: bound 0,
    error > 0), and Muon's quintic never drives the error to 0 (kappa = 1, 5 steps: |1 - p^5(1)| ~ 0.05)."""
    A = np.eye(4)
    assert sumo_lemma32_bound(gram_condition_number(A), 5) == 0.0
    assert ns_error(A, 5, "cubic", normalize="frobenius", eps=0.0).spectral > 1e-7
    assert ns_error(A, 5, "muon", normalize="spectral", eps=0.0).spectral > 0.01


@st.composite
def conditioned(draw):
    m = draw(st.integers(1, 8))
    n = draw(st.integers(1, 8))
    k = draw(st.integers(1, min(m, n)))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    log_kappa = draw(st.floats(0.0, 4.0))
    s = 10 ** (-log_kappa * rng.random(k))
    s[0] = 1.0
    if k > 1:
        s[-1] = 10 ** (-log_kappa)
    return draw(st.floats(1e-2, 1e2)) * _matrix_with_spectrum(rng, m, n, np.sort(s)[::-1]), k


@given(conditioned(), st.integers(0, 10))
def test_sumo_lemma32_holds_under_gram_reading(case, steps):
    """TRUE (proved in analysis.bounds): kappa = kappa(A A^T), cubic NS on A with spectral normalisation:
    ||E_i||_2 <= (1 - 1/kappa)^(2^i) and ||E_i||_F <= sqrt(r) (1 - 1/kappa)^(2^i)."""
    A, k = case
    kg = gram_condition_number(A)
    r = ns_error(A, steps, "cubic", normalize="spectral", eps=0.0)
    tol = 1e-9
    assert r.spectral <= sumo_lemma32_bound(kg, steps) + tol
    assert r.frobenius <= sumo_lemma32_bound(kg, steps, r=k, norm="frobenius") + tol


@given(conditioned(), st.integers(0, 10))
def test_cubic_ns_exact_worst_case_error(case, steps):
    """TRUE and tight: ||E_k||_2 = e_k(1 - 1/kappa(A)) (exact recursion), ||E_k||_F <= sqrt(r) e_k."""
    A, k = case
    kap = condition_number(A)
    r = ns_error(A, steps, "cubic", normalize="spectral", eps=0.0)
    pred = cubic_ns_error_bound(kap, steps, kappa_of="input")
    assert r.spectral == pytest.approx(pred, abs=1e-9)
    assert r.frobenius <= cubic_ns_error_bound(kap, steps, r=k, norm="frobenius", kappa_of="input") + 1e-9
    # the same through the gram reading of kappa
    assert cubic_ns_error_bound(gram_condition_number(A), steps, kappa_of="gram") == pytest.approx(pred, abs=1e-9)


@given(st.floats(0.0, 1.0), st.integers(0, 12))
def test_cubic_quadratic_bound_and_gram_lemma_scalar(e0, k):
    """TRUE: e_k <= min(e0, (1.5 e0)^(2^k)/1.5); and the scalar form of the gram-reading lemma:
    1 - p^k(s) <= (1 - s^2)^(2^k)."""
    ek = cubic_ns_error(e0, k)
    assert ek <= cubic_ns_quadratic_bound(e0, k) * (1 + 1e-12) + 1e-300
    d0 = e0 * (2.0 - e0)  # 1 - s^2 with s = 1 - e0, free of cancellation
    assert ek <= d0 ** (2 ** k) * (1 + 1e-12) + 1e-300
    assert ns_worst_singular_value(4.0, kappa_of="gram") == 0.5
    assert ns_worst_singular_value(4.0, kappa_of="input") == 0.25


# ------------------------------------------------------------------------------------------------ GaLore Lemma 3.3

def _galore_setting(seed, m, n, N):
    rng = np.random.default_rng(seed)
    Bs, Cs, As = [], [], []
    for _ in range(N):
        X = rng.standard_normal((m, m))
        Bs.append(X @ X.T)
        Y = rng.standard_normal((n, n))
        Cs.append(Y @ Y.T)
        As.append(rng.standard_normal((m, n)))
    S = sum(np.kron(C, B) for B, C in zip(Bs, Cs)) / N
    eta = 0.5 / np.linalg.eigvalsh(S)[-1]
    return As, Bs, Cs, rng.standard_normal((m, n)), eta


def _galore_run(setting, steps):
    """The setting as a synthetic.ReversibleGradient, run from G_t0 = G(W0) by analysis.bounds."""
    import torch
    from synthetic import ReversibleGradient
    As, Bs, Cs, W0, eta = setting
    P = ReversibleGradient.from_arrays(As, Bs, Cs)
    return galore_lemma33_trajectory(P, P.gradient(torch.as_tensor(W0)), eta, steps)


@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 4), st.integers(1, 4))
def test_galore_lemma33_holds_for_single_sample(seed, m, n):
    """TRUE for N = 1: S = C (x) B has decomposable eigenvectors, so G^par has rank one and
    ||G_t||_2 >= (1 - eta lam1)^t ||G^par||_2; then the stated bound follows (0 < eta lam_max < 1)."""
    assume(m * n >= 2)
    try:
        r = _galore_run(_galore_setting(seed, m, n, 1), 30)
    except ValueError:  # single distinct eigenvalue or no parallel component: lemma does not apply
        assume(False)
    assume(r.lam2 - r.lam1 > 1e-6 * r.lam2)
    assert r.parallel_rank == 1
    assert np.all(r.stable_rank <= r.bound * (1 + 1e-8) + 1e-10)


def test_finding_galore_lemma33_fails_when_parallel_part_has_rank_two():
    """FINDING: with N = 2 samples the minimal eigenvector of S need not be decomposable, G^par can have rank 2
    and ||G_t||_2 < ||G^par_t||_2 is possible: the bound fails already at t = t0 (seed 496: 1.3796 vs 1.3690,
    +0.78%) and asymptotically (seed 1142: +0.28% at t - t0 = 50), since the spectral cross term is first order
    in ((1 - eta lam2)/(1 - eta lam1))^t while the bound's slack is second order."""
    r = _galore_run(_galore_setting(496, 2, 2, 2), 50)
    assert r.parallel_rank == 2 and not r.rectangular
    assert r.stable_rank[0] == pytest.approx(1.37958, abs=1e-4) and r.bound[0] == pytest.approx(1.36897, abs=1e-4)
    assert r.max_relative_violation > 5e-3
    r = _galore_run(_galore_setting(1142, 2, 2, 2), 50)
    rel = (r.stable_rank - r.bound) / r.bound
    assert rel[50] > 2e-3 and np.all(rel[40:] > 0)


def test_galore_lemma33_bound_formula():
    assert galore_lemma33_bound(1.0, 2.0, 0.1, 1.0, 3.0, 0) == pytest.approx(3.0)
    assert galore_lemma33_bound(1.0, 2.0, 0.1, 1.0, 3.0, 1) == pytest.approx(1.0 + (0.7 / 0.9) ** 2 * 2.0)
    with pytest.raises(ValueError):
        galore_lemma33_bound(1.0, 2.0, 0.1, 3.0, 1.0, 1)
    from analysis.bounds import galore_lemma33_applies, galore_lemma33_rate
    assert galore_lemma33_rate(0.3, 0.5, 1.0) == pytest.approx((0.7 / 0.85) ** 2)
    assert galore_lemma33_applies(0.3, 0.5, 1.0, 2.0) and not galore_lemma33_applies(5.0, 0.5, 1.0, 2.0)


# ------------------------------------------------------------------------------------------------ SUMO Lemma 3.1

def _lemma31_setting(seed, beta, eta=0.08):
    rng = np.random.default_rng(seed)
    b = np.sort(rng.uniform(1.0, 3.0, 3))
    c = np.sort(rng.uniform(1.0, 4.0, 4))
    Qb, Qc = _orthogonal(rng, 3), _orthogonal(rng, 4)
    B, C = (Qb * b) @ Qb.T, (Qc * c) @ Qc.T
    lam = np.unique(np.round(np.outer(c, b).ravel(), 12))
    return [rng.standard_normal((3, 4))], [B], [C], rng.standard_normal((3, 4)), eta, lam


@given(st.integers(0, 2 ** 32 - 1), st.floats(0.0, 0.5))
def test_sumo_lemma31_decay_at_least_C(seed, beta):
    """TRUE (O-form): when 1 - eta lam1 > beta, kappa_M(t) = O(C^{-t}). Checked as: the envelope kappa_M(t) C^t
    over the second half of a 300-step run never exceeds its maximum over the first half (a decay slower than
    C^{-t} makes it grow without bound; an initial transient may rise first). Points below the round-off floor
    of kappa_M (1e-24; kappa from the tail singular values has a floor ~eps^2) are excluded."""
    A, B, C, W0, eta, lam = _lemma31_setting(seed, beta)
    assume(eta * lam[-1] < 1 and len(lam) >= 2)
    const = sumo_lemma31_constant(beta, eta, lam[0], lam[1])
    assume(const.decays and 1.01 < const.C < 1.15)
    k = sumo_lemma31_trajectory(A, B, C, W0, eta, beta, 300)
    t = np.arange(k.size)
    env = k * const.C ** t
    valid = k > 1e-24
    first, second = valid & (t <= 150), valid & (t > 150)
    assume(second.any())
    assert env[second].max() <= env[first].max() * (1 + 1e-9)
    assert sumo_lemma31_bound(10, const.C, 2.0) == pytest.approx(2.0 * const.C ** -10)


def test_finding_sumo_lemma31_needs_its_precondition():
    """FINDING: if beta >= 1 - eta lam1 (here beta = 0.95) then C = 1 and kappa_M(t) tends to a positive
    constant (~0.31): the lemma's unconditional O(C^{-t}), C > 1, does not hold."""
    A, B, C, W0, eta, lam = _lemma31_setting(0, 0.95)
    const = sumo_lemma31_constant(0.95, eta, lam[0], lam[1])
    assert not const.decays and const.C == pytest.approx(1.0)
    k = sumo_lemma31_trajectory(A, B, C, W0, eta, 0.95, 300)
    assert k[-1] > 0.05 and abs(k[-1] - k[-50]) < 0.01


# ------------------------------------------------------------------------------------------------ misc closed forms

def test_sumo_remark36_and_step_size():
    assert sumo_delta_threshold(16) == pytest.approx(1 / 16)
    assert sumo_remark36_holds(0.06, 16) and not sumo_remark36_holds(0.0625, 16)
    p = sumo_lemma33_step_size(R=1.0, L=2.0, T=10_000, m=8, delta=0.0, sigma=1.0)
    assert p["alpha"] == pytest.approx(math.sqrt(2.0) / 100)
    assert p["eta"] == pytest.approx(math.sqrt(4 / ((10 / p["alpha"] + 16) * 10_000 * 2.0)))
    # larger delta => smaller eta (Remark 3.5)
    assert sumo_lemma33_step_size(1.0, 2.0, 10_000, 8, 0.5, 1.0)["eta"] < p["eta"]


def test_stiefel_closed_forms():
    np.testing.assert_allclose(stiefel_projector_mean(5, 2), 0.4 * np.eye(5))
    G = torch.arange(12.0).reshape(4, 3)
    assert stiefel_residual_expectation(G, 1) == pytest.approx(0.75 * float((G ** 2).sum()))
    assert stiefel_residual_expectation(G, 4) == 0.0


@given(st.floats(0.0, 1.0))
def test_subset_norm_rate_table(beta):
    a1, b1 = subset_norm_exponents(1, beta)
    aS, bS = subset_norm_exponents("sqrt", beta)
    aN, bN = subset_norm_exponents(1024, beta, d=1024)
    assert (a1, b1) == (pytest.approx(1.5 + beta), 2.5)
    assert aS == pytest.approx(0.3 + 1.8 * beta)
    assert (aN, bN) == (pytest.approx(2.5 * beta), pytest.approx(3 * beta))
    # the subset rate's 1/T exponent is continuous at beta = 2/3 and never worse than coordinate's
    assert bS <= b1 + 1e-12 and aS <= a1 + 1e-12
    assert subset_norm_regime(32, 1024) == "subset"
    assert SUBSET_NORM_RATES["subset"]["T"](2 / 3) == pytest.approx(SUBSET_NORM_RATES["subset"]["T"](2 / 3 + 1e-12))
