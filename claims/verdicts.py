"""Verdict rules: the only way a claim may reach "holds", "violated" or "inconclusive".

Every rule takes numbers (scalars, sequences, numpy arrays or CPU/GPU tensors), applies one stated
decision rule and returns a :class:`Verdict`: a ``str`` equal to ``"holds"``, ``"violated"`` or
``"inconclusive"`` that also carries a one-line human ``reason``, the ``rule`` name and the ``inputs``
it was computed from, so every verdict can be traced back to its numbers (and recomputed with
:func:`recompute`).  ``Outcome`` refuses a plain string, so a verdict can never be typed by hand.

Tolerances are arguments, never defaults tuned to make a claim pass: derive them from a confidence
interval or a round-off analysis and say so in the claim's docstring.

Non-finite inputs (NaN) make every rule "inconclusive", never "holds".

Rules
-----
upper_bound(measured, bound, rtol, atol)    measured <= bound + rtol*|bound| + atol, everywhere
lower_bound(measured, bound, rtol, atol)    measured >= bound - rtol*|bound| - atol, everywhere
close_to(measured, predicted, rtol, atol)   |measured - predicted| <= atol + rtol*|predicted| (tight)
within_ci(value, lo, hi, max_width)         predicted value inside the measured confidence interval
ci_at_most(lo, hi, bound) / ci_at_least     three-valued: CI entirely on the claimed side -> holds,
                                            entirely on the other side -> violated, straddling -> inconclusive
interval_contains(lo, hi, values, atol)     every value inside the predicted interval [lo, hi]
ordering_significant(better, worse, ...)    Welch (or paired) one-sided t-test across seeds
provided(ok, what, verdict)                 inconclusive when a stated precondition is not met
all_of(*verdicts)                           violated > inconclusive > holds
error(exc)                                  inconclusive: the experiment raised

``margin(v)`` says how far a decided verdict is from flipping, in the rule's own unit (a fraction of the bound, of
the tolerance or of the interval width, or decades of p-value): a small margin is a fragile verdict.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

HOLDS = "holds"
VIOLATED = "violated"
INCONCLUSIVE = "inconclusive"
VERDICTS = (HOLDS, VIOLATED, INCONCLUSIVE)

__all__ = [
    "Verdict", "VERDICTS", "HOLDS", "VIOLATED", "INCONCLUSIVE",
    "upper_bound", "lower_bound", "close_to", "within_ci", "ci_at_most", "ci_at_least",
    "interval_contains", "ordering_significant", "provided", "all_of", "error", "recompute", "margin",
]


class Verdict(str):
    """A verdict string ("holds" | "violated" | "inconclusive") with its reason and provenance."""

    reason: str
    rule: str
    inputs: dict

    def __new__(cls, value: str, reason: str, rule: str, inputs: dict | None = None):
        if value not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {value!r}")
        self = super().__new__(cls, value)
        self.reason = " ".join(str(reason).split())  # always one line
        self.rule = rule
        self.inputs = dict(inputs or {})
        return self

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __reduce__(self):
        return (Verdict, (self.value, self.reason, self.rule, self.inputs))

    def __repr__(self) -> str:
        return f"Verdict({self.value!r}, reason={self.reason!r}, rule={self.rule!r})"

    def as_dict(self) -> dict:
        return {"verdict": self.value, "reason": self.reason, "rule": self.rule,
                "inputs": _summarise_inputs(self.inputs)}


# ---------------------------------------------------------------------------------------------- helpers

def _arr(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, possibly on an accelerator
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=float)


def _fmt(x: float) -> str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}"


def _where(idx: tuple, shape: tuple) -> str:
    return "" if not shape else f" at index {idx[0] if len(idx) == 1 else idx}"


def _label(name: str | None, default: str) -> str:
    return f"{name}: " if name else (f"{default}: " if default else "")


def _summarise_inputs(inputs: dict) -> dict:
    """Keep small inputs whole; summarise long arrays (n, min, max) so records stay small."""
    out = {}
    for k, v in inputs.items():
        if isinstance(v, Verdict):
            out[k] = v.as_dict()
        elif isinstance(v, (list, tuple)) and v and all(isinstance(e, Verdict) for e in v):
            out[k] = [e.as_dict() for e in v]
        elif isinstance(v, (bool, str, type(None))):
            out[k] = v
        else:
            try:
                a = _arr(v)
            except (TypeError, ValueError):
                out[k] = repr(v)
                continue
            if a.size <= 32:
                out[k] = a.tolist()
            else:
                fin = a[np.isfinite(a)]
                out[k] = {"n": int(a.size), "shape": list(a.shape),
                          "min": float(fin.min()) if fin.size else None,
                          "max": float(fin.max()) if fin.size else None}
    return out


def _nonfinite(name: str, *arrays: np.ndarray) -> str | None:
    for a in arrays:
        if np.isnan(a).any():
            return f"{name}NaN among the inputs ({int(np.isnan(a).sum())} of {a.size}); no verdict"
    return None


# ---------------------------------------------------------------------------------------------- rules

def upper_bound(measured, bound, *, rtol: float = 0.0, atol: float = 0.0, name: str | None = None) -> Verdict:
    """Holds iff ``measured <= bound + rtol*|bound| + atol`` at every point (PEPit's upper-bound test)."""
    return _one_sided(measured, bound, rtol, atol, name, upper=True)


def lower_bound(measured, bound, *, rtol: float = 0.0, atol: float = 0.0, name: str | None = None) -> Verdict:
    """Holds iff ``measured >= bound - rtol*|bound| - atol`` at every point."""
    return _one_sided(measured, bound, rtol, atol, name, upper=False)


def _one_sided(measured, bound, rtol: float, atol: float, name: str | None, *, upper: bool) -> Verdict:
    rule, sign = ("upper_bound", 1.0) if upper else ("lower_bound", -1.0)
    m, b = np.broadcast_arrays(_arr(measured), _arr(bound))
    inputs = {"measured": measured, "bound": bound, "rtol": rtol, "atol": atol, "name": name}
    bad = _nonfinite(_label(name, ""), m, b)
    if bad:
        return Verdict(INCONCLUSIVE, bad, rule, inputs)
    with np.errstate(invalid="ignore"):
        limit = b + sign * (rtol * np.abs(b) + atol)
        slack = np.where(np.isinf(limit) & (sign * limit > 0), np.inf, sign * (limit - m))
    idx = np.unravel_index(int(np.argmin(slack)), slack.shape) if slack.size else ()
    n_bad = int((slack < 0).sum())
    tol = f" (rtol={rtol:g}, atol={atol:g})" if (rtol or atol) else ""
    lab = _label(name, "")
    beyond, within, where = (">", "<=", "exceeded") if upper else ("<", ">=", "below")
    if n_bad:
        return Verdict(VIOLATED, f"{lab}measured {_fmt(m[idx])} {beyond} bound {_fmt(b[idx])}{tol}"
                       f"{_where(idx, m.shape)}; {where} at {n_bad}/{m.size} points", rule, inputs)
    scope = f"all {m.size} points within bound; tightest" if m.size > 1 else "measured"
    return Verdict(HOLDS, f"{lab}{scope} {_fmt(m[idx])} {within} bound {_fmt(b[idx])}{tol}"
                   f"{_where(idx, m.shape) if m.size > 1 else ''}", rule, inputs)


def close_to(measured, predicted, *, rtol: float, atol: float = 0.0, name: str | None = None) -> Verdict:
    """Tight claims: holds iff ``|measured - predicted| <= atol + rtol*|predicted|`` everywhere."""
    m, p = np.broadcast_arrays(_arr(measured), _arr(predicted))
    inputs = {"measured": measured, "predicted": predicted, "rtol": rtol, "atol": atol, "name": name}
    bad = _nonfinite(_label(name, ""), m, p)
    if bad:
        return Verdict(INCONCLUSIVE, bad, "close_to", inputs)
    with np.errstate(invalid="ignore"):
        err = np.abs(m - p)
        tol = atol + rtol * np.abs(p)
        err = np.where(m == p, 0.0, err)  # equal infinities are equal
        excess = err - tol
    idx = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.size else ()
    n_bad = int((excess > 0).sum())
    rel = err[idx] / abs(p[idx]) if p[idx] != 0 and np.isfinite(p[idx]) else float("nan")
    lab = _label(name, "")
    msg = (f"{lab}measured {_fmt(m[idx])} vs predicted {_fmt(p[idx])}{_where(idx, m.shape)}: "
           f"|diff| {_fmt(err[idx])} (rel {_fmt(rel)}), tolerance {_fmt(tol[idx])} (rtol={rtol:g}, atol={atol:g})")
    if n_bad:
        return Verdict(VIOLATED, f"{msg}; outside tolerance at {n_bad}/{m.size} points", "close_to", inputs)
    return Verdict(HOLDS, msg, "close_to", inputs)


def within_ci(value, lo, hi, *, max_width: float | None = None, name: str | None = None,
              level: float | None = None) -> Verdict:
    """The predicted ``value`` lies inside the measured confidence interval ``[lo, hi]``.

    Inconclusive when the interval is wider than ``max_width`` (too little data to test anything).
    """
    v, l, h = float(_arr(value)), float(_arr(lo)), float(_arr(hi))
    inputs = {"value": value, "lo": lo, "hi": hi, "max_width": max_width, "name": name, "level": level}
    lab = _label(name, "")
    ci = f"{'%g%% ' % (100 * level) if level else ''}CI [{_fmt(l)}, {_fmt(h)}]"
    if any(math.isnan(x) for x in (v, l, h)):
        return Verdict(INCONCLUSIVE, f"{lab}NaN in value or interval; no verdict", "within_ci", inputs)
    if l > h:
        raise ValueError(f"within_ci: lo={l} > hi={h}")
    if max_width is not None and h - l > max_width:
        return Verdict(INCONCLUSIVE, f"{lab}measured {ci} wider than {_fmt(max_width)}; too uncertain to test "
                       f"predicted {_fmt(v)}", "within_ci", inputs)
    if l <= v <= h:
        return Verdict(HOLDS, f"{lab}predicted {_fmt(v)} inside measured {ci}", "within_ci", inputs)
    return Verdict(VIOLATED, f"{lab}predicted {_fmt(v)} outside measured {ci}", "within_ci", inputs)


def _ci_side(lo, hi, bound, at_most: bool, name, max_width) -> Verdict:
    rule = "ci_at_most" if at_most else "ci_at_least"
    l, h, b = float(_arr(lo)), float(_arr(hi)), float(_arr(bound))
    inputs = {"lo": lo, "hi": hi, "bound": bound, "name": name, "max_width": max_width}
    lab = _label(name, "")
    if any(math.isnan(x) for x in (l, h, b)):
        return Verdict(INCONCLUSIVE, f"{lab}NaN in interval or bound; no verdict", rule, inputs)
    if l > h:
        raise ValueError(f"{rule}: lo={l} > hi={h}")
    ci, op = f"CI [{_fmt(l)}, {_fmt(h)}]", ("<=" if at_most else ">=")
    if max_width is not None and h - l > max_width:
        return Verdict(INCONCLUSIVE, f"{lab}{ci} wider than {_fmt(max_width)}", rule, inputs)
    good = h <= b if at_most else l >= b
    bad = l > b if at_most else h < b
    if good:
        return Verdict(HOLDS, f"{lab}whole {ci} {op} {_fmt(b)}", rule, inputs)
    if bad:
        return Verdict(VIOLATED, f"{lab}whole {ci} on the wrong side of {_fmt(b)} (claim: {op} {_fmt(b)})",
                       rule, inputs)
    return Verdict(INCONCLUSIVE, f"{lab}{ci} straddles {_fmt(b)}; cannot decide {op} {_fmt(b)}", rule, inputs)


def ci_at_most(lo, hi, bound, *, name: str | None = None, max_width: float | None = None) -> Verdict:
    """Claim "quantity <= bound" judged from its CI: holds if hi <= bound, violated if lo > bound,
    inconclusive if the interval straddles the bound (or is wider than ``max_width``)."""
    return _ci_side(lo, hi, bound, True, name, max_width)


def ci_at_least(lo, hi, bound, *, name: str | None = None, max_width: float | None = None) -> Verdict:
    """Claim "quantity >= bound": holds if lo >= bound, violated if hi < bound, else inconclusive."""
    return _ci_side(lo, hi, bound, False, name, max_width)


def interval_contains(lo, hi, values, *, atol: float = 0.0, name: str | None = None) -> Verdict:
    """Holds iff every value lies in the predicted closed interval ``[lo - atol, hi + atol]``."""
    v = _arr(values).ravel()
    l, h = float(_arr(lo)), float(_arr(hi))
    inputs = {"lo": lo, "hi": hi, "values": values, "atol": atol, "name": name}
    lab = _label(name, "")
    bad = _nonfinite(lab, v) or (_nonfinite(lab, np.array([l, h])))
    if bad:
        return Verdict(INCONCLUSIVE, bad, "interval_contains", inputs)
    if v.size == 0:
        return Verdict(INCONCLUSIVE, f"{lab}no values to check", "interval_contains", inputs)
    below, above = (l - atol) - v, v - (h + atol)
    excursion = np.maximum(below, above)
    i = int(np.argmax(excursion))
    n_bad = int((excursion > 0).sum())
    span = f"values in [{_fmt(v.min())}, {_fmt(v.max())}]"
    iv = f"[{_fmt(l)}, {_fmt(h)}]" + (f" (atol={atol:g})" if atol else "")
    if n_bad:
        return Verdict(VIOLATED, f"{lab}{n_bad}/{v.size} values outside {iv}; worst {_fmt(v[i])}; {span}",
                       "interval_contains", inputs)
    return Verdict(HOLDS, f"{lab}all {v.size} {span} inside {iv}", "interval_contains", inputs)


def ordering_significant(better, worse, *, lower_is_better: bool = True, alpha: float = 0.05,
                         paired: bool = False, min_n: int = 2, name: str | None = None) -> Verdict:
    """Claim "``better`` beats ``worse``" across repetitions (seeds), one-sided t-test at level ``alpha``.

    holds: significant in the claimed direction; violated: significant in the opposite direction;
    inconclusive: neither, or fewer than ``min_n`` samples per side.  Welch's test (unequal variances)
    unless ``paired`` (same seeds on both sides).  Zero-variance samples are compared exactly.
    """
    a, b = _arr(better).ravel(), _arr(worse).ravel()
    inputs = {"better": better, "worse": worse, "lower_is_better": lower_is_better, "alpha": alpha,
              "paired": paired, "min_n": min_n, "name": name}
    lab = _label(name, "")
    rule = "ordering_significant"
    bad = _nonfinite(lab, a, b)
    if bad:
        return Verdict(INCONCLUSIVE, bad, rule, inputs)
    if a.size < min_n or b.size < min_n:
        return Verdict(INCONCLUSIVE, f"{lab}need >= {min_n} samples per side, got {a.size} and {b.size}", rule, inputs)
    if paired and a.size != b.size:
        raise ValueError("ordering_significant(paired=True) needs samples of equal length")
    sign = 1.0 if lower_is_better else -1.0
    d = sign * (b - a) if paired else None  # d > 0: "better" really is better
    ma, mb = a.mean(), b.mean()
    word = "lower" if lower_is_better else "higher"
    means = f"mean {_fmt(ma)} vs {_fmt(mb)} ({word} is better, n={a.size}/{b.size})"
    if paired:
        sd = d.std(ddof=1)
        if sd == 0:
            p_claim = 0.0 if d.mean() > 0 else 1.0
            p_opp = 0.0 if d.mean() < 0 else 1.0
        else:
            from scipy import stats
            p_claim = float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)
            p_opp = float(stats.ttest_1samp(d, 0.0, alternative="less").pvalue)
    else:
        if a.std(ddof=1) == 0 and b.std(ddof=1) == 0:
            gap = sign * (mb - ma)
            p_claim = 0.0 if gap > 0 else 1.0
            p_opp = 0.0 if gap < 0 else 1.0
        else:
            from scipy import stats
            alt = "less" if lower_is_better else "greater"
            opp = "greater" if lower_is_better else "less"
            p_claim = float(stats.ttest_ind(a, b, equal_var=False, alternative=alt).pvalue)
            p_opp = float(stats.ttest_ind(a, b, equal_var=False, alternative=opp).pvalue)
    test = "paired t" if paired else "Welch t"
    inputs["p_claim"], inputs["p_opposite"] = p_claim, p_opp
    if p_claim < alpha:
        return Verdict(HOLDS, f"{lab}{means}; one-sided {test} p={_fmt(p_claim)} < {alpha:g}", rule, inputs)
    if p_opp < alpha:
        return Verdict(VIOLATED, f"{lab}{means}; opposite ordering significant, p={_fmt(p_opp)} < {alpha:g}",
                       rule, inputs)
    return Verdict(INCONCLUSIVE, f"{lab}{means}; not significant either way (p={_fmt(p_claim)}, alpha={alpha:g})",
                   rule, inputs)


def provided(ok: bool, what: str, verdict: Verdict) -> Verdict:
    """``verdict`` if the stated precondition ``what`` holds, else inconclusive (the rule does not apply)."""
    if not isinstance(verdict, Verdict):
        raise TypeError("provided(): verdict must come from a rule in claims.verdicts")
    ok = bool(ok)
    inputs = {"ok": ok, "what": what, "verdict": verdict}
    if ok:
        return Verdict(verdict.value, verdict.reason, "provided", inputs)
    return Verdict(INCONCLUSIVE, f"precondition not met ({what}); rule would say {verdict.value}: {verdict.reason}",
                   "provided", inputs)


def all_of(*verdicts: Verdict | Iterable[Verdict]) -> Verdict:
    """Conjunction: violated if any part is violated, else inconclusive if any is, else holds."""
    flat: list[Verdict] = []
    for v in verdicts:
        flat.extend([v] if isinstance(v, str) else list(v))
    if not flat:
        raise ValueError("all_of() needs at least one verdict")
    for v in flat:
        if not isinstance(v, Verdict):
            raise TypeError("all_of(): every part must come from a rule in claims.verdicts")
    for value in (VIOLATED, INCONCLUSIVE):
        parts = [v for v in flat if v == value]
        if parts:
            reason = f"{len(parts)}/{len(flat)} parts {value}: " + "; ".join(v.reason for v in parts)
            return Verdict(value, reason, "all_of", {"parts": flat})
    return Verdict(HOLDS, f"all {len(flat)} parts hold: " + "; ".join(v.reason for v in flat), "all_of",
                   {"parts": flat})


def error(exc: BaseException, where: str = "") -> Verdict:
    """The experiment raised: no numbers, so no verdict (inconclusive), with the exception as the reason."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    text = f"error: {type(exc).__name__}" + (f": {msg}" if msg else "") + (f" ({where})" if where else "")
    return Verdict(INCONCLUSIVE, text, "error", {"exception": type(exc).__name__})


_RULES = {f.__name__: f for f in (upper_bound, lower_bound, close_to, within_ci, ci_at_most, ci_at_least,
                                  interval_contains, ordering_significant)}


def recompute(v: Verdict) -> Verdict:
    """Re-run the rule that produced ``v`` on its recorded inputs (for tests: the verdict follows the numbers)."""
    if v.rule == "all_of":
        return all_of(*(recompute(p) for p in v.inputs["parts"]))
    if v.rule == "provided":
        return provided(v.inputs["ok"], v.inputs["what"], recompute(v.inputs["verdict"]))
    if v.rule not in _RULES:
        raise ValueError(f"cannot recompute rule {v.rule!r}")
    kw = {k: val for k, val in v.inputs.items() if k not in ("p_claim", "p_opposite")}
    return _RULES[v.rule](**kw)


# ---------------------------------------------------------------------------------------------- margins

def _relative_slack(v: Verdict) -> float:
    m, b = np.broadcast_arrays(_arr(v.inputs["measured"]), _arr(v.inputs["bound"]))
    sign = 1.0 if v.rule == "upper_bound" else -1.0
    limit = b + sign * (v.inputs["rtol"] * np.abs(b) + v.inputs["atol"])
    with np.errstate(invalid="ignore", divide="ignore"):
        slack = sign * (limit - m) / np.maximum(np.abs(limit), np.finfo(float).tiny)
    return float(np.min(slack)) if slack.size else math.inf


def _tolerance_slack(v: Verdict) -> float:
    m, p = np.broadcast_arrays(_arr(v.inputs["measured"]), _arr(v.inputs["predicted"]))
    tol = v.inputs["atol"] + v.inputs["rtol"] * np.abs(p)
    err = np.where(m == p, 0.0, np.abs(m - p))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.min((tol - err) / np.maximum(tol, np.finfo(float).tiny)))


#: The smallest positive float, as a Python float (a numpy scalar would warn where a zero-width interval gives inf).
_TINY = float(np.finfo(float).tiny)


def _interval_slack(v: Verdict) -> float:
    """Distance of the decisive point from the rule's threshold, in widths of the (predicted or measured) interval."""
    i = v.inputs
    if v.rule == "interval_contains":
        lo, hi, x = float(_arr(i["lo"])) - i["atol"], float(_arr(i["hi"])) + i["atol"], _arr(i["values"]).ravel()
        return float(np.min(np.minimum(x - lo, hi - x))) / max(hi - lo, _TINY)
    lo, hi = float(_arr(i["lo"])), float(_arr(i["hi"]))
    width = max(hi - lo, _TINY)
    if v.rule == "within_ci":
        x = float(_arr(i["value"]))
        return min(x - lo, hi - x) / width
    b = float(_arr(i["bound"]))
    return ((b - hi) if v.rule == "ci_at_most" else (lo - b)) / width


_MARGIN_UNITS = {"upper_bound": ("of the bound", _relative_slack), "lower_bound": ("of the bound", _relative_slack),
                 "close_to": ("of the tolerance", _tolerance_slack),
                 "within_ci": ("interval widths", _interval_slack), "ci_at_most": ("interval widths", _interval_slack),
                 "ci_at_least": ("interval widths", _interval_slack),
                 "interval_contains": ("interval widths", _interval_slack)}


def margin(v: Verdict) -> dict | None:
    """How far a decided verdict is from flipping: ``{"value": x, "unit": ...}`` with x >= 0, or None (inconclusive).

    Bounds: the tightest point's slack as a fraction of the bound; ``close_to``: the unused (or exceeded) fraction
    of the tolerance; interval rules: the decisive endpoint's distance from the threshold in interval widths;
    ``ordering_significant``: decades of p-value from alpha (|log10(p / alpha)|); ``provided``: its inner rule's;
    ``all_of``: holds: the smallest part margin; violated: the largest margin among the violated parts (every one
    of them must flip to change the verdict).
    """
    if v.value == INCONCLUSIVE:
        return None
    if v.rule == "provided":
        return margin(v.inputs["verdict"])
    if v.rule == "all_of":
        parts = [margin(p) for p in v.inputs["parts"] if p.value == v.value]
        parts = [p for p in parts if p is not None]
        if not parts:
            return None
        pick = min if v.value == HOLDS else max
        return pick(parts, key=lambda p: p["value"])
    if v.rule == "ordering_significant":
        p = v.inputs["p_claim"] if v.value == HOLDS else v.inputs["p_opposite"]
        return {"value": abs(math.log10(max(p, 1e-300) / v.inputs["alpha"])), "unit": "decades of p"}
    if v.rule not in _MARGIN_UNITS:
        return None
    unit, slack = _MARGIN_UNITS[v.rule]
    value = slack(v)
    return {"value": abs(value) if math.isfinite(value) else math.inf, "unit": unit}
