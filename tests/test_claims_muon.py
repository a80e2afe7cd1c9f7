"""Muon claim (claims/muon.py): the NS5 band verdict follows from its numbers, both sides of the threshold are
tested, the band above the threshold holds as a property, and the band measurement is invariant under orthogonal
rotations and positive rescaling of G."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, strategies as st

from analysis.orthogonality import iterate_polynomial
from claims import muon as CM
from claims import verdicts as V
from claims.registry import default_registry
from synthetic.spectra import sample_spectral_matrix

TAU = 1.500447e-3          # certified threshold (claims/muon.py measures it; 7 digits here)
HI = 1.2023686             # max of p^5 on [tau, 1]


@pytest.fixture(scope="module")
def outcome(claim_cache):
    return claim_cache.outcome("muon.ns5-band")


def test_verdict_holds_and_is_recomputable(outcome):
    out = outcome
    again = V.recompute(out.verdict)
    assert again == out.verdict and again.reason == out.verdict.reason
    c = default_registry().get("muon.ns5-band")
    assert c.paper == "Muon" and "rule" in c.doc.lower()
    fig = c.draw(out.rows)
    assert len(fig.axes) >= 2
    fig.clear()
    for r in out.rows:
        assert {"method", "seed", "step"} <= set(r)


def test_symbolic_facts(outcome):
    m = outcome.measured
    assert m["certified"] and m["tau"] == pytest.approx(TAU, rel=1e-6)
    assert m["tau_bracket"][0] < m["tau"] and m["tau_bracket"][1] - m["tau_bracket"][0] < 1e-15
    fps = m["fixed_points"]
    assert [f["x"] for f in fps] == pytest.approx([0.86803, 1.26373], abs=1e-5)
    assert [f["abs_derivative"] for f in fps] == pytest.approx([1.5824, 6.4735], abs=1e-4)
    assert all(f["abs_derivative"] > 1 for f in fps)        # both repelling
    assert m["p_of_1"] == pytest.approx(0.701, abs=1e-9)    # 1 is not even a fixed point
    assert m["cycle_period"] == 4 and m["cycle_multiplier"] < 1
    assert sorted(m["cycle"]) == pytest.approx(sorted([0.68192, 1.13427, 0.75292, 1.04691]), abs=1e-5)
    assert m["band"] == pytest.approx([0.68, HI], abs=1e-7)


def test_exactly_when_both_sides(outcome):
    """float64 probes at f * tau: outputs are in the band exactly for f >= 1, and under 0.68 for f < 1."""
    tau = outcome.measured["tau"]
    probes = [r for r in outcome.rows if r.get("method") == "float64" and r.get("spectrum") == "probes"
              and r["x"] < 3 * tau]
    fs = sorted({round(r["x"] / tau, 6) for r in probes})
    assert fs == pytest.approx(sorted(CM.PROBES), rel=1e-6)
    for r in probes:
        if r["x"] >= tau:
            assert 0.68 <= r["s"] <= HI + 1e-9, r
        else:
            assert r["s"] < 0.68, r
    m64 = outcome.measured["float64"]
    assert m64["above_tau_outside_band"] == 0 and m64["below_tau_at_or_above_0.68"] == 0
    assert m64["below_tau_total"] > 0 and m64["above_tau_total"] > 0


def test_bfloat16_widens_the_band(outcome):
    bf, f32 = outcome.measured["bfloat16"], outcome.measured["float32"]
    assert f32["max_dev_from_float64"] < 1e-4 and f32["above_tau_outside_band"] == 0
    assert bf["max_dev_from_float64"] > 100 * f32["max_dev_from_float64"]
    lo, hi = bf["band_reached_above_tau"]
    assert bf["widening"] == pytest.approx([max(0.0, 0.68 - lo), max(0.0, hi - HI)], abs=1e-6)


# ------------------------------------------------------------------------------------------- properties

@given(st.floats(TAU * (1 + 1e-9), 1.0))
def test_property_scalar_band_above_threshold(x):
    assert 0.68 - 1e-12 <= float(iterate_polynomial(x)) <= HI + 1e-9


@given(st.floats(0.0, TAU * (1 - 1e-9)))
def test_property_scalar_below_threshold(x):
    assert float(iterate_polynomial(x)) < 0.68


@st.composite
def spectra_above_threshold(draw):
    """Precondition of the band: every sigma_i/||G||_F >= tau (with a relative margin for float64 round-off).
    Values in [1, 100] and k <= 12 give x_min >= 1/(100 sqrt 12) = 2.9e-3 > tau."""
    k = draw(st.integers(1, 12))
    vals = draw(st.lists(st.floats(1.0, 100.0), min_size=k, max_size=k))
    extra_rows = draw(st.integers(0, 8))
    tall = draw(st.booleans())
    m, n = (k + extra_rows, k) if tall else (k, k + extra_rows)
    s = np.asarray(vals)
    assume(s.min() / np.linalg.norm(s) >= TAU * (1 + 1e-6))
    return s, m, n, draw(st.integers(0, 2 ** 31 - 1))


@given(spectra_above_threshold())
def test_property_ns5_band_above_threshold(params):
    s, m, n, seed = params
    M = sample_spectral_matrix(torch.tensor(s), m, n, torch.Generator().manual_seed(seed)).matrix
    r = CM.band_measurement(M, TAU, "float64")
    eps = CM.ns_roundoff("float64", m, n, r["x"])
    assert r["n_below"] == 0
    assert np.all(r["s"] >= 0.68 - eps) and np.all(r["s"] <= HI + eps)
    assert r["max_dev"] <= eps


# ------------------------------------------------------------------------------------------- metamorphic

def _haar(k, g):
    Q, R = torch.linalg.qr(torch.randn(k, k, generator=g, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R))


@given(st.integers(0, 2 ** 31 - 1), st.floats(1.0, 1e3), st.sampled_from([(24, 40), (40, 24), (32, 32)]))
def test_metamorphic_rotation_and_rescaling(seed, c, shape):
    """U G V (U, V Haar orthogonal) and c G (c > 0) have the same normalised spectrum (up to the 1e-7 in the
    normalisation, relative 1e-7/||G||_F with ||G||_F = 1 here), so the band measurement must not change."""
    m, n = shape
    g = torch.Generator().manual_seed(seed)
    k = min(m, n)
    spec = CM.probe_spectrum(k, TAU)
    spec = spec / spec.norm()
    G = sample_spectral_matrix(spec, m, n, g).matrix
    base = CM.band_measurement(G, TAU, "float64")
    for H in (_haar(m, g) @ G @ _haar(n, g), c * G):
        r = CM.band_measurement(H, TAU, "float64")
        assert r["n_below"] == base["n_below"]
        np.testing.assert_array_equal(r["below"], base["below"])
        np.testing.assert_allclose(r["s"], base["s"], atol=1e-5)
        in_band = (r["s"] >= 0.68) & (r["s"] <= HI)
        np.testing.assert_array_equal(in_band, (base["s"] >= 0.68) & (base["s"] <= HI))


def test_roundoff_allowance_orders():
    x = [TAU, 0.5]
    e64 = CM.ns_roundoff("float64", 64, 128, x)
    assert 0 < e64 < 1e-6
    assert CM.ns_roundoff("float32", 64, 128, x) > 1e6 * e64 * 0.5
    assert math.isfinite(CM.ns_roundoff("bfloat16", 64, 128, x))



def test_same_verdict_at_two_seed_families():
    """Issue 10 item 2: the Haar singular vectors change with the seed family, the verdict does not."""
    from claims.registry import Context, default_registry
    fn = default_registry().get("muon.ns5-band").fn
    outs = [fn(Context("muon.ns5-band", scale="quick", seed_family=f)) for f in (0, 1)]
    assert [o.verdict for o in outs] == ["holds", "holds"], [o.reason for o in outs]
