"""The one figure style of the workbench: every figure looks like it comes from one paper.

* Sizes: ``ONE_COLUMN`` (3.25 in) and ``TWO_COLUMN`` (6.75 in) wide; ``new_figure(columns=1|2)``.
* One colour per method name everywhere (``method_color``), and paper-style labels (``method_label``):
  adamw, galore, golore, sumo, sumo-ns5, muon, osd, adam-sn, adam-snsm, full, large-batch.  Variants
  such as ``golore@20%`` or ``galore-sgd`` take the colour of their base method; unknown names get a
  stable colour derived from the name.
* Measurements are solid (``plot_measured``); theory curves are dashed and drawn over them
  (``plot_theory``); confidence bands are light fills under both (``confidence_band``, ``mean_ci``).
* ``save_figure`` writes PNG and vector PDF atomically (temp file + ``os.replace``), with fixed metadata.
* Figures are built with ``matplotlib.figure.Figure`` (no pyplot global state), so drawing works in
  headless runs; the Agg backend is selected unless a backend was already chosen (e.g. a notebook).

A figure function takes saved rows and returns a Figure::

    def draw(rows):
        fig, ax = new_figure(columns=1)
        for method, (x, mean, lo, hi) in series_stats(rows, x="step", y="loss").items():
            confidence_band(ax, x, lo, hi, method)
            plot_measured(ax, x, mean, method)
        plot_theory(ax, x, 1 / x ** 0.5, label=r"$O(T^{-1/2})$")
        finish(ax, xlabel="step", ylabel="loss", logy=True)
        return fig
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import matplotlib

if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from .atomic import atomic_path  # noqa: E402

__all__ = [
    "ONE_COLUMN", "TWO_COLUMN", "GOLDEN", "STYLE", "METHODS", "METHOD_COLORS", "METHOD_LABELS",
    "THEORY_COLOR", "style", "use_style", "figsize", "new_figure", "method_color", "method_label",
    "method_style", "sort_methods", "plot_measured", "plot_theory", "confidence_band", "reference_line",
    "mean_ci", "series", "series_stats", "finish", "save_figure", "close",
]

ONE_COLUMN = 3.25   # inches: one column of a two-column paper (ICML / NeurIPS-style single column ~ 3.25)
TWO_COLUMN = 6.75   # inches: full text width
GOLDEN = 0.618

# fixed colour per method (colour-blind-aware where possible; baselines in neutral tones)
METHOD_COLORS: dict[str, str] = {
    "adamw": "#222222",
    "full": "#7f7f7f",
    "galore": "#1f77b4",
    "golore": "#2ca02c",
    "sumo": "#d62728",
    "sumo-ns5": "#ff7f0e",
    "muon": "#9467bd",
    "osd": "#8c564b",
    "adam-sn": "#17becf",
    "adam-snsm": "#e377c2",
    "large-batch": "#bcbd22",
}
METHODS = tuple(METHOD_COLORS)
METHOD_LABELS: dict[str, str] = {
    "adamw": "AdamW", "full": "Full-parameter", "galore": "GaLore", "golore": "GoLore",
    "sumo": "SUMO (SVD)", "sumo-ns5": "SUMO (NS5)", "muon": "Muon", "osd": "OSD",
    "adam-sn": "Adam-SN", "adam-snsm": "Adam-SNSM", "large-batch": "Large-batch GaLore",
}
THEORY_COLOR = "#000000"
_FALLBACK = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
             "#756bb1", "#636363", "#6baed6", "#fd8d3c")

STYLE: dict = {
    "font.family": "serif",
    "font.serif": ["STIXGeneral", "DejaVu Serif", "Times New Roman"],
    "mathtext.fontset": "stix",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "lines.linewidth": 1.3,
    "lines.markersize": 3,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "legend.frameon": False,
    "legend.handlelength": 2.0,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "axes.prop_cycle": matplotlib.cycler(color=list(METHOD_COLORS.values())),
}


@contextlib.contextmanager
def style():
    """Apply the shared style inside a ``with`` block (the runner draws every figure inside it)."""
    with matplotlib.rc_context(STYLE):
        yield


def use_style() -> None:
    """Apply the shared style globally (notebooks)."""
    matplotlib.rcParams.update(STYLE)


def figsize(columns: int = 1, aspect: float = GOLDEN, height: float | None = None) -> tuple[float, float]:
    """(width, height) in inches for a one- or two-column figure."""
    if columns not in (1, 2):
        raise ValueError("columns must be 1 or 2")
    width = ONE_COLUMN if columns == 1 else TWO_COLUMN
    return width, (height if height is not None else width * aspect * (1 if columns == 1 else 0.5))


def new_figure(columns: int = 1, nrows: int = 1, ncols: int = 1, *, aspect: float | None = None,
               height: float | None = None, squeeze: bool = True, **subplot_kw):
    """A constrained-layout Figure of paper width and its axes (like ``plt.subplots``, without pyplot)."""
    w, h = figsize(columns, GOLDEN if aspect is None else aspect, height)
    if height is None and nrows > 1:
        h *= nrows
    with style():
        fig = Figure(figsize=(w, h), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


# ---------------------------------------------------------------------------------------------- methods

def _norm(name: str) -> str:
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


def _base(name: str) -> str | None:
    n = _norm(name)
    if n in METHOD_COLORS:
        return n
    for sep in ("@", ":", "(", "/"):
        head = n.split(sep)[0].strip("-")
        if head in METHOD_COLORS:
            return head
    best = None
    for key in METHOD_COLORS:
        if n.startswith(key + "-") and (best is None or len(key) > len(best)):
            best = key
    return best


def method_color(name: str) -> str:
    """The colour of a method, the same in every figure."""
    base = _base(name)
    if base is not None:
        return METHOD_COLORS[base]
    h = int(hashlib.md5(_norm(name).encode()).hexdigest(), 16)
    return _FALLBACK[h % len(_FALLBACK)]


def method_label(name: str) -> str:
    """Paper-style legend label: ``golore@20%`` -> ``GoLore@20%``."""
    n = _norm(name)
    base = _base(name)
    if base is None:
        return str(name)
    if n == base:
        return METHOD_LABELS[base]
    return METHOD_LABELS[base] + str(name).strip()[len(base):]


def method_style(name: str) -> dict:
    return {"color": method_color(name), "label": method_label(name)}


def sort_methods(names: Iterable[str]) -> list[str]:
    """Canonical legend order (the order of METHODS), unknown names last, alphabetically."""
    def key(n):
        b = _base(n)
        return (METHODS.index(b) if b is not None else len(METHODS), _norm(n))
    return sorted(names, key=key)


# ---------------------------------------------------------------------------------------------- drawing

def plot_measured(ax, x, y, method: str | None = None, *, label: str | None = None, **kw):
    """A measured curve: solid, in the method's colour."""
    style_kw = method_style(method) if method is not None else {}
    if label is not None:
        style_kw["label"] = label
    style_kw.update(kw)
    style_kw.setdefault("zorder", 2)
    return ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), **style_kw)[0]


def plot_theory(ax, x, y, method: str | None = None, *, label: str | None = "theory", **kw):
    """A theory curve or bound: dashed, drawn over the measurements (method colour, else black)."""
    opts = {"color": method_color(method) if method is not None else THEORY_COLOR, "linestyle": "--",
            "linewidth": 1.1, "zorder": 3, "label": label}
    opts.update(kw)
    return ax.plot(np.asarray(x, dtype=float), np.asarray(y, dtype=float), **opts)[0]


def confidence_band(ax, x, lo, hi, method: str | None = None, *, alpha: float = 0.2, **kw):
    """A light band between ``lo`` and ``hi`` under the curves (e.g. a 95% CI across seeds)."""
    opts = {"color": method_color(method) if method is not None else THEORY_COLOR, "alpha": alpha,
            "linewidth": 0, "zorder": 1}
    opts.update(kw)
    return ax.fill_between(np.asarray(x, dtype=float), np.asarray(lo, dtype=float),
                           np.asarray(hi, dtype=float), **opts)


def reference_line(ax, y: float, *, label: str | None = None, **kw):
    """A horizontal reference (e.g. f*), dotted grey."""
    opts = {"color": "#555555", "linestyle": ":", "linewidth": 0.9, "zorder": 1.5, "label": label}
    opts.update(kw)
    return ax.axhline(float(y), **opts)


def finish(ax, *, xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
           logx: bool = False, logy: bool = False, legend: bool = True, **legend_kw):
    """Labels, log scales and a legend in canonical method order."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if legend:
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            ax.legend(handles, labels, **legend_kw)
    return ax


# ---------------------------------------------------------------------------------------------- data

def mean_ci(samples, axis: int = 0, level: float = 0.95):
    """Mean and Student-t confidence interval across ``axis`` (e.g. seeds); (mean, lo, hi).

    With a single sample the interval collapses to the mean.  NaNs are ignored per point.
    """
    a = np.asarray(samples, dtype=float)
    n = np.sum(np.isfinite(a), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(a, axis=axis)
        sd = np.nanstd(a, axis=axis, ddof=1) if a.shape[axis] > 1 else np.zeros_like(mean)
        from scipy import stats
        t = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = np.where(n > 1, t * sd / np.sqrt(np.maximum(n, 1)), 0.0)
    return mean, mean - half, mean + half


def _matches(row: dict, where: dict | None) -> bool:
    return not where or all(row.get(k) == v for k, v in where.items())


def series(rows: Sequence[dict], x: str, y: str, by: str = "method", where: dict | None = None) -> dict:
    """{group: (xs, ys)} sorted by x, from long-format rows (rows lacking x or y are skipped)."""
    groups: dict = defaultdict(list)
    for r in rows:
        if _matches(r, where) and r.get(x) is not None and r.get(y) is not None:
            groups[r.get(by)].append((r[x], r[y]))
    out = {}
    for g in sort_methods([k for k in groups if isinstance(k, str)]) + [k for k in groups if not isinstance(k, str)]:
        pts = sorted(groups[g], key=lambda p: p[0])
        out[g] = (np.array([p[0] for p in pts], dtype=float), np.array([p[1] for p in pts], dtype=float))
    return out


def series_stats(rows: Sequence[dict], x: str, y: str, by: str = "method", seed: str = "seed",
                 where: dict | None = None, level: float = 0.95) -> dict:
    """{group: (xs, mean, lo, hi)}: y averaged across ``seed`` at each x, with a t confidence interval."""
    table: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if _matches(r, where) and r.get(x) is not None and r.get(y) is not None:
            table[r.get(by)][r[x]].append(r[y])
    out = {}
    for g in sort_methods([k for k in table if isinstance(k, str)]) + [k for k in table if not isinstance(k, str)]:
        xs = sorted(table[g])
        width = max(len(table[g][v]) for v in xs)
        mat = np.full((width, len(xs)), np.nan)
        for j, v in enumerate(xs):
            vals = table[g][v]
            mat[: len(vals), j] = np.asarray(vals, dtype=float)
        mean, lo, hi = mean_ci(mat, axis=0, level=level)
        out[g] = (np.asarray(xs, dtype=float), mean, lo, hi)
    return out


# ---------------------------------------------------------------------------------------------- saving

def save_figure(fig: Figure, stem: str | Path, formats: Sequence[str] = ("png", "pdf"), dpi: int | None = None) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.pdf``, each atomically; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        target = stem.parent / f"{stem.name}.{fmt}"
        meta = {"CreationDate": None} if fmt == "pdf" else ({"Software": None} if fmt == "png" else None)
        with atomic_path(target) as tmp, style():
            fig.savefig(tmp, format=fmt, dpi=dpi or STYLE["savefig.dpi"] if fmt == "png" else None, metadata=meta)
        paths.append(target)
    return paths


def close(fig: Figure) -> None:
    """Release a figure made with ``new_figure`` (no pyplot registry involved; clears its artists)."""
    fig.clear()
