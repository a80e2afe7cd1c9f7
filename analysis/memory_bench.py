"""Peak training memory measured on the CPU, beside the analytic count of ``probes.memory``.

Each configuration (LLaMA size, method, mode) runs in a fresh Python process (``python -m analysis.memory_bench
CONFIG_JSON``), so no allocation of an earlier configuration is counted. In that process: build the float32 model
and the optimizer, draw the batch, run one warm-up step (states and bases exist after it, as in a long run), then
reset the kernel's resident-set high-water mark (``/proc/self/clear_refs`` <- 5, Linux >= 4.0) and read the
resident set (``VmRSS``) as the base; run ``steps`` more steps and read the high-water mark (``VmHWM``). Measured:
``peak - base``, the memory a step adds on top of the weights and the optimizer state, which is

    analytic = gradients (mode) + activations (probes.memory.ACTIVATION_MODEL, float32)
               + with 8-bit states, the largest parameter's moments in float32 (dequantized for its update)

since the states are already resident in the base (and, factorized, the factors and basis buffers); ``state_bytes`` is the exact state size from the optimizer's
own tensors (``records.state_bytes``), reported beside ``probes.memory``'s formula count. glibc is told to serve
every block above 64 KiB by mmap (``MALLOC_MMAP_THRESHOLD_=65536``), so freed tensors leave the resident set at
once instead of staying in the heap.

Tolerance: the step also holds temporaries the model does not count (autograd's intermediate products, the
optimizer's per-parameter scratch, the (de)quantizer's chunk temporaries, allocator pages), and eager
attention on CPU may keep more than the model's 2 a s bytes per token per head; agreement is stated as
``ratio = measured / analytic`` within ``[1 - RTOL, 1 + RTOL]`` with ``RTOL = 0.5`` (what these omissions may
plausibly reach, fixed before measuring), and every row carries the ratio so a reader can judge the rest.
Ratios against AdamW's standard step come from the same run (``bench``).

Modes: ``standard``, ``per-layer`` (``subspace.fuse_into_backward``), ``factorized`` (``subspace.make_factorized``:
W0 + B A, the r x max(m, n) factors' gradients instead of the m x n ones; sumo with ``complement_scale=0``, which
the form needs) and each with 8-bit states. The measured steps are not refresh steps (update_gap 200; the warm-up
step is the refresh), so the factorized rows show the between-refresh step that GaLore and SUMO take T - 1 times in
T (their refresh step also forms the full gradients: ``grads_refresh`` in the row). A method without a
factorized form (adamw) gets a row marked ``applicable: False`` with the reason, and no measurement.

Step time (``step_times``): one process, one model copy per entry (same initialisation, same batch), a full step
(forward, backward, optimizer) timed round-robin over the entries for ``rounds`` rounds after a warm-up round, so
machine noise hits every entry alike; each entry's median, and ratios to ``galore`` (standard) and to
``galore-torch`` (GaLoreAdamW) from that run. galore-torch entries: GaLoreAdamW, GaLoreAdamW8bit (needs
bitsandbytes) and the layer-wise pattern of its scripts (one GaLoreAdamW per parameter, stepped in a
post-accumulate-grad hook). Each entry also carries ``vs_standard``, its median over the same method's standard
entry (the factorized form's cost or gain at this rank; ``analysis.factorized_bench`` measures the crossover rank).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

__all__ = ["SIZES", "METHODS", "MODES", "RTOL", "applicable", "measure", "bench", "format_rows", "step_times", "format_times"]

SIZES = ("tiny", "9m", "20m")
METHODS = ("adamw", "galore", "golore", "sumo")
#: mode -> (probes.memory mode: standard | per-layer | factorized, state bits)
MODES = {"standard": ("standard", 32), "per-layer": ("per-layer", 32), "8-bit": ("standard", 8),
         "per-layer+8-bit": ("per-layer", 8), "factorized": ("factorized", 32), "factorized+8-bit": ("factorized", 8)}
RTOL = 0.5


def applicable(method: str, mode: str) -> str | None:
    """None if ``method`` runs in ``mode``, else the reason it does not."""
    from probes.memory import FACTORIZABLE

    if MODES[mode][0] == "factorized" and method not in FACTORIZABLE:
        return f"{method} has no factorized form (W0 + B A needs a refreshed projection basis)"
    return None


def _build(method: str, kind: str, bits: int, size: str, rank: int, gap: int | None = None):
    """(model, optimizer, fused hooks or None) of ``method`` in memory mode ``kind`` with ``bits``-bit states."""
    import subspace
    from probes.models import build_llama, selection_groups

    model = build_llama(size)
    hp = {k: v for k, v in dict(rank=rank, update_gap=gap, state_bits=bits).items()
          if v is not None and k in subspace.PRESETS[method].accepts()}
    if kind == "factorized":
        if method.startswith("sumo"):
            hp["complement_scale"] = 0.0
        model, opt = subspace.make_factorized(method, model, lr=1e-4, **hp)
        return model, opt, None
    opt = subspace.make(method, selection_groups(model, "galore"), lr=1e-4, **hp)
    return model, opt, subspace.fuse_into_backward(opt, model) if kind == "per-layer" else None


def _status(field: str) -> int:
    """A ``/proc/self/status`` size field (kB) in bytes."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def _child(cfg: dict) -> dict:
    """Run one configuration in this process and return the measured row (the module docstring's protocol)."""
    import torch

    from records import state_bytes

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    model, opt, hooks = _build(cfg["method"], *MODES[cfg["mode"]], cfg["size"], cfg["rank"])
    ids = torch.randint(4, model.config.vocab_size, (cfg["batch"], cfg["seq_len"]))

    def step():
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = _status("VmRSS")
    for _ in range(cfg["steps"]):
        step()
    peak = _status("VmHWM")
    if hooks is not None:
        hooks.remove()
    return dict(cfg, base_rss=base, peak_rss=peak, measured=peak - base,
                state_bytes=sum(state_bytes(s) for s in opt.state.values()))


def _analytic(cfg: dict) -> dict:
    from probes.memory import UNIT, memory_row

    kind, bits = MODES[cfg["mode"]]
    row = memory_row(cfg["size"], cfg["method"], bytes_per_element=4, mode=kind, state_bits=bits, batch=cfg["batch"], seq_len=cfg["seq_len"],
                     **({} if cfg["method"] == "adamw" else {"rank": cfg["rank"]}))
    return {f"analytic_{k}": round(row[f"{k}_gib"] * UNIT)
            for k in ("grads", "activations", "transient", "states", "factor", "grads_refresh")}


def measure(size: str, method: str, mode: str, *, batch: int = 4, seq_len: int = 64, steps: int = 2,
            rank: int | None = None, threads: int = 1) -> dict:
    """One configuration in a fresh process: measured peak step memory beside the analytic count. A method
    without ``mode`` (``applicable``) gets ``applicable=False`` and ``reason``, no measurement."""
    from probes.memory import RANKS

    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is invalid; allowed: {list(MODES)}")
    cfg = dict(size=size, method=method, mode=mode, batch=batch, seq_len=seq_len, steps=steps,
               rank=rank or RANKS[size], threads=threads)
    reason = applicable(method, mode)
    if reason is not None:
        return dict(cfg, applicable=False, reason=reason)
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    done = subprocess.run([sys.executable, "-m", "analysis.memory_bench", json.dumps(cfg)], env=env,
                          capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update(_analytic(cfg))
    row["analytic"] = row["analytic_grads"] + row["analytic_activations"] + row["analytic_transient"]
    row["ratio"] = row["measured"] / row["analytic"]
    row["agrees"] = abs(row["ratio"] - 1) <= RTOL
    row["applicable"] = True
    return row


def bench(sizes=SIZES, methods=METHODS, modes=tuple(MODES), **kw) -> list[dict]:
    """Every (size, method, mode); ``vs_adamw`` = (measured step memory + state bytes + factorized: the factors and
    basis buffers, counted) over AdamW standard's, per size, from this run (the weights W, or W0, are alike in
    every mode and left out)."""
    rows = [measure(size, method, mode, **kw) for size in sizes for method in methods for mode in modes]
    for size in sizes:
        ref = next((r for r in rows if (r["size"], r["method"], r["mode"]) == (size, "adamw", "standard")), None)
        for r in rows:
            if ref is not None and r["size"] == size and r["applicable"]:
                r["vs_adamw"] = ((r["measured"] + r["state_bytes"] + r["analytic_factor"])
                                 / (ref["measured"] + ref["state_bytes"]))
    return rows


def format_rows(rows: list[dict]) -> str:
    """Plain text, MiB (2^20 bytes)."""
    mib = 2 ** 20
    lines = [f"peak step memory on CPU (VmHWM - VmRSS after a warm-up step, fresh process each), MiB; analytic = "
             f"gradients + float32 activations (+ 8-bit transient); agreement |ratio - 1| <= {RTOL}",
             f"{'size':>5} {'method':<7} {'mode':<16} {'measured':>9} {'analytic':>9} {'ratio':>6} {'states':>8} "
             f"{'formula':>8} {'vs adamw':>8}"]
    for r in rows:
        if not r.get("applicable", True):
            lines.append(f"{r['size']:>5} {r['method']:<7} {r['mode']:<16} n/a: {r['reason']}")
            continue
        lines.append(f"{r['size']:>5} {r['method']:<7} {r['mode']:<16} {r['measured'] / mib:9.1f} "
                     f"{r['analytic'] / mib:9.1f} {r['ratio']:6.2f} {r['state_bytes'] / mib:8.2f} "
                     f"{r['analytic_states'] / mib:8.2f} {r.get('vs_adamw', float('nan')):8.2f}")
    return "\n".join(lines)



def _galore_torch_groups(groups: list[dict], rank: int, gap: int, scale: float) -> list[dict]:
    return [dict(params=g["params"], rank=rank, update_proj_gap=gap, scale=scale, proj_type="std") if g["low_rank"]
            else dict(params=g["params"]) for g in groups]


def _entry(name: str, size: str, rank: int, gap: int):
    """(model, step-after-backward) for one timed entry: ``<method>:<mode>`` of ours or a galore-torch variant."""
    import torch

    from analysis.benchmarks import _import_galore_torch
    from probes.models import build_llama, selection_groups

    torch.manual_seed(0)
    method, mode = name.split(":")
    if method == "galore-torch":
        model = build_llama(size)
        groups = selection_groups(model, "galore")
        gt = _import_galore_torch()
        if mode == "layer-wise":
            optimizers = {p: gt.GaLoreAdamW(_galore_torch_groups([dict(g, params=[p])], rank, gap, 0.25), lr=1e-4,
                                            no_deprecation_warning=True) for g in groups for p in g["params"]}

            def hook(p):
                optimizers[p].step()
                optimizers[p].zero_grad(set_to_none=True)
            for p in optimizers:
                p.register_post_accumulate_grad_hook(hook)
            return model, lambda: None
        cls = gt.GaLoreAdamW8bit if mode == "8-bit" else gt.GaLoreAdamW
        kw = {} if mode == "8-bit" else {"no_deprecation_warning": True}
        opt = cls(_galore_torch_groups(groups, rank, gap, 0.25), lr=1e-4, **kw)
    else:
        if mode not in MODES:
            raise ValueError(f"mode={mode!r} is invalid; allowed: {list(MODES)}")
        reason = applicable(method, mode)
        if reason is not None:
            raise ValueError(reason)
        model, opt, _ = _build(method, *MODES[mode], size, rank, gap)

    def after_backward():
        opt.step()
        opt.zero_grad(set_to_none=True)
    return model, after_backward


def step_times(entries=("adamw:standard", "galore:standard", "galore:per-layer", "galore:8-bit",
                        "galore:per-layer+8-bit", "galore:factorized", "golore:standard", "golore:factorized",
                        "sumo:standard", "sumo:factorized", "galore-torch:standard", "galore-torch:layer-wise",
                        "galore-torch:8-bit"), *, size: str = "9m", batch: int = 4, seq_len: int = 64,
               rounds: int = 5, gap: int = 200, rank: int | None = None, threads: int = 1) -> list[dict]:
    """Median full-step seconds of each entry and its ratios (module docstring); an entry that cannot be built
    here (galore-torch missing, bitsandbytes without a CPU path) gets ``error`` instead of a time."""
    import torch

    from probes.memory import RANKS

    torch.set_num_threads(threads)
    rank = rank or RANKS[size]
    built, rows = {}, {}
    for name in entries:
        try:
            built[name] = _entry(name, size, rank, gap)
            rows[name] = dict(entry=name, size=size, batch=batch, seq_len=seq_len, rank=rank, times=[])
        except (ImportError, RuntimeError, ValueError) as exc:
            rows[name] = dict(entry=name, size=size, error=f"{type(exc).__name__}: {exc}")
    ids = torch.randint(4, 32000 if size != "tiny" else 260, (batch, seq_len))

    def step(model, after_backward):
        model(input_ids=ids, labels=ids).loss.backward()
        after_backward()
    for name, entry in list(built.items()):   # the warm-up round; an entry that fails here is reported
        try:
            step(*entry)
        except (AssertionError, RuntimeError) as exc:   # e.g. GaLoreAdamW8bit calls torch.cuda.synchronize()
            del built[name]
            rows[name] = dict(entry=name, size=size, error=f"{type(exc).__name__}: {exc}")
    for _ in range(rounds):
        for name, entry in built.items():
            start = time.perf_counter()
            step(*entry)
            rows[name]["times"].append(time.perf_counter() - start)
    for row in rows.values():
        if "times" in row:
            row["median_s"] = statistics.median(row["times"])
    for ref in ("galore:standard", "galore-torch:standard"):
        base = rows.get(ref, {}).get("median_s")
        for row in rows.values():
            if base and "median_s" in row:
                row[f"vs_{ref}"] = row["median_s"] / base
    for name, row in rows.items():
        base = rows.get(name.split(":")[0] + ":standard", {}).get("median_s")
        if base and "median_s" in row:
            row["vs_standard"] = row["median_s"] / base
    return list(rows.values())


def format_times(rows: list[dict]) -> str:
    """Plain text: median step (ms) and the two ratios."""
    lines = ["full training step on CPU (forward + backward + optimizer), median over rounds, one process",
             f"{'entry':<24} {'ms':>8} {'/galore':>8} {'/galore-torch':>13} {'/standard':>9}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['entry']:<24} not run: {r['error']}")
            continue
        lines.append(f"{r['entry']:<24} {r['median_s'] * 1e3:8.1f} {r.get('vs_galore:standard', float('nan')):8.2f} "
                     f"{r.get('vs_galore-torch:standard', float('nan')):13.2f} "
                     f"{r.get('vs_standard', float('nan')):9.2f}")
    return "\n".join(lines)

if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
