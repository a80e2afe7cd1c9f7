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
# # GaLore (Zhao et al., ICML 2024): gradient low-rank projection
#
# A walkthrough of GaLore's theory (§3) and memory tables, one section per lemma, theorem or table. Each section
# gives the statement with its symbols and hypotheses, says where the statement or its proof goes wrong when it
# does (with the smallest counterexample), runs the experiment through `synthetic`, `analysis` and the optimizer
# core `subspace`, shows the registered claim (`claims/galore.py`, `claims/llm.py`, `claims/memory.py`) with its
# numbers, kind, verdict and margin, and ends with one cell to change and re-run. The literal statements are
# checked first; corrected versions carry their own ids.
#
# **Setting.** GaLore (Def. 3.6) trains $W_T=W_0+\eta\sum_t\tilde G_t$ with
# $\tilde G_t=P_t\,\rho_t(P_t^\top G_tQ_t)\,Q_t^\top$, where $G_t$ is the *negative* gradient and $P_t$, $Q_t$ are
# top-$r$ singular vectors of $G_t$. For reversible networks (Thm 3.2) a batch of $N$ samples gives the form
# $$G(W)=\frac1N\sum_{i=1}^N\big(A_i-B_iWC_i\big),\qquad B_i,\,C_i\succeq0,\tag{8}$$
# so SGD $W_t=W_{t-1}+\eta G_{t-1}$ gives $\mathrm{vec}(G_t)=(I-\eta S)\,\mathrm{vec}(G_{t-1})$ with
# $S=\frac1N\sum_iC_i\otimes B_i$. The stable rank is $\mathrm{sr}(G)=\|G\|_F^2/\|G\|_2^2$.

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)
RESULTS = None  # a `sublab verify` output folder such as "results/quick" shows its saved records; None runs each claim here

# %%
import numpy as np
import torch
from IPython.display import display
from matplotlib_inline.backend_inline import set_matplotlib_formats

import subspace
from analysis import plotting as P
from analysis.bounds import galore_lemma33_trajectory
from claims.notebook import show
from synthetic import ReversibleGradient, ReversibleLayer, TwoLayerNet, stable_rank

set_matplotlib_formats("png")  # the figures are pyplot-free (analysis.plotting): register the inline PNG formatter


def plot_lemma(chk, title):
    fig, ax = P.new_figure()
    t = np.arange(len(chk.stable_rank))
    P.plot_measured(ax, t, chk.stable_rank, label=r"sr$(G_t)$", marker="o")
    P.plot_theory(ax, t, chk.bound, label="Lemma 3.3 bound")
    P.finish(ax, xlabel=r"$t-t_0$", ylabel="stable rank", title=title, fontsize=6)
    return fig


# %% [markdown]
# ## Lemma 3.3 as stated: the gradient becomes low-rank
#
# **Lemma 3.3.** Let $G_t=\frac1N\sum_i(A_i-B_iW_tC_i)$ for $t\ge t_0$ with constant $A_i$ and PSD $B_i$, $C_i$,
# trained by SGD $W_t=W_{t-1}+\eta G_{t-1}$, and let $\lambda_1<\lambda_2$ be the two smallest distinct eigenvalues
# of $S$. Then
# $$\mathrm{sr}(G_t)\le\mathrm{sr}(G^\parallel_{t_0})+\Big(\frac{1-\eta\lambda_2}{1-\eta\lambda_1}\Big)^{2(t-t_0)}
# \frac{\|G_{t_0}-G^\parallel_{t_0}\|_F^2}{\|G^\parallel_{t_0}\|_2^2},$$
# $G^\parallel_{t_0}$ the projection of $G_{t_0}$ onto the $\lambda_1$-eigenspace $V_1$ of $S$ (the proof also needs
# $0<\eta\lambda_{\max}(S)\le1$).
#
# **Where the proof breaks.** It bounds the denominator by $\|G_t\|_2\ge\|G^\parallel_t\|_2=(1-\eta\lambda_1)^{t-t_0}
# \|G^\parallel_{t_0}\|_2$. That holds when $V_1=\{P_JXP_K\}$ is *rectangular* (then $G^\parallel=P_JGP_K$ is a
# two-sided compression of $G$), not in general: the perpendicular part can cancel the parallel part's top singular
# direction. **Smallest counterexample** ($m=n=N=2$): $B=(I,\,e_1e_1^\top)$, $C=(I,\,e_2e_2^\top)$, so
# $S=\frac12(I+e_2e_2^\top\otimes e_1e_1^\top)$ has $\lambda_1=\frac12$ on $V_1=\{G:G_{12}=0\}$ (an L-shaped, not
# rectangular, set) and $\lambda_2=1$; with $G_{t_0}=\begin{pmatrix}1&1\\1&-1\end{pmatrix}$ and $\eta=\frac12$,
# $\mathrm{sr}(G_{t_0})=2$ exceeds the bound already at $t=t_0$.

# %%
I, e1, e2 = np.eye(2), np.diag([1.0, 0.0]), np.diag([0.0, 1.0])
G0 = np.array([[1.0, 1.0], [1.0, -1.0]])
cross = ReversibleGradient.from_arrays([G0, G0], [I, e1], [I, e2])  # A_i = G0, so G(W = 0) = G0
print(f"lambda_1 = {cross.lambda1:g}, lambda_2 = {cross.lambda2:g}, dim V1 = {cross.v1_dim}, "
      f"rectangular: {cross.v1_is_rectangular}")
print("G_par =", cross.project_v1(torch.tensor(G0)).numpy().tolist())
chk = galore_lemma33_trajectory(cross, G0, eta=0.5, steps=10)
print("sr(G_t):", chk.stable_rank.round(3), "\nbound:  ", chk.bound.round(3))
display(plot_lemma(chk, "explicit 2 x 2 counterexample"))

# %%
out = show("galore.lemma3.3", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** `violated` is the finding: every counted violation meets the lemma's hypotheses (form (8), constant
# $A_i$, PSD $B_i,C_i$, SGD, $\lambda_1<\lambda_2$, $\eta\lambda_{\max}\le1$), and the detail line reports that none of
# the violating random instances has a rectangular $V_1$. The smallest one found has $N=1$: singular $B$ and $C$
# make $\lambda_1=0$ with a "cross"-shaped $V_1$.

# %%
# Exploration: other starting gradients G_t0 = [[1, c], [1, -1]] and step sizes eta (need eta * lambda_max <= 1).
for c, eta in ((1.0, 0.5), (0.3, 0.5), (3.0, 0.5), (1.0, 0.9)):
    Gc = np.array([[1.0, c], [1.0, -1.0]])
    ch = galore_lemma33_trajectory(ReversibleGradient.from_arrays([Gc, Gc], [I, e1], [I, e2]), Gc, eta=eta, steps=20)
    print(f"c = {c}, eta = {eta}: max_t (sr - bound)/bound = {ch.max_relative_violation:+.3f}")

# %% [markdown]
# ## Lemma 3.3 with the precondition its proof needs: $V_1$ rectangular
#
# **Corrected statement.** If moreover $V_1=\{P_JXP_K:X\}$ for subspaces $J$, $K$ (e.g. the $B_i$ share one
# eigenbasis and the $C_i$ another, as in `synthetic.ReversibleLayer`), and $0<\eta\lambda_{\max}(S)\le1$, the bound
# of Lemma 3.3 holds. Proof: $G^\parallel_t=P_JG_tP_K$, so $\|G_t\|_2\ge(1-\eta\lambda_1)^{t-t_0}\|G^\parallel_{t_0}\|_2$,
# and $\|G_t\|_F^2\le(1-\eta\lambda_1)^{2(t-t_0)}\|G^\parallel\|_F^2+(1-\eta\lambda_2)^{2(t-t_0)}\|G^\perp\|_F^2$.
# The bound is tight: instances with $G^\perp_{t_0}$ aligned with $G^\parallel_{t_0}$ reach it to round-off, so the
# check is made at equality, not far below it.

# %%
layer = ReversibleLayer.random(5, 4, N=3, generator=torch.Generator().manual_seed(0), v1_shape=(2, 2))
eta = 0.9 / layer.lambda_max
chk = galore_lemma33_trajectory(layer, layer.gradient(torch.zeros(5, 4, dtype=torch.float64)), eta, steps=30)
print(f"lambda_1 = {layer.lambda1:.3g}, lambda_2 = {layer.lambda2:.3g}, dim V1 = {layer.v1_dim} "
      f"(rectangular: {layer.v1_is_rectangular}), rank G_par = {chk.parallel_rank}")
print(f"max_t sr(G_t)/bound_t = {np.max(chk.stable_rank / chk.bound):.6f}; sr(G_t) -> {chk.stable_rank[-1]:.4f}, "
      f"sr(G_par) = {chk.bound[-1]:.4f} in the limit")
display(plot_lemma(chk, "rectangular $V_1$ (shared eigenbases)"))

# %%
out = show("galore.lemma3.3-rectangular", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** `holds` means no instance of either family (shared eigenbases; rectangular $V_1$ with non-shared
# eigenbases outside it) exceeds the bound beyond its round-off allowance, *provided* every instance's computed
# $V_1$ is rectangular and $\eta\lambda_{\max}\le1$; the detail line shows how close to 1 the largest ratio comes.

# %%
# Exploration: the shape of V1 sets the limit sr(G_par) <= min(p, q); try (1, 1) (Cor. 3.5: rank one) or (3, 1).
for v1_shape in ((1, 1), (2, 2), (3, 1), (4, 3)):
    lay = ReversibleLayer.random(5, 4, N=3, generator=torch.Generator().manual_seed(1), v1_shape=v1_shape)
    ch = galore_lemma33_trajectory(lay, lay.gradient(torch.zeros(5, 4, dtype=torch.float64)), 0.9 / lay.lambda_max, 60)
    print(f"V1 shape {v1_shape}: sr(G_0) = {ch.stable_rank[0]:.3f} -> sr(G_60) = {ch.stable_rank[-1]:.3f}, "
          f"max ratio to the bound {np.max(ch.stable_rank / ch.bound):.6f}")

# %% [markdown]
# ## Theorem 3.8 as stated: GaLore with fixed projections contracts
#
# **Theorem 3.8.** Let the gradient have form (8) with $A_i$, $B_i$, $C_i$ that are $L_A$-, $L_B$-, $L_C$-Lipschitz in
# $W$, $\|W_t\|\le D$, and run GaLore with fixed $P_t\equiv P$, $Q_t\equiv Q$ and $\rho_t\equiv1$. With
# $R_t=P^\top G_tQ$, $\hat B_{it}=P^\top B_i(W_t)P$, $\hat C_{it}=Q^\top C_i(W_t)Q$ and
# $\kappa_t=\frac1N\sum_i\lambda_{\min}(\hat B_{it})\lambda_{\min}(\hat C_{it})$,
# $$\|R_t\|_F\le\big[1-\eta\,(\kappa_{t-1}-L_A-L_BL_CD^2)\big]\,\|R_{t-1}\|_F,$$
# and $R_t\to0$ if $\min_t\kappa_t>L_A+L_BL_CD^2$.
#
# **Where the proof breaks.** Expanding the change of the gradient,
# $$B_tW_tC_t-B_{t-1}W_{t-1}C_{t-1}=B_{t-1}\,\Delta W\,C_{t-1}+(B_t-B_{t-1})\,W_tC_{t-1}+B_tW_t\,(C_t-C_{t-1}),$$
# the two last terms are of first order in $L_B$ and in $L_C$ separately, $\eta\|R_{t-1}\|_F\,D\,(L_B\|C\|+L_C\|B\|)$;
# the paper keeps only a product $L_BL_CD^2$, which vanishes as soon as one of $B$, $C$ is constant.
# **Smallest counterexample** ($m=n=2$, $N=1$): $A=\mathrm{diag}(0.75,0.25)$, $B(W)=(2-W_{11})I$ ($L_B=1$),
# $C=I$ ($L_C=0$), $L_A=0$, $W_0=0$, $P=Q=e_1$, $\eta=0.25$. Then $R_t=0.75-(2-w_t)w_t$ with $w_t=(W_t)_{11}\to0.5$,
# and $R_t/R_{t-1}=1-\eta(2-w_t-w_{t-1})>1-\eta\kappa_{t-1}=1-\eta(2-w_{t-1})$ whenever $w_t>0$: every step.

# %%
A, C = np.diag([0.75, 0.25]), np.eye(2)
B = lambda W: (2.0 - W[0, 0]) * np.eye(2)  # noqa: E731  L_B = 1 (in the Frobenius and the spectral norm)
Pp = Qp = np.array([[1.0], [0.0]])
eta, W = 0.25, np.zeros((2, 2))
R, kappa, W_norm = [(Pp.T @ (A - B(W) @ W @ C) @ Qp).item()], [], []
for t in range(40):
    kappa.append(np.linalg.eigvalsh(Pp.T @ B(W) @ Pp)[0] * np.linalg.eigvalsh(Qp.T @ C @ Qp)[0])
    W = W + eta * Pp * R[-1] @ Qp.T
    R.append((Pp.T @ (A - B(W) @ W @ C) @ Qp).item())
    W_norm.append(np.linalg.norm(W))
R, kappa = np.array(R), np.array(kappa)
step_ratio, paper = R[1:] / R[:-1], 1 - eta * kappa          # L_A = 0 and L_B L_C D^2 = 0
print(f"steps where ||R_t|| > paper factor x ||R_t-1||: {int(np.sum(step_ratio > paper))} of {len(paper)}")
print(f"rate ||R_t||/||R_t-1|| -> {step_ratio[-1]:.4f}, the paper's factor -> {paper[-1]:.4f}; "
      f"R_t still -> 0: ||R_40||/||R_0|| = {R[-1] / R[0]:.1e}")

# %%
out = show("galore.thm3.8", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** `violated` comes from the $W$-dependent arm, which meets every hypothesis (PSD $B(W_t)$ along the path,
# fixed $P,Q$, $\rho=1$, $L_A=0$, $L_B=1$, $L_C=0$, bounded $W_t$, the implicit step-size condition); the constant-terms
# arm obeys the bound at every step. The conclusion $R_t\to0$ survives; the per-step rate does not.

# %%
# Exploration: the gap between the true rate and the paper's factor grows with eta and with A_11 (the limit w*).
for eta_, a11 in ((0.1, 0.75), (0.25, 0.75), (0.25, 0.5), (0.4, 0.9)):
    w, r_ = 0.0, a11
    ratios, factors = [], []
    for t in range(60):
        w_new = w + eta_ * r_
        r_new = a11 - (2 - w_new) * w_new
        ratios.append(r_new / r_), factors.append(1 - eta_ * (2 - w))
        w, r_ = w_new, r_new
    print(f"eta = {eta_}, A_11 = {a11}: worst step ratio / paper factor = {max(np.array(ratios) / factors):.4f}")

# %% [markdown]
# ## Theorem 3.8 with the first-order terms restored (corrected)
#
# **Corrected statement** (derived from the expansion above). With fixed $P$, $Q$, $\rho=1$, $\|W_t\|_F\le D$,
# Lipschitz constants with respect to $\|W\|_F$ (spectral norms on $B_i$, $C_i$), PSD terms along the path and
# $\eta\,(\lambda_{\max}+\lambda_{\min})(\hat S_{t-1})\le2$:
# $$\|R_t\|_F\le\Big[1-\eta\Big(\kappa_{t-1}-L_A-D\big(L_B\,\overline{\|C\|}_{t-1}+L_C\,\overline{\|B\|}_t\big)\Big)\Big]
# \|R_{t-1}\|_F,$$
# $\overline{\|C\|}_{t-1}=\frac1N\sum_i\|C_i(W_{t-1})\|_2$, $\overline{\|B\|}_t=\frac1N\sum_i\|B_i(W_t)\|_2$. With constant
# terms it is the paper's bound. On the counterexample the corrected factor $1-\eta(2-w_{t-1}-D)$ tends to the true
# rate $1-\eta(2-2w^\star)$: tight, so a bound that dropped any term would fail there.

# %%
from claims.galore import thm38_wdep_random

D = max(W_norm)
corrected = 1 - eta * (kappa - D * 1.0)   # L_B = 1, ||C(W)||_2 = 1, L_A = L_C = 0
print(f"D = {D:.4f}; max_t ||R_t|| / (corrected factor x ||R_t-1||) = {np.max(step_ratio / corrected):.6f}")
rnd = thm38_wdep_random(np.random.default_rng(0), 5, 4, 2, 2, 60, L_A=0.3, L_B=0.5, L_C=0.5)
print("random W-dependent A, B, C (L = 0.3, 0.5, 0.5): max ratio to the paper's factor "
      f"{np.max(rnd['R'] / (rnd['paper_factor'] * rnd['R_prev'])):.3f}, to the corrected one "
      f"{np.max(rnd['R'] / (rnd['corrected_factor'] * rnd['R_prev'])):.3f}")
fig, ax = P.new_figure()
t = np.arange(1, len(R))
P.plot_measured(ax, t, step_ratio, label=r"$\|R_t\|/\|R_{t-1}\|$")
P.plot_theory(ax, t, paper, label="paper's factor", color="#d62728")
P.plot_theory(ax, t, corrected, label="corrected factor", color="#2ca02c")
P.finish(ax, xlabel="step $t$", ylabel="per-step factor", title=r"$B(W)=(2-W_{11})I$, $C=I$", fontsize=6)
display(fig)

# %%
out = show("galore.thm3.8-corrected", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** `holds` means every step of every arm (constant terms, the explicit instance, random $W$-dependent
# terms) obeys the corrected bound within the round-off allowance of recomputing $R_t$, each arm *provided* its
# preconditions hold; the explicit arm's maximum ratio shows the bound binding.

# %%
# Exploration: the explicit instance with B(W) = (2 - L_B W_11) I. The paper's factor fails at every step for any
# L_B > 0; the corrected one binds (ratio 1 up to round-off). Random instances, as above, rarely come near this.
for L_B in (0.25, 0.5, 1.0, 1.25):
    w, r_ = [0.0], [0.75]
    while r_[-1] > 1e-6 * r_[0]:  # stop well above the round-off floor of R_t = 0.75 - (2 - L_B w) w
        w.append(w[-1] + eta * r_[-1])
        r_.append(0.75 - (2 - L_B * w[-1]) * w[-1])
    w, r_ = np.array(w), np.array(r_)
    ratio, kap = r_[1:] / r_[:-1], 2 - L_B * w[:-1]
    print(f"L_B = {L_B}: {int(np.sum(ratio > 1 - eta * kap))} of {len(ratio)} steps above the paper's factor; "
          f"max ratio to the corrected factor {np.max(ratio / (1 - eta * (kap - L_B * w.max()))):.6f}")


# %% [markdown]
# ## Real layers: does the gradient's stable rank fall during LLaMA training?
#
# **Reading of Lemma 3.3** as the paper uses it: gradients of real layers become low-rank during training, which is
# what makes a rank-$r$ projection cheap to lose little. The lemma's preconditions (constant $A_i,B_i,C_i$, SGD) do not
# hold for a transformer trained with AdamW; the claim tests the conclusion on every attention and MLP matrix of a
# LLaMA trained with AdamW (late vs early mean log stable rank, paired one-sided $t$ test across matrices).
#
# *Where the reading goes wrong:* the lemma's conclusion needs its preconditions. In a reversible teacher-student net
# (`synthetic.TwoLayerNet`, ReLU), training only the output layer keeps the terms constant and its gradient's
# stable rank falls to $\mathrm{sr}(G^\parallel)$; training both layers changes $B_i$, $C_i$ every step and the
# stable rank no longer falls. (At quick scale the tiny LLaMA's gradients start nearly rank one, so "falls" has no
# room to be tested; the claim says so rather than guessing.)

# %%
net = TwoLayerNet(d_in=16, hidden=12, d_out=8, n_samples=64, activation="relu", seed=0)
fig, ax = P.new_figure()
for both, label in ((False, "output layer only (constant terms)"), (True, "both layers")):
    W1, W2 = net.x0(torch.Generator().manual_seed(1))
    srs = []
    for t in range(1000):
        G1, G2 = net.gradients(W1, W2)   # the paper's sign: minus the gradient
        srs.append(stable_rank(G2))
        W1, W2 = (W1 + 0.2 * G1 if both else W1), W2 + 0.2 * G2
    P.plot_measured(ax, np.arange(1000), srs, label=label)
    print(f"{label}: sr(G2) {srs[0]:.3f} at t = 0, {srs[100]:.3f} at t = 100, {srs[-1]:.3f} at t = 999")
lay2 = net.reversible_layer(2, *net.x0(torch.Generator().manual_seed(1)))
print(f"layer 2 at init: dim V1 = {lay2.v1_dim}, rectangular: {lay2.v1_is_rectangular}")
P.finish(ax, xlabel="SGD step", ylabel=r"sr$(G_2)$", title="ReLU teacher-student, layer 2", fontsize=6)
display(fig)

# %%
out = show("galore.low-rank-gradients", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** At quick scale the verdict is `inconclusive` by design: the preconditions of the test (enough
# matrices for power, a gradient that starts far from rank one) fail on the tiny model, and the detail line gives the
# early and late median stable ranks against the full rank. The full scale (LLaMA 60M) decides.

# %%
# Exploration: more samples than hidden units (N' = rank of the inputs) or a linear network; does sr still fall?
for n_samples, act in ((8, "relu"), (64, "linear")):
    nt = TwoLayerNet(d_in=16, hidden=12, d_out=8, n_samples=n_samples, activation=act, seed=0)
    W1, W2 = nt.x0(torch.Generator().manual_seed(1))
    for t in range(600):
        G1, G2 = nt.gradients(W1, W2)
        W1, W2 = W1 + 0.2 * G1, W2 + 0.2 * G2
    print(f"N = {n_samples}, {act}: sr(G1) = {stable_rank(G1):.3f}, sr(G2) = {stable_rank(G2):.3f} after 600 steps")

# %% [markdown]
# ## Table 2: parameters + optimizer states in BF16
#
# **Statement** (GaLore Table 2, "param + optimizer memory estimate"): LLaMA 60M/130M/350M/1B with full-rank Adam
# 0.36/0.76/2.06/7.80 G and GaLore 0.24/0.52/1.22/4.38 G at ranks 128/256/256/512. Adam keeps two moments per
# parameter; GaLore compresses every attention/MLP matrix $m\times n$ to a basis and two $r\times\ell$ moments
# ($\ell$ the side it does not project), while embeddings, head and norms keep Adam.
#
# *Where the table is loose:* the paper does not say whether "G" is $10^9$ or $2^{30}$ bytes, nor what exactly it
# counts. The 60M full-rank entry matches the *nominal* size ($60\cdot10^6\times6$ bytes$/10^9$ = 0.36), not the
# configuration's parameter count, and counting GaLore's projection basis puts its entries up to about a tenth above
# the paper. The count below uses the core's own per-matrix state formula (`subspace.state_numel`).

# %%
from claims.golore import llama_parameters
from probes.models import LLAMA_SIZES


def params_plus_states(size, method, rank):
    s = LLAMA_SIZES[size]
    matrices = [(s.hidden, s.hidden)] * 4 + [(s.intermediate, s.hidden)] * 2 + [(s.hidden, s.intermediate)]
    n_params = llama_parameters(s)
    low = sum(m * n for m, n in matrices) * s.layers
    states = (s.layers * sum(subspace.state_numel(method, shape, rank=rank) for shape in matrices)
              + 2 * (n_params - low)) if method == "galore" else 2 * n_params
    return 2 * (n_params + states) / 2 ** 30  # BF16, GiB


for size, rank, paper in (("60m", 128, (0.36, 0.24)), ("130m", 256, (0.76, 0.52)), ("350m", 256, (2.06, 1.22)),
                          ("1b", 512, (7.80, 4.38))):
    adam, galore = params_plus_states(size, "adamw", rank), params_plus_states(size, "galore", rank)
    print(f"{size:>5} (r = {rank}): Adam {adam:.2f} G (paper {paper[0]}), GaLore {galore:.2f} G (paper {paper[1]})")

# %%
out = show("galore.table2-memory", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** The rule allows the unit ambiguity (rtol $=2^{30}/10^9-1$) and the paper's two decimals; one entry
# outside makes the claim `violated`, and the reason names the worst entry. The detail line gives every
# measured/paper ratio, and the GaLore ratios without the basis.

# %%
# Exploration: the GaLore column at other ranks (the paper's 1B row also reports r = 1024).
for rank in (128, 256, 512, 1024):
    print(f"1B, r = {rank:>4}: GaLore {params_plus_states('1b', 'galore', rank):.2f} G")

# %% [markdown]
# ## LLaMA 7B on a 24 GB GPU (§1, §5, Table 3)
#
# **Statement.** 8-bit GaLore with per-layer weight updates pre-trains LLaMA 7B (rank 1024, batch 1, sequence 256)
# within a 24 GB GPU (measured there at 22.0 GB), where BF16 Adam does not fit. Per-layer updates free each gradient
# in its backward hook, so only the largest gradient is ever alive; 8-bit moments take one byte per value plus block
# scales.
#
# *What the count leaves out:* the CUDA context, allocator fragmentation and the step's temporaries, which is why
# an exact count on the meta device falls below the paper's measured 22.0 GB (reported, not judged).

# %%
s7 = LLAMA_SIZES["7b"]
for shape in ((s7.hidden, s7.hidden), (s7.intermediate, s7.hidden)):
    print(f"{shape}: AdamW BF16 states {subspace.state_bytes('adamw', shape, element_size=2) / 2 ** 20:.0f} MiB, "
          f"8-bit GaLore r = 1024 {subspace.state_bytes('galore', shape, rank=1024, state_bits=8, element_size=2) / 2 ** 20:.0f} MiB")

# %%
out = show("galore.memory-7b-24gb", SCALE, results=RESULTS)

# %% [markdown]
# **Reading.** `holds` means the exact count of 8-bit GaLore with per-layer updates stays below $24\cdot10^9$ bytes and
# the BF16 AdamW control exceeds it; the detail line lists each term (weights, the one live gradient, states, bases,
# activations) next to the slides' accounting.

# %%
# Exploration: the per-matrix state at other ranks and state precisions (state_bits 8 or 32).
for rank, bits in ((512, 8), (1024, 8), (1024, 32), (2048, 8)):
    total = s7.layers * sum(subspace.state_bytes("galore", shape, rank=rank, state_bits=bits, element_size=2)
                            for shape in [(s7.hidden, s7.hidden)] * 4 + [(s7.intermediate, s7.hidden)] * 3)
    print(f"r = {rank:>4}, {bits:>2}-bit moments: GaLore states of the 7B matrices {total / 1e9:.2f} GB")
