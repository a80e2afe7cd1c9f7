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
convention). Random draws are made on the CPU, so a seed gives the same bases on every device and every DDP rank:
with ``random_stream="per-parameter"`` (default) each draw comes from a generator seeded by (``seed``, the
parameter's position in the optimizer, the step), so no draw depends on the order parameters step in (per-layer
steps fused into backward draw what ``step()`` draws); with ``"shared"`` (official GoLore) from one generator owned
by the optimizer and consumed in step order, whose state travels in ``state_dict()``.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from typing import Callable, Optional

import torch

from . import sharded
from .bases import align_signs, canonical_basis, stream_generator
from .config import DTYPES, GROUP_DEFAULTS, dense_rule, reads, validate_group
from .quantize import pack, unpacked
from .projection import move_moments, new_basis, online_pca_step, orient, refresh_due
from .sharded import Rows, fro, is_dtensor, local, project, subset_axis, subset_stat
from .updates import adam_combine, adam_moments, momentum_direction, shape_factor, subset_norm_stat

__all__ = ["SubspaceOptimizer"]

_SUBSPACE_KEYS = ("exp_avg", "exp_avg_sq")
#: Group keys a state dict restores without checking them (LR schedulers change them).
_RESTORED = ("lr", "initial_lr")


def _plain(value):
    """A group value as a state dict stores it: a callable (a projector) by its qualified name."""
    return f"<callable {value.__module__}.{value.__qualname__}>" if callable(value) else value


def _normal(value):
    """Lists and tuples compare equal (betas given as a list)."""
    return tuple(value) if isinstance(value, list) else value


class SubspaceOptimizer(torch.optim.Optimizer):
    """The composed optimizer; build it through ``subspace.make(name, params, **hparams)``.

    ``nonfinite="raise"`` (default) raises FloatingPointError naming the parameter when any gradient has a NaN or
    Inf, before anything is modified; ``"skip"`` leaves weights and state untouched and counts the step in
    ``skipped_steps``.
    """

    def __init__(self, params, defaults: Optional[dict] = None, *, dense: Optional[dict] = None, seed: int = 0,
                 nonfinite: str = "raise", preset: str = "", mode: str = ""):
        """``defaults``: the low-rank rule (keys over ``GROUP_DEFAULTS``); ``dense``: the dense rule's own keys (over
        what it takes from the low-rank rule, ``config.dense_rule``). ``preset``/``mode`` name where the rules came
        from (``subspace.make`` sets them); ``state_dict`` records them and ``load_state_dict`` checks them."""
        if nonfinite not in ("raise", "skip"):
            raise ValueError(f"nonfinite={nonfinite!r} is invalid; allowed: ['raise', 'skip']")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed={seed!r} is invalid; allowed: an int")
        low = validate_group({**GROUP_DEFAULTS, **(defaults or {}), "low_rank": True})
        #: The rule each group flag gets: ``rules[True]`` low-rank, ``rules[False]`` dense.
        self.rules = {True: low, False: validate_group(dense_rule(low, dense))}
        self.preset, self.mode = preset, mode
        super().__init__(params, low)
        self.nonfinite = nonfinite
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self.skipped_steps = 0

    def _baseline(self) -> tuple[dict, dict]:
        """(low-rank, dense) rules that ``repr`` reports differences from: the neutral ones here, a preset's own."""
        low = {**GROUP_DEFAULTS, "low_rank": True}
        return low, dense_rule(low)

    def _state_numel(self, m: int, n: int, r: int, cfg: dict) -> Optional[int]:
        """State elements of one m x n matrix parameter at rank r, when a formula is known (presets know theirs)."""
        return None

    def add_param_group(self, param_group: dict) -> None:
        """Add a group with the rule its ``low_rank`` flag names (default True), whichever way it enters.

        The group's keys override that rule where it reads them (a key it does not read raises ValueError).
        Parameters of a low-rank group that are not matrices (1-D; N-D with ``nd_rule="dense"``) form a dense group
        of their own next to it, with the dense rule and the group's keys that the dense rule reads (``base``
        names the low-rank rule's).
        """
        keys = {k: v for k, v in param_group.items() if k not in ("params", "param_names", "initial_lr")}
        low = keys.pop("low_rank", True)
        params = param_group["params"]
        params = [params] if torch.is_tensor(params) else list(params)
        names = param_group.get("param_names") or [None] * len(params)
        extra = {k: param_group[k] for k in ("initial_lr",) if k in param_group}
        rule = {**self.rules[low], **keys}
        matrix, other = [], []
        for name, item in zip(names, params):
            p = item[1] if isinstance(item, tuple) else item
            is_matrix = low and (p.ndim == 2 or (p.ndim > 2 and rule["nd_rule"] == "reshape"))
            (matrix if is_matrix else other).append(item if name is None else (name, item))
        dense = {**self.rules[False], **{k: v for k, v in keys.items() if not (low and k == "base")}}
        rule_reads, dense_reads = reads(rule) if matrix else frozenset(), reads(dense) if other else frozenset()
        refused = sorted(k for k in keys if k not in rule_reads | dense_reads)
        if refused:
            kind = "low-rank" if low else "dense"
            raise ValueError(f"a {kind} parameter group does not read {refused}; it reads: "
                             f"{sorted((rule_reads | dense_reads) - {'low_rank'})}")
        for part, cfg, read, flag in ((matrix, rule, rule_reads, True), (other, dense, dense_reads, False)):
            if part:
                group = {**cfg, **{k: v for k, v in keys.items() if k in read}, "low_rank": flag, **extra,
                         "params": part}
                super().add_param_group(validate_group(group))
                self._warn_large_rank(self.param_groups[-1], len(self.param_groups) - 1)

    def _warn_large_rank(self, group: dict, index: int) -> None:
        """Warn for each matrix whose rank is clamped to min(m, n) and whose state still exceeds AdamW's 2 m n."""
        if "rank" not in reads(group):
            return
        names = group.get("param_names")
        for j, p in enumerate(group["params"]):
            m = p.shape[0]
            n = p.numel() // max(m, 1)
            r = int(group["rank"])
            numel = self._state_numel(m, n, min(r, m, n), group) if r > min(m, n) else None
            if numel is not None and numel > 2 * m * n:
                label = names[j] if names else f"param_groups[{index}]['params'][{j}]"
                warnings.warn(f"{label} (shape {tuple(p.shape)}): rank {r} is clamped to min(m, n) = {min(m, n)} "
                              f"and its state ({numel} elements) exceeds AdamW's 2 m n = {2 * m * n}; use AdamW "
                              "or a smaller rank for it", stacklevel=4)

    def __repr__(self) -> str:
        """The class, preset and mode, then per group its rule and only the keys that differ from the preset's."""
        head = f"{type(self).__name__}(preset={self.preset!r}, mode={self.mode!r})" if self.preset else \
            f"{type(self).__name__}()"
        base = dict(zip((True, False), self._baseline()))
        lines = [head]
        for i, g in enumerate(self.param_groups):
            ref = base[g["low_rank"]]
            diff = ", ".join(f"{k}={g[k]!r}" for k in GROUP_DEFAULTS if k in reads(g) and g[k] != ref.get(k))
            kind = "low-rank" if g["low_rank"] else "dense"
            lines.append(f"  group {i} ({kind}, {len(g['params'])} params){': ' + diff if diff else ''}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ serialisation
    def state_dict(self) -> dict:
        """torch's state dict plus the seed, the generator and the skip count, the preset, the mode and every
        parameter's shape (plain tensors, ints, strings and tuples: it loads with ``torch.load(weights_only=True)``;
        a callable projector is recorded by its name).

        The seed (of the per-parameter random streams), the generator and the skip count belong to the whole
        optimizer but travel in the first parameter's state, under ``"optimizer"``:
        ``torch.distributed.checkpoint.state_dict`` keeps only ``state`` and ``param_groups``, and a resumed GoLore
        must draw the bases the uninterrupted run draws. Every rank holds the same values (a replicated entry)."""
        sd = super().state_dict()
        sd["param_groups"] = [{k: _plain(v) for k, v in g.items()} for g in sd["param_groups"]]
        first = next(i for g in sd["param_groups"] for i in g["params"])
        sd["state"][first] = {**sd["state"].get(first, {}),
                              "optimizer": {"generator": self.generator.get_state(), "seed": self.seed,
                                            "skipped_steps": self.skipped_steps}}
        sd["preset"], sd["mode"] = self.preset, self.mode
        sd["shapes"] = [[tuple(p.shape) for p in g["params"]] for g in self.param_groups]
        return sd

    def load_state_dict(self, state_dict: dict, take_hyperparameters: bool = False) -> None:
        """Restore everything, keeping each state tensor's own dtype (torch's default would cast to the param's).

        A state saved by another preset or mode, with any other hyper-parameter, or for parameters of other shapes
        raises ValueError naming what differs. ``take_hyperparameters=True`` adopts the saved hyper-parameters
        instead (shapes must still match). ``lr`` and ``initial_lr`` never count: LR schedulers change them, and
        the saved values are restored.
        """
        groups, saved = self.param_groups, state_dict["param_groups"]
        if len(groups) != len(saved) or any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved)):
            raise ValueError("state_dict: parameter groups do not match this optimizer's (count or sizes differ)")
        self._check_saved(state_dict, take_hyperparameters)
        by_id = {i: p for g, s in zip(groups, saved) for i, p in zip(s["params"], g["params"])}
        self.state = defaultdict(dict)
        shared = {}
        for i, st in state_dict["state"].items():
            p = by_id[i]
            st = dict(st)
            shared.update(st.pop("optimizer", {}))
            if st:
                self.state[p] = {k: (v.to(p.device, copy=True) if torch.is_tensor(v) else v) for k, v in st.items()}
        for g, s in zip(groups, saved):
            if take_hyperparameters:  # every saved key but the parameters (a callable stays the one given here)
                g.update({k: v for k, v in s.items() if k not in ("params", "param_names") and v != _plain(g.get(k))})
                validate_group({k: v for k, v in g.items() if k != "params"})
            else:  # the check above leaves only these to differ
                g.update({k: s[k] for k in _RESTORED if k in s})
        if "generator" in shared:
            self.generator.set_state(local(shared["generator"]).cpu())
        self.seed = int(shared.get("seed", self.seed))
        self.skipped_steps = int(shared.get("skipped_steps", 0))

    def _check_saved(self, state_dict: dict, take_hyperparameters: bool) -> None:
        """ValueError naming each difference between a saved state and this optimizer (see ``load_state_dict``)."""
        shapes = state_dict.get("shapes")
        for gi, (g, s) in enumerate(zip(self.param_groups, state_dict["param_groups"])):
            names = g.get("param_names")
            for j, p in enumerate(g["params"]):
                if shapes is not None and tuple(shapes[gi][j]) != tuple(p.shape):
                    label = names[j] if names else f"param_groups[{gi}]['params'][{j}]"
                    raise ValueError(f"state_dict is for another model: {label} has shape {tuple(shapes[gi][j])} "
                                     f"there, {tuple(p.shape)} here")
        if take_hyperparameters:
            return
        diffs = [f"{what}: saved {state_dict[what]!r}, here {getattr(self, what)!r}" for what in ("preset", "mode")
                 if state_dict.get(what) and state_dict[what] != getattr(self, what)]
        for gi, (g, s) in enumerate(zip(self.param_groups, state_dict["param_groups"])):
            for k in GROUP_DEFAULTS:
                here, there = _plain(g[k]), s.get(k, GROUP_DEFAULTS[k])
                if k not in _RESTORED and _normal(here) != _normal(there):
                    diffs.append(f"param_groups[{gi}]['{k}']: saved {there!r}, here {here!r}")
        if diffs:
            raise ValueError("state_dict was saved by a differently configured optimizer: " + "; ".join(diffs)
                             + " (pass take_hyperparameters=True to adopt the saved hyper-parameters)")

    # ------------------------------------------------------------------ stepping
    def _nonfinite_param(self) -> Optional[str]:
        """Name of the first parameter with a non-finite gradient (one host sync for the whole model), or None.

        Gradients on the meta device hold no values and are not screened. Sharded gradients are screened on each
        rank's rows and the per-parameter flags are all-reduced, so every rank raises (or skips) together."""
        entries = [(gi, j, p) for gi, g in enumerate(self.param_groups) for j, p in enumerate(g["params"])
                   if p.grad is not None and not p.grad.is_meta]
        if not entries:
            return None
        # Fast screen: a sum is NaN/Inf whenever its tensor holds a NaN or an Inf (and ~30x cheaper than
        # isfinite(g).all()); only a screened-out sum (which could also be a finite overflow) is checked exactly.
        grads = [local(p.grad) for _, _, p in entries]
        device = grads[0].device
        sums = torch.stack([g.sum().float().to(device) for g in grads])
        flags = self._agree(entries, (~torch.isfinite(sums)).float())
        if not bool(flags.any()):
            return None
        exact = torch.tensor([float(bool(f) and not bool(torch.isfinite(g).all())) for f, g in zip(flags.tolist(), grads)],
                             device=device)
        bad = self._agree(entries, exact).nonzero()
        if not len(bad):
            return None
        gi, j, p = entries[int(bad[0, 0])]
        names = self.param_groups[gi].get("param_names")
        label = names[j] if names else f"param_groups[{gi}]['params'][{j}]"
        return f"{label} (shape {tuple(p.shape)})"

    @staticmethod
    def _agree(entries, flags: torch.Tensor) -> torch.Tensor:
        """Per-parameter flags summed over every process group that shards one of the parameters."""
        groups = {}
        for _, _, p in entries:
            rows = Rows.of(p)
            if rows.group is not None:
                groups.setdefault(id(rows.group), rows)
        for rows in groups.values():
            flags = rows.sum(flags)
        return flags

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
            for i, p in enumerate(group["params"]):
                self.step_parameter(p, group, i)
        return loss

    @staticmethod
    def _is_matrix(p: torch.Tensor, group: dict) -> bool:
        return group["low_rank"] and (p.ndim == 2 or (p.ndim > 2 and group["nd_rule"] == "reshape"))

    def _fresh_state(self, p: torch.Tensor, group: dict, index: int) -> dict:
        """Every state entry the group's stages use, at zero, for the ``index``-th parameter of ``group``.

        Created for every parameter at the optimizer's first step, whether or not it has a gradient and however
        few of its rows are local, so every rank holds the same entries (a distributed checkpoint needs that).
        Entries that follow W's rows are split like them (``Rows.zeros``); the rest are replicated. A basis is
        computed at its parameter's first update (``step == 0``); OSD's P likewise.
        """
        rows = Rows.of(p)
        dtype = DTYPES[group["state_dtype"]] if group["state_dtype"] else p.dtype
        kw = dict(dtype=dtype, device=local(p).device)
        state: dict = {"step": 0}
        moments, axis = (tuple(p.shape), 0 if p.ndim else None)
        if self._is_matrix(p, group):
            m = p.shape[0]
            n = p.numel() // max(m, 1)
            moments, axis = (m, n), 0
            if group["projector"] != "none":
                left = orient(torch.empty(0, n, device="meta"), group["side"], m)[1]
                k, l = (m, n) if left else (n, m)
                r = min(int(group["rank"]), m, n)
                moments, axis = (r, l), (None if left else 1)
                state["basis"] = torch.zeros(k, r, **kw)
                if group["projector"] == "online-pca":
                    state.update(pca_exp_avg=torch.zeros(k, r, **kw), pca_exp_avg_sq=torch.zeros(k, r, **kw),
                                 pca_step=0)
                if group["refresh_stagger"]:
                    state["refresh_phase"] = index * int(group["update_gap"]) // len(group["params"])
                if "random_stream" in reads(group) and group["random_stream"] == "per-parameter":
                    state["stream"] = self._position(group, index)
            if group["orthogonalizer"] != "none" and group["limiter"] is not None:
                state["prev_norm"] = torch.zeros((), dtype=torch.float64 if dtype == torch.float64 else torch.float32,
                                                 device=kw["device"])
            if group["preconditioner"] == "subset-norm":
                shape = subset_norm_stat(torch.empty(m, n, device="meta"), group["subset"], group["subset_reduce"])[0].shape
                state["sn_exp_avg_sq"] = rows.zeros(shape, subset_axis(m, n, group["subset"]), **kw)
        state["exp_avg"] = rows.zeros(moments, axis, **kw)
        if group["base"] == "adam":
            state["exp_avg_sq"] = rows.zeros(moments, axis, **kw)
        return state

    def _position(self, group: dict, index: int) -> int:
        """The ``index``-th parameter of ``group``'s position among all the optimizer's parameters."""
        before = next(i for i, g in enumerate(self.param_groups) if g is group)
        return sum(len(g["params"]) for g in self.param_groups[:before]) + index

    def _generator(self, state: dict, t: int) -> torch.Generator:
        """The generator of a random draw at step t: the parameter's own stream, seeded by (seed, position, t), or
        the optimizer's shared one (``random_stream``)."""
        return stream_generator(self.seed, state["stream"], t) if "stream" in state else self.generator

    def _update(self, p: torch.Tensor, group: dict) -> None:
        """One step of one parameter on this rank's rows: the stages read local views of the state (split entries
        are updated in place through them; replicated ones are written back)."""
        state = self.state[p]
        view = {k: local(v) for k, v in state.items()}
        dtype = DTYPES[group["state_dtype"]] if group["state_dtype"] else p.dtype
        W, G, rows = local(p), local(p.grad), Rows.of(p)
        if self._is_matrix(p, group):
            n = p.numel() // max(p.shape[0], 1)
            self._matrix_update(W.view(W.shape[0], n), G.reshape(G.shape[0], n).to(dtype), rows, group, view)
        else:
            self._dense_update(W, G.to(dtype), group, view)
        view["step"] += 1
        state.update({k: v for k, v in view.items() if not is_dtensor(state.get(k))})

    def _dense_update(self, W, G, group, state) -> None:
        """The dense rule: the group's base update (Adam or momentum SGD) on the raw gradient, no projection."""
        D = self._base_direction(G, group, state, state["step"])
        self._apply(W, D, group, 1.0)

    def _matrix_update(self, W, G, rows: Rows, group, state) -> None:
        """Stages 1-6 of the module docstring for one matrix parameter: W and G are this rank's rows (m_i x n) of
        the m x n matrix (``rows``); see ``subspace.sharded`` for what each stage communicates."""
        t = state["step"]
        projected = group["projector"] != "none"
        A, left = orient(G, group["side"], rows.size) if projected else (G, True)
        shape = (rows.size, G.shape[1])
        Q, moment_after = self._basis(G, rows, left, group, state) if projected else (None, None)
        R = project(rows, Q, A, left) if Q is not None else A
        axis = (None if left else 1) if projected else 0  # the axis of R (and D) that follows W's rows
        D = self._base_direction(R, group, state, t)
        if group["orthogonalizer"] != "none":
            D = self._orthogonalize(D, rows, axis, group, state)
        factor = shape_factor(group["shape_scale"], *shape)
        Qw = rows.take(Q) if Q is not None and left else Q  # Q's rows that meet W's local rows
        if group["preconditioner"] == "subset-norm":
            U = self._back_project(Qw, D * factor, R, G, left, group["complement_scale"])
            self._apply(W, self._subset_norm(U, G, rows, group, state, t + 1), group, 1.0)
        elif Q is None:
            self._apply(W, D, group, factor)
        else:
            self._apply_projected(W, Qw, D, R, G, left, group, factor)
        if moment_after is not None:
            state["exp_avg"].copy_(moment_after)
        if group["projector"] == "online-pca" and t > 0:
            online_pca_step(state, A, group, R, rows, left)

    def _base_direction(self, R, group, state, t) -> torch.Tensor:
        """Stage 2: Adam (M, V), EMA (M) or momentum (M) on R."""
        if group["base"] == "adam":
            M, V = adam_moments(R, state, group["betas"])
            return adam_combine(M, V, t + 1, group["betas"], group["eps"], group["eps_style"],
                                group["bias_correction"])
        if group["base"] == "ema":
            return state["exp_avg"].mul_(group["betas"][0]).add_(R, alpha=1.0 - group["betas"][0])
        return momentum_direction(R, state, group["momentum"], group["dampening"], group["nesterov"],
                                  group["nesterov_overwrite"],
                                  start_at_gradient=(t == 0 and group["momentum_init"] == "grad"))

    @staticmethod
    def _back_project(Q, D, R, G, left: bool, s_perp: float) -> torch.Tensor:
        """U = Q D (+ s_perp (A - Q R)), returned in G's own (m x n) layout (used by the Subset-Norm path).

        Q D + s (A - Q R) = s A + Q (D - s R): one k x r x l product instead of two. For a right projection
        (A = G^T) the products are taken transposed, D^T Q^T, rather than transposing the result. On a row-split
        G, Q is the rows of the basis that meet G's (left) or the whole basis (right): the result is G's rows.
        """
        if Q is None:
            return D
        X = D - s_perp * R if s_perp else D
        U = Q @ X if left else X.mT @ Q.mT
        return U.add_(G, alpha=s_perp) if s_perp else U

    def _basis(self, G, rows: Rows, left, group, state) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """(current basis, first moment the state holds after this step or None), refreshing the basis when due.

        Every basis is computed at the parameter's first update (t = 0). Online PCA: SVD on the first step, then
        moved by its own steps. ``refresh_stagger=True`` shifts the i-th parameter of a group of N by i*T//N
        steps, so the SVDs of a refresh period are spread over the period instead of all landing on one step (same
        cadence per parameter). With ``basis_signs="aligned"`` (paper mode) a decomposition's basis gets canonical
        column signs (``bases.align_signs``: aligned with the previous basis), so kept moments do not depend on
        the SVD's arbitrary signs; random bases keep their signs, so their law stays uniform. The basis is
        replicated: every rank computes the same one (``subspace.sharded``).
        """
        t = state["step"]
        r = min(int(group["rank"]), rows.size, G.shape[1])
        kind = group["projector"]
        if group["random_after"] is not None and t >= group["random_after"]:
            kind = "stiefel"
        if kind == "online-pca":
            if t == 0:
                state["basis"] = self._new_basis("svd", G, rows, r, left, group, None, state)
            return state["basis"], None
        old = state["basis"] if t > 0 else None
        if old is not None and not refresh_due(t + state.get("refresh_phase", 0), int(group["update_gap"]),
                                               group["refresh_index"]):
            return old, None
        Q = self._new_basis(kind, G, rows, r, left, group, old, state)
        if Q is old:
            return old, None
        moment_after = None
        if old is not None:
            moment_after = move_moments(state, old, Q, self._refresh_policy(group, state),
                                        _SUBSPACE_KEYS if group["preconditioner"] == "none" else ("exp_avg",))
        state["basis"] = Q
        state["transport_source"] = self._records_basis(group, t)
        return Q, moment_after

    @staticmethod
    def _refresh_policy(group, state) -> str:
        """``moment_on_refresh``, except that a transport from a basis that is no transport source keeps."""
        policy = group["moment_on_refresh"]
        if policy.startswith("transport") and not state.get("transport_source", True):
            return "keep"
        return policy

    @staticmethod
    def _records_basis(group, t: int) -> bool:
        """Whether the basis drawn at step t can start a later transport (``transport_source``).

        ``random-after-first``: pkumelon/Golore@7ee5a8a golore_torch/sgd.py records its basis only when the
        momentum buffer already exists (t > 0) and the incremented step has reached ``rand_epoch``."""
        if group["transport_source"] == "every":
            return True
        return t > 0 and group["random_after"] is not None and t + 1 >= group["random_after"]

    def _new_basis(self, kind, G, rows: Rows, r, left, group, fallback, state) -> torch.Tensor:
        """``new_basis`` with canonical signs where asked, or the documented fallback when every decomposition
        fails (LinAlgError): the previous basis, or the first r coordinates on a first refresh, so a failed SVD
        never stops training or makes NaN."""
        t = state["step"]
        try:
            Q = new_basis(kind, G, r, left, self._generator(state, t), group, G.dtype, t, rows)
        except torch.linalg.LinAlgError:
            if fallback is not None:
                return fallback
            return canonical_basis(rows.size if left else G.shape[1], r, dtype=G.dtype, device=G.device)
        if group["basis_signs"] == "aligned" and kind != "stiefel":
            Q = align_signs(Q, fallback)
        return Q

    def _orthogonalize(self, D, rows: Rows, axis, group, state) -> torch.Tensor:
        """Stage 3: exact polar factor or Newton–Schulz, then SUMO's norm-growth limiter (no host sync).

        ``axis``: the axis of D that follows W's rows (None: D is replicated). The limiter,
        O <- O * min(1, gamma ||O_prev||_F / ||O||_F), acts on Newton–Schulz outputs only: the paper's exact U V^T
        has ||U V^T||_F = sqrt(min(r, l)) whatever M is, so there it is inert (as in the paper and the released
        code), and directions that ``polar`` zeroes as numerically null must not read as a change of norm. A
        first step (previous norm 0) only records the norm.
        """
        if group["orthogonalizer"] == "polar":
            return sharded.polar(rows, D, axis, group["polar_method"])
        O = sharded.newton_schulz(rows, D, axis, steps=int(group["ns_steps"]), coeffs=group["ns_coeffs"],
                                  normalize=group["ns_normalize"],
                                  dtype=DTYPES[group["ns_dtype"]] if group["ns_dtype"] else None)
        gamma = group["limiter"]
        if gamma is None:
            return O
        norm = fro(rows, O.double() if O.dtype == torch.float64 else O.float(), axis is not None)
        cap = gamma * state["prev_norm"].to(norm.dtype)
        trips = (cap > 0) & (norm > cap)
        state["prev_norm"] = torch.where(trips, cap, norm)
        return O * torch.where(trips, cap / norm, torch.ones_like(norm)).to(O.dtype)

    def _subset_norm(self, U, G, rows: Rows, group, state, t) -> torch.Tensor:
        """U / (sqrt(V_sn) + eps) with V_sn <- b2 V_sn + (1-b2) ||g_Psi||^2 (SN-SM, paper-claims §4.1)."""
        stat, view = subset_stat(rows, G, group["subset"], group["subset_reduce"])
        V = state["sn_exp_avg_sq"]
        b2 = group["betas"][1]
        V.mul_(b2).add_(stat, alpha=1.0 - b2)
        N = adam_combine(U.reshape(view), V, t, group["betas"], group["eps"], group["eps_style"],
                         group["bias_correction"])
        return N.reshape(G.shape)

    @staticmethod
    def _step_size(group: dict) -> float:
        """The learning rate this step uses: ``fixed_lr`` when set (unscheduled), else the scheduled ``lr``."""
        return group["lr"] if group["fixed_lr"] is None else group["fixed_lr"]

    @classmethod
    def _apply(cls, W: torch.Tensor, U: torch.Tensor, group: dict, factor: float) -> None:
        """Stage 5: W <- W - lr * scale * factor * U, with decoupled weight decay before or after (W: local rows)."""
        lr = cls._step_size(group)
        cls._decay(W, group, lr, "before")
        W.add_(U.reshape(W.shape).to(W.dtype), alpha=-lr * group["scale"] * factor)
        cls._decay(W, group, lr, "after")

    @classmethod
    def _apply_projected(cls, W, Q, D, R, G, left: bool, group: dict, factor: float) -> None:
        """Stages 4-5 fused: W <- W + c (Q X) + c s G with c = -lr * scale, X = factor D - s R, s = complement_scale.

        W (m_i x n) and G are the local rows; Q is the basis rows that meet them (left) or the whole basis (right).
        The coefficient is folded into the small r x l factor and the product is accumulated into W in place
        (one GEMM, no m x n temporary). This also avoids ``W.add_(Q @ X, alpha=c)``, which torch.compile
        (inductor, torch 2.13) miscompiles by dropping alpha (pytorch/pytorch#167313: the add(mm) pattern loses
        alpha/beta; smallest case: ``torch.compile(lambda p, Q, X: p.add_(Q @ X, alpha=-0.01))`` on a zero
        16 x 24 ``p`` returns Q @ X, 100x the eager result).
        """
        lr, s = cls._step_size(group), group["complement_scale"]
        c = -lr * group["scale"]
        X = D * factor - s * R if s else D * factor
        X = (X * c).to(W.dtype)
        cls._decay(W, group, lr, "before")
        if left:
            W.addmm_(Q.to(W.dtype), X)
        else:
            W.addmm_(X.mT, Q.mT.to(W.dtype))
        if s:
            W.add_(G.to(W.dtype), alpha=c * s)
        cls._decay(W, group, lr, "after")

    @staticmethod
    def _decay(W: torch.Tensor, group: dict, lr: float, order: str) -> None:
        wd = group["weight_decay"]
        if wd and group["wd_order"] == order:
            W.mul_(1.0 - lr * wd) if order == "before" else W.add_(W, alpha=-lr * wd)

    # ------------------------------------------------------------------ stages 2-3 on a given R (factorized form)
    def projected_direction(self, R: torch.Tensor, group: dict, state: dict) -> torch.Tensor:
        """Stages 2-3 on a projected gradient R (r x l) that the caller formed: the base update at step
        ``state["step"]`` (moments updated in place), then the orthogonalizer and limiter; D before the shape
        factor and the outer step. ``subspace.factorized`` passes R = dL/dC = B^T grad_W, so both step paths run
        one implementation of these stages (R replicated: a single-process or DDP parameter)."""
        D = self._base_direction(R, group, state, state["step"])
        if group["orthogonalizer"] != "none":
            D = self._orthogonalize(D, Rows.whole(R.shape[0]), None, group, state)
        return D

    # ------------------------------------------------------------------ one parameter (fused backward, 8-bit state)
    @torch.no_grad()
    def step_parameter(self, p: torch.Tensor, group: Optional[dict] = None, index: Optional[int] = None) -> None:
        """Update ``p`` alone from ``p.grad`` (``step``'s body for one parameter, without the non-finite screen).

        Creates p's state at its first call (with or without a gradient). With ``state_bits=8`` the moments are
        dequantized for the update and re-quantized after it (``subspace.quantize``). ``group``/``index``: p's
        group and its position there (looked up when not given). ``subspace.fuse_into_backward`` calls this from
        each parameter's post-accumulate-grad hook.
        """
        if group is None:
            group, index = next((g, i) for g in self.param_groups for i, q in enumerate(g["params"]) if q is p)
        if not self.state[p]:
            self.state[p] = pack(self._fresh_state(p, group, index), group)
        if p.grad is not None:
            dtype = DTYPES[group["state_dtype"]] if group["state_dtype"] else p.dtype
            with unpacked(self.state[p], group, dtype):
                self._update(p, group)
