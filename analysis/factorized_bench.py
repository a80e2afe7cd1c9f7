"""The factorized form W = W0 + B A (``subspace.factorized``) measured against the standard step.

* ``trajectory_error``: the largest relative gap ||W_std - W_fact||_F / ||W_std||_F over every weight and step of
  a small MLP trained both ways (the two forms are one trajectory in exact arithmetic; this is the round-off).
* ``step_times`` / ``crossover_rank``: forward + backward + step of one m x n linear layer both ways on the CPU,
  repeats interleaved, ratio t_factorized / t_standard from one run, over ranks; the rank where the ratio
  reaches 1 (the factorized form stops paying). ``seed_flops`` gives the seed slides' counts beside them.
* ``ddp_bytes``: bytes all-reduced per step under DDP (gloo, 2 processes): the full gradients of the standard
  model against the factors of the factorized one (plus the refresh steps' full gradients for SVD bases).
"""
from __future__ import annotations

import copy
import json
import os
import statistics
import tempfile
import time

import torch
import torch.distributed as dist
from torch import nn

import subspace
from subspace import sharded
from subspace.factorized import FactorizedLinear, make_factorized

__all__ = ["mlp", "trajectory_error", "step_times", "crossover_rank", "seed_flops", "ddp_bytes"]


def mlp(n: int, hidden: int, m: int, seed: int = 0, dtype=torch.float32) -> nn.Sequential:
    """Linear(n -> hidden), tanh, Linear(hidden -> m), with biases: with hidden > n and hidden > m the first
    weight (hidden x n) is projected on the right and the second (m x hidden) on the left."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n, hidden), nn.Tanh(), nn.Linear(hidden, m)).to(dtype)


def _batches(n: int, m: int, batch: int, steps: int, seed: int, dtype):
    gen = torch.Generator().manual_seed(seed + 1)
    return [(torch.randn(batch, n, generator=gen, dtype=dtype), torch.randn(batch, m, generator=gen, dtype=dtype))
            for _ in range(steps)]


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [mod.merged_weight() if isinstance(mod, FactorizedLinear) else mod.weight.detach().clone()
            for mod in model.modules() if isinstance(mod, (nn.Linear, FactorizedLinear))]


def _train_step(model, opt, x, y) -> None:
    torch.nn.functional.mse_loss(model(x), y).backward()
    opt.step()
    opt.zero_grad()


def trajectory_error(name: str, *, n: int = 12, hidden: int = 20, m: int = 6, batch: int = 16, steps: int = 8,
                     dtype=torch.float32, seed: int = 0, mode: str = "paper", **hparams) -> float:
    """max over steps and weights of ||W_std - W_fact||_F / ||W_std||_F, the preset ``name`` run on an MLP
    (``mlp``; biases dense) by ``subspace.make`` and by ``subspace.make_factorized`` from the same start, the
    same batches and the same seed."""
    standard = mlp(n, hidden, m, seed, dtype)
    model = copy.deepcopy(standard)
    opt = subspace.make(name, standard, mode=mode, seed=seed, **hparams)
    model, fopt = make_factorized(name, model, mode=mode, seed=seed, **hparams)
    worst = 0.0
    for x, y in _batches(n, m, batch, steps, seed, dtype):
        _train_step(standard, opt, x, y)
        _train_step(model, fopt, x, y)
        for a, b in zip(_weights(standard), _weights(model)):
            worst = max(worst, float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(a)))
    return worst


def _timed(model, opt, x, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        model(x).square().mean().backward()
        opt.step()
        opt.zero_grad()
    return (time.perf_counter() - start) / steps


def step_times(ranks=(16, 32, 64, 128, 256, 512), *, m: int = 512, n: int = 512, batch: int = 2048,
               preset: str = "golore", repeats: int = 5, steps: int = 2, threads: int | None = 1,
               seed: int = 0) -> list[dict]:
    """Per rank: seconds of one forward + backward + step of an m x n Linear (no bias; input batch x n; loss
    mean(y^2)) with ``subspace.make(preset)`` (t_standard_s) and ``make_factorized(preset)`` (t_factorized_s),
    and ratio = t_factorized_s / t_standard_s. Refreshes are excluded (update_gap beyond the run; the first step,
    which draws the basis, is a warm-up). Each of ``repeats`` rounds times ``steps`` steps of each form back to
    back (order alternating), and each time is the median over rounds, so both forms see the same machine load.
    ``threads``: torch's intra-op threads during the measurement (restored after; None: unchanged).
    Rows: {rank, m, n, batch, t_standard_s, t_factorized_s, ratio}."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return [_rank_row(r, m, n, batch, preset, repeats, steps, seed) for r in ranks]
    finally:
        torch.set_num_threads(previous)


def _rank_row(rank, m, n, batch, preset, repeats, steps, seed) -> dict:
    torch.manual_seed(seed)
    standard = nn.Linear(n, m, bias=False)
    hp = dict(rank=rank, update_gap=10**9, lr=1e-3)
    forms = [(standard, subspace.make(preset, standard, seed=seed, **hp)),
             make_factorized(preset, copy.deepcopy(standard), seed=seed, **hp)]
    x = torch.randn(batch, n, generator=torch.Generator().manual_seed(seed))
    for model, opt in forms:
        _timed(model, opt, x, 1)
    times = ([], [])
    for i in range(repeats):
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            times[j].append(_timed(*forms[j], x, steps))
    t_std, t_fact = statistics.median(times[0]), statistics.median(times[1])
    return dict(rank=rank, m=m, n=n, batch=batch, t_standard_s=t_std, t_factorized_s=t_fact, ratio=t_fact / t_std)


def crossover_rank(rows: list[dict]) -> float | None:
    """The rank at which the ratio first reaches 1, interpolated linearly between the two ranks around it
    (rows sorted by rank); the first rank if it is already >= 1 there; None if it stays below 1."""
    rows = sorted(rows, key=lambda row: row["rank"])
    for lo, hi in zip([None] + rows[:-1], rows):
        if hi["ratio"] >= 1.0:
            if lo is None:
                return float(hi["rank"])
            w = (1.0 - lo["ratio"]) / (hi["ratio"] - lo["ratio"])
            return lo["rank"] + w * (hi["rank"] - lo["rank"])
    return None


def seed_flops(m: int, n: int, r: int, b: int) -> dict:
    """The seed slides' per-step computation counts (GoLore talk, "Comparing the computational complexities"):
    GaLore 6bmn + 4rmn + 2mn + 3rn, the ReLoRA-like form 4bmn + 4brm + 6brn + 5rn (B: m x r, A: r x n)."""
    standard = 6 * b * m * n + 4 * r * m * n + 2 * m * n + 3 * r * n
    factorized = 4 * b * m * n + 4 * b * r * m + 6 * b * r * n + 5 * r * n
    return dict(standard=standard, factorized=factorized, ratio=factorized / standard)


# ------------------------------------------------------------------------------------------------ DDP bytes
def ddp_bytes(preset: str = "galore", *, n: int = 12, hidden: int = 20, m: int = 6, batch: int = 8, steps: int = 4,
              world: int = 2, **hparams) -> dict:
    """Train ``mlp(n, hidden, m)`` under DDP (gloo, ``world`` CPU processes, each on its half of the batch) twice:
    standard (``subspace.make``) and factorized (``make_factorized``, DDP with ``forward_sync_buffers=False``,
    ``process_group`` the default group). Returns bytes all-reduced per step, counted in DDP's communication
    hook (gradient buckets) and in ``sharded.counting`` (the factorized refresh steps' full gradients):
    {standard_bytes, factorized_bytes, factorized_ddp_bytes, refresh_bytes (all per step, averaged over the run),
    ratio = factorized_bytes / standard_bytes, error (``trajectory_error``'s measure between the two DDP runs),
    steps}."""
    import torch.multiprocessing as mp
    with tempfile.TemporaryDirectory() as folder:
        args = (folder, preset, n, hidden, m, batch, steps, world, hparams)
        # spawn, not fork: a fork of a process that already runs threads (OpenMP, gloo) can inherit a held lock and
        # hang in the child (seen in the test suite)
        mp.start_processes(_ddp_worker, args=args, nprocs=world, join=True, start_method="spawn")
        with open(os.path.join(folder, "result.json")) as f:
            return json.load(f)


def _counting_hook(counter: list, bucket):
    """DDP comm hook: count the bucket, then the default all-reduce (mean)."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    counter[0] += bucket.buffer().numel() * bucket.buffer().element_size()
    return default_hooks.allreduce_hook(None, bucket)


def _ddp_worker(rank, folder, preset, n, hidden, m, batch, steps, world, hparams) -> None:
    from torch.nn.parallel import DistributedDataParallel as DDP
    dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        data = [(x.chunk(world)[rank], y.chunk(world)[rank]) for x, y in _batches(n, m, batch, steps, 0, torch.float32)]
        standard = mlp(n, hidden, m)
        model = copy.deepcopy(standard)
        opt = subspace.make(preset, standard, **hparams)
        model, fopt = make_factorized(preset, model, process_group=dist.group.WORLD, **hparams)
        counts = {"standard": [0], "factorized": [0]}
        wrapped = {"standard": DDP(standard), "factorized": DDP(model, forward_sync_buffers=False)}
        for key, ddp in wrapped.items():
            ddp.register_comm_hook(counts[key], _counting_hook)
        with sharded.counting() as ledger:
            for x, y in data:
                _train_step(wrapped["standard"], opt, x, y)
                _train_step(wrapped["factorized"], fopt, x, y)
        error = max(float(torch.linalg.matrix_norm(a - b) / torch.linalg.matrix_norm(a))
                    for a, b in zip(_weights(standard), _weights(model)))
        if rank == 0:
            fact = counts["factorized"][0] + ledger.payload["all_reduce"]
            result = dict(standard_bytes=counts["standard"][0] / steps, factorized_bytes=fact / steps,
                          factorized_ddp_bytes=counts["factorized"][0] / steps,
                          refresh_bytes=ledger.payload["all_reduce"] / steps,
                          ratio=fact / counts["standard"][0], error=error, steps=steps)
            with open(os.path.join(folder, "result.json"), "w") as f:
                json.dump(result, f)
    finally:
        dist.destroy_process_group()
