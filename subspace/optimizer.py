"""SubspaceOptimizer: one torch.optim.Optimizer that runs every method as a composition of stages.

For each matrix parameter W (m x n) with gradient G, per step t (0-indexed count of steps already taken):

1. projector: orient A = G or G^T (k x l, k = min(m, n)); refresh the basis Q (k x r) when due and carry the
   subspace moments across (keep / transport / reset); R = Q^T A. Projector ``none``: R = A, Q = I.
2. base update on R: Adam (M, V), EMA (M) or momentum (M, optional Nesterov) -> D (r x l).
3. orthogonalizer on D: exact polar factor U V^T or Newton–Schulz; optional norm-growth limiter gamma.
4. back-projection U = Q D, plus ``complement_scale`` * (A - Q R) (SUMO block 4, SN-SM); optional Subset-Norm
   preconditioner U <- U / sqrt(V_sn) (Adam-style bias corrections, eps placement as ``eps_style``).
5. outer step: W <- W - lr * scale * shape_factor * U, with decoupled weight decay before or after.
6. online-PCA projector only: one optimizer step of the basis itself (OSD).

Parameters that are not matrices (1-D, or N-D with ``nd_rule="dense"``) use the dense rule: Adam with the group's
betas, eps and eps placement. N-D weights with ``nd_rule="reshape"`` are viewed as (shape[0], -1) (Muon's
convention). All random draws come from one CPU generator owned by the optimizer (seeded by ``seed``), so a seed
gives the same bases on every device and every DDP rank; its state travels in ``state_dict()``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Optional

import torch

from .bases import canonical_basis
from .config import DTYPES, GROUP_DEFAULTS, validate_group
from .orthogonalize import newton_schulz, polar
from .projection import move_moments, new_basis, online_pca_step, orient, refresh_due
from .updates import adam_combine, adam_moments, momentum_direction, shape_factor, subset_norm_stat

__all__ = ["SubspaceOptimizer"]

_SUBSPACE_KEYS = ("exp_avg", "exp_avg_sq")


class SubspaceOptimizer(torch.optim.Optimizer):
    """The composed optimizer; build it through ``subspace.make(name, params, **hparams)``.

    ``nonfinite="raise"`` (default) raises FloatingPointError naming the parameter when any gradient has a NaN or
    Inf, before anything is modified; ``"skip"`` leaves weights and state untouched and counts the step in
    ``skipped_steps``.
    """

    def __init__(self, params, defaults: Optional[dict] = None, *, seed: int = 0, nonfinite: str = "raise"):
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite={nonfinite!r} is invalid; allowed: ['raise', 'skip']")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed={seed!r} is invalid; allowed: an int")
        full = dict(GROUP_DEFAULTS)
        full.update(defaults or {})
        super().__init__(params, validate_group(full))
        self.nonfinite = nonfinite
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.skipped_steps = 0

    def add_param_group(self, param_group: dict) -> None:
        validate_group({k: v for k, v in param_group.items()})
        super().add_param_group(param_group)

    # ------------------------------------------------------------------ serialisation
    def state_dict(self) -> dict:
        sd = super().state_dict()
        sd["generator"] = self.generator.get_state()
        sd["skipped_steps"] = self.skipped_steps
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore everything, keeping each state tensor's own dtype (torch's default would cast to the param's)."""
        groups, saved = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved) or any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved)):
            raise ValueError("state_dict: parameter groups do not match this optimizer's (count or sizes differ)")
        by_id = {i: p for g, s in zip(groups, saved) for i, p in zip(s["params"], g["params"])}
        self.state = defaultdict(dict)
        for i, st in state_dict["state"].items():
            p = by_id[i]
            self.state[p] = {k: (v.to(p.device, copy=True) if torch.is_tensor(v) else v) for k, v in st.items()}
        for g, s in zip(groups, saved):
            g.update({k: v for k, v in s.items() if k not in ("params", "param_names")})
        if "generator" in state_dict:
            self.generator.set_state(state_dict["generator"].cpu())
        self.skipped_steps = int(state_dict.get("skipped_steps", 0))

    # ------------------------------------------------------------------ stepping
    def _nonfinite_param(self) -> Optional[str]:
        """Name of the first parameter with a non-finite gradient (one host sync for the whole model), or None."""
        entries = [(gi, j, p) for gi, g in enumerate(self.param_groups) for j, p in enumerate(g["params"])
                   if p.grad is not None]
        if not entries:
            return None
        # Fast screen: a sum is NaN/Inf whenever its tensor holds a NaN or an Inf (and ~30x cheaper than
        # isfinite(g).all()); only a screened-out sum (which could also be a finite overflow) is checked exactly.
        sums = torch.stack([p.grad.sum().float() for _, _, p in entries])
        if bool(torch.isfinite(sums).all()):
            return None
        bad = [e for e, ok in zip(entries, torch.isfinite(sums).tolist()) if not ok and not torch.isfinite(e[2].grad).all()]
        if not bad:
            return None
        gi, j, p = bad[0]
        names = self.param_groups[gi].get("param_names")
        label = names[j] if names else f"param_groups[{gi}]['params'][{j}]"
        return f"{label} (shape {tuple(p.shape)})"

    @torch.no_grad()
    def step(self, closure: Optional[Callable] = None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        bad = self._nonfinite_param()
        if bad is not None:
            if self.nonfinite == "skip":
                self.skipped_steps += 1
                return loss
            raise FloatingPointError(f"non-finite gradient in {bad}; weights and optimizer state left untouched "
                                     "(pass nonfinite='skip' to skip such steps)")
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, group)
        return loss

    def _update(self, p: torch.Tensor, group: dict) -> None:
        state = self.state[p]
        dtype = DTYPES[group["state_dtype"]] if group["state_dtype"] else p.dtype
        matrix = p.ndim == 2 or (p.ndim > 2 and group["nd_rule"] == "reshape")
        if "step" not in state:
            state["step"] = 0
        if not matrix:
            self._dense_update(p, group, state, dtype)
        else:
            self._matrix_update(p, group, state, dtype)
        state["step"] += 1

    def _dense_update(self, p, group, state, dtype) -> None:
        """Adam on the raw gradient (the dense rule)."""
        G = p.grad.to(dtype)
        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(G)
            state["exp_avg_sq"] = torch.zeros_like(G)
        M, V = adam_moments(G, state, group["betas"])
        D = adam_combine(M, V, state["step"] + 1, group["betas"], group["eps"], group["eps_style"],
                         group["bias_correction"])
        self._apply(p, D, group, 1.0)

    def _matrix_update(self, p, group, state, dtype) -> None:
        G = p.grad.reshape(p.shape[0], -1).to(dtype)
        m, n = G.shape
        A, left = orient(G, group["side"]) if group["projector"] != "none" else (G, True)
        t = state["step"]
        Q = self._basis(p, G, left, group, state, dtype) if group["projector"] != "none" else None
        R = Q.mT @ A if Q is not None else A

        if "exp_avg" not in state:
            state["exp_avg"] = torch.zeros_like(R)
            if group["base"] == "adam":
                state["exp_avg_sq"] = torch.zeros_like(R)
        if group["base"] == "adam":
            M, V = adam_moments(R, state, group["betas"])
            D = adam_combine(M, V, t + 1, group["betas"], group["eps"], group["eps_style"], group["bias_correction"])
        elif group["base"] == "ema":
            D = state["exp_avg"].mul_(group["betas"][0]).add_(R, alpha=1.0 - group["betas"][0])
        else:
            D = momentum_direction(R, state, group["momentum"], group["dampening"], group["nesterov"],
                                   group["nesterov_overwrite"])

        if group["orthogonalizer"] != "none":
            D = self._orthogonalize(D, group, state)

        U = self._back_project(Q, D, R, G, left, group["complement_scale"])

        if group["preconditioner"] == "subset-norm":
            U = self._subset_norm(U, G, group, state, t + 1)
        self._apply(p, U.reshape(p.shape), group, shape_factor(group["shape_scale"], m, n))

        if group["projector"] == "online-pca" and t > 0:
            online_pca_step(state, A, group, R)

    @staticmethod
    def _back_project(Q, D, R, G, left: bool, s_perp: float) -> torch.Tensor:
        """U = Q D (+ s_perp (A - Q R)), returned in G's own (m x n) layout so the weight update is contiguous.

        Q D + s (A - Q R) = s A + Q (D - s R): one k x r x l product instead of two. For a right projection
        (A = G^T) the products are taken transposed, D^T Q^T, rather than transposing the result.
        """
        if Q is None:
            return D
        X = D - s_perp * R if s_perp else D
        if left:
            return torch.addmm(G, Q, X, beta=s_perp) if s_perp else Q @ X
        return torch.addmm(G, X.mT, Q.mT, beta=s_perp) if s_perp else X.mT @ Q.mT

    def _basis(self, p, G, left, group, state, dtype) -> torch.Tensor:
        """Current basis, refreshed when due (online PCA: SVD on the first step, then moved by its own steps).

        ``refresh_stagger=True`` shifts the i-th parameter of a group of N by i*T//N steps, so the SVDs of a refresh
        period are spread over the period instead of all landing on one step (same cadence per parameter).
        """
        t = state["step"]
        r = min(int(group["rank"]), *G.shape)
        if group["refresh_stagger"] and "refresh_phase" not in state:
            params = group["params"]
            state["refresh_phase"] = next(i for i, q in enumerate(params) if q is p) * int(group["update_gap"]) // len(params)
        kind = group["projector"]
        if group["random_after"] is not None and t >= group["random_after"]:
            kind = "stiefel"
        if kind == "online-pca":
            if "basis" not in state:
                state["basis"] = self._new_basis("svd", G, r, left, group, dtype, None)
                state["pca_exp_avg"] = torch.zeros_like(state["basis"])
                state["pca_exp_avg_sq"] = torch.zeros_like(state["basis"])
                state["pca_step"] = 0
            return state["basis"]
        old = state.get("basis")
        if old is not None and not refresh_due(t + state.get("refresh_phase", 0), int(group["update_gap"]),
                                               group["refresh_index"]):
            return old
        Q = self._new_basis(kind, G, r, left, group, dtype, old)
        if Q is old:
            return old
        if old is not None:
            move_moments(state, old, Q, group["moment_on_refresh"],
                         _SUBSPACE_KEYS if group["preconditioner"] == "none" else ("exp_avg",))
        state["basis"] = Q
        return Q

    def _new_basis(self, kind, G, r, left, group, dtype, fallback) -> torch.Tensor:
        """``new_basis``, or the documented fallback when every decomposition fails (LinAlgError): the previous
        basis, or the first r coordinates on a first refresh, so a failed SVD never stops training or makes NaN."""
        try:
            return new_basis(kind, G, r, left, self.generator, group, dtype)
        except torch.linalg.LinAlgError:
            if fallback is not None:
                return fallback
            return canonical_basis(G.shape[0] if left else G.shape[1], r, dtype=dtype, device=G.device)

    def _orthogonalize(self, D, group, state) -> torch.Tensor:
        if group["orthogonalizer"] == "polar":
            O = polar(D, method=group["polar_method"])
        else:
            O = newton_schulz(D, steps=int(group["ns_steps"]), coeffs=group["ns_coeffs"],
                              normalize=group["ns_normalize"],
                              dtype=DTYPES[group["ns_dtype"]] if group["ns_dtype"] else None)
        gamma = group["limiter"]
        if gamma is not None:
            norm = float(torch.linalg.matrix_norm(O))
            prev = state.get("prev_norm")
            if prev and norm > gamma * prev:
                O = O * (gamma * prev / norm)
                norm = gamma * prev
            state["prev_norm"] = norm
        return O

    def _subset_norm(self, U, G, group, state, t) -> torch.Tensor:
        """U / (sqrt(V_sn) + eps) with V_sn <- b2 V_sn + (1-b2) ||g_Psi||^2 (SN-SM, paper-claims §4.1)."""
        stat, view = subset_norm_stat(G, group["subset"], group["subset_reduce"])
        if "sn_exp_avg_sq" not in state:
            state["sn_exp_avg_sq"] = torch.zeros_like(stat)
        V = state["sn_exp_avg_sq"]
        b2 = group["betas"][1]
        V.mul_(b2).add_(stat, alpha=1.0 - b2)
        N = adam_combine(U.reshape(view), V, t, group["betas"], group["eps"], group["eps_style"],
                         group["bias_correction"])
        return N.reshape(G.shape)

    @staticmethod
    def _apply(p: torch.Tensor, U: torch.Tensor, group: dict, factor: float) -> None:
        lr, wd = group["lr"], group["weight_decay"]
        if wd and group["wd_order"] == "before":
            p.mul_(1.0 - lr * wd)
        p.add_(U.reshape(p.shape).to(p.dtype), alpha=-lr * group["scale"] * factor)
        if wd and group["wd_order"] == "after":
            p.add_(p, alpha=-lr * wd)
