"""``mode="official"`` against the released code, trajectory by trajectory.

Each ``*Ref`` class below restates one released optimizer line by line (its step order, step counter, refresh test,
eps placement, bias correction folded into the step size, momentum-buffer start, its bugs), as plain code with no
import from ``subspace``. Every test runs our official preset and the reference side by side on the same small
problem and compares the weights after every step to float32 round-off (rtol 1e-5, atol 1e-6):

* a noisy quadratic, G_t(W) = (W - W*) + 0.3 N_t with N_t ~ N(0, 1) drawn per step and per parameter (float32);
* three parameters: a left-projected weight (4 x 10, m < n), a right-projected weight (12 x 5, m > n) and a
  1-D bias (4,), which takes each code's dense rule;
* rank 3, a gap of 4-5, 30 steps, so every test crosses several refreshes;
* a warmup-cosine learning rate that is 0 on the first step (the LambdaLR of every GaLore-derived script) and
  changes on every step; it is written into every parameter group, as an LR scheduler does.

Random bases: the released GoLore code draws Z from the global CPU RNG, as an m x r matrix for a left projection
and as an r x n one for a right projection. Our optimizer draws Z as k x r (k the projected side) from its own
generator, ``torch.Generator().manual_seed(seed)`` with ``seed`` given to ``make``, once per random refresh per
parameter in parameter order. The references take the same draws: ``_TallDraws`` is a generator seeded like
ours whose ``randn(a, b)`` draws the k x r matrix ``torch.randn(k, r, generator=g)`` and hands it over in the
code's layout (transposed for the r x n request). References are stepped in our parameter order, so the draws
line up.

SUMO's code (RandalW7/SUMO_optimizer@e57a99c4 optimizers_torch/sumo_optimizer.py) cannot be fetched here: its
reference follows ../shared/reference/reference-implementations.md §4.2-4.3. ``sumo-ns5`` has no released code at
all: it is tested only as "SUMO's official mechanics with Muon's NS5 (KellerJordan/Muon
zeropower_via_newtonschulz5) in bfloat16 in place of the SVD". GaLore's official mode is checked against the
installed galore-torch package in test_core_parity.py and is not repeated here.
"""
import math

import pytest
import torch

import subspace

#: Step-for-step float32 agreement with the reference codes. The layouts differ (ours r x l, the codes' m x r), so
#: round-off differs by CPU: on an AMD EPYC (MKL) up to 2.1e-6 absolute after 30 steps (adam-snsm's moment; the
#: machine the tests were written on stayed under 1e-6); a changed rule moves them far more (galore-sgdm with dampening
#: 0.89, momentum 0.89 or a zero-started buffer: 0.42, 0.28 and 0.97 at worst over the run).
RTOL, ATOL = 1e-5, 5e-6
STEPS = 30
SEED = 1234
RANK = 3
SHAPES = {"W_left": (4, 10), "W_right": (12, 5), "bias": (4,)}
LOW_RANK = {"W_left": True, "W_right": True, "bias": False}


# ---------------------------------------------------------------------------------------------------------- harness
def _schedule(t: int, lr0: float) -> float:
    """Warmup (factor t/4, so 0 on the first step) then a cosine decay: lr differs on every step."""
    return lr0 * min(1.0, t / 4) * (0.55 + 0.45 * math.cos(math.pi * t / STEPS))


class _Problem:
    """W* and the starting point per parameter; gradients G = s ((W - W*) + 0.3 N_t), N_t fixed per step.

    ``grad_scale`` (s per parameter, default 1) puts a gradient at the scale of eps = 1e-6, where the eps
    placement (HF: on the un-corrected root; torch: on the corrected one) changes the step; ``zero_start`` names
    parameters that start at 0 (so a tiny total displacement is measured with a small atol)."""

    def __init__(self, seed=0, grad_scale=None, zero_start=()):
        g = torch.Generator().manual_seed(seed)
        self.names = list(SHAPES)
        self.start = [torch.randn(SHAPES[k], generator=g) for k in self.names]
        self.start = [torch.zeros_like(w) if k in zero_start else w for k, w in zip(self.names, self.start)]
        self.target = [torch.randn(SHAPES[k], generator=g) for k in self.names]
        self.scale = [(grad_scale or {}).get(k, 1.0) for k in self.names]

    def grads(self, t, weights):
        g = torch.Generator().manual_seed(10_000 + t)
        noise = [torch.randn(SHAPES[k], generator=g) for k in self.names]
        return [s * ((W.detach() - T) + 0.3 * N) for W, T, N, s in zip(weights, self.target, noise, self.scale)]


#: For the Adam-type rules: one weight in the ordinary regime, one and the bias with gradients near eps.
NEAR_EPS = {"W_right": 1e-5, "bias": 1e-6}


def _ours(name, problem, **hp):
    """Our official preset on the problem's parameters: the two matrices low-rank (in that order), the bias dense."""
    params = [torch.nn.Parameter(w.clone()) for w in problem.start]
    groups = [{"params": [p for p, k in zip(params, problem.names) if LOW_RANK[k]]},
              {"params": [p for p, k in zip(params, problem.names) if not LOW_RANK[k]], "low_rank": False}]
    opt = subspace.make(name, groups, mode="official", seed=SEED, **hp)
    return opt, params


def _trajectories(name, ref, lr0, steps=STEPS, problem_seed=0, only=None, grad_scale=None, zero_start=(),
                  atol=ATOL, rtol=RTOL, **hp):
    """Step ours and ``ref`` side by side; assert the weights (those named in ``only``, default all) agree after
    every step."""
    problem = _Problem(problem_seed, grad_scale, zero_start)
    opt, params = _ours(name, problem, lr=lr0, **hp)
    weights = [w.clone() for w in problem.start]
    for t in range(steps):
        lr = _schedule(t, lr0)
        for group in opt.param_groups:
            group["lr"] = lr
        for p, G in zip(params, problem.grads(t, params)):
            p.grad = G
        ref.step(weights, problem.grads(t, weights), lr)
        opt.step()
        for k, p, w in zip(problem.names, params, weights):
            if only is not None and k not in only:
                continue
            torch.testing.assert_close(p.detach(), w, rtol=rtol, atol=atol,
                                       msg=lambda m, k=k, t=t: f"{name} official, step {t} (0-indexed), {k}: {m}")
    return opt, params, weights


class _TallDraws:
    """The random draws of our optimizer, handed to a reference in the released code's layout.

    ``randn(a, b)`` stands for the released code's ``torch.randn(a, b)`` (global RNG): it draws the k x r matrix
    ``torch.randn(max(a, b), min(a, b), generator=g)`` (k x r, as ``subspace.bases.stiefel`` does) and returns it
    transposed when the code asks for r x n. ``g`` is seeded like our optimizer's generator.
    """

    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, a, b):
        if a >= b:
            return torch.randn(a, b, generator=self.g)
        return torch.randn(b, a, generator=self.g).T


# ------------------------------------------------------------------------------------------------ GoLore projector
class GoLoreProjectorRef:
    """pkumelon/Golore@7ee5a8a peft_pretraining/golore_torch/golore_projector.py, ``GoLoreProjector`` (std path).

    Reproduces: the side chosen at the first call and frozen by overwriting ``proj_type`` ('std' -> 'right' if
    m >= n else 'left'); the refresh test ``ortho_matrix is None or iter % update_proj_gap == 0`` on the step read
    before the increment (refresh at 0, T, 2T); ``project`` returning ``(low_rank_grad, matrix)`` with ``matrix``
    the new basis on a refresh step and None otherwise; the fp32 SVD basis (right ``Vh[:r]``, left ``U[:, :r]``);
    ``get_random_orthogonal_matrix(n, m)``: ``Z = randn(n, m)``, ``U, S, Vh = svd(Z^T Z)``,
    ``Z @ U @ diag(1/sqrt(S)) @ Vh``, called as ``(m_rows, rank)`` on the left and ``(rank, n_cols)`` on the right;
    ``project_back`` multiplying by ``scale``.

    Draws come from ``draws.randn`` (``_TallDraws``: our generator's k x r draw in the code's layout). One
    numerical choice: in the right case ``Z^T Z`` is n x n of rank r (the code's ill-posed call, reference §3.1);
    those lines are evaluated in float64 and rounded to float32, where they give Z's polar factor to ~6e-8,
    while in float32 the null-space terms add ~1e-3 of round-off that no reimplementation reproduces
    (``test_golore_random_basis_lines_give_our_polar_draw`` measures both).
    """

    def __init__(self, rank, update_proj_gap, scale, proj_type, draws):
        self.rank, self.update_proj_gap, self.scale = rank, update_proj_gap, scale
        self.ortho_matrix = None
        self.proj_type = proj_type
        self.draws = draws

    def project(self, full_rank_grad, iter, rand=False):
        matrix = None
        if self.proj_type == "std":
            if full_rank_grad.shape[0] >= full_rank_grad.shape[1]:
                self.proj_type = "right"
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    matrix = self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, "right", rand)
                low_rank_grad = full_rank_grad @ self.ortho_matrix.t()
            else:
                self.proj_type = "left"
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    matrix = self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, "left", rand)
                low_rank_grad = self.ortho_matrix.t() @ full_rank_grad
        elif self.proj_type == "right":
            if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                matrix = self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, "right", rand)
            low_rank_grad = full_rank_grad @ self.ortho_matrix.t()
        else:  # "left"
            if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                matrix = self.ortho_matrix = self.get_orthogonal_matrix(full_rank_grad, self.rank, "left", rand)
            low_rank_grad = self.ortho_matrix.t() @ full_rank_grad
        return low_rank_grad, matrix

    def project_back(self, low_rank_grad):
        if self.proj_type == "right":
            full_rank_grad = low_rank_grad @ self.ortho_matrix
        else:
            full_rank_grad = self.ortho_matrix @ low_rank_grad
        return full_rank_grad * self.scale

    def get_random_orthogonal_matrix(self, n, m):
        Z = self.draws.randn(n, m)
        if n < m:  # the code's r x n call: Z^T Z is singular, evaluate its lines in float64 (docstring)
            Z = Z.double()
        U, S, Vh = torch.linalg.svd(Z.T @ Z)
        S = 1 / torch.sqrt(S)
        return (Z @ U @ torch.diag(S) @ Vh).float()

    def get_orthogonal_matrix(self, weights, rank, type, rand=False):
        matrix = weights.float()
        if not rand:
            U, s, Vh = torch.linalg.svd(matrix, full_matrices=False)
            return Vh[:rank, :] if type == "right" else U[:, :rank]
        if type == "right":
            return self.get_random_orthogonal_matrix(rank, weights.shape[1])
        return self.get_random_orthogonal_matrix(weights.shape[0], rank)


class _PerParam:
    """Per-parameter state and the code's group membership ('rank' in group) for the references."""

    def __init__(self, low_rank_flags):
        self.low_rank = list(low_rank_flags)
        self.state = [dict() for _ in self.low_rank]


# ---------------------------------------------------------------------------------------------------- GoLore AdamW
class GoLoreAdamWRef(_PerParam):
    """pkumelon/Golore@7ee5a8a peft_pretraining/golore_torch/adamw.py, ``AdamW.step`` (``--optimizer golore_adamw``).

    Reproduces, per parameter: ``state["step"]`` starts at 0 and is read before the increment by ``project(grad,
    step, rand = step >= rand_epoch)`` (``rand_epoch = rand_ratio * num_training_steps``, torchrun_main.py);
    ``exp_avg``/``exp_avg_sq`` created at the first step; on every refresh, if a previous basis is stored, the
    first moment is transported (left ``P_new^T (P_old M)``, right ``(M P_old) P_new^T``) into the *local*
    ``exp_avg`` only (the rebinding bug: that step's EMA update and its back-projection use the transported
    moment, the stored one keeps the old coordinates and misses that step's gradient), then ``state["matrix"]``
    is set, including on the first refresh (so the SVD phase of GoLore@x% transports too); ``exp_avg_sq`` is never
    transported; the HF-AdamW update ``M/(sqrt(V)+eps)`` with eps 1e-6 on the un-corrected root,
    ``step_size = lr sqrt(1-b2^t)/(1-b1^t)``, back-projection times ``scale``, then ``p += -lr wd p`` after the
    update. Parameters without 'rank' (the regular group: the bias) run the same HF AdamW unprojected.
    """

    def __init__(self, low_rank_flags, rank, update_proj_gap, scale, rand_epoch, draws, betas=(0.9, 0.999),
                 eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(low_rank_flags)
        self.rank, self.gap, self.scale, self.rand_epoch, self.draws = rank, update_proj_gap, scale, rand_epoch, draws
        self.betas, self.eps, self.weight_decay, self.correct_bias = betas, eps, weight_decay, correct_bias

    def step(self, weights, grads, lr):
        for p, grad, state, has_rank in zip(weights, grads, self.state, self.low_rank):
            if "step" not in state:
                state["step"] = 0
            matrix = None
            if has_rank:
                if "projector" not in state:
                    state["projector"] = GoLoreProjectorRef(self.rank, self.gap, self.scale, "std", self.draws)
                grad, matrix = state["projector"].project(grad, state["step"], rand=state["step"] >= self.rand_epoch)
            if "exp_avg" not in state:
                state["exp_avg"] = torch.zeros_like(grad)
                state["exp_avg_sq"] = torch.zeros_like(grad)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            if matrix is not None:
                if "matrix" in state:
                    if state["projector"].proj_type == "left":
                        exp_avg = matrix.T @ (state["matrix"] @ exp_avg)
                    else:
                        exp_avg = (exp_avg @ state["matrix"]) @ matrix.T
                state["matrix"] = matrix
            beta1, beta2 = self.betas
            state["step"] += 1
            exp_avg.mul_(beta1).add_(grad, alpha=1.0 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
            denom = exp_avg_sq.sqrt().add_(self.eps)
            step_size = lr
            if self.correct_bias:
                step_size = step_size * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
            norm_grad = exp_avg / denom
            if has_rank:
                norm_grad = state["projector"].project_back(norm_grad)
            p.add_(norm_grad, alpha=-step_size)
            if self.weight_decay > 0.0:
                p.add_(p, alpha=-lr * self.weight_decay)


# ------------------------------------------------------------------------------------------------------ GoLore SGD
class GoLoreSGDRef(_PerParam):
    """pkumelon/Golore@7ee5a8a peft_pretraining/golore_torch/sgd.py, ``SGD.step`` (``--optimizer golore_sgd``),
    with torchrun_main.py's defaults momentum 0.9, dampening 0.9 (nesterov False, the default).

    Reproduces, per parameter: ``project(grad, step, rand = step >= rand_epoch)`` on the step read before the
    increment, then ``state["step"] += 1``; torch's buffer start: on the first step ``buf = clone(grad)`` and
    nothing else (so that step records no basis); on later steps, only when ``state["step"] >= rand_epoch`` (the
    incremented step) and the basis was refreshed: transport into the *local* ``buf`` (rebinding: the stored buffer
    keeps the old coordinates and misses that step's update) if a basis was recorded before, then record the new
    one; then ``buf = momentum buf + (1 - dampening) grad``; direction ``buf``; back-projection times ``scale``;
    ``p -= lr direction``. No weight decay (the class never applies it). The regular group (the bias) runs the same
    momentum SGD on the raw gradient. ``GoLoreProjectorRef`` supplies the bases.
    """

    def __init__(self, low_rank_flags, rank, update_proj_gap, scale, rand_epoch, draws, momentum=0.9,
                 dampening=0.9, nesterov=False):
        super().__init__(low_rank_flags)
        self.rank, self.gap, self.scale, self.rand_epoch, self.draws = rank, update_proj_gap, scale, rand_epoch, draws
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov

    def step(self, weights, grads, lr):
        for p, grad, state, has_rank in zip(weights, grads, self.state, self.low_rank):
            if "step" not in state:
                state["step"] = 0
            matrix = None
            if has_rank:
                if "projector" not in state:
                    state["projector"] = GoLoreProjectorRef(self.rank, self.gap, self.scale, "std", self.draws)
                grad, matrix = state["projector"].project(grad, state["step"], rand=state["step"] >= self.rand_epoch)
            state["step"] += 1
            if self.momentum != 0:
                if "momentum_buffer" not in state:
                    buf = state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    buf = state["momentum_buffer"]
                    if has_rank and state["step"] >= self.rand_epoch:
                        if matrix is not None:
                            if "matrix" in state:
                                if state["projector"].proj_type == "left":
                                    buf = matrix.T @ (state["matrix"] @ buf)
                                else:
                                    buf = (buf @ state["matrix"]) @ matrix.T
                            state["matrix"] = matrix
                    buf.mul_(self.momentum).add_(grad, alpha=1 - self.dampening)
                norm_grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
            else:
                norm_grad = grad
            if has_rank:
                norm_grad = state["projector"].project_back(norm_grad)
            p.add_(norm_grad, alpha=-lr)


# ------------------------------------------------------------------------------------------------------ GaLore SGD
class GaLoreSGDRef(_PerParam):
    """pkumelon/Golore@7ee5a8a peft_pretraining/galore_torch/sgd.py + galore_torch/galore_projector.py
    (``--optimizer galore_sgd``), with torchrun_main.py's defaults momentum 0.9, dampening 0.9.

    Reproduces: ``GaLoreProjector`` 'std' (right ``Vh[:r]`` if m >= n else left ``U[:, :r]``, fp32 SVD of the
    current gradient, refresh when ``ortho_matrix is None or iter % gap == 0`` on the step read before the
    increment); ``project_back`` choosing its side from the low-rank tensor's shape and multiplying by ``scale``;
    no transport or reset of the buffer at a refresh; torch's buffer start ``buf = clone(grad)`` on the first step,
    then ``buf = momentum buf + (1 - dampening) grad``; ``p -= lr direction``; no weight decay. The regular group
    (the bias) runs the same momentum SGD unprojected.
    """

    class Projector:
        def __init__(self, rank, update_proj_gap, scale):
            self.rank, self.update_proj_gap, self.scale = rank, update_proj_gap, scale
            self.ortho_matrix = None

        def project(self, full_rank_grad, iter):
            if full_rank_grad.shape[0] >= full_rank_grad.shape[1]:
                if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                    U, s, Vh = torch.linalg.svd(full_rank_grad.float(), full_matrices=False)
                    self.ortho_matrix = Vh[:self.rank, :]
                return full_rank_grad @ self.ortho_matrix.t()
            if self.ortho_matrix is None or iter % self.update_proj_gap == 0:
                U, s, Vh = torch.linalg.svd(full_rank_grad.float(), full_matrices=False)
                self.ortho_matrix = U[:, :self.rank]
            return self.ortho_matrix.t() @ full_rank_grad

        def project_back(self, low_rank_grad):
            if low_rank_grad.shape[0] >= low_rank_grad.shape[1]:
                full_rank_grad = low_rank_grad @ self.ortho_matrix
            else:
                full_rank_grad = self.ortho_matrix @ low_rank_grad
            return full_rank_grad * self.scale

    def __init__(self, low_rank_flags, rank, update_proj_gap, scale, momentum=0.9, dampening=0.9, nesterov=False):
        super().__init__(low_rank_flags)
        self.rank, self.gap, self.scale = rank, update_proj_gap, scale
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov

    def step(self, weights, grads, lr):
        for p, grad, state, has_rank in zip(weights, grads, self.state, self.low_rank):
            if "step" not in state:
                state["step"] = 0
            if has_rank:
                if "projector" not in state:
                    state["projector"] = self.Projector(self.rank, self.gap, self.scale)
                grad = state["projector"].project(grad, state["step"])
            state["step"] += 1
            if self.momentum != 0:
                if "momentum_buffer" not in state:
                    buf = state["momentum_buffer"] = torch.clone(grad).detach()
                else:
                    buf = state["momentum_buffer"]
                    buf.mul_(self.momentum).add_(grad, alpha=1 - self.dampening)
                norm_grad = grad.add(buf, alpha=self.momentum) if self.nesterov else buf
            else:
                norm_grad = grad
            if has_rank:
                norm_grad = state["projector"].project_back(norm_grad)
            p.add_(norm_grad, alpha=-lr)


# ------------------------------------------------------------------------------------------------------------ SUMO
def muon_ns5_bf16(G, steps=5):
    """KellerJordan/Muon muon.py ``zeropower_via_newtonschulz5``, verbatim: bfloat16, wide orientation,
    X / (||X||_F + 1e-7), ``B = b * A + c * A @ A`` (Python evaluates ``(c * A) @ A``), ``X = a * X + B @ X``."""
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
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


class SumoRef(_PerParam):
    """RandalW7/SUMO_optimizer@e57a99c4 optimizers_torch/sumo_optimizer.py, ``SUMO.step``, as read in
    ../shared/reference/reference-implementations.md §4.2-4.3 (the file itself is not fetchable here).

    Reproduces, for ``group_name == 'sumo_params'`` (2-D): ``state["step"] += 1`` before projecting (first step 1);
    GaLore's projector with a full fp32 SVD, refresh when ``ortho is None or step % T == 0`` (1-indexed: 1, T, 2T),
    side right ``G Q^T`` if m >= n else left ``Q^T G``; buffer ``m = mu m + g_hat`` (no dampening, zero start),
    and with Nesterov the *stored* buffer replaced by ``g_hat + mu m`` (effective momentum mu^2); no transport at
    a refresh; ``O = U Vh`` of the thin SVD of the buffer in its dtype; the norm-growth limiter (if ||O|| /
    ||O_prev|| > gamma, O <- O gamma ||O_prev|| / ||O||, O_prev the previous step's O as used; inert for the exact
    U Vh); kappa = 0.2 sqrt(max(m, n)) from the full shape, on Q O only; ``W <- W - alpha lr (G - Q<s_perp g_hat -
    kappa O>)`` (so the complement gradient gets alpha only; the group 'scale' = 1 and s_perp = 1 here), then
    ``W <- W - lr wd W`` after the update with the scheduled lr. Defaults alpha 4, gamma 1.1, mu 0.95, wd 1e-2.
    The other parameters (the bias): HF AdamW at the constant ``lr_adam`` = 1e-5 that the scheduler never reaches
    (it edits only ``group["lr"]``), betas (0.9, 0.999), eps 1e-6 on the un-corrected root, bias correction in the
    step size, ``weight_decay_adam`` = 0.

    ``orthogonalize="ns5-bf16"`` is the ``sumo-ns5`` reconstruction (no released code): O = ``muon_ns5_bf16`` of the
    buffer (cast back to the buffer's dtype) in place of ``U Vh``, everything else as above.
    """

    def __init__(self, low_rank_flags, rank, update_proj_gap, alpha=4.0, gamma=1.1, momentum=0.95, nesterov=True,
                 norm_growth_limiter=True, gradient_perpendicular_scale=1.0, weight_decay=1e-2, lr_adam=1e-5,
                 betas=(0.9, 0.999), eps=1e-6, weight_decay_adam=0.0, orthogonalize="svd"):
        super().__init__(low_rank_flags)
        self.rank, self.gap, self.alpha, self.gamma = rank, update_proj_gap, alpha, gamma
        self.momentum, self.nesterov, self.limiter = momentum, nesterov, norm_growth_limiter
        self.s_perp, self.weight_decay, self.lr_adam = gradient_perpendicular_scale, weight_decay, lr_adam
        self.betas, self.eps, self.weight_decay_adam = betas, eps, weight_decay_adam
        self.orthogonalize = orthogonalize

    def step(self, weights, grads, lr):
        for p, grad, state, has_rank in zip(weights, grads, self.state, self.low_rank):
            if has_rank:
                self._sumo(p, grad, state, lr)
            else:
                self._adam(p, grad, state)

    def _sumo(self, p, grad, state, lr):
        state["step"] = state.get("step", 0) + 1
        right = grad.shape[0] >= grad.shape[1]
        if state.get("ortho") is None or state["step"] % self.gap == 0:
            U, s, Vh = torch.linalg.svd(grad.float(), full_matrices=False)
            state["ortho"] = Vh[:self.rank, :] if right else U[:, :self.rank]
        Q = state["ortho"]
        g_hat = grad @ Q.T if right else Q.T @ grad
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(g_hat)
        buf = state["momentum_buffer"]
        buf.mul_(self.momentum).add_(g_hat)
        if self.nesterov:
            buf = state["momentum_buffer"] = g_hat + self.momentum * buf
        if self.orthogonalize == "svd":
            U, S, Vh = torch.linalg.svd(buf, full_matrices=False)
            O = U @ Vh
        else:
            O = muon_ns5_bf16(buf).to(buf.dtype)
        if self.limiter:
            norm = torch.linalg.norm(O)
            if "prev_norm" in state and norm / state["prev_norm"] > self.gamma:
                O = O * (self.gamma * state["prev_norm"] / norm)
                norm = self.gamma * state["prev_norm"]
            state["prev_norm"] = norm
        kappa = 0.2 * math.sqrt(max(p.shape))
        inner = self.s_perp * g_hat - kappa * O
        back = inner @ Q if right else Q @ inner
        p.add_(grad - back, alpha=-self.alpha * lr)
        p.add_(p, alpha=-lr * self.weight_decay)

    def _adam(self, p, grad, state):
        if "exp_avg" not in state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(grad)
            state["exp_avg_sq"] = torch.zeros_like(grad)
        beta1, beta2 = self.betas
        state["step"] += 1
        state["exp_avg"].mul_(beta1).add_(grad, alpha=1.0 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        denom = state["exp_avg_sq"].sqrt().add_(self.eps)
        step_size = self.lr_adam * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
        p.addcdiv_(state["exp_avg"], denom, value=-step_size)
        if self.weight_decay_adam > 0.0:
            p.add_(p, alpha=-self.lr_adam * self.weight_decay_adam)


# ----------------------------------------------------------------------------------------------------------- SN-SM
class AdamSNSMRef(_PerParam):
    """timmytonga/sn-sm@a4c1a4a5 GenericOptim.py + subspace_momentum.py + subset_norm.py + projectors/svd_projector.py,
    as get_optimizer.py builds ``adamw_snsm``: ``GenericOptim`` with betas (0.9, 0.999), eps 1e-6, correct_bias,
    momentum_type 'sm', second_moment_type 'sn'; groups [{regular}, {linear weights, subset_size, rank,
    proj_type 'svd', update_proj_gap, approx_svd False}].

    Reproduces, per parameter: ``state["step"] += 1`` first (1-indexed); ``SVDProjector`` 'svd' (right ``Vh[:r]`` if
    m >= n else left ``U[:, :r]``, fp32 SVD, scale forced to 1) refreshed when ``ortho_matrix is None or step % T ==
    0`` on the 1-indexed step; the momentum: a local reference ``exp_avg = state["exp_avg"]`` is taken *before*
    ``state["exp_avg"]`` is replaced by zeros when ``step > 1 and step % T == 0`` (the one-step-late reset: the
    refresh step EMA-updates the old, old-basis moment with the new-basis projection and back-projects it with
    the new basis); numerator ``P<M> + (g - P<P^T g>)`` (raw complement gradient); the Subset-Norm denominator of
    the full gradient, ``V = b2 V + (1-b2) sum(g^2)`` over the smaller dimension ('heuristics': (m, 1) if m >= n else
    (1, n)) or over contiguous chunks of the closest divisor <= subset_size (an int), ``sqrt(V) + eps``;
    ``step_size = lr sqrt(1-b2^t)/(1-b1^t)`` applied to numerator/denominator (complement included); ``p += -lr wd
    p`` after. The regular group (the bias): the same skeleton with an EMA first moment and ``g^2`` (HF AdamW).
    """

    def __init__(self, low_rank_flags, rank, update_proj_gap, subset_size="heuristics", betas=(0.9, 0.999),
                 eps=1e-6, weight_decay=0.0, correct_bias=True):
        super().__init__(low_rank_flags)
        self.rank, self.gap, self.subset_size = rank, update_proj_gap, subset_size
        self.betas, self.eps, self.weight_decay, self.correct_bias = betas, eps, weight_decay, correct_bias

    class Projector:
        def __init__(self, rank, update_proj_gap):
            self.rank, self.update_proj_gap, self.scale = rank, update_proj_gap, 1.0
            self.ortho_matrix = None

        def project(self, full_rank_grad, n_iter):
            if full_rank_grad.shape[0] >= full_rank_grad.shape[1]:
                if n_iter is not None and (self.ortho_matrix is None or n_iter % self.update_proj_gap == 0):
                    U, s, Vh = torch.linalg.svd(full_rank_grad.float(), full_matrices=False)
                    self.ortho_matrix = Vh[:self.rank, :]
                return full_rank_grad @ self.ortho_matrix.t()
            if n_iter is not None and (self.ortho_matrix is None or n_iter % self.update_proj_gap == 0):
                U, s, Vh = torch.linalg.svd(full_rank_grad.float(), full_matrices=False)
                self.ortho_matrix = U[:, :self.rank]
            return self.ortho_matrix.t() @ full_rank_grad

        def project_back(self, low_rank_grad):
            if low_rank_grad.shape[0] >= low_rank_grad.shape[1]:
                full_rank_grad = low_rank_grad @ self.ortho_matrix
            else:
                full_rank_grad = self.ortho_matrix @ low_rank_grad
            return full_rank_grad * self.scale

    @staticmethod
    def _closest_smaller_divisor(n, k):
        for i in range(int(k), 0, -1):
            if n % i == 0:
                return i

    def step(self, weights, grads, lr):
        for p, grad, state, has_rank in zip(weights, grads, self.state, self.low_rank):
            if "step" not in state:
                state["step"] = 0
            state["step"] += 1
            numerator = self._numerator(grad, state, has_rank)
            denominator = self._denominator(grad, state, has_rank)
            beta1, beta2 = self.betas
            step_size = lr
            if self.correct_bias:
                step_size = step_size * math.sqrt(1.0 - beta2 ** state["step"]) / (1.0 - beta1 ** state["step"])
            if has_rank and self.subset_size != "heuristics":
                p.add_((numerator.view(state["subset_shape"]) / denominator).reshape(p.shape), alpha=-step_size)
            else:
                p.addcdiv_(numerator, denominator, value=-step_size)
            if self.weight_decay > 0.0:
                p.add_(p, alpha=-lr * self.weight_decay)

    def _numerator(self, grad, state, has_rank):
        beta1 = self.betas[0]
        if has_rank:
            if "projector" not in state:
                state["projector"] = self.Projector(self.rank, self.gap)
            proj_grad = state["projector"].project(grad, state["step"])
        else:
            proj_grad = grad
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(proj_grad)
        exp_avg = state["exp_avg"]
        if has_rank and state["step"] > 1 and state["step"] % self.gap == 0:
            state["exp_avg"] = torch.zeros_like(proj_grad)
        exp_avg.mul_(beta1).add_(proj_grad, alpha=1.0 - beta1)
        if not has_rank:
            return exp_avg
        orth_comp = grad - state["projector"].project_back(proj_grad)
        return state["projector"].project_back(exp_avg) + orth_comp

    def _denominator(self, grad, state, has_rank):
        beta2 = self.betas[1]
        if has_rank and self.subset_size == "heuristics":
            if "reduce_dim" not in state:
                state["reduce_dim"] = 0 if grad.shape[0] >= grad.shape[1] else 1
            second_moment_update = torch.sum(grad ** 2, dim=1 - state["reduce_dim"], keepdim=True)
        elif has_rank:
            if "subset_shape" not in state:
                numel = grad.numel()
                reduce_size = self._closest_smaller_divisor(numel, self.subset_size)
                state["subset_shape"] = (numel // reduce_size, reduce_size)
            second_moment_update = torch.sum(grad.view(state["subset_shape"]) ** 2, dim=1, keepdim=True)
        else:
            second_moment_update = grad ** 2
        if "exp_avg_sq" not in state:
            state["exp_avg_sq"] = torch.zeros_like(second_moment_update)
        state["exp_avg_sq"].mul_(beta2).add_(second_moment_update, alpha=1.0 - beta2)
        return state["exp_avg_sq"].sqrt().add_(self.eps)


# ----------------------------------------------------------------------------------------------------------- tests
FLAGS = [LOW_RANK[k] for k in SHAPES]

# GoLore@x%: ours takes golore_fraction/total_steps (random from round((1-x) total)); the code takes rand_epoch =
# rand_ratio * num_training_steps with rand_ratio = 1 - x. "pure": random from step 0. "hybrid": SVD at 0, 5, 10,
# 15 and random at 20, 25 with gap 5; the SGD code also records its basis at 15 (incremented step 16 >= 16).
GOLORE_CASES = {"pure": (dict(golore_fraction=1.0), 0.0),
                "hybrid": (dict(golore_fraction=0.5, total_steps=32), 16.0)}



@pytest.mark.parametrize("case", list(GOLORE_CASES))
def test_golore_official_matches_released_adamw(case):
    hp, rand_epoch = GOLORE_CASES[case]
    ref = GoLoreAdamWRef(FLAGS, rank=RANK, update_proj_gap=5, scale=0.5, rand_epoch=rand_epoch,
                         draws=_TallDraws(SEED), weight_decay=0.01)
    opt, _, _ = _trajectories("golore", ref, lr0=0.02, rank=RANK, update_gap=5, scale=0.5, weight_decay=0.01,
                              grad_scale=NEAR_EPS, **hp)
    # the rebinding bug: after the last refresh (t = 25) the stored moment is the untransported one
    W_left = opt.param_groups[0]["params"][0]  # r x n in both layouts
    torch.testing.assert_close(opt.state[W_left]["exp_avg"], ref.state[0]["exp_avg"], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", list(GOLORE_CASES))
def test_golore_sgdm_official_matches_released_sgd(case):
    """Includes the SGD code's first transport: the step-0 basis is never recorded, so the first one-step transport
    is at t = 2T (pure) or from the basis of the first random refresh (hybrid)."""
    hp, rand_epoch = GOLORE_CASES[case]
    ref = GoLoreSGDRef(FLAGS, rank=RANK, update_proj_gap=5, scale=0.5, rand_epoch=rand_epoch,
                       draws=_TallDraws(SEED))
    _trajectories("golore-sgdm", ref, lr0=0.1, rank=RANK, update_gap=5, scale=0.5, **hp)


def test_galore_sgdm_official_matches_released_sgd():
    ref = GaLoreSGDRef(FLAGS, rank=RANK, update_proj_gap=4, scale=0.5)
    _trajectories("galore-sgdm", ref, lr0=0.1, rank=RANK, update_gap=4, scale=0.5)


def test_sumo_official_matches_released_code():
    ref = SumoRef(FLAGS, rank=RANK, update_proj_gap=4)
    _trajectories("sumo", ref, lr0=0.01, rank=RANK, update_gap=4, grad_scale=NEAR_EPS)


def test_sumo_official_dense_parameters_match_released_adam():
    """The bias alone (its trajectory does not depend on the matrices): HF AdamW at the constant lr_adam 1e-5 that
    the schedule never reaches, weight decay 0, while the same schedule drives the SUMO group. The bias starts at 0
    and its gradient is near eps, so its ~1e-4 displacement is compared to rtol 1e-5 (atol 1e-11): this sees the
    lr, the eps placement and the bias correction. (A decay of 0.01 at lr 1e-5 would move it by 1e-7 of itself per
    step, below float32 resolution: weight_decay_adam = 0 is stated, not measured.)"""
    ref = SumoRef(FLAGS, rank=RANK, update_proj_gap=4)
    opt, params, _ = _trajectories("sumo", ref, lr0=0.01, rank=RANK, update_gap=4, only=("bias",),
                                   grad_scale={"bias": 1e-6}, zero_start=("bias",), atol=1e-11)
    dense = [g for g in opt.param_groups if not g["low_rank"]][0]
    assert dense["lr"] != 1e-5  # the schedule wrote the group's lr; the step used the constant lr_adam


#: The sumo-ns5 trajectory can only agree to bfloat16 round-off: on an AMD EPYC the float32 layouts flip a bfloat16
#: rounding already at step 11 (2.9e-4 absolute, 2.7e-3 relative); the iteration itself is compared bitwise below.
BF16_RTOL, BF16_ATOL = 2e-2, 2e-3


@pytest.mark.parametrize("shape", [(16, 48), (48, 16), (8, 24)])
def test_core_ns5_bf16_is_muons_iteration_bitwise(shape):
    """Same input, same bfloat16 iteration: Muon's association (c * A) @ A, its orientation and normalisation."""
    G = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    assert torch.equal(subspace.newton_schulz(G, 5, "muon", dtype=torch.bfloat16), muon_ns5_bf16(G).to(G.dtype))


def test_sumo_ns5_official_is_sumo_mechanics_with_muon_ns5_bf16():
    """No released code: SUMO's official mechanics (``SumoRef``) with Muon's NS5 in bfloat16 in place of U Vh.

    O(1) gradients only: bfloat16 NS5 jumps where an input crosses a bfloat16 rounding boundary, and float32
    round-off between our r x l layout and the code's m x r one can flip such a rounding (with NEAR_EPS it flips
    one at step 26 and the limiter's norm moves by 0.3%). Needs Muon's association (c * A) @ A in NS5."""
    ref = SumoRef(FLAGS, rank=RANK, update_proj_gap=4, orthogonalize="ns5-bf16")
    _trajectories("sumo-ns5", ref, lr0=0.01, rank=RANK, update_gap=4, rtol=BF16_RTOL, atol=BF16_ATOL)


@pytest.mark.parametrize("subset", ["heuristic", 7])
def test_adam_snsm_official_matches_released_generic_optim(subset):
    ref = AdamSNSMRef(FLAGS, rank=RANK, update_proj_gap=4, weight_decay=0.01,
                      subset_size="heuristics" if subset == "heuristic" else subset)
    opt, _, _ = _trajectories("adam-snsm", ref, lr0=0.02, rank=RANK, update_gap=4, weight_decay=0.01, subset=subset,
                              grad_scale=NEAR_EPS)
    # the stored subspace moment after the run (left weight: r x n in both layouts), zeroed one step late at 28
    W_left = opt.param_groups[0]["params"][0]
    torch.testing.assert_close(opt.state[W_left]["exp_avg"], ref.state[0]["exp_avg"], rtol=RTOL, atol=ATOL)


def test_golore_random_basis_lines_give_our_polar_draw():
    """The released ``get_random_orthogonal_matrix`` lines on our generator's draw give our official Stiefel basis:
    in float32 for the left call (m x r), in float64 for the right call (r x n, singular Z^T Z); in float32 the
    right call carries ~1e-3 of round-off (why ``GoLoreProjectorRef`` evaluates it in float64)."""
    def lines(Z):
        U, S, Vh = torch.linalg.svd(Z.T @ Z)
        return Z @ U @ torch.diag(1 / torch.sqrt(S)) @ Vh

    for k in (10, 12):
        ours = subspace.stiefel(k, RANK, torch.Generator().manual_seed(SEED), method="polar")
        Z = torch.randn(k, RANK, generator=torch.Generator().manual_seed(SEED))
        torch.testing.assert_close(lines(Z), ours, rtol=RTOL, atol=ATOL)                       # left call
        torch.testing.assert_close(lines(Z.T.double()).float().T, ours, rtol=RTOL, atol=ATOL)  # right call, fp64
        assert (lines(Z.T.contiguous()).T - ours).abs().max() > 1e-5                           # right call, fp32
