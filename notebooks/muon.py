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
# # Muon's Newton–Schulz quintic (Jordan et al. 2024)
#
# Muon orthogonalizes its momentum with five steps of X <- a X + b (X X^T) X + c (X X^T)^2 X,
# (a, b, c) = (3.4445, -4.7750, 2.0315), after dividing by the Frobenius norm. The scalar map p(x) acts on each
# normalised singular value. sympy certifies its fixed points, its attracting 4-cycle and the input threshold above
# which five steps land in the band; the claim checks the band on matrices with prescribed spectra.

# %% tags=["parameters"]
SCALE = "quick"  # "full" runs the paper-sized experiments (minutes to hours; a GPU helps for the probes)

# %%
from claims.notebook import show

# %% [markdown]
# ## The NS5 band holds exactly above the threshold; no attracting fixed point at 1

# %%
out = show("muon.ns5-band", SCALE)
