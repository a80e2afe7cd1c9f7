"""``sublab bench``: speed and memory of the optimizer core, as long-format rows and tables of ratios.

Three benchmarks, each a plain function returning rows (dicts with the keys of :data:`ROW_KEYS`):

* :func:`bench_step_time`: optimizer step time of every preset of ``subspace.available()``, of
  ``torch.optim.AdamW`` (the baseline, ``torch-adamw``) and of ``galore_torch.GaLoreAdamW`` (``galore-torch``) on the
  LLaMA-60M layer shapes and on a whole tiny LLaMA-like model (a stack of those ``nn.Linear`` shapes with small
  embeddings, norms and head). Gradients are fixed random tensors (no forward/backward: only ``step()`` is timed).
  After ``warmup`` steps, ``repeats`` windows of consecutive steps are timed and the median of (window time /
  window length) is reported. A method with a periodic refresh (projector ``svd``/``rsvd``/``stiefel``, read from
  its preset, not from its name) is timed over windows of exactly one refresh period T, so each window contains
  exactly one refresh: the amortised step time. A method without one (AdamW, Muon, Adam-SN, OSD after its first
  step) is timed over ``min(T, steady_window)`` steps. The windows of all methods are interleaved (round-robin) so
  machine noise hits every method alike; ratios are to ``torch-adamw`` timed in the same run, and ``galore`` is also
  compared to ``galore-torch`` at equal rank, gap and scale.
* :func:`bench_projector`: projector and orthogonalizer cost on the shapes of OSD Figure 2: full SVD
  (``torch.linalg.svd``), randomized SVD (``subspace.randomized_svd_basis``), one online-PCA step
  (``subspace.projection.online_pca_step``: the gradient of OSD eq. 6 and one AdamW step of P), Newton–Schulz
  5 steps in float32 and bfloat16 on the r x max(m, n) projected moment (``ns5-projected-*``, what SUMO-NS5 does)
  and on the full m x n matrix (``ns5-full-*``, what Muon does), QR of a Gaussian (``subspace.stiefel``). The
  speed-up rows (method ``svd``, baseline X) are t_svd / t_X, beside the paper's for online PCA.
* :func:`bench_state_bytes`: optimizer-state bytes measured after real steps on small shapes against the preset's
  docstring formula (``subspace.state_numel``; the ratio must be exactly 1), and per LLaMA size (60m, 130m, 350m,
  1b; layer shapes of reference-implementations §1.1, built on the meta device, no allocation) by formula, as a
  ratio to AdamW, in bytes of bfloat16 (the papers' pure-bf16 accounting).

Row schema: ``bench, method, shape, dtype, device, metric, value, unit, baseline_method, baseline_metric, ratio,
reference, config, code_version``. ``ratio = value / value of the row with method = baseline_method and metric =
baseline_metric in the same (bench, shape, device)``; ``reference`` holds a paper's number where one exists.
Results are JSONL, one file per benchmark and device (:data:`BENCH_FILES`), saved one *unit* at a time (a problem,
an OSD shape, a method, a LLaMA size: :func:`unit_of`) as it is measured, each save an atomic replacement
(``records.atomic_write_text``); ``--resume`` keeps the saved units and measures only the missing ones, with the
settings recorded in ``bench.json``. The output folder is locked during a run.
Timings are never asserted by tests: machines are shared and noisy; only ratios from one run are reported.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import platform
import statistics
import sys
import time
import warnings
import zlib
from pathlib import Path
from typing import Callable, Collection, Sequence

import torch
from torch import nn

import subspace
from subspace.config import GROUP_DEFAULTS
from subspace.presets import PRESETS
from subspace.projection import online_pca_step
from records import FolderBusy, atomic_write_text, code_version, dumps, lock_folder, read_jsonl, state_bytes
from records import writable_folder
from records.options import DefaultsHelpFormatter, DeviceError, check_device, integer, one_of

__all__ = ["ROW_KEYS", "LAYER_SHAPES", "OSD_SHAPES", "OSD_PAPER_SPEEDUP", "LLAMA_SIZES", "LLAMA_RANKS",
           "BASELINE", "GALORE_TORCH", "bench_step_time", "bench_projector", "bench_state_bytes", "fill_ratios",
           "unit_of", "format_step_table", "format_projector_table", "format_state_table", "llama_layer_shapes",
           "tiny_llama", "meta_llama", "add_arguments", "main", "BENCH_FILES", "SETTINGS_FILE"]

ROW_KEYS = ("bench", "method", "shape", "dtype", "device", "metric", "value", "unit", "baseline_method",
            "baseline_metric", "ratio", "reference", "config", "code_version")

#: LLaMA-60M hidden-matrix shapes (out x in): q/k/v/o 512x512, gate/up 1376x512, down 512x1376.
LAYER_SHAPES = ((512, 512), (1376, 512), (512, 1376))
#: OSD Figure 2 shapes and its SVD / online-PCA speed-ups (paper-claims §3.4, read from the bar chart).
OSD_SHAPES = ((512, 1376), (1024, 2736), (2048, 5461), (4096, 11008))
OSD_PAPER_SPEEDUP = {
    (512, 1376): {"rtx3090": 16.38, "a100": 20.71},
    (1024, 2736): {"rtx3090": 51.00, "a100": 57.93},
    (2048, 5461): {"rtx3090": 49.75, "a100": 72.88},
    (4096, 11008): {"rtx3090": 58.01, "a100": 142.43},
}
#: reference-implementations §1.1: (hidden, intermediate, layers); vocab 32000, untied embeddings, no biases.
LLAMA_SIZES = {"60m": (512, 1376, 8), "130m": (768, 2048, 12), "350m": (1024, 2736, 24), "1b": (2048, 5461, 24)}
#: GaLore Table 2 ranks.
LLAMA_RANKS = {"60m": 128, "130m": 256, "350m": 256, "1b": 512}
LLAMA_VOCAB = 32000

BASELINE = "torch-adamw"
GALORE_TORCH = "galore-torch"
BF16_BYTES = 2


# ---------------------------------------------------------------------------------------------- provenance, I/O
def environment(device: str) -> dict:
    env = {"threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
           "machine": platform.machine(), "processor": platform.processor() or None, "cpu_count": os.cpu_count()}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return env


def unit_of(row: dict) -> str:
    """The unit of measurement a row belongs to: its method for ``state_small``, else its shape (a problem, an OSD
    shape or a LLaMA size). A unit is measured, given its ratios and saved as a whole."""
    return row["method"] if row["bench"] == "state_small" else row["shape"]


class _Units:
    """Rows taken one unit at a time: each finished unit gets its ratios (``fill_ratios``) and goes to
    ``on_unit`` at once (``main`` saves it); a unit named in ``skip`` (finished by an earlier run) is not measured."""

    def __init__(self, skip: Collection[str], on_unit: Callable[[list[dict]], None] | None):
        self.skip, self.on_unit, self.rows = set(skip), on_unit, []

    def todo(self, unit: str) -> bool:
        return unit not in self.skip

    def finish(self, rows: list[dict]) -> None:
        fill_ratios(rows)
        self.rows += rows
        if self.on_unit is not None:
            self.on_unit(rows)


def _row(bench, method, shape, dtype, device, metric, value, unit, config, baseline=None, reference=None) -> dict:
    bm, bmet = (None, None) if baseline is None else baseline
    return {"bench": bench, "method": method, "shape": shape, "dtype": dtype, "device": str(device),
            "metric": metric, "value": float(value), "unit": unit, "baseline_method": bm, "baseline_metric": bmet,
            "ratio": None, "reference": reference, "config": config, "code_version": code_version()}


def fill_ratios(rows: list[dict]) -> list[dict]:
    """Set ``ratio = value / baseline value`` for every row naming a baseline (matched in bench, shape, device)."""
    index: dict[tuple, float] = {}
    for r in rows:
        key = (r["bench"], r["shape"], r["device"], r["method"], r["metric"])
        if key in index and index[key] != r["value"]:
            raise ValueError(f"two rows {key} with different values; baselines would be ambiguous")
        index[key] = r["value"]
    for r in rows:
        if r["baseline_method"] is None:
            continue
        key = (r["bench"], r["shape"], r["device"], r["baseline_method"], r["baseline_metric"])
        if key not in index:
            raise KeyError(f"row {r['method']}/{r['shape']}: no baseline row {key}")
        base = index[key]
        r["ratio"] = r["value"] / base if base else math.nan
    return rows


def _shape_str(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def _seed(*parts) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


@contextlib.contextmanager
def _no_gc():
    """Keep Python's cyclic collector out of a timed region (a full collection costs ~0.2 s with torch loaded)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------------------------- models
class _Linear(nn.Module):
    def __init__(self, out_f, in_f, device, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_f, in_f, device=device, dtype=dtype))


class _Norm(nn.Module):
    def __init__(self, d, device, dtype):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d, device=device, dtype=dtype))


def _llama_stack(hidden, inter, layers, vocab, device, dtype) -> nn.Module:
    """Parameters of a LLaMA decoder with HF names (embed_tokens, layers.i.self_attn.*_proj, mlp.*, norms, lm_head).

    Only the parameter shapes and names matter here (the optimizer sees parameters, not the forward pass)."""
    def lin(o, i):
        return _Linear(o, i, device, dtype)

    model = nn.Module()
    model.embed_tokens = nn.Embedding(vocab, hidden, device=device, dtype=dtype)
    model.layers = nn.ModuleList()
    for _ in range(layers):
        block = nn.Module()
        block.self_attn = nn.Module()
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            setattr(block.self_attn, name, lin(hidden, hidden))
        block.mlp = nn.Module()
        block.mlp.gate_proj, block.mlp.up_proj, block.mlp.down_proj = lin(inter, hidden), lin(inter, hidden), lin(hidden, inter)
        block.input_layernorm, block.post_attention_layernorm = _Norm(hidden, device, dtype), _Norm(hidden, device, dtype)
        model.layers.append(block)
    model.norm = _Norm(hidden, device, dtype)
    model.lm_head = lin(vocab, hidden)
    return model


def llama_layer_shapes(size: str) -> list[tuple[int, ...]]:
    """Every parameter shape of the LLaMA of ``size`` (reference-implementations §1.1), in model order."""
    return [tuple(p.shape) for p in meta_llama(size).parameters()]


def meta_llama(size: str) -> nn.Module:
    """The LLaMA of ``size`` on the meta device (shapes only, no storage)."""
    if size not in LLAMA_SIZES:
        raise ValueError(f"size={size!r} is unknown; allowed: {sorted(LLAMA_SIZES)}")
    h, f, layers = LLAMA_SIZES[size]
    return _llama_stack(h, f, layers, LLAMA_VOCAB, "meta", torch.float32)


def tiny_llama(layers: int = 2, vocab: int = 4096, hidden: int = 512, inter: int = 1376, *, device="cpu",
               dtype=torch.float32, seed: int = 0) -> nn.Module:
    """A whole tiny LLaMA-like parameter set: ``layers`` blocks of the 60M shapes, small vocabulary, random init."""
    model = _llama_stack(hidden, inter, layers, vocab, device, dtype)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim > 1:
                p.copy_(0.02 * torch.randn(p.shape, generator=g, dtype=dtype))
            else:
                p.fill_(1.0)
    return model


# ---------------------------------------------------------------------------------------------- step time
OFFICIAL_SUFFIX = "-official"


def _preset_and_mode(method: str) -> tuple[str, str]:
    """A bench method names a preset, in official mode with the suffix ``-official`` (``galore-official``)."""
    if method.endswith(OFFICIAL_SUFFIX):
        return method[: -len(OFFICIAL_SUFFIX)], "official"
    return method, "paper"


def _refresh_period(method: str, gap: int) -> int | None:
    """T for presets whose projector refreshes periodically, None otherwise (read from the preset's stages)."""
    if method in (BASELINE,):
        return None
    if method == GALORE_TORCH:
        return gap
    name, mode = _preset_and_mode(method)
    return gap if PRESETS[name].configs(mode)[0]["projector"] in ("svd", "rsvd", "stiefel") else None


def _read_by(method: str, hp: dict) -> dict:
    """The keys of ``hp`` that preset ``method`` reads (the core refuses the others)."""
    return {k: v for k, v in hp.items() if k in PRESETS[method].accepts()}


def _import_galore_torch():
    """``galore_torch``, imported with bitsandbytes' log warnings and Python warnings silenced: on a CPU machine it
    reports optional GPU/CPU kernels it cannot load, which says nothing about this benchmark."""
    quiet = logging.getLogger("bitsandbytes")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import galore_torch
    finally:
        quiet.setLevel(level)
    return galore_torch


def _make_optimizer(method: str, model: nn.Module, rank: int, gap: int, scale: float) -> torch.optim.Optimizer:
    if method == BASELINE:
        return torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)
    groups = subspace.param_groups(model)
    if method == GALORE_TORCH:
        galore_torch = _import_galore_torch()
        tg = []
        for g in groups:
            if g["low_rank"]:
                tg.append({"params": g["params"], "rank": rank, "update_proj_gap": gap, "scale": scale,
                           "proj_type": "std"})
            else:
                tg.append({"params": g["params"]})
        return galore_torch.GaLoreAdamW(tg, lr=1e-3, no_deprecation_warning=True)
    name, mode = _preset_and_mode(method)
    hp = dict(rank=rank, update_gap=gap)
    if name == "galore":
        hp["scale"] = scale
    return subspace.make(name, groups, mode=mode, **_read_by(name, hp))


def _single(shape, device, dtype, seed) -> nn.Module:
    model = nn.Module()
    g = torch.Generator().manual_seed(seed)
    model.weight = nn.Parameter((0.02 * torch.randn(shape, generator=g, dtype=dtype)).to(device))
    return model


class _Runner:
    def __init__(self, method, model, grads, rank, gap, scale, steady_window, device):
        self.method, self.model, self.device = method, model, device
        for p, gr in zip(model.parameters(), grads):
            p.grad = gr.clone()
        self.opt = _make_optimizer(method, model, rank, gap, scale)
        period = _refresh_period(method, gap)
        self.window = period if period is not None else min(gap, steady_window)
        self.times: list[float] = []

    def steps(self, n):
        for _ in range(n):
            self.opt.step()

    def time_window(self):
        with _no_gc():
            _sync(self.device)
            t0 = time.perf_counter()
            self.steps(self.window)
            _sync(self.device)
            self.times.append((time.perf_counter() - t0) / self.window)


def bench_step_time(methods: Sequence[str] | None = None, shapes: Sequence[tuple[int, int]] = LAYER_SHAPES, *,
                    model_layers: int | None = 2, model_vocab: int = 4096, rank: int = 128, gap: int = 200,
                    scale: float = 0.25, repeats: int = 5, warmup: int = 3, steady_window: int = 20,
                    device: str = "cpu", dtype: torch.dtype = torch.float32, hidden: int = 512, inter: int = 1376,
                    log: Callable[[str], None] | None = None, skip: Collection[str] = (),
                    on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Median amortised step time per method and shape, ratios to ``torch-adamw`` (and galore to galore-torch).

    ``shapes``: single-parameter problems; ``model_layers``: blocks of the tiny LLaMA (None or 0 skips it;
    ``hidden``/``inter`` set its matrix shapes). ``methods`` defaults to ``subspace.available()``; the baseline and
    ``galore-torch`` are always added.
    """
    methods = list(subspace.available() if methods is None else methods)
    for extra in (BASELINE, GALORE_TORCH):
        if extra not in methods:
            methods.append(extra)
    problems = [(_shape_str(s), (lambda s=s: _single(s, device, dtype, _seed("step", s)))) for s in shapes]
    if model_layers:
        problems.append((f"tiny-llama-{model_layers}L-{hidden}x{inter}-v{model_vocab}",
                         lambda: tiny_llama(model_layers, model_vocab, hidden, inter, device=device, dtype=dtype)))
    dname = str(dtype).replace("torch.", "")
    env = environment(device)
    units = _Units(skip, on_unit)
    for label, build in problems:
        if not units.todo(label):
            continue
        rows: list[dict] = []
        g = torch.Generator().manual_seed(_seed("grad", label))
        ref = build()
        grads = [torch.randn(p.shape, generator=g, dtype=dtype).to(device) for p in ref.parameters()]
        runners = []
        for m in methods:
            model = build()
            r = _Runner(m, model, grads, rank, gap, scale, steady_window, device)
            r.steps(warmup)
            runners.append(r)
        gc.collect()
        for rep in range(repeats):
            order = runners[rep % len(runners):] + runners[:rep % len(runners)]   # rotate: no fixed position bias
            for r in order:
                r.time_window()
        if log:
            log(f"  step {label}: " + ", ".join(f"{r.method} {1e3 * statistics.median(r.times):.2f}ms"
                                               for r in runners))
        for r in runners:
            cfg = {"rank": rank, "gap": gap, "scale": scale, "window": r.window, "repeats": repeats,
                   "warmup": warmup, "refresh_period": _refresh_period(r.method, gap), "times_s": r.times,
                   "n_params": sum(p.numel() for p in r.model.parameters()), **env}
            rows.append(_row("step_time", r.method, label, dname, device, "step_time_s",
                             statistics.median(r.times), "s", cfg, baseline=(BASELINE, "step_time_s")))
            if _preset_and_mode(r.method)[0] == "galore":
                rows.append(_row("step_time", r.method, label, dname, device, "step_time_s",
                                 statistics.median(r.times), "s", cfg, baseline=(GALORE_TORCH, "step_time_s")))
        del runners
        units.finish(rows)
    return units.rows


# ---------------------------------------------------------------------------------------------- projector cost
def _median_time(fn: Callable[[], object], repeats: int, warmup: int, budget_s: float, device) -> tuple[float, list]:
    """Median wall time of ``fn`` over up to ``repeats`` calls after ``warmup`` calls; stops early (>= 1 call) once
    the timed calls have used ``budget_s``."""
    for _ in range(warmup):
        fn()
    times: list[float] = []
    while len(times) < max(1, repeats):
        with _no_gc():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - t0)
        if sum(times) > budget_s:
            break
    return statistics.median(times), times


def projector_cases(shape: tuple[int, int], rank: int, device, generator: torch.Generator) -> dict:
    """name -> (callable, dtype, input description) for one OSD Figure 2 shape."""
    m, n = shape
    G = torch.randn(m, n, generator=generator).to(device)
    left = m < n
    A = G if left else G.mT
    k, l = A.shape
    r = min(rank, k)
    side = "left" if left else "right"
    M = torch.randn(r, l, generator=generator).to(device)           # a projected moment, r x max(m, n)
    pca_state = {"basis": subspace.stiefel(k, r, generator).to(device), "pca_step": 0}
    pca_state["pca_exp_avg"] = torch.zeros_like(pca_state["basis"])
    pca_state["pca_exp_avg_sq"] = torch.zeros_like(pca_state["basis"])
    pca_group = {**GROUP_DEFAULTS, "lr": 1e-3}
    Gb = G.bfloat16()
    Mb = M.bfloat16()
    cases = {
        "svd": (lambda: torch.linalg.svd(G, full_matrices=False), "float32", f"G {m}x{n}"),
        "rsvd": (lambda: subspace.randomized_svd_basis(G, r, side, generator=generator), "float32",
                 f"G {m}x{n}, oversample 5, 2 power iterations"),
        "basis-gram-f64": (lambda: subspace.svd_basis(G, r, side, "gram"), "float32",
                           f"exact top-{r} subspace of G {m}x{n}: float64 Gram + eigh (paper-mode default)"),
        "basis-svd-f32": (lambda: subspace.svd_basis(G, r, side, "svd"), "float32",
                          f"top-{r} singular vectors of G {m}x{n}: float32 thin SVD (official modes)"),
        "polar-gram-f64": (lambda: subspace.polar(M, method="gram"), "float32",
                           f"U V^T of the projected moment {r}x{l}: float64 r x r Gram (default)"),
        "polar-svd-f32": (lambda: subspace.polar(M, method="svd"), "float32",
                          f"U V^T of the projected moment {r}x{l}: float32 SVD (official sumo)"),
        "online-pca": (lambda: online_pca_step(pca_state, A, pca_group), "float32",
                       f"P {k}x{r}, A {k}x{l}: grad of OSD eq. 6 + one AdamW step"),
        "ns5-projected-fp32": (lambda: subspace.newton_schulz(M, 5), "float32", f"projected moment {r}x{l}"),
        "ns5-projected-bf16": (lambda: subspace.newton_schulz(Mb, 5), "bfloat16", f"projected moment {r}x{l}"),
        "ns5-full-fp32": (lambda: subspace.newton_schulz(G, 5), "float32", f"full matrix {m}x{n}"),
        "ns5-full-bf16": (lambda: subspace.newton_schulz(Gb, 5), "bfloat16", f"full matrix {m}x{n}"),
        "qr-gaussian": (lambda: subspace.stiefel(k, r, generator, device=device), "float32",
                        f"St({k}, {r}) on the CPU generator, moved to the device"),
    }
    return cases


def bench_projector(shapes: Sequence[tuple[int, int]] = OSD_SHAPES, *, rank: int = 128, repeats: int = 5,
                    warmup: int = 1, budget_s: float = 30.0, methods: Sequence[str] | None = None,
                    device: str = "cpu", log: Callable[[str], None] | None = None, skip: Collection[str] = (),
                    on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """Time per call of each projector/orthogonalizer on each shape; speed-ups t_svd / t_X (rows with method
    ``svd`` and baseline X), with the OSD paper's SVD/online-PCA speed-ups as ``reference``. Units: shapes
    (see :class:`_Units` for ``skip`` and ``on_unit``)."""
    env = environment(device)
    units = _Units(skip, on_unit)
    for shape in shapes:
        label = _shape_str(shape)
        if not units.todo(label):
            continue
        rows: list[dict] = []
        gen = torch.Generator().manual_seed(_seed("projector", label))
        cases = projector_cases(tuple(shape), rank, device, gen)
        names = [c for c in cases if methods is None or c in methods or c == "svd"]
        timed = {}
        gc.collect()
        for name in names:
            fn, dname, what = cases[name]
            t, times = _median_time(fn, repeats, warmup, budget_s, device)
            timed[name] = t
            cfg = {"rank": rank, "input": what, "repeats": len(times), "warmup": warmup, "times_s": times, **env}
            rows.append(_row("projector", name, label, dname, device, "time_s", t, "s", cfg))
            if log:
                log(f"  projector {label} {name}: {1e3 * t:.2f} ms ({len(times)} calls)")
        svd_row = next(r for r in rows if r["shape"] == label and r["method"] == "svd")
        for name in names:
            if name == "svd":
                continue
            ref = OSD_PAPER_SPEEDUP.get(tuple(shape)) if name == "online-pca" else None
            rows.append(_row("projector", "svd", label, "float32", device, "time_s", timed["svd"], "s",
                             {**svd_row["config"], "speedup_over": name}, baseline=(name, "time_s"),
                             reference=ref))
        units.finish(rows)
    return units.rows


# ---------------------------------------------------------------------------------------------- thread counts
def bench_threads(threads: Sequence[int] = (1, 2), *, rank: int = 128, gap: int = 200, scale: float = 0.25,
                  repeats: int = 5, device: str = "cpu", log: Callable[[str], None] | None = None,
                  skip: Collection[str] = (), on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """``galore`` (paper and official mode) against ``galore-torch`` and ``torch-adamw`` on one model holding the
    LLaMA-60M layer shapes, at each torch thread count: ratios from one run per count (units ``<model>@<t>thr``)."""
    rows = []
    before = torch.get_num_threads()
    try:
        for t in threads:
            torch.set_num_threads(t)
            label = f"llama-60m-shapes@{t}thr"
            if label in skip:
                continue
            unit = bench_step_time(["galore", "galore-official"], shapes=(), model_layers=1, model_vocab=8, rank=rank,
                                   gap=gap, scale=scale, repeats=repeats, device=device, log=log)
            for r in unit:
                r["bench"], r["shape"] = "threads", label
            fill_ratios(unit)
            rows += unit
            if on_unit is not None:
                on_unit(unit)
    finally:
        torch.set_num_threads(before)
    return rows


def format_threads_table(rows: list[dict]) -> str:
    rows = [r for r in rows if r["bench"] == "threads" and r["baseline_method"] == GALORE_TORCH]
    if not rows:
        return ""
    cfg = rows[0]["config"]
    lines = [f"galore / galore-torch by torch thread count (rank {cfg['rank']}, T={cfg['gap']}, one model of the "
             f"LLaMA-60M layer shapes; device {rows[0]['device']})"]
    lines += [f"  {r['shape']:<28} {r['method']:<16} {r['ratio']:.3f}  ({1e3 * r['value']:.2f} ms/step)" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- sharded, factorized
def bench_comm(*, world: int = 2, device: str = "cpu", log: Callable[[str], None] | None = None,
               skip: Collection[str] = (), on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """``analysis.comm_bench`` as bench rows: bytes per step of every preset (paper and official) on FSDP2 at
    ``world`` gloo processes, as a ratio to an all-gather of every matrix gradient (unit ``fsdp@<world>``)."""
    label = f"fsdp@{world}"
    if label in skip:
        return []
    from analysis.comm_bench import comm_bench

    rows = []
    for r in comm_bench(world=world, modes=("paper", "official")):
        cfg = {k: r[k] for k in ("world", "rank", "update_gap", "calls_per_step", "step_ms", "step_ms_single")}
        method = r["preset"] + ("" if r["mode"] == "paper" else "-official")
        rows.append(_row("comm", method, label, "float32", device, "bytes_per_step", r["bytes_per_step"], "B", cfg,
                         reference=r["allgather_bytes"]))
    for r in rows:
        r["ratio"] = r["value"] / r["reference"]
    if on_unit is not None:
        on_unit(rows)
    return rows


def format_comm_table(rows: list[dict]) -> str:
    rows = [r for r in rows if r["bench"] == "comm"]
    if not rows:
        return ""
    lines = [f"FSDP2 bytes per optimizer step vs an all-gather of every matrix gradient ({rows[0]['shape']}, gloo; "
             f"ms per step at P ranks and in one process)"]
    lines += [f"  {r['method']:<22} {r['value']:>10.0f} B  {r['ratio']:.3f}x   {r['config']['step_ms']:.1f} ms / "
              f"{r['config']['step_ms_single']:.1f} ms" for r in rows]
    return "\n".join(lines)


def bench_factorized(ranks: Sequence[int] = (16, 32, 64, 128, 256), *, repeats: int = 5, device: str = "cpu",
                     log: Callable[[str], None] | None = None, skip: Collection[str] = (),
                     on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """``analysis.factorized_bench.step_times`` as bench rows: one 512 x 512 layer's forward + backward + step in
    the factorized form W0 + B A against the standard form, per rank (unit ``linear-512x512``)."""
    label = "linear-512x512"
    if label in skip:
        return []
    from analysis.factorized_bench import crossover_rank, step_times

    measured = step_times(ranks, repeats=repeats, threads=None)
    cross = crossover_rank(measured)
    rows = [_row("factorized", f"golore r={r['rank']}", label, "float32", device, "time_ratio", r["ratio"], "x",
                 {**r, "crossover_rank": cross}) for r in measured]
    if on_unit is not None:
        on_unit(rows)
    return rows


def format_factorized_table(rows: list[dict]) -> str:
    rows = [r for r in rows if r["bench"] == "factorized"]
    if not rows:
        return ""
    cross = rows[0]["config"]["crossover_rank"]
    lines = [f"Factorized W0 + B A / standard step time, one 512x512 Linear, batch {rows[0]['config']['batch']} "
             f"(crossover rank {'none' if cross is None else f'{cross:.0f}'})"]
    lines += [f"  {r['method']:<12} {r['value']:.2f}x" for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- memory modes
def bench_memory(sizes: Sequence[str] = ("tiny", "9m", "20m"), *, device: str = "cpu",
                 log: Callable[[str], None] | None = None, skip: Collection[str] = (),
                 on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """``analysis.memory_bench`` as bench rows, one unit per LLaMA size: measured peak step memory of galore, golore,
    sumo and adamw in every memory mode (standard, per-layer, 8-bit, per-layer+8-bit, factorized, factorized+8-bit;
    a fresh process each) beside the analytic count, with ratios to AdamW's standard step (a mode a method does
    not have, adamw factorized, is a row with value NaN and ``config["applicable"] = False``), then the full-step
    time of each mode against galore, galore-torch and the method's standard step (unit ``<size>-time``)."""
    from analysis import memory_bench as MB

    rows = []
    for size in sizes:
        if size in skip:
            continue
        unit = [_row("memory", f"{r['method']}:{r['mode']}", size, "float32", device, "step_memory_B",
                     r["measured"] if r["applicable"] else math.nan, "B", r,
                     reference=r["analytic"] if r["applicable"] else None) for r in MB.bench(sizes=(size,))]
        for r in unit:
            r["ratio"] = r["config"].get("vs_adamw")
        rows += unit
        if on_unit is not None:
            on_unit(unit)
        if log:
            log(MB.format_rows([r["config"] for r in unit]))
    label = f"{sizes[min(1, len(sizes) - 1)]}-time"
    if label not in skip:
        timed = MB.step_times(size=label[: -len("-time")])
        unit = [_row("memory", r["entry"], label, "float32", device, "step_time_s", r.get("median_s", math.nan), "s", r)
                for r in timed]
        for r in unit:
            r["ratio"] = r["config"].get("vs_galore-torch:standard")
        rows += unit
        if on_unit is not None:
            on_unit(unit)
    return rows


def format_memory_table(rows: list[dict]) -> str:
    from analysis import memory_bench as MB

    memory = [r["config"] for r in rows if r["bench"] == "memory" and r["metric"] == "step_memory_B"]
    times = [r["config"] for r in rows if r["bench"] == "memory" and r["metric"] == "step_time_s"]
    return "\n".join(t for t in (MB.format_rows(memory) if memory else "", MB.format_times(times) if times else "") if t)


# ---------------------------------------------------------------------------------------------- state bytes
def bench_state_bytes(methods: Sequence[str] | None = None, *,
                      small_shapes: Sequence[tuple[int, ...]] = ((24, 40), (40, 24), (32, 32), (40,)),
                      small_rank: int = 8, small_gap: int = 2, steps: int = 5,
                      sizes: Sequence[str] = tuple(LLAMA_SIZES), ranks: dict | None = None,
                      device: str = "cpu", dtype: torch.dtype = torch.float32, skip: Collection[str] = (),
                      on_unit: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """State bytes measured after ``steps`` real steps vs the docstring formula (ratio 1 is exact agreement), and
    per LLaMA size by formula on the meta device, as a ratio to AdamW (bytes of bfloat16 states). Units: each
    method of the measured part, each LLaMA size (see :class:`_Units` for ``skip`` and ``on_unit``)."""
    methods = list(subspace.available() if methods is None else methods)
    ranks = dict(LLAMA_RANKS if ranks is None else ranks)
    dname = str(dtype).replace("torch.", "")
    esize = torch.empty((), dtype=dtype).element_size()
    units = _Units(skip, on_unit)
    g = torch.Generator().manual_seed(_seed("state"))
    init = [0.1 * torch.randn(s, generator=g, dtype=dtype) for s in small_shapes]
    grads = [[torch.randn(s, generator=g, dtype=dtype) for s in small_shapes] for _ in range(steps)]
    for method in methods:
        if not units.todo(method):
            continue
        rows: list[dict] = []
        params = [nn.Parameter(w.clone().to(device)) for w in init]
        hp = _read_by(method, dict(rank=small_rank, update_gap=small_gap))
        opt = subspace.make(method, params, **hp)
        for t in range(steps):
            for p, gr in zip(params, grads[t]):
                p.grad = gr.to(device)
            opt.step()
        cfg = {"rank": small_rank, "gap": small_gap, "steps": steps, "element_size": esize}
        tot_m = tot_f = 0
        for p in params:
            measured = state_bytes(opt.state[p])
            formula = subspace.state_numel(method, tuple(p.shape), low_rank=p.ndim >= 2, **hp) * esize
            tot_m, tot_f = tot_m + measured, tot_f + formula
            label = _shape_str(p.shape)
            rows.append(_row("state_small", method, label, dname, device, "state_bytes_formula", formula, "B", cfg))
            rows.append(_row("state_small", method, label, dname, device, "state_bytes", measured, "B", cfg,
                             baseline=(method, "state_bytes_formula")))
        label = "total:" + "+".join(_shape_str(s) for s in small_shapes)
        rows.append(_row("state_small", method, label, dname, device, "state_bytes_formula", tot_f, "B", cfg))
        rows.append(_row("state_small", method, label, dname, device, "state_bytes", tot_m, "B", cfg,
                         baseline=(method, "state_bytes_formula")))
        units.finish(rows)
    for size in sizes:
        if not units.todo(f"llama-{size}"):
            continue
        rows = []
        model = meta_llama(size)
        groups = subspace.param_groups(model)
        n_params = sum(p.numel() for p in model.parameters())
        for method in methods:
            hp = _read_by(method, dict(rank=ranks[size]))
            numel = sum(subspace.state_numel(method, tuple(p.shape), low_rank=grp["low_rank"], **hp)
                        for grp in groups for p in grp["params"])
            cfg = {"rank": ranks[size], "n_params": n_params, "bytes_per_element": BF16_BYTES,
                   "selection": "subspace.param_groups default (embed, lm_head, norms dense)",
                   "llama": dict(zip(("hidden", "intermediate", "layers"), LLAMA_SIZES[size]), vocab=LLAMA_VOCAB)}
            rows.append(_row("state_llama", method, f"llama-{size}", "bfloat16", "meta", "state_bytes_formula",
                             numel * BF16_BYTES, "B", cfg, baseline=("adamw", "state_bytes_formula")))
        units.finish(rows)
    return units.rows


# ---------------------------------------------------------------------------------------------- tables
def _grid(rows, row_keys, col_keys, cell, row_head="method") -> str:
    cells = [[row_head] + list(col_keys)]
    for rk in row_keys:
        cells.append([rk] + [cell(rk, ck) for ck in col_keys])
    widths = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
             for line in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _order(names):
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def format_step_table(rows: list[dict]) -> str:
    rows = [r for r in rows if r["bench"] == "step_time"]
    if not rows:
        return ""
    shapes = _order(r["shape"] for r in rows)
    methods = _order(r["method"] for r in rows)
    vs = {(r["method"], r["shape"], r["baseline_method"]): r for r in rows}

    def cell(m, s):
        r = vs.get((m, s, BASELINE))
        return "-" if r is None else f"{r['ratio']:.2f}"
    base = {r["shape"]: r["value"] for r in rows if r["method"] == BASELINE and r["baseline_method"] == BASELINE}
    cfg = rows[0]["config"]
    out = [f"Step time / torch.optim.AdamW (median of {cfg['repeats']} windows; refresh methods amortised over "
           f"T={cfg['gap']}, rank {cfg['rank']}; {cfg['threads']} threads; device {rows[0]['device']})",
           _grid(rows, methods, shapes, cell)]
    out.append("  ".join(["AdamW ms/step"] + [f"{s}: {1e3 * base[s]:.3f}" for s in shapes if s in base]))
    gl = ["galore / galore-torch"] + [f"{s}: {vs[('galore', s, GALORE_TORCH)]['ratio']:.2f}" for s in shapes
                                      if ("galore", s, GALORE_TORCH) in vs]
    out.append("  ".join(gl))
    return "\n".join(out)


def format_projector_table(rows: list[dict]) -> str:
    rows = [r for r in rows if r["bench"] == "projector"]
    if not rows:
        return ""
    shapes = _order(r["shape"] for r in rows)
    methods = _order(r["method"] for r in rows)
    t = {(r["method"], r["shape"]): r["value"] for r in rows if r["baseline_method"] is None}
    sp = {(r["baseline_method"], r["shape"]): r for r in rows if r["baseline_method"] is not None}

    def cell(m, s):
        if (m, s) not in t:
            return "-"
        if m == "svd":
            return f"{1e3 * t[(m, s)]:.1f}ms"
        return f"{1e3 * t[(m, s)]:.2f}ms ({sp[(m, s)]['ratio']:.1f}x)"
    cfg = rows[0]["config"]
    out = [f"Projector/orthogonalizer time per call, (t_SVD / t_method) in brackets; rank {cfg['rank']}; "
           f"{cfg['threads']} threads; device {rows[0]['device']}",
           _grid(rows, methods, shapes, cell)]
    for gpu in ("rtx3090", "a100"):
        out.append("  ".join([f"paper SVD/online-PCA {gpu}:"] + [
            f"{s}: {sp[('online-pca', s)]['reference'][gpu]:.2f}x" for s in shapes
            if ("online-pca", s) in sp and sp[("online-pca", s)]["reference"]]))
    out.append("ns5-projected: on the r x max(m,n) projected moment (SUMO-NS5); ns5-full: on the m x n matrix (Muon)")
    return "\n".join(out)


def format_state_table(rows: list[dict]) -> str:
    small = [r for r in rows if r["bench"] == "state_small" and r["metric"] == "state_bytes"]
    llama = [r for r in rows if r["bench"] == "state_llama"]
    out = []
    if small:
        shapes = _order(r["shape"] for r in small)
        methods = _order(r["method"] for r in small)
        v = {(r["method"], r["shape"]): r["ratio"] for r in small}
        out.append(f"Optimizer-state bytes measured after {small[0]['config']['steps']} steps / docstring formula "
                   f"(rank {small[0]['config']['rank']}, gap {small[0]['config']['gap']}, {small[0]['dtype']})")
        out.append(_grid(small, methods, shapes, lambda m, s: f"{v[(m, s)]:.2f}" if (m, s) in v else "-"))
    if llama:
        sizes = _order(r["shape"] for r in llama)
        methods = _order(r["method"] for r in llama)
        v = {(r["method"], r["shape"]): r for r in llama}
        out.append("State bytes by formula per LLaMA size (bf16, meta device) / AdamW; [GiB]; ranks "
                   + ", ".join(f"{r['shape']} {r['config']['rank']}" for r in llama if r["method"] == methods[0]))
        out.append(_grid(llama, methods, sizes,
                         lambda m, s: f"{v[(m, s)]['ratio']:.3f} [{v[(m, s)]['value'] / 2 ** 30:.3f}]"))
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- command line
BENCHES = ("step", "projector", "state", "threads", "comm", "factorized", "memory")
#: Results file of each benchmark (``{device}``: the device with ``:`` removed).
BENCH_FILES = {"step": "step_time_{device}.jsonl", "projector": "projector_{device}.jsonl",
               "state": "state_bytes_{device}.jsonl", "threads": "threads_{device}.jsonl",
               "comm": "comm_{device}.jsonl", "factorized": "factorized_{device}.jsonl",
               "memory": "memory_{device}.jsonl"}
#: The settings a folder's rows were taken with; ``--resume`` continues only with the same ones.
SETTINGS_FILE = "bench.json"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.formatter_class = DefaultsHelpFormatter
    parser.add_argument("--quick", action="store_true",
                        help="gap 20, 3 repeats, 1-layer tiny model, 10-step windows for methods without a refresh, "
                             "drop the 4096x11008 projector shape (a few minutes on 2 CPU cores)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index>")
    parser.add_argument("--threads", type=integer(1), default=None,
                        help="torch.set_num_threads for the whole run (default: os.cpu_count())")
    parser.add_argument("--out", default="results/bench", help="folder for the JSONL rows")
    parser.add_argument("--only", nargs="+", choices=BENCHES, default=list(BENCHES), help="which benchmarks")
    parser.add_argument("--methods", nargs="+", type=one_of(subspace.available(), "method"), default=None,
                        metavar="METHOD", help="subset of subspace.available() for step/state (default: all)")
    parser.add_argument("--rank", type=integer(1), default=128, help="subspace rank r")
    parser.add_argument("--gap", type=integer(1), default=None, help="refresh gap T (default: 200, --quick 20)")
    parser.add_argument("--repeats", type=integer(1), default=None,
                        help="timed windows/calls (default: 5, --quick 3)")
    parser.add_argument("--model-layers", type=integer(0), default=None,
                        help="blocks of the tiny LLaMA in the step benchmark (default: 2, --quick 1; 0 skips it)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="keep the measurements already in --out and take only the missing ones (same settings)")
    mode.add_argument("--overwrite", action="store_true", help="replace the results already in --out")
    return parser


def _settings(args) -> dict:
    """Everything that changes the numbers of a bench run (``--resume`` needs them unchanged)."""
    quick = bool(args.quick)
    return {"device": str(args.device), "quick": quick, "threads": args.threads or os.cpu_count() or 1,
            "rank": args.rank, "gap": args.gap or (20 if quick else 200),
            "repeats": args.repeats or (3 if quick else 5),
            "model_layers": args.model_layers if args.model_layers is not None else (1 if quick else 2),
            "methods": args.methods}


def _prepare(out: Path, settings: dict, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: results already in ``out`` need ``resume`` (same settings) or ``overwrite``."""
    saved = out / SETTINGS_FILE
    held = sorted(p.name for p in out.glob("*.jsonl")) + ([SETTINGS_FILE] if saved.exists() else [])
    if resume and held and not saved.exists():
        raise ValueError(f"--resume: {out} has results but no {SETTINGS_FILE}, so their settings are unknown; "
                         f"use --overwrite")
    if resume and saved.exists():
        before = json.loads(saved.read_text())
        changed = sorted(k for k in settings if before.get(k) != settings[k])
        if changed:
            raise ValueError(f"--resume: the results in {out} were taken with other settings ("
                             + ", ".join(f"{k}: {before.get(k)!r} vs {settings[k]!r}" for k in changed)
                             + "); use the same options, or --overwrite")
    elif held and not resume and not overwrite:
        raise ValueError(f"--out {out} already holds results ({', '.join(held)}); continue with --resume, "
                         f"replace them with --overwrite, or choose another folder")
    if overwrite:
        for name in held:
            (out / name).unlink()
    atomic_write_text(saved, dumps(settings, indent=1) + "\n")


class _ResultsFile:
    """One benchmark's JSONL rows, growing a unit at a time; each addition atomically replaces the whole file, so
    a run killed at any moment keeps every unit finished before it."""

    def __init__(self, path: Path, resume: bool):
        self.path = path
        self.rows = read_jsonl(path) if resume else []

    def done(self) -> set[str]:
        return {unit_of(r) for r in self.rows}

    def add(self, rows: list[dict]) -> None:
        self.rows = self.rows + rows
        atomic_write_text(self.path, "".join(dumps(r, sort_keys=True) + "\n" for r in self.rows))


def _run_benches(args, s: dict, out: Path) -> list[str]:
    """Run the selected benchmarks, saving each unit as it is measured; returns the tables of all saved rows."""
    quick, device = s["quick"], s["device"]
    tables = []

    def log(msg):
        print(msg, flush=True)

    def run(name, bench, fmt, **kw):
        results = _ResultsFile(out / BENCH_FILES[name].format(device=device.replace(":", "")), args.resume)
        t0 = time.perf_counter()
        bench(skip=results.done(), on_unit=results.add, device=device, **kw)
        tables.append(fmt(results.rows) + f"\n({time.perf_counter() - t0:.0f} s; rows: {results.path})")
    if "step" in args.only:
        run("step", bench_step_time, format_step_table, methods=s["methods"], rank=s["rank"], gap=s["gap"],
            repeats=s["repeats"], model_layers=s["model_layers"], steady_window=10 if quick else 20, log=log)
    if "projector" in args.only:
        run("projector", bench_projector, format_projector_table, shapes=OSD_SHAPES[:-1] if quick else OSD_SHAPES,
            rank=s["rank"], repeats=s["repeats"], budget_s=6.0 if quick else 60.0, log=log)
    if "state" in args.only:
        run("state", bench_state_bytes, format_state_table, methods=s["methods"])
    if "threads" in args.only:
        run("threads", bench_threads, format_threads_table, rank=s["rank"], gap=s["gap"], repeats=s["repeats"],
            log=log)
    if "comm" in args.only:
        run("comm", bench_comm, format_comm_table, log=log)
    if "factorized" in args.only:
        run("factorized", bench_factorized, format_factorized_table, repeats=s["repeats"], log=log)
    if "memory" in args.only:
        run("memory", bench_memory, format_memory_table, sizes=("tiny", "9m") if quick else ("tiny", "9m", "20m"))
    return tables


def main(args: argparse.Namespace) -> int:
    """``sublab bench``: checks every option and the output folder before any work, locks the folder, saves each
    measurement unit as it is taken; exit 0 done, 2 refused (bad value, unwritable or busy folder, results of
    another run without --resume/--overwrite), 130 interrupted (rerun with --resume)."""
    out = Path(args.out)
    try:
        check_device(str(args.device))
        writable_folder(out, "--out")
        s = _settings(args)
        with lock_folder(out, "sublab bench"):
            _prepare(out, s, args.resume, args.overwrite)
            torch.set_num_threads(s["threads"])
            start = time.perf_counter()
            print(f"sublab bench: device {s['device']}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
                  f"{'quick' if s['quick'] else 'full'}, rank {s['rank']}, gap {s['gap']}, repeats {s['repeats']}; "
                  f"code {code_version()}")
            tables = _run_benches(args, s, out)
    except (DeviceError, ValueError, FolderBusy) as exc:
        print(f"sublab bench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sublab bench: interrupted; every finished measurement is saved in {out}. Continue with the same "
              f"command and --resume", file=sys.stderr)
        return 130
    for t in tables:
        print()
        print(t)
    print(f"\ntotal {time.perf_counter() - start:.0f} s with {torch.get_num_threads()} threads")
    return 0


if __name__ == "__main__":  # python -m analysis.benchmarks
    raise SystemExit(main(add_arguments(argparse.ArgumentParser(prog="sublab bench")).parse_args()))
