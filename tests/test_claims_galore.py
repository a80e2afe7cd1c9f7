"""GaLore claims (claims/galore.py): verdicts follow from their numbers, the Lemma 3.3 counterexample is real
(re-checked independently from the stored matrices), the rectangular-V1 bound holds as a property, and Theorem 3.8
fails only through the W-dependence the proof mishandles."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st

from analysis.bounds import galore_lemma33_trajectory
from claims import galore as CG
from claims import verdicts as V
from claims.registry import default_registry
from synthetic import ReversibleGradient

IDS = ("galore.lemma3.3", "galore.lemma3.3-rectangular", "galore.thm3.8", "galore.thm3.8-corrected")


@pytest.fixture(scope="module")
def outcomes(claim_cache):
    """Every GaLore claim once at quick scale (~5 s on 2 cores)."""
    return claim_cache.outcomes(IDS)


def _check_common(out):
    again = V.recompute(out.verdict)
    assert again == out.verdict and again.reason == out.verdict.reason
    assert out.rows
    for r in out.rows:
        for k in ("method", "seed", "step"):
            assert k in r, (k, r)
        assert isinstance(r["seed"], int) and isinstance(r["step"], int)


def test_registered_with_docstrings_and_figures(outcomes):
    reg = default_registry()
    for cid in IDS:
        c = reg.get(cid)
        assert c.paper == "GaLore" and c.draw is not None
        assert "rule" in c.doc.lower(), cid
        fig = c.draw(outcomes[cid].rows)   # figures come from the rows alone
        assert fig.axes
        fig.clear()


# ------------------------------------------------------------------------------------------- Lemma 3.3 (literal)

def test_lemma33_literal_is_violated_by_a_2x2_n1_instance(outcomes):
    out = outcomes["galore.lemma3.3"]
    _check_common(out)
    # violated: random instances with a non-rectangular V1 exceed the bound far beyond round-off
    assert out.measured["violations"] > 0 and out.measured["max_ratio"] > 1.01
    sc = out.measured["smallest_counterexample"]
    assert (sc["m"], sc["n"], sc["N"]) == (2, 2, 1)       # smallest cell searched
    assert sc["rank_B"] == [1] and sc["rank_C"] == [1]     # N = 1 needs lambda_1 = 0 with B and C both singular
    assert not sc["rectangular"] and sc["v1_dim"] == 3
    assert sc["excess"] > 1e6 * sc["rtol"]
    # independent re-check from the stored numbers (rounded to 12 decimals: the excess is ~10%)
    A = [np.asarray(a) for a in sc["A"]]
    B = [np.asarray(b) for b in sc["B"]]
    C = [np.asarray(c) for c in sc["C"]]
    chk = galore_lemma33_trajectory(ReversibleGradient.from_arrays(A, B, C), sum(A) / len(A), sc["eta"], 20)
    t = sc["t_star"]
    assert chk.stable_rank[t] > chk.bound[t] * 1.01
    assert math.isclose(chk.stable_rank[t], sc["sr_at_t_star"], rel_tol=1e-8)
    # every violation has a non-rectangular V1 (the lemma's missing precondition)
    assert out.measured["violations_with_rectangular_V1"] == 0
    assert all(not r["rectangular"] for r in out.rows if r.get("method") == "search" and r["violated"])


def test_lemma33_explicit_case_closed_form(outcomes):
    """G_t0 = [[1, 1], [1, -1]], V1 = {G_12 = 0}: G_par = [[1, 0], [1, -1]], ||G_par||_2^2 = (3 + sqrt 5)/2, so the
    bound at t0 is 4 / ((3 + sqrt 5)/2) = 2 (3 - sqrt 5) = 1.5279 < 2 = sr(G_t0)."""
    ex = outcomes["galore.lemma3.3"].measured["explicit_case"]
    assert math.isclose(ex["sr_at_t_star"], 2.0, rel_tol=1e-12) and ex["t_star"] == 0
    assert math.isclose(ex["bound_at_t_star"], 2 * (3 - math.sqrt(5)), rel_tol=1e-12)
    assert ex["violated_at_all_t"] and ex["lam1"] == pytest.approx(0.5) and ex["lam2"] == pytest.approx(1.0)


def test_is_rectangular_detects_cross_and_block():
    A, B, C, W0, eta = CG.explicit_lemma33_case()
    P = CG.problem_of(A, B, C)
    assert P.v1_dim == 3 and not P.v1_is_rectangular
    rng = np.random.default_rng(0)
    P = CG.problem_of(*CG.block_rectangular_instance(rng, 4, 3, 2, 2, 1))
    assert P.v1_dim == 2 and P.v1_is_rectangular


def test_claims_module_has_no_second_implementation():
    """Item 16 of issue 10: G, S, V1 and the recursion live in synthetic.reversible, the bound in analysis.bounds."""
    import inspect
    src = inspect.getsource(CG)
    for banned in ("np.kron(np.asarray(c", "def v1_basis", "def is_rectangular", "def _S(", "eigh("):
        assert banned not in src, banned


# ------------------------------------------------------------------------------------------- Lemma 3.3 (rectangular)

def test_lemma33_rectangular_holds(outcomes):
    out = outcomes["galore.lemma3.3-rectangular"]
    _check_common(out)
    assert out.measured["all_rectangular"]
    assert out.measured["max_ratio"] <= 1 + out.predicted["rtol"]
    assert out.predicted["rtol"] < 1e-9        # the round-off allowance is tiny, not a tuning knob


@st.composite
def rectangular_layers(draw):
    """ReversibleLayer.random with shared eigenbases: V1 is the (p, q) block, rectangular by construction.
    Preconditions: (p, q) != (m, n) (lambda_2 exists) and 0 < eta lambda_max <= 1."""
    m, n = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    N = draw(st.integers(1, 3))
    p, q = draw(st.integers(1, m)), draw(st.integers(1, n))
    assume((p, q) != (m, n))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    frac = draw(st.floats(0.05, 1.0))
    gap = draw(st.floats(0.05, 2.0))
    return m, n, N, p, q, seed, frac, gap


@given(rectangular_layers(), st.integers(1, 40))
def test_property_rectangular_lemma33_shared_bases(params, steps):
    from synthetic import ReversibleLayer
    m, n, N, p, q, seed, frac, gap = params
    layer = ReversibleLayer.random(m, n, N, torch.Generator().manual_seed(seed), v1_shape=(p, q), gap=gap)
    assert layer.v1_is_rectangular
    eta = frac / layer.lambda_max
    res = CG.lemma33_instance(ReversibleGradient(layer.A, layer.B, layer.C), eta, steps)
    assert res["rectangular"]
    assert res["ratio_max"] <= 1 + res["rtol"]
    # the same problem written twice: the known-spectrum layer (closed-form V1) gives the dense problem's bound
    from analysis.bounds import galore_lemma33_trajectory
    known = galore_lemma33_trajectory(layer, layer.A.mean(0), eta, steps)
    assert known.rectangular and known.v1_dim == res["v1_dim"] == p * q
    np.testing.assert_allclose(known.bound, res["bound"], rtol=1e-9)
    np.testing.assert_allclose(known.stable_rank, res["sr"], rtol=1e-9)


@given(st.integers(2, 5), st.integers(2, 5), st.integers(1, 3), st.data())
def test_property_rectangular_lemma33_nonshared_bases(m, n, N, data):
    """Rectangular V1 but general (non-decomposable) eigenvectors elsewhere: the bound still holds."""
    p, q = data.draw(st.integers(1, m)), data.draw(st.integers(1, n))
    assume((p, q) != (m, n))
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    P = CG.problem_of(*CG.block_rectangular_instance(rng, m, n, N, p, q, gap=data.draw(st.floats(0.05, 1.0))))
    res = CG.lemma33_instance(P, data.draw(st.floats(0.05, 1.0)) / P.lambda_max, 30)
    assert res["rectangular"] and res["v1_dim"] == p * q
    assert res["ratio_max"] <= 1 + res["rtol"]


@given(st.integers(2, 4), st.integers(2, 4), st.integers(0, 2 ** 32 - 1), st.floats(0.05, 1.0))
def test_property_n1_positive_definite_never_violates(m, n, seed, frac):
    """N = 1 with positive definite B, C: S = C (x) B has a rectangular V1, so the literal bound holds."""
    rng = np.random.default_rng(seed)
    B, C = [CG.random_psd(rng, m, m) + 1e-3 * np.eye(m)], [CG.random_psd(rng, n, n) + 1e-3 * np.eye(n)]
    P = CG.problem_of([rng.standard_normal((m, n))], B, C)
    lam = P.eigenvalues.numpy()
    assume(lam[1] - lam[0] > 1e-6 * lam[-1])
    res = CG.lemma33_instance(P, frac / lam[-1], 20)
    assert res["rectangular"] and res["ratio_max"] <= 1 + res["rtol"]


# ------------------------------------------------------------------------------------------- Theorem 3.8

def test_thm38_literal_fails_only_through_w_dependence(outcomes):
    out = outcomes["galore.thm3.8"]
    _check_common(out)
    parts = out.verdict.inputs["parts"]
    bad = [p for p in parts if p == "violated"]
    assert len(bad) == 1 and "W-dependent" in bad[0].reason
    assert all(p == "holds" for p in parts if "constant" in p.reason)
    ex = out.measured["wdep_explicit"]
    assert ex["steps_violating"] == ex["of"]
    # asymptotically ||R_t||/||R_t-1|| -> 1 - eta (2 - 2 w*) = 0.75 while the paper's factor -> 1 - eta 1.5 = 0.625
    assert ex["asymptotic_rate"] == pytest.approx(0.75, abs=1e-4)
    assert ex["paper_factor_final"] == pytest.approx(0.625, abs=1e-4)
    assert ex["R_T_over_R0"] < 1e-4        # R_t -> 0 nevertheless
    for c in out.measured["constant"]:
        assert c["R_T_over_R0"] <= c["predicted_at_most"] and c["max_step_ratio"] <= 1.0


def test_thm38_explicit_instance_closed_form():
    """R_t = 0.75 - (2 - w_t) w_t, w_t = w_{t-1} + eta R_{t-1}: R_t/R_{t-1} = 1 - eta (2 - w_t - w_{t-1})."""
    res = CG.thm38_wdep_explicit(steps=15)
    w, R = 0.0, 0.75
    for t in range(15):
        w_new = w + 0.25 * R
        R_new = 0.75 - (2 - w_new) * w_new
        assert res["R"][t] == pytest.approx(abs(R_new), rel=1e-9)
        assert res["kappa"][t] == pytest.approx(2 - w, rel=1e-12)
        w, R = w_new, R_new
    assert res["psd_ok"] and res["stepsize_ok"]


def test_thm38_corrected_holds(outcomes):
    out = outcomes["galore.thm3.8-corrected"]
    _check_common(out)
    assert out.measured["max_step_ratio"]["wdep-explicit"] == pytest.approx(1.0, abs=1e-6)   # tight
    assert out.measured["max_step_ratio"]["wdep-random"] < 1.0


def test_thm38_constant_bound_scales_with_the_problem():
    """Metamorphic: rescaling A by c > 0 rescales every ||R_t|| by c and leaves the factors unchanged."""
    rng = np.random.default_rng(5)
    A, B, C, W0, P, Q = CG._const_instance(rng, 6, 5, 2, 2)
    r1 = CG.thm38_run(lambda W: A, lambda W: B, lambda W: C, W0, P, Q, 0.3, 20)
    r2 = CG.thm38_run(lambda W: [3.0 * a for a in A], lambda W: B, lambda W: C, W0, P, Q, 0.3, 20)
    np.testing.assert_allclose(r2["R"], 3.0 * r1["R"], rtol=1e-9)
    np.testing.assert_allclose(r2["paper_factor"], r1["paper_factor"], rtol=1e-12)


def test_cheapest_stochastic_claims_same_verdict_at_two_seed_families():
    """Issue 10 item 2: verdicts identical at seed families 0 and 1 (the random draws all change)."""
    from claims.registry import Context
    reg = default_registry()
    for cid, expected in (("galore.lemma3.3-rectangular", "holds"), ("galore.thm3.8-corrected", "holds")):
        outs = [reg.get(cid).fn(Context(cid, scale="quick", seed_family=f)) for f in (0, 1)]
        assert [o.verdict for o in outs] == [expected, expected], (cid, [o.reason for o in outs])
        assert outs[0].rows != outs[1].rows   # the family really reseeds the draws
