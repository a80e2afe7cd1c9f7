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
# GaLore's theory: gradients of reversible layers become low-rank (Lemma 3.3) and GaLore with fixed projections
# contracts (Theorem 3.8). The workbench checks the literal statements first; corrected versions carry their own
# ids. Experiments: `claims/galore.py` (synthetic) and `claims/llm.py` (LLaMA probes, memory columns).

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)

# %%
from claims.notebook import show

# %% [markdown]
# ## Lemma 3.3 as stated: the stable rank of the gradient decays to sr(G_par)
# A random search over reversible instances finds counterexamples when the lambda_1-eigenspace V1 of S is not
# "rectangular": the proof's step ||G_t||_2 >= ||G_par||_2 fails.

# %%
out = show("galore.lemma3.3", SCALE)

# %% [markdown]
# ## Lemma 3.3 with the extra precondition that V1 is rectangular

# %%
out = show("galore.lemma3.3-rectangular", SCALE)

# %% [markdown]
# ## Theorem 3.8 as stated: ||R_t|| contracts at rate 1 - eta(kappa - L_A - L_B L_C D^2)
# With a W-dependent B(W) and constant C the paper's extra term vanishes but the proof drops first-order terms.

# %%
out = show("galore.thm3.8", SCALE)

# %% [markdown]
# ## Theorem 3.8 with the first-order terms restored

# %%
out = show("galore.thm3.8-corrected", SCALE)

# %% [markdown]
# ## Real layers: does the gradient's stable rank fall during LLaMA training?

# %%
out = show("galore.low-rank-gradients", SCALE)

# %% [markdown]
# ## Table 2 memory column (parameters + optimizer states, BF16) from the meta device

# %%
out = show("galore.table2-memory", SCALE)
