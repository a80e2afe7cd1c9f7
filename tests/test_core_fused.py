"""Per-parameter steps fused into backward (subspace.fuse_into_backward): the standard trajectory under gradient
accumulation, LR schedules, 8-bit states and DDP; the documented non-finite rule; per-parameter clipping."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import subspace

NAMES = subspace.available()
X, Y = torch.randn(8, 12, generator=torch.Generator().manual_seed(0)), \
    torch.randn(8, 10, generator=torch.Generator().manual_seed(1))


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))


def _params(m):
    """Backward order (the hooks' order), so that even a shared random stream (official GoLore) draws in the same
    sequence in both modes."""
    return [m[2].weight, m[2].bias, m[0].weight, m[0].bias]


def _opt(name, model, **extra):
    hp = {k: v for k, v in dict(rank=4, update_gap=2, **extra).items() if k in subspace.PRESETS[name].accepts()}
    return subspace.make(name, _params(model), lr=0.01, **hp)


def _loss(model, x, y):
    return torch.nn.functional.mse_loss(model(x), y)


def _standard(opt, model, steps, sched=None):
    for _ in range(steps):
        opt.zero_grad()
        _loss(model, X, Y).backward()
        opt.step()
        if sched:
            sched.step()


def _fused(opt, model, steps, micro=4, sched=None, **kw):
    fused = subspace.fuse_into_backward(opt, model, **kw)
    k = len(X) // micro
    for _ in range(steps):
        for i in range(micro):
            loss = _loss(model, X[i * k:(i + 1) * k], Y[i * k:(i + 1) * k]) / micro
            if i < micro - 1:
                with fused.accumulating():
                    loss.backward()
            else:
                loss.backward()
        opt.step()   # no-op for fused parameters
        if sched:
            sched.step()
    return fused


def _close(a, b, atol=1e-6):
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters())) <= atol


@pytest.mark.parametrize("bits", [32, 8])
@pytest.mark.parametrize("name", NAMES)
def test_accumulate_four_then_step_equals_one_step_on_the_concatenation(name, bits):
    a, b = _model(), _model()
    oa, ob = _opt(name, a, state_bits=bits), _opt(name, b, state_bits=bits)
    _standard(oa, a, 4)
    _fused(ob, b, 4)
    assert _close(a, b, atol=1e-6 if bits == 32 else 1e-4)
    assert all(p.grad is None for p in b.parameters())  # every gradient freed by its hook
    assert [s["step"] for s in ob.state.values()] == [4] * 4


@pytest.mark.parametrize("name", ["golore", "golore-sgdm", "sumo", "sumo-ns5"])
def test_random_bases_do_not_depend_on_the_order_parameters_step_in(name):
    """Per-parameter random streams (paper mode): listed in forward order, stepped in backward order by the hooks,
    the fused run draws the standard run's bases (a shared stream drew a different sequence: 2.7e-3 apart)."""
    a, b = _model(), _model()
    forward = lambda m: [m[0].weight, m[0].bias, m[2].weight, m[2].bias]  # noqa: E731
    hp = lambda: {k: v for k, v in dict(rank=4, update_gap=2).items() if k in subspace.PRESETS[name].accepts()}  # noqa: E731
    oa = subspace.make(name, forward(a), lr=0.01, seed=3, **hp())
    ob = subspace.make(name, forward(b), lr=0.01, seed=3, **hp())
    _standard(oa, a, 5)
    _fused(ob, b, 5)
    assert _close(a, b, atol=1e-6)  # (the micro-batch sums differ from the full batch's by round-off)
    torch.testing.assert_close(oa.state[a[0].weight]["basis"], ob.state[b[0].weight]["basis"], rtol=0, atol=1e-5)


def test_one_scheduler_step_count_for_the_whole_model():
    a, b = _model(), _model()
    oa, ob = _opt("galore", a), _opt("galore", b)
    sa = torch.optim.lr_scheduler.LambdaLR(oa, lambda s: 1.0 / (1 + s))
    sb = torch.optim.lr_scheduler.LambdaLR(ob, lambda s: 1.0 / (1 + s))
    _standard(oa, a, 3, sa)
    _fused(ob, b, 3, sched=sb)
    assert _close(a, b) and sb.last_epoch == 3 and ob.param_groups[0]["lr"] == pytest.approx(0.01 / 4)


def test_nonfinite_loss_leaves_every_weight_and_state_untouched():
    m = _model()
    opt = _opt("galore", m)
    fused = _fused(opt, m, 2)
    before = [p.detach().clone() for p in m.parameters()]
    state = {id(p): {k: v.clone() for k, v in s.items() if torch.is_tensor(v)} for p, s in opt.state.items()}
    with pytest.raises(FloatingPointError, match="non-finite gradient"):
        (_loss(m, X, Y) * float("nan")).backward()
    assert all(torch.equal(p, q) for p, q in zip(m.parameters(), before))
    assert all(torch.equal(v, state[id(p)][k]) for p, s in opt.state.items() for k, v in s.items() if torch.is_tensor(v))
    fused.remove()


def test_nonfinite_mid_backward_follows_the_documented_rule():
    """Parameters whose gradient completes before the bad one keep their update; it and later ones are untouched;
    with nonfinite='skip' the step is counted as skipped."""
    m = _model()
    hp = dict(rank=4, update_gap=2)
    opt = subspace.make("galore", _params(m), lr=0.01, nonfinite="skip", **hp)
    subspace.fuse_into_backward(opt, m)
    m[0].weight.register_hook(lambda g: g * float("nan"))   # the first layer's weight gradient only
    before = [p.detach().clone() for p in _params(m)]
    _loss(m, X, Y).backward()
    changed = [not torch.equal(p, q) for p, q in zip(_params(m), before)]
    assert changed[:2] == [True, True] and not changed[2] and opt.skipped_steps == 1
    assert m[0].weight not in opt.state and all(p.grad is None for p in m.parameters())


def test_per_parameter_clipping_equals_clipping_each_gradient_alone():
    a, b = _model(), _model()
    oa, ob = _opt("adamw", a), _opt("adamw", b)
    for _ in range(3):
        oa.zero_grad()
        _loss(a, X, Y).backward()
        for p in a.parameters():
            torch.nn.utils.clip_grad_norm_([p], 0.05)   # coefficient max_norm / (norm + 1e-6), as the hook
        oa.step()
    _fused(ob, b, 3, micro=1, clip_norm=0.05)
    assert _close(a, b)


def test_refusals_and_remove():
    m = _model()
    opt = _opt("adamw", m)
    with pytest.raises(ValueError, match="not in the optimizer"):
        subspace.fuse_into_backward(opt, [torch.nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match="clip_norm"):
        subspace.fuse_into_backward(opt, m, clip_norm=0.0)
    fused = subspace.fuse_into_backward(opt, m)
    fused.remove()
    _loss(m, X, Y).backward()
    assert all(p.grad is not None for p in m.parameters())   # no hook fired


def _ddp_worker(rank, world, path, out):
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    m = _model()
    opt = _opt("galore", m)
    with pytest.raises(ValueError, match="inside DistributedDataParallel"):
        subspace.fuse_into_backward(opt, torch.nn.parallel.DistributedDataParallel(_model()))
    fused = subspace.fuse_into_backward(opt, m)
    half = len(X) // world
    x, y = X[rank * half:(rank + 1) * half], Y[rank * half:(rank + 1) * half]
    for _ in range(3):
        with fused.accumulating():
            (_loss(m, x[:2], y[:2]) / 2).backward()
        (_loss(m, x[2:], y[2:]) / 2).backward()
        opt.step()
    if rank == 0:
        torch.save([p.detach() for p in m.parameters()], out)
    dist.destroy_process_group()


def test_ddp_two_processes_equal_one(tmp_path):
    out = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True)
    single = _model()
    _standard(_opt("galore", single), single, 3)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(single.parameters(), torch.load(out)))
