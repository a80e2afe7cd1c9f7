"""Probe-based claims: real LLaMA and RoBERTa models trained through the shared core (``probes``), and the papers'
memory columns counted exactly on the meta device.

Papers (paper-claims.md): SUMO (Refael et al. 2025) Fig. 1, Fig. 2, Lemma 3.1, Table 3 (§1.3, §1.8, §1.9);
GaLore (Zhao et al. 2024) Lemma 3.3 and Table 2 (§5.1, §5.3); SN-SM (Nguyen & Nguyen 2025) README memory (§4.3).

Ids: ``sumo.fig1`` (moment conditioning grows), ``galore.low-rank-gradients`` and ``sumo.moment-rank`` (stable
rank of gradients / first moments falls), ``sumo.fig2`` (SUMO-SVD reaches a target loss first),
``galore.table2-memory``, ``sumo.table3-memory``, ``snsm.memory-1b`` (literal) and ``snsm.memory-1b-excl-basis``
(the reading that reproduces the README: projection bases not counted).

What every training claim shares (fixed before any run):

* Models are built from configuration with random initialisation and trained on the offline default corpus
  (``pydoc_data.topics``, byte level) or its topic-classification task (chance 1/k); nothing is downloaded, so
  "fine-tuning" in the papers becomes training from scratch here (a stated difference, not a fix).
* Seeds: repetition ``i`` uses ``ctx.seed("run", i)`` (mod 2^31) for model init, data split, batch order and the
  optimizer's generator, the same for every method of that repetition (paired comparisons).  The two
  stable-rank claims measure the same AdamW runs, seeded from the shared experiment id ``llm.llama-adamw``
  (``adamw_llama_runs``, made once per process).
* Windows: instrumented steps before the end of the learning-rate warmup (10% of the steps, GaLore's scripts)
  are left out -- the lr ramps from 0 there, so the weights have barely moved and a moment is little more than
  a sum of near-identical gradients.  Of the remaining instrumented steps the first quarter is "early" and the
  last quarter is "late" (``WINDOW_FRACTION``).  Per layer the window value is the mean of log10 of the quantity
  over its steps and over seeds; layers are then the paired units of a one-sided paired t-test at
  ``ALPHA = 0.01`` (``claims.verdicts.ordering_significant(paired=True)``).
* Power (fixed before any run): a window comparison decides only if it has ``POWER = 0.9`` against a medium
  standardised effect d_z = ``LAYER_EFFECT = 0.5`` (Cohen), i.e. at least ``analysis.rates.paired_t_n_required(0.5,
  alpha=0.01, power=0.9)`` = 55 paired layers; fewer layers make the verdict ``inconclusive`` (``provided``) at
  every seed family instead of a verdict that flips with the seeds (the tiny models have 12-14 matrices, so quick
  scale is always inconclusive and ``--scale full`` decides).  Steps-to-target comparisons (``sumo.fig2``) are
  paired across seeds and need the seeds that give power 0.9 against a large effect d_z = ``SEED_EFFECT = 1.5`` at
  the Bonferroni level ``ALPHA/2``.  With these rules P(holds | no effect) <= alpha = 0.01 and P(holds | effect >=
  the stated one) >= 0.9.
* On the CPU each claim runs single-threaded (tiny models lose to thread wake-ups on a shared 2-core box) and
  restores the thread count afterwards.

Scales: ``quick`` = tiny models, a few dozen steps, CPU: a smoke run that exercises the pipeline and records its
numbers, always ``inconclusive`` by the power rule above; ``full`` = the papers' shapes (roberta-base, rank 16;
LLaMA 60M) and enough steps and seeds for the stated power: it needs a GPU (hours on the 2-core CPU).
"""
from __future__ import annotations

import functools
import json
import math
import shutil
from collections import defaultdict

import numpy as np
import torch

from claims import verdicts as V
from claims.registry import Outcome, claim

__all__ = ["ALPHA", "POWER", "LAYER_EFFECT", "SEED_EFFECT", "MIN_START_STABLE_RANK", "WINDOW_FRACTION", "KAPPA_RED_LINE", "MEMORY_RTOL", "MEMORY_ATOL",
           "probe_run", "layer_series", "windows", "window_means", "steps_to_target", "adamw_llama_runs",
           "memory_rows"]

ALPHA = 0.01
#: Power every decided window / seed comparison must have against the stated effect (module docstring).
POWER = 0.9
#: Standardised effect (mean paired difference / its SD across layers) the layer comparisons must detect.
LAYER_EFFECT = 0.5
#: Standardised effect the across-seed steps-to-target comparison (``sumo.fig2``) must detect.
SEED_EFFECT = 1.5
#: "Far from rank one": a stable-rank claim is tested only where the early-window median stable rank is at least
#: this (at 1.06 of 64 the quantity has almost no room to fall: sr >= 1 always).
MIN_START_STABLE_RANK = 2.0
#: Share of the post-warmup instrumented steps in each of the "early" and "late" windows.
WINDOW_FRACTION = 0.25
#: SUMO Fig. 1(a)'s red line.
KAPPA_RED_LINE = 10.0
#: Memory tolerance.  The papers print "G" with two decimals and never say what they count or which unit "G" is.
#: (1) Unit: GiB (2^30) and GB (10^9) differ by 7.37%; ``probes.memory`` reads "G" as GiB from the full-rank
#: column, but the papers do not state it, so a relative difference below that gap cannot be told from a unit
#: choice: ``MEMORY_RTOL = 2^30/10^9 - 1``.  (2) Printing: half a unit of the last printed digit,
#: ``MEMORY_ATOL = 0.005`` G.  Tolerance = atol + rtol * |paper|, derived from these two facts, not tuned.
MEMORY_RTOL = 2 ** 30 / 1e9 - 1
MEMORY_ATOL = 0.005
SUMO_SPEEDUP = 1.6


# ---------------------------------------------------------------------------------------------- helpers

def _run_seed(ctx, rep: int) -> int:
    """The seed of repetition ``rep``: shared by every method (paired), small enough for BatchOrder's arithmetic."""
    return ctx.seed("run", rep) % (2 ** 31)


def powered_ordering(better, worse, *, unit: str, effect: float, alpha: float = ALPHA, power: float = POWER,
                     lower_is_better: bool = True, name: str | None = None, extra_ok: bool = True,
                     extra_what: str = ""):
    """The house significance rule with a stated power: ``ordering_significant(paired=True)`` at ``alpha``, decided
    only if the number of pairs reaches ``paired_t_n_required(effect, alpha, power)`` (and ``extra_ok``, another
    stated precondition); otherwise ``provided`` makes it inconclusive with the reason.  Returns (verdict, n_required).
    (A composition of existing rules; it belongs in ``claims.verdicts``.)"""
    from analysis.rates import paired_t_n_required

    n = int(np.asarray(better).size)
    n_req = paired_t_n_required(effect, alpha=alpha, power=power)
    inner = V.ordering_significant(better, worse, lower_is_better=lower_is_better, paired=True, alpha=alpha,
                                   name=name)
    what = (f"{n} paired {unit} >= {n_req}, the number a one-sided paired t at alpha={alpha:g} needs for power "
            f"{power:g} against a standardised effect {effect:g}")
    if extra_what:
        what += f"; {extra_what}"
    return V.provided(n >= n_req and bool(extra_ok), what, inner), n_req


def probe_run(ctx, tag: str, **config) -> tuple[dict, list[dict]]:
    """Train one probe (``probes.train``) into ``ctx.out_dir/tag``; return (result, rows of its rows.jsonl).

    The folder is emptied first (``train`` appends rows) and the checkpoints are deleted afterwards (the claim keeps
    rows and summary only).  A run that stops on a non-finite loss raises: no numbers, no verdict.
    """
    from probes.train import ProbeConfig, train

    out = ctx.out_dir / tag
    shutil.rmtree(out, ignore_errors=True)
    cfg = ProbeConfig(device=ctx.device, quiet=True, out=str(out), **config)
    res = train(cfg)
    if res["status"] != "ok":
        raise RuntimeError(f"probe {tag}: {res['message']}")
    with open(out / "rows.jsonl", encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    for ck in out.glob("checkpoint*.pt"):
        ck.unlink()
    return res, rows


def layer_series(rows: list[dict], metric: str) -> dict[str, dict[int, float]]:
    """{layer: {step: value}} of one instrument metric (None, i.e. non-finite, becomes NaN)."""
    out: dict[str, dict[int, float]] = defaultdict(dict)
    for r in rows:
        if r.get("kind") == "instrument" and r.get("metric") == metric and "layer" in r:
            v = r["value"]
            out[r["layer"]][int(r["step"])] = math.nan if v is None else float(v)
    return dict(out)


def windows(steps, warmup: int, fraction: float = WINDOW_FRACTION) -> tuple[list[int], list[int]]:
    """(early, late) instrumented steps: first and last ``fraction`` of the steps at or after ``warmup``."""
    post = sorted(s for s in set(steps) if s >= warmup)
    if not post:
        return [], []
    k = max(1, math.ceil(fraction * len(post)))
    return post[:k], post[-k:]


def window_means(per_seed: list[dict[str, dict[int, float]]], early, late, *, log: bool = True):
    """Per layer: mean over seeds of the window mean of log10(value) (or value); returns (layers, early, late)."""
    layers = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    f = (lambda v: math.log10(v) if v > 0 else math.nan) if log else (lambda v: v)  # noqa: E731
    e, l_ = [], []
    for name in layers:
        e.append(np.nanmean([np.nanmean([f(s[name][t]) for t in early if t in s[name]]) for s in per_seed]))
        l_.append(np.nanmean([np.nanmean([f(s[name][t]) for t in late if t in s[name]]) for s in per_seed]))
    return layers, np.asarray(e, dtype=float), np.asarray(l_, dtype=float)


def steps_to_target(losses, target: float, window: int) -> tuple[int, bool]:
    """First step whose trailing ``window``-step mean loss is <= ``target``; (len(losses), False) if never
    (censored at the run length, which can only shrink a measured gap)."""
    from analysis.rates import steps_to_target as stt

    hit = stt(losses, target, smooth="moving_average", window=window)
    return (len(losses), False) if hit is None else (int(hit), True)


def _span(steps) -> str:
    return f"{steps[0]}-{steps[-1]}" if steps else "none"


def _moving_average(x, window: int) -> list[float | None]:
    x = np.asarray(x, dtype=float)
    c = np.cumsum(np.insert(x, 0, 0.0))
    return [None if i + 1 < window else float((c[i + 1] - c[i + 1 - window]) / window) for i in range(x.size)]


# ---------------------------------------------------------------------------------------------- sumo.fig1

_FIG1 = dict(
    quick=dict(size="tiny", rank=8, steps=30, every=3, seeds=2, batch_size=16, lr=2e-3, seq_len=64),
    full=dict(size="base", rank=16, steps=600, every=10, seeds=3, batch_size=16, lr=1e-4, seq_len=128),
)
#: GaLore's GLUE settings (SUMO Tables 10/11: "projection back scale" 2 at r = 8; GaLore T >= 500 > run length).
_FIG1_FIXED = dict(optimizer="galore", scale=2.0, update_gap=10_000, num_topics=4, dropout=0.0)


@claim(id="sumo.fig1", gpu_at_full=True, kind="reading", paper="SUMO", source="SUMO (Refael et al. 2025), Fig. 1(a)-(b) and §3",
       statement="During GaLore fine-tuning of a RoBERTa classifier the projected first moment M (r x n) becomes "
                 "ill-conditioned: kappa(M M^T) grows with the training step (Fig. 1a, red line at 10) and the "
                 "singular values of M decay (Fig. 1b, step 100).")
def fig1(ctx):
    """SUMO Fig. 1: ill-conditioning of the GaLore first moment on RoBERTa.

    Statement (SUMO §1.8 caption): "condition number of the first-order moment vs training step; red line marks
    value 10; (b) the moment's singular value decay, taken arbitrarily at step 100" for RoBERTa-base on RTE with
    GaLore, rank r = 16; even in the top-r subspace M^ M^T "can still exhibit a large condition number".

    Setting: ``quick`` (smoke run, always inconclusive: 12 matrices < the 55 the power rule needs) a tiny RoBERTa
    (hidden 64, 2 layers) on the 4-topic task (chance 0.25), passages cut to 64 bytes, r = 8, 30 steps instrumented
    every 3, 2 seeds; ``full`` (GPU) roberta-base's shape (72 matrices), 128 bytes, r = 16, 600 steps every 10,
    3 seeds.  GaLore with the GLUE "projection back scale" 2, no basis refresh after step 0
    (GaLore's GLUE gap T = 500 exceeds the runs), batch 16, dropout 0, warmup 10%.
    Random initialisation: the paper fine-tunes a pretrained model, we train from scratch (offline).

    Measured, per low-rank matrix (the 6 attention/FFN matrices of every layer) and instrumented step:
    kappa = cond(M M^T) = (s_1/s_r)^2 of the projected Adam first moment (``moment_proj.kappa_gram``) and its
    singular values.

    Rule (module docstring): per layer d = mean log10 kappa(late window) - mean log10 kappa(early window),
    averaged over seeds; "grows" holds iff the one-sided paired t-test across layers (late > early) has
    p < ALPHA = 0.01; violated iff the opposite ordering is significant; else inconclusive.  Preconditions (else
    inconclusive): >= 55 layers (power 0.9 against d_z = 0.5, ``powered_ordering``), the runs train (mean final
    validation accuracy above chance 1/4) and >= 2 instrumented steps per window.
    Discrepancy: at the old quick setting (80 steps, 2 seeds, 12 matrices, alpha 0.05) an independent re-seeding
    moved p from 0.045 to 0.29: the window statistic had no power there, which the power rule now says.
    Also recorded (not part of the verdict): the fraction of layers whose late-window kappa (geometric mean)
    exceeds the red line 10, and the spectrum decay s_r/s_1 at the instrumented step closest to (at most) 100.
    """
    s = ctx.by_scale(**_FIG1)
    steps, every, warmup = s["steps"], s["every"], s["steps"] // 10
    fixed = {("galore_scale" if k == "scale" else k): v for k, v in _FIG1_FIXED.items()}  # "scale" is the run's
    ctx.config.update({"model": f"roberta-{s['size']}", "task": "topic(4)", **fixed,
                       **{k: v for k, v in s.items()}, "warmup": warmup, "window_fraction": WINDOW_FRACTION,
                       "alpha": ALPHA})
    per_seed, sv_seed, rows, accs, chance = [], [], [], [], 0.25
    for rep in range(s["seeds"]):
        ctx.log(f"seed {rep + 1}/{s['seeds']}")
        res, prow = probe_run(
            ctx, f"galore-seed{rep}", model="roberta", size=s["size"], lr=s["lr"], rank=s["rank"],
            steps=steps, batch_size=s["batch_size"], seq_len=s["seq_len"], warmup=warmup,
            instrument_every=every, seed=_run_seed(ctx, rep), **_FIG1_FIXED)
        per_seed.append(layer_series(prow, "moment_proj.kappa_gram"))
        svs: dict[str, dict[int, list]] = defaultdict(dict)
        for r in prow:
            if r.get("kind") == "instrument" and r.get("metric") == "moment_proj.sv":
                svs[r["layer"]][int(r["step"])] = r["value"]
        sv_seed.append(svs)
        accs.append(float(res["eval"]["val_accuracy"]))
        chance = float(res["eval"]["chance"])
        rows.append({"kind": "eval", "method": "galore", "seed": rep, "step": steps - 1,
                     "val_accuracy": accs[-1], "chance": chance, "final_loss": res["final_loss"]})
    all_steps = sorted({t for ser in per_seed for lay in ser.values() for t in lay})
    early, late = windows(all_steps, warmup)
    spec_step = max(t for t in all_steps if t <= 100)
    for rep, (ser, svs) in enumerate(zip(per_seed, sv_seed)):
        for layer, pts in ser.items():
            for t, k in sorted(pts.items()):
                rows.append({"kind": "instrument", "method": "galore", "seed": rep, "step": t, "layer": layer,
                             "kappa_gram": k, "log10_kappa": math.log10(k) if k > 0 else math.nan,
                             "sv": svs.get(layer, {}).get(t), "spectrum_step": t == spec_step,
                             "window": "early" if t in early else ("late" if t in late else None)})
    layers, e, l_ = window_means(per_seed, early, late)
    d = l_ - e
    trains = float(np.mean(accs)) > chance
    verdict, n_req = powered_ordering(
        l_, e, unit="layers", effect=LAYER_EFFECT, lower_is_better=False,
        name="late vs early mean log10 kappa(M M^T) across layers", extra_ok=trains and len(early) >= 2,
        extra_what=f"runs train (mean val accuracy {np.mean(accs):.3f}, needs > chance {chance:g}) and >= 2 "
                   f"instrumented steps per window")
    grows = verdict.inputs["verdict"]
    ratios = []
    for svs in sv_seed:
        for layer in layers:
            sv = svs.get(layer, {}).get(spec_step)
            if sv and sv[0] > 0:
                ratios.append(sv[-1] / sv[0])
    measured = {
        "mean_delta_log10_kappa": float(np.mean(d)), "frac_layers_growing": float(np.mean(d > 0)),
        "n_layers": len(layers), "median_kappa_early": float(10 ** np.median(e)),
        "median_kappa_late": float(10 ** np.median(l_)),
        "frac_layers_kappa_gt_10": float(np.mean(l_ > math.log10(KAPPA_RED_LINE))),
        "median_sr_over_s1_at_spectrum_step": float(np.median(ratios)) if ratios else math.nan,
        "spectrum_step": spec_step, "val_accuracy": float(np.mean(accs)), "chance": chance,
        "p_value": grows.inputs.get("p_claim"), "layers_required": n_req,
        "margin_log10_p": (math.log10(ALPHA) - math.log10(max(grows.inputs.get("p_claim"), 1e-300)))
        if grows.inputs.get("p_claim") is not None else math.nan,
    }
    detail = (f"early steps {_span(early)}, late {_span(late)} (warmup {warmup} excluded); "
              f"log10 kappa rose in {int((d > 0).sum())}/{len(d)} layers (mean change {np.mean(d):+.2f} decades); "
              f"{measured['frac_layers_kappa_gt_10']:.0%} of layers above the red line 10 late "
              f"(median kappa {measured['median_kappa_early']:.3g} early -> {measured['median_kappa_late']:.3g} late); "
              f"s_r/s_1 median {measured['median_sr_over_s1_at_spectrum_step']:.3g} at step {spec_step}; "
              f"random init (not pretrained), topic task, val accuracy {np.mean(accs):.3f} vs chance {chance:g}")
    return Outcome(measured=measured, predicted={"delta_log10_kappa_gt": 0.0, "kappa_red_line": KAPPA_RED_LINE},
                   verdict=verdict, detail=detail, rows=rows)


@fig1.figure
def _draw_fig1(rows):
    from analysis import plotting as P
    from matplotlib import cm

    inst = [r for r in rows if r.get("kind") == "instrument"]
    fig, (ax, bx) = P.new_figure(columns=2, ncols=2)
    layers = sorted({r["layer"] for r in inst})
    colors = cm.viridis(np.linspace(0.05, 0.95, max(1, len(layers))))
    for c, layer in zip(colors, layers):
        by: dict[int, list] = defaultdict(list)
        for r in inst:
            if r["layer"] == layer and r.get("log10_kappa") is not None and math.isfinite(r["log10_kappa"]):
                by[r["step"]].append(r["log10_kappa"])
        x = sorted(by)
        ax.plot(x, [10 ** np.mean(by[t]) for t in x], color=c, linewidth=0.8, alpha=0.85)
    for win, shade in (("early", "#999999"), ("late", "#d62728")):
        ws = sorted({r["step"] for r in inst if r.get("window") == win})
        if ws:
            ax.axvspan(ws[0], ws[-1], color=shade, alpha=0.08, linewidth=0)
    ax.axhline(KAPPA_RED_LINE, color="#d62728", linewidth=1.0, label="red line 10")
    P.finish(ax, xlabel="step", ylabel=r"$\kappa(\hat M \hat M^\top)$ (one line per matrix)", logy=True,
             title="(a) projected first moment")
    spec = [r for r in inst if r.get("spectrum_step") and r.get("sv") and r.get("seed") == 0]
    for c, layer in zip(colors, layers):
        for r in spec:
            if r["layer"] == layer and r["sv"][0] > 0:
                sv = np.asarray(r["sv"], dtype=float)
                bx.plot(np.arange(1, sv.size + 1), sv / sv[0], color=c, linewidth=0.8, marker="o", markersize=2)
    step = spec[0]["step"] if spec else "?"
    P.finish(bx, xlabel="index i", ylabel=r"$s_i / s_1$", logy=True, title=f"(b) spectrum at step {step}",
             legend=False)
    return fig


# ---------------------------------------------------------------------------------------------- rank claims

_RANK = dict(
    quick=dict(size="tiny", steps=24, every=3, seeds=2, batch_size=8, seq_len=64, lr=3e-3),
    full=dict(size="60m", steps=2000, every=50, seeds=3, batch_size=64, seq_len=256, lr=1e-3),
)


#: The two stable-rank claims measure the same AdamW runs (gradient and first moment of every matrix at the same
#: steps); they share one experiment id for their seeds, and the runs are made once per process and scale.
_RANK_EXPERIMENT = "llm.llama-adamw"
_RANK_CACHE: dict = {}


def adamw_llama_runs(ctx) -> dict:
    """AdamW on LLaMA with instruments, shared by ``galore.low-rank-gradients`` and ``sumo.moment-rank``.

    Returns {"config", "series": {metric: [per-seed {layer: {step: value}}]}, "max_rank": {layer: min(m, n)}}.
    Seeds: ``derive_seed("llm.llama-adamw", "adamw", i, ctx.seed_family)`` (mod 2^31), so either claim alone gives
    the same numbers as both together (CPU runs are bitwise deterministic; the cache only saves time).
    """
    from claims.registry import derive_seed

    s = ctx.by_scale(**_RANK)
    key = (ctx.scale, str(ctx.device), ctx.seed_family, tuple(sorted(s.items())))
    if key in _RANK_CACHE:
        ctx.log("reusing this process's AdamW LLaMA runs")
        return _RANK_CACHE[key]
    steps, warmup = s["steps"], s["steps"] // 10
    series: dict[str, list] = {"grad.stable_rank": [], "moment_full.stable_rank": []}
    max_rank: dict[str, int] = {}
    for rep in range(s["seeds"]):
        ctx.log(f"AdamW LLaMA-{s['size']} seed {rep + 1}/{s['seeds']}")
        _, prow = probe_run(ctx, f"adamw-seed{rep}", model="llama", size=s["size"], optimizer="adamw",
                            lr=s["lr"], steps=steps, batch_size=s["batch_size"], seq_len=s["seq_len"],
                            warmup=warmup, instrument_every=s["every"],
                            seed=derive_seed(_RANK_EXPERIMENT, "adamw", rep, ctx.seed_family) % (2 ** 31))
        for metric in series:
            series[metric].append(layer_series(prow, metric))
        for r in prow:
            if r.get("kind") == "instrument" and r.get("metric") == "grad.sv":
                max_rank[r["layer"]] = len(r["value"])
    out = {"config": {"model": f"llama-{s['size']}", "data": "pydoc_data.topics (bytes)", "optimizer": "adamw",
                      **s, "warmup": warmup, "seed_experiment": _RANK_EXPERIMENT},
           "series": series, "max_rank": max_rank}
    _RANK_CACHE[key] = out
    return out


def _rank_claim(ctx, metric: str, label: str) -> Outcome:
    """Shared body of the stable-rank claims: ``metric`` per layer of the AdamW runs, early vs late windows."""
    runs = adamw_llama_runs(ctx)
    s = runs["config"]
    warmup = s["warmup"]
    ctx.config.update({**s, "metric": metric, "window_fraction": WINDOW_FRACTION, "alpha": ALPHA})
    per_seed, max_rank, rows = runs["series"][metric], runs["max_rank"], []
    all_steps = sorted({t for ser in per_seed for lay in ser.values() for t in lay})
    early, late = windows(all_steps, warmup)
    for rep, ser in enumerate(per_seed):
        for layer, pts in ser.items():
            for t, v in sorted(pts.items()):
                rows.append({"kind": "instrument", "method": "adamw", "seed": rep, "step": t, "layer": layer,
                             "quantity": label, "stable_rank": v, "max_rank": max_rank.get(layer),
                             "kappa_defect": 1.0 - 1.0 / v if v and v > 0 else math.nan,
                             "window": "early" if t in early else ("late" if t in late else None)})
    layers, e, l_ = window_means(per_seed, early, late)
    start = float(10 ** np.median(e)) if len(e) else math.nan
    verdict, n_req = powered_ordering(
        l_, e, unit="layers", effect=LAYER_EFFECT, lower_is_better=True,
        name=f"late vs early mean log10 stable rank of the {label} across layers",
        extra_ok=len(early) >= 2 and start >= MIN_START_STABLE_RANK,
        extra_what=f">= 2 instrumented steps per window and the {label} starts far from rank one (early-window "
                   f"median stable rank {start:.3g} >= {MIN_START_STABLE_RANK:g})")
    falls = verdict.inputs["verdict"]
    first = [np.nanmean([ser[name][min(ser[name])] for ser in per_seed]) for name in layers]
    d = l_ - e
    measured = {
        "median_sr_early": float(10 ** np.median(e)), "median_sr_late": float(10 ** np.median(l_)),
        "median_sr_step0": float(np.median(first)) if first else math.nan,
        "median_max_rank": float(np.median([max_rank.get(n, math.nan) for n in layers])) if layers else math.nan,
        "frac_layers_falling": float(np.mean(d < 0)) if len(d) else math.nan,
        "mean_delta_log10_sr": float(np.mean(d)) if len(d) else math.nan, "n_layers": len(layers),
        "p_value": falls.inputs.get("p_claim"), "layers_required": n_req,
        "start_far_from_rank_one": bool(start >= MIN_START_STABLE_RANK),
    }
    detail = (f"AdamW on LLaMA-{s['size']}, {s['seeds']} seeds; early steps {_span(early)}, late "
              f"{_span(late)} (warmup {warmup} excluded); stable rank fell in {int((d < 0).sum())}/{len(d)} "
              f"layers; median {measured['median_sr_early']:.3g} early -> {measured['median_sr_late']:.3g} late, "
              f"against {measured['median_sr_step0']:.3g} at step 0 (not part of the rule) and a full rank of "
              f"{measured['median_max_rank']:.0f}")
    return Outcome(measured=measured, predicted={"delta_log10_sr_lt": 0.0}, verdict=verdict, detail=detail,
                   rows=rows)


def _draw_rank(rows, title: str):
    from analysis import plotting as P
    from matplotlib import cm

    inst = [r for r in rows if r.get("kind") == "instrument"]
    fig, ax = P.new_figure(columns=1)
    layers = sorted({r["layer"] for r in inst})
    colors = cm.viridis(np.linspace(0.05, 0.95, max(1, len(layers))))
    curves = []
    for c, layer in zip(colors, layers):
        by: dict[int, list] = defaultdict(list)
        for r in inst:
            if r["layer"] == layer and r.get("stable_rank") is not None and math.isfinite(r["stable_rank"]):
                by[r["step"]].append(math.log(r["stable_rank"]))
        x = sorted(by)
        y = [math.exp(np.mean(by[t])) for t in x]
        curves.append(dict(zip(x, y)))
        ax.plot(x, y, color=c, linewidth=0.6, alpha=0.6)
    xs = sorted(set.intersection(*(set(c) for c in curves))) if curves else []
    if xs:
        ax.plot(xs, [math.exp(np.mean([math.log(c[t]) for c in curves])) for t in xs], color="black",
                linewidth=1.6, label="geometric mean over matrices")
    ax.set_ylim(bottom=1.0)
    for win, shade in (("early", "#999999"), ("late", "#1f77b4")):
        ws = sorted({r["step"] for r in inst if r.get("window") == win})
        if ws:
            ax.axvspan(ws[0], ws[-1], color=shade, alpha=0.08, linewidth=0)
    P.finish(ax, xlabel="step", ylabel="stable rank  $\\|X\\|_F^2/\\|X\\|_2^2$", title=title)
    return fig


@claim(id="galore.low-rank-gradients", gpu_at_full=True, kind="reading", paper="GaLore", source="GaLore (Zhao et al. 2024), §3.2, Lemma 3.3",
       statement="The gradient of LLaMA weight matrices becomes low-rank during training: its stable rank "
                 "sr(G_t) = ||G_t||_F^2 / ||G_t||_2^2 falls (Lemma 3.3: sr(G_t) <= sr(G_par) + decaying term).")
def low_rank_gradients(ctx):
    """GaLore Lemma 3.3 on real layers: the stable rank of gradients falls during training.

    Statement (GaLore §3.2, paper-claims §5.1): for gradients of the reversible form G_t = (1/N) sum_i (A_i - B_i
    W_t C_i) under SGD, sr(G_t) <= sr(G^par_t0) + ((1 - eta lambda_2)/(1 - eta lambda_1))^{2(t - t0)} ||G_t0 -
    G^par_t0||_F^2 / ||G^par_t0||_2^2: the gradient becomes low-rank.  The preconditions (reversibility,
    constant A, B, C, SGD) do not hold for a LLaMA trained with AdamW; this claim checks the conclusion on real
    layers, the motivation GaLore draws from it.

    Setting: AdamW (the full-rank baseline, so the gradient is the model's own, unaffected by any projection) on
    LLaMA (``quick``: tiny, hidden 64, 2 layers, 24 steps, batch 8 x 64 bytes, lr 3e-3, 2 seeds; ``full``: 60M,
    2000 steps, batch 64 x 256, lr 1e-3, 3 seeds), every attention and MLP matrix instrumented every ``every``
    steps (``grad.stable_rank``).

    Rule (module docstring): per matrix, mean log10 stable rank in the late window vs the early window (averaged
    over seeds); "falls" holds iff the one-sided paired t-test across matrices gives p < ALPHA = 0.01, violated iff
    the opposite ordering is significant, else inconclusive.  Preconditions (else inconclusive): >= 55 matrices
    (power 0.9 against d_z = 0.5) and the gradient starts far from rank one (early-window median stable rank >=
    ``MIN_START_STABLE_RANK`` = 2: sr >= 1 always, so at 1.06 "falls" has no room to be tested).  Quick scale (tiny
    LLaMA, 14 matrices, 24 steps: stable rank ~1.06 of 64) is therefore inconclusive at every seed family; the
    full scale (LLaMA 60M: 56 matrices, 2000 steps, 3 seeds; GPU) decides.  Recorded too: the stable rank at step 0 against the full
    rank min(m, n) -- random-init LLaMA gradients can already be nearly rank one before training starts.
    """
    return _rank_claim(ctx, "grad.stable_rank", "gradient")


@low_rank_gradients.figure
def _draw_low_rank_gradients(rows):
    return _draw_rank(rows, "gradient stable rank, AdamW on LLaMA")


@claim(id="sumo.moment-rank", gpu_at_full=True, kind="reading", paper="SUMO", source="SUMO (Refael et al. 2025), Lemma 3.1 (App. Lemma A.1)",
       statement="The first moment M_t = beta M_{t-1} + G_t of LLaMA weight matrices becomes low-rank during "
                 "training: kappa_M(t) = 1 - s_1^2/||M_t||_F^2 = 1 - 1/sr(M_t) decays, i.e. the stable rank "
                 "sr(M_t) falls.")
def moment_rank(ctx):
    """SUMO Lemma 3.1 on real layers: the first moment becomes low-rank (its stable rank falls).

    Statement (paper-claims §1.3, reconstructed [R]): for a reversible layer and M_t = beta1 M_{t-1} + G_t,
    kappa_M(t) = ||M - P_1 M||_F^2 / ||M||_F^2 = 1 - 1/sr(M) <= O(C^{-t}); since kappa_M is increasing in sr,
    "kappa_M decays" and "sr(M_t) falls" are the same ordering.  Preconditions (reversible layers, SGD weights,
    1 - eta lambda_1 > beta) do not hold for AdamW on LLaMA; the conclusion is checked on real layers.

    Measured: AdamW's first moment ``exp_avg`` = (1 - beta1) sum_s beta1^{t-s} G_s, i.e. SUMO's M_t up to the
    factor (1 - beta1), which the stable rank ignores (``moment_full.stable_rank``), in the same AdamW runs as
    ``galore.low-rank-gradients`` (``adamw_llama_runs``: one experiment, shared seeds, run once per process).
    ``kappa_defect`` = 1 - 1/sr is written in the rows.

    Rule: as ``galore.low-rank-gradients`` (paired one-sided t-test across matrices of late vs early mean
    log10 stable rank, alpha = 0.01, decided only with >= 55 matrices and an early-window median stable rank >= 2;
    quick scale is inconclusive at every seed family, ``--scale full`` (GPU) decides).
    """
    return _rank_claim(ctx, "moment_full.stable_rank", "first moment")


@moment_rank.figure
def _draw_moment_rank(rows):
    return _draw_rank(rows, "first-moment stable rank, AdamW on LLaMA")


# ---------------------------------------------------------------------------------------------- sumo.fig2

_FIG2 = dict(
    quick=dict(size="tiny", steps=24, seeds=2, batch_size=16, seq_len=64, rank=8, update_gap=20, window=4,
               dense_lr=3e-3),
    full=dict(size="base", steps=1500, seeds=11, batch_size=32, seq_len=128, rank=8, update_gap=200, window=20,
              dense_lr=1e-3),
)
#: Per-method hyper-parameters of the low-rank group; the dense group (embeddings, norms, biases, classifier) is
#: Adam at the scale's ``dense_lr`` for every method, so that only the matrix rule differs.
_FIG2_METHODS = {
    "sumo": dict(lr=0.02),                 # orthogonalized update: Muon's default lr (same spectral step size)
    "sumo-ns5": dict(lr=0.02),             # identical to SUMO-SVD except the orthogonalizer
    "galore": dict(lr=0.01, scale=0.25),   # GaLore's LLaMA scripts: lr 0.01, alpha 0.25
}
#: Target: a drop of this fraction of the chance-level loss ln k (fixed before the comparison runs).
TARGET_FRACTION = 0.1


@claim(id="sumo.fig2", gpu_at_full=True, kind="reading", paper="SUMO", source="SUMO (Refael et al. 2025), Fig. 2 and README (~1.6x speed-up)",
       statement="SUMO with exact SVD orthogonalization reaches a given loss in fewer optimization steps than "
                 "SUMO with Newton-Schulz5 and than GaLore (about 1.6x faster on QNLI).")
def fig2(ctx):
    """SUMO Fig. 2: SUMO-SVD converges faster than SUMO-NS5 and GaLore.

    Statement (SUMO §1.8): "SUMO with SVD demonstrates superior convergence speed (~1.6x faster), attaining
    comparable or higher accuracy than GaLore and SUMO with Newton-Schultz5 with significantly fewer optimization
    steps on QNLI" (RoBERTa-base fine-tuning).

    Setting: a RoBERTa sequence classifier on the 4-topic task (chance 1/4; QNLI and pretrained weights are not
    available offline, so it is trained from random initialisation): ``quick`` (smoke run, always inconclusive:
    2 seeds) tiny (hidden 64, 2 layers), passages cut to 64 bytes, batch 16, 24 steps, rank 8, K = 20, window 4;
    ``full`` (GPU) roberta-base's shape, 128 bytes, batch 32, 1500 steps, rank 8, K = 200, 11 seeds, the same seed (init, data split, batch order, randomized-SVD
    generator) for every method of a repetition; dropout 0; warmup 10%, cosine to 10%.
    Hyper-parameters, fixed before running: SUMO-SVD and SUMO-NS5 identical (lr 0.02 -- Muon's default for
    orthogonalized updates, whose spectral step size SUMO shares -- momentum 0.95, limiter 1.1, randomized-SVD
    basis, paper mode); GaLore at its LLaMA scripts' lr 0.01 with alpha = 0.25; every dense parameter Adam at
    lr 3e-3 (quick) / 1e-3 (full) for all three methods.

    Target, fixed before the comparison runs: training loss (1 - 0.1) ln k, i.e. 10% of the gap between the
    chance-level loss ln k (uniform prediction, where every run starts and plateaus) and 0; a 10% drop is far
    outside the +-0.02 nats noise of a 10-step mean at that plateau.  Steps to target = first step whose trailing
    ``window``-step mean training loss is <= the target (window 10 quick, 20 full); a run that never reaches it
    counts as the run length (censoring can only shrink a gap, never create one).

    Rule: SUMO-SVD needs fewer steps than SUMO-NS5 AND fewer than GaLore, each by a one-sided paired t-test across
    seeds at the Bonferroni level ALPHA/2 = 0.005 (``ordering_significant(paired=True)``), combined with ``all_of``
    (violated if either opposite ordering is significant, inconclusive if a comparison is not significant), each
    decided only with the seeds that give power 0.9 against d_z = 1.5 (``powered_ordering``: 11 seeds; quick's 2
    seeds are always inconclusive).  Discrepancy: at the old quick setting (120 steps, 3 seeds) the verdict was
    inconclusive with p = 0.07-0.08, i.e. underpowered.  The measured speed-up
    (mean steps of the other method / mean steps of SUMO-SVD, censored runs at the run length) is reported beside
    the paper's 1.6; it is not part of the verdict (the paper's number is for QNLI accuracy of a pretrained model).
    """
    s = ctx.by_scale(**_FIG2)
    steps, warmup = s["steps"], s["steps"] // 10
    ctx.config.update({"model": f"roberta-{s['size']}", "task": "topic(4)", **s, "warmup": warmup,
                       "methods": _FIG2_METHODS, "dropout": 0.0, "target_fraction": TARGET_FRACTION,
                       "alpha": ALPHA})
    rows, hits, reached, finals, accs = [], defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
    target, chance = math.nan, math.nan
    for rep in range(s["seeds"]):
        seed = _run_seed(ctx, rep)
        for method, hp in _FIG2_METHODS.items():
            ctx.log(f"seed {rep + 1}/{s['seeds']} {method}")
            res, _ = probe_run(ctx, f"{method}-seed{rep}", model="roberta", size=s["size"], optimizer=method,
                               rank=s["rank"], update_gap=s["update_gap"], steps=steps, num_topics=4,
                               batch_size=s["batch_size"], seq_len=s["seq_len"], warmup=warmup, seed=seed,
                               dropout=0.0, opt_kwargs={"dense_lr": s["dense_lr"]}, **hp)
            chance = float(res["eval"]["chance"])
            target = (1.0 - TARGET_FRACTION) * math.log(1.0 / chance)
            L = res["losses"]
            n, ok = steps_to_target(L, target, s["window"])
            hits[method].append(n)
            reached[method].append(ok)
            finals[method].append(float(np.mean(L[-s["window"]:])))
            accs[method].append(float(res["eval"]["val_accuracy"]))
            ma = _moving_average(L, s["window"])
            rows += [{"kind": "train", "method": method, "seed": rep, "step": t, "loss": L[t], "loss_ma": ma[t],
                      "target": target} for t in range(len(L))]
            rows.append({"kind": "steps_to_target", "method": method, "seed": rep, "step": n,
                         "steps_to_target": n, "reached": ok, "target": target, "run_steps": steps,
                         "val_accuracy": accs[method][-1], "chance": chance,
                         "final_loss_ma": finals[method][-1]})
    a = np.asarray(hits["sumo"], dtype=float)
    parts = [powered_ordering(a, np.asarray(hits[m], dtype=float), unit="seeds", effect=SEED_EFFECT,
                              alpha=ALPHA / 2, lower_is_better=True, name=f"steps to target, SUMO-SVD vs {m}")[0]
             for m in ("sumo-ns5", "galore")]
    verdict = V.all_of(*parts)
    speed = {m: float(np.mean(hits[m]) / np.mean(a)) if np.mean(a) > 0 else math.nan for m in ("sumo-ns5", "galore")}
    measured = {
        "steps_sumo": float(np.mean(a)), "steps_sumo_ns5": float(np.mean(hits["sumo-ns5"])),
        "steps_galore": float(np.mean(hits["galore"])),
        "speedup_vs_ns5": speed["sumo-ns5"], "speedup_vs_galore": speed["galore"],
        "reached_fraction": float(np.mean([x for m in reached for x in reached[m]])),
        "target_loss": target,
        **{f"val_accuracy_{m}": float(np.mean(accs[m])) for m in _FIG2_METHODS}, "chance": chance,
    }
    detail = (f"steps to the target loss {target:.3f} ({1 - TARGET_FRACTION:g} ln 4, trailing {s['window']}-step "
              f"mean; censored at {steps}): " + ", ".join(f"{m} {hits[m]}" for m in _FIG2_METHODS)
              + f"; speed-up vs NS5 {speed['sumo-ns5']:.2f}x, vs GaLore {speed['galore']:.2f}x (paper ~1.6x on "
              f"QNLI); val accuracy " + ", ".join(f"{m} {np.mean(accs[m]):.3f}" for m in _FIG2_METHODS)
              + f" (chance {chance:g}); RoBERTa-{s['size']} from random init on the topic task, not QNLI")
    return Outcome(measured=measured, predicted={"speedup_vs_ns5": SUMO_SPEEDUP, "speedup_vs_galore": SUMO_SPEEDUP},
                   verdict=verdict, detail=detail, rows=rows)


@fig2.figure
def _draw_fig2(rows):
    from analysis import plotting as P

    train_rows = [r for r in rows if r.get("kind") == "train"]
    fig, ax = P.new_figure(columns=1)
    for method, (x, mean, lo, hi) in P.series_stats(train_rows, x="step", y="loss_ma").items():
        P.confidence_band(ax, x, lo, hi, method)
        P.plot_measured(ax, x, mean, method)
    targets = [r["target"] for r in rows if r.get("kind") == "steps_to_target"]
    if targets:
        P.reference_line(ax, float(np.mean(targets)), label="target")
    hits = defaultdict(list)
    for r in rows:
        if r.get("kind") == "steps_to_target":
            hits[r["method"]].append(r["steps_to_target"])
    for method, h in hits.items():
        ax.axvline(float(np.mean(h)), color=P.method_color(method), linestyle=":", linewidth=0.8)
    P.finish(ax, xlabel="step", ylabel="training loss (trailing mean)",
             title="mean and 95% CI over seeds; dotted: mean steps to target")
    return fig


# ---------------------------------------------------------------------------------------------- memory

@functools.lru_cache(maxsize=None)
def _memory_table() -> tuple:
    from probes import memory as M

    return tuple(M.memory_table(sizes=M.SIZES))


def memory_rows(selection: str) -> list[dict]:
    """``probes.memory.memory_table`` rows of every method and size (60M-7B) for one selection (computed once per
    process: exact counts on the meta device, deterministic)."""
    return [dict(r) for r in _memory_table() if r["selection"] == selection]


def _memory_claim_rows(table: list[dict]) -> list[dict]:
    out = []
    for r in table:
        base = {"kind": "memory", "method": r["method"], "seed": None, "step": None, "size": r["size"],
                "selection": r["selection"], "rank": r["rank"], "params_gib": r["params_gib"],
                "states_gib": r["states_gib"], "basis_gib": r["basis_gib"], "total_gib": r["total_gib"],
                "n_params": r["n_params"], "n_state": r["n_state"], "n_basis": r["n_basis"]}
        papers = r.get("paper") or [None]
        for p in papers:
            row = dict(base)
            if p is not None:
                row.update(source=p["source"], quantity=p["quantity"], paper=p["value"], measured=p["measured"],
                           ratio=p["ratio"], ratio_excl_basis=p["ratio_excl_basis"],
                           measured_excl_basis=p["measured"] - r["basis_gib"])
            out.append(row)
    return out


def _compare(rows: list[dict], source: str, methods, *, exclude_basis: bool = False, name: str = ""):
    sel = [r for r in rows if r.get("source") == source and r["method"] in methods]
    sel.sort(key=lambda r: (list(methods).index(r["method"]), float(r["n_params"])))
    meas = np.array([r["measured_excl_basis"] if exclude_basis else r["measured"] for r in sel])
    pred = np.array([r["paper"] for r in sel])
    labels = [f"{r['method']}@{r['size']}" for r in sel]
    v = V.close_to(meas, pred, rtol=MEMORY_RTOL, atol=MEMORY_ATOL, name=name)
    return v, sel, meas, pred, labels


def _ratio_dict(labels, meas, pred) -> dict:
    return {f"ratio_{lab}": float(m / p) for lab, m, p in zip(labels, meas, pred)}


_MEMORY_DOC_RULE = """Rule: ``close_to(measured, paper, rtol=2^30/10^9 - 1 = 0.0737, atol=0.005 G)`` at every entry (the
    papers print two decimals and do not say whether "G" is 10^9 or 2^30 bytes nor exactly what they count; see
    ``MEMORY_RTOL``); one entry outside makes the claim violated, and the reason names the worst entry."""


@claim(id="galore.table2-memory", kind="paper", paper="GaLore", source="GaLore (Zhao et al. 2024), Table 2 (memory estimates)",
       statement="Parameters + optimizer states in BF16 of LLaMA 60M/130M/350M/1B: full-rank Adam 0.36/0.76/2.06/"
                 "7.80 G, GaLore 0.24/0.52/1.22/4.38 G (ranks 128/256/256/512).")
def table2_memory(ctx):
    """GaLore Table 2's memory column, counted exactly.

    Statement (paper-claims §5.3): "val. ppl (param+optimizer memory estimate)": Full-Rank 0.36G / 0.76G / 2.06G /
    7.80G, GaLore 0.24G / 0.52G / 1.22G / 4.38G at 60M / 130M / 350M / 1B, r / d_model = 128/256, 256/768,
    256/1024, 512/2048; BF16.

    Measured (``probes.memory``): each LLaMA configuration built on the meta device; every attention/MLP matrix is
    compressed (GaLore's rule), embeddings, lm_head and norms keep Adam's two moments; optimizer-state elements
    from the preset's formula (GaLore: k r basis + 2 r l moments per matrix, as GaLore Table 1 counts); 2 bytes
    per element; "G" read as GiB (2^30).  7B (rank 1024) is measured for every method and has no paper value.

    {rule}
    Known discrepancy, reported not tuned: the 60M full-rank entry is 0.90 of the paper (0.36 = 60e6 x 6 bytes /
    1e9 suggests the paper used the nominal size); the GaLore entries are 4-10% above the paper with the basis
    counted (``ratio_excl_basis`` records the value without it).
    """
    rows = _memory_claim_rows(memory_rows("galore"))
    ctx.config.update({"selection": "galore", "bytes_per_element": 2, "unit": "GiB", "rtol": MEMORY_RTOL,
                       "atol": MEMORY_ATOL})
    v, sel, meas, pred, labels = _compare(rows, "GaLore Table 2", ("adamw", "galore"),
                                          name="GaLore Table 2 params+states (G)")
    measured = _ratio_dict(labels, meas, pred)
    measured.update({f"total_gib_{r['method']}@7b": r["total_gib"] for r in rows
                     if r["size"] == "7b" and r["method"] in ("adamw", "galore")})
    excl = {lab: float(r["ratio_excl_basis"]) for lab, r in zip(labels, sel) if r["n_basis"]}
    detail = ("measured/paper: " + ", ".join(f"{lab} {m / p:.3f}" for lab, m, p in zip(labels, meas, pred))
              + "; GaLore without the basis: " + ", ".join(f"{k} {x:.3f}" for k, x in excl.items()))
    return Outcome(measured=measured, predicted={f"paper_{lab}": float(p) for lab, p in zip(labels, pred)},
                   verdict=v, detail=detail, rows=rows)


table2_memory.__doc__ = table2_memory.__doc__.replace("{rule}", _MEMORY_DOC_RULE)


@claim(id="sumo.table3-memory", kind="paper", paper="SUMO", source="SUMO (Refael et al. 2025), Table 3 (memory in parentheses)",
       statement="Parameters + optimizer states in BF16 of LLaMA 60M/130M/350M/1B trained with SUMO: "
                 "0.23/0.51/1.16/3.84 G (ranks 128/256/256/512).")
def table3_memory(ctx):
    """SUMO Table 3's memory column (the SUMO row; the other rows are copied from GaLore Table 2 and are checked
    by ``galore.table2-memory``).

    Statement (paper-claims §1.9): SUMO 0.23G / 0.51G / 1.16G / 3.84G at 60M / 130M / 350M / 1B, BF16 estimate,
    same ranks as GaLore.

    Measured: as ``galore.table2-memory`` with SUMO's state (k r basis + r l momentum per compressed matrix, SUMO
    Table 1: n r + m r); SUMO-NS5 has the same state and is recorded in the rows.  7B measured only.

    {rule}
    """
    rows = _memory_claim_rows(memory_rows("galore"))
    ctx.config.update({"selection": "galore", "bytes_per_element": 2, "unit": "GiB", "rtol": MEMORY_RTOL,
                       "atol": MEMORY_ATOL})
    v, sel, meas, pred, labels = _compare(rows, "SUMO Table 3", ("sumo",), name="SUMO Table 3 params+states (G)")
    measured = _ratio_dict(labels, meas, pred)
    measured["total_gib_sumo@7b"] = next(r["total_gib"] for r in rows if r["size"] == "7b" and r["method"] == "sumo")
    detail = ("measured/paper: " + ", ".join(f"{lab} {m / p:.3f}" for lab, m, p in zip(labels, meas, pred))
              + "; without the basis: "
              + ", ".join(f"{lab} {r['ratio_excl_basis']:.3f}" for lab, r in zip(labels, sel)))
    return Outcome(measured=measured, predicted={f"paper_{lab}": float(p) for lab, p in zip(labels, pred)},
                   verdict=v, detail=detail, rows=rows)


table3_memory.__doc__ = table3_memory.__doc__.replace("{rule}", _MEMORY_DOC_RULE)


def _snsm(ctx, exclude_basis: bool) -> Outcome:
    rows = _memory_claim_rows(memory_rows("all-linear"))
    ctx.config.update({"selection": "all-linear", "bytes_per_element": 2, "unit": "GiB", "rtol": MEMORY_RTOL,
                       "atol": MEMORY_ATOL, "exclude_basis": exclude_basis})
    methods = ("adamw", "adam-sn", "adam-snsm")
    what = "optimizer states at 1B (G)" + (", projection basis not counted" if exclude_basis else "")
    v, sel, meas, pred, labels = _compare(rows, "SN-SM README", methods, exclude_basis=exclude_basis,
                                          name=f"SN-SM README {what}")
    measured = {f"states_gib_{r['method']}": float(m) for r, m in zip(sel, meas)}
    measured.update({f"ratio_{r['method']}": float(m / p) for r, m, p in zip(sel, meas, pred)})
    other = [r for r in sel if r["n_basis"]]
    for r in other:
        key = "ratio_with_basis_" if exclude_basis else "ratio_excl_basis_"
        measured[key + r["method"]] = float((r["measured"] if exclude_basis else r["measured_excl_basis"]) / r["paper"])
    detail = ("measured/paper: " + ", ".join(f"{r['method']} {m / p:.3f}" for r, m, p in zip(sel, meas, pred))
              + "; " + "; ".join(f"{r['method']} basis {r['basis_gib']:.3f} GiB (with it {r['ratio']:.3f}, "
                                 f"without {r['ratio_excl_basis']:.3f})" for r in other))
    return Outcome(measured=measured, predicted={f"paper_states_gib_{r['method']}": float(p)
                                                 for r, p in zip(sel, pred)},
                   verdict=v, detail=detail, rows=rows)


@claim(id="snsm.memory-1b", kind="paper", paper="SN-SM", source="SN-SM (Nguyen & Nguyen 2025), official README (LLaMA 1B)",
       statement="Optimizer-state memory for LLaMA 1B: Adam 4.99 GB, AdamSN 2.62 GB, AdamSNSM 0.84 GB.")
def snsm_memory_1b(ctx):
    """SN-SM README's optimizer-state memory at 1B, counted literally (every state tensor the method keeps).

    Statement (paper-claims §4.3): "optimizer-state memory Adam 4.99 GB, AdamSN 2.62 GB, AdamSNSM 0.84 GB"
    (0.84/4.99 = 16.8%; abstract: "reducing Adam's optimizer-states memory footprint by more than 80%").

    Measured: LLaMA 1B on the meta device, every Linear weight including lm_head compressed (SN/SM's
    ``get_optimizer.py``; embeddings and norms keep Adam's moments), rank 512, BF16, GiB.  States per matrix:
    Adam 2 m n; AdamSN m n + max(m, n); AdamSNSM k r (the projection basis Q) + r l (momentum) + max(m, n).

    {rule}
    Known discrepancy: counting the basis, AdamSNSM is 1.39x the README's 0.84; without it 1.00 (recorded as
    ``ratio_excl_basis_adam-snsm``; the reading without the basis is the separate claim
    ``snsm.memory-1b-excl-basis``).  The literal count is the memory the optimizer really holds.
    """
    return _snsm(ctx, exclude_basis=False)


snsm_memory_1b.__doc__ = snsm_memory_1b.__doc__.replace("{rule}", _MEMORY_DOC_RULE)


@claim(id="snsm.memory-1b-excl-basis", kind="corrected", paper="SN-SM",
       source="SN-SM (Nguyen & Nguyen 2025), official README (LLaMA 1B); reconstructed reading",
       statement="Reconstructed: the README's 1B optimizer-state figures (Adam 4.99, AdamSN 2.62, AdamSNSM 0.84 GB) "
                 "are the moment and subset-norm states without the projection bases.")
def snsm_memory_1b_excl_basis(ctx):
    """The SN-SM README's 1B figures under the reading that reproduces them: projection bases not counted.

    Same count as ``snsm.memory-1b`` minus the k r elements of each AdamSNSM basis Q (Adam and AdamSN have none).
    This is a reconstruction (what was probably counted), not the literal statement; it says nothing about the
    memory AdamSNSM really needs, which includes Q.

    {rule}
    """
    return _snsm(ctx, exclude_basis=True)


snsm_memory_1b_excl_basis.__doc__ = snsm_memory_1b_excl_basis.__doc__.replace("{rule}", _MEMORY_DOC_RULE)


def _draw_memory(rows, *, title: str, quantity: str, sources, excl_basis: bool = False):
    from analysis import plotting as P

    paper_rows = [r for r in rows if r.get("paper") is not None and r.get("source") in sources]
    keys = []
    for r in paper_rows:
        k = (r["size"], r["method"])
        if k not in keys:
            keys.append(k)
    sizes = [s for s in ("60m", "130m", "350m", "1b", "7b") if any(k[0] == s for k in keys)]
    methods = P.sort_methods({k[1] for k in keys})
    fig, ax = P.new_figure(columns=2 if len(sizes) > 1 else 1)
    width = 0.8 / max(1, 2 * len(methods))
    field = "states_gib" if quantity == "states" else "total_gib"
    for j, method in enumerate(methods):
        for i, size in enumerate(sizes):
            r = next((x for x in paper_rows if x["size"] == size and x["method"] == method), None)
            if r is None:
                continue
            meas = r[field] - (r["basis_gib"] if excl_basis else 0.0)
            x0 = i + (2 * j - len(methods)) * width + width / 2
            color = P.method_color(method)
            ax.bar(x0, meas, width, color=color, label=f"{P.method_label(method)} measured" if i == 0 else None)
            ax.bar(x0 + width, r["paper"], width, color="white", edgecolor=color, hatch="///",
                   label=f"{P.method_label(method)} paper" if i == 0 else None)
            ax.text(x0 + width / 2, max(meas, r["paper"]) * 1.02, f"{meas / r['paper']:.2f}", ha="center",
                    va="bottom", fontsize=5.5)
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels([s.upper() for s in sizes])
    ylabel = ("optimizer states" if quantity == "states" else "params + optimizer states") + " (GiB, BF16)"
    top = max([r[field] for r in paper_rows] + [r["paper"] for r in paper_rows] + [1e-3])
    if len(sizes) > 1:
        P.finish(ax, xlabel="LLaMA size (ratio measured/paper above the bars)", ylabel=ylabel, title=title,
                 logy=True, fontsize=6, ncol=len(methods), loc="upper left")
        ax.set_ylim(top=top * 6)
        _plain_log_ticks(ax)
    else:
        P.finish(ax, xlabel="ratio measured/paper above the bars", ylabel=ylabel, title=title, fontsize=6,
                 loc="upper right")
        ax.set_ylim(0, top * 1.9)
    return fig


def _plain_log_ticks(ax) -> None:
    """Log axis with plain numbers (0.5, 1, 2) instead of 5x10^-1."""
    from matplotlib import ticker

    ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


@table2_memory.figure
def _draw_table2(rows):
    return _draw_memory(rows, title="GaLore Table 2 memory: measured vs paper", quantity="total",
                        sources=("GaLore Table 2",))


@table3_memory.figure
def _draw_table3(rows):
    return _draw_memory(rows, title="SUMO Table 3 memory: measured vs paper", quantity="total",
                        sources=("GaLore Table 2", "SUMO Table 3"))


@snsm_memory_1b.figure
def _draw_snsm(rows):
    return _draw_memory(rows, title="SN-SM README, LLaMA 1B states (basis counted)", quantity="states",
                        sources=("SN-SM README",))


@snsm_memory_1b_excl_basis.figure
def _draw_snsm_excl(rows):
    return _draw_memory(rows, title="SN-SM README, LLaMA 1B states (basis not counted)",
                        quantity="states", sources=("SN-SM README",), excl_basis=True)


# ---------------------------------------------------------------------------------------------- memory reductions

#: "approximately 20%" read as the numbers whose nearest multiple of 10% is 20%: [15%, 25%).
SUMO_REDUCTION_INTERVAL = (0.15, 0.25)
#: SN-SM abstract: "reducing Adam's optimizer-states memory footprint by more than 80%".
SNSM_REDUCTION_AT_LEAST = 0.80
_PAPER_SIZES = ("60m", "130m", "350m", "1b")


@claim(id="sumo.memory-reduction", kind="reading", paper="SUMO",
       source="SUMO (Refael et al. 2025), abstract and README ('memory reductions up to ~20%'), Table 3",
       statement="SUMO reduces memory by up to approximately 20% compared with GaLore: read as the largest reduction "
                 "of parameters + optimizer states (Table 3's quantity) over the papers' LLaMA sizes 60M-1B, "
                 "1 - M_SUMO / M_GaLore, lying in [15%, 25%).")
def memory_reduction(ctx):
    """SUMO's "memory reductions up to ~20%" against GaLore, counted exactly.

    Statement (seed 000 abstract: "reduces memory requirements by up to 20% compared to state-of-the-art methods";
    README "20% memory"): no quantity or model is named; Table 3 (paper-claims §1.9) is the only memory table, so
    the reading is: reduction R(size) = 1 - M_SUMO/M_GaLore of parameters + optimizer states (BF16) at the papers'
    sizes 60M / 130M / 350M / 1B (ranks 128 / 256 / 256 / 512), and "up to ~20%" = max_size R in [15%, 25%) (the
    numbers whose nearest multiple of 10% is 20%).
    Measured (``probes.memory``, exact counts on the meta device; the ratio is unit-free, so the GiB/GB question of
    the tables cancels): SUMO keeps k r basis + r l moment per compressed matrix, GaLore k r + 2 r l
    (``subspace.state_numel``).  Also recorded, not in the verdict: R of the optimizer states alone (with and
    without the bases), R at 7B, and R computed from the paper's own Table 3 numbers (SUMO 0.23/0.51/1.16/3.84 vs
    GaLore 0.24/0.52/1.22/4.38).
    Rule: ``interval_contains(0.15, 0.25, max R)``: holds iff the largest reduction at the papers' sizes is in the
    interval, violated otherwise (exact counts: no other tolerance).
    """
    rows = _memory_claim_rows(memory_rows("galore"))
    by = {(r["size"], r["method"]): r for r in rows}
    ctx.config.update({"selection": "galore", "bytes_per_element": 2, "interval": list(SUMO_REDUCTION_INTERVAL)})
    out_rows, red = [], {}
    for size in (*_PAPER_SIZES, "7b"):
        g, u = by[(size, "galore")], by[(size, "sumo")]
        red[size] = {"total": 1 - u["total_gib"] / g["total_gib"], "states": 1 - u["states_gib"] / g["states_gib"],
                     "states_excl_basis": 1 - (u["states_gib"] - u["basis_gib"]) / (g["states_gib"] - g["basis_gib"])}
        for q, v in red[size].items():
            out_rows.append({"kind": "reduction", "method": "sumo vs galore", "seed": 0, "step": 0, "size": size,
                             "quantity": q, "reduction": float(v), "rank": u["rank"], "n_params": u["n_params"],
                             "sumo_gib": u["total_gib"] if q == "total" else u["states_gib"],
                             "galore_gib": g["total_gib"] if q == "total" else g["states_gib"]})
    paper = {p_["size"]: p_["value"] for p_ in _paper_columns("SUMO Table 3", "sumo")}
    paper_g = {p_["size"]: p_["value"] for p_ in _paper_columns("GaLore Table 2", "galore")}
    paper_red = {s: 1 - paper[s] / paper_g[s] for s in _PAPER_SIZES}
    best = max(_PAPER_SIZES, key=lambda s: red[s]["total"])
    lo, hi = SUMO_REDUCTION_INTERVAL
    verdict = V.interval_contains(lo, hi, red[best]["total"],
                                  name="largest params+states reduction of SUMO vs GaLore at 60M-1B")
    measured = {"max_reduction_total": red[best]["total"], "at_size": best,
                "reduction_total": {s: red[s]["total"] for s in red},
                "reduction_states": {s: red[s]["states"] for s in red},
                "reduction_states_excl_basis": {s: red[s]["states_excl_basis"] for s in red},
                "max_reduction_states_papers_sizes": max(red[s]["states"] for s in _PAPER_SIZES),
                "paper_table3_reduction": paper_red, "margin_to_interval": min(red[best]["total"] - lo,
                                                                              hi - red[best]["total"])}
    detail = ("params+states reduction SUMO vs GaLore: " + ", ".join(f"{s} {red[s]['total']:.1%}" for s in red)
              + f"; paper's own Table 3: " + ", ".join(f"{s} {v:.1%}" for s, v in paper_red.items())
              + "; optimizer states only: " + ", ".join(f"{s} {red[s]['states']:.1%}" for s in red)
              + " -- no reading at the papers' sizes gives ~20%: the totals stay below 13%, the states alone pass "
                "20% from 350M")
    return Outcome(measured=measured, predicted={"reduction_interval": list(SUMO_REDUCTION_INTERVAL)},
                   verdict=verdict, detail=detail, rows=out_rows)


def _paper_columns(source, method):
    from probes import memory as M
    return [p_ for p_ in M.PAPER_COLUMNS if p_["source"] == source and p_["method"] == method]


@memory_reduction.figure
def _draw_memory_reduction(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    sizes = [s for s in (*_PAPER_SIZES, "7b") if any(r.get("size") == s for r in rows)]
    styles = {"total": ("params + states", "o", "-"), "states": ("states", "s", "--"),
              "states_excl_basis": ("states, bases not counted", "^", ":")}
    for q, (lab, mk, ls) in styles.items():
        ys = [next((r["reduction"] for r in rows if r.get("size") == s and r.get("quantity") == q), np.nan)
              for s in sizes]
        ax.plot(range(len(sizes)), [100 * y for y in ys], marker=mk, linestyle=ls, label=lab)
    ax.axhspan(100 * SUMO_REDUCTION_INTERVAL[0], 100 * SUMO_REDUCTION_INTERVAL[1], color="#d62728", alpha=0.1,
               label="'~20%' read as [15%, 25%)")
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels([s.upper() for s in sizes])
    P.finish(ax, xlabel="LLaMA size (7B: no paper value)", ylabel="memory reduction of SUMO vs GaLore (%)",
             fontsize=6)
    return fig


@claim(id="snsm.state-reduction", kind="paper", paper="SN-SM",
       source="SN-SM (Nguyen & Nguyen 2025), abstract ('reducing Adam's optimizer-states memory footprint by more "
              "than 80%'); README (LLaMA 1B)",
       statement="At LLaMA 1B, AdamSNSM reduces Adam's optimizer-state memory by more than 80%: "
                 "1 - S_AdamSNSM / S_Adam > 0.80, counting every state tensor AdamSNSM keeps (projection bases "
                 "included).")
def snsm_state_reduction(ctx):
    """SN-SM's "more than 80%" optimizer-state reduction at LLaMA 1B, with and without the projection bases.

    Statement (seed 001 abstract): combining Subset-Norm with Subspace-Momentum "achieves Adam's validation
    perplexity for LLaMA 1B ... while reducing Adam's optimizer-states memory footprint by more than 80%" (v1:
    "using only 20% of Adam's optimizer-states memory").  Setting (paper-claims §4.3, official
    ``get_optimizer.py``): every Linear weight including lm_head compressed, rank 512; embeddings and norms keep
    Adam's two moments.
    Measured (``probes.memory``, exact element counts on the meta device; unit-free ratio): S_Adam = 2 numel;
    S_AdamSNSM = k r (basis Q) + r l (momentum) + max(m, n) (subset-norm) per compressed matrix plus Adam on the
    dense rest.  Reduction R = 1 - S_AdamSNSM/S_Adam, literally (bases counted: memory the optimizer holds) and with
    the bases left out (the reading that reproduces the README's 0.84 GB, ``snsm.memory-1b-excl-basis``); both at
    60M-7B in the rows.
    Rule: ``lower_bound(R_literal, 0.80)`` with no tolerance (exact counts; "more than 80%" is strict, and R is
    never exactly 0.8 here).  The reading without the bases is reported (and drawn), not judged.
    """
    rows = _memory_claim_rows(memory_rows("all-linear"))
    by = {(r["size"], r["method"]): r for r in rows}
    ctx.config.update({"selection": "all-linear", "bytes_per_element": 2, "at_least": SNSM_REDUCTION_AT_LEAST})
    red, out_rows = {}, []
    for size in ("60m", "130m", "350m", "1b", "7b"):
        a, m = by[(size, "adamw")], by[(size, "adam-snsm")]
        red[size] = {"with_basis": 1 - m["n_state"] / a["n_state"],
                     "excl_basis": 1 - (m["n_state"] - m["n_basis"]) / a["n_state"]}
        for q, v in red[size].items():
            out_rows.append({"kind": "reduction", "method": "adam-snsm vs adamw", "seed": 0, "step": 0, "size": size,
                             "quantity": q, "reduction": float(v), "rank": m["rank"], "n_state_adam": a["n_state"],
                             "n_state_snsm": m["n_state"], "n_basis": m["n_basis"]})
    r1 = red["1b"]
    verdict = V.lower_bound(r1["with_basis"], SNSM_REDUCTION_AT_LEAST,
                            name="1 - AdamSNSM/Adam optimizer states at LLaMA 1B (bases counted)")
    measured = {"reduction_1b_with_basis": r1["with_basis"], "reduction_1b_excl_basis": r1["excl_basis"],
                "excl_basis_above_80": bool(r1["excl_basis"] > SNSM_REDUCTION_AT_LEAST),
                "margin": r1["with_basis"] - SNSM_REDUCTION_AT_LEAST,
                "reduction_with_basis": {s: v["with_basis"] for s, v in red.items()},
                "reduction_excl_basis": {s: v["excl_basis"] for s, v in red.items()}}
    detail = (f"LLaMA 1B, rank 512, all linear layers: AdamSNSM keeps {1 - r1['with_basis']:.1%} of Adam's state "
              f"with the bases (reduction {r1['with_basis']:.1%} < 80%), {1 - r1['excl_basis']:.1%} without them "
              f"(reduction {r1['excl_basis']:.1%} > 80%); other sizes: "
              + ", ".join(f"{s} {v['with_basis']:.1%}/{v['excl_basis']:.1%}" for s, v in red.items() if s != "1b"))
    return Outcome(measured=measured, predicted={"reduction_more_than": SNSM_REDUCTION_AT_LEAST}, verdict=verdict,
                   detail=detail, rows=out_rows)


@snsm_state_reduction.figure
def _draw_snsm_state_reduction(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    sizes = [s for s in ("60m", "130m", "350m", "1b", "7b") if any(r.get("size") == s for r in rows)]
    for q, lab, mk in (("with_basis", "bases counted (literal)", "o"), ("excl_basis", "bases not counted", "^")):
        ys = [next((r["reduction"] for r in rows if r.get("size") == s and r.get("quantity") == q), np.nan)
              for s in sizes]
        ax.plot(range(len(sizes)), [100 * y for y in ys], marker=mk, label=lab)
    P.reference_line(ax, 100 * SNSM_REDUCTION_AT_LEAST, label="claim: > 80% (at 1B)")
    ax.set_xticks(range(len(sizes)))
    ax.set_xticklabels([s.upper() for s in sizes])
    P.finish(ax, xlabel="LLaMA size", ylabel="AdamSNSM optimizer-state reduction vs Adam (%)", fontsize=6)
    return fig
