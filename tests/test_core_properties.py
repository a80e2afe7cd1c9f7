"""Property tests of the core's building blocks (hypothesis; preconditions live in the strategies)."""
import math

import torch
from hypothesis import given, strategies as st
from scipy import stats

import subspace
from subspace.projection import move_moments, online_pca_grad

dims = st.integers(min_value=2, max_value=24)
seeds = st.integers(min_value=0, max_value=2**31 - 1)


def _gauss(m, n, seed, dtype=torch.float64):
    return torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _orthonormal(Q, tol):
    eye = torch.eye(Q.shape[1], dtype=Q.dtype)
    return (Q.mT @ Q - eye).abs().max().item() <= tol


@given(m=dims, n=dims, r=st.integers(1, 24), seed=seeds, side=st.sampled_from(["left", "right"]))
def test_bases_are_orthonormal(m, n, r, seed, side):
    G = _gauss(m, n, seed, torch.float32)
    k = m if side == "left" else n
    r = min(r, m, n)  # precondition: a rank-r basis exists (the optimizer clamps r to min(m, n))
    for Q in (subspace.svd_basis(G, r, side),
              subspace.randomized_svd_basis(G, r, side, generator=torch.Generator().manual_seed(seed)),
              subspace.stiefel(k, r, torch.Generator().manual_seed(seed))):
        assert Q.shape == (k, r) and _orthonormal(Q, 1e-5)


@given(m=dims, r=st.integers(1, 24), seed=seeds)
def test_stiefel_law_is_rotation_invariant(m, r, seed):
    """Two-sample KS test: entry (0, 0) of P and of O P (O a fixed random rotation) have the same law.

    Without the sign fix, Householder QR makes Q[0, 0] one-signed and this fails."""
    r = min(r, m)
    gen = torch.Generator().manual_seed(seed)
    O = subspace.stiefel(m, m, gen, dtype=torch.float64)
    a = [subspace.stiefel(m, r, gen, dtype=torch.float64)[0, 0].item() for _ in range(300)]
    b = [(O @ subspace.stiefel(m, r, gen, dtype=torch.float64))[0, 0].item() for _ in range(300)]
    assert stats.ks_2samp(a, b).pvalue > 1e-4
    assert stats.ks_2samp(a, [-x for x in a]).pvalue > 1e-4  # symmetric law


@given(m=dims, n=dims, seed=seeds)
def test_polar_factor_is_exact(m, n, seed):
    M = _gauss(m, n, seed)
    P = subspace.polar(M)
    k = min(m, n)
    gram = P.mT @ P if m >= n else P @ P.mT
    assert torch.allclose(gram, torch.eye(k, dtype=M.dtype), atol=1e-10)
    H = P.mT @ M if m >= n else M @ P.mT  # symmetric positive semi-definite factor
    assert torch.allclose(H, H.mT, atol=1e-9) and torch.linalg.eigvalsh(H).min() > -1e-9


@given(m=dims, n=dims, seed=seeds, steps=st.integers(0, 7),
       coeffs=st.sampled_from(["muon", "cubic", (2.0, -1.5, 0.5)]))
def test_newton_schulz_acts_on_singular_values_by_the_scalar_map(m, n, seed, steps, coeffs):
    """svdvals(NS_k(M)) = p^k(sigma_i / ||M||_F) exactly (float64), for any odd polynomial schedule."""
    M = _gauss(m, n, seed)
    out = torch.linalg.svdvals(subspace.newton_schulz(M, steps, coeffs, eps=0.0))
    x = torch.linalg.svdvals(M) / torch.linalg.matrix_norm(M)
    for c in subspace.orthogonalize.resolve_schedule(coeffs, steps):
        x = sum(ci * x ** (2 * i + 1) for i, ci in enumerate(c))
    assert torch.allclose(out, x.abs().sort(descending=True).values, atol=1e-8, rtol=1e-6)


@given(m=dims, n=dims, seed=seeds, floor=st.floats(1.5e-3, 1.0))
def test_muon_quintic_band_above_threshold(m, n, seed, floor):
    """Precondition sigma_i/||M||_F >= 1.5e-3 for every i  =>  five quintic steps land in [0.68, 1.21]."""
    k = min(m, n)
    gen = torch.Generator().manual_seed(seed)
    s = floor + (1.0 - floor) * torch.rand(k, generator=gen, dtype=torch.float64)
    s = s / s.norm()  # Frobenius-normalised spectrum; every x_i >= floor / ||s_raw|| may drop below floor: re-check
    if s.min() < 1.5e-3:
        return
    U = subspace.stiefel(m, k, gen, dtype=torch.float64)
    V = subspace.stiefel(n, k, gen, dtype=torch.float64)
    out = torch.linalg.svdvals(subspace.newton_schulz(U @ torch.diag(s) @ V.mT, 5, "muon", eps=0.0))
    assert out.min() >= 0.68 and out.max() <= 1.21


@given(k=dims, l=dims, r=st.integers(1, 12), seed=seeds)
def test_transport_preserves_the_in_subspace_component(k, l, r, seed):
    """After M <- Q_new^T Q_old M:  Q_new M_new = Q_new Q_new^T (Q_old M); a rotation within the subspace is lossless."""
    r = min(r, k)
    gen = torch.Generator().manual_seed(seed)
    Q_old = subspace.stiefel(k, r, gen, dtype=torch.float64)
    Q_new = subspace.stiefel(k, r, gen, dtype=torch.float64)
    M = torch.randn(r, l, generator=gen, dtype=torch.float64)
    state = {"exp_avg": M.clone()}
    move_moments(state, Q_old, Q_new, "transport", ("exp_avg",))
    assert torch.allclose(Q_new @ state["exp_avg"], Q_new @ Q_new.mT @ Q_old @ M, atol=1e-10)
    Rot = subspace.stiefel(r, r, gen, dtype=torch.float64)
    state = {"exp_avg": M.clone()}
    move_moments(state, Q_old, Q_old @ Rot, "transport", ("exp_avg",))
    assert torch.allclose(Q_old @ Rot @ state["exp_avg"], Q_old @ M, atol=1e-10)


@given(k=dims, l=dims, r=st.integers(1, 12), seed=seeds, orth=st.sampled_from([0.0, 0.1, 1.0]))
def test_online_pca_gradient_matches_autograd(k, l, r, seed, orth):
    r = min(r, k)
    gen = torch.Generator().manual_seed(seed)
    P = torch.randn(k, r, generator=gen, dtype=torch.float64, requires_grad=True)
    A = torch.randn(k, l, generator=gen, dtype=torch.float64)
    At = A / A.norm()
    loss = (P @ P.mT @ At - At).square().sum() + orth * (P.mT @ P - torch.eye(r, dtype=P.dtype)).square().sum()
    loss.backward()
    grad, value = online_pca_grad(P.detach(), A, orth)
    assert torch.allclose(grad, P.grad, atol=1e-9) and math.isclose(value.item(), loss.item(), rel_tol=1e-9)


@given(m=dims, n=dims, r=st.integers(1, 24), seed=seeds, side=st.sampled_from(["left", "right"]))
def test_gram_and_svd_drivers_span_the_same_top_r_subspace(m, n, r, seed, side):
    """Precondition: a spectral gap after the r-th singular value (prescribed spectrum with a factor-2 gap)."""
    gen = torch.Generator().manual_seed(seed)
    k = min(m, n)
    r = min(r, k)
    s = torch.cat([2.0 + torch.rand(r, generator=gen, dtype=torch.float64),
                   torch.rand(k - r, generator=gen, dtype=torch.float64)])
    G = subspace.stiefel(m, k, gen, dtype=torch.float64) @ torch.diag(s) @ subspace.stiefel(n, k, gen, dtype=torch.float64).mT
    Q1, Q2 = subspace.svd_basis(G, r, side, driver="svd"), subspace.svd_basis(G, r, side, driver="gram")
    assert torch.allclose(Q1 @ Q1.mT, Q2 @ Q2.mT, atol=1e-8)


@given(k=dims, l=dims, r=st.integers(1, 12), seed=seeds)
def test_online_pca_grad_reuses_the_projected_gradient(k, l, r, seed):
    r = min(r, k)
    gen = torch.Generator().manual_seed(seed)
    P = torch.randn(k, r, generator=gen, dtype=torch.float64)
    A = torch.randn(k, l, generator=gen, dtype=torch.float64)
    g1, v1 = online_pca_grad(P, A, 0.1)
    g2, v2 = online_pca_grad(P, A, 0.1, R=P.mT @ A)
    assert torch.allclose(g1, g2, atol=1e-12) and torch.allclose(v1, v2, atol=1e-12)
    g0, v0 = online_pca_grad(P, torch.zeros_like(A), 0.0)
    assert torch.isfinite(g0).all() and float(v0) == 0.0 and float(g0.abs().max()) == 0.0


@given(m=dims, n=dims, seed=seeds, log_kappa=st.floats(0.0, 6.0), rank_def=st.integers(0, 3))
def test_gram_polar_equals_svd_polar(m, n, seed, log_kappa, rank_def):
    """Precondition: kappa(M) <= 1e6 on its nonzero singular values (the documented accuracy range)."""
    gen = torch.Generator().manual_seed(seed)
    k = min(m, n)
    s = torch.logspace(0, -log_kappa, k, dtype=torch.float64)
    s[k - min(rank_def, k - 1):] = 0.0 if rank_def else s[k - 1:]
    M = subspace.stiefel(m, k, gen, dtype=torch.float64) @ torch.diag(s) @ subspace.stiefel(n, k, gen, dtype=torch.float64).mT
    assert torch.allclose(subspace.polar(M, method="gram"), subspace.polar(M), atol=1e-6)
