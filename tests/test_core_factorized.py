"""Factorized low-rank training (subspace.factorized): W = W0 + B A follows the standard preset's trajectory."""
import copy

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import subspace
from analysis.factorized_bench import crossover_rank, ddp_bytes, mlp, step_times, trajectory_error
from subspace.factorized import FactorizedLinear

#: Presets with a refreshed projector and no complement term: keep (galore, galore-sgdm official) and transport
#: (golore, sumo, golore-sgdm), Adam, momentum, exact polar and Newton–Schulz with the limiter.
FACTORIZABLE = [("galore", {}), ("golore", {}), ("sumo", dict(complement_scale=0.0)),
                ("sumo-ns5", dict(complement_scale=0.0)), ("golore-sgdm", {})]


@settings(max_examples=8)
@given(case=st.sampled_from(FACTORIZABLE), n=st.integers(2, 8), m=st.integers(2, 8), hidden=st.integers(9, 12),
       rank=st.integers(1, 4), update_gap=st.integers(1, 3), weight_decay=st.sampled_from([0.0, 0.1]),
       wd_order=st.sampled_from(["before", "after"]), side=st.sampled_from(["auto", "left", "right"]),
       seed=st.integers(0, 2**16))
def test_trajectory_equals_standard_in_float64(case, n, m, hidden, rank, update_gap, weight_decay, wd_order, side,
                                               seed):
    """Both sides (with side="auto" the MLP's first weight, hidden x n, is projected on the right and its second,
    m x hidden, on the left; "left"/"right" force one), decoupled decay in either order, several refreshes
    (6 steps, T <= 3): the same trajectory to float64 round-off."""
    name, hp = case
    error = trajectory_error(name, n=n, hidden=hidden, m=m, steps=6, dtype=torch.float64, seed=seed, rank=rank,
                             update_gap=update_gap, weight_decay=weight_decay, wd_order=wd_order, side=side,
                             lr=1e-2, **hp)
    assert error < 1e-12


@pytest.mark.parametrize("name,hp,mode", [(name, hp, "paper") for name, hp in FACTORIZABLE]
                         + [("golore", {}, "official"), ("galore-sgdm", {}, "official")])
def test_trajectory_equals_standard_in_float32(name, hp, mode):
    """float32 round-off (measured ~1e-7), official modes included (transport-step's deferred moment, 1-indexed
    refreshes, HF eps)."""
    error = trajectory_error(name, mode=mode, steps=7, rank=3, update_gap=3, weight_decay=0.1, lr=1e-2, **hp)
    assert error < 1e-5


def _batches_for(steps):
    gen = torch.Generator().manual_seed(0)
    return [(torch.randn(6, 5, generator=gen), torch.randn(6, 4, generator=gen)) for _ in range(steps)]


def _train_step(model, opt, x, y):
    nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()


def _run(name, steps=5, poison=None, **hp):
    """(model, opt, [captures seen after each backward]) of a factorized run; ``poison``: step whose loss is NaN."""
    model, opt = subspace.make_factorized(name, mlp(5, 9, 4), nonfinite="skip", rank=2, lr=1e-2, **hp)
    seen = []
    for t, (x, y) in enumerate(_batches_for(steps)):
        loss = nn.functional.mse_loss(model(x), y) * (float("nan") if t == poison else 1.0)
        loss.backward()
        seen.append([layer.capture is not None for layer in model.modules() if isinstance(layer, FactorizedLinear)])
        opt.step()
        opt.zero_grad()
    return model, opt, seen


def test_full_gradient_only_at_decomposition_refreshes():
    """GoLore's random bases never need dL/dW; GaLore's SVD needs it at refresh steps only (t = 0, 2, 4)."""
    model, _, seen = _run("golore", update_gap=2)
    assert not any(any(step) for step in seen)
    assert all(layer.weight.grad is None and not layer.weight.requires_grad
               for layer in model.modules() if isinstance(layer, FactorizedLinear))
    _, _, seen = _run("galore", update_gap=2)
    assert [all(step) for step in seen] == [True, False, True, False, True]


def test_skipped_refresh_step_is_retried():
    """A non-finite gradient at a refresh step leaves everything untouched; the next step refreshes instead,
    as the standard optimizer does."""
    model, opt, seen = _run("galore", steps=5, poison=2, update_gap=2)
    assert opt.skipped_steps == 1 and [all(step) for step in seen] == [True, False, True, True, False]
    standard = mlp(5, 9, 4)
    std_opt = subspace.make("galore", standard, nonfinite="skip", rank=2, lr=1e-2, update_gap=2)
    for t, (x, y) in enumerate(_batches_for(5)):
        (nn.functional.mse_loss(standard(x), y) * (float("nan") if t == 2 else 1.0)).backward()
        std_opt.step()
        std_opt.zero_grad()
    merged = [layer.merged_weight() for layer in model.modules() if isinstance(layer, FactorizedLinear)]
    assert all(torch.allclose(a, b.weight, rtol=0, atol=1e-6) for a, b in zip(merged, (standard[0], standard[2])))


@pytest.mark.parametrize("name,hp", [("sumo", {}), ("osd", {}), ("adamw", {}), ("adam-snsm", {}),
                                     ("galore", dict(complement_scale=0.5))])
def test_refuses_rules_the_factorized_form_cannot_run(name, hp):
    with pytest.raises(ValueError, match="factorized training needs"):
        subspace.make_factorized(name, mlp(5, 9, 4), **hp)


def test_factorize_and_unfactorize_keep_the_function():
    """C = 0 until the optimizer steps; ``unfactorize`` writes W0 + B A back into plain Linear layers."""
    model = mlp(5, 9, 4)
    x = torch.randn(3, 5)
    before = model(x)
    model, opt = subspace.make_factorized("golore", copy.deepcopy(model), rank=2, lr=1e-2)
    assert torch.equal(model(x), before) and isinstance(model[0], FactorizedLinear)
    model(x).square().sum().backward()
    opt.step()
    after = model(x)
    plain = subspace.unfactorize(model)
    assert type(plain[0]) is nn.Linear and torch.allclose(plain(x), after, atol=1e-6)


def test_ddp_all_reduces_only_the_factors():
    """2 gloo processes: the factorized model's DDP buckets hold the factors (r x l) and the dense biases; the
    refresh steps add the full gradients once per update_gap; the trajectory is the standard DDP one."""
    result = ddp_bytes("galore", n=12, hidden=20, m=6, steps=2, rank=3, update_gap=2, lr=1e-2)
    biases = 20 + 6
    assert result["standard_bytes"] == 4 * (20 * 12 + 6 * 20 + biases)
    assert result["factorized_ddp_bytes"] == 4 * (3 * 20 + 3 * 20 + biases)
    assert result["refresh_bytes"] == 4 * (20 * 12 + 6 * 20) / 2
    assert result["error"] < 1e-5


def test_step_time_rows_and_crossover():
    rows = step_times((1, 2), m=4, n=6, batch=3, repeats=1, steps=1)
    assert [sorted(r) for r in rows] == [sorted(["rank", "m", "n", "batch", "t_standard_s", "t_factorized_s",
                                                 "ratio"])] * 2
    assert all(r["ratio"] == r["t_factorized_s"] / r["t_standard_s"] > 0 for r in rows)
    synthetic = [dict(rank=r, ratio=q) for r, q in ((16, 0.5), (64, 0.8), (128, 1.2))]
    assert crossover_rank(synthetic) == pytest.approx(96.0)
    assert crossover_rank(synthetic[:2]) is None and crossover_rank(synthetic[2:]) == 128.0


@pytest.mark.parametrize("name,mode", [("galore", "paper"), ("golore", "official")])
def test_checkpoint_before_a_refresh_resumes_the_run(name, mode):
    """Saved after step 2 with T = 3: the next step refreshes (galore: a pending capture; golore official: a
    drawn basis and a deferred transport-step moment). Model and optimizer state dicts resume it exactly."""
    hp = dict(mode=mode, rank=2, update_gap=3, lr=1e-2)
    data = _batches_for(6)
    model, opt = subspace.make_factorized(name, mlp(5, 9, 4), **hp)
    for x, y in data[:3]:
        _train_step(model, opt, x, y)
    saved = copy.deepcopy((model.state_dict(), opt.state_dict()))
    for x, y in data[3:]:
        _train_step(model, opt, x, y)
    resumed, ropt = subspace.make_factorized(name, mlp(5, 9, 4, seed=1), **hp)
    _train_step(resumed, ropt, *data[0])  # a different run, one step in: no capture pending
    resumed.load_state_dict(saved[0])
    ropt.load_state_dict(saved[1])
    for x, y in data[3:]:
        _train_step(resumed, ropt, x, y)
    for a, b in zip(model.modules(), resumed.modules()):
        if isinstance(a, FactorizedLinear):
            assert torch.equal(a.merged_weight(), b.merged_weight())

