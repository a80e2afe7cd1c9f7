"""SUMO claims (claims/sumo.py): each runs at quick scale with the expected verdict, its verdict follows from its
numbers, its rows are long-format and its figure draws from them; property tests of the bounds that are true; the
Lemma 3.2 measurement is invariant under rotations and rescalings of the matrix."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.bounds import (cubic_ns_error, cubic_ns_error_bound, sumo_delta_threshold, sumo_lemma32_bound)
from claims import sumo as CS
from claims import verdicts as V
from claims.registry import default_registry
from claims.runner import execute
from claim_checks import check_outcome as _check_common
from synthetic import matrix_with_spectrum, with_condition_number

IDS = ("sumo.lemma3.1", "sumo.lemma3.2", "sumo.lemma3.2-proof-reading", "sumo.lemma3.2-corrected", "sumo.lemma3.3",
       "sumo.remark3.7", "sumo.thm3.8", "sumo.svd-vs-ns5", "sumo.table1")
NO_FIGURE = ("sumo.table1",)
EPS = float(np.finfo(np.float64).eps)


@pytest.fixture(scope="module")
def outcomes(claim_cache):
    """Every claim of this module once at quick scale (~11 s in total on 2 cores)."""
    return claim_cache.outcomes(IDS)


def test_registered_with_docstrings_and_figures():
    reg = default_registry()
    for cid in IDS:
        c = reg.get(cid)
        assert c.paper == "SUMO" and c.module == "claims.sumo", cid
        assert "rule" in c.doc.lower(), cid
        assert (c.draw is None) == (cid in NO_FIGURE), cid


@pytest.mark.parametrize("cid", [i for i in IDS if i not in NO_FIGURE])
def test_figures_draw_from_rows(outcomes, cid):
    from matplotlib.figure import Figure
    from analysis import plotting as P
    fig = default_registry().get(cid).draw(outcomes[cid].rows)
    assert isinstance(fig, Figure) and fig.axes
    P.close(fig)


# ---------------------------------------------------------------------------------------------- Lemma 3.1

def test_lemma31_decays_when_the_precondition_holds_and_not_otherwise(outcomes):
    out = outcomes["sumo.lemma3.1"]
    _check_common(out, ("decay_factor", "decay_factor_ci", "fails_regime"), ("C", "decay_factor_at_most"),
                  ("kappa_M", "regime", "C"))
    # rule: whole CI of the per-step factor <= 1/C
    lo, hi = out.measured["decay_factor_ci"]
    assert lo <= out.measured["decay_factor"] <= hi <= out.predicted["decay_factor_at_most"]
    assert math.isclose(out.predicted["C"], (0.9 / 0.85) ** 2, rel_tol=1e-9)   # lambda_1 = 1, lambda_2 = 1.5, eta = 0.1
    # rank-one limit: the residual is fourth order, so the exponent is about twice the predicted one
    assert 1.5 < out.measured["exponent_ratio"] < 2.5
    # precondition violated (beta = 0.95 > 1 - eta lambda_1 = 0.9): C = 1, kappa_M levels off well above zero
    f = out.measured["fails_regime"]
    assert f["C"] == 1.0 and f["precondition"] is False
    assert f["decay_factor_ci"][0] <= 1.0 + 1e-6 and f["decay_factor"] > 0.9999
    assert f["kappa_M_final"] > 0.1
    assert out.verdict.rule == "provided"


# ---------------------------------------------------------------------------------------------- Lemma 3.2

def test_lemma32_literal_holds_for_the_cubic_and_fails_for_the_quintic(outcomes):
    out = outcomes["sumo.lemma3.2"]
    _check_common(out, ("cubic_counterexample", "quintic_counterexample", "cubic_frobenius_counterexample"),
                  ("bound", "atol"))
    grid = [r for r in out.rows if not r["method"].startswith("map-")]
    assert len(grid) == 4 * len(CS.KAPPAS_32) * (CS.I_MAX + 1)
    assert all({"kappa", "error", "bound"} <= set(r) for r in grid)
    assert out.measured["cubic_counterexample"] is None
    assert out.measured["cubic_max_ratio"]["ratio"] <= 1.0
    # Frobenius normalisation (Muon's) already fails at A = I (kappa = 1) before any step
    assert out.measured["cubic_frobenius_counterexample"]["kappa"] == 1.0
    q = out.measured["quintic_counterexample_i_ge_1"]
    assert q["kappa"] == 1.0 and q["i"] == 1
    assert out.measured["quintic_spectral_counterexample"] == {"kappa": 1.0, "i": 1, "measured": pytest.approx(
        1 - (3.4445 - 4.7750 + 2.0315), abs=1e-12), "bound": 0.0}
    # the quintic never converges: an error floor after 8 steps, band of p^5 as in paper-claims §0
    assert out.measured["quintic_error_i8_min_over_kappa"] > 0.2
    lo, hi = out.measured["quintic_band_5_steps"]
    assert lo == pytest.approx(0.68, abs=0.01) and hi == pytest.approx(1.2024, abs=1e-3)
    maps = {r["method"] for r in out.rows if r["method"].startswith("map-")}
    assert maps == {"map-quintic", "map-cubic"}


def test_lemma32_proof_reading_is_violated_with_the_smallest_counterexample(outcomes):
    out = outcomes["sumo.lemma3.2-proof-reading"]
    _check_common(out, ("smallest_counterexample", "kappa10_i5"), ("kappa10_i5_bound",), ("kappa", "error"))
    ce = out.measured["smallest_counterexample"]
    # i = 1 already fails for every kappa > 1: e_1 = e_0^2 (3 - e_0)/2 > e_0^2; the grid's smallest kappa > 1 is 1.01
    assert (ce["kappa"], ce["i"]) == (1.01, 1)
    e0 = 1 - 1 / 1.01
    assert ce["measured"] == pytest.approx(e0 ** 2 * (3 - e0) / 2, rel=1e-8)
    assert ce["bound"] == pytest.approx(e0 ** 2, rel=1e-12)
    # the analysis engineer's example
    assert out.measured["kappa10_i5"] == pytest.approx(0.3413, abs=1e-4)
    assert out.predicted["kappa10_i5_bound"] == pytest.approx(0.0343, abs=1e-4)


def test_lemma32_corrected_bound_holds_and_is_tight(outcomes):
    out = outcomes["sumo.lemma3.2-corrected"]
    _check_common(out, ("tightness_min", "tightness_max"), ("bound",), ("kappa", "error", "bound"))
    assert out.measured["tightness_min"] == pytest.approx(1.0, abs=1e-6)
    assert out.measured["tightness_max"] == pytest.approx(1.0, abs=1e-6)
    assert out.measured["kappa10_i5"] == pytest.approx(out.predicted["kappa10_i5"], rel=1e-8)


def test_smallest_counterexample_scans_kappa_then_i():
    meas = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    bound = np.ones_like(meas)
    ce = CS.smallest_counterexample(meas, bound, (1.0, 2.0, 3.0), (0, 1, 2), atol=0.0)
    assert ce == {"kappa": 2.0, "i": 2, "measured": 2.0, "bound": 1.0}
    assert CS.smallest_counterexample(meas, bound, (1.0, 2.0, 3.0), (0, 1, 2), atol=2.5) is None


# properties of the bounds that are true (preconditions stated in the strategies)

@given(kappa=st.floats(min_value=1.0, max_value=1e8), i=st.integers(0, 12))
def test_literal_lemma32_holds_for_cubic_ns(kappa, i):
    """Precondition: classical cubic NS, spectral normalisation, kappa = kappa(A A^T) >= 1, so the worst singular
    value starts at s_0 = 1/sqrt(kappa) and its error 1 - s_i <= d_i <= d_0^(2^i) = (1 - 1/kappa)^(2^i)."""
    e = cubic_ns_error(1.0 - 1.0 / math.sqrt(kappa), i)
    assert e <= sumo_lemma32_bound(kappa, i) + 4 * EPS


@given(s=st.floats(min_value=0.0, max_value=1.0))
def test_cubic_step_squares_the_gram_defect(s):
    """d = 1 - s^2 obeys d' <= d^2 under s' = (3 s - s^3)/2 for s in [0, 1] (the identity behind the proof)."""
    p = 1.5 * s - 0.5 * s ** 3
    assert 1 - p * p <= (1 - s * s) ** 2 + 4 * EPS


@settings(max_examples=25)
@given(log_kappa=st.floats(min_value=0.0, max_value=4.0), i=st.integers(0, CS.I_MAX),
       kind=st.sampled_from(["geometric", "linear", "one-small", "two-cluster", "power"]),
       seed=st.integers(0, 2 ** 31 - 1))
def test_corrected_lemma32_bounds_every_matrix(log_kappa, i, kind, seed):
    """Precondition: cubic NS with spectral normalisation on a matrix whose condition number is exactly kappa(A) =
    10^log_kappa (constructed); then ||E_i||_2 <= e_i(1 - 1/kappa) and ||E_i||_F <= sqrt(r) e_i (round-off atol)."""
    m, n = 6, 15
    kappa = 10.0 ** log_kappa
    A = matrix_with_spectrum(with_condition_number(kappa, m, kind=kind), m, n, torch.Generator().manual_seed(seed))
    atol = CS._ns_atol(m, n)
    assert CS.lemma32_error(A, i) <= cubic_ns_error_bound(kappa, i) + atol
    assert CS.lemma32_error(A, i, norm="frobenius") <= cubic_ns_error_bound(kappa, i, r=m, norm="frobenius") + atol


# metamorphic: the measurement does not see rotations or rescalings

@pytest.mark.parametrize("coeffs,normalize", [("cubic", "spectral"), ("muon", "frobenius"), ("muon", "spectral")])
def test_lemma32_measurement_invariant_under_rotation_and_scaling(coeffs, normalize):
    from subspace import stiefel
    g = torch.Generator().manual_seed(7)
    m, n = 8, 32
    A = matrix_with_spectrum(with_condition_number(30.0, m), m, n, g)
    U = stiefel(m, m, g, dtype=torch.float64)
    Q = stiefel(n, n, g, dtype=torch.float64)
    for i in (0, 1, 3, 5, 8):
        base = CS.lemma32_error(A, i, coeffs, normalize)
        assert CS.lemma32_error(U @ A @ Q, i, coeffs, normalize) == pytest.approx(base, rel=1e-9, abs=1e-12)
        for c in (1e-3, 0.5, 7.0, 1e4):
            assert CS.lemma32_error(c * A, i, coeffs, normalize) == pytest.approx(base, rel=1e-9, abs=1e-12)


def test_lemma32_grid_is_invariant_under_rescaling_of_the_reading():
    """The same generator seed gives the same grid; kappa of A A^T is kappa(A)^2 (the two readings differ only by
    the square root)."""
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    gram = CS.lemma32_grid(g1, kappas=(4.0, 100.0), steps=range(3), kappa_of="gram")
    inp = CS.lemma32_grid(g2, kappas=(2.0, 10.0), steps=range(3), kappa_of="input")
    np.testing.assert_allclose(gram, inp, rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------- Lemma 3.3

def test_lemma33_ns5_misses_the_delta_muon_needs(outcomes):
    out = outcomes["sumo.lemma3.3"]
    _check_common(out, ("delta_ns5_quintic", "delta_ns5_cubic", "delta_gaussian_64x256", "breakdown_multiple"),
                  ("delta_threshold_n64",), ("delta",))
    thr = out.predicted["delta_threshold_n64"]
    assert thr == sumo_delta_threshold(64) == 1 / 32
    # rule: delta of 5 quintic steps <= 1/(4 sqrt n) at every kappa -- fails everywhere, already at kappa = 1
    # auxiliary: whether NS5 meets (A4) is not a statement of the paper (issue 10, item 4)
    c = default_registry().get("sumo.lemma3.3")
    assert c.kind == "auxiliary" and "never claims" in c.statement
    assert out.measured["smallest_failing_kappa_quintic"] == 1.0
    assert min(out.measured["delta_ns5_quintic"].values()) > 5 * thr
    assert out.measured["delta_gaussian_64x256"]["quintic"] == pytest.approx(0.215, abs=0.02)
    # the cubic meets it only for well-conditioned moments
    assert out.measured["delta_ns5_cubic"]["1"] < 1e-12
    assert out.measured["largest_passing_kappa_cubic"] < 10
    # random errors above the threshold barely matter; adversarial ones break the run at a few times the threshold
    assert out.measured["breakdown_multiple"]["random"] is None
    assert out.measured["breakdown_multiple"]["adversarial"] is not None


def test_muon_delta_run_injects_an_error_of_the_requested_norm():
    """With eta = 1, beta = 0 and no noise, one step moves W by exactly U V^T + E with ||E||_F = delta sqrt(k)."""
    from subspace import polar
    from synthetic import SmoothMatrixProblem
    prob = SmoothMatrixProblem.random(m=6, n=4, p=5, rho=0.5, sigma=0.0, generator=0)
    W0 = prob.x0(torch.Generator().manual_seed(1))
    O = polar(prob.grad(W0))
    for kind in ("random", "adversarial"):
        for delta in (0.0, 0.3):
            norms = CS.muon_delta_run(prob, delta=delta, kind=kind, steps=2, eta=1.0, beta=0.0,
                                      x0_generator=torch.Generator().manual_seed(1),
                                      noise_generator=torch.Generator().manual_seed(2),
                                      error_generator=torch.Generator().manual_seed(3))
            W1 = W0 - (O + _error(prob, W0, O, delta, kind))
            assert norms[1] == pytest.approx(float(torch.linalg.matrix_norm(prob.grad(W1))), rel=1e-10)


def _error(prob, W0, O, delta, kind):
    if delta == 0:
        return torch.zeros_like(O)
    Z = torch.randn(W0.shape, generator=torch.Generator().manual_seed(3), dtype=W0.dtype) if kind == "random" \
        else -prob.grad(W0)
    E = delta * math.sqrt(min(W0.shape)) * Z / torch.linalg.matrix_norm(Z)
    assert float(torch.linalg.matrix_norm(E)) == pytest.approx(delta * 2.0)
    return E


# ---------------------------------------------------------------------------------------------- Remark 3.7

def test_remark37_sentence_contradicts_its_own_formulas(outcomes):
    out = outcomes["sumo.remark3.7"]
    _check_common(out, ("formula_ratio", "textbook_ratio_rsvd", "time"), ("ratio",), ())
    assert out.measured["formula_svd"] == 8_720_384 and out.measured["formula_ns5"] == 141_952
    assert out.measured["formula_ratio"] == pytest.approx(61.43, abs=0.01)
    assert out.measured["formula_ratio_exact"] == "68128/1109"
    # textbook counts make the thin SVD cheaper than NS5
    assert out.measured["textbook_ratio_rsvd"] < 1 and out.measured["textbook_ratio_golub_reinsch"] < 1
    for v in out.measured["time"].values():
        assert v["svd_s"] > 0 and v["ns5_s"] > 0 and v["ratio"] == pytest.approx(v["svd_s"] / v["ns5_s"])


# ---------------------------------------------------------------------------------------------- Theorem 3.8

def test_thm38_steps_grow_no_faster_than_eps_to_the_minus_two(outcomes):
    out = outcomes["sumo.thm3.8"]
    _check_common(out, ("slope", "ci", "control"), ("exponent", "slope_at_most"), ("epsilon", "inv_epsilon"))
    lo, hi = out.measured["ci"]
    assert lo <= out.measured["slope"] <= hi <= out.predicted["slope_at_most"] == 2.5
    # the bound can bind (polynomial regime) and the negative control (lr 1/t) is rejected by the same rule
    assert lo >= CS.BIND_38 and out.measured["control"]["verdict"] == "violated"
    assert out.measured["control"]["ci"][0] > 2.5
    steps = out.measured["mean_steps"]
    assert all(a <= b for a, b in zip(steps, steps[1:]))   # smaller eps never needs fewer steps


# ---------------------------------------------------------------------------------------------- SVD vs NS5

def test_svd_vs_ns5_quick_is_an_underpowered_smoke_run(outcomes):
    out = outcomes["sumo.svd-vs-ns5"]
    _check_common(out, ("mean_steps", "ratio_ns5_over_svd", "ratio_galore_over_svd", "p_values", "seeds_required"),
                  ("ratio_paper",), ("loss", "rel_gap"))
    # quick runs 3 seeds, fewer than the power rule needs (7): inconclusive at every seed family, by design
    assert out.measured["seeds_required"] == 7
    assert out.verdict == "inconclusive" and "precondition not met" in out.reason
    # the mechanism precondition: NS5's moments must fall below its band threshold for that comparison to decide
    low = out.measured["min_moment_ratio"]
    assert set(low) == {"sumo", "sumo-ns5", "galore"} and all(0 < v <= 1 / math.sqrt(8) for v in low.values())
    assert ("needs < tau" in out.reason) and out.measured["ns5_tau"] == CS.NS5_TAU
    assert out.predicted["ratio_paper"] == 1.6
    assert {r["method"] for r in out.rows} == {"sumo", "sumo-ns5", "galore"}


def test_ns5_tau_is_the_certified_threshold():
    from analysis.symbolic import level_threshold
    th = level_threshold(0.68, "muon", 5)
    assert th.certified and abs(CS.NS5_TAU - th.x_lo) < 1e-9


def test_verdicts_do_not_depend_on_the_seed_family():
    """Issue 10 item 2, cheapest stochastic claims of this module: families 0 and 1 reach the same verdict."""
    from claims.registry import Context
    reg = default_registry()
    for cid in ("sumo.lemma3.1", "sumo.lemma3.2", "sumo.lemma3.2-corrected"):
        fn = reg.get(cid).fn
        v = [fn(Context(cid, scale="quick", seed_family=f)).verdict for f in (0, 1)]
        assert v[0] == v[1], (cid, v[0].reason, v[1].reason)


# ---------------------------------------------------------------------------------------------- Table 1

def test_table1_state_bytes_equal_the_formulas(outcomes):
    out = outcomes["sumo.table1"]
    _check_common(out, ("bytes", "galore_m_ge_n_reading"), ("formulas", "bytes"), ("measured_bytes",))
    for r in out.rows:
        assert r["measured_bytes"] == r["predicted_bytes"] == r["core_formula_bytes"]
    alt = out.measured["galore_m_ge_n_reading"]
    assert alt["128x128"]["galore_measured"] == alt["128x128"]["galore_if_m_ge_n"]
    assert alt["64x256"]["galore_measured"] - alt["64x256"]["galore_if_m_ge_n"] == (256 - 64) * 8 * 4


@settings(max_examples=20)
@given(m=st.integers(2, 48), n=st.integers(2, 48), data=st.data())
def test_table1_formulas_match_measured_state_for_any_shape(m, n, data):
    """Precondition: rank r <= min(m, n) (the table's setting); float32 weights, state after two steps."""
    import subspace
    r = data.draw(st.integers(1, min(m, n)), label="r")
    f = CS.table1_formulas(m, n, r)
    g = torch.Generator().manual_seed(m * 100 + n)
    for name in ("sumo", "galore", "adamw"):
        W = torch.nn.Parameter(torch.zeros(m, n))
        low_rank = {} if name == "adamw" else dict(rank=r, update_gap=1)   # AdamW reads neither
        opt = subspace.make(name, [W], lr=1e-3, **low_rank)
        for _ in range(2):
            W.grad = torch.randn(m, n, generator=g)
            opt.step()
        assert CS.state_bytes(opt.state[W]) == 4 * f[name], (name, m, n, r)


def test_the_runner_runs_a_claim_with_one_thread_and_restores_the_count():
    from claims.registry import Outcome, claim
    from claims.runner import execute
    from claims import verdicts as V

    seen = []

    @claim(id="toy.threads", kind="auxiliary", paper="Toy", statement="s", source="s")
    def fn(ctx):
        seen.append(torch.get_num_threads())
        return Outcome({}, {}, V.upper_bound(0, 1))

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        execute(fn)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
