"""Communication of each preset's step on FSDP2-sharded parameters, against an all-gather of every matrix.

``comm_bench(world=2)`` spawns ``world`` gloo processes on the CPU, shards a stack of Linear layers with
``fully_shard`` (FSDP2, ``Shard(0)`` on a 1-D mesh) and, for each preset, counts what ``optimizer.step()`` sends
(``subspace.sharded.counting``) over one refresh period (so a refresh every T steps is amortised), and times the
step at that world size and in one process on the same layers. The baseline is the naive port of a single-process
optimizer to sharded weights: all-gather every matrix gradient (m x n) each step and run the whole update on every
rank. Bytes are payloads (the all-reduced tensor, the gathered result); ``sent_per_rank`` applies ring algorithms
(all-reduce 2 (P-1)/P N, all-gather (P-1)/P N). The forward and backward (FSDP2's own all-gathers and
reduce-scatters of weights and gradients) are not counted: they are the same for every optimizer.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time

import torch

import subspace
from subspace.sharded import counting

__all__ = ["SHAPES", "comm_bench", "format_rows"]

#: (in_features, out_features) of the benchmark's layers: one small LLaMA block (attention q, k, v, o; MLP gate, up,
#: down), so square (right projection), tall (right) and wide (left) weights all occur.
SHAPES = ((64, 64), (64, 64), (64, 64), (64, 64), (64, 172), (64, 172), (172, 64))


def _keys(name: str, rank: int, update_gap: int) -> dict:
    accepts = subspace.PRESETS[name].accepts()
    return {k: v for k, v in dict(rank=rank, update_gap=update_gap, lr=1e-3).items() if k in accepts}


def _layers(shapes) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(*[torch.nn.Linear(i, o, bias=False) for i, o in shapes])


def _grads(model, shapes, t: int) -> None:
    """Gradients of a fixed least-squares loss per layer (each layer fed its own input: shapes need not chain)."""
    g = torch.Generator().manual_seed(t)
    loss = sum(layer(torch.randn(16, i, generator=g)).square().mean() for layer, (i, _) in zip(model, shapes))
    loss.backward()


def _timed_steps(model, opt, shapes, start: int, steps: int) -> float:
    """Seconds per optimizer step (the backward is not timed)."""
    total = 0.0
    for t in range(start, start + steps):
        opt.zero_grad()
        _grads(model, shapes, t)
        begin = time.perf_counter()
        opt.step()
        total += time.perf_counter() - begin
    return total / steps


def _matrix_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.ndim == 2)


def _worker(rank: int, world: int, port: int, out: str, names, modes, shapes, rank_r: int, gap: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    rows = []
    for name in names:
        for mode in modes:
            model = _layers(shapes)
            for layer in model:
                fully_shard(layer, mesh=mesh)
            opt = subspace.make(name, list(model.parameters()), mode=mode, **_keys(name, rank_r, gap))
            _timed_steps(model, opt, shapes, 0, 1)  # step 0: first bases, state created
            with counting() as ledger:
                seconds = _timed_steps(model, opt, shapes, 1, gap)
            single = _layers(shapes)
            if rank == 0:
                sopt = subspace.make(name, list(single.parameters()), mode=mode, **_keys(name, rank_r, gap))
                _timed_steps(single, sopt, shapes, 0, 1)
                single_seconds = _timed_steps(single, sopt, shapes, 1, gap)
                baseline = _matrix_bytes(single)
                rows.append({"preset": name, "mode": mode, "world": world, "rank": rank_r, "update_gap": gap,
                             "bytes_per_step": ledger.total / gap, "sent_per_rank": ledger.sent / gap,
                             "calls_per_step": sum(ledger.calls.values()) / gap, "allgather_bytes": baseline,
                             "ratio": ledger.total / gap / baseline, "step_ms": 1e3 * seconds,
                             "step_ms_single": 1e3 * single_seconds})
            dist.barrier()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(rows, f)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def comm_bench(world: int = 2, names=None, modes=("paper",), shapes=SHAPES, rank: int = 8,
               update_gap: int = 4) -> list[dict]:
    """One row per (preset, mode): bytes communicated per optimizer step at ``world`` ranks (mean over one refresh
    period), the all-gather baseline, their ratio, and the step time at ``world`` and in one process (ms)."""
    import torch.multiprocessing as mp

    names = list(names or subspace.available())
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "rows.json")
        mp.spawn(_worker, args=(world, _free_port(), out, names, list(modes), tuple(shapes), rank, update_gap),
                 nprocs=world)
        with open(out) as f:
            return json.load(f)


def format_rows(rows: list[dict]) -> str:
    """A plain-text table of ``comm_bench`` rows."""
    head = (f"{'preset':<12}{'mode':<10}{'bytes/step':>12}{'all-gather':>12}{'ratio':>8}{'calls':>7}"
            f"{'ms (P)':>9}{'ms (1)':>9}")
    lines = [head]
    for r in rows:
        lines.append(f"{r['preset']:<12}{r['mode']:<10}{r['bytes_per_step']:>12.0f}{r['allgather_bytes']:>12d}"
                     f"{r['ratio']:>8.3f}{r['calls_per_step']:>7.1f}{r['step_ms']:>9.2f}{r['step_ms_single']:>9.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(format_rows(comm_bench()))
