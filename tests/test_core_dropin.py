"""Drop-in use that cannot go silently wrong: a compiled step equals the eager one; parameters on the meta device step."""
import pytest
import torch

import subspace

NAMES = subspace.available()


def _small_keys(name):
    """rank 4 and gap 2 where the preset reads them (several refreshes in a few steps), both projector kinds for GoLore."""
    accepts = subspace.PRESETS[name].accepts()
    wanted = dict(rank=4, update_gap=2, golore_fraction=0.5, total_steps=8)
    return {k: v for k, v in wanted.items() if k in accepts}


def _trajectory(name, compiled, steps=4):
    gen = torch.Generator().manual_seed(0)
    W = torch.nn.Parameter(torch.randn(16, 24, generator=gen))
    b = torch.nn.Parameter(torch.randn(24, generator=gen))
    target = torch.randn(16, 24, generator=gen)
    opt = subspace.make(name, [W, b], lr=1e-2, **_small_keys(name))
    step = torch.compile(opt.step) if compiled else opt.step
    for _ in range(steps):
        opt.zero_grad()
        ((W - target).square().sum() + 1e-3 * (W.sum(0) ** 3).sum() + b.square().sum()).backward()
        step()
    return W.detach().clone(), b.detach().clone()


@pytest.mark.parametrize("name", NAMES)
def test_compiled_step_equals_eager_step(name):
    """torch 2.13's inductor dropped alpha in ``W.add_(Q @ X, alpha=-lr)`` (steps 1/lr too large for galore, golore,
    galore-sgdm and osd); the core folds the coefficient into X instead (see ``_apply_projected``)."""
    torch._dynamo.reset()
    eager, compiled = _trajectory(name, False), _trajectory(name, True)
    for e, c in zip(eager, compiled):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_steps_on_the_meta_device(name):
    """Memory planning for 7B builds the model on the meta device: the optimizer steps and allocates its states there."""
    with torch.device("meta"):
        model = torch.nn.Sequential(torch.nn.Linear(24, 16), torch.nn.Linear(16, 8))
    opt = subspace.make(name, model, **_small_keys(name))
    for _ in range(3):
        for p in model.parameters():
            p.grad = torch.empty_like(p)
        opt.step()
    states = [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v) and v.ndim > 0]
    assert states and all(v.is_meta for v in states)
