"""sympy derivations, certified thresholds and FLOP counts (SUMO Remark 3.7, Muon's quintic)."""
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import brentq

from analysis import (cubic_error_recursion, cubic_ns_error, find_cycle, fixed_points, flops_matmul, flops_ns,
                      flops_ns_step, flops_online_pca_step, flops_qr_gaussian, flops_randomized_svd, flops_svd,
                      iterate_polynomial, level_threshold, odd_polynomial, sumo_flops_expressions,
                      sumo_flops_ratio, sumo_remark37_flops)
from analysis.symbolic import e_sym, x_sym

def p(x):
    return iterate_polynomial(x, "muon", 1)


def test_fixed_points_match_numeric_iteration():
    fps = fixed_points("muon")
    assert [round(f.x, 4) for f in fps] == [0.8680, 1.2637]
    assert all(f.kind == "repelling" for f in fps)
    assert fps[0].multiplier == pytest.approx(1.5824, abs=1e-4)   # |p'| ~ 1.58 (p' ~ -1.58)
    poly = odd_polynomial("muon")
    dp = sp.diff(poly, x_sym)
    for f in fps:
        assert sp.simplify(poly.subs(x_sym, f.exact) - f.exact) == 0            # exact fixed point
        assert float(p(f.x)) == pytest.approx(f.x, abs=1e-13)                   # numeric map agrees
        assert f.x == pytest.approx(brentq(lambda t: float(p(t)) - t, f.x - 0.05, f.x + 0.05), abs=1e-12)
        # one numeric step multiplies a small perturbation by p'(x*)
        d = 1e-7
        assert abs((float(p(f.x + d)) - f.x) / d) == pytest.approx(f.multiplier, rel=1e-5)
        assert abs(float(dp.subs(x_sym, f.exact))) == pytest.approx(f.multiplier, rel=1e-12)
    # the cubic's fixed point is 1 with multiplier 0 (superattracting)
    cub = fixed_points((1.5, -0.5))
    assert len(cub) == 1 and cub[0].x == pytest.approx(1.0) and cub[0].multiplier == pytest.approx(0.0)


def test_four_cycle_from_one():
    cyc = find_cycle(1.0, "muon")
    assert cyc.period == 4
    np.testing.assert_allclose(cyc.points, [0.6819, 1.1343, 0.7529, 1.0469], atol=1e-4)
    assert cyc.multiplier < 1   # attracting: that is why the orbit of 1 settles on it
    assert iterate_polynomial(cyc.points[0], "muon", 4) == pytest.approx(cyc.points[0], abs=1e-12)
    # plain numeric iteration from x0 = 1 lands on the cycle
    x = float(iterate_polynomial(1.0, "muon", 400))
    assert min(abs(x - c) for c in cyc.points) < 1e-9


def test_level_threshold_certified():
    t = level_threshold(0.68)
    assert t.certified
    assert t.x_hi == pytest.approx(1.50e-3, rel=1e-2)
    assert iterate_polynomial(t.x_lo, "muon", 5) < 0.68 <= iterate_polynomial(t.x_hi, "muon", 5)
    xs = np.linspace(1e-6, t.x_lo, 20001)
    assert iterate_polynomial(xs, "muon", 5).max() < 0.68      # nothing smaller reaches the level
    assert level_threshold(0.5).x_hi == pytest.approx(1.07e-3, rel=1e-2)


@given(st.floats(0.05, 1.2), st.integers(1, 6))
def test_level_threshold_property(level, steps):
    t = level_threshold(level, "muon", steps)
    assert t.certified and t.x_lo < t.x_hi
    assert t.x_hi - t.x_lo <= 1e-10 * t.x_hi
    ys = iterate_polynomial(np.linspace(0.0, t.x_lo, 2001), "muon", steps)
    assert ys.max() < level


def test_threshold_refuses_unreachable_level():
    with pytest.raises(ValueError):
        level_threshold(1.3)   # above max p^5 = 1.2024 on the monotone branch


def test_cubic_error_recursion_symbolic_and_numeric():
    expr = cubic_error_recursion()
    assert sp.simplify(expr - e_sym ** 2 * (3 - e_sym) / 2) == 0
    for e0 in (0.0, 0.3, 0.9, 1.0):
        s = 1 - e0
        for k in range(6):
            assert cubic_ns_error(e0, k) == pytest.approx(1 - iterate_polynomial(s, "cubic", k), abs=1e-14)
    # exact rational check of one step
    e = Fraction(1, 3)
    s = 1 - e
    assert 1 - (Fraction(3, 2) * s - Fraction(1, 2) * s ** 3) == e ** 2 * (3 - e) / 2


def test_finding_sumo_remark37_ratio_is_61_not_2():
    """FINDING: SUMO Remark 3.7's own formulas at r = 8, n = 1024 give SVD/NS5 = 8,720,384/141,952 ~ 61.4x,
    not "approximately twice"; the rn^2 term (8,388,608) dominates."""
    out = sumo_flops_ratio(1024, 8)
    assert out["svd"] == 8_720_384 and out["ns5"] == 141_952
    assert out["ratio"] == sp.Rational(8_720_384, 141_952)
    assert out["ratio_float"] == pytest.approx(61.43, abs=0.01)
    assert out["ratio_float"] > 30
    svd, ns5 = sumo_flops_expressions()
    n, r = sorted(svd.free_symbols, key=str)
    assert sp.expand(svd - (4 * n * r ** 2 + 8 * r ** 3 + r * n ** 2 + r ** 2 * n)) == 0
    assert sumo_remark37_flops(1024, 8) == {"svd": 8_720_384, "ns5": 141_952, "ratio": pytest.approx(61.4319, abs=1e-3)}


def test_flop_counters():
    assert flops_matmul(2, 3, 4) == 48
    # one quintic NS step on 8 x 1024 (wide): 4*1024*64 + 2*512 + 3*64 + 2*8192
    assert flops_ns_step(8, 1024) == 279_744 == flops_ns_step(1024, 8)
    assert flops_ns(8, 1024, 5) == 3 * 8192 + 5 * 279_744
    assert flops_ns_step(8, 1024, degree=3) == 4 * 1024 * 64 + 3 * 8192
    assert flops_svd(1024, 8) == 6 * 1024 * 64 + 20 * 512
    assert flops_svd(1024, 8, vectors=False) == pytest.approx(4 * 1024 * 64 - 4 * 512 / 3)
    assert flops_svd(1024, 8, method="golub-reinsch") == 14 * 1024 * 64 + 8 * 512
    assert flops_qr_gaussian(1024, 8) == pytest.approx(4 * 1024 * 64 - 4 * 512 / 3 + 8192)
    # randomized SVD is linear in mn for fixed rank; online PCA is linear in mn for fixed r
    assert flops_randomized_svd(2048, 1024, 8) / flops_randomized_svd(1024, 1024, 8) == pytest.approx(2, rel=0.05)
    assert flops_online_pca_step(2048, 512, 16) / flops_online_pca_step(1024, 512, 16) == pytest.approx(2, rel=1e-5)
    # OSD shapes: a full SVD of 4096 x 11008 vs one online-PCA step at rank 512
    assert flops_svd(4096, 11008) / flops_online_pca_step(4096, 11008, 512) > 10
