"""OSD claims (claims/osd.py): each runs at quick scale with the expected verdict, its verdict follows from its
numbers, and the measurements are invariant under the transformations that should not matter (and, where Adam's
coordinate-wise update breaks an invariance, the test says so)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from claims import osd as O
from claims import verdicts as V
from claims.registry import default_registry
from claim_checks import check_outcome as _check_common

IDS = ("osd.thm4.5", "osd.adam-a-below-b4", "osd.online-pca-stationarity", "osd.online-pca", "osd.fig3")


@pytest.fixture(scope="module")
def outcomes(claim_cache):
    """Every OSD claim once at quick scale (~6 s in total on 2 cores)."""
    return claim_cache.outcomes(IDS)


def test_registered_with_docstrings():
    reg = default_registry()
    for cid in IDS:
        c = reg.get(cid)
        assert c.paper == "OSD" and c.draw is not None
        doc = c.doc.lower()
        assert "rule" in doc and ("holds" in doc or "violated" in doc), cid


def test_thm45_hamiltonian_never_increases_and_runs_become_stationary(outcomes):
    out = outcomes["osd.thm4.5"]
    _check_common(out, row_keys=("projection", "t", "H", "grad_norm"))
    # Theorem 4.5 / eq. (8): every (optimizer, projection) pair within the Euler-remainder tolerance, and the four
    # small-step drift runs of the first start converge to a stationary point; of the four starts' 16 runs, every
    # decided one holds and at least a quarter decide
    assert out.measured["pairs_H_non_increasing"] == "12/12"
    assert out.measured["stationary_runs"] == "9/16"
    assert {e["stationarity_rule"] for e in out.measured["stationarity_by_start"].values()} <= {"holds", "inconclusive"}
    assert out.measured["max_worst_excess_in_theorem"] <= 0
    pairs = out.measured["pairs"]
    for name, spec in O.OPTIMIZERS.items():
        assert pairs[f"{name}/drift"]["H_end"] < pairs[f"{name}/drift"]["H0"]
        if spec["small_step"]:
            p = pairs[f"{name}/drift"]
            assert p["tau"] == pytest.approx(O.STATIONARY_FRACTION * p["grad0"])
            assert p["grad_limit_interval"][1] <= p["tau"] and p["stationarity_rule"] == "holds"
    # a < b/4 is recorded, outside the verdict, and does increase H beyond the tolerance under both projections
    for proj in ("online-pca", "drift"):
        assert not pairs[f"adam(a<b/4)/{proj}"]["in_theorem"]
        assert pairs[f"adam(a<b/4)/{proj}"]["worst_excess"] > 0
    assert len(out.verdict.inputs["parts"]) == 13     # 12 H parts + the stationarity aggregate of 4 runs
    assert {r["projection"] for r in out.rows} == {"online-pca", "drift"}


def test_adam_below_b4_shows_the_condition_is_necessary(outcomes):
    out = outcomes["osd.adam-a-below-b4"]
    _check_common(out, row_keys=("t", "H", "case"))
    sc = out.measured["scalar"]
    # dH/dt(0) = (b/(4a) - 1) sum M0^2 for V0 = 1 (e -> 0): +40 at a = 0.05, b = 1, sum M0^2 = 10
    assert out.measured["dHdt0"] == pytest.approx(40.0, rel=1e-6)
    for a_key, v in sc.items():
        assert v["dHdt0"] == pytest.approx(v["dHdt0_closed_form"], rel=1e-9, abs=1e-9)
        a = float(a_key[2:])
        assert (v["worst_excess"] > 0) == (a < 0.25) and v["rule"] == "holds", a_key
    assert out.measured["largest_a_rising"] == 0.24
    assert out.measured["H_max"] > out.measured["H0"] + 1.0
    # H does not depend on P: the same increase under a fixed P, online PCA and a rotation
    assert {v["rule"] for v in out.measured["matrix"].values()} == {"holds"}
    assert len({round(v["dHdt0"], 9) for v in out.measured["matrix"].values()}) == 1


def test_online_pca_stationarity_fails_assumption_4_4(outcomes):
    out = outcomes["osd.online-pca-stationarity"]
    _check_common(out, row_keys=("t", "grad_norm", "projected_grad_norm"))
    c = out.measured["smallest_counterexample"]
    # an exact equilibrium of (7): nothing moves, the gradient stays at its initial norm 1
    assert c["W_moved"] == 0.0 and c["grad_final"] == pytest.approx(1.0) and c["proj_grad_final"] == 0.0
    assert c["rule"] == "violated"
    runs = out.measured["runs"]
    stalled = [v for v in runs.values() if v["rule"] == "violated"]
    assert stalled, "generic starts should stall"
    for v in stalled:  # the stall mechanism: P^T grad L -> 0 while grad L stays large
        assert v["proj_grad_final"] < 1e-4 * v["grad_final"]
        assert v["grad_limit_interval"][0] > v["tau"]
    # the race: a faster P-flow lets momentum escape
    assert all(v["rule"] != "violated" for k, v in runs.items() if k.startswith("momentum/alpha=1/"))


def test_online_pca_converges(outcomes):
    out = outcomes["osd.online-pca"]
    _check_common(out, row_keys=("mode", "theta_max"))
    for key, v in out.measured["runs"].items():
        assert v["theta0"] > 1.0  # random starts far from the top subspace
        assert v["theta_max_final_window"] <= v["tau"]
        assert v["decay_ci"][1] < 0
        assert v["tau"] == pytest.approx(math.asin(O.ADAM_RATIO * 5e-3 * math.sqrt(32 * 4) / v["sigma_r_P"]))
        assert v["lr_P"] == pytest.approx(5e-3)
    # lambda = 0.1 reaches round-off on some start; the official lambda = 0 keeps a small floor
    assert min(v["theta_final"] for k, v in out.measured["runs"].items() if k.startswith("paper")) < 1e-12
    assert out.measured["worst_final_window_theta"]["official"] < 1e-2


# ---------------------------------------------------------------------------------------------- metamorphic

def _pca_case(k=12, l=20, r=3, seed=0):
    from subspace import stiefel
    from synthetic.spectra import geometric_spectrum, sample_spectral_matrix
    sm = sample_spectral_matrix(geometric_spectrum(k, 0.7), k, l, torch.Generator().manual_seed(seed))
    G, U = sm.matrix.double(), sm.U[:, :r].double()
    P0 = stiefel(k, r, torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    return G, U, P0


@pytest.mark.parametrize("mode", ["paper", "official"])
def test_online_pca_angles_invariant_under_right_rotation_and_signed_permutation(mode):
    """G -> G V^T (any orthogonal V) leaves the update unchanged (it sees G only through G G^T); G -> S G with a signed
    permutation S and P0 -> S P0 permutes Adam's coordinates: the angle trajectory is the same to round-off."""
    from subspace import stiefel
    k, l, r = 12, 20, 3
    G, U, P0 = _pca_case(k, l, r)
    grp = O.osd_group(mode, k=k, l=l, r=r)
    base = O.online_pca_trajectory(G, U, P0, grp, 500, every=10)
    Vr = stiefel(l, l, torch.Generator().manual_seed(2), dtype=torch.float64)
    right = O.online_pca_trajectory(G @ Vr.T, U, P0, grp, 500, every=10)
    gen = torch.Generator().manual_seed(3)
    S = torch.eye(k, dtype=torch.float64)[torch.randperm(k, generator=gen)]
    S = S * torch.where(torch.rand(k, 1, generator=gen) < 0.5, -1.0, 1.0).double()
    left = O.online_pca_trajectory(S @ G, S @ U, S @ P0, grp, 500, every=10)
    np.testing.assert_allclose(right["angles"], base["angles"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(left["angles"], base["angles"], rtol=1e-9, atol=1e-12)
    assert base["angles"][-1] < 1e-2 < base["angles"][0]


def test_online_pca_general_left_rotation_changes_the_path_not_the_limit():
    """Documented non-invariance: OSD moves P with Adam, which is coordinate-wise, so a general rotation U of the
    k-space (G -> U G, P0 -> U P0) changes the angle trajectory; both still converge to the top subspace."""
    from subspace import stiefel
    k, l, r = 12, 20, 3
    G, U, P0 = _pca_case(k, l, r)
    grp = O.osd_group("paper", k=k, l=l, r=r)
    Q = stiefel(k, k, torch.Generator().manual_seed(5), dtype=torch.float64)
    base = O.online_pca_trajectory(G, U, P0, grp, 600, every=10)
    rot = O.online_pca_trajectory(Q @ G, Q @ U, Q @ P0, grp, 600, every=10)
    assert np.max(np.abs(base["angles"] - rot["angles"])) > 1e-3
    assert base["angles"][-1] < 1e-3 and rot["angles"][-1] < 1e-3


@pytest.mark.parametrize("name", ["momentum", "adam", "lion"])
@pytest.mark.parametrize("projection", ["pca", "drift"])
def test_hamiltonian_trajectory_invariant_under_rotation_of_weight_space(name, projection):
    """System (7) is equivariant under W -> Q W, P -> Q P, L -> L(Q^T .) (Q orthogonal): the optimizer state lives in
    the projected space and the online-PCA flow is rotation-equivariant, so H(t), ||grad L|| and the tolerance are
    unchanged (the problem written twice)."""
    from subspace import stiefel
    prob, loss, grad = O.smooth_problem(torch.Generator().manual_seed(0))
    m, n, r = prob.m, prob.n, 2
    rng = np.random.default_rng(1)
    W0 = rng.standard_normal((m, n))
    P0 = stiefel(m, r, torch.Generator().manual_seed(2), dtype=torch.float64).numpy()
    Q = stiefel(m, m, torch.Generator().manual_seed(3), dtype=torch.float64).numpy()
    B = rng.standard_normal((r, r))
    B /= np.linalg.norm(B, 2)
    drift = O.drifting_projection(P0, B, scale=2.0, seed=4)
    proj = "pca" if projection == "pca" else drift
    proj_q = "pca" if projection == "pca" else (lambda t: Q @ drift(t))
    kw = dict(h=0.02, steps=300, smoothness=prob.L, tail_chunks=2, chunk=10, pca_rate=1.0)
    a = O.track(loss, grad, W0, P0, O.OPTIMIZERS[name], proj, **kw)
    b = O.track(lambda W: loss(Q.T @ W), lambda W: Q @ grad(Q.T @ W), Q @ W0, Q @ P0, O.OPTIMIZERS[name], proj_q,
                **kw)
    np.testing.assert_allclose(b["tr"].H, a["tr"].H, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b["grad_norm"], a["grad_norm"], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(b["tolerance"], a["tolerance"], rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(b["W"], Q @ a["W"], atol=1e-9)


# ---------------------------------------------------------------------------------------------- helpers

def test_limit_gradient_interval():
    D = 0.5 ** np.arange(8)  # contracting: the max of the last 4 is 1/16 of the first 4's
    lo, hi, R = O.limit_gradient_interval(2.0, D, 3.0)
    q = D[4] / D[0]
    assert R == pytest.approx(4 * D[4] * q / (1 - q))
    assert (lo, hi) == pytest.approx((2.0 - 3.0 * R, 2.0 + 3.0 * R))
    assert O.limit_gradient_interval(1.0, np.ones(6), 1.0)[1] == math.inf  # not contracting: no upper bound
    assert O.limit_gradient_interval(1.0, np.zeros(6), 1.0) == (1.0, 1.0, 0.0)  # at rest: the gradient is the limit
    assert math.isnan(O.limit_gradient_interval(1.0, [], 1.0)[0])  # no tail, no interval
    # the stationarity rule is three-valued: at rest above tau -> violated, still moving -> inconclusive
    run = {"gK": 1.0, "g0": 1.0, "displacements": np.zeros(6), "W": np.ones((2, 2))}
    assert O.stationarity_verdict(run, 1.0, "x")[0] == "violated"
    run["displacements"] = np.ones(6)
    assert O.stationarity_verdict(run, 1.0, "x")[0] == "inconclusive"
    run.update(gK=1e-6, displacements=np.zeros(6))
    assert O.stationarity_verdict(run, 1.0, "x")[0] == "holds"


def test_drifting_projection_is_smooth_full_rank_and_not_orthonormal():
    from subspace import stiefel
    P0 = stiefel(5, 2, torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    B = np.array([[0.0, 1.0], [1.0, 0.0]])
    sched = O.drifting_projection(P0, B, scale=2.0, seed=1)
    np.testing.assert_allclose(sched(0.0), P0, atol=1e-12)
    s = np.linalg.svd(sched(math.pi / 2), compute_uv=False)
    assert s.min() == pytest.approx(0.5) and s.max() == pytest.approx(1.5)
    assert np.linalg.norm(sched(1e-6) - sched(0.0)) < 1e-4


def test_davis_kahan_bound_dominates_the_measured_angle():
    from analysis.spectra import principal_angles
    G, U, _ = _pca_case()
    P = U + 0.01 * torch.randn(U.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert math.sin(principal_angles(P, U).max()) <= O.davis_kahan_bound(P, G) * (1 + 1e-9)


def test_osd_fig2_speedups_are_computed_from_the_timings(claim_cache):
    out = claim_cache.outcome("osd.fig2")
    times = {(r["method"], r["shape"]): r["value"] for r in out.rows if r["metric"] == "time_s" and r["method"] != "svd"}
    for shape, s in out.measured["speedup"].items():
        svd = next(r["value"] for r in out.rows if r["method"] == "svd" and r["shape"] == shape)
        assert s == pytest.approx(svd / times[("online-pca", shape)])
    assert out.verdict == ("holds" if min(out.measured["speedup"].values()) > 1 else "violated")


# ------------------------------------------------------------------------------------------- Figure 3 (proxy)

def test_fig3_proxy_orderings_hold_with_significance(outcomes):
    out = outcomes["osd.fig3"]
    _check_common(out, measured_keys=("final_loss_mean", "lambda_diff_ci90", "lambda_margin", "p_values"),
                  row_keys=("sweep", "value"))
    assert default_registry().get("osd.fig3").kind == "reading"
    mean = out.measured["final_loss_mean"]
    assert mean["r=8,alpha=5,lambda=0.1"] < mean["r=4,alpha=5,lambda=0.1"] < mean["r=2,alpha=5,lambda=0.1"]
    assert mean["r=4,alpha=5,lambda=0.1"] < mean["r=4,alpha=50,lambda=0.1"]
    assert all(p < 0.05 for p in out.measured["p_values"].values())
    delta = out.measured["lambda_margin"]
    assert all(-delta <= lo <= hi <= delta for lo, hi in out.measured["lambda_diff_ci90"].values())
    fig = default_registry().get("osd.fig3").draw(out.rows)
    assert len(fig.axes) == 3
    fig.clear()


def test_fig3_rule_is_not_vacuous():
    """Negative control: swapping the roles (claiming r = 2 beats r = 4) is rejected by the same rule."""
    a, b = [2.1, 2.2, 2.0, 2.3], [0.5, 0.45, 0.52, 0.48]
    assert V.ordering_significant(a, b, paired=True) == "violated"


def test_stationarity_aggregate():
    """A still-moving run is not evidence; a stall is a counterexample; fewer than a quarter decided: inconclusive."""
    h = V.ci_at_most(0.0, 0.01, 0.1)
    moving = V.ci_at_most(0.0, 1.0, 0.1)
    stall = V.ci_at_most(0.5, 0.6, 0.1)
    assert O.stationarity_aggregate([h, h] + [moving] * 6) == "holds"
    assert O.stationarity_aggregate([h] + [moving] * 7) == "inconclusive"
    assert O.stationarity_aggregate([h, h, h, stall]) == "violated"
    v = O.stationarity_aggregate([h, h, h, moving])
    assert V.recompute(v) == v


def test_cheapest_stochastic_claim_same_verdict_at_two_seed_families():
    """Issue 10 item 2: the verdict is a property of the claim, not of the seed family."""
    from claims.registry import Context
    fn = default_registry().get("osd.adam-a-below-b4").fn
    verdicts = [fn(Context("osd.adam-a-below-b4", scale="quick", seed_family=f)).verdict for f in (0, 1)]
    assert verdicts[0] == verdicts[1] == "holds", [v.reason for v in verdicts]
