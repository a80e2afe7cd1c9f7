"""GoLore claims (claims/golore.py): each runs at quick scale, its verdict follows from its numbers, its rows have
the long format, and the lemma's measurement is invariant under rotations and rescalings of G."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from claims import golore as CG
from claims import verdicts as V
from claims.registry import default_registry
from claim_checks import check_outcome as _check_common

# GaLore-MSGD stalls at the same point for every seed; recomputing its Welch test warns about identical data
pytestmark = pytest.mark.filterwarnings("ignore:Precision loss occurred:RuntimeWarning")

IDS = ("golore.counterexample", "golore.thm2", "golore.thm3", "golore.thm4", "golore.lemma5", "golore.hybrid",
       "golore.memory-arithmetic", "golore.prop1", "golore.noise-dominates", "golore.complexity")
#: The verdict every GoLore claim reaches at quick scale, at every seed family (issue 10, item 2).
EXPECTED = {cid: "holds" for cid in IDS}


@pytest.fixture(scope="module")
def outcomes(claim_cache):
    """Every GoLore claim once at quick scale (shared by the tests below; ~25 s in total on 2 cores)."""
    return claim_cache.outcomes(IDS)


def test_registered_with_docstrings():
    reg = default_registry()
    for cid in IDS:
        c = reg.get(cid)
        assert c.paper == "GoLore" and c.draw is not None
        doc = c.doc.lower()
        assert "rule" in doc and ("holds" in doc or "contain" in doc), cid


def test_counterexample_galore_stalls(outcomes):
    out = outcomes["golore.counterexample"]
    _check_common(out, ("galore_gap_adamw", "galore_gap_msgd", "max_other_gap_hi", "threshold"),
                  ("galore_gap_at_least", "other_gaps_at_most", "f_star"), ("optimizer", "loss", "gap"))
    # Theorem 1 is reproduced: GaLore stalls (gap >> tau) while the other three arms reach f* with both optimizers
    tau = out.measured["threshold"]
    assert math.isclose(out.predicted["f_star"], -23.2174, abs_tol=1e-4)
    assert math.isclose(tau, CG.GAP_FRACTION * out.predicted["initial_gap"])
    assert out.measured["galore_gap_adamw"] > tau and out.measured["galore_gap_msgd"] > tau
    assert out.measured["max_other_gap_hi"] < tau
    # the mechanism: GaLore's final iterate satisfies ||grad f||_2 < sigma in every run
    assert out.measured["galore_stall_condition_final"] == {"adamw": 1.0, "msgd": 1.0}
    methods = {(r["optimizer"], r["method"]) for r in out.rows}
    assert methods == {(o, m) for o, g in (("adamw", "golore@50%"), ("msgd", "golore@75%"))
                       for m in ("full", "galore", "large-batch", g)}
    # every row's gap is loss - f*
    r = out.rows[-1]
    assert math.isclose(r["gap"], r["loss"] - out.predicted["f_star"], rel_tol=1e-12, abs_tol=1e-12)


def test_counterexample_run_matches_the_problem_oracle():
    """The fast gradient in counterexample_run is problem (1)'s oracle: one SGD step by hand equals one step of the
    loop (full-parameter MSGD with mu = 0.9 starts with M = g, so X1 = X0 - lr g)."""
    from synthetic import GoLoreCounterexample
    prob = GoLoreCounterexample()
    g = torch.Generator().manual_seed(3)
    xi = float(CG.rademacher_means(1, 1, g)[0])
    expected = prob.x0() - 0.01 * (prob.grad(prob.x0()) + xi * prob.sigma * prob.C)
    run = CG.counterexample_run(prob, optimizer="msgd", arm="full", steps=1, lr=0.01,
                                noise_generator=torch.Generator().manual_seed(3))
    assert torch.allclose(run["X"], expected, atol=1e-14)
    assert math.isclose(run["loss"][-1], float(prob.loss(expected)), rel_tol=1e-12)


@pytest.mark.parametrize("opt", ["adamw", "msgd"])
def test_batched_problem1_matches_the_core(opt, monkeypatch):
    """problem1_batched is counterexample_run (the core optimizers) for every arm: same noise, same basis seeds,
    450 steps with refreshes every 100 (GoLore@50% switches at 225; pure GoLore draws Stiefel bases throughout)."""
    from synthetic import GoLoreCounterexample
    prob = GoLoreCounterexample()
    steps = 450
    arms = [("full", None), ("galore", None), ("large-batch", None), ("golore", 0.5), ("golore", None)]
    runs = [dict(optimizer=opt, arm=a, lr=1e-2, fraction=f, basis_seed=7 + i) for i, (a, f) in enumerate(arms)]
    out = CG.problem1_batched(prob, runs, steps=steps, gap=100, refresh_batch=1000,
                              noise_generator=torch.Generator().manual_seed(3), log_every=50)
    for e, u in enumerate(runs):
        col = out["xi"][:, e].clone()
        monkeypatch.setattr(CG, "rademacher_means", lambda n, b, g, col=col: (col[:n] if b == 1 else col[::100][:n]).clone())
        ref = CG.counterexample_run(prob, optimizer=opt, arm=u["arm"], steps=steps, lr=1e-2, gap=100,
                                    fraction=u["fraction"], refresh_batch=1000, noise_generator=None,
                                    basis_seed=u["basis_seed"], log_every=50)
        assert np.allclose(ref["loss"], out["loss"][e], rtol=0, atol=1e-12), u
        assert torch.allclose(ref["X"], out["X"][e], rtol=0, atol=1e-12), u


def test_rademacher_means_law():
    g = torch.Generator().manual_seed(0)
    one = CG.rademacher_means(20_000, 1, g)
    assert set(one.unique().tolist()) == {-1.0, 1.0}
    big = CG.rademacher_means(20_000, 100, g)
    # mean 0, variance 1/batch; values on the lattice (2k - b)/b
    assert abs(float(big.mean())) < 4 * math.sqrt(1 / 100 / 20_000)
    assert math.isclose(float(big.var()), 1 / 100, rel_tol=0.05)
    lattice = big * 100
    assert torch.allclose(lattice, lattice.round(), atol=1e-9) and bool((lattice.round() % 2 == 0).all())


@pytest.mark.parametrize("cid,exponent", [("golore.thm2", -1.0), ("golore.thm3", -0.5), ("golore.thm4", -0.5)])
def test_rate_claims(outcomes, cid, exponent):
    out = outcomes[cid]
    _check_common(out, ("T_exponent_ratio", "T_exponent_ci", "delta_exponent_ratio", "tail_slope",
                        "control_verdict_same_rule", "bound_binds_in_T"),
                  ("exponent", "tolerance", "T_exponent_ratio_at_most", "delta_exponent_ratio_at_least"),
                  ("horizon", "rank", "delta", "avg_grad_sq", "ratio", "eta", "beta1", "tau", "batch"))
    assert out.predicted["exponent"] == exponent
    # the bound binds in T (A_T / P neither grows nor falls), the delta sweep is there, and the control is rejected
    assert out.measured["bound_binds_in_T"]
    assert out.measured["control_verdict_same_rule"] == "violated"
    assert len({r["rank"] for r in out.rows if r["method"] != "galore-batch1"}) == 3


def test_rate_schedules_are_the_theorems():
    """Seed 004's formulas, spot-checked by hand at delta = 0.4, L = 1."""
    s2 = CG.theorem_schedule(2, 0.4, 1.0, 24.0, 4.0, 1000)
    assert s2["beta1"] == 1.0 and s2["tau"] == math.ceil(64 / 1.2)
    assert s2["eta"] == pytest.approx(1 / (4 + math.sqrt(80 / 1.2) + math.sqrt(80 * 54 ** 2 / 1.2)
                                           + math.sqrt(16 * 54 / 3)))
    s4 = CG.theorem_schedule(4, 0.4, 1.0, 24.0, 4.0, 10_000)
    b = 1 / (1 + math.sqrt(0.4 ** 1.5 * 4 * 10_000 / 24))
    assert s4["beta1"] == pytest.approx(b) and s4["batch"] == 1
    s3 = CG.theorem_schedule(3, 0.4, 1.0, 24.0, 4.0, 10_000)
    assert s3["batch"] == math.ceil(1 / (0.4 * b))
    assert s3["T_min"] == pytest.approx(2 + 128 / 1.2 + 128 ** 2 * 4 / (9 * math.sqrt(0.4) * 24))


@pytest.mark.parametrize("kind", ["svd", "stiefel"])
def test_batched_simulator_matches_the_core(kind):
    """msgd_mp_batched is the core's galore-sgdm / golore-sgdm (momentum = dampening = 1 - beta1, zero init,
    transport, left side, scale 1): same trajectory over 250 steps with refreshes every 40 steps."""
    import subspace
    from synthetic import GoLoreCounterexample
    prob = GoLoreCounterexample()
    beta, eta, tau, T, r = 0.3, 0.05, 40, 250, 4
    g = torch.Generator().manual_seed(1)
    noise = (torch.randint(0, 2, (T,), generator=g) * 2 - 1).double()
    bases = [torch.linalg.qr(torch.randn(10, r, generator=g, dtype=torch.float64))[0] for _ in range(T // tau + 1)]
    p = torch.nn.Parameter(prob.x0())
    calls = []

    def projector(A, rank, t):
        calls.append(t)
        return bases[len(calls) - 1].to(A)

    opt = subspace.make("galore-sgdm", [p], lr=eta, rank=r, update_gap=tau, scale=1.0, side="left",
                        momentum=1 - beta, dampening=1 - beta, momentum_init="zero", moment_on_refresh="transport",
                        projector="svd" if kind == "svd" else projector)
    ref = []
    for t in range(T):
        G = prob.grad(p.detach())
        ref.append(float((G * G).sum()))
        p.grad = G + noise[t] * prob.C
        opt.step()

    class FakeGen:  # the simulator draws Gaussian Z; feed it the same bases through an orthonormal Z
        pass

    it = iter(bases)
    orig = torch.randn
    try:
        if kind == "stiefel":
            torch.randn = lambda *a, **k: next(it).unsqueeze(0)
        out = CG.msgd_mp_batched(lambda X: X * np.r_[np.ones(6), np.zeros(4)][:, None] + prob.B.numpy(),
                                 prob.x0().numpy()[None], ranks=[r], projector=kind, eta=[eta], beta1=[beta],
                                 tau=[tau], steps=[T], noise_fn=lambda t0, t1: (noise[t0:t1].view(-1, 1, 1, 1)
                                                                              * prob.C).numpy(), sampler="polar")
    finally:
        torch.randn = orig
    assert np.allclose(out["X"][0], p.detach().numpy(), rtol=1e-9, atol=1e-9)
    assert np.allclose(out["grad_sq"][0], ref, rtol=1e-9, atol=1e-12)


def test_lemma5_holds_and_reports_official_sampler(outcomes):
    out = outcomes["golore.lemma5"]
    _check_common(out, ("resid_ratio", "resid_ci", "proj_max_dev", "official_polar"),
                  ("resid_ratio", "proj_diag", "proj_offdiag"), ("resid_ratio", "resid_lo", "resid_hi"))
    # exact math: both 99% intervals contain the predicted values
    lo, hi = out.measured["resid_ci"]
    assert lo <= 0.6 <= hi and out.predicted["resid_ratio"] == pytest.approx(0.6)
    # trace(P P^T) = r for every sample, so the diagonal mean is r/m up to float32 round-off
    assert out.measured["proj_diag_mean"] == pytest.approx(0.4, abs=1e-6)
    off = out.measured["official_polar"]
    assert off["consistent"] and off["resid_ci"][0] <= 0.6 <= off["resid_ci"][1]
    assert {r["method"] for r in out.rows} == {"stiefel-qr", "golore-official-polar"}


def _haar(m, g):
    Q, R = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))


def test_lemma5_metamorphic_rotation_and_scale():
    """The lemma's measurement depends on G only through ||G||: rotating G (U G V) or rescaling it leaves the
    normalised residual unchanged within the Monte Carlo interval (exactly, for V and for scalars, with the same
    draws)."""
    g = torch.Generator().manual_seed(11)
    G = torch.randn(10, 7, generator=g, dtype=torch.float64) @ torch.diag(torch.tensor(
        [5.0, 3.0, 1.0, 0.5, 0.1, 0.01, 0.0], dtype=torch.float64))
    U, W = _haar(10, g), _haar(7, g)
    N, r = 4000, 4

    def measure(M, seed=5):
        return CG.stiefel_moments(M, r, N, torch.Generator().manual_seed(seed), sampler="subspace", level=0.99)

    base = measure(G)
    assert base["resid_ci"][0] <= 1 - r / 10 <= base["resid_ci"][1]
    for M in (G @ W, 1e3 * G, 1e-3 * G):  # same draws: identical up to round-off
        e = measure(M)
        assert e["resid_ratio"] == pytest.approx(base["resid_ratio"], rel=1e-9)
        assert e["resid_se"] == pytest.approx(base["resid_se"], rel=1e-6)
    z = 2.5758293035489004  # 99% two-sided
    for M in (U @ G, U @ G @ W, 7.0 * U @ G):  # a left rotation changes the draws' alignment: agree within CI
        e = measure(M)
        assert abs(e["resid_ratio"] - base["resid_ratio"]) <= z * math.hypot(e["resid_se"], base["resid_se"])
        assert e["resid_ci"][0] <= 1 - r / 10 <= e["resid_ci"][1]
    # E[P P^T] does not involve G at all: the projector statistics are identical
    assert np.array_equal(measure(7.0 * U @ G)["mean"], base["mean"])


def test_hybrid_golore_beats_galore(outcomes):
    out = outcomes["golore.hybrid"]
    _check_common(out, ("max_p", "galore_gap_adamw", "galore_gap_msgd", "golore_gap_adamw", "golore_gap_msgd"),
                  ("alpha",), ("optimizer", "fraction", "gap", "final"))
    # every GoLore@x% ends significantly below GaLore's plateau (Bonferroni alpha = 0.05/6)
    assert out.predicted["alpha"] == pytest.approx(0.05 / 6)
    assert out.measured["max_p"] < out.predicted["alpha"]
    for opt in ("adamw", "msgd"):
        gaps = out.measured[f"golore_gap_{opt}"]
        assert set(gaps) == {"golore@20%", "golore@50%", "golore@75%"}
        assert max(gaps.values()) < out.measured[f"galore_gap_{opt}"]
    finals = [r for r in out.rows if r["final"]]
    assert len(finals) == 2 * 4 * 16  # optimizers x arms x seeds


def test_figures_draw_from_rows(outcomes, tmp_path):
    from analysis import plotting as P
    reg = default_registry()
    for cid in IDS:
        with P.style():
            fig = reg.get(cid).draw(outcomes[cid].rows)
            assert fig is not None and fig.axes
            paths = P.save_figure(fig, tmp_path / cid, formats=("png",))
            P.close(fig)
        assert paths[0].stat().st_size > 0


def test_memory_arithmetic_counts(outcomes):
    out = outcomes["golore.memory-arithmetic"]
    _check_common(out, ("P_llama7b", "P_gpt3", "a100_gpt3"), ("llama7b_total_GB", "gpt3_total_GB"), ("term", "GB"))
    assert out.measured["P_llama7b"] == 6_738_415_616  # the published LLaMA-7B count
    assert abs(out.measured["P_gpt3"] / 175e9 - 1) < 0.005


def test_prop1_law_and_control(outcomes):
    out = outcomes["golore.prop1"]
    _check_common(out, ("p_values", "control_p_values"), ("p_at_least",), ("quantile", "empirical", "haar"))
    assert out.measured["control_verdict"] == "violated"


def test_cheap_claims_same_verdict_at_families_0_and_1():
    """Verdicts are properties of claims, not of seeds (issue 10, item 2): the cheapest GoLore claims agree (the
    three problem-(1) claims share one batch of runs per family, so together they cost one batch)."""
    from claims.registry import Context
    reg = default_registry()
    for cid in ("golore.memory-arithmetic", "golore.prop1", "golore.lemma5", "golore.counterexample",
                "golore.hybrid", "golore.noise-dominates"):
        fn = reg.get(cid).fn
        v0, v1 = (fn(Context(cid, scale="quick", seed_family=f)).verdict.value for f in (0, 1))
        assert v0 == v1 == EXPECTED[cid], cid


@pytest.mark.slow
def test_all_claims_same_verdict_at_families_0_1_2():
    """Issue 10, item 2: every GoLore claim at quick scale reaches the same verdict at seed families 0, 1 and 2."""
    from claims.registry import Context
    reg = default_registry()
    for cid in IDS:
        fn = reg.get(cid).fn
        verdicts = [fn(Context(cid, scale="quick", seed_family=f)).verdict.value for f in (0, 1, 2)]
        assert verdicts == [EXPECTED[cid]] * 3, (cid, verdicts)


def test_problem1_claims_share_one_batch():
    """counterexample, hybrid and noise-dominates read the same cached runs (one batch per family and scale)."""
    from claims.registry import Context
    a = CG.problem1_runs(Context("golore.counterexample", scale="quick", seed_family=0))
    b = CG.problem1_runs(Context("golore.hybrid", scale="quick", seed_family=0))
    assert a is b and a["seed_id"] == CG.P1_RUNS_ID
    assert len(a["runs"]) == 2 * len(CG._P1_ARMS) * a["cfg"]["seeds"]


def test_noise_dominates(outcomes):
    out = outcomes["golore.noise-dominates"]
    _check_common(out, ("max_rho_final_hi", "min_rho_0"), ("rho_0_above", "rho_final_below", "noise_fro"),
                  ("optimizer", "grad_fro", "rho"))
    assert out.predicted["noise_fro"] == pytest.approx(2.0)  # sigma sqrt(r), sigma = 1, r = 4
    assert out.measured["min_rho_0"] > 1 > out.measured["max_rho_final_hi"]
    for key in ("adamw/galore", "msgd/galore", "adamw/golore@100%", "msgd/golore@100%"):
        v = out.measured[key]
        assert 0 < v["crossing_step"] < 3000 and v["crossing_ci"][0] <= v["crossing_step"] <= v["crossing_ci"][1]
    # rho is ||grad f||_F / 2 row by row
    r = out.rows[5]
    assert r["rho"] == pytest.approx(r["grad_fro"] / 2.0)


def test_complexity_counts_and_crossover(outcomes):
    from analysis.flops import golore_table_flops, linear_layer_flops
    from analysis.symbolic import golore_complexity, golore_crossover_rank
    out = outcomes["golore.complexity"]
    _check_common(out, ("r_star_table", "measured_crossover_rank", "grad_A_rel_err"), ("r_star", "min_mn"),
                  ("rank", "t_standard_s", "t_factorized_s", "ratio", "flops_ratio_exact"))
    assert out.measured["exact_minus_table"] == {"galore": "0", "factorized": "b*m + b*n"}
    # numerically, item by item: the table is the exact count minus the factorized form's two sums
    m, n, r, b = 96, 160, 12, 64
    ex, tab = linear_layer_flops(m, n, r, b)["totals"], golore_table_flops(m, n, r, b)
    assert ex["galore"] == tab["galore"] and ex["factorized"] - tab["factorized"] == b * (m + n)
    # r* makes the two table counts equal, and tends to 2mn/(4m + 6n) for b >> m, n (a colleague's formula)
    rs = golore_crossover_rank(m, n, b)
    t_lo, t_hi = golore_table_flops(m, n, math.floor(rs), b), golore_table_flops(m, n, math.ceil(rs), b)
    assert t_lo["factorized"] <= t_lo["galore"] and t_hi["factorized"] >= t_hi["galore"]
    assert golore_crossover_rank(m, n, 10 ** 9) == pytest.approx(2 * m * n / (4 * m + 6 * n), rel=1e-6)
    assert golore_crossover_rank(256, 256, 8) == math.inf  # tiny batch: the projection dominates, always cheaper
    assert str(golore_complexity()["r_star_large_batch"]) == "m*n/(2*m + 3*n)"
    assert out.measured["r_star_table"] < out.predicted["min_mn"]
