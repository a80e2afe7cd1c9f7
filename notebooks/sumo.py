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
# # SUMO (Refael et al., NeurIPS 2025): subspace-aware moment orthogonalization
#
# SUMO orthogonalizes the projected first moment exactly (U V^T by SVD) instead of with Newton–Schulz.
# Its theory: moments of reversible layers become rank one (Lemma 3.1), so they are ill-conditioned and
# Newton–Schulz is inaccurate on them (Lemma 3.2, Remark 3.7); Muon's rate needs a small orthogonalization
# error (Lemma 3.3); SUMO converges (Theorem 3.8). Experiments: `claims/sumo.py`, `claims/llm.py`.

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)

# %%
from claims.notebook import show

# %% [markdown]
# ## Lemma 3.1: the moment of a reversible layer becomes rank one, kappa_M(t) <= O(C^-t)

# %%
out = show("sumo.lemma3.1", SCALE)

# %% [markdown]
# ## Lemma 3.2 as stated (kappa of A A^T, classical cubic iteration)

# %%
out = show("sumo.lemma3.2", SCALE)

# %% [markdown]
# ## Lemma 3.2 as its proof reads it (kappa of the matrix itself): false

# %%
out = show("sumo.lemma3.2-proof-reading", SCALE)

# %% [markdown]
# ## A tight corrected bound from the exact scalar recursion e_{k+1} = e_k^2 (3 - e_k)/2

# %%
out = show("sumo.lemma3.2-corrected", SCALE)

# %% [markdown]
# ## Lemma 3.3 / Remark 3.6: does five-step Newton–Schulz deliver delta < 1/(4 sqrt n)?

# %%
out = show("sumo.lemma3.3", SCALE)

# %% [markdown]
# ## Remark 3.7: 'the SVD approach requires approximately twice as many operations as NS5' (r = 8, n = 1024)

# %%
out = show("sumo.remark3.7", SCALE)

# %% [markdown]
# ## Theorem 3.8: an epsilon-critical point within O(1/epsilon^2) steps

# %%
out = show("sumo.thm3.8", SCALE)

# %% [markdown]
# ## SVD against Newton–Schulz orthogonalization and GaLore on ill-conditioned problems

# %%
out = show("sumo.svd-vs-ns5", SCALE)

# %% [markdown]
# ## Table 1: optimizer-state sizes nr + mr (SUMO), 2nr + mr (GaLore), 2mn (Adam)

# %%
out = show("sumo.table1", SCALE)

# %% [markdown]
# ## Real layers: the first moment's stable rank falls during LLaMA training

# %%
out = show("sumo.moment-rank", SCALE)

# %% [markdown]
# ## Figure 1: the projected moment of a RoBERTa classifier becomes ill-conditioned

# %%
out = show("sumo.fig1", SCALE)

# %% [markdown]
# ## Figure 2: SUMO-SVD reaches a target loss in fewer steps than SUMO-NS5 and GaLore

# %%
out = show("sumo.fig2", SCALE)

# %% [markdown]
# ## Table 3 memory column for SUMO

# %%
out = show("sumo.table3-memory", SCALE)
