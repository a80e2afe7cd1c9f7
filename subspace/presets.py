"""Named methods: each preset is a set of stage choices for the low-rank rule and for the dense rule.

Every preset has a typed constructor (``GaLore``, ``SUMO``, ...; ``CONSTRUCTORS[name]``) whose signature lists the
keys the preset reads with its defaults, and whose docstring states the update, its source, the state size and
each difference of ``mode="official"`` (the official code's behaviour, see
``../shared/reference/reference-implementations.md``; in that mode top-r subspaces come from a thin SVD with the
decomposition's own signs, as in every official code). ``make(name, params, **hparams)`` dispatches to them.

Keys (``subspace.config.GROUP_DEFAULTS``) apply to every rule that reads them (``subspace.config.READS``): a
preset's dense defaults hold only where the user passed nothing. ``base`` chooses the low-rank rule's base update;
``dense_<key>`` sets a key of the dense rule only (``dense_lr``, ``dense_base``, ...). A key that no rule of the
preset reads, once the user's stage choices are applied (``projector="rsvd"`` makes ``oversample`` readable), raises
ValueError naming it and listing what the preset accepts.

State-size formulas are per parameter, counted in elements of the state tensors, for W of shape m x n with
k = min(m, n), l = max(m, n) (the projected and the other side when ``side`` forces one) and r = min(rank, m, n).
Dense parameters (and any parameter of a dense group) hold Adam's two moments, 2 * numel (momentum SGD: numel).
Scalars (step counters, the limiter's previous norm) are not counted. Bytes (``state_bytes``) are elements x s, the
state's element size, except with ``state_bits=8``: each moment of the base update (M, and V for Adam; r l elements
under a projector, m n without one, numel for a dense parameter) then takes q(E) = E + 4 ceil(E / B) bytes
(uint8 codes and one float32 scale per block of B = ``state_block`` elements, ``subspace.quantize``); bases and
the other statistics keep s bytes per element. Each preset's "8-bit" line below is that formula.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

from .config import GROUP_DEFAULTS, KEY_DOCS, dense_rule, reads, validate_group
from .groups import as_groups
from .optimizer import SubspaceOptimizer
from .quantize import moment_bytes

__all__ = ["PRESETS", "CONSTRUCTORS", "available", "make", "state_numel", "state_bytes", "moment_numel", "Preset", "PresetOptimizer"]

#: Official codes all call torch.linalg.svd and keep its signs (applied where the rule reads the key).
_OFFICIAL_ALL = {"svd_driver": "svd", "basis_signs": "decomposition"}
#: Preset options that are not group keys: GoLore@x% (``Preset.random_fraction``).
_FRACTION_KEYS = ("golore_fraction", "total_steps")


@dataclass(frozen=True)
class Preset:
    """A named method: stage choices of the low-rank rule and the dense rule, in paper and official mode."""
    name: str
    constructor: str        # the typed constructor's name
    doc: str                # equations, source, state size, official-mode differences
    low_rank: dict          # low-rank rule, paper mode
    state: Callable[[int, int, int, dict], int]   # (m, n, r, cfg) -> state elements of one matrix parameter
    official: dict = field(default_factory=dict)        # low-rank overrides of mode="official"
    dense: dict = field(default_factory=dict)           # dense rule beyond what it takes from the low-rank rule
    official_dense: dict = field(default_factory=dict)  # dense overrides of mode="official"
    random_fraction: bool = False   # accepts golore_fraction / total_steps (GoLore@x%)

    def configs(self, mode: str = "paper") -> tuple[dict, dict]:
        """(low-rank rule, dense rule) of this preset in ``mode``, before any user key."""
        _check_mode(mode)
        low = {**GROUP_DEFAULTS, **self.low_rank}
        if mode == "official":
            low.update(self.official)
            low.update({k: v for k, v in _OFFICIAL_ALL.items() if k in reads(low) and k not in self.official})
        dense = dense_rule(low, {**self.dense, **(self.official_dense if mode == "official" else {})})
        return low, dense

    def accepts(self, mode: str = "paper") -> frozenset[str]:
        """The keywords ``make`` takes for this preset with its own stage choices (a stage change may add more)."""
        low, dense = self.configs(mode)
        options = set(_FRACTION_KEYS) if self.random_fraction else set()
        return frozenset((reads(low) | reads(dense) | {f"dense_{k}" for k in reads(dense)} | options)
                         - {"low_rank", "dense_low_rank"})


PRESETS: dict[str, Preset] = {}

_HF_ADAM = dict(eps=1e-6, eps_style="hf")
#: The momentum SGD of the GoLore repository's scripts (torchrun_main.py: momentum 0.9, dampening 0.9; the SGD
#: classes apply no weight decay and start the buffer at the gradient, torch's convention).
_GOLORE_SGD = dict(momentum=0.9, dampening=0.9, momentum_init="grad", weight_decay=0.0)


def _register(name, constructor, doc, low_rank, state, **fields):
    PRESETS[name] = Preset(name, constructor, doc.strip(), low_rank, state, **fields)


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


_register("adamw", "AdamW", """
AdamW (Loshchilov & Hutter 2019; torch.optim.AdamW semantics), the full-rank baseline.
    M <- b1 M + (1-b1) G;  V <- b2 V + (1-b2) G^2;  W <- W (1 - lr wd) - lr (M/bc1) / (sqrt(V/bc2) + eps).
State: 2 m n.  8-bit: 2 q(m n) bytes.
""", dict(projector="none", base="adam", weight_decay=0.01, wd_order="before"),
    state=lambda m, n, r, cfg: 2 * m * n)

_register("galore", "GaLore", """
GaLore-Adam (Zhao et al. 2024, Alg. 2; §4): every T steps Q <- top-r singular vectors of G (smaller side);
    R = Q^T G;  M, V <- Adam moments of R;  N = M_hat / (sqrt(V_hat) + eps);  W <- W - lr * alpha * Q N.
Moments are kept unchanged when Q changes (paper and code). Paper defaults: alpha = 0.25, T = 200, eps = 1e-8.
official: HF-style eps 1e-6 on the un-corrected sqrt(V) (galore-torch 1.0 GaLoreAdamW); refresh at 0, T, 2T in both.
State: k r + 2 r l  (paper Table 1: m r + 2 n r for m <= n).  8-bit: k r s + 2 q(r l) bytes.
""", dict(projector="svd", base="adam", scale=0.25, moment_on_refresh="keep"),
    official=dict(_HF_ADAM), state=_adam_state)

_register("golore", "GoLore", """
GoLore-Adam (He et al. 2025, Alg. 1 with random projections; §4): like GaLore, but Q ~ Uniform(St(k, r)) (QR of a
Gaussian with the sign fix), and the first moment is transported M <- Q_new^T Q_old M at every refresh (momentum
projection). GoLore@x%: SVD bases for the first (1-x) of ``total_steps``, random ones after
(``golore_fraction=x``, default 1.0 = pure GoLore; needs ``total_steps`` when 0 < x < 1).
official (pkumelon/Golore@7ee5a8a peft_pretraining/golore_torch/adamw.py): bases Z (Z^T Z)^(-1/2) of a Gaussian
(``stiefel_method="polar"``); at every refresh after the first (SVD or random) the step uses the transported first
moment once while the stored moment keeps its old coordinates without that step's gradient (the code's rebinding
bug, ``moment_on_refresh="transport-step"``); HF eps 1e-6; weight decay after the update; the bases of all
parameters come from one generator consumed in step order (``random_stream="shared"``, as the code's calls to
torch's global generator).
State: k r + 2 r l.  8-bit: k r s + 2 q(r l) bytes.
""", dict(projector="svd", base="adam", moment_on_refresh="transport", random_after=0),
    official=dict(moment_on_refresh="transport-step", stiefel_method="polar", wd_order="after",
                  random_stream="shared", **_HF_ADAM),
    random_fraction=True, state=_adam_state)

_register("galore-sgdm", "GaLoreSGDM", """
GaLore with momentum SGD as the subspace optimizer (GoLore paper's framework, Alg. 1 with MSGD and momentum
projection; the object of Theorems 1-3): Q <- top-r singular vectors of G every T steps,
    M <- Q_new^T Q_old M at refresh;  M <- mu M + Q^T G;  W <- W - lr * alpha * Q M.
Deterministic gradients give Thm 2's setting, large batches Thm 3's. State: k r + r l (8-bit: k r s + q(r l) bytes).
official (GoLore repository's GaLore SGD, pkumelon/Golore@7ee5a8a peft_pretraining/galore_torch/sgd.py with
torchrun_main.py's defaults): no momentum projection (moments kept), torch's SGD buffer
M <- mu M + (1 - dampening) R with dampening 0.9 and M_0 = R_0 (``momentum_init="grad"``), no weight decay (the
code applies none), and the dense parameters run the same momentum SGD.
""", dict(projector="svd", base="momentum", momentum=0.9, dampening=0.0, moment_on_refresh="transport"),
    official=dict(moment_on_refresh="keep", **_GOLORE_SGD), official_dense=dict(base="momentum"),
    state=_momentum_state)

_register("golore-sgdm", "GoLoreSGDM", """
GoLore with momentum SGD (He et al. 2025, Thm 4): Q ~ Uniform(St(k, r)) every T steps, momentum projection,
    M <- mu M + Q^T G;  W <- W - lr * alpha * Q M.   ``golore_fraction`` as for ``golore``. State: k r + r l (8-bit: k r s + q(r l)).
official (pkumelon/Golore@7ee5a8a peft_pretraining/golore_torch/sgd.py, torchrun_main.py's defaults): as
``galore-sgdm`` official (dampening 0.9, M_0 = R_0, no weight decay, momentum SGD on the dense parameters), with
bases Z (Z^T Z)^(-1/2) (``stiefel_method="polar"``) and the code's one-step transport at each refresh
(``moment_on_refresh="transport-step"``, as ``golore`` official).
""", dict(projector="svd", base="momentum", momentum=0.9, dampening=0.0, moment_on_refresh="transport",
          random_after=0),
    official=dict(moment_on_refresh="transport-step", transport_source="random-after-first", stiefel_method="polar",
                  random_stream="shared", **_GOLORE_SGD),
    official_dense=dict(base="momentum"), random_fraction=True, state=_momentum_state)

_SUMO_OFFICIAL_DOC = """
official (RandalW7/SUMO_optimizer@e57a99c4 optimizers_torch/sumo_optimizer.py): exact SVD projector, refresh at
1, K, 2K, Nesterov mix stored in the buffer (effective momentum mu^2), no transport, decay after the update, U V^T
by a float32 SVD (``sumo`` only; the code's SVD keeps rank-deficient directions that ours drops); only
Q O is scaled, by alpha = 4 and 0.2 sqrt(max(m, n)); the complement gradient gets alpha only. Dense parameters: the
code's Adam with a constant lr_adam = 1e-5 that no schedule reaches (``dense_fixed_lr``), no decay, HF eps 1e-6,
betas (0.9, 0.999).
"""
_SUMO_OFFICIAL = dict(projector="svd", refresh_index="one", nesterov=True, nesterov_overwrite=True,
                      moment_on_refresh="keep", scale=4.0, shape_scale="moonlight", weight_decay=0.01,
                      wd_order="after")
_SUMO_OFFICIAL_DENSE = dict(fixed_lr=1e-5, weight_decay=0.0, betas=(0.9, 0.999), **_HF_ADAM)

_register("sumo", "SUMO", """
SUMO with exact SVD orthogonalization (Refael et al. 2025, Alg. 1; §3): every K steps Q <- truncated randomized SVD
of G (Halko; ``oversample``, ``power_iters``), M <- Q_new^T Q_old M (block 1.1);
    G_hat = Q^T G;  M <- mu M + G_hat (no 1-mu);  O = U V^T of M (exact polar factor);
    norm-growth limiter: if ||O|| > gamma ||O_prev||, O <- gamma ||O_prev|| O/||O||  (gamma = 1.1);
    W <- W - lr (Q O + s_perp (I - Q Q^T) G) - lr wd W   (block 4, s_perp = ``complement_scale`` = 1).
U V^T comes from the float64 eigensystem of the r x r Gram M M^T (``polar_method="gram"``: round-off
~ eps64 kappa(M)^2, below a float32 SVD's eps32 kappa(M) for kappa < 5e8, and 2-3x faster on CPU); it drops
singular directions of M below sqrt(max(m, n) eps64) s1 (``polar_method="svd"``: below max(m, n) eps32 s1), where
the paper's U V^T keeps them at 1. ||U V^T||_F = sqrt(min(r, l)) is constant, so the limiter never acts on it.
""" + _SUMO_OFFICIAL_DOC + """
State: k r + r l  (paper Table 1: n r + m r).  8-bit: k r s + q(r l) bytes.
""", dict(projector="rsvd", base="momentum", momentum=0.95, dampening=0.0, orthogonalizer="polar", limiter=1.1,
          complement_scale=1.0, moment_on_refresh="transport", wd_order="before"),
    official=dict(_SUMO_OFFICIAL, polar_method="svd"), official_dense=_SUMO_OFFICIAL_DENSE, state=_momentum_state)

_register("sumo-ns5", "SUMONS5", """
SUMO with Newton–Schulz orthogonalization (Refael et al. 2025, §3 and Table 2 "SUMO NS5"): as ``sumo`` with
O = five steps of Muon's quintic (3.4445, -4.7750, 2.0315) on M / ||M||_F instead of the exact U V^T.
There is no released code for this variant: its official mode is a reconstruction, the ``sumo`` code's behaviour
with Muon's NS5 in bfloat16 in place of the SVD.
""" + _SUMO_OFFICIAL_DOC + """
State: k r + r l.  8-bit: k r s + q(r l) bytes.
""", dict(projector="rsvd", base="momentum", momentum=0.95, dampening=0.0, orthogonalizer="newton-schulz",
          ns_steps=5, ns_coeffs="muon", limiter=1.1, complement_scale=1.0, moment_on_refresh="transport",
          wd_order="before"),
    official=dict(_SUMO_OFFICIAL, ns_dtype="bfloat16"), official_dense=_SUMO_OFFICIAL_DENSE, state=_momentum_state)

_register("muon", "Muon", """
Muon (Jordan et al. 2024, KellerJordan/Muon muon.py): full rank, no projector.
    M <- beta M + (1-beta) G;  U = (1-beta) G + beta M (Nesterov);  O = NS5(U) (quintic, Frobenius-normalised);
    W <- W (1 - lr wd) - lr sqrt(max(1, m/n)) O.   Defaults lr 0.02, beta 0.95.
Dense group: Adam with betas (0.9, 0.95), eps 1e-10, lr 3e-4 (the code's auxiliary AdamW; ``lr`` given by the
user applies to both rules, ``dense_lr`` to this one only).
official: Newton–Schulz in bfloat16 as the code does (default: the parameter's dtype, float32 or better).
State: m n.  8-bit: q(m n) bytes.
""", dict(projector="none", base="momentum", momentum=0.95, dampening=0.95, nesterov=True,
          orthogonalizer="newton-schulz", ns_steps=5, ns_coeffs="muon", shape_scale="muon", wd_order="before",
          lr=0.02),
    official=dict(ns_dtype="bfloat16"), dense=dict(lr=3e-4, betas=(0.9, 0.95), eps=1e-10),
    state=lambda m, n, r, cfg: m * n)

_register("osd", "OSD", """
Online Subspace Descent with Adam (Liang et al. 2024, Alg. 1, eq. 6): P (k x r) starts at the top-r singular
vectors of the first gradient and then takes one AdamW step per iteration on the online-PCA loss
    L(P) = ||P P^T G~ - G~||_F^2 + lambda ||P^T P - I||_F^2,  G~ = G/||G||_F   (lambda = ``pca_orth`` = 0.1),
with lr_P = alpha lr_W (alpha = ``pca_lr_ratio`` = 5) and decay lambda^P = lambda^W, after the weight step
(one-step lag). Weights: R = P^T G, Adam moments of R (kept as P drifts), W <- W - lr P N.
official (kyleliang919 code): no orthogonality term, lr_P = (1/T) lr_t/lr_peak (``pca_lr_rule="gap"``), AdamW
decay 0.01 on P, HF eps 1e-6 for the weights.
State: k r (P) + 2 k r (P's Adam moments) + 2 r l = 3 k r + 2 r l.  8-bit: 3 k r s + 2 q(r l) bytes.
""", dict(projector="online-pca", base="adam"),
    official=dict(pca_orth=0.0, pca_lr_rule="gap", pca_weight_decay=0.01, **_HF_ADAM),
    state=lambda m, n, r, cfg: 3 * _kl(m, n, cfg)[0] * r + 2 * r * _kl(m, n, cfg)[1])

_register("adam-sn", "AdamSN", """
Adam with the Subset-Norm second moment (Nguyen & Nguyen 2025, §3; paper-claims §4.1):
    M <- b1 M + (1-b1) G;  V_i <- b2 V_i + (1-b2) ||G_{Psi_i}||^2 (one scalar per subset);
    W <- W - lr (M / (sqrt(V_psi(j)) + eps)) sqrt(bc2)/bc1.
Subsets: ``subset="heuristic"`` = one per index of the larger dimension, spanning the smaller (the code's
recommended mode), or an integer size of contiguous chunks. ||.||^2 is a sum (``subset_reduce="sum"``, paper and
code; steps are ~1/sqrt(min(m,n)) of Adam's, hence lr ~10x Adam's). eps 1e-6 on the un-corrected root (code).
State: m n + (number of subsets) = m n + max(m, n) with the heuristic.  8-bit: q(m n) + max(m, n) s bytes.
""", dict(projector="none", base="ema", preconditioner="subset-norm", **_HF_ADAM),
    state=lambda m, n, r, cfg: m * n + _sn_numel(m, n, cfg))

_register("adam-snsm", "AdamSNSM", """
Adam-SN with Subspace-Momentum (Nguyen & Nguyen 2025; paper-claims §4.2): Q <- top-r singular vectors of G every T
steps (1-indexed refresh as in the code), momentum reset to zero at each refresh;
    M <- b1 M + (1-b1) Q^T G;   numerator = Q M + (G - Q Q^T G)  (raw complement gradient, no momentum);
    W <- W - lr * numerator / (sqrt(V_sn) + eps) * sqrt(bc2)/bc1, V_sn the Subset-Norm statistic of the full G.
official (timmytonga/sn-sm subspace_momentum.py): the reset comes one step late: the refresh step still uses the
old momentum, then the stored momentum is zeroed (``moment_on_refresh="reset-after"``, reference §6.4).
State: k r + r l + max(m, n).  8-bit: (k r + max(m, n)) s + q(r l) bytes.
""", dict(projector="svd", base="ema", complement_scale=1.0, preconditioner="subset-norm",
          moment_on_refresh="reset", refresh_index="one", **_HF_ADAM),
    official=dict(moment_on_refresh="reset-after"), state=lambda m, n, r, cfg: _momentum_state(m, n, r, cfg) + _sn_numel(m, n, cfg))


def available() -> list[str]:
    """Names accepted by :func:`make`."""
    return sorted(PRESETS)


def _preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"name={name!r} is not a known optimizer; allowed: {available()}")
    return PRESETS[name]


def _check_mode(mode):
    if mode not in ("paper", "official"):
        raise ValueError(f"mode={mode!r} is invalid; allowed: ['paper', 'official']")


def _configs(preset: Preset, mode: str, hparams: dict) -> tuple[dict, dict]:
    """(low-rank rule, dense rule) of ``preset`` in ``mode`` with the user's keys applied where they are read."""
    low, dense = preset.configs(mode)
    hp = dict(hparams)
    options = {k: hp.pop(k) for k in _FRACTION_KEYS if k in hp and preset.random_fraction}
    if options:
        if "random_after" in hp:
            raise ValueError("pass golore_fraction (with total_steps) or random_after, not both")
        hp["random_after"] = _random_after(options.get("golore_fraction"), options.get("total_steps"))
    own = {k[len("dense_"):]: hp.pop(k) for k in list(hp) if k.startswith("dense_")}
    low_keys = {**low, **hp}
    dense_keys = {**dense, **{k: v for k, v in hp.items() if k != "base"}, **own}
    low_reads, dense_reads = reads(low_keys), reads(dense_keys)
    refused = sorted([k for k in hp if k == "low_rank" or k not in low_reads | dense_reads]
                     + [f"dense_{k}" for k in own if k == "low_rank" or k not in dense_reads])
    if refused:
        accepted = sorted(preset.accepts(mode) | (low_reads | dense_reads) - {"low_rank"})
        raise ValueError(f"{preset.name!r} (mode {mode!r}) does not read {refused}; it accepts: {accepted}")
    low.update({k: v for k, v in hp.items() if k in low_reads})
    dense.update({k: v for k, v in hp.items() if k in dense_reads and k != "base"}, **own)
    return validate_group(low), validate_group(dense)


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


class PresetOptimizer(SubspaceOptimizer):
    """A :class:`SubspaceOptimizer` built from a preset; each typed constructor is a subclass naming its preset."""

    spec: Preset   # the preset this class builds (``opt.preset`` is its name)

    def __init__(self, params, *, mode: str = "paper", seed: int = 0, nonfinite: str = "raise", **hparams):
        low, dense = _configs(self.spec, mode, hparams)
        super().__init__(as_groups(params), low, dense=dense, seed=seed, nonfinite=nonfinite,
                         preset=self.spec.name, mode=mode)

    def _baseline(self) -> tuple[dict, dict]:
        return self.spec.configs(self.mode)

    def _state_numel(self, m: int, n: int, r: int, cfg: dict) -> Optional[int]:
        return self.spec.state(m, n, r, cfg)


_PARAMS_DOC = """params: an ``nn.Module`` (split by ``subspace.param_groups``: 2-D hidden matrices low-rank; embeddings,
    output head, norms and biases dense), parameter-group dicts (``"low_rank": False`` selects the dense rule), or a
    flat list of tensors or (name, tensor) pairs: then every parameter with ndim >= 2 is low-rank, embeddings and
    heads included; pass a Module or ``param_groups(model)`` to keep those dense.
mode: "paper" (the paper's algorithm) or "official" (the released code's behaviour, below).
seed: seeds the optimizer's generator (random projections, randomized SVD); it travels in ``state_dict()``.
nonfinite: "raise" (FloatingPointError naming the parameter, nothing modified) or "skip" (counted in
    ``skipped_steps``) on a NaN/Inf gradient."""


def _signature_and_doc(preset: Preset) -> tuple[inspect.Signature, str]:
    """The typed constructor's signature (every key the preset reads, with its paper-mode default) and docstring."""
    low, dense = preset.configs("paper")
    kw = inspect.Parameter.KEYWORD_ONLY
    args = [inspect.Parameter("params", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Iterable | nn.Module"),
            inspect.Parameter("mode", kw, default="paper", annotation="str"),
            inspect.Parameter("seed", kw, default=0, annotation="int"),
            inspect.Parameter("nonfinite", kw, default="raise", annotation="str")]
    lines = []
    for key in GROUP_DEFAULTS:
        if key != "low_rank" and key in reads(low) | reads(dense):
            value = low[key] if key in reads(low) else dense[key]
            args.append(inspect.Parameter(key, kw, default=value, annotation=KEY_DOCS[key][0]))
            lines.append(f"{key}: {KEY_DOCS[key][1]}" + ("." if key in reads(low) else " (the dense rule's)."))
    for key in GROUP_DEFAULTS:
        if key in reads(low) and key in reads(dense) and dense[key] != low[key]:
            args.append(inspect.Parameter(f"dense_{key}", kw, default=dense[key], annotation=KEY_DOCS[key][0]))
            lines.append(f"dense_{key}: {key} of the dense rule.")
    if preset.random_fraction:
        args += [inspect.Parameter("golore_fraction", kw, default=1.0, annotation="float"),
                 inspect.Parameter("total_steps", kw, default=None, annotation="int | None")]
        lines.append("golore_fraction, total_steps: GoLore@x%: random bases for the last fraction x of total_steps.")
    args.append(inspect.Parameter("hparams", inspect.Parameter.VAR_KEYWORD))
    lines.append("**hparams: keys that become readable after a stage change (e.g. oversample with projector='rsvd'),"
                 " and dense_<key> for any other key of the dense rule.")
    official = {**{k: v for k, v in _OFFICIAL_ALL.items() if k in reads(preset.configs("official")[0])},
                **preset.official}
    diffs = ", ".join(f"{k}={v!r}" for k, v in official.items())
    dense_diffs = ", ".join(f"{k}={v!r}" for k, v in preset.official_dense.items())
    doc = "\n\n".join([
        preset.doc,
        f'mode="official" sets: {diffs or "(nothing)"}' + (f"; dense rule: {dense_diffs}" if dense_diffs else ""),
        "Arguments\n" + _PARAMS_DOC + "\n" + "\n".join(lines),
        f'Equivalent to ``subspace.make("{preset.name}", params, ...)``.'])
    return inspect.Signature(args), doc


def _constructor(preset: Preset) -> type:
    signature, doc = _signature_and_doc(preset)
    cls = type(preset.constructor, (PresetOptimizer,), {"spec": preset, "__doc__": doc, "__module__": __name__})
    cls.__signature__ = signature
    return cls


#: The typed constructor of each preset.
CONSTRUCTORS: dict[str, type] = {name: _constructor(p) for name, p in PRESETS.items()}
globals().update({cls.__name__: cls for cls in CONSTRUCTORS.values()})
__all__ += [cls.__name__ for cls in CONSTRUCTORS.values()]


def make(name: str, params, *, mode: str = "paper", seed: int = 0, nonfinite: str = "raise",
         **hparams) -> SubspaceOptimizer:
    """Build the named optimizer: ``CONSTRUCTORS[name](params, mode=..., **hparams)`` (e.g. ``subspace.GaLore``,
    whose signature and docstring list the keys, defaults, equations and official-mode differences).

    ``params``: an ``nn.Module`` (split by ``param_groups``), group dicts, or a flat list (ndim >= 2 low-rank,
    embeddings and heads included). Keys apply to every rule that reads them; ``dense_<key>`` to the dense rule
    only; a key the preset does not read raises ValueError.
    """
    return CONSTRUCTORS[_preset(name).name](params, mode=mode, seed=seed, nonfinite=nonfinite, **hparams)


def _layout(name: str, shape, low_rank: bool, mode: str, hparams: dict) -> tuple[int, dict, int]:
    """(state elements, the rule that holds them, elements of each base-update moment) of one parameter."""
    preset = _preset(name)
    low, dense = _configs(preset, mode, hparams)
    shape = tuple(int(s) for s in shape)
    numel = math.prod(shape)
    if not low_rank or len(shape) < 2 or (len(shape) > 2 and low["nd_rule"] == "dense"):
        return (2 if dense["base"] == "adam" else 1) * numel, dense, numel
    m, n = shape[0], numel // shape[0]
    r = min(int(low["rank"]), m, n)
    moment = r * _kl(m, n, low)[1] if low["projector"] != "none" else numel
    return preset.state(m, n, r, low), low, moment


def state_numel(name: str, shape, low_rank: bool = True, mode: str = "paper", **hparams) -> int:
    """State elements the preset keeps for one parameter of ``shape`` (the docstring formula, no allocation)."""
    return _layout(name, shape, low_rank, mode, hparams)[0]


def moment_numel(name: str, shape, low_rank: bool = True, mode: str = "paper", **hparams) -> int:
    """Elements of the base update's moments (M, and V for Adam) of one parameter: what ``state_bits=8`` stores in
    8 bits, and what one parameter's update holds in float while it runs."""
    _, rule, moment = _layout(name, shape, low_rank, mode, hparams)
    return (2 if rule["base"] == "adam" else 1) * moment


def state_bytes(name: str, shape, low_rank: bool = True, mode: str = "paper", element_size: int = 4,
                **hparams) -> int:
    """State bytes of one parameter of ``shape`` with ``element_size`` bytes per float state element: the
    docstring's "8-bit" formula with ``state_bits=8`` (each moment of E elements takes E + 4 ceil(E / B)),
    ``state_numel`` x ``element_size`` otherwise."""
    numel, rule, moment = _layout(name, shape, low_rank, mode, hparams)
    if rule["state_bits"] != 8:
        return numel * element_size
    moments = moment_numel(name, shape, low_rank, mode, **hparams) // moment
    return (numel - moments * moment) * element_size + moments * moment_bytes(moment, int(rule["state_block"]))
