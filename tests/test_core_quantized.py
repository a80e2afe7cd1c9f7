"""8-bit block-wise moments (``state_bits=8``, subspace.quantize): the contract battery over every preset, the
byte formulas, and parity with bitsandbytes' dynamic map and 8-bit AdamW where it installs."""
import math
import warnings

import pytest
import torch
from hypothesis import given, strategies as st

import subspace
from subspace import quantize as Q
from test_core_contract import NAMES, Quadratic, _hp, _train, resume_round_trip

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


# ------------------------------------------------------------------------------------------ the encoder vs its oracle
def _oracle_blocks(X, block):
    flat = X.reshape(-1).float()
    return torch.nn.functional.pad(flat, (0, -flat.numel() % block)).view(-1, block)


def _oracle_chunks(numel, block, chunk=4096):
    step = block * chunk
    return ((i, min(i + step, numel), i // block) for i in range(0, numel, step))


def oracle_quantize(X, signed, block):
    """The reference: the first implementation (bucketize against the map's midpoints), kept here verbatim."""
    flat = X.reshape(-1)
    q = torch.empty(flat.numel(), dtype=torch.uint8, device=X.device)
    absmax = torch.empty(math.ceil(flat.numel() / block), dtype=torch.float32, device=X.device)
    mids = Q._tables(signed, X.device)[1]
    for lo, hi, b in _oracle_chunks(flat.numel(), block):
        B = _oracle_blocks(flat[lo:hi], block)
        scale = B.abs().amax(dim=1)
        scaled = (B / scale.clamp(min=1e-38)[:, None]).clamp_(-1, 1)
        q[lo:hi] = torch.bucketize(scaled.view(-1), mids, out_int32=True)[: hi - lo]
        absmax[b:b + scale.numel()] = scale
    return q.view(X.shape), absmax


def oracle_dequantize(q, absmax, signed, block, dtype=torch.float32):
    flat = q.reshape(-1)
    out = torch.empty(flat.numel(), dtype=dtype, device=q.device)
    code = Q._tables(signed, q.device)[0]
    for lo, hi, b in _oracle_chunks(flat.numel(), block):
        values = _oracle_blocks(code[flat[lo:hi].int()], block)
        out[lo:hi] = (values * absmax[b:b + values.shape[0], None]).view(-1)[: hi - lo]
    return out.view(q.shape)


def _bits(t):
    return t.view(torch.int32) if t.dtype == torch.float32 else t


def _same_as_oracle(X, signed, block):
    q, a = Q.quantize(X, signed, block)
    q0, a0 = oracle_quantize(X, signed, block)
    assert q.shape == q0.shape and a.shape == a0.shape
    bad = (q != q0).nonzero()
    assert bad.numel() == 0, (X.reshape(-1)[bad[:5, 0]] if X.ndim == 1 else bad[:5], q[q != q0][:5], q0[q != q0][:5])
    assert torch.equal(_bits(a), _bits(a0))   # bitwise, NaN scales included
    for dtype in (torch.float32, torch.bfloat16):
        back, back0 = Q.dequantize(q0, a0, signed, block, dtype), oracle_dequantize(q0, a0, signed, block, dtype)
        assert torch.equal(back.view(torch.int16 if dtype != torch.float32 else torch.int32),
                           back0.view(torch.int16 if dtype != torch.float32 else torch.int32))


def _boundaries(signed):
    """Every midpoint between adjacent codes, its float32 neighbours, the codes themselves, and their negatives."""
    code, mids = Q._tables(signed, torch.device("cpu"))
    pts = torch.cat([mids, code])
    near = torch.cat([pts, torch.nextafter(pts, torch.tensor(math.inf)), torch.nextafter(pts, torch.tensor(-math.inf))])
    return torch.cat([near, -near]).clamp(-1, 1)


SPECIAL = [0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-38, 1.1754942e-38, 1.0, -1.0, math.inf, -math.inf, math.nan, 3e38]


@pytest.mark.parametrize("signed", [True, False])
def test_codes_equal_the_oracle_at_every_code_boundary(signed):
    pts = _boundaries(signed)
    for head in (1.0, -1.0):                      # block max 1: the encoder sees the points themselves
        for block in (1, 2, 7, 64, 256):
            n = pts.numel() // block * block or block
            X = pts[:n].clone().view(-1, block) if block > 1 else pts.clone().view(-1, 1)
            if block > 1:
                X[:, 0] = head
            _same_as_oracle(X.reshape(-1), signed, block)
    for k in (-140, -100, -20, 0, 20, 100):        # power-of-two block scales keep the scaled points exact
        X = (torch.cat([torch.ones(1), pts]) * 2.0 ** k)
        _same_as_oracle(X, signed, X.numel())


@pytest.mark.parametrize("signed", [True, False])
def test_codes_equal_the_oracle_on_every_table_range(signed):
    """The first and last float32 of each 2^16-pattern range in [-1, 1], and NaNs of both signs."""
    top = torch.arange(-(1 << 15), 1 << 15, dtype=torch.int32) << 16
    x = torch.cat([top, top | 0xFFFF, top | 0x8000]).view(torch.float32)
    x = torch.cat([x[~x.isnan() & (x.abs() <= 1)], torch.tensor([math.nan, -math.nan])])
    X = torch.stack([torch.ones_like(x), x], 1).reshape(-1)  # blocks of 2 with max 1
    _same_as_oracle(X, signed, 2)


@given(st.lists(st.one_of(st.floats(width=32), st.sampled_from(SPECIAL),
                          st.floats(-1, 1, width=32), st.floats(-2.0 ** -100, 2.0 ** -100, width=32)), min_size=1, max_size=300),
       st.sampled_from([1, 2, 3, 5, 16, 64, 256]), st.booleans(), st.sampled_from([1.0, 1e-3, 2.0 ** -126, 1e30]))
def test_codes_equal_the_oracle_on_random_blocks(values, block, signed, scale):
    X = torch.tensor(values, dtype=torch.float32) * scale
    _same_as_oracle(X, signed, block)
    _same_as_oracle(X.abs(), signed, block)


@given(st.integers(0, 2 ** 31 - 1), st.sampled_from([1, 3, 64, 256, 1000]), st.booleans(),
       st.sampled_from([torch.float32, torch.bfloat16, torch.float16, torch.float64]))
def test_codes_equal_the_oracle_on_random_moments(seed, block, signed, dtype):
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 3000, (), generator=g))
    X = torch.randn(n, generator=g) * torch.logspace(-8, 0, n)[torch.randperm(n, generator=g)]
    X[torch.rand(n, generator=g) < 0.05] = 0.0
    X = X.to(dtype)
    _same_as_oracle(X if signed else X.abs(), signed, block)


@pytest.mark.parametrize("signed", [True, False])
def test_codes_equal_the_oracle_on_constant_zero_and_nonfinite_blocks_and_across_chunks(signed):
    for v in (0.0, -0.0, 1e-45, 0.5, -3.0, 1e30, math.inf, -math.inf, math.nan):
        for n, block in ((1, 1), (7, 4), (256, 256), (300, 256)):
            _same_as_oracle(torch.full((n,), v), signed, block)
    g = torch.Generator().manual_seed(1)
    X = torch.randn(Q._CHUNK * 2 + 1001, generator=g) * 1e-4
    X[5], X[Q._CHUNK + 7], X[-3] = math.inf, math.nan, -math.inf
    for block in (256, 1000, 3):
        _same_as_oracle(X, signed, block)
    _same_as_oracle(X.view(-1)[:-1001].view(512, -1), signed, 256)


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
    got, expected, _, _ = resume_round_trip(name, _hp(name, **Q8), before=7, after=5, resumed_seed=7)
    assert got == expected


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
