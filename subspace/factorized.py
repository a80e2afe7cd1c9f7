"""Factorized low-rank training: each projected linear layer written as W = W0 + B A (GoLore seed slides,
"Improving the computational efficiency"; reference-implementations §3.2, GoLore's ReLoRA-style path).

    model, opt = subspace.make_factorized("golore", model, lr=1e-3, rank=128, update_gap=200)
    for x, y in loader:
        loss_fn(model(x), y).backward(); opt.step(); opt.zero_grad()

The form. For a low-rank matrix W (m x n) with projected side chosen as the core does (``orient``: left iff
m < n under ``side="auto"``), Q the current basis (k x r) and C the trainable factor (r x l, the shape of the
projected gradient R):

    left  (Q: m x r, C: r x n):   W = W0 + Q C,          y = x W0^T + (x C^T) Q^T,   dL/dC = Q^T G
    right (Q: n x r, C: r x m):   W = W0 + C^T Q^T,      y = x W0^T + (x Q) C,       dL/dC = Q^T G^T

with G = dL/dW = (dL/dy)^T x. In both, dL/dC = Q^T A = R with A = orient(G): backward hands the optimizer the
projected gradient itself, and W0 (frozen, ``requires_grad=False``) gets no gradient, so the m x n gradient is
never formed between refreshes (4bmn + O(b r (m + n)) flops instead of 6bmn + 4rmn; ``analysis.factorized_bench``).

Why the trajectory is the standard preset's. The standard step is W <- W + c Q X with X = f D(R) (D: the group's
base update and orthogonalizer on R, f the shape factor, c = -lr scale). Since W0 + Q (C + c X) = (W0 + Q C) + c Q X
(right: transposed), the factorized step C <- C + c X with W0 and Q fixed moves W by the same amount, and it
feeds the same R to the same code for stages 2-3 (``SubspaceOptimizer.projected_direction``): the same moments,
Adam's elementwise ratio on the same r x l entries, the same polar factor / Newton–Schulz / limiter.
Decoupled weight decay W <- (1 - lr wd) W (before or after the step, as ``wd_order`` says) is linear in W, so it
is applied to both parts, W0 <- (1 - lr wd) W0 and C <- (1 - lr wd) C: exact, one m x n scaling per step, as in
the standard step.

Refreshes (at the steps the core refreshes: t = 0, every ``update_gap`` steps, ``refresh_index``,
``refresh_stagger``, ``random_after``). After the update of step t-1 the optimizer looks ahead: if step t
refreshes, C is merged, W0 <- W0 + Q C (or + C^T Q^T), and zeroed, which leaves W unchanged. Then

* a random basis (uniform Stiefel: GoLore, GoLore@x% after ``random_after``) does not depend on G, so it is drawn
  right away, by the core's ``_basis`` (same generator, same parameter order, same moment policy: keep /
  transport / transport-step), and step t's forward already runs with the new Q: dL/dC = Q_new^T A. GoLore never
  forms the full gradient.
* a decomposition basis (SVD: GaLore; randomized SVD: SUMO; a callable projector) needs G_t. Step t's forward
  then reads W0 through a detached leaf copy that requires grad (the layer's ``capture``; the Parameter itself
  stays frozen, so DDP's reducer, built over the factors, is unchanged), backward forms G_t = dL/dW0 there, and
  the step computes Q from it by the core's ``_basis`` (signs, SVD fallback, moment policy), uses R = Q^T A from
  it and drops it: one m x n gradient per refresh. Under DDP that gradient is averaged over ``process_group``
  (one m x n all-reduce per refresh, recorded in ``subspace.sharded.counting``).

Where the two trajectories can differ: in round-off only. The forward computes x W0^T + (x C^T) Q^T instead of
x W^T, dL/dC is (dL/dy Q)^T x instead of Q^T ((dL/dy)^T x), and W is held in two parts (merged every T steps)
instead of one accumulated matrix. These are O(eps |W|) per step; Adam divides by sqrt(V), so an entry of R at
round-off level (|R_ij| ~ eps |G|) can take a different step in the two paths (its first step is sign(R_ij)).
``analysis.factorized_bench.trajectory_error`` measures the gap (~1e-7 in float32, ~1e-16 in float64).
One case is not round-off: a decomposition basis of a gradient with fewer than r nonzero singular values (batch
tokens < r, or a tie s_r = s_{r+1}) is not unique, and the two paths' round-off picks different completions of
the degenerate part: two valid runs of the preset, not one (measured 5e-3 in float64 at batch 16, rank 32; the
standard step is as sensitive to its own round-off, e.g. to a BLAS change). Random bases have no such case.

Scope: any preset whose low-rank rule has a refreshed projector (svd, rsvd, stiefel, callable), no complement
term (``complement_scale=0``: the complement (I - Q Q^T) G needs G at every step) and no Subset-Norm
preconditioner (it divides elementwise in the m x n space): galore, golore, sumo and sumo-ns5 with
complement_scale=0, galore-sgdm, golore-sgdm, in either mode. Online PCA (OSD) moves Q every step and is not
covered. Only ``nn.Linear`` layers are rewritten; other low-rank matrices keep the standard step.

Gradients: zero them with ``opt.zero_grad()``, which also clears a refresh step's captured full gradient (a step
skipped by ``nonfinite="skip"`` keeps the capture for the retried step). A non-finite full gradient also makes
dL/dC = Q^T G non-finite (dL/dC is computed at refresh steps too), so the core's screen of the factors' gradients
covers it. Not supported: ``fuse_into_backward`` (a factor's hook can fire before the captured gradient is
complete).
"""
from __future__ import annotations

from typing import Optional, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from . import sharded
from .config import GROUP_DEFAULTS, DTYPES, stages, validate_group
from .groups import param_groups
from .presets import PresetOptimizer, _configs, _preset
from .projection import orient, refresh_due
from .sharded import Rows
from .updates import shape_factor

__all__ = ["FactorizedLinear", "FactorizedOptimizer", "factorize", "unfactorize", "make_factorized",
           "check_factorizable"]


class FactorizedLinear(nn.Module):
    """y = x W0^T + b + (x C^T) Q^T (left) or x W0^T + b + (x Q) C (right): a Linear whose weight is W0 + B A.

    ``weight`` is W0 (frozen), ``factor`` is C (r x l, trainable, starts at zero), ``basis`` is Q (k x r, a buffer
    the optimizer sets), ``bias`` is the original Linear's. ``left``: the projected side (``projection.orient``).
    ``capture``: set by the optimizer on a refresh step that needs the full gradient (a leaf sharing W0's storage
    that requires grad; the forward reads W0 through it), else None.
    """

    def __init__(self, linear: nn.Linear, rank: int, side: str = "auto"):
        super().__init__()
        m, n = linear.weight.shape
        self.in_features, self.out_features = n, m
        self.left = orient(torch.empty(0, n, device="meta"), side, m)[1]
        r = min(int(rank), m, n)
        k, l = (m, n) if self.left else (n, m)
        kw = dict(dtype=linear.weight.dtype, device=linear.weight.device)
        self.weight = nn.Parameter(linear.weight.detach(), requires_grad=False)
        self.register_parameter("bias", linear.bias)
        self.factor = nn.Parameter(torch.zeros(r, l, **kw))
        self.register_buffer("basis", torch.zeros(k, r, **kw))
        self.capture: Optional[torch.Tensor] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        W0 = self.weight if self.capture is None else self.capture
        low = F.linear(F.linear(x, self.factor), self.basis) if self.left else (x @ self.basis) @ self.factor
        return F.linear(x, W0, self.bias) + low

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, rank={self.factor.shape[0]}, "
                f"side={'left' if self.left else 'right'}")

    def _product(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(X, Y) with X Y = B A: (Q, C) on the left, (C^T, Q^T) on the right."""
        return (self.basis, self.factor) if self.left else (self.factor.mT, self.basis.mT)

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        """W = W0 + Q C (left) or W0 + C^T Q^T (right), as a new m x n tensor."""
        return self.weight.addmm(*self._product())

    @torch.no_grad()
    def merge_(self) -> None:
        """W0 <- W0 + B A in place, then A <- 0: W is unchanged (up to one rounding)."""
        self.weight.addmm_(*self._product())
        self.factor.zero_()

    def capture_(self) -> None:
        """Make the next backward form the full gradient dL/dW0 (on a leaf sharing W0's storage)."""
        self.capture = self.weight.detach().requires_grad_()

    def release(self) -> torch.Tensor:
        """The captured full gradient; the layer returns to the factor form."""
        G, self.capture = self.capture.grad, None
        if G is None:
            raise RuntimeError("a refresh step's backward did not reach the factorized layer's weight: run the "
                               "forward after the optimizer is built and after each opt.step()")
        return G


def check_factorizable(rule: dict) -> None:
    """ValueError unless the low-rank rule can run on W0 + B A (see the module docstring's scope)."""
    problems = [text for bad, text in (
        ("refreshed" not in stages(rule), "a projector refreshed every update_gap steps (svd, rsvd, stiefel or a "
                                          f"callable), not projector={rule['projector']!r}"),
        (rule["complement_scale"] != 0, f"complement_scale=0, not {rule['complement_scale']!r}"),
        (rule["preconditioner"] != "none", f"preconditioner='none', not {rule['preconditioner']!r}"))
        if bad]
    if problems:
        raise ValueError("factorized training needs " + "; ".join(problems))


def _low_rank_rule(config: Union[str, dict], mode: str, hparams: dict) -> dict:
    if isinstance(config, str):
        return _configs(_preset(config), mode, hparams)[0]
    return validate_group({**GROUP_DEFAULTS, **config, "low_rank": True})


def factorize(model: nn.Module, config: Union[str, dict] = "golore", *, mode: str = "paper",
              **hparams) -> nn.Module:
    """Rewrite, in place, every ``nn.Linear`` whose weight ``subspace.param_groups(model)`` puts in the low-rank
    group as a :class:`FactorizedLinear` with the rule's rank and side; return the model (the new layer itself
    when ``model`` is such a Linear). ``config``: a preset name (with ``mode`` and the preset's keys, as
    ``subspace.make`` takes them) or a low-rank rule dict. Until an optimizer sets the bases, the model computes
    exactly what it did (C = 0)."""
    rule = _low_rank_rule(config, mode, hparams)
    check_factorizable(rule)
    selected = {id(p) for g in param_groups(model) if g["low_rank"] for p in g["params"]}
    swap = lambda child: FactorizedLinear(child, int(rule["rank"]), rule["side"])  # noqa: E731
    if type(model) is nn.Linear:
        return swap(model) if id(model.weight) in selected else model
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and id(child.weight) in selected:
                setattr(parent, name, swap(child))
    return model


def unfactorize(model: nn.Module) -> nn.Module:
    """Replace, in place, every :class:`FactorizedLinear` by an ``nn.Linear`` with the merged weight W0 + B A."""
    def plain(layer: FactorizedLinear) -> nn.Linear:
        out = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None,
                        dtype=layer.weight.dtype, device=layer.weight.device)
        out.weight = nn.Parameter(layer.merged_weight())
        if layer.bias is not None:
            out.bias = layer.bias
        return out
    if isinstance(model, FactorizedLinear):
        return plain(model)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, FactorizedLinear):
                setattr(parent, name, plain(child))
    return model


def _refresh_kind(group: dict, state: dict):
    """The projector that refreshes the basis at step ``state["step"]``, or None: the rule of
    ``SubspaceOptimizer._basis`` (first step, refresh_due with the stagger phase, random_after)."""
    t = state["step"]
    due = t == 0 or refresh_due(t + state.get("refresh_phase", 0), int(group["update_gap"]), group["refresh_index"])
    if not due:
        return None
    return "stiefel" if group["random_after"] is not None and t >= group["random_after"] else group["projector"]


class FactorizedOptimizer(PresetOptimizer):
    """The preset ``name`` on a :func:`factorize`-d model: each factor C steps on R = dL/dC, W0 and Q fixed
    between refreshes; every other parameter takes the preset's standard step (module docstring).

    ``model``: the factorized module (or a DDP wrapper of it); parameters are grouped by ``param_groups`` as
    ``subspace.make`` groups a Module, so each factor sits where its layer's weight sat. The state of a factor is
    the standard state of its W (basis k x r, moments r x l, step, limiter norm); a random refresh's deferred
    moment (``moment_on_refresh="transport-step"``) waits in ``exp_avg_after``. ``process_group``: the DDP group
    over which a refresh step's full gradient is averaged (DDP reduces only parameters that require grad: the
    factors and the dense parameters); None in a single process.
    """

    def __init__(self, model: nn.Module, name: str, *, mode: str = "paper", seed: int = 0,
                 nonfinite: str = "raise", process_group=None, **hparams):
        self.spec = _preset(name)
        self.process_group = process_group
        super().__init__(model, mode=mode, seed=seed, nonfinite=nonfinite, **hparams)
        self._layers = {m.factor: m for m in model.modules() if isinstance(m, FactorizedLinear)}
        placed = {p for g in self.param_groups if g["low_rank"] for p in g["params"]}
        if any(p not in placed for p in self._layers):
            raise ValueError("a FactorizedLinear's factor is not in a low-rank parameter group")
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                if p in self._layers:
                    check_factorizable(group)
                    self.state[p] = self._fresh_state(self._layers[p].weight, group, i)
                    self._prepare(self._layers[p], group, self.state[p])

    def zero_grad(self, set_to_none: bool = True) -> None:
        """torch's zero_grad, plus the full gradient a refresh step has captured."""
        super().zero_grad(set_to_none)
        for layer in self._layers.values():
            if layer.capture is not None:
                layer.capture.grad = None

    def load_state_dict(self, state_dict: dict, take_hyperparameters: bool = False) -> None:
        """The core's load, then each factorized layer's capture as the loaded step needs it (the capture is not
        state: a decomposition refresh step captures, every other step does not). Load the model's state dict
        too (W0, C and Q live there), before or after."""
        super().load_state_dict(state_dict, take_hyperparameters)
        for group in self.param_groups:
            for p in group["params"]:
                if p in self._layers:
                    self._layers[p].capture = None
                    if _refresh_kind(group, self.state[p]) not in (None, "stiefel"):
                        self._layers[p].capture_()

    def _update(self, p: torch.Tensor, group: dict) -> None:
        """A factor's step (the standard ``_update`` for every other parameter), then the next step's refresh."""
        layer = self._layers.get(p)
        if layer is None:
            return super()._update(p, group)
        state = self.state[p]
        dtype = DTYPES[group["state_dtype"]] if group["state_dtype"] else p.dtype
        R, moment_after = self._projected_gradient(layer, group, state, dtype)
        self._step_factor(layer, self.projected_direction(R, group, state), group)
        if moment_after is not None:
            state["exp_avg"].copy_(moment_after)
        state["step"] += 1
        self._prepare(layer, group, state)

    def _projected_gradient(self, layer: FactorizedLinear, group: dict, state: dict, dtype):
        """(R, first moment to store after this step or None): dL/dC, or at a decomposition refresh
        Q_new^T orient(G) with Q_new computed from the captured (and averaged) full gradient G."""
        if layer.capture is None:
            return layer.factor.grad.to(dtype), state.pop("exp_avg_after", None)
        G = self._averaged(layer.release()).to(dtype)
        Q, moment_after = self._basis(G, Rows.whole(G.shape[0]), layer.left, group, state)
        layer.basis.copy_(Q)
        return Q.mT @ (G if layer.left else G.mT), moment_after

    def _averaged(self, G: torch.Tensor) -> torch.Tensor:
        if self.process_group is None:
            return G
        world = dist.get_world_size(self.process_group)
        sharded._record("all_reduce", G, world)
        dist.all_reduce(G, group=self.process_group)
        return G.div_(world)

    def _step_factor(self, layer: FactorizedLinear, D: torch.Tensor, group: dict) -> None:
        """C <- C + c f D with c = -lr scale, f the shape factor of the m x n weight; decoupled decay of both
        parts of W = W0 + B C in the group's order."""
        lr = self._step_size(group)
        X = (D * shape_factor(group["shape_scale"], *layer.weight.shape)) * (-lr * group["scale"])
        parts = (layer.weight, layer.factor)
        for part in parts:
            self._decay(part, group, lr, "before")
        layer.factor.add_(X.to(layer.factor.dtype))
        for part in parts:
            self._decay(part, group, lr, "after")

    def _prepare(self, layer: FactorizedLinear, group: dict, state: dict) -> None:
        """Before the forward of step ``state["step"]``: if it refreshes, merge C into W0, then draw a random
        basis now (moments moved by the core's policy) or capture the full gradient for a decomposition."""
        kind = _refresh_kind(group, state)
        if kind is None:
            return
        layer.merge_()
        if kind != "stiefel":
            layer.capture_()
            return
        W0 = layer.weight
        shape_only = torch.empty((), dtype=state["basis"].dtype, device=W0.device).expand(W0.shape)
        Q, moment_after = self._basis(shape_only, Rows.whole(W0.shape[0]), layer.left, group, state)
        layer.basis.copy_(Q)
        if moment_after is not None:
            state["exp_avg_after"] = moment_after


def make_factorized(name: str, model: nn.Module, *, mode: str = "paper", seed: int = 0, nonfinite: str = "raise",
                    process_group=None, **hparams) -> tuple[nn.Module, FactorizedOptimizer]:
    """(model, optimizer): :func:`factorize` the model for preset ``name`` and build its
    :class:`FactorizedOptimizer`; the keys are ``subspace.make``'s. Wrap the returned model in DDP afterwards
    (``forward_sync_buffers=False``: the bases are identical on every rank by construction, so broadcasting
    them before each forward only costs k r per layer) and pass ``process_group``."""
    model = factorize(model, name, mode=mode, **hparams)
    return model, FactorizedOptimizer(model, name, mode=mode, seed=seed, nonfinite=nonfinite,
                                      process_group=process_group, **hparams)
