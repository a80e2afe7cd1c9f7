# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Subset-Norm and Subspace-Momentum (Nguyen & Nguyen, ICML 2025), lemma by lemma
#
# Two independent memory savers for adaptive optimizers on $x\in\mathbb R^d$:
#
# * **Subset-Norm (SN)** shares one AdaGrad step size per *subset* of coordinates, interpolating between
#   AdaGrad (one per coordinate, state $O(d)$) and AdaGrad-Norm (one in total, $O(1)$); with subsets of size
#   $k\approx\sqrt d$ the adaptive state is $O(\sqrt d)$.
# * **Subspace-Momentum (SM)** keeps momentum only in an $r$-dimensional subspace and takes a plain SGD step in the
#   orthogonal complement; combined with SN (AdamSNSM) it is reported to match Adam at LLaMA 1B with a fraction of
#   its optimizer state.
#
# Sources: the abstract (seed text), the authors' summary figure of rates and the official code
# (`timmytonga/sn-sm`); the paper body with its theorem statements was **not** available, so several statements
# below are *readings* (said where). Sections: 1. SN's step size and its $O(\sqrt d)$ state · 2. SN's rates in $d$
# under noise density $\beta$ · 3. SM's convergence · 4. the README's 1B memory figures (literal and reconstructed)
# · 5. the abstract's "more than 80%" reduction. Each: statement, where it breaks or how it is read, a small direct
# experiment, the registered claim (`claims/snsm.py`, `claims/llm.py`) with verdict and figure, one cell to play with.

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)
RESULTS = None  # names a `sublab verify` output folder such as "results/quick"; None runs each claim here

# %%
# %matplotlib inline
import math

import numpy as np
import torch
from IPython.display import display

import subspace
from analysis import plotting as P
from claims.notebook import show
from subspace.updates import subset_norm_stat
from synthetic import CoordinateNoiseProblem, SmoothMatrixProblem

torch.set_num_threads(1)  # the runner's policy for small CPU tensors (thread hand-offs cost more than the work)


def draw(fig):
    display(fig)
    P.close(fig)


def state_sizes(opt, p):
    """Element count of every state tensor an optimizer keeps for parameter p (after a step)."""
    return {k: v.numel() for k, v in opt.state[p].items() if torch.is_tensor(v) and v.ndim > 0}


# %% [markdown]
# ## 1. Subset-Norm's step size, and its $O(\sqrt d)$ adaptive state
#
# **Statement.** Partition $[d]$ into $d/k$ disjoint subsets $\Psi_1,\dots,\Psi_{d/k}$ of size $k$, $\psi(j)$ the
# subset containing $j$:
#
# $$b_{t,i}^2 = b_{t-1,i}^2 + \|g_{t,\Psi_i}\|^2,\qquad
#   x_{t+1,j} = x_{t,j} - \frac{\eta\,g_{t,j}}{\sqrt{b^2_{t,\psi(j)}} + \epsilon}.$$
#
# $k = 1$ is AdaGrad(-Coordinate), $k = d$ AdaGrad-Norm; $k = O(\sqrt d)$ keeps $d/k = O(\sqrt d)$ accumulators.
# For matrices $G\in\mathbb R^{m\times n}$ the code's *heuristic* takes one subset per index of the larger
# dimension (a row or column of the shorter side): $\max(m,n)$ accumulators, $=\sqrt d$ for square weights.
#
# **Where it breaks or needs reading.** (a) The $O(\sqrt d)$ is the *adaptive* state only: Adam-SN keeps Adam's
# full first moment, so its total is $d + d/k$, about half of Adam's $2d$, not $O(\sqrt d)$. (b) Equal subsets need
# $k \mid d$; the code takes the largest divisor $k'\le k$, so a shape with few divisors loses the saving. A small
# example: $2\times101$ ($d = 202$), $k = \lfloor\sqrt{202}\rfloor = 14$ gives $k' = 2$ and
# $101 = d/2$ accumulators; the heuristic gives $\max(2, 101) = 101$ too — for flat matrices $\max(m, n) =
# \sqrt d\,\sqrt{m/n}$.

# %%
for shape, k in (((64, 64), 64), ((64, 64), "heuristic"), ((64, 64), 1), ((2, 101), 14), ((2, 101), "heuristic")):
    p = torch.nn.Parameter(torch.zeros(shape))
    opt = subspace.make("adam-sn", [p], lr=1e-3, subset=k)
    p.grad = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    opt.step()
    stat, _ = subset_norm_stat(p.grad, k, "sum")
    d = p.numel()
    print(f"{str(shape):>9}, subset {str(k):>9}: accumulators {stat.numel():>5} (sqrt d = {math.sqrt(d):5.1f}, "
          f"d = {d}); Adam-SN state {state_sizes(opt, p)} = {subspace.state_numel('adam-sn', shape, subset=k)}")

# %%
out = show("sn.memory", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** *holds* is an exact count: the tensors the core allocates equal $d/k'$ (or $\max(m,n)$) and the
# preset's own formula, and the fitted exponents in $d$ are $1,\ \tfrac12,\ 0,\ \tfrac12$ to round-off. The detail
# line and the figure carry caveat (a): the whole Adam-SN state still grows like $d$.

# %%
# Explore: a shape and subset size of your choice (a prime number of columns, a tall matrix, k not dividing d)
shape, k = (48, 1000), 200
stat, _ = subset_norm_stat(torch.ones(shape), k, "sum")
print(f"{shape}, k = {k}: {stat.numel()} accumulators; sqrt(d) = {math.sqrt(math.prod(shape)):.0f}; "
      f"heuristic: {subset_norm_stat(torch.ones(shape), 'heuristic', 'sum')[0].numel()}")

# %% [markdown]
# ## 2. Subset-Norm's rates: iterations to $\epsilon$ against $d$
#
# **Statement** (the authors' summary figure; non-convex $L$-smooth $f$, coordinate-wise sub-gaussian noise of
# "sparsity" $\beta\in[0,1]$, high probability, $\tilde O$ hides logarithms): the average squared gradient norm after
# $T$ steps is $\tilde O\big(d^{a}/\sqrt T + d^{b}/T\big)$ with
#
# | subset size | $a$ | $b$ | memory |
# |---|---|---|---|
# | $k = 1$ | $1.5 + \beta$ | $2.5$ | $O(d)$ |
# | $k = O(\sqrt d)$ | $0.3 + 1.8\beta$ | $\beta + 1$ ($\beta\le 2/3$), $1.6\beta + 0.6$ ($\beta \ge 2/3$) | $O(\sqrt d)$ |
# | $k = d$ | $2.5\beta$ | $3\beta$ | $O(1)$ |
#
# Solving $d^a/\sqrt T + d^b/T \le \epsilon$ for $T$ gives $T(\epsilon) = \tilde O(\max(d^{2a}/\epsilon^2,
# d^b/\epsilon))$: the iteration count may grow at most like $d^{p}$, $p = \max(2a, b)$.
#
# **How the workbench reads it.** (a) $\beta$ and the convergence measure are not defined in what we have; our
# model (`synthetic.noise`) puts the noise on $\mathrm{round}(d^\beta)$ coordinates with the *total* variance
# $\sigma^2$ fixed ($\beta = 0$: one noisy coordinate, $\beta = 1$: all), and the measure is
# $\frac1T\sum_{t<T}\|\nabla f(x_t)\|^2$. (b) These are upper bounds. On a problem whose constants do not grow
# with $d$ most of them cannot bind (measured exponents sit powers of $d$ below $p$), so the claim judges only the
# parts whose CI reaches within one power of $d$ of $p$ and reports the rest as "not tested where the bound binds".
#
# **Experiment.** The AdaGrad-style recursion above, written out, on the separable non-convex
# `CoordinateNoiseProblem` ($L = \lambda + 2\rho = 9$), $d = 256$, $\eta = 1/L$.

# %%
def adagrad_sn(prob, k, T, eta, seed=0):
    """The SN recursion above; returns the running average (1/t) sum ||grad f(x_s)||^2."""
    g = torch.Generator().manual_seed(seed)
    x, b2, sq = prob.x0(g), torch.zeros(prob.d // k, dtype=torch.float64), []
    for _ in range(T):
        sq.append(float(prob.grad(x).square().sum()))
        grad = prob.stochastic_grad(x, g)
        b2 += subset_norm_stat(grad, k, "sum")[0].reshape(-1)
        x = x - eta * (grad.reshape(-1, k) / (b2.sqrt()[:, None] + 1e-8)).reshape(-1)
    return np.cumsum(sq) / np.arange(1, T + 1)


d = 256
avg = {(beta, k): adagrad_sn(CoordinateNoiseProblem(d, beta, sigma=1.0, seed=1, init_scale=1 / math.sqrt(d)), k,
                             T=1500, eta=1 / 9) for beta in (0.0, 1.0) for k in (1, 16, 256)}
with P.style():
    fig, ax = P.new_figure(columns=2, nrows=1, ncols=2, squeeze=False)
    for (beta, k), a in avg.items():
        ax[0, int(beta)].plot(np.arange(1, a.size + 1), a, label=f"k = {k}")
    for j, beta in enumerate((0.0, 1.0)):
        P.reference_line(ax[0, j], 0.01 * 9 ** 2, label=r"$\epsilon = 0.01 L^2$ (the claim's target)")
        P.finish(ax[0, j], xlabel="$T$", ylabel=r"$\frac{1}{T}\sum_{t<T}\|\nabla f(x_t)\|^2$" if j == 0 else None,
                 title=f"d = {d}, beta = {beta:g}", logx=True, logy=True, fontsize=5)
    draw(fig)

# %%
out = show("sn.rates", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** The verdict rests on the parts that can bind (see `bound_binds` and the detail line's "decides:
# m/6"); the others are far below their bounds, which is consistent with the rates but does not test them. To test
# the large exponents one needs problems whose constants ($\Delta$, $\|\nabla f(x_0)\|$, per-coordinate noise)
# grow with $d$ — the claim's docstring records such a negative control as not yet done (too slow at quick scale).

# %%
# Explore: T(eps) against d for the three subset sizes (change beta, the d's, or eps); slope of log T on log d
from claims.snsm import adagrad_sn_steps_to_eps   # the claim's batched runner (several seeds at once)

beta, ds, seeds = 0.0, (64, 256, 1024), 4
for which, lab in enumerate(("1", "sqrt d", "d")):
    T = []
    for d in ds:
        k = (1, math.isqrt(d), d)[which]
        r = adagrad_sn_steps_to_eps(d, beta, k, seeds=seeds, eta=1 / 9, eps=0.81, t_max=20000,
                                    problem_seed=lambda s: 100 + s, noise_generator=torch.Generator().manual_seed(1),
                                    init_generator=torch.Generator().manual_seed(2))
        T.append(np.nanmean(r["T_eps"]))
    slope = np.polyfit(np.log(ds), np.log(T), 1)[0]
    print(f"k = {lab:>6}: T(eps) at d = {ds}: {[f'{t:.0f}' for t in T]}, slope in d = {slope:+.2f}")

# %% [markdown]
# ## 3. Subspace-Momentum converges
#
# **Statement.** With $Q_t$ an orthonormal basis of $r$ columns (the top-$r$ singular vectors of the current
# gradient matrix on its shorter side, refreshed every $\tau$ steps, momentum **reset** at each refresh):
#
# $$m_t = \beta_1 m_{t-1} + (1-\beta_1)\,Q_t^\top g_t,\qquad
#   x_{t+1} = x_t - \eta\,\big(Q_t m_t + (g_t - Q_tQ_t^\top g_t)\big),$$
#
# momentum in the subspace, plain SGD in its complement (AdamSNSM divides elementwise by the SN denominator). The
# abstract: "We prove high-probability convergence rates for Subspace-Momentum under standard assumptions".
#
# **Reading.** The theorem itself is not in our sources (only the abstract is). The workbench checks the rate that "standard assumptions" give
# for non-convex SGD-type methods: for $L$-smooth $f\ge f_{\rm low}$ with noise variance $\sigma^2$ and
# $\eta\propto 1/\sqrt T$, $\min_{t<T}\|\nabla f(x_t)\|^2 \le \frac1T\sum_t\|\nabla f(x_t)\|^2 = \tilde O(1/\sqrt T)$
# — so the log-log slope in $T$ should be at most $-1/2$ (tolerance $1/4$), with $\sigma$ chosen by a rule that puts
# the run in the noise-dominated regime where this rate is the relevant one. A frozen-step negative control must
# fail the rule. The complement term is what distinguishes SM from GaLore-style methods: without it the step
# ignores $g - QQ^\top g$ between refreshes.
#
# **Experiment.** The core's `adam-snsm` preset and its `preconditioner="none"` form (the plain SM step) on
# `SmoothMatrixProblem.random(16, 8, p=12, rho=0.5)`, one horizon, next to SM without the complement
# (`complement_scale=0`).

# %%
base = SmoothMatrixProblem.random(m=16, n=8, p=12, rho=0.5, sigma=0.0, generator=0)
W0 = base.x0(torch.Generator().manual_seed(1))
delta0 = float(base.loss(W0)) - base.f_lower
prob = SmoothMatrixProblem(base.A, base.Y, rho=base.rho, sigma=math.sqrt(4 * base.L * delta0 / 128))


def sm_run(T, lr, rank=4, gap=100, seed=0, **over):
    """min_{t<T} ||grad f(W_t)||^2 along one run of the adam-snsm preset (with hyper-parameter overrides)."""
    p, g = torch.nn.Parameter(W0.clone()), torch.Generator().manual_seed(seed)
    opt = subspace.make("adam-snsm", [p], lr=lr, rank=rank, update_gap=gap, **over)
    sq = []
    for _ in range(T):
        sq.append(float(prob.grad(p.detach()).square().sum()))
        p.grad = prob.stochastic_grad(p.detach(), g)
        opt.step()
    return np.minimum.accumulate(sq)


T = 1024
lr_sgd = min(1 / (2 * prob.L), math.sqrt(delta0 / (prob.L * prob.sigma ** 2 * T)))
mins = {"adam-snsm": sm_run(T, 0.05 * math.sqrt(512 / T)),
        "sm-sgd": sm_run(T, lr_sgd, preconditioner="none"),
        "sm-sgd, no complement": sm_run(T, lr_sgd, preconditioner="none", complement_scale=0.0)}
with P.style():
    fig, ax = P.new_figure(columns=1)
    for name, m in mins.items():
        P.plot_measured(ax, np.arange(1, T + 1), m, label=name)
    P.finish(ax, xlabel="step $t$", ylabel=r"$\min_{s\leq t}\|\nabla f(W_s)\|_F^2$", logx=True, logy=True)
    draw(fig)

# %%
out = show("sm.convergence", SCALE, results=RESULTS)

# %% [markdown]
# In the small figure, SM without the complement stalls between refreshes (flat stretches ending at multiples of
# $\tau = 100$): inside a fixed subspace it can only remove the gradient's in-subspace part. The complement step
# removes those plateaus.
#
# **Reading.** *holds* requires both methods' slope CIs below $-1/4$ and the frozen-step control to be rejected
# (`control_rule: violated`), so the rule can tell a $1/\sqrt T$ rate from a plateau. It is evidence for the
# *generic* rate on one smooth problem, not for the paper's high-probability statement, which we do not have.

# %%
# Explore: the subspace rank r and the refresh gap tau of the plain SM step (rank 8 = full rank for this 16 x 8 W)
for rank, gap in ((1, 100), (4, 100), (4, 10), (8, 100)):
    print(f"rank {rank}, gap {gap:>3}: min ||grad f||^2 over {T} steps = "
          f"{sm_run(T, lr_sgd, rank=rank, gap=gap, preconditioner='none')[-1]:.3g}")

# %% [markdown]
# ## 4. The README's 1B figures: Adam 4.99 GB, AdamSN 2.62 GB, AdamSNSM 0.84 GB of optimizer states
#
# **Statement** (official README, LLaMA 1B, every linear layer compressed incl. `lm_head`, rank 512, BF16):
# optimizer-state memory Adam $4.99$, AdamSN $2.62$, AdamSNSM $0.84$ GB. Per compressed $m\times n$ matrix
# ($k = \min(m,n)$, $l = \max(m,n)$): Adam $2mn$; AdamSN $mn + \max(m,n)$; AdamSNSM $kr$ (the basis $Q$) $+\ rl$
# (momentum) $+ \max(m,n)$ (subset norms); embeddings and norms keep Adam's two moments.
#
# **Where it breaks.** Counting every tensor AdamSNSM holds, its figure comes out well above $0.84$; leaving out the
# projection bases $Q$ reproduces it. So the literal statement (`snsm.memory-1b`) and the reconstructed reading
# "the figure excludes the bases" (`snsm.memory-1b-excl-basis`, kind *corrected*) are separate claims. The basis
# is real memory: the reconstruction explains the number, it does not make the optimizer smaller.
#
# **Experiment.** The per-matrix counts from the presets' own formulas (`subspace.state_numel`) on the LLaMA-1B
# shapes: attention $2048\times2048$, MLP $2048\times5461$, `lm_head` $32000\times2048$.

# %%
r = 512
for shape in ((2048, 2048), (2048, 5461), (32000, 2048)):
    adam, sn, snsm = (subspace.state_numel(m, shape, **kw) for m, kw in
                      (("adamw", {}), ("adam-sn", {}), ("adam-snsm", {"rank": r})))
    basis = min(shape) * r
    print(f"{str(shape):>14}: Adam {adam / 1e6:6.2f}M, AdamSN {sn / 1e6:6.2f}M, AdamSNSM {snsm / 1e6:5.2f}M "
          f"of which the basis Q {basis / 1e6:4.2f}M ({basis / snsm:.0%})")

# %%
out = show("snsm.memory-1b", SCALE, results=RESULTS)

# %%
out = show("snsm.memory-1b-excl-basis", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** Expect the literal claim *violated* on AdamSNSM alone (Adam and AdamSN match) and the reading
# without bases to *hold*: the measured/paper ratios above the bars say by how much. Both are exact counts on a
# meta-device model; the tolerance only absorbs the GB-vs-GiB and rounding ambiguity of the README.

# %%
# Explore: the rank. The basis share of AdamSNSM's state grows with r (k r of k r + r l + l per matrix)
for r in (128, 256, 512, 1024):
    snsm = subspace.state_numel("adam-snsm", (2048, 5461), rank=r)
    print(f"rank {r:>4}: AdamSNSM / Adam on a 2048 x 5461 MLP weight = "
          f"{snsm / subspace.state_numel('adamw', (2048, 5461)):.3f} with Q, "
          f"{(snsm - 2048 * r) / subspace.state_numel('adamw', (2048, 5461)):.3f} without")

# %% [markdown]
# ## 5. The abstract: AdamSNSM cuts Adam's optimizer-state memory by more than 80% at 1B
#
# **Statement** (abstract): "reducing Adam's optimizer-states memory footprint by more than 80%" (v1: "using only
# 20% of Adam's optimizer-states memory"), i.e. $1 - S_{\rm AdamSNSM}/S_{\rm Adam} > 0.8$ at LLaMA 1B, rank 512.
#
# **Where it breaks.** Same cause as section 4: with the bases counted the reduction falls short of 80%; without
# them it clears it. The claim judges the literal count (what the optimizer really holds) and reports the other.
#
# **Experiment.** Exact element counts of the whole 1B model on the meta device (`probes.memory.memory_row`:
# every state tensor of every parameter, the bases counted separately).

# %%
from probes.memory import build_llama, memory_row

model = build_llama("1b", device="meta")
adam = memory_row("1b", "adamw", selection="all-linear", model=model)["n_state"]
row = memory_row("1b", "adam-snsm", selection="all-linear", rank=512, model=model)
print(f"Adam {adam / 1e9:.3f}G state elements, AdamSNSM {row['n_state'] / 1e9:.3f}G of which bases "
      f"{row['n_basis'] / 1e9:.3f}G: reduction {1 - row['n_state'] / adam:.1%} with the bases, "
      f"{1 - (row['n_state'] - row['n_basis']) / adam:.1%} without")

# %%
out = show("snsm.state-reduction", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** *violated* on the literal count, by the margin printed (an exact count, no seed enters). The curve
# for 60M-7B (each at its paper rank) shows the "more than 80%" depends on both the model size and whether $Q$ is
# counted.

# %%
# Explore: the largest rank at which the literal (bases counted) 1B reduction still exceeds 80%
for r in (256, 384, 448, 512):
    row = memory_row("1b", "adam-snsm", selection="all-linear", rank=r, model=model)
    print(f"rank {r}: reduction {1 - row['n_state'] / adam:.1%} with the bases, "
          f"{1 - (row['n_state'] - row['n_basis']) / adam:.1%} without")
