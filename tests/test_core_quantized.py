"""8-bit block-wise moments (``state_bits=8``, subspace.quantize): the contract battery over every preset, the
byte formulas, and parity with bitsandbytes' dynamic map and 8-bit AdamW where it installs."""
import io
import math
import warnings

import pytest
import torch

import subspace
from subspace import quantize as Q
from test_core_contract import NAMES, Quadratic, _hp, _train

Q8 = dict(state_bits=8, state_block=64)


def _bnb():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("bitsandbytes")


# ------------------------------------------------------------------------------------------ the quantizer
def test_round_trip_error_is_below_half_a_code_gap():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1000, generator=g) * torch.logspace(-5, 0, 1000)
    for signed, X in ((True, x), (False, x.abs())):
        q, absmax = Q.quantize(X, signed, 256)
        assert q.dtype == torch.uint8 and q.shape == X.shape and absmax.shape == (4,)
        back = Q.dequantize(q, absmax, signed, 256)
        code = Q.dynamic_map(signed)
        gaps = (code[1:] - code[:-1]).max()
        assert ((back - X).abs() <= (1 + 1e-5) * gaps / 2 * absmax.repeat_interleave(256)[:1000]).all()  # -1 -> -0.993
        assert torch.equal(Q.dequantize(*Q.quantize(torch.zeros(7), signed, 4), signed, 4), torch.zeros(7))


def test_dynamic_map_is_bitsandbytes():
    F = _bnb().functional
    for signed in (True, False):
        assert torch.equal(Q.dynamic_map(signed), F.create_dynamic_map(signed=signed))


def test_adamw_8bit_tracks_bitsandbytes_adamw8bit():
    """Same dynamic maps and block size 256; we take the nearest code (bitsandbytes' torch backend does too, its
    CPU C kernel occasionally the second nearest), so codes may differ by one. Rule: over 20 steps the two 8-bit
    trajectories differ by under a quarter of what 8-bit quantization itself changes (distance to float32 AdamW)."""
    bnb = _bnb()
    g = torch.Generator().manual_seed(0)
    W0, b0 = torch.randn(64, 96, generator=g), torch.randn(96, generator=g)
    params = [[torch.nn.Parameter(t.clone()) for t in (W0, b0)] for _ in range(3)]
    opts = [subspace.make("adamw", params[0], lr=1e-2, state_bits=8),
            bnb.optim.AdamW8bit(params[1], lr=1e-2, weight_decay=0.01, min_8bit_size=0),
            torch.optim.AdamW(params[2], lr=1e-2, weight_decay=0.01)]
    for _ in range(20):
        G, gb = torch.randn(64, 96, generator=g), torch.randn(96, generator=g)
        for (W, b), opt in zip(params, opts):
            W.grad, b.grad = G.clone(), gb.clone()
            opt.step()
    ours, theirs, full = (p[0].detach() for p in params)
    assert (ours - theirs).norm() < 0.25 * (theirs - full).norm()
    assert (ours - full).norm().item() == pytest.approx((theirs - full).norm().item(), rel=0.1)


# ------------------------------------------------------------------------------------------ the battery, 8-bit
@pytest.mark.parametrize("name", NAMES)
def test_8bit_lowers_loss_and_stores_uint8_moments(name):
    prob = Quadratic()
    start = prob.loss().item()
    opt = subspace.make(name, prob.params(), lr=0.05, **_hp(name, **Q8))
    end = _train(opt, prob, 200)
    assert math.isfinite(end) and end < 0.5 * start, (start, end)
    for st in opt.state.values():
        assert st["exp_avg"].dtype == torch.uint8 and st.get("exp_avg_sq", st["exp_avg"]).dtype == torch.uint8
        assert all(v.dtype != torch.uint8 for k, v in st.items() if torch.is_tensor(v) and k not in Q.MOMENTS)


@pytest.mark.parametrize("shape", [(12, 20), (20, 12), (4, 3, 5)])
@pytest.mark.parametrize("side", ["auto", "right"])
@pytest.mark.parametrize("name", NAMES)
def test_8bit_state_bytes_equal_the_docstring_formula(name, shape, side):
    W = torch.nn.Parameter(torch.randn(*shape))
    b = torch.nn.Parameter(torch.randn(7))
    hp = _hp(name, side=side, **Q8)
    opt = subspace.make(name, [W, b], lr=1e-3, **hp)
    for _ in range(4):
        opt.zero_grad()
        (W.square().sum() + (W.sum(0) ** 3).sum() + b.square().sum()).backward()
        opt.step()
    for p, low in ((W, True), (b, False)):
        measured = sum(v.numel() * v.element_size() for v in opt.state[p].values() if torch.is_tensor(v) and v.ndim > 0)
        assert measured == subspace.state_bytes(name, p.shape, low_rank=low, element_size=p.element_size(), **hp)
        assert measured < subspace.state_bytes(name, p.shape, low_rank=low, **_hp(name, side=side)) or p.numel() < 64


@pytest.mark.parametrize("name", NAMES)
def test_8bit_state_dict_round_trip_resumes_bitwise(name):
    hp = _hp(name, **Q8)
    ref = Quadratic(seed=1)
    opt = subspace.make(name, ref.params(), lr=0.01, seed=7, **hp)
    _train(opt, ref, 7)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "W": ref.W.detach().clone(), "b": ref.b.detach().clone()}, buf)
    expected = [_train(opt, ref, 1) for _ in range(5)]
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    prob = Quadratic(seed=1)
    with torch.no_grad():
        prob.W.copy_(ckpt["W"])
        prob.b.copy_(ckpt["b"])
    resumed = subspace.make(name, prob.params(), lr=0.01, seed=7, **hp)
    resumed.load_state_dict(ckpt["opt"])
    assert [_train(resumed, prob, 1) for _ in range(5)] == expected


@pytest.mark.parametrize("name", NAMES)
def test_8bit_nonfinite_gradient_leaves_everything_untouched(name):
    prob = Quadratic()
    opt = subspace.make(name, prob.params(), lr=0.01, **_hp(name, **Q8))
    _train(opt, prob, 2)
    W0 = prob.W.detach().clone()
    state0 = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[prob.W].items()}
    opt.zero_grad()
    prob.loss().backward()
    prob.W.grad[0, 0] = float("nan")
    with pytest.raises(FloatingPointError):
        opt.step()
    assert torch.equal(prob.W, W0)
    assert all(torch.equal(v, state0[k]) if torch.is_tensor(v) else v == state0[k] for k, v in opt.state[prob.W].items())


@pytest.mark.parametrize("name", NAMES)
def test_8bit_zero_and_rank_one_gradients_never_produce_nan(name):
    W = torch.nn.Parameter(torch.zeros(10, 6))
    opt = subspace.make(name, [W], lr=0.01, **_hp(name, **Q8))
    u, v = torch.randn(10, 1), torch.randn(1, 6)
    for t in range(6):
        W.grad = torch.zeros_like(W) if t % 2 == 0 else u @ v
        opt.step()
        assert torch.isfinite(W).all()


def test_state_bits_and_block_are_validated_and_block_is_read_only_with_8_bits():
    W = [torch.nn.Parameter(torch.zeros(4, 4))]
    with pytest.raises(ValueError, match="state_bits"):
        subspace.make("galore", W, state_bits=4)
    with pytest.raises(ValueError, match="state_block"):
        subspace.make("galore", W, state_bits=8, state_block=0)
    with pytest.raises(ValueError, match="state_block"):
        subspace.make("galore", W, state_block=128)   # not read with 32-bit states
