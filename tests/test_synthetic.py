"""Tests of the synthetic problem generators: gradients, known constants, spectra, noise laws, paper bounds."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import subspace
import synthetic as syn
from synthetic.reversible import rank_one_residual, stable_rank

F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def autograd_grad(fn, X):
    X = X.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(X), X)
    return g


def lipschitz_ratios(problem, sample, pairs: int, seed: int):
    g = gen(seed)
    out = []
    for k in range(pairs):
        X = sample(g)
        scale = 10.0 ** (-(k % 4))  # near and far pairs
        Y = X + scale * torch.randn(X.shape, generator=g, dtype=F64)
        out.append(float((problem.grad(X) - problem.grad(Y)).norm() / (X - Y).norm()))
    return out


# ============================================================================================ GoLore (1)
class TestGoLoreCounterexample:
    def test_gradient_matches_autograd_both_dtypes(self):
        P = syn.GoLoreCounterexample()
        for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
            X = torch.randn(10, 10, generator=gen(1), dtype=dtype)
            torch.testing.assert_close(P.grad(X), autograd_grad(P.loss, X), rtol=tol, atol=tol)
            assert P.grad(X).dtype == dtype and P.loss(X).dtype == dtype

    def test_structure_matches_official_script(self):
        P = syn.GoLoreCounterexample()
        p = 6
        assert torch.equal(P.A, torch.cat([torch.eye(p), torch.zeros(p, 4)], 1).to(F64))
        assert torch.count_nonzero(P.B[p:]) == 0 and torch.count_nonzero(P.B[:, p:]) == 0
        assert torch.equal(P.C, torch.block_diag(torch.zeros(p, p), torch.eye(4)).to(F64))
        X0 = P.x0()
        assert torch.equal(X0[:p], 0.5 * torch.eye(p, 10, dtype=F64))
        # official seed-42 draw (torch.manual_seed(42); randn(6, 6) in float32) gives f* ~ -23.22, as in Fig. 1
        assert P.f_star == pytest.approx(-23.2174412, abs=1e-6)
        assert float(P.loss(X0)) == pytest.approx(0.8107, abs=1e-3)

    def test_f_star_attained_and_stationary_and_lower_bound(self):
        for n, r, sigma, seed in ((10, 4, 1.0, 42), (5, 1, 0.3, 7), (7, 6, 2.5, 3)):
            P = syn.GoLoreCounterexample(n, r, sigma, seed)
            xs = P.x_star
            assert float(P.loss(xs)) == pytest.approx(P.f_star, rel=1e-12)
            assert float(P.grad(xs).abs().max()) == 0.0
            g = gen(seed)
            for _ in range(20):
                X = 3 * torch.randn(n, n, generator=g, dtype=F64)
                assert float(P.loss(X)) >= P.f_star - 1e-9
                assert P.optimality_gap(X) >= -1e-9
            # bottom rows are free: any X with X_11 = -B_11, X_12 = 0 is optimal
            X = xs.clone()
            X[n - r:] = torch.randn(r, n, generator=g, dtype=F64)
            assert float(P.loss(X)) == pytest.approx(P.f_star, rel=1e-12)

    def test_smoothness_constant(self):
        P = syn.GoLoreCounterexample()
        ratios = lipschitz_ratios(P, lambda g: torch.randn(10, 10, generator=g, dtype=F64), 50, 0)
        assert max(ratios) <= P.L * (1 + 1e-12)
        D = torch.zeros(10, 10, dtype=F64)
        D[:6] = 1.0
        X = torch.zeros(10, 10, dtype=F64)
        assert float((P.grad(X + D) - P.grad(X)).norm() / D.norm()) == pytest.approx(P.L, rel=1e-12)

    @pytest.mark.parametrize("batch", [1, 4])
    def test_stochastic_gradient_unbiased_with_known_variance(self, batch):
        P = syn.GoLoreCounterexample(n=6, r=2, sigma=1.5, seed=1)
        X = torch.randn(6, 6, generator=gen(2), dtype=F64)
        g = gen(3)
        draws = torch.stack([P.stochastic_grad(X, g, batch) for _ in range(4000)])
        noise = draws - P.grad(X)
        # noise lives only on sigma*C with coefficient xi_bar: mean 0, E xi_bar^2 = 1/batch
        coef = noise[:, 4, 4] / P.sigma
        assert torch.allclose(noise, coef[:, None, None] * P.sigma * P.C)
        se = 1 / math.sqrt(batch * len(coef))
        assert abs(float(coef.mean())) < 5 * se
        var = float(noise.square().sum((1, 2)).mean())
        assert var == pytest.approx(P.noise_variance(batch), rel=0.1)
        if batch == 1:
            assert set(coef.tolist()) == {-1.0, 1.0}

    def test_stall_mechanism(self):
        P = syn.GoLoreCounterexample()
        p, r = P.p, P.r
        g = gen(5)
        # near the optimum (true gradient small, X_12 = 0): stall condition holds and GaLore's projector kills it
        X = P.x_star
        X[:p, :p] += 0.05 * torch.randn(p, p, generator=g, dtype=F64)
        X[p:] = torch.randn(r, 10, generator=g, dtype=F64)
        assert P.galore_stall_condition(X)
        for _ in range(10):
            Pbasis = subspace.svd_basis(P.stochastic_grad(X, g), r)
            assert float(P.projected_true_gradient(X, Pbasis).abs().max()) < 1e-12
            torch.testing.assert_close(Pbasis @ Pbasis.mT, P.C)
        # at the official init the true gradient dominates: no stall, the projection keeps signal
        X0 = P.x0()
        assert not P.galore_stall_condition(X0)
        Pbasis = subspace.svd_basis(P.stochastic_grad(X0, g), r)
        assert float(P.projected_true_gradient(X0, Pbasis).norm()) > 0.1

    def test_determinism(self):
        a, b, c = syn.GoLoreCounterexample(seed=3), syn.GoLoreCounterexample(seed=3), syn.GoLoreCounterexample(seed=4)
        assert torch.equal(a.B, b.B) and torch.equal(a.x0(), b.x0())
        assert not torch.equal(a.B, c.B) and not torch.equal(a.x0(), c.x0())
        X = a.x0()
        assert torch.equal(a.stochastic_grad(X, gen(9), 3), a.stochastic_grad(X, gen(9), 3))
        draws = {float(a.stochastic_grad(X, s)[9, 9]) for s in range(20)}
        assert len(draws) == 2
        X0 = a.x0()
        X0 += 1
        assert not torch.equal(X0, a.x0())  # x0() is a fresh copy

    @pytest.mark.parametrize("kwargs", [dict(n=1), dict(r=0), dict(r=10), dict(sigma=0.0), dict(sigma=float("nan")),
                                        dict(seed=-1), dict(seed=1.5), dict(dtype=torch.int64)])
    def test_bad_arguments(self, kwargs):
        with pytest.raises(ValueError):
            syn.GoLoreCounterexample(**kwargs)

    def test_bad_inputs(self):
        P = syn.GoLoreCounterexample()
        with pytest.raises(ValueError, match="shape"):
            P.grad(torch.zeros(10, 9, dtype=F64))
        with pytest.raises(ValueError, match="generator"):
            P.stochastic_grad(P.x0(), None)
        with pytest.raises(ValueError, match="batch"):
            P.stochastic_grad(P.x0(), gen(0), 0)


# ============================================================================================ spectra
class TestSpectra:
    @given(st.integers(1, 7), st.integers(1, 7), st.integers(0, 2 ** 31 - 1), st.data())
    def test_prescribed_spectrum_reproduced(self, m, n, seed, data):
        k = data.draw(st.integers(1, min(m, n)))
        s = data.draw(st.lists(st.floats(0.0, 10.0), min_size=k, max_size=k))
        SM = syn.sample_spectral_matrix(s, m, n, gen(seed))
        expected = torch.zeros(min(m, n), dtype=F64)
        expected[:k] = torch.sort(torch.tensor(s, dtype=F64), descending=True).values
        torch.testing.assert_close(torch.linalg.svdvals(SM.matrix), expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(SM.singular_values, expected)
        torch.testing.assert_close(SM.U.mT @ SM.U, torch.eye(k, dtype=F64))
        torch.testing.assert_close(SM.V.mT @ SM.V, torch.eye(k, dtype=F64))

    def test_polar_factor_is_exact(self):
        s = syn.with_condition_number(100.0, 5)
        SM = syn.sample_spectral_matrix(s, 8, 5, gen(0))
        Q = SM.polar
        torch.testing.assert_close(Q, subspace.polar(SM.matrix), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(Q.mT @ Q, torch.eye(5, dtype=F64))
        H = Q.mT @ SM.matrix  # M = Q H with H symmetric PSD
        torch.testing.assert_close(H, H.mT)
        assert float(torch.linalg.eigvalsh(H).min()) > 0
        # rank deficient: partial isometry onto the range
        SM2 = syn.sample_spectral_matrix(syn.rank_deficient_spectrum(5, 3), 6, 5, gen(1))
        torch.testing.assert_close(torch.linalg.svdvals(SM2.polar), torch.tensor([1, 1, 1, 0, 0.], dtype=F64),
                                   atol=1e-12, rtol=0)

    @pytest.mark.parametrize("kind", syn.CONDITION_KINDS)
    @pytest.mark.parametrize("kappa,k", [(1.0, 4), (10.0, 2), (1e4, 9)])
    def test_with_condition_number(self, kind, kappa, k):
        s = syn.with_condition_number(kappa, k, kind=kind, top=2.0)
        assert s.shape == (k,) and float(s[0]) == 2.0
        assert bool((s[:-1] >= s[1:]).all())
        assert float(s[0] / s[-1]) == pytest.approx(kappa, rel=1e-12) and s.dtype == F64
        if kind in ("two-cluster", "one-large", "one-small"):
            assert set(s.tolist()) <= {2.0, 2.0 / kappa}
        M = syn.matrix_with_spectrum(s, k + 2, k, gen(3))
        assert float(torch.linalg.cond(M)) == pytest.approx(kappa, rel=1e-6)

    def test_spectrum_makers(self):
        torch.testing.assert_close(syn.geometric_spectrum(4, 0.5, 8.0), torch.tensor([8., 4, 2, 1], dtype=F64))
        torch.testing.assert_close(syn.power_law_spectrum(3, 2.0), torch.tensor([1, 1 / 4, 1 / 9], dtype=F64))
        c = syn.clustered_spectrum([2, 3], [5.0, 1.0])
        torch.testing.assert_close(c, torch.tensor([5., 5, 1, 1, 1], dtype=F64))
        cj = syn.clustered_spectrum([2, 3], [5.0, 1.0], spread=0.1, generator=gen(0))
        assert bool(((cj[:2] >= 4.5) & (cj[:2] <= 5.5)).all()) and bool(((cj[2:] >= 0.9) & (cj[2:] <= 1.1)).all())
        rd = syn.rank_deficient_spectrum(6, 2, kappa=4.0)
        M = syn.matrix_with_spectrum(rd, 6, 7, gen(1))
        assert int(torch.linalg.matrix_rank(M)) == 2
        assert syn.rank_deficient_spectrum(3, 0).abs().sum() == 0

    def test_determinism(self):
        s = [3.0, 2.0, 1.0]
        assert torch.equal(syn.matrix_with_spectrum(s, 5, 4, gen(7)), syn.matrix_with_spectrum(s, 5, 4, 7))
        assert not torch.equal(syn.matrix_with_spectrum(s, 5, 4, 7), syn.matrix_with_spectrum(s, 5, 4, 8))
        assert syn.matrix_with_spectrum(s, 5, 4, 7, dtype=torch.float32).dtype == torch.float32

    @pytest.mark.parametrize("call", [
        lambda: syn.matrix_with_spectrum([1, 2, 3], 2, 5, gen(0)),
        lambda: syn.matrix_with_spectrum([-1.0], 2, 2, gen(0)),
        lambda: syn.matrix_with_spectrum([], 2, 2, gen(0)),
        lambda: syn.matrix_with_spectrum([1.0], 2, 2, None),
        lambda: syn.with_condition_number(0.5, 3),
        lambda: syn.with_condition_number(2.0, 1),
        lambda: syn.with_condition_number(2.0, 3, kind="cubic"),
        lambda: syn.geometric_spectrum(3, 1.5),
        lambda: syn.clustered_spectrum([1], [1.0, 2.0]),
        lambda: syn.clustered_spectrum([1], [1.0], spread=0.1),
        lambda: syn.rank_deficient_spectrum(3, 4),
    ])
    def test_bad_arguments(self, call):
        with pytest.raises(ValueError):
            call()


# ============================================================================================ reversible
def brute_force_S(P) -> np.ndarray:
    """(1/N) sum_i C_i (x) B_i with numpy's kron, for column-major vec."""
    return sum(np.kron(C.numpy(), B.numpy()) for B, C in zip(P.B.double(), P.C.double())) / P.N


def cvec(G: torch.Tensor) -> np.ndarray:
    return G.numpy().reshape(-1, order="F")


@st.composite
def lemma33_cases(draw):
    """Preconditions of GaLore Lemma 3.3 built in: constant PSD terms, lambda_1 < lambda_2 (V1 = J x K, a proper
    rectangle of the grid), and 0 < eta lambda_max <= 1 so |1 - eta l| <= 1 - eta lambda_2 for all l >= lambda_2."""
    m, n = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    p, q = draw(st.integers(1, m)), draw(st.integers(1, n))
    if (p, q) == (m, n):
        p = m - 1
    return (m, n, draw(st.integers(1, 3)), p, q, draw(st.integers(0, 10 ** 6)), draw(st.floats(0.05, 1.0)),
            draw(st.floats(0.05, 2.0)), draw(st.floats(0.0, 3.0)))


def _applies(P, eta):
    from analysis.bounds import galore_lemma33_applies
    return galore_lemma33_applies(eta, P.lambda1, P.lambda2, P.lambda_max)


def _bound(P, G_t0, eta, steps):
    """The Lemma 3.3 bound from analysis.bounds (the one implementation), as a float64 tensor."""
    from analysis.bounds import galore_lemma33_trajectory
    return torch.as_tensor(galore_lemma33_trajectory(P, G_t0, eta, steps).bound, dtype=F64)


def galore_lemma33_rate(eta, l1, l2):
    from analysis.bounds import galore_lemma33_rate as rate
    return rate(eta, l1, l2)


class TestReversible:
    @pytest.mark.parametrize("m,n,N,shape", [(3, 2, 1, (1, 1)), (4, 3, 3, (2, 1)), (3, 4, 2, (2, 3)),
                                             (5, 5, 4, (1, 1))])
    def test_known_spectrum_equals_brute_force(self, m, n, N, shape):
        P = syn.ReversibleLayer.random(m, n, N, gen(m * 10 + n), v1_shape=shape)
        S = brute_force_S(P)
        ev = np.linalg.eigvalsh(S)
        np.testing.assert_allclose(ev, P.eigenvalues.numpy(), rtol=1e-10, atol=1e-12)
        assert P.lambda1 == pytest.approx(ev[0], rel=1e-10)
        distinct = ev[ev > ev[0] + 1e-8 * ev[-1]]
        assert P.lambda2 == pytest.approx(distinct[0], rel=1e-10)
        assert P.v1_dim == shape[0] * shape[1] == int((ev <= ev[0] + 1e-8 * ev[-1]).sum())
        assert P.v1_rank == min(shape) and P.v1_is_rectangular
        # apply_S is S acting on column-major vec; the dense class finds the same spectrum and projector
        G = torch.randn(m, n, generator=gen(1), dtype=F64)
        np.testing.assert_allclose(cvec(P.apply_S(G)), S @ cvec(G), rtol=1e-10, atol=1e-12)
        D = syn.ReversibleGradient(P.A, P.B, P.C)
        np.testing.assert_allclose(D.eigenvalues.numpy(), ev, rtol=1e-9, atol=1e-12)
        assert D.v1_dim == P.v1_dim and D.lambda2 == pytest.approx(P.lambda2, rel=1e-9)
        torch.testing.assert_close(D.project_v1(G), P.project_v1(G), rtol=1e-9, atol=1e-10)
        # the closed-form V1 basis and the dense one span the same space; rectangular both ways
        Ek, Ed = P.v1_basis, D.v1_basis
        torch.testing.assert_close(Ek @ Ek.mT, Ed @ Ed.mT, rtol=1e-9, atol=1e-10)
        torch.testing.assert_close(Ek.mT @ Ek, torch.eye(Ek.shape[1], dtype=F64))
        assert D.v1_is_rectangular and syn.ReversibleGradient.v1_is_rectangular.fget(P)
        # one tie tolerance for both classes, and the recursion equals the closed form
        assert P.tie_rtol == D.tie_rtol == syn.reversible.TIE_RTOL
        traj = D.trajectory(G, 0.5 / P.lambda_max, 7)
        assert len(traj) == 8 and torch.equal(traj[0], G)
        torch.testing.assert_close(traj[7], P.evolve(G, 0.5 / P.lambda_max, 7), rtol=1e-10, atol=1e-12)

    def test_projector_properties(self):
        P = syn.ReversibleLayer.random(5, 4, 3, gen(2), v1_shape=(2, 2))
        G = torch.randn(5, 4, generator=gen(3), dtype=F64)
        Gp = P.project_v1(G)
        torch.testing.assert_close(P.project_v1(Gp), Gp)                    # idempotent
        assert abs(float(((G - Gp) * Gp).sum())) < 1e-12                     # Frobenius-orthogonal
        torch.testing.assert_close(P.apply_S(Gp), P.lambda1 * Gp)            # in the lambda_1 eigenspace
        assert int(torch.linalg.matrix_rank(Gp)) <= 2
        assert float(torch.linalg.matrix_norm(Gp, 2)) <= float(torch.linalg.matrix_norm(G, 2)) + 1e-12

    def test_gradient_is_minus_autograd_of_loss(self):
        P = syn.ReversibleLayer.random(4, 3, 2, gen(0))
        W = torch.randn(4, 3, generator=gen(1), dtype=F64)
        torch.testing.assert_close(P.gradient(W), -autograd_grad(P.loss, W))
        # general (non-shared-basis) PSD terms
        g = gen(4)
        Bm, Cm = torch.randn(3, 4, 4, generator=g, dtype=F64), torch.randn(3, 3, 3, generator=g, dtype=F64)
        R = syn.ReversibleGradient(torch.randn(3, 4, 3, generator=g, dtype=F64), Bm @ Bm.mT, Cm @ Cm.mT)
        torch.testing.assert_close(R.gradient(W), -autograd_grad(R.loss, W))

    def test_sgd_trajectory_follows_I_minus_eta_S(self):
        P = syn.ReversibleLayer.random(4, 3, 2, gen(5), v1_shape=(2, 1))
        eta = 0.7 / P.lambda_max
        W0 = torch.randn(4, 3, generator=gen(6), dtype=F64)
        Ws, Gs = P.sgd_trajectory(W0, eta, 12, return_weights=True)
        assert len(Gs) == 13 and torch.equal(Ws[0], W0)
        for t in (1, 5, 12):
            torch.testing.assert_close(Ws[t], Ws[t - 1] + eta * Gs[t - 1])
            torch.testing.assert_close(Gs[t], P.evolve(Gs[0], eta, t), rtol=1e-10, atol=1e-12)
            torch.testing.assert_close(Gs[t], syn.ReversibleGradient.evolve(P, Gs[0], eta, t), rtol=1e-10,
                                       atol=1e-12)

    @given(case=lemma33_cases())
    def test_galore_lemma_3_3_bound_holds(self, case):
        m, n, N, p, q, seed, eta_frac, gap, spread = case
        P = syn.ReversibleLayer.random(m, n, N, gen(seed), v1_shape=(p, q), gap=gap, spread=spread)
        eta = eta_frac / P.lambda_max
        assert _applies(P, eta)
        W0 = torch.randn(m, n, generator=gen(seed + 1), dtype=F64)
        steps = 30
        Gs = P.sgd_trajectory(W0, eta, steps)
        bound = _bound(P, Gs[0], eta, steps)
        q_rate = galore_lemma33_rate(eta, P.lambda1, P.lambda2)
        assert 0 <= q_rate < 1
        # G(W_t) = mean(A_i - B_i W_t C_i) cancels catastrophically as W_t converges: compare the SGD run only
        # while ||G_t|| >= 1e-6 ||G_0|| (relative round-off <~ 1e-10), and the exact closed form (no cancellation)
        # at every t.
        live = torch.tensor([float(G.norm()) >= 1e-6 * float(Gs[0].norm()) for G in Gs])
        sr = torch.tensor([stable_rank(G) for G in Gs], dtype=F64)
        assert bool((sr[live] <= bound[live] * (1 + 1e-8)).all()), (sr - bound).max()
        sr_exact = torch.tensor([stable_rank(P.evolve(Gs[0], eta, t)) for t in range(steps + 1)], dtype=F64)
        assert bool((sr_exact <= bound * (1 + 1e-8)).all()), (sr_exact - bound).max()
        # the bound from any later t0 too (the lemma holds for every t >= t0)
        t0 = 10
        bound_t0 = _bound(P, P.evolve(Gs[0], eta, t0), eta, steps - t0)
        assert bool((sr_exact[t0:] <= bound_t0 * (1 + 1e-8)).all())

    def test_rank_one_limit_when_v1_is_one_dimensional(self):
        # small lambda_1, large gap: G_t shrinks slowly ((1 - eta l1)^t) while its V1^perp part vanishes fast
        P = syn.ReversibleLayer.random(6, 5, 3, gen(11), v1_shape=(1, 1), lambda1=0.01, gap=5.0)
        assert P.v1_dim == 1 and P.v1_rank == 1
        eta = 1.0 / P.lambda_max
        G0 = P.gradient(torch.randn(6, 5, generator=gen(12), dtype=F64))
        G300 = P.evolve(G0, eta, 300)  # = G_300 of the SGD run (closed form, tested above)
        assert stable_rank(G0) > 1.5
        assert rank_one_residual(G300) < 1e-8 and float(G300.norm()) > 1e-6 * float(G0.norm())
        Q = syn.ReversibleLayer.random(6, 5, 3, gen(11), v1_shape=(3, 3), lambda1=0.01, gap=5.0)
        Gq0 = Q.gradient(torch.randn(6, 5, generator=gen(12), dtype=F64))
        limit = stable_rank(Q.project_v1(Gq0))
        assert limit > 1.2 and stable_rank(Q.evolve(Gq0, eta, 300)) == pytest.approx(limit, rel=1e-6)

    def test_literal_lemma_3_3_fails_for_non_rectangular_v1(self):
        """Documented discrepancy: ||G||_2 >= ||G^par||_2 is needed and fails for an L-shaped V1."""
        I2 = torch.eye(2, dtype=F64)
        b = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=F64)   # B = (I, e1 e1^T)
        c = torch.tensor([[1.0, 1.0], [0.0, 1.0]], dtype=F64)   # C = (I, e2 e2^T)
        G0 = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=F64)
        P = syn.ReversibleLayer(G0.expand(2, 2, 2).clone(), b, c, I2, I2)
        assert (P.lambda1, P.lambda2, P.v1_dim, P.v1_is_rectangular) == (0.5, 1.0, 3, False)
        D = syn.ReversibleGradient(P.A, P.B, P.C)                # dense: the same cross-shaped V1
        assert (D.v1_dim, D.v1_is_rectangular) == (3, False)
        assert _applies(P, 0.5)
        Gs = P.sgd_trajectory(torch.zeros(2, 2, dtype=F64), 0.5, 10)
        torch.testing.assert_close(Gs[0], G0)
        bound = _bound(P, G0, 0.5, 10)
        assert bound[0] == pytest.approx(3 / ((3 + math.sqrt(5)) / 2) + 2 / (3 + math.sqrt(5)), rel=1e-12)
        sr = torch.tensor([stable_rank(G) for G in Gs], dtype=F64)
        assert float(sr[0]) == pytest.approx(2.0) and bool((sr > bound).all())

    def test_moments_and_sumo_lemma_3_1(self):
        P = syn.ReversibleLayer.random(5, 4, 2, gen(21), v1_shape=(1, 1), gap=1.0)
        eta, beta = 0.5 / P.lambda_max, 0.5
        W0 = torch.randn(5, 4, generator=gen(22), dtype=F64)
        Gs = P.sgd_trajectory(W0, eta, 60)
        Ms = P.moment_trajectory(W0, eta, beta, 60)
        Me = P.moment_trajectory(W0, eta, beta, 60, ema=True)
        torch.testing.assert_close(Ms[0], Gs[0])
        torch.testing.assert_close(Ms[7], sum(beta ** (7 - s) * Gs[s] for s in range(8)))
        torch.testing.assert_close(Me[7], (1 - beta) * Ms[7])
        l1, l2 = P.lambda1, P.lambda2
        C = P.sumo_rate(eta, beta)
        assert C == pytest.approx((max(beta, 1 - eta * l1) / max(beta, 1 - eta * l2)) ** 2)
        assert P.sumo_precondition(eta, beta) == (1 - eta * l1 > beta) and C > 1
        assert P.sumo_rate(eta, 0.99) == 1.0 and not P.sumo_precondition(eta, 0.99)
        bound = P.sumo_moment_bound(Gs[0], eta, beta, 60)
        sr = torch.tensor([stable_rank(M) for M in Ms], dtype=F64)
        assert bool((sr <= bound * (1 + 1e-9)).all())
        kappa = torch.tensor([rank_one_residual(M) for M in Ms])
        assert float(kappa[-1]) < 1e-3 * float(kappa[0])
        # kappa_M decays at least as fast as C^{-t} (in fact about C^{-2t}: the rank-one residual is 4th order in
        # the components sharing u_1's row or v_1's column)
        assert float(kappa[30]) <= float(kappa[10]) * C ** -20 * 1.5

    def test_lemma_constants(self):
        P = syn.ReversibleLayer.random(3, 3, 2, gen(0), lambda1=0.5, gap=1.0)
        assert P.lambda1 == 0.5 and P.lambda2 >= 1.0 - 1e-12
        eta = 0.3
        assert galore_lemma33_rate(eta, P.lambda1, P.lambda2) == pytest.approx(((1 - eta * P.lambda2) / (1 - eta * P.lambda1)) ** 2)
        assert not _applies(P, 5.0 / P.lambda_max)

    @pytest.mark.parametrize("activation", ["linear", "relu"])
    def test_two_layer_net_gradients_and_reversible_terms(self, activation):
        net = syn.TwoLayerNet(5, 4, 3, 7, activation=activation, seed=1)
        W1, W2 = net.x0(gen(2))
        G1, G2 = net.gradients(W1, W2)
        torch.testing.assert_close(G1, -autograd_grad(lambda w: net.loss(w, W2), W1))
        torch.testing.assert_close(G2, -autograd_grad(lambda w: net.loss(W1, w), W2))
        for layer, W, G in ((1, W1, G1), (2, W2, G2)):
            A, B, C = net.reversible_terms(layer, W1, W2)
            torch.testing.assert_close((A - B @ W @ C).mean(0), G)
            R = net.reversible_layer(layer, W1, W2)   # PSD check passes
            torch.testing.assert_close(R.gradient(W), G)
        assert float(net.loss(*net.teacher)) < 1e-28

    def test_linear_net_first_layer_is_exactly_reversible(self):
        net = syn.TwoLayerNet(4, 3, 3, 6, activation="linear", seed=3)
        W1, W2 = net.x0(gen(4))
        R = net.reversible_layer(1, W1, W2)
        eta = 0.5 / R.lambda_max
        Gs = R.sgd_trajectory(W1, eta, 5)
        W = W1.clone()
        for t in range(6):
            torch.testing.assert_close(net.gradients(W, W2)[0], Gs[t])
            W = W + eta * Gs[t]

    def test_determinism_and_bad_arguments(self):
        a, b = syn.ReversibleLayer.random(3, 3, 2, 5), syn.ReversibleLayer.random(3, 3, 2, 5)
        c = syn.ReversibleLayer.random(3, 3, 2, 6)
        assert torch.equal(a.B, b.B) and torch.equal(a.A, b.A) and not torch.equal(a.A, c.A)
        assert torch.equal(syn.TwoLayerNet(seed=1).X, syn.TwoLayerNet(seed=1).X)
        assert not torch.equal(syn.TwoLayerNet(seed=1).X, syn.TwoLayerNet(seed=2).X)
        for call in (lambda: syn.ReversibleLayer.random(3, 3, 2, 0, v1_shape=(3, 3)),
                     lambda: syn.ReversibleLayer.random(3, 3, 2, 0, v1_shape=(4, 1)),
                     lambda: syn.ReversibleLayer.random(3, 3, 0, 0),
                     lambda: syn.ReversibleLayer.random(3, 3, 2, 0, gap=0.0),
                     lambda: a.trajectory(a.A[0], -1.0, 3),
                     lambda: a.sumo_rate(0.1, 1.0),
                     lambda: a.gradient(torch.zeros(3, 4, dtype=F64)),
                     lambda: syn.ReversibleGradient(a.A, -a.B, a.C),
                     lambda: syn.TwoLayerNet(activation="tanh"),
                     lambda: syn.TwoLayerNet().reversible_terms(3, *syn.TwoLayerNet().teacher),
                     lambda: syn.moment_trajectory([], 1.0)):
            with pytest.raises(ValueError):
                call()


# ============================================================================================ smooth
class TestSmooth:
    def problems(self):
        return [syn.SmoothMatrixProblem.random(6, 4, 5, rho=0.7, sigma=0.3, generator=gen(0)),
                syn.SmoothMatrixProblem.random(4, 3, 8, rho=0.0, generator=gen(1), dtype=torch.float32),
                syn.SmoothMatrixProblem.ill_conditioned(50.0, 5, 3, rho=0.2, generator=gen(2))]

    def test_gradient_matches_autograd(self):
        for P in self.problems():
            tol = 1e-5 if P.dtype == torch.float32 else 1e-12
            W = P.x0(gen(3))
            torch.testing.assert_close(P.grad(W), autograd_grad(P.loss, W), rtol=tol, atol=tol)

    def test_smoothness_constant_valid_and_tight(self):
        for P in self.problems():
            ratios = lipschitz_ratios(P, lambda g: 2 * torch.randn(P.m, P.n, generator=g, dtype=F64), 40, 4)
            if P.dtype == F64:
                assert max(ratios) <= P.L * (1 + 1e-10)
            W0 = torch.zeros(P.m, P.n, dtype=F64)
            H = torch.autograd.functional.hessian(lambda w: P.loss(w.to(P.dtype)).double(), W0)
            top = float(torch.linalg.eigvalsh(H.reshape(P.m * P.n, -1)).max())
            assert top == pytest.approx(P.L, rel=1e-5)

    def test_nonconvexity_flag(self):
        P = syn.SmoothMatrixProblem.random(6, 2, 4, rho=0.5, generator=gen(0))
        assert P.is_nonconvex
        Wpm = torch.ones(6, 2, dtype=F64)
        H = torch.autograd.functional.hessian(P.loss, Wpm).reshape(12, 12)
        assert float(torch.linalg.eigvalsh(H).min()) == pytest.approx(-P.rho / 2, abs=1e-10)
        Q = syn.SmoothMatrixProblem.random(3, 2, 10, rho=0.0, generator=gen(0))
        assert not Q.is_nonconvex

    def test_lower_bound(self):
        P = syn.SmoothMatrixProblem.random(3, 2, 8, rho=0.4, generator=gen(5), label_noise=0.5)
        assert P.f_lower > 0
        g = gen(6)
        for _ in range(30):
            assert float(P.loss(3 * torch.randn(3, 2, generator=g, dtype=F64))) >= P.f_lower
        # rho = 0: the bound is the least-squares minimum, reached by gradient descent with step 1/L
        Q = syn.SmoothMatrixProblem(P.A, P.Y, rho=0.0)
        W = Q.x0(gen(7))
        for _ in range(2000):
            W = W - Q.grad(W) / Q.L
        assert float(Q.loss(W)) == pytest.approx(Q.f_lower, rel=1e-8)

    def test_stochastic_gradient_unbiased_with_variance_sigma2(self):
        P = syn.SmoothMatrixProblem.random(4, 3, 5, sigma=0.5, generator=gen(0))
        W = P.x0(gen(1))
        g = gen(2)
        noise = torch.stack([P.stochastic_grad(W, g) for _ in range(3000)]) - P.grad(W)
        per_entry_sd = P.sigma / math.sqrt(12)
        assert float(noise.mean(0).abs().max()) < 5 * per_entry_sd / math.sqrt(3000)
        assert float(noise.square().sum((1, 2)).mean()) == pytest.approx(P.sigma ** 2, rel=0.05)
        nb = torch.stack([P.stochastic_grad(W, g, batch=4) for _ in range(3000)]) - P.grad(W)
        assert float(nb.square().sum((1, 2)).mean()) == pytest.approx(P.noise_variance(4), rel=0.05)

    def test_ill_conditioned_spectrum(self):
        for kind in ("geometric", "two-cluster"):
            P = syn.SmoothMatrixProblem.ill_conditioned(1e3, 6, 2, rho=0.1, generator=gen(0), kind=kind, top=2.0)
            assert P.condition_number == pytest.approx(1e3, rel=1e-8)
            torch.testing.assert_close(torch.linalg.svdvals(P.A), syn.with_condition_number(1e3, 6, kind, 2.0))
            assert P.L == pytest.approx(4.0 + 0.2)

    def test_determinism_and_bad_arguments(self):
        a = syn.SmoothMatrixProblem.random(generator=gen(3))
        b = syn.SmoothMatrixProblem.random(generator=3)
        c = syn.SmoothMatrixProblem.random(generator=4)
        assert torch.equal(a.A, b.A) and torch.equal(a.Y, b.Y) and not torch.equal(a.A, c.A)
        assert torch.equal(a.x0(gen(1)), a.x0(gen(1))) and not torch.equal(a.x0(gen(1)), a.x0(gen(2)))
        for call in (lambda: syn.SmoothMatrixProblem.random(rho=-1.0),
                     lambda: syn.SmoothMatrixProblem.random(sigma=float("inf")),
                     lambda: syn.SmoothMatrixProblem.random(m=0),
                     lambda: syn.SmoothMatrixProblem.ill_conditioned(0.5),
                     lambda: syn.SmoothMatrixProblem.ill_conditioned(10.0, kind="bad"),
                     lambda: syn.SmoothMatrixProblem(a.A, a.Y[:3]),
                     lambda: a.x0(None),
                     lambda: a.grad(torch.zeros(2, 2, dtype=F64))):
            with pytest.raises(ValueError):
                call()


# ============================================================================================ noise
class TestNoise:
    @given(d=st.integers(1, 400), beta=st.floats(0.0, 1.0), sigma=st.floats(0.01, 10.0), seed=st.integers(0, 99))
    def test_scale_vector_density_and_total_variance(self, d, beta, sigma, seed):
        s = syn.coordinate_noise_scales(d, beta, sigma, gen(seed))
        k = syn.noisy_count(d, beta)
        assert k == min(d, max(1, round(d ** beta)))
        assert int((s > 0).sum()) == k
        assert float(s.square().sum()) == pytest.approx(sigma ** 2, rel=1e-12)
        noise = syn.CoordinateNoise(s)
        assert noise.effective_support == pytest.approx(k, rel=1e-9)

    def test_endpoints_and_placement(self):
        assert syn.noisy_count(100, 0.0) == 1 and syn.noisy_count(100, 1.0) == 100
        assert syn.noisy_count(100, 0.5) == 10
        s = syn.coordinate_noise_scales(9, 0.5, 3.0, placement="first")
        torch.testing.assert_close(s, torch.tensor([math.sqrt(3)] * 3 + [0.0] * 6, dtype=F64))
        r1, r2 = (syn.coordinate_noise_scales(50, 0.5, 1.0, gen(k)) for k in (1, 2))
        assert not torch.equal(r1 > 0, r2 > 0)

    @pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
    def test_samples_unbiased_with_known_variance(self, distribution):
        noise = syn.CoordinateNoise(syn.coordinate_noise_scales(64, 0.5, 2.0, gen(0)), distribution)
        g = gen(1)
        xs = torch.stack([noise.sample(g) for _ in range(3000)])
        off = noise.scales == 0
        assert float(xs[:, off].abs().max()) == 0.0
        se = float(noise.scales.max()) / math.sqrt(3000)
        assert float(xs.mean(0).abs().max()) < 5 * se
        assert float(xs.square().sum(1).mean()) == pytest.approx(noise.variance, rel=0.05)
        xb = torch.stack([noise.sample(g, batch=5) for _ in range(3000)])
        assert float(xb.square().sum(1).mean()) == pytest.approx(noise.variance / 5, rel=0.05)

    def test_problem_constants(self):
        for d, beta, shape in ((16, 0.0, None), (36, 0.5, (6, 6)), (30, 1.0, (5, 6))):
            P = syn.CoordinateNoiseProblem(d, beta, sigma=0.5, seed=d, shape=shape)
            x = P.x0(gen(1))
            assert tuple(x.shape) == (P.shape)
            torch.testing.assert_close(P.grad(x), autograd_grad(P.loss, x))
            assert float(P.loss(P.x_star)) == P.f_star == 0.0
            assert float(P.grad(P.x_star).abs().max()) == 0.0
            assert float(P.loss(x)) >= P.f_star
            ratios = lipschitz_ratios(P, lambda g: P.x0(g), 30, d)
            assert max(ratios) <= P.L * (1 + 1e-12)
            assert P.noisy_coordinates == syn.noisy_count(d, beta)
            assert P.noise_variance() == pytest.approx(0.25)
            assert P.is_nonconvex  # rho = 4 > 2 lambda = 2
            e = torch.zeros(P.shape, dtype=F64).flatten()
            e[0] = 1e-6
            xs = P.x_star
            step = float((P.grad(xs + e.reshape(P.shape)) - P.grad(xs)).norm()) / 1e-6
            assert step == pytest.approx(P.L, rel=1e-6)  # L tight at x*

    def test_problem_stochastic_gradient_unbiased(self):
        P = syn.CoordinateNoiseProblem(25, 0.3, sigma=1.0, seed=2)
        x = P.x0(gen(3))
        g = gen(4)
        noise = torch.stack([P.stochastic_grad(x, g) for _ in range(3000)]) - P.grad(x)
        assert float(noise.square().sum(1).mean()) == pytest.approx(1.0, rel=0.05)
        assert float(noise.mean(0).abs().max()) < 5 / math.sqrt(3000)

    def test_subset_sizes(self):
        assert syn.subset_sizes(100) == (1, 10, 100)
        assert syn.subset_sizes(50) == (1, 5, 50)
        assert syn.subset_sizes(13) == (1, 1, 13)
        for d in range(1, 200):
            k = syn.subset_sizes(d)[1]
            assert d % k == 0 and k <= max(1, round(math.sqrt(d)))

    def test_determinism_and_bad_arguments(self):
        a, b = syn.CoordinateNoiseProblem(20, 0.5, seed=1), syn.CoordinateNoiseProblem(20, 0.5, seed=1)
        c = syn.CoordinateNoiseProblem(20, 0.5, seed=2)
        assert torch.equal(a.center, b.center) and torch.equal(a.noise.scales, b.noise.scales)
        assert not torch.equal(a.center, c.center)
        x = a.x0(gen(0))
        assert torch.equal(a.stochastic_grad(x, gen(5)), b.stochastic_grad(x, gen(5)))
        for call in (lambda: syn.noisy_count(10, 1.5), lambda: syn.noisy_count(0, 0.5),
                     lambda: syn.coordinate_noise_scales(10, 0.5, 1.0),  # random placement needs a generator
                     lambda: syn.coordinate_noise_scales(10, 0.5, 1.0, gen(0), placement="last"),
                     lambda: syn.CoordinateNoise(torch.tensor([-1.0])),
                     lambda: syn.CoordinateNoise(torch.ones(3), "cauchy"),
                     lambda: syn.CoordinateNoiseProblem(12, 0.5, shape=(5, 2)),
                     lambda: syn.CoordinateNoiseProblem(12, 0.5, curvature=0.0),
                     lambda: a.grad(torch.zeros(21, dtype=F64))):
            with pytest.raises(ValueError):
                call()
