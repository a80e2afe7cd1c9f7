"""Named methods: each preset is a set of stage choices for the low-rank group and for the dense group.

``make(name, params, **hparams)`` builds a :class:`SubspaceOptimizer`. Every preset follows its paper's algorithm by
default; ``mode="official"`` switches to the official code's behaviour where the two differ (documented per preset,
see ``../shared/reference/reference-implementations.md``; in that mode top-r subspaces come from a thin SVD as
in every official code, otherwise from the cheaper Gram eigendecomposition, which spans the same subspace). Any group key of ``subspace.config.GROUP_DEFAULTS`` may be
overridden by a keyword; ``dense_lr``, ``dense_betas``, ``dense_eps`` and ``dense_weight_decay`` tune the dense group.

State-size formulas are per parameter, counted in elements of the state tensors, for W of shape m x n with
k = min(m, n), l = max(m, n) (the projected and the other side when ``side`` forces one) and r = min(rank, m, n). Dense parameters (and any parameter of a dense group) hold Adam's
two moments: 2 * numel. Scalars (step counters, the limiter's previous norm) are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .config import GROUP_DEFAULTS
from .optimizer import SubspaceOptimizer

__all__ = ["PRESETS", "available", "make", "state_numel", "Preset"]

_OPTIMIZER_KEYS = ("seed", "nonfinite")
_DENSE_KEYS = ("dense_lr", "dense_betas", "dense_eps", "dense_weight_decay")


@dataclass(frozen=True)
class Preset:
    name: str
    doc: str
    low_rank: dict          # stage choices of the low-rank (matrix) group, paper defaults
    official: dict          # overrides that reproduce the official code
    dense: dict             # dense-group rule (Adam flavour)
    state: Callable[[int, int, int, dict], int]   # (m, n, r, cfg) -> state elements of one matrix parameter


PRESETS: dict[str, Preset] = {}

_HF_ADAM = dict(eps=1e-6, eps_style="hf")


def _register(name, doc, low_rank, state, official=None, dense=None):
    PRESETS[name] = Preset(name, doc.strip(), low_rank, official or {}, dense or {}, state)


def _kl(m, n, cfg):
    """(k, l): the projected side and the other one (``side`` may force the larger side to be projected)."""
    side = cfg.get("side", "auto")
    if side == "auto":
        return min(m, n), max(m, n)
    return (m, n) if side == "left" else (n, m)


def _adam_state(m, n, r, cfg):
    k, l = _kl(m, n, cfg)
    return k * r + 2 * r * l


def _momentum_state(m, n, r, cfg):
    k, l = _kl(m, n, cfg)
    return k * r + r * l


def _sn_numel(m, n, cfg):
    if cfg["subset"] == "heuristic":
        return max(m, n)
    numel, k = m * n, int(cfg["subset"])
    return numel // max(d for d in range(1, min(k, numel) + 1) if numel % d == 0)


_register("adamw", """
AdamW (Loshchilov & Hutter 2019; torch.optim.AdamW semantics), the full-rank baseline.
    M <- b1 M + (1-b1) G;  V <- b2 V + (1-b2) G^2;  W <- W (1 - lr wd) - lr (M/bc1) / (sqrt(V/bc2) + eps).
State: 2 m n.
""", dict(projector="none", base="adam", weight_decay=0.01, wd_order="before"),
    state=lambda m, n, r, cfg: 2 * m * n, dense=dict(weight_decay=0.01, wd_order="before"))

_register("galore", """
GaLore-Adam (Zhao et al. 2024, Alg. 2; §4): every T steps Q <- top-r singular vectors of G (smaller side);
    R = Q^T G;  M, V <- Adam moments of R;  N = M_hat / (sqrt(V_hat) + eps);  W <- W - lr * alpha * Q N.
Moments are kept unchanged when Q changes (paper and code). Paper defaults: alpha = 0.25, T = 200, eps = 1e-8.
official: HF-style eps 1e-6 on the un-corrected sqrt(V) (galore-torch 1.0 GaLoreAdamW); refresh at 0, T, 2T in both.
State: k r + 2 r l  (paper Table 1: m r + 2 n r for m <= n).
""", dict(projector="svd", base="adam", scale=0.25, moment_on_refresh="keep"),
    official=dict(_HF_ADAM), dense=dict(), state=_adam_state)

_register("golore", """
GoLore-Adam (He et al. 2025, Alg. 1 with random projections; §4): like GaLore, but Q ~ Uniform(St(k, r)) (QR of a
Gaussian with the sign fix), and the first moment is transported M <- Q_new^T Q_old M at every refresh (momentum
projection). GoLore@x%: SVD bases for the first (1-x) of ``total_steps``, random ones after
(``golore_fraction=x``, default 1.0 = pure GoLore; needs ``total_steps`` when 0 < x < 1).
official: the code's transport is lost to a rebinding bug (reference §3.1), i.e. moments kept; HF eps 1e-6.
State: k r + 2 r l.
""", dict(projector="svd", base="adam", moment_on_refresh="transport"),
    official=dict(moment_on_refresh="keep", **_HF_ADAM), state=_adam_state)

_register("galore-sgdm", """
GaLore with momentum SGD as the subspace optimizer (GoLore paper's framework, Alg. 1 with MSGD and momentum
projection; the object of Theorems 1-3): Q <- top-r singular vectors of G every T steps,
    M <- Q_new^T Q_old M at refresh;  M <- mu M + Q^T G;  W <- W - lr * alpha * Q M.
Deterministic gradients give Thm 2's setting, large batches Thm 3's. State: k r + r l.
""", dict(projector="svd", base="momentum", momentum=0.9, dampening=0.0, moment_on_refresh="transport"),
    state=_momentum_state)

_register("golore-sgdm", """
GoLore with momentum SGD (He et al. 2025, Thm 4): Q ~ Uniform(St(k, r)) every T steps, momentum projection,
    M <- mu M + Q^T G;  W <- W - lr * alpha * Q M.   ``golore_fraction`` as for ``golore``. State: k r + r l.
official: momentum not transported (the code's rebinding bug), torch SGD dampening 0.9 as in its torchrun_main.
""", dict(projector="svd", base="momentum", momentum=0.9, dampening=0.0, moment_on_refresh="transport"),
    official=dict(moment_on_refresh="keep", dampening=0.9), state=_momentum_state)

_register("sumo", """
SUMO with exact SVD orthogonalization (Refael et al. 2025, Alg. 1; §3): every K steps Q <- truncated randomized SVD
of G (Halko; ``oversample``, ``power_iters``), M <- Q_new^T Q_old M (block 1.1);
    G_hat = Q^T G;  M <- mu M + G_hat (no 1-mu);  O = U V^T of M (exact polar factor, SVD in float32+);
    norm-growth limiter: if ||O|| > gamma ||O_prev||, O <- gamma ||O_prev|| O/||O||  (gamma = 1.1);
    W <- W - lr (Q O + s_perp (I - Q Q^T) G) - lr wd W   (block 4, s_perp = ``complement_scale`` = 1).
official (RandalW7/SUMO_optimizer): exact SVD projector, refresh at 1, K, 2K, Nesterov mix stored in the buffer
(effective momentum mu^2), no transport, update scaled by alpha = 4 and 0.2 sqrt(max(m, n)), decay after the update.
State: k r + r l  (paper Table 1: n r + m r).
""", dict(projector="rsvd", base="momentum", momentum=0.95, dampening=0.0, orthogonalizer="polar", limiter=1.1,
          complement_scale=1.0, moment_on_refresh="transport", wd_order="before"),
    official=dict(projector="svd", refresh_index="one", nesterov=True, nesterov_overwrite=True,
                  moment_on_refresh="keep", scale=4.0, shape_scale="moonlight", weight_decay=0.01,
                  wd_order="after", **_HF_ADAM),
    state=_momentum_state)

_register("sumo-ns5", """
SUMO with Newton–Schulz orthogonalization (Refael et al. 2025, §3 and Table 2 "SUMO NS5"): as ``sumo`` with
O = five steps of Muon's quintic (3.4445, -4.7750, 2.0315) on M / ||M||_F instead of the exact U V^T.
State: k r + r l.
""", dict(projector="rsvd", base="momentum", momentum=0.95, dampening=0.0, orthogonalizer="newton-schulz",
          ns_steps=5, ns_coeffs="muon", limiter=1.1, complement_scale=1.0, moment_on_refresh="transport",
          wd_order="before"),
    official=dict(projector="svd", refresh_index="one", nesterov=True, nesterov_overwrite=True,
                  moment_on_refresh="keep", scale=4.0, shape_scale="moonlight", weight_decay=0.01,
                  wd_order="after", ns_dtype="bfloat16", **_HF_ADAM),
    state=_momentum_state)

_register("muon", """
Muon (Jordan et al. 2024, KellerJordan/Muon muon.py): full rank, no projector.
    M <- beta M + (1-beta) G;  U = (1-beta) G + beta M (Nesterov);  O = NS5(U) (quintic, Frobenius-normalised);
    W <- W (1 - lr wd) - lr sqrt(max(1, m/n)) O.   Defaults lr 0.02, beta 0.95.
Dense group: Adam with betas (0.9, 0.95), eps 1e-10, lr 3e-4 (the code's auxiliary AdamW).
official: Newton–Schulz in bfloat16 as the code does (default: the parameter's dtype, float32 or better).
State: m n.
""", dict(projector="none", base="momentum", momentum=0.95, dampening=0.95, nesterov=True,
          orthogonalizer="newton-schulz", ns_steps=5, ns_coeffs="muon", shape_scale="muon", wd_order="before",
          lr=0.02, betas=(0.9, 0.95), eps=1e-10),
    official=dict(ns_dtype="bfloat16"),
    dense=dict(lr=3e-4, betas=(0.9, 0.95), eps=1e-10, wd_order="before"),
    state=lambda m, n, r, cfg: m * n)

_register("osd", """
Online Subspace Descent with Adam (Liang et al. 2024, Alg. 1, eq. 6): P (k x r) starts at the top-r singular
vectors of the first gradient and then takes one AdamW step per iteration on the online-PCA loss
    L(P) = ||P P^T G~ - G~||_F^2 + lambda ||P^T P - I||_F^2,  G~ = G/||G||_F   (lambda = ``pca_orth`` = 0.1),
with lr_P = alpha lr_W (alpha = ``pca_lr_ratio`` = 5) and decay lambda^P = lambda^W, after the weight step
(one-step lag). Weights: R = P^T G, Adam moments of R (kept as P drifts), W <- W - lr P N.
official (kyleliang919 code): no orthogonality term, lr_P = (1/T) lr_t/lr_peak (``pca_lr_rule="gap"``), AdamW
decay 0.01 on P, HF eps 1e-6 for the weights.
State: k r (P) + 2 k r (P's Adam moments) + 2 r l = 3 k r + 2 r l.
""", dict(projector="online-pca", base="adam", moment_on_refresh="keep"),
    official=dict(pca_orth=0.0, pca_lr_rule="gap", pca_weight_decay=0.01, **_HF_ADAM),
    state=lambda m, n, r, cfg: 3 * _kl(m, n, cfg)[0] * r + 2 * r * _kl(m, n, cfg)[1])

_register("adam-sn", """
Adam with the Subset-Norm second moment (Nguyen & Nguyen 2025, §3; paper-claims §4.1):
    M <- b1 M + (1-b1) G;  V_i <- b2 V_i + (1-b2) ||G_{Psi_i}||^2 (one scalar per subset);
    W <- W - lr (M / (sqrt(V_psi(j)) + eps)) sqrt(bc2)/bc1.
Subsets: ``subset="heuristic"`` = one per index of the larger dimension, spanning the smaller (the code's
recommended mode), or an integer size of contiguous chunks. ||.||^2 is a sum (``subset_reduce="sum"``, paper and
code; steps are ~1/sqrt(min(m,n)) of Adam's, hence lr ~10x Adam's). eps 1e-6 on the un-corrected root (code).
State: m n + (number of subsets) = m n + max(m, n) with the heuristic.
""", dict(projector="none", base="ema", preconditioner="subset-norm", **_HF_ADAM),
    dense=dict(_HF_ADAM), state=lambda m, n, r, cfg: m * n + _sn_numel(m, n, cfg))

_register("adam-snsm", """
Adam-SN with Subspace-Momentum (Nguyen & Nguyen 2025; paper-claims §4.2): Q <- top-r singular vectors of G every T
steps (1-indexed refresh as in the code), momentum reset to zero at each refresh;
    M <- b1 M + (1-b1) Q^T G;   numerator = Q M + (G - Q Q^T G)  (raw complement gradient, no momentum);
    W <- W - lr * numerator / (sqrt(V_sn) + eps) * sqrt(bc2)/bc1, V_sn the Subset-Norm statistic of the full G.
Not reproduced: the code's off-by-one that uses the stale momentum once on each refresh step (§6.4).
State: k r + r l + max(m, n).
""", dict(projector="svd", base="ema", complement_scale=1.0, preconditioner="subset-norm",
          moment_on_refresh="reset", refresh_index="one", **_HF_ADAM),
    dense=dict(_HF_ADAM), state=lambda m, n, r, cfg: _momentum_state(m, n, r, cfg) + _sn_numel(m, n, cfg))


def available() -> list[str]:
    """Names accepted by :func:`make`."""
    return sorted(PRESETS)


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"name={name!r} is not a known optimizer; allowed: {available()}")
    return PRESETS[name]


def _configs(name: str, mode: str, hparams: dict) -> tuple[dict, dict]:
    """(low-rank group config, dense group config) after applying mode and user overrides."""
    if mode not in ("paper", "official"):
        raise ValueError(f"mode={mode!r} is invalid; allowed: ['paper', 'official']")
    preset = _preset(name)
    hp = dict(hparams)
    fraction, total = hp.pop("golore_fraction", None), hp.pop("total_steps", None)
    dense_over = {k[len("dense_"):]: hp.pop(k) for k in _DENSE_KEYS if k in hp}
    # every code calls linalg.svd and keeps its signs
    official = {"svd_driver": "svd", "basis_signs": "decomposition", **preset.official} if mode == "official" else {}
    low = {**GROUP_DEFAULTS, **preset.low_rank, **official}
    unknown = sorted(set(hp) - set(GROUP_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {unknown} for {name!r}; allowed: "
                         f"{sorted(set(GROUP_DEFAULTS) | set(_DENSE_KEYS) | {'seed', 'nonfinite', 'mode'})}"
                         + ("; golore_fraction, total_steps" if name.startswith("golore") else ""))
    low.update(hp)
    if name.startswith("golore"):
        low["random_after"] = _random_after(fraction, total)
    elif fraction is not None or total is not None:
        raise ValueError(f"golore_fraction/total_steps apply to golore presets only, not {name!r}")
    dense = {**GROUP_DEFAULTS, "lr": low["lr"], "weight_decay": low["weight_decay"], "wd_order": low["wd_order"],
             "betas": low["betas"], "eps": low["eps"], "eps_style": low["eps_style"], "state_dtype": low["state_dtype"],
             **preset.dense, **dense_over, "low_rank": False}
    return low, dense


def _random_after(fraction, total):
    """GoLore@x%: random projections from step round((1 - x) * total_steps) on (He et al. 2025, §5)."""
    x = 1.0 if fraction is None else fraction
    if not isinstance(x, (int, float)) or not 0.0 <= x <= 1.0:
        raise ValueError(f"golore_fraction={fraction!r} is invalid; allowed: a number in [0, 1]")
    if x == 1.0:
        return 0
    if x == 0.0:
        return None
    if not isinstance(total, int) or total < 1:
        raise ValueError(f"total_steps={total!r} is invalid; allowed: a positive int (needed when 0 < golore_fraction < 1)")
    return int(round((1.0 - x) * total))


def _split(params) -> list[dict]:
    """Normalise params into groups: dict groups pass through; plain tensors (or (name, tensor) pairs) are split
    into a low-rank group (ndim >= 2) and a dense group (ndim < 2)."""
    params = list(params)
    if not params:
        raise ValueError("params is empty; pass model.parameters(), named parameters or parameter groups")
    if isinstance(params[0], dict):
        return [dict(g) for g in params]
    named = isinstance(params[0], tuple)
    low, dense = [], []
    for item in params:
        p = item[1] if named else item
        (low if p.ndim >= 2 else dense).append(item)
    return [g for g in ({"params": low, "low_rank": True}, {"params": dense, "low_rank": False}) if g["params"]]


def make(name: str, params, *, mode: str = "paper", seed: int = 0, nonfinite: str = "raise",
         **hparams) -> SubspaceOptimizer:
    """Build the named optimizer on ``params`` (tensors, (name, tensor) pairs, or parameter-group dicts).

    A group dict with ``"low_rank": False`` gets the preset's dense rule (Adam); keys inside a group dict override
    the preset for that group. ``seed`` seeds the optimizer's generator (random projections, randomized SVD).
    See ``PRESETS[name].doc`` (also ``help(subspace.presets)``) for each method's equations and state size.
    """
    low, dense = _configs(name, mode, hparams)
    groups = []
    for g in _split(params):
        base = low if g.get("low_rank", True) else dense
        groups.append({**base, **g})
    return SubspaceOptimizer(groups, low, seed=seed, nonfinite=nonfinite)


def state_numel(name: str, shape, low_rank: bool = True, mode: str = "paper", **hparams) -> int:
    """State elements the preset keeps for one parameter of ``shape`` (the docstring formula, no allocation)."""
    low, _ = _configs(name, mode, hparams)
    shape = tuple(int(s) for s in shape)
    if not low_rank or len(shape) < 2 or (len(shape) > 2 and low["nd_rule"] == "dense"):
        numel = 1
        for s in shape:
            numel *= s
        return 2 * numel
    m = shape[0]
    n = 1
    for s in shape[1:]:
        n *= s
    r = min(int(low["rank"]), m, n)
    return PRESETS[name].state(m, n, r, low)
