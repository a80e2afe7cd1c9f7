"""Hyper-parameters of one parameter group: the vocabulary every preset is written in, and its validation.

A method is a projector x base update x (optional) orthogonalizer x outer step; each key below picks or tunes one
of those stages. Presets (``subspace.presets``) are nothing but values for these keys. Invalid values raise
ValueError naming the key and what it allows.

``READS`` says when each key is read, in terms of the stages a group runs (``stages``): a key is meaningful for a
group only when one of its stages is active, and ``reads(cfg)`` lists those keys. A group with ``low_rank=False``
runs the dense rule: the group's base update (Adam or momentum) on the raw gradient, with no projector,
orthogonalizer, preconditioner or shape factor.
"""
from __future__ import annotations

import math
from numbers import Real

import torch

from .orthogonalize import COEFFICIENTS, resolve_schedule

__all__ = ["CHOICES", "DTYPES", "GROUP_DEFAULTS", "READS", "KEY_DOCS", "DENSE_BASES", "stages", "reads", "dense_rule",
           "validate_group"]

#: The precisions a user may name (``state_dtype``, ``ns_dtype``, the probes' ``--dtype``).
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}

#: Keys whose value is one of a fixed set of names.
CHOICES: dict[str, tuple] = {
    # stage 1: projector (which r-dimensional subspace of the smaller side); also a callable fn(A, r, t) -> Q
    "projector": ("none", "svd", "rsvd", "stiefel", "online-pca"),
    "stiefel_method": ("qr", "polar"),          # uniform on St(k, r): QR of a Gaussian with the sign fix, or Z (Z^T Z)^(-1/2)
    # random bases (Stiefel, rsvd's test matrix): each parameter's own stream seeded by (seed, parameter, step), so
    # no draw depends on the order parameters step in; or one stream consumed in step order (the released codes)
    "random_stream": ("per-parameter", "shared"),
    "svd_driver": ("gram", "svd"),              # top-r subspace from eigh of the k x k Gram (float64) or a thin SVD
    "basis_signs": ("aligned", "decomposition"),  # new columns' signs aligned with the previous basis, or as found
    "side": ("auto", "left", "right"),         # project the smaller side (GaLore's rule) or force one side
    "refresh_index": ("zero", "one"),            # refresh at steps 0, T, 2T (papers) or 1, T, 2T (1-indexed codes)
    # keep / transport M <- Q_new^T Q_old M / reset to zero; "transport-step": the refresh step uses the transported
    # moment, the stored one stays untransported (GoLore code); "reset-after": the refresh step uses the old moment,
    # then the stored one is zeroed (SN-SM code)
    "moment_on_refresh": ("keep", "transport", "reset", "transport-step", "reset-after"),
    # which earlier bases a transport starts from: every one, or only random-phase bases recorded after the first
    # step (GoLore's SGD code records its basis inside the branch that skips the first step)
    "transport_source": ("every", "random-after-first"),
    "pca_lr_rule": ("ratio", "gap"),            # OSD: eta_P = alpha*eta_W (paper) or (1/T)*lr_t/lr_peak (code)
    # stage 2: base update in the subspace
    "base": ("adam", "ema", "momentum"),
    "momentum_init": ("zero", "grad"),          # first momentum buffer 0 (papers) or the gradient (torch.optim.SGD)
    "eps_style": ("torch", "hf"),               # eps on the bias-corrected sqrt(v) (torch) or on the raw sqrt(v) (HF)
    # stage 3: orthogonalizer
    "orthogonalizer": ("none", "polar", "newton-schulz"),
    "polar_method": ("svd", "gram"),            # exact U V^T by SVD (float32+) or by the float64 Gram eigensystem
    "ns_normalize": ("frobenius", "spectral"),
    "ns_dtype": (None, "float32", "float64", "bfloat16"),
    # stage 4: full-space preconditioner and outer step
    "preconditioner": ("none", "subset-norm"),
    "subset_reduce": ("sum", "mean"),
    "shape_scale": ("none", "moonlight", "muon"),
    "wd_order": ("before", "after"),
    "nd_rule": ("reshape", "dense"),
    "state_dtype": (None, "float32", "float64", "bfloat16"),
    "state_bits": (32, 8),                      # moments stored as they are, or block-wise 8-bit (subspace.quantize)
}

#: Every group key with its default (the neutral value: plain Adam on the full matrix).
GROUP_DEFAULTS: dict = {
    "lr": 1e-3, "fixed_lr": None, "weight_decay": 0.0, "wd_order": "after",
    "projector": "none", "side": "auto", "rank": 128, "update_gap": 200, "refresh_index": "zero", "refresh_stagger": False,
    "svd_driver": "gram", "basis_signs": "aligned", "random_after": None, "stiefel_method": "qr",
    "random_stream": "per-parameter",
    "oversample": 5, "power_iters": 2, "moment_on_refresh": "keep", "transport_source": "every",
    "pca_lr_rule": "ratio", "pca_lr_ratio": 5.0, "pca_orth": 0.1, "pca_weight_decay": None,
    "base": "adam", "betas": (0.9, 0.999), "eps": 1e-8, "eps_style": "torch", "bias_correction": True,
    "momentum": 0.9, "dampening": 0.0, "nesterov": False, "nesterov_overwrite": False, "momentum_init": "zero",
    "orthogonalizer": "none", "polar_method": "gram", "ns_steps": 5, "ns_coeffs": "muon", "ns_normalize": "frobenius", "ns_dtype": None,
    "limiter": None, "complement_scale": 0.0,
    "preconditioner": "none", "subset": "heuristic", "subset_reduce": "sum",
    "scale": 1.0, "shape_scale": "none", "nd_rule": "reshape", "state_dtype": None,
    "state_bits": 32, "state_block": 256, "low_rank": True,
}

#: Base updates the dense rule may run.
DENSE_BASES = ("adam", "momentum")

#: When each key is read: the stages (``stages``) under any of which a group reads it.
READS: dict[str, tuple[str, ...]] = {
    # every rule (``fixed_lr``: when set, the step uses it instead of ``lr``, which LR schedulers edit)
    "lr": ("every",), "fixed_lr": ("every",), "weight_decay": ("every",), "wd_order": ("every",),
    "state_dtype": ("every",), "low_rank": ("every",), "base": ("every",),
    "state_bits": ("every",), "state_block": ("state_bits=8",),
    # the matrix rule: its stage choices and outer step
    "projector": ("matrix",), "orthogonalizer": ("matrix",), "preconditioner": ("matrix",),
    "scale": ("matrix",), "shape_scale": ("matrix",), "nd_rule": ("matrix",),
    # stage 1: projector
    "rank": ("projected",), "side": ("projected",), "complement_scale": ("projected",),
    "svd_driver": ("projector=svd", "projector=online-pca"),
    "basis_signs": ("projector=svd", "projector=rsvd", "projector=callable"),
    "transport_source": ("moment_on_refresh=transport", "moment_on_refresh=transport-step"),
    "update_gap": ("refreshed", "pca_lr_rule=gap"), "refresh_index": ("refreshed",),
    "refresh_stagger": ("refreshed",), "moment_on_refresh": ("refreshed",), "random_after": ("refreshed",),
    "stiefel_method": ("random",), "random_stream": ("random", "projector=rsvd"),
    "oversample": ("projector=rsvd",), "power_iters": ("projector=rsvd",),
    "pca_lr_rule": ("projector=online-pca",), "pca_lr_ratio": ("pca_lr_rule=ratio",),
    "pca_orth": ("projector=online-pca",), "pca_weight_decay": ("projector=online-pca",),
    # stage 2: base update (the Subset-Norm preconditioner is Adam's denominator)
    "betas": ("base=adam", "base=ema", "preconditioner=subset-norm"),
    "eps": ("base=adam", "preconditioner=subset-norm"), "eps_style": ("base=adam", "preconditioner=subset-norm"),
    "bias_correction": ("base=adam", "preconditioner=subset-norm"),
    "momentum": ("base=momentum",), "dampening": ("base=momentum",), "nesterov": ("base=momentum",),
    "nesterov_overwrite": ("base=momentum",), "momentum_init": ("base=momentum",),
    # stage 3: orthogonalizer
    "polar_method": ("orthogonalizer=polar",), "limiter": ("orthogonalized",),
    "ns_steps": ("orthogonalizer=newton-schulz",), "ns_coeffs": ("orthogonalizer=newton-schulz",),
    "ns_normalize": ("orthogonalizer=newton-schulz",), "ns_dtype": ("orthogonalizer=newton-schulz",),
    # stage 4: preconditioner
    "subset": ("preconditioner=subset-norm",), "subset_reduce": ("preconditioner=subset-norm",),
}


#: Each key's type and meaning, as the typed constructors' signatures and docstrings show them.
KEY_DOCS: dict[str, tuple[str, str]] = {
    "lr": ("float", "learning rate eta (LR schedulers edit it)"),
    "fixed_lr": ("float | None", "when set, the step uses it instead of lr, so schedules do not reach this group"),
    "weight_decay": ("float", "decoupled weight decay lambda: W <- W - lr lambda W"),
    "wd_order": ("str", "'before' or 'after' the gradient step"),
    "state_dtype": ("str | None", "precision of the optimizer state (None: the parameter's)"),
    "state_bits": ("int", "moment storage: 32 (the state dtype) or 8 (block-wise dynamic 8-bit, subspace.quantize)"),
    "state_block": ("int", "B, elements per 8-bit block (one float32 scale each)"),
    "low_rank": ("bool", "group flag: the low-rank (matrix) rule, or the dense rule when False"),
    "base": ("str", "base update on the projected gradient: 'adam', 'ema' (first moment only) or 'momentum'"),
    "projector": ("str | Callable", "'none', 'svd', 'rsvd', 'stiefel', 'online-pca' or fn(A, r, t) -> Q (k x r)"),
    "orthogonalizer": ("str", "'none', 'polar' (exact U V^T) or 'newton-schulz'"),
    "preconditioner": ("str", "'none' or 'subset-norm' (full-space Subset-Norm denominator)"),
    "scale": ("float", "alpha: multiplies the matrix update"),
    "shape_scale": ("str", "shape factor: 'none', 'moonlight' (0.2 sqrt(max(m, n))) or 'muon' (sqrt(max(1, m/n)))"),
    "nd_rule": ("str", "N-D weights: 'reshape' to (shape[0], -1) or 'dense' (the dense rule)"),
    "rank": ("int", "r, the subspace dimension (clamped to min(m, n))"),
    "side": ("str", "projected side: 'auto' (the smaller one), 'left' or 'right'"),
    "complement_scale": ("float", "s_perp: adds s_perp (A - Q Q^T A), the gradient outside the subspace"),
    "svd_driver": ("str", "top-r subspace from 'gram' (float64 Gram eigendecomposition) or 'svd' (thin SVD)"),
    "basis_signs": ("str", "new basis columns 'aligned' in sign with the previous basis, or as 'decomposition' found"),
    "update_gap": ("int", "T, steps between basis refreshes"),
    "refresh_index": ("str", "refresh at steps 0, T, 2T ('zero') or 1, T, 2T ('one', 1-indexed codes)"),
    "refresh_stagger": ("bool", "spread the refreshes of a group's parameters over the period"),
    "moment_on_refresh": ("str", "moments at a refresh: 'keep', 'transport', 'reset', 'transport-step', 'reset-after'"),
    "transport_source": ("str", "earlier bases a transport starts from: 'every' or 'random-after-first' (GoLore SGD code)"),
    "random_after": ("int | None", "from this step on, bases are uniform Stiefel draws (GoLore@x%)"),
    "stiefel_method": ("str", "uniform Stiefel draw: 'qr' (QR of a Gaussian, sign fix) or 'polar' (Z (Z^T Z)^(-1/2))"),
    "random_stream": ("str", "random bases from each parameter's own stream, seeded by (seed, parameter, step), "
                             "so no draw depends on the order parameters step in ('per-parameter'), or from one "
                             "stream consumed in step order ('shared', the released codes)"),
    "oversample": ("int", "randomized SVD: extra columns of the range finder"),
    "power_iters": ("int", "randomized SVD: power iterations"),
    "pca_lr_rule": ("str", "online-PCA step size: 'ratio' (pca_lr_ratio lr) or 'gap' ((1/T) lr_t / lr_peak)"),
    "pca_lr_ratio": ("float", "alpha in lr_P = alpha lr"),
    "pca_orth": ("float", "orthogonality penalty lambda of the online-PCA loss"),
    "pca_weight_decay": ("float | None", "decay of the online-PCA basis (None: the weight's)"),
    "betas": ("tuple[float, float]", "(beta1, beta2): first- and second-moment decay"),
    "eps": ("float", "denominator epsilon"),
    "eps_style": ("str", "eps added to the bias-corrected sqrt(V) ('torch') or to the raw sqrt(V) ('hf')"),
    "bias_correction": ("bool", "Adam's bias corrections"),
    "momentum": ("float", "mu, momentum coefficient"),
    "dampening": ("float", "momentum buffer M <- mu M + (1 - dampening) G"),
    "nesterov": ("bool", "Nesterov look-ahead mu M + (1 - dampening) G as the direction"),
    "nesterov_overwrite": ("bool", "store the Nesterov mix in the buffer (SUMO code)"),
    "momentum_init": ("str", "first momentum buffer: 'zero' (papers) or 'grad' (torch.optim.SGD)"),
    "polar_method": ("str", "exact polar factor by 'svd' or by the float64 'gram' eigensystem"),
    "limiter": ("float | None", "gamma of the norm-growth limiter ||O_t|| <= gamma ||O_{t-1}||"),
    "ns_steps": ("int", "Newton-Schulz iterations"),
    "ns_coeffs": ("str | tuple", "Newton-Schulz coefficients: 'muon', 'cubic', a tuple or per-step tuples"),
    "ns_normalize": ("str", "Newton-Schulz input scaling: 'frobenius' or 'spectral'"),
    "ns_dtype": ("str | None", "Newton-Schulz precision (None: the update's)"),
    "subset": ("str | int", "Subset-Norm subsets: 'heuristic' (one per index of the larger side) or a chunk size"),
    "subset_reduce": ("str", "Subset-Norm statistic: 'sum' or 'mean' of the squares"),
}


def stages(cfg: dict) -> frozenset[str]:
    """The stages a group config runs, as ``READS`` names them (missing keys take ``GROUP_DEFAULTS``).

    ``projected``: any projector; ``refreshed``: one that is redrawn every ``update_gap`` steps (svd, rsvd,
    stiefel, a callable); ``random``: a uniform Stiefel basis can be drawn (stiefel, or ``random_after`` set);
    ``orthogonalized``: any orthogonalizer; ``matrix``: the low-rank (matrix) rule, not the dense one.
    """
    cfg = {**GROUP_DEFAULTS, **cfg}
    out = {"every", f"base={cfg['base']}", f"state_bits={cfg['state_bits']}"}
    if not cfg["low_rank"]:
        return frozenset(out)
    proj = "callable" if callable(cfg["projector"]) else cfg["projector"]
    out |= {"matrix", f"projector={proj}", f"orthogonalizer={cfg['orthogonalizer']}",
            f"preconditioner={cfg['preconditioner']}"}
    if proj != "none":
        out.add("projected")
    if proj in ("svd", "rsvd", "stiefel", "callable"):
        out |= {"refreshed", f"moment_on_refresh={cfg['moment_on_refresh']}"}
        if proj == "stiefel" or cfg["random_after"] is not None:
            out.add("random")
    if proj == "online-pca":
        out.add(f"pca_lr_rule={cfg['pca_lr_rule']}")
    if cfg["orthogonalizer"] != "none":
        out.add("orthogonalized")
    return frozenset(out)


def reads(cfg: dict) -> frozenset[str]:
    """The keys a group with this config reads (every other key has no effect on it)."""
    active = stages(cfg)
    return frozenset(k for k, when in READS.items() if active.intersection(when))


def dense_rule(low: dict, dense: dict | None = None) -> dict:
    """The dense rule that goes with the low-rank rule ``low``: ``GROUP_DEFAULTS``, then every key both rules read
    taken from ``low`` (lr, decay, Adam's betas and eps, ...; never ``base``), then ``dense``."""
    own = {**GROUP_DEFAULTS, **(dense or {}), "low_rank": False}
    shared = (reads(own) & reads({**GROUP_DEFAULTS, **low})) - {"base", "low_rank"}
    return {**own, **{k: low[k] for k in shared if k in low}, **(dense or {}), "low_rank": False}


def _fail(key, value, allowed):
    raise ValueError(f"{key}={value!r} is invalid; allowed: {allowed}")


def _number(key, value, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)
    if integer:
        ok = ok and float(value).is_integer()
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        kind = "an integer" if integer else "a finite number"
        lo_s = "" if lo is None else (f" > {lo}" if lo_open else f" >= {lo}")
        hi_s = "" if hi is None else (f" < {hi}" if hi_open else f" <= {hi}")
        _fail(key, value, f"{kind}{lo_s}{(' and' if lo_s and hi_s else '')}{hi_s}")


def validate_group(group: dict) -> dict:
    """Check every known key of ``group`` (in place) and return it; unknown keys are rejected."""
    known = set(GROUP_DEFAULTS) | {"params", "param_names", "initial_lr"}
    unknown = sorted(set(group) - known)
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {unknown}; allowed: {sorted(GROUP_DEFAULTS)}")
    for key, allowed in CHOICES.items():
        if key in group and group[key] not in allowed and not (key == "projector" and callable(group[key])):
            _fail(key, group[key], list(allowed) + (["a callable fn(A, r, t) -> Q"] if key == "projector" else []))
    if group.get("low_rank") is False and group.get("base", GROUP_DEFAULTS["base"]) not in DENSE_BASES:
        _fail("base", group["base"], f"{list(DENSE_BASES)} in a dense group (low_rank=False)")
    for key in ("lr", "weight_decay", "eps", "scale", "complement_scale", "pca_orth", "pca_lr_ratio"):
        if key in group:
            _number(key, group[key], lo=0.0)
    for key in ("pca_weight_decay", "fixed_lr"):
        if group.get(key) is not None:
            _number(key, group[key], lo=0.0)
    for key in ("rank", "update_gap", "state_block"):
        if key in group:
            _number(key, group[key], lo=1, integer=True)
    for key in ("oversample", "power_iters"):
        if key in group:
            _number(key, group[key], lo=0, integer=True)
    if group.get("random_after") is not None:
        _number("random_after", group["random_after"], lo=0, integer=True)
    if "betas" in group:
        b = group["betas"]
        if not (isinstance(b, (tuple, list)) and len(b) == 2):
            _fail("betas", b, "a pair (beta1, beta2) with each in [0, 1)")
        for i, v in enumerate(b):
            _number(f"betas[{i}]", v, lo=0.0, hi=1.0, hi_open=True)
    for key in ("momentum", "dampening"):
        if key in group:
            _number(key, group[key], lo=0.0, hi=1.0, hi_open=(key == "momentum"))
    if group.get("limiter") is not None:
        _number("limiter", group["limiter"], lo=1.0, lo_open=True)
    if "ns_steps" in group:
        _number("ns_steps", group["ns_steps"], lo=0, integer=True)
    if "ns_coeffs" in group:
        if isinstance(group["ns_coeffs"], str) and group["ns_coeffs"] not in COEFFICIENTS:
            _fail("ns_coeffs", group["ns_coeffs"], f"{sorted(COEFFICIENTS)}, a tuple (a, b[, c]) or per-step tuples")
        resolve_schedule(group["ns_coeffs"], int(group.get("ns_steps", GROUP_DEFAULTS["ns_steps"])))
    subset = group.get("subset", "heuristic")
    if subset != "heuristic":
        _number("subset", subset, lo=1, integer=True)
    for key in ("bias_correction", "nesterov", "nesterov_overwrite", "low_rank", "refresh_stagger"):
        if key in group and not isinstance(group[key], bool):
            _fail(key, group[key], "True or False")
    return group
