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

__all__ = ["CHOICES", "DTYPES", "GROUP_DEFAULTS", "READS", "DENSE_BASES", "stages", "reads", "validate_group"]

#: The precisions a user may name (``state_dtype``, ``ns_dtype``, the probes' ``--dtype``).
DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}

#: Keys whose value is one of a fixed set of names.
CHOICES: dict[str, tuple] = {
    # stage 1: projector (which r-dimensional subspace of the smaller side); also a callable fn(A, r, t) -> Q
    "projector": ("none", "svd", "rsvd", "stiefel", "online-pca"),
    "stiefel_method": ("qr", "polar"),          # uniform on St(k, r): QR of a Gaussian with the sign fix, or Z (Z^T Z)^(-1/2)
    "svd_driver": ("gram", "svd"),              # top-r subspace from eigh of the k x k Gram (float64) or a thin SVD
    "basis_signs": ("aligned", "decomposition"),  # new columns' signs aligned with the previous basis, or as found
    "side": ("auto", "left", "right"),         # project the smaller side (GaLore's rule) or force one side
    "refresh_index": ("zero", "one"),            # refresh at steps 0, T, 2T (papers) or 1, T, 2T (1-indexed codes)
    # keep / transport M <- Q_new^T Q_old M / reset to zero; "transport-step": the refresh step uses the transported
    # moment, the stored one stays untransported (GoLore code); "reset-after": the refresh step uses the old moment,
    # then the stored one is zeroed (SN-SM code)
    "moment_on_refresh": ("keep", "transport", "reset", "transport-step", "reset-after"),
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
}

#: Every group key with its default (the neutral value: plain Adam on the full matrix).
GROUP_DEFAULTS: dict = {
    "lr": 1e-3, "fixed_lr": None, "weight_decay": 0.0, "wd_order": "after",
    "projector": "none", "side": "auto", "rank": 128, "update_gap": 200, "refresh_index": "zero", "refresh_stagger": False,
    "svd_driver": "gram", "basis_signs": "aligned", "random_after": None, "stiefel_method": "qr",
    "oversample": 5, "power_iters": 2, "moment_on_refresh": "keep",
    "pca_lr_rule": "ratio", "pca_lr_ratio": 5.0, "pca_orth": 0.1, "pca_weight_decay": None,
    "base": "adam", "betas": (0.9, 0.999), "eps": 1e-8, "eps_style": "torch", "bias_correction": True,
    "momentum": 0.9, "dampening": 0.0, "nesterov": False, "nesterov_overwrite": False, "momentum_init": "zero",
    "orthogonalizer": "none", "polar_method": "svd", "ns_steps": 5, "ns_coeffs": "muon", "ns_normalize": "frobenius", "ns_dtype": None,
    "limiter": None, "complement_scale": 0.0,
    "preconditioner": "none", "subset": "heuristic", "subset_reduce": "sum",
    "scale": 1.0, "shape_scale": "none", "nd_rule": "reshape", "state_dtype": None,
    "low_rank": True,
}

#: Base updates the dense rule may run.
DENSE_BASES = ("adam", "momentum")

#: When each key is read: the stages (``stages``) under any of which a group reads it.
READS: dict[str, tuple[str, ...]] = {
    # every rule (``fixed_lr``: when set, the step uses it instead of ``lr``, which LR schedulers edit)
    "lr": ("every",), "fixed_lr": ("every",), "weight_decay": ("every",), "wd_order": ("every",),
    "state_dtype": ("every",), "low_rank": ("every",), "base": ("every",),
    # the matrix rule: its stage choices and outer step
    "projector": ("matrix",), "orthogonalizer": ("matrix",), "preconditioner": ("matrix",),
    "scale": ("matrix",), "shape_scale": ("matrix",), "nd_rule": ("matrix",),
    # stage 1: projector
    "rank": ("projected",), "side": ("projected",), "complement_scale": ("projected",),
    "svd_driver": ("projector=svd", "projector=online-pca"), "basis_signs": ("projector=svd", "projector=rsvd"),
    "update_gap": ("refreshed", "pca_lr_rule=gap"), "refresh_index": ("refreshed",),
    "refresh_stagger": ("refreshed",), "moment_on_refresh": ("refreshed",), "random_after": ("refreshed",),
    "stiefel_method": ("random",),
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


def stages(cfg: dict) -> frozenset[str]:
    """The stages a group config runs, as ``READS`` names them (missing keys take ``GROUP_DEFAULTS``).

    ``projected``: any projector; ``refreshed``: one that is redrawn every ``update_gap`` steps (svd, rsvd,
    stiefel, a callable); ``random``: a uniform Stiefel basis can be drawn (stiefel, or ``random_after`` set);
    ``orthogonalized``: any orthogonalizer; ``matrix``: the low-rank (matrix) rule, not the dense one.
    """
    cfg = {**GROUP_DEFAULTS, **cfg}
    out = {"every", f"base={cfg['base']}"}
    if not cfg["low_rank"]:
        return frozenset(out)
    proj = "callable" if callable(cfg["projector"]) else cfg["projector"]
    out |= {"matrix", f"projector={proj}", f"orthogonalizer={cfg['orthogonalizer']}",
            f"preconditioner={cfg['preconditioner']}"}
    if proj != "none":
        out.add("projected")
    if proj in ("svd", "rsvd", "stiefel", "callable"):
        out.add("refreshed")
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
    for key in ("rank", "update_gap"):
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
