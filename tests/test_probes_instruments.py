"""probes.instruments: the small formulas on matrices with known answers, and the full-space/subspace conventions
against what the optimizer core actually stores."""
import math

import pytest
import torch

import subspace
from probes import instruments as I


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core box they lose a lot."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def test_spectral_stats_known_matrix():
    s = torch.tensor([4.0, 2.0, 1.0])
    st = I.spectral_stats(s)
    assert st["stable_rank"] == pytest.approx(21 / 16)
    assert st["kappa_cond"] == pytest.approx(4.0) and st["kappa_gram"] == pytest.approx(16.0)
    assert st["kappa_defect"] == pytest.approx(1 - 16 / 21)
    M = torch.diag(s) @ torch.linalg.qr(torch.randn(3, 5, generator=torch.Generator().manual_seed(0)).mT)[0].mT
    assert torch.allclose(I.singular_values(M), s.double() if M.dtype == torch.float64 else s, atol=1e-5)
    rank1 = I.spectral_stats(I.singular_values(torch.outer(torch.ones(4), torch.arange(1.0, 6.0))))
    assert rank1["stable_rank"] == pytest.approx(1.0, abs=1e-6) and rank1["kappa_defect"] == pytest.approx(0, abs=1e-6)
    assert I.spectral_stats(torch.tensor([1.0, 0.0]))["kappa_cond"] == math.inf


def test_ns_error_zero_on_orthogonal_and_positive_on_ill_conditioned():
    Q = torch.linalg.qr(torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64))[0]
    assert I.ns_error(Q.mT, coeffs="cubic", steps=20)["ns_error_rel"] < 1e-8
    ill = Q @ torch.diag(torch.tensor([1.0, 1e-1, 1e-2, 1e-3], dtype=torch.float64))
    e = I.ns_error(ill.mT)
    assert 0 < e["ns_error_rel"] < 1 and e["ns_error_fro"] == pytest.approx(2 * e["ns_error_rel"])


def test_principal_angles():
    g = torch.Generator().manual_seed(2)
    Q = subspace.stiefel(8, 3, g)
    assert torch.allclose(I.principal_angles(Q, Q), torch.zeros(3), atol=1e-3)
    R = torch.linalg.qr(torch.randn(3, 3, generator=g))[0]
    assert I.basis_stats(Q, Q @ R)["overlap"] == pytest.approx(1.0, abs=1e-5)  # same span, other basis
    E = torch.eye(8)
    st = I.basis_stats(E[:, :3], E[:, [0, 4, 5]])
    assert st["max_angle"] == pytest.approx(math.pi / 2) and st["overlap"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("shape", [(6, 10), (10, 6)])
def test_lift_and_project_match_the_core(shape):
    """After one GaLore step the first moment is (1-b1) Q^T A; lifting it must give (1-b1) Q Q^T G in W's shape."""
    g = torch.Generator().manual_seed(3)
    W = torch.nn.Parameter(torch.randn(*shape, generator=g))
    opt = subspace.make("galore", [W], rank=3, lr=1e-3)
    W.grad = torch.randn(*shape, generator=g)
    opt.step()
    st = opt.state[W]
    Q, M = st["basis"], st["exp_avg"]
    assert torch.allclose(I.project(W.grad, Q).float(), M / 0.1, atol=1e-5)
    full = I.lift(M, Q, shape)
    assert full.shape == shape
    P = Q @ Q.mT
    expect = 0.1 * (P @ W.grad if shape[0] < shape[1] else W.grad @ P)
    assert torch.allclose(full.float(), expect, atol=1e-5)
    rep = I.layer_report(W, st)
    assert rep["grad_proj.captured"] == pytest.approx(float((Q.mT @ I.orient(W.grad)[0]).pow(2).sum()
                                                            / W.grad.pow(2).sum()), rel=1e-5)
    assert len(rep["moment_proj.sv"]) == 3 and rep["moment_full.stable_rank"] <= 3 + 1e-6
    assert rep["state.bytes"] == I.state_bytes(st) == 4 * (3 * min(shape) + 2 * 3 * max(shape))
