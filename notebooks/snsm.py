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
# # Subset-Norm and Subspace-Momentum (Nguyen & Nguyen, ICML 2025)
#
# Subset-Norm shares one adaptive step size per subset of coordinates (state O(sqrt d) instead of O(d));
# Subspace-Momentum keeps momentum only in a top-r subspace and adds the raw complement gradient.
# Experiments: `claims/snsm.py` (synthetic), `claims/llm.py` (the 1B memory figures).

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)

# %%
from claims.notebook import show

# %% [markdown]
# ## Subset-Norm's adaptive state is O(sqrt d)

# %%
out = show("sn.memory", SCALE)

# %% [markdown]
# ## Iterations to epsilon against d for subset sizes 1, sqrt d, d under sparse and dense noise

# %%
out = show("sn.rates", SCALE)

# %% [markdown]
# ## Subspace-Momentum converges on a smooth non-convex problem

# %%
out = show("sm.convergence", SCALE)

# %% [markdown]
# ## README figures at 1B: Adam 4.99 GB, AdamSN 2.62 GB, AdamSNSM 0.84 GB of optimizer states

# %%
out = show("snsm.memory-1b", SCALE)

# %% [markdown]
# ## The same figures read as moments and subset norms without the projection bases

# %%
out = show("snsm.memory-1b-excl-basis", SCALE)
