"""Per-parameter optimizer steps fused into backward (the "per-layer weight updates" of GaLore, Zhao et al. 2024).

    fused = subspace.fuse_into_backward(opt, model)
    for batch in loader:
        for micro in batch[:-1]:
            with fused.accumulating():           # gradients accumulate; no step
                (loss_fn(model, micro) / len(batch)).backward()
        (loss_fn(model, batch[-1]) / len(batch)).backward()   # each parameter steps as its gradient completes
        opt.step()                               # a no-op for the fused parameters; keeps LR schedulers' bookkeeping
        scheduler.step()

Each fused parameter gets a ``register_post_accumulate_grad_hook``: when its gradient of the last micro-batch has
been accumulated, the hook (optionally) all-reduces it, screens it, runs ``optimizer.step_parameter`` and frees it
(``p.grad = None``), so at most the gradients of the layers whose backward is in flight are alive at once instead
of all P of them: peak memory drops by about P - (largest layer) gradient elements.

Semantics, and where they differ from the official per-layer code (galore-torch ``layerwise`` scripts, one
optimizer and one scheduler per parameter, stepping in every backward):

* Gradient accumulation: inside ``accumulating()`` the hooks do nothing, so the gradient that reaches the step is
  the sum over the micro-batches, as in the standard loop (GA=k on k micro-batches equals GA=1 on their
  concatenation, to float32 round-off; the official per-layer code steps once per micro-batch, GaLore issue #78).
* LR schedules: one optimizer, so one step count; the hooks read the group's ``lr`` as the scheduler last set it.
  Each parameter's own ``step`` counts its updates, exactly as in the standard step.
* Non-finite gradients (documented rule; a deferred commit would have to keep every gradient or a copy of every
  updated weight, which is the memory this mode exists to save): the gradients are screened one by one as they
  complete, in backward order. At the first non-finite one, that parameter and every parameter whose gradient
  completes later in the same backward are left untouched (their gradients are dropped). Parameters updated
  earlier in that backward keep their update. A non-finite loss makes the first gradient non-finite, so it leaves
  every weight and state untouched. At the end of the backward the optimizer's ``nonfinite`` rule applies:
  "raise" raises FloatingPointError naming the parameter (out of ``backward()``), "skip" counts the step in
  ``skipped_steps``.
* Gradient clipping: a global norm needs every gradient before the first step, which per-layer stepping does not
  have. ``clip_norm=c`` clips each parameter's gradient on its own, G <- G min(1, c / ||G||_F) (per-parameter
  clipping, a different rule from torch.nn.utils.clip_grad_norm_).
* Data parallel: do not wrap the model in DDP (its reducer would all-reduce after the hooks have stepped). With
  ``torch.distributed`` initialized, each hook all-reduces its gradient over ``process_group`` (default: the
  default group) and divides by its size before stepping, once per optimizer step (not inside
  ``accumulating()``), which is DDP's averaged gradient. Every rank then takes the same step.
* Random draws: with ``random_stream="per-parameter"`` (every paper mode) each parameter draws from its own stream,
  seeded by (seed, its position in ``param_groups``, step), so fused steps draw exactly what ``step()`` draws
  (GoLore, randomized SVD). With ``"shared"`` (official GoLore) the one generator is consumed in the order the
  hooks fire (backward order), a different sequence of the same law.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ["FusedBackward", "fuse_into_backward"]


class FusedBackward:
    """The hooks of one ``fuse_into_backward`` call: ``accumulating()`` and ``remove()``."""

    def __init__(self, optimizer, params, process_group=None, clip_norm: Optional[float] = None):
        where = {id(p): (gi, i) for gi, g in enumerate(optimizer.param_groups) for i, p in enumerate(g["params"])}
        missing = [tuple(p.shape) for p in params if id(p) not in where]
        if missing:
            raise ValueError(f"fuse_into_backward: parameters of shapes {missing} are not in the optimizer")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"clip_norm={clip_norm!r} is invalid; allowed: None or a number > 0")
        if process_group is None and dist.is_available() and dist.is_initialized():
            process_group = dist.group.WORLD
        self.optimizer, self.process_group, self.clip_norm = optimizer, process_group, clip_norm
        self._where = where
        self._accumulating = False
        self._in_backward = False
        self._bad: Optional[str] = None   # the first non-finite gradient of the backward in flight
        self._handles = [p.register_post_accumulate_grad_hook(self._hook) for p in params]

    @contextmanager
    def accumulating(self):
        """Backward passes inside the block only accumulate gradients (no step, no all-reduce)."""
        previous, self._accumulating = self._accumulating, True
        try:
            yield self
        finally:
            self._accumulating = previous

    def remove(self) -> None:
        """Remove the hooks: the optimizer steps in ``step()`` again."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def _hook(self, p: torch.Tensor) -> None:
        if self._accumulating:
            return
        if not self._in_backward:
            self._in_backward = True
            torch.autograd.Variable._execution_engine.queue_callback(self._end_of_backward)
        if self.process_group is not None:
            dist.all_reduce(p.grad, group=self.process_group)
            p.grad.div_(dist.get_world_size(self.process_group))
        if self._bad is None and not bool(torch.isfinite(p.grad.sum())) and not bool(torch.isfinite(p.grad).all()):
            self._bad = self._label(p)
        if self._bad is None:
            if self.clip_norm is not None:
                norm = torch.linalg.vector_norm(p.grad.float())
                p.grad.mul_((self.clip_norm / (norm + 1e-6)).clamp(max=1.0).to(p.grad.dtype))
            gi, index = self._where[id(p)]
            self.optimizer.step_parameter(p, self.optimizer.param_groups[gi], index)
        p.grad = None

    def _label(self, p: torch.Tensor) -> str:
        gi, j = self._where[id(p)]
        names = self.optimizer.param_groups[gi].get("param_names")
        return f"{names[j] if names else f'param_groups[{gi}][params][{j}]'} (shape {tuple(p.shape)})"

    def _end_of_backward(self) -> None:
        bad, self._bad, self._in_backward = self._bad, None, False
        if bad is None:
            return
        if self.optimizer.nonfinite == "skip":
            self.optimizer.skipped_steps += 1
            return
        raise FloatingPointError(f"non-finite gradient in {bad}; it and every parameter whose gradient came later in "
                                 "this backward were left untouched (pass nonfinite='skip' to skip such steps)")


def fuse_into_backward(optimizer, model_or_params, *, process_group=None,
                       clip_norm: Optional[float] = None) -> FusedBackward:
    """Step each parameter of ``model_or_params`` (an ``nn.Module`` or an iterable of the optimizer's parameters)
    from its post-accumulate-grad hook and free its gradient at once; see the module docstring for gradient
    accumulation, schedules, non-finite gradients, clipping and data parallelism. Parameters of the optimizer that
    are not fused keep stepping in ``optimizer.step()``."""
    if isinstance(model_or_params, torch.nn.parallel.DistributedDataParallel):
        raise ValueError("fuse_into_backward: pass the module inside DistributedDataParallel; the fused hooks "
                         "all-reduce each gradient themselves (DDP's reducer would run after they stepped)")
    if isinstance(model_or_params, torch.nn.Module):
        params = [p for p in model_or_params.parameters() if p.requires_grad]
    else:
        params = [item[1] if isinstance(item, tuple) else item for item in model_or_params]
    return FusedBackward(optimizer, params, process_group, clip_norm)
