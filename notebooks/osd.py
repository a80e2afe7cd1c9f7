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
# # Online Subspace Descent (Liang et al., NeurIPS 2024)
#
# OSD replaces GaLore's periodic SVD with one optimizer step per iteration on the online-PCA loss
# ||P P^T G~ - G~||^2 + lambda ||P^T P - I||^2. Its theory is continuous-time: a Hamiltonian H of the base
# optimizer never increases for any projection dynamics, and accumulation points are stationary (Theorem 4.5,
# by LaSalle). Experiments: `claims/osd.py` (small-step discretisations from `analysis/hamiltonian.py`).

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)

# %%
from claims.notebook import show

# %% [markdown]
# ## Theorem 4.5: H is non-increasing (momentum, Adam with a >= b/4, Lion-K) under online PCA and arbitrary projections; gradients go to zero

# %%
out = show("osd.thm4.5", SCALE)

# %% [markdown]
# ## Is a >= b/4 necessary? Adam with a < b/4 (auxiliary)

# %%
out = show("osd.adam-a-below-b4", SCALE)

# %% [markdown]
# ## Assumption 4.4(ii) under online PCA: {P : P^T grad L = 0} must not be invariant

# %%
out = show("osd.online-pca-stationarity", SCALE)

# %% [markdown]
# ## The online-PCA update converges to the top-r subspace of a fixed matrix

# %%
out = show("osd.online-pca", SCALE)

# %% [markdown]
# ## Figure 2: one online-PCA step against a full SVD on LLaMA layer shapes (timings on this machine)

# %%
out = show("osd.fig2", SCALE)

# %% [markdown]
# ## Figure 3 (tiny-scale proxy, kind "reading"): rank, alpha and lambda sweeps on stochastic least squares

# %%
out = show("osd.fig3", SCALE)
