"""OSD Hamiltonian descent (paper-claims §3.2-3.3): H non-increasing up to the Euler remainder bound derived in
analysis.hamiltonian, for any projection dynamics; Adam with a < b/4 is the stated exception."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis import online_pca_gradient, osd_hamiltonian, quadratic_loss, rotation_schedule


def _problem(seed, m, n, r, logcosh):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m + 1, m)) / np.sqrt(m)
    B = rng.standard_normal((m + 1, n))
    loss_q, grad_q, ell = quadratic_loss(A, B)
    if logcosh:  # a non-quadratic smooth loss: + sum log cosh(W), Hessian <= I
        def loss(W):
            return loss_q(W) + float(np.log(np.cosh(W)).sum())

        def grad(W):
            return grad_q(W) + np.tanh(W)
        ell = ell + 1.0
    else:
        loss, grad = loss_q, grad_q
    P0 = np.linalg.qr(rng.standard_normal((m, r)))[0]
    return loss, grad, ell, rng.standard_normal((m, n)), P0, rng.standard_normal((r, n)), rng.uniform(0.1, 2.0, (r, n))


@st.composite
def settings_(draw):
    m = draw(st.integers(2, 6))
    return dict(seed=draw(st.integers(0, 2 ** 31 - 1)), m=m, n=draw(st.integers(1, 5)),
                r=draw(st.integers(1, m)), logcosh=draw(st.booleans()),
                projection=draw(st.sampled_from(["pca", "rotation"])),
                h=draw(st.sampled_from([1e-3, 4e-3])))


def _run(cfg, optimizer, **kw):
    loss, grad, ell, W0, P0, M0, V0 = _problem(cfg["seed"], cfg["m"], cfg["n"], cfg["r"], cfg["logcosh"])
    proj = "pca" if cfg["projection"] == "pca" else rotation_schedule(P0, scale=3.0, seed=cfg["seed"])
    return osd_hamiltonian(loss, grad, W0, P0, optimizer=optimizer, h=cfg["h"], steps=250, projection=proj,
                           smoothness=ell, M0=M0, V0=V0 if optimizer == "adam" else None, **kw)


@given(settings_(), st.floats(0.2, 5.0))
def test_momentum_hamiltonian_non_increasing(cfg, a):
    """TRUE (OSD Example 4.1): dH/dt = -||M||^2 <= 0 for any P(t); the Euler increments are at most the rigorous
    second-order remainder bound (l/2 ||dW||^2 + ||dM||^2/(2a) + round-off)."""
    tr = _run(cfg, "momentum", a=a)
    assert np.all(tr.dHdt <= 1e-12 * (1 + np.abs(tr.H)))
    assert tr.non_increasing(), tr.worst_excess
    # consistency of the first-order term: dH = h dH/dt + R with 0 <= R <= tolerance
    assert np.all(tr.increments <= cfg["h"] * tr.dHdt[:-1] + tr.tolerance)
    assert tr.H[-1] <= tr.H[0]


@given(settings_(), st.floats(0.25, 4.0), st.data())
def test_adam_hamiltonian_non_increasing_when_a_ge_b_over_4(cfg, b, data):
    """TRUE (OSD Example 4.2): a >= b/4 => dH/dt <= -(1 - b/4a) sum M^2/D <= 0, for any P(t)."""
    a = data.draw(st.floats(b / 4, 4.0))
    tr = _run(cfg, "adam", a=a, b=b, e=1e-3)
    assert np.all(tr.dHdt <= 1e-12 * (1 + np.abs(tr.H)))
    assert tr.non_increasing(), tr.worst_excess
    assert np.all(tr.increments <= cfg["h"] * tr.dHdt[:-1] + tr.tolerance)


@pytest.mark.parametrize("K", ["smooth", "l1"])
@pytest.mark.parametrize("projection", ["pca", "rotation"])
def test_lion_hamiltonian_non_increasing(K, projection):
    """TRUE (OSD Example 4.3) for K = ||.||_1 and its pseudo-Huber smoothing."""
    cfg = dict(seed=5, m=5, n=3, r=2, logcosh=True, projection=projection, h=1e-3)
    tr = _run(cfg, "lion", a=1.0, b=0.3, K=K, mu=0.05)
    assert np.all(tr.dHdt <= 1e-12 * (1 + np.abs(tr.H)))
    assert tr.non_increasing(), tr.worst_excess
    assert tr.H[-1] < tr.H[0]


def test_finding_adam_hamiltonian_increases_when_a_lt_b_over_4():
    """The a >= b/4 condition is needed: start at a minimiser of L (grad = 0) with M != 0, V = 1, a = 0.05,
    b = 1 (a < b/4): dH/dt = -(sum M^2/D)(1 - b/(4a) V/(D sqrt V)) > 0 and H rises far beyond the Euler remainder."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 4))
    B = rng.standard_normal((5, 3))
    loss, grad, ell = quadratic_loss(A, B)
    W_star = np.linalg.lstsq(A, B, rcond=None)[0]
    P0 = np.linalg.qr(rng.standard_normal((4, 2)))[0]
    M0 = rng.standard_normal((2, 3))
    tr = osd_hamiltonian(loss, grad, W_star, P0, optimizer="adam", a=0.05, b=1.0, e=1e-8, h=1e-3, steps=200,
                         projection="fixed", smoothness=ell, M0=M0, V0=np.ones((2, 3)))
    assert tr.dHdt[0] > 0
    assert tr.worst_excess > 0 and not tr.non_increasing()
    assert tr.H[50] > tr.H[0] + 1e-3
    # the same start with a = b/4 does not increase
    ok = osd_hamiltonian(loss, grad, W_star, P0, optimizer="adam", a=0.25, b=1.0, e=1e-8, h=1e-3, steps=200,
                         projection="fixed", smoothness=ell, M0=M0, V0=np.ones((2, 3)))
    assert ok.non_increasing()


def test_online_pca_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    P, G = rng.standard_normal((6, 2)), rng.standard_normal((6, 4))
    lam = 0.3

    def f(P):
        Gt = G / np.linalg.norm(G)
        return np.linalg.norm(P @ P.T @ Gt - Gt) ** 2 + lam * np.linalg.norm(P.T @ P - np.eye(2)) ** 2

    g = online_pca_gradient(P, G, lam)
    fd = np.zeros_like(P)
    for i in range(6):
        for j in range(2):
            E = np.zeros_like(P)
            E[i, j] = 1e-6
            fd[i, j] = (f(P + E) - f(P - E)) / 2e-6
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_trajectory_diagnostics_and_projection_schedules():
    loss, grad, ell, W0, P0, M0, _ = _problem(2, 5, 3, 2, False)
    sched = rotation_schedule(P0, scale=2.0, seed=0)
    np.testing.assert_allclose(sched(0.0), P0, atol=1e-14)
    for t in (0.3, 1.7):
        np.testing.assert_allclose(sched(t).T @ sched(t), np.eye(2), atol=1e-12)
    tr = osd_hamiltonian(loss, grad, W0, P0, a=1.0, h=1e-3, steps=100, projection=sched, smoothness=ell, M0=M0)
    assert tr.H.shape == tr.grad_norm.shape == tr.loss.shape == (101,)
    assert tr.increments.shape == tr.tolerance.shape == (100,)
    assert np.all(tr.orth_error < 1e-10)
    np.testing.assert_allclose(tr.dHdt[0], -np.sum(M0 ** 2), rtol=1e-12)  # dH/dt = -||M||^2 (Example 4.1)
    assert tr.max_increase < 0
    # online PCA pulls P toward the gradient's top subspace: the captured fraction of ||grad|| grows
    tr2 = osd_hamiltonian(loss, grad, W0, P0, a=1.0, h=1e-2, steps=300, projection="pca", pca_rate=5.0,
                          smoothness=ell, M0=M0)
    frac = tr2.projected_grad_norm / tr2.grad_norm
    assert frac[-1] > frac[0]
    with pytest.raises(ValueError):
        osd_hamiltonian(loss, grad, W0, P0, optimizer="adam", a=1.0, b=None)
