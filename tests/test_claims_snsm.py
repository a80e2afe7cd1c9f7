"""Subset-Norm / Subspace-Momentum claims (claims/snsm.py): each runs at quick scale with the expected verdict, its
verdict follows from its numbers, and the measurements do not change under transformations that should not matter."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from claims import snsm as S
from claims import verdicts as V
from claims.registry import default_registry
from claim_checks import check_outcome as _check_common

IDS = ("sn.memory", "sn.rates", "sm.convergence")


@pytest.fixture(scope="module")
def outcomes(claim_cache):
    """Every SN-SM claim once at quick scale (~10 s in total on 2 cores)."""
    return claim_cache.outcomes(IDS)


def test_registered_with_docstrings():
    reg = default_registry()
    for cid in IDS:
        c = reg.get(cid)
        assert c.paper == "SN-SM" and c.draw is not None
        doc = c.doc.lower()
        assert "rule" in doc and "holds" in doc, cid


# ---------------------------------------------------------------------------------------------- sn.memory

def test_memory_second_moment_is_sqrt_d(outcomes):
    out = outcomes["sn.memory"]
    _check_common(out, row_keys=("d", "second_moment", "first_moment", "bytes"))
    assert out.measured["exponent"] == pytest.approx({"1": 1.0, "sqrt": 0.5, "d": 0.0, "heuristic": 0.5}, abs=1e-12)
    for d, c in out.measured["counts"]["sqrt"].items():
        assert c == math.isqrt(int(d)) == out.measured["counts"]["heuristic"][d]
    assert set(out.measured["counts"]["d"].values()) == {1}
    # the caveat: Adam-SN keeps a full first moment, so its total state is ~d (half of Adam's 2d), not O(sqrt d)
    assert 0.95 < out.measured["total_state_exponent"]["sqrt"] < 1.0
    assert out.measured["adam_sn_total_over_adam_at_dmax"]["sqrt"] == pytest.approx(0.5, abs=0.01)
    for r in out.rows:
        assert r["first_moment"] == r["d"] and r["second_moment"] == r["closed_form"]
        assert r["bytes"] == 4 * (r["first_moment"] + r["second_moment"])  # float32 state
    for shape, v in out.measured["heuristic_non_square"].items():
        assert v["second"] == 2 * v["sqrt_d"]  # m x 4m: max(m, n) = 4m = 2 sqrt(d)


@pytest.mark.parametrize("subset", [1, 3, 8, 64, "heuristic"])
def test_memory_counts_do_not_depend_on_the_matrix_values(subset):
    """Metamorphic: the state the optimizer allocates depends on the shape and the subset rule only."""
    shape = (8, 8)
    grads = [torch.zeros(shape), torch.randn(shape, generator=torch.Generator().manual_seed(0)),
             1e6 * torch.randn(shape, generator=torch.Generator().manual_seed(1)), -torch.ones(shape)]
    counts = [S.second_moment_count(shape, subset, grad=g) for g in grads]
    for c in counts[1:]:
        assert c == counts[0]
    assert counts[0]["second"] == counts[0]["closed_form_second"]
    # subset 3 does not divide 64: the code rounds down to the largest divisor (2), so 32 subsets
    if subset == 3:
        assert counts[0]["second"] == 32


# ---------------------------------------------------------------------------------------------- sn.rates

def test_rates_exponents_within_the_bounds(outcomes):
    from analysis.bounds import subset_norm_exponents
    out = outcomes["sn.rates"]
    _check_common(out, row_keys=("d", "beta", "k", "steps_to_eps"))
    tol = out.predicted["tolerance"]
    assert tol == pytest.approx(S.log_factor_tolerance(16, 1024)) and 0.2 < tol < 0.25
    labels = {"1": "k=1", "sqrt": "k=sqrt(d)", "d": "k=d"}
    for beta in (0.0, 1.0):
        for lab, name in labels.items():
            key = f"{name}, beta={beta:g}"
            a, b = subset_norm_exponents(lab, beta)
            assert out.predicted["exponent"][key] == max(2 * a, b)
            e = out.measured["exponents"][key]
            assert e["censored"] == 0 and e["ci"][0] <= e["slope"] <= e["ci"][1]
            assert e["ci"][1] <= max(2 * a, b) + tol and e["ci"][1] - e["ci"][0] <= 1.0
            # only a bound the measured exponent comes within one power of d of decides (issue 10, item 5)
            assert e["bound_binds"] == (e["ci"][1] >= max(2 * a, b) - S.BIND_GAP)
    assert [k for k, e in out.measured["exponents"].items() if e["bound_binds"]] == ["k=d, beta=0"]
    assert len(out.measured["untested_parts"]) == 5
    # what the quick range resolves: coordinate-wise AdaGrad pays for the dimension, subset/norm barely do
    slope = out.measured["slope"]
    assert slope["k=1, beta=1"] > slope["k=d, beta=1"] + 0.3
    assert slope["k=sqrt(d), beta=0"] < 0.1 and abs(slope["k=d, beta=0"]) < 0.2
    for r in out.rows:
        assert r["d"] % r["k"] == 0 and r["steps_to_eps"] >= 1
    # the negative control (eta shrinking as d^(-1/4)) grows about like sqrt(d), and the same rule rejects it
    control = out.measured["negative_control"]
    assert control["rule"] == "violated" and control["censored"] == 0 and 0.3 < control["slope"] < 0.7
    assert control["ci"][0] > tol


def test_adagrad_sn_invariant_to_rescaling_the_loss():
    """Metamorphic: AdaGrad-SN's step g / sqrt(sum ||g_Psi||^2) is invariant to f -> c f (with the noise scaled by c),
    so the iterations to c^2 eps equal those to eps (denominator eps set to 0 so that nothing breaks the scaling)."""
    def run(c, k):
        return S.adagrad_sn_steps_to_eps(
            36, 1.0, k, seeds=2, eta=1 / 9, eps=0.81 * c ** 2, t_max=3000, sigma=c, rho=4.0 * c, curvature=c,
            denom_eps=0.0, problem_seed=lambda s: 10 + s, noise_generator=torch.Generator().manual_seed(5),
            init_generator=torch.Generator().manual_seed(6))

    for k in (1, 6, 36):
        base, scaled = run(1.0, k), run(3.0, k)
        np.testing.assert_array_equal(scaled["T_eps"], base["T_eps"])
        assert not np.isnan(base["T_eps"]).any()


def test_adagrad_sn_norm_version_matches_a_hand_loop_and_censors():
    """k = d is AdaGrad-Norm: one scalar b^2 accumulating ||g||^2; the helper's T(eps) matches a direct loop, and a
    too-short budget returns NaN (censored) instead of a number."""
    from synthetic.noise import CoordinateNoiseProblem
    d, eta, eps = 16, 1 / 9, 0.81
    out = S.adagrad_sn_steps_to_eps(d, 0.0, d, seeds=1, eta=eta, eps=eps, t_max=5000, problem_seed=lambda s: 7,
                                    noise_generator=torch.Generator().manual_seed(1),
                                    init_generator=torch.Generator().manual_seed(2))
    prob = CoordinateNoiseProblem(d, 0.0, 1.0, seed=7, init_scale=1 / 4)
    x = prob.x0(torch.Generator().manual_seed(2))
    gen = torch.Generator().manual_seed(1)
    b2, cum, T = 0.0, 0.0, None
    for t in range(1, 5001):
        g = prob.grad(x)
        cum += float((g * g).sum())
        if cum / t <= eps:
            T = t
            break
        gs = g + prob.noise.scales * torch.randn(1, d, generator=gen, dtype=torch.float64)[0]
        b2 += float((gs * gs).sum())
        x = x - eta * gs / (math.sqrt(b2) + 1e-8)
    assert T is not None and out["T_eps"][0] == T
    short = S.adagrad_sn_steps_to_eps(d, 0.0, d, seeds=1, eta=eta, eps=eps, t_max=2, problem_seed=lambda s: 7,
                                      noise_generator=torch.Generator().manual_seed(1),
                                      init_generator=torch.Generator().manual_seed(2))
    assert np.isnan(short["T_eps"][0])


# ---------------------------------------------------------------------------------------------- sm.convergence

def test_sm_convergence_rate(outcomes):
    out = outcomes["sm.convergence"]
    _check_common(out, row_keys=("horizon", "min_grad_sq", "avg_grad_sq", "lr"))
    for m in ("adam-snsm", "sm-sgd"):
        v = out.measured[m]
        assert v["ci"][1] <= -0.5 + S.RATE_TOL
        assert v["min_grad_sq_at_T"][1024] < v["min_grad_sq_at_T"][128]
    # the negative control (step frozen at its T_min value) plateaus and the rule rejects it
    assert out.measured["control_rule"] == "violated" and out.measured["control"]["ci"][0] > -0.5 + S.RATE_TOL
    # the noise level follows its rule: the theory step is below the 1/(2L) cap at every horizon
    L, sigma = out.measured["L"], out.measured["sigma"]
    assert sigma > 1.0
    for r in out.rows:
        if r["method"] == "sm-sgd":
            assert r["lr"] <= 1.0 / (2.0 * L) * (1 + 1e-12)


def test_sm_sgd_full_rank_is_ema_momentum_sgd():
    """With rank = min(m, n) and no refresh inside the run, the SM numerator Q M + (G - Q Q^T G) is Q M with
    Q Q^T = I, i.e. plain EMA-momentum SGD: the 'sm-sgd' override of the core preset matches a hand loop."""
    from synthetic import SmoothMatrixProblem
    prob = SmoothMatrixProblem.random(m=6, n=4, p=5, rho=0.5, sigma=0.3, generator=0)
    W0 = prob.x0(torch.Generator().manual_seed(1))
    sq = S.sm_run(prob, "sm-sgd", T=40, lr=0.05, W0=W0, rank=4, gap=1000,
                  noise_generator=torch.Generator().manual_seed(2))
    W, M = W0.clone(), torch.zeros_like(W0)
    gen = torch.Generator().manual_seed(2)
    ref = []
    for _ in range(40):
        ref.append(float((prob.grad(W) ** 2).sum()))
        g = prob.stochastic_grad(W, gen)
        M = 0.9 * M + 0.1 * g
        W = W - 0.05 * M
    np.testing.assert_allclose(sq, ref, rtol=1e-9)


def test_sm_run_differs_from_sgd_when_the_rank_is_low():
    """Sanity of the comparison above: with rank < min(m, n) the momentum only acts in the subspace."""
    from synthetic import SmoothMatrixProblem
    prob = SmoothMatrixProblem.random(m=6, n=4, p=5, rho=0.5, sigma=0.3, generator=0)
    W0 = prob.x0(torch.Generator().manual_seed(1))
    a = S.sm_run(prob, "sm-sgd", T=30, lr=0.05, W0=W0, rank=1, gap=10, noise_generator=torch.Generator().manual_seed(2))
    b = S.sm_run(prob, "sm-sgd", T=30, lr=0.05, W0=W0, rank=4, gap=10, noise_generator=torch.Generator().manual_seed(2))
    assert np.max(np.abs(a - b)) > 1e-6
