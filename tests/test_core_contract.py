"""One contract battery over every registered optimizer: no special case by name (after optax / BenchOpt)."""
import io
import math

import pytest
import torch

import subspace

NAMES = subspace.available()
HP = dict(rank=4, update_gap=3)  # small problems, several refreshes within a test


def _hp(name, **extra):
    """HP and ``extra`` where the preset reads them (a key it does not read is refused)."""
    hp = dict(HP, **extra)
    hp.update(golore_fraction=0.5, total_steps=40)  # both projector kinds are exercised where both occur
    accepted = subspace.PRESETS[name].accepts()
    return {k: v for k, v in hp.items() if k in accepted}


class Quadratic:
    """f(W, b) = 1/2 ||(W - W*) C||_F^2 + 1/2 ||b - b*||^2 with a well-conditioned C: optimum known, f* = 0."""

    def __init__(self, m=12, n=20, dtype=torch.float32, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.W_star = torch.randn(m, n, generator=g, dtype=torch.float64)
        self.C = torch.eye(n, dtype=torch.float64) + 0.1 * torch.randn(n, n, generator=g, dtype=torch.float64)
        self.b_star = torch.randn(n, generator=g, dtype=torch.float64)
        self.W = torch.nn.Parameter(torch.zeros(m, n, dtype=dtype))
        self.b = torch.nn.Parameter(torch.zeros(n, dtype=dtype))

    def params(self):
        return [self.W, self.b]

    def loss(self):
        W, b = self.W.double(), self.b.double()
        return 0.5 * ((W - self.W_star) @ self.C).square().sum() + 0.5 * (b - self.b_star).square().sum()


def _train(opt, prob, steps):
    for _ in range(steps):
        opt.zero_grad()
        loss = prob.loss()
        loss.backward()
        opt.step()
    return prob.loss().item()


@pytest.mark.parametrize("name", NAMES)
def test_lowers_loss_of_a_matrix_problem(name):
    prob = Quadratic()
    start = prob.loss().item()
    opt = subspace.make(name, prob.params(), lr=0.05, **_hp(name))
    end = _train(opt, prob, 200)
    assert math.isfinite(end) and end < 0.5 * start, (start, end)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_preserved_and_finite(name, dtype):
    prob = Quadratic(dtype=dtype)
    opt = subspace.make(name, prob.params(), lr=0.01, **_hp(name))
    _train(opt, prob, 5)
    for p in prob.params():
        assert p.dtype == dtype and torch.isfinite(p).all()
    for st in opt.state.values():
        for v in st.values():
            if torch.is_tensor(v) and v.ndim > 0:  # moments and bases; 0-d scalars (the limiter's norm) are float32+
                assert torch.isfinite(v).all() and v.dtype == dtype


@pytest.mark.parametrize("shape", [(12, 20), (20, 12), (16, 16), (4, 3, 5)])
@pytest.mark.parametrize("side", ["auto", "left", "right"])
@pytest.mark.parametrize("name", NAMES)
def test_state_bytes_equal_the_docstring_formula(name, shape, side):
    W = torch.nn.Parameter(torch.randn(*shape))
    b = torch.nn.Parameter(torch.randn(7))
    opt = subspace.make(name, [W, b], lr=1e-3, **_hp(name, side=side))
    for _ in range(4):
        opt.zero_grad()
        (W.square().sum() + (W.sum(0) ** 3).sum() + b.square().sum()).backward()
        opt.step()
    for p, low in ((W, True), (b, False)):
        measured = sum(v.numel() * v.element_size() for v in opt.state[p].values() if torch.is_tensor(v) and v.ndim > 0)
        assert measured == subspace.state_numel(name, p.shape, low_rank=low, **_hp(name, side=side)) * p.element_size()


def resume_round_trip(name, hp, *, before: int, after: int, resumed_seed: int):
    """Train ``before`` steps, save (torch.save / weights_only load), train ``after`` more; resume a fresh optimizer
    (built with ``resumed_seed``) from the save for ``after`` steps. Returns (resumed losses, uninterrupted losses,
    resumed problem, uninterrupted problem)."""
    ref = Quadratic(seed=1)
    opt = subspace.make(name, ref.params(), lr=0.01, seed=7, **hp)
    _train(opt, ref, before)
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "W": ref.W.detach().clone(), "b": ref.b.detach().clone()}, buf)
    expected = [_train(opt, ref, 1) for _ in range(after)]
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)
    prob = Quadratic(seed=1)
    with torch.no_grad():
        prob.W.copy_(ckpt["W"])
        prob.b.copy_(ckpt["b"])
    resumed = subspace.make(name, prob.params(), lr=0.01, seed=resumed_seed, **hp)
    resumed.load_state_dict(ckpt["opt"])
    return [_train(resumed, prob, 1) for _ in range(after)], expected, prob, ref


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_resumes_bitwise(name):
    # the resumed optimizer's seed (123) is overwritten by the state dict's
    got, expected, prob, ref = resume_round_trip(name, _hp(name), before=17, after=9, resumed_seed=123)
    assert got == expected
    assert torch.equal(prob.W, ref.W)


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_gradient_raises_and_leaves_everything_untouched(name):
    prob = Quadratic()
    opt = subspace.make(name, prob.params(), lr=0.01, **_hp(name))
    _train(opt, prob, 2)
    W0 = prob.W.detach().clone()
    state0 = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in opt.state[prob.W].items()}
    opt.zero_grad()
    prob.loss().backward()
    prob.W.grad[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"shape \(12, 20\)"):
        opt.step()
    assert torch.equal(prob.W, W0)
    for k, v in opt.state[prob.W].items():
        assert torch.equal(v, state0[k]) if torch.is_tensor(v) else v == state0[k]


@pytest.mark.parametrize("name", NAMES)
def test_nonfinite_skip_option_counts(name):
    prob = Quadratic()
    opt = subspace.make(name, prob.params(), lr=0.01, nonfinite="skip", **_hp(name))
    opt.zero_grad()
    prob.loss().backward()
    prob.b.grad[1] = float("inf")
    W0 = prob.W.detach().clone()
    opt.step()
    assert opt.skipped_steps == 1 and torch.equal(prob.W, W0) and len(opt.state) == 0


@pytest.mark.parametrize("name", NAMES)
def test_zero_and_rank_deficient_gradients_never_produce_nan(name):
    W = torch.nn.Parameter(torch.zeros(10, 6))
    opt = subspace.make(name, [W], lr=0.01, **_hp(name))
    u, v = torch.randn(10, 1), torch.randn(1, 6)
    for t in range(8):
        opt.zero_grad()
        W.grad = torch.zeros_like(W) if t % 2 == 0 else u @ v  # zero, then rank one
        opt.step()
        assert torch.isfinite(W).all()
        assert all(torch.isfinite(x).all() for x in opt.state[W].values() if torch.is_tensor(x))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_names_the_argument(name):
    W = [torch.nn.Parameter(torch.zeros(4, 4))]
    for kwargs, arg in [({"rank": 0}, "rank"), ({"lr": -1.0}, "lr"), ({"betas": (1.0, 0.9)}, "betas"),
                        ({"update_gap": 0}, "update_gap"), ({"ns_coeffs": "quartic"}, "ns_coeffs"),
                        ({"momentum": 1.5}, "momentum"), ({"not_a_key": 1}, "not_a_key")]:
        with pytest.raises(ValueError, match=arg):
            subspace.make(name, W, **kwargs)


def test_unknown_preset_lists_the_allowed_names():
    with pytest.raises(ValueError, match="allowed: .*galore"):
        subspace.make("lion", [torch.nn.Parameter(torch.zeros(2, 2))])


@pytest.mark.parametrize("name", NAMES)
def test_rank_above_min_dim_is_clamped(name):
    W = torch.nn.Parameter(torch.randn(6, 9))
    opt = subspace.make(name, [W], lr=0.01, **_hp(name, rank=50, update_gap=2))
    W.grad = torch.randn(6, 9)
    opt.step()
    if "basis" in opt.state[W]:
        assert opt.state[W]["basis"].shape == (6, 6)
    assert torch.isfinite(W).all()


@pytest.mark.parametrize("name", NAMES)
def test_scheduler_and_closure(name):
    prob = Quadratic()
    opt = subspace.make(name, prob.params(), lr=0.01, **_hp(name))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    for _ in range(3):
        def closure():
            opt.zero_grad()
            loss = prob.loss()
            loss.backward()
            return loss
        loss = opt.step(closure)
        sched.step()
        assert torch.is_tensor(loss)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01 / 4)


def test_param_groups_split_and_override():
    model = torch.nn.Sequential()
    model.add_module("embed", torch.nn.Embedding(10, 8))
    model.add_module("attn", torch.nn.Linear(8, 8))
    model.add_module("norm", torch.nn.LayerNorm(8))
    model.add_module("lm_head", torch.nn.Linear(8, 10, bias=False))
    low, dense = subspace.param_groups(model)
    assert low["param_names"] == ["attn.weight"] and low["low_rank"]
    assert set(dense["param_names"]) == {"embed.weight", "attn.bias", "norm.weight", "norm.bias", "lm_head.weight"}
    low, _ = subspace.param_groups(model, low_rank=[r"\.weight$"], dense=[r"embed", r"norm"])
    assert low["param_names"] == ["attn.weight", "lm_head.weight"]
    opt = subspace.make("galore", subspace.param_groups(model), lr=0.01, dense_lr=1e-4)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 1e-4]
    assert [g["projector"] for g in opt.param_groups] == ["svd", "none"]


def test_staggered_refresh_spreads_the_svds_over_the_period():
    Ws = [torch.nn.Parameter(torch.randn(8, 12)) for _ in range(4)]
    opt = subspace.make("galore", Ws, lr=0.01, rank=2, update_gap=8, refresh_stagger=True)
    refreshed = {i: [] for i in range(4)}
    for t in range(17):
        before = [opt.state[W].get("basis") for W in Ws]
        for W in Ws:
            W.grad = torch.randn(8, 12)
        opt.step()
        for i, W in enumerate(Ws):
            if before[i] is None or not torch.equal(before[i], opt.state[W]["basis"]):
                refreshed[i].append(t)
    assert refreshed == {0: [0, 8, 16], 1: [0, 6, 14], 2: [0, 4, 12], 3: [0, 2, 10]}


def test_finite_gradient_whose_sum_overflows_is_not_rejected():
    W = torch.nn.Parameter(torch.zeros(4, 4))
    opt = subspace.make("adamw", [W], lr=1e-3)
    W.grad = torch.full((4, 4), 3e38)  # finite entries, the sum overflows float32
    opt.step()
    assert torch.isfinite(W).all() and opt.state[W]["step"] == 1


@pytest.mark.parametrize("name", ["galore", "golore", "sumo", "osd", "adam-snsm"])
def test_decomposition_failure_keeps_the_previous_basis_and_never_nans(name, monkeypatch):
    """Documented fallback: a refresh whose SVD/eigh fail (LinAlgError) keeps the previous basis; a first refresh
    that fails falls back to the canonical basis; polar falls back to cubic Newton–Schulz."""
    W = torch.nn.Parameter(torch.randn(10, 6))
    opt = subspace.make(name, [W], lr=0.01, **_hp(name, rank=3, update_gap=2))
    W.grad = torch.randn(10, 6)
    opt.step()
    before = opt.state[W]["basis"].clone()

    def fail(*args, **kwargs):
        raise torch.linalg.LinAlgError("simulated: failed to converge")

    for fn in ("svd", "eigh"):
        monkeypatch.setattr(torch.linalg, fn, fail)
    for _ in range(3):
        W.grad = torch.randn(10, 6)
        opt.step()
        assert torch.isfinite(W).all()
    if name not in ("golore", "osd"):  # random bases need no decomposition; OSD moves its basis by gradient steps
        assert torch.equal(opt.state[W]["basis"], before)
    fresh = torch.nn.Parameter(torch.randn(10, 6))
    opt2 = subspace.make(name, [fresh], lr=0.01, **_hp(name, rank=3, update_gap=2))
    fresh.grad = torch.randn(10, 6)
    opt2.step()
    assert torch.isfinite(fresh).all() and torch.isfinite(opt2.state[fresh]["basis"]).all()
