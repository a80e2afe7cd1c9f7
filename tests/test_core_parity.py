"""Parity with the official code that installs from PyPI, and with Muon's published iteration."""
import pytest
import torch

import subspace

import galore_torch  # test-only dependency (pyproject [test]); a missing install must fail, not skip


def _grad_stream(W, t, gen_seed):
    """A deterministic loss whose gradient depends on W and on the step (so trajectories can drift apart)."""
    g = torch.Generator().manual_seed(gen_seed * 1000 + t)
    C = torch.randn(W.shape, generator=g)
    return (W * C).sum() + 0.5 * (W ** 2).sum() + 0.1 * (W.sum(0) ** 2).sum()


@pytest.mark.parametrize("shape", [(24, 40), (40, 24), (32, 32)])
def test_galore_official_mode_matches_galore_torch(shape):
    torch.manual_seed(0)
    init = torch.randn(shape)
    bias0 = torch.randn(shape[0])
    ours_W, ref_W = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    ours_b, ref_b = torch.nn.Parameter(bias0.clone()), torch.nn.Parameter(bias0.clone())
    hp = dict(lr=0.01, weight_decay=0.01)
    ref = galore_torch.GaLoreAdamW(
        [{"params": [ref_W], "rank": 6, "update_proj_gap": 5, "scale": 0.25, "proj_type": "std"},
         {"params": [ref_b]}], eps=1e-6, no_deprecation_warning=True, **hp)
    ours = subspace.make("galore", [{"params": [ours_W]}, {"params": [ours_b], "low_rank": False}],
                         mode="official", rank=6, update_gap=5, scale=0.25, **hp)
    for t in range(25):
        for opt, W, b in ((ref, ref_W, ref_b), (ours, ours_W, ours_b)):
            opt.zero_grad()
            (_grad_stream(W, t, 1) + (b ** 2).sum()).backward()
            opt.step()
        torch.testing.assert_close(ours_W, ref_W, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours_b, ref_b, rtol=1e-5, atol=1e-6)


def _published_ns5(G, steps):
    """Muon's iteration as published (KellerJordan/Muon, zeropower_via_newtonschulz5), restated for float32."""
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.float()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


@pytest.mark.parametrize("shape", [(16, 48), (48, 16), (3, 20, 20)])
def test_newton_schulz_muon_matches_published_iteration(shape):
    G = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(subspace.newton_schulz(G, 5, "muon"), _published_ns5(G, 5), rtol=1e-5, atol=1e-6)
    ours_bf16 = subspace.newton_schulz(G, 5, "muon", dtype=torch.bfloat16)
    assert ours_bf16.dtype == G.dtype
    torch.testing.assert_close(ours_bf16, _published_ns5(G, 5), rtol=0.0, atol=0.05)
