"""Convergence-rate measurements: log-log slopes with bootstrap CIs, steps-to-target, gradient-norm summaries
and a stated significance rule for comparing two methods across seeds.

Rates in the papers are power laws, e.g. (1/T) sum_t ||grad||^2 = O(T^{-1/2}) (SUMO Thm 3.8, GoLore Thm 4,
paper-claims §1.7, §2.4) or O(T^{-1/4}) for E||grad|| (Muon-type, §1.5). A measured rate is the least-squares slope
of log y on log T.

Bootstrap (``loglog_slope``): percentile intervals from ``n_boot`` resamples drawn by
``numpy.random.default_rng(seed)`` (no global state).
* ``resample="points"`` (1-D y): pairs bootstrap, resampling the (T_i, y_i) points with replacement.
* ``resample="seeds"`` (2-D y, one row per seed): resampling whole seeds (rows) with replacement; the fit is
  to the log of the across-seed mean curve (the quantity the theorems bound is an expectation), so the CI
  reflects seed-to-seed variability with within-curve correlation kept intact. Needs enough seeds (>= 8): with k
  seeds the bootstrap variance is biased low by (k - 1)/k and there are few distinct resamples.

Significance (``compare_methods``), rule stated once here: a method is declared better only if the two-sided
p-value is below ``alpha`` (default 0.05) *and* the direction agrees with the test statistic; otherwise "tie".
* ``test="welch"``: Welch's unequal-variance t-test on the per-seed final metrics (independent seeds).
* ``test="sign"``: paired exact sign test (binomial, p = 1/2) on per-seed differences a_s - b_s, ties dropped;
  needs the same seeds for both methods.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["SlopeFit", "loglog_slope", "steps_to_target", "running_min", "running_mean",
           "gradient_norm_summaries", "Comparison", "compare_methods", "loglog_plane_fit"]


@dataclass(frozen=True)
class SlopeFit:
    """log y = intercept + slope * log T, with a percentile bootstrap CI for the slope."""
    slope: float
    intercept: float
    ci_low: float
    ci_high: float
    level: float
    n_boot: int
    resample: str
    r2: float
    seed: int

    def contains(self, value: float, atol: float = 0.0) -> bool:
        """ci_low - atol <= value <= ci_high + atol (atol: a round-off allowance, e.g. for noise-free data)."""
        return self.ci_low - atol <= value <= self.ci_high + atol


def _ols(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    xm, ym = x.mean(), y.mean()
    sxx = ((x - xm) ** 2).sum()
    if sxx == 0:
        return float("nan"), float("nan")
    slope = ((x - xm) * (y - ym)).sum() / sxx
    return float(slope), float(ym - slope * xm)


def loglog_slope(T, y, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0,
                 resample: str | None = None) -> SlopeFit:
    """Least-squares slope of log y vs log T with a percentile bootstrap CI (see module docstring).

    T: 1-D positive; y: 1-D positive (same length) or 2-D (seeds, len(T)) positive. ``resample`` defaults to
    "points" for 1-D y and "seeds" for 2-D y.
    """
    T = np.asarray(T, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if T.ndim != 1 or y.shape[-1] != T.size or y.ndim not in (1, 2):
        raise ValueError(f"shapes: T {T.shape}, y {y.shape}; need y (len T,) or (seeds, len T)")
    if np.any(T <= 0) or np.any(y <= 0):
        raise ValueError("T and y must be positive for a log-log fit")
    if resample is None:
        resample = "points" if y.ndim == 1 else "seeds"
    x = np.log(T)
    curve = y if y.ndim == 1 else y.mean(0)
    ly = np.log(curve)
    slope, intercept = _ols(x, ly)
    resid = ly - (intercept + slope * x)
    sst = ((ly - ly.mean()) ** 2).sum()
    r2 = float(1 - (resid ** 2).sum() / sst) if sst > 0 else 1.0
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    if resample == "points":
        if y.ndim != 1:
            raise ValueError("resample='points' needs 1-D y (average seeds first or use 'seeds')")
        n = T.size
        idx = rng.integers(0, n, size=(n_boot, n))
        xb, yb = x[idx], ly[idx]
        xm, ym = xb.mean(1, keepdims=True), yb.mean(1, keepdims=True)
        sxx = ((xb - xm) ** 2).sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            boots = ((xb - xm) * (yb - ym)).sum(1) / sxx
        boots = boots[np.isfinite(boots)]  # degenerate resamples (a single distinct T) carry no slope
    elif resample == "seeds":
        if y.ndim != 2:
            raise ValueError("resample='seeds' needs 2-D y (seeds, len T)")
        k = y.shape[0]
        idx = rng.integers(0, k, size=(n_boot, k))
        lyb = np.log(y[idx].mean(1))  # (n_boot, len T)
        xm = x.mean()
        boots = ((x - xm) * (lyb - lyb.mean(1, keepdims=True))).sum(1) / ((x - xm) ** 2).sum()
    else:
        raise ValueError(f"resample must be 'points' or 'seeds', got {resample!r}")
    q = (1 - level) / 2
    lo, hi = np.quantile(boots, [q, 1 - q]) if boots.size else (np.nan, np.nan)
    return SlopeFit(slope=slope, intercept=intercept, ci_low=float(lo), ci_high=float(hi), level=level,
                    n_boot=n_boot, resample=resample, r2=r2, seed=seed)


def running_min(x) -> np.ndarray:
    """min_{s <= t} x_s for every t."""
    return np.minimum.accumulate(np.asarray(x, dtype=np.float64))


def running_mean(x) -> np.ndarray:
    """(1/(t+1)) sum_{s <= t} x_s for every t."""
    x = np.asarray(x, dtype=np.float64)
    return np.cumsum(x) / np.arange(1, x.size + 1)


def gradient_norm_summaries(grad_norms, *, squared: bool = False) -> dict:
    """Running min and running average of ||grad||^2, the quantities the non-convex rates bound
    (min_t ||G_t||^2 <= eps in SUMO Thm 3.8; (1/T) sum_t ||grad f(x_t)||^2 in GoLore). ``grad_norms`` are
    norms (squared here) unless ``squared=True``."""
    g = np.asarray(grad_norms, dtype=np.float64)
    sq = g if squared else g ** 2
    return {"sq": sq, "running_min": running_min(sq), "running_mean": running_mean(sq)}


def steps_to_target(losses, target: float, *, steps=None, smooth: str | None = None, window: int = 1):
    """First step at which the loss reaches ``target`` (loss <= target), or ``None`` if never.

    ``steps``: step numbers of the entries (default 0, 1, ...). ``smooth``: None (raw), "running_min", or
    "moving_average" over ``window`` trailing points (the first window - 1 points are skipped).
    """
    L = np.asarray(losses, dtype=np.float64)
    S = np.arange(L.size) if steps is None else np.asarray(steps)
    if smooth == "running_min":
        L = running_min(L)
    elif smooth == "moving_average":
        if window < 1:
            raise ValueError("window must be >= 1")
        c = np.cumsum(np.insert(L, 0, 0.0))
        L = np.concatenate([np.full(window - 1, np.inf), (c[window:] - c[:-window]) / window])
    elif smooth is not None:
        raise ValueError(f"smooth must be None, 'running_min' or 'moving_average', got {smooth!r}")
    hit = np.nonzero(L <= target)[0]
    return None if hit.size == 0 else S[hit[0]].item()


@dataclass(frozen=True)
class Comparison:
    """Outcome of ``compare_methods``: verdict is "a", "b" (the better method) or "tie"."""
    test: str
    statistic: float
    p_value: float
    alpha: float
    verdict: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float


def compare_methods(a, b, *, test: str = "welch", alpha: float = 0.05, lower_is_better: bool = True) -> Comparison:
    """Compare a per-seed metric of two methods (e.g. final loss) by the rule in the module docstring."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    sign = -1.0 if lower_is_better else 1.0  # positive "advantage" means a is better
    if test == "welch":
        if a.size < 2 or b.size < 2:
            raise ValueError("Welch's t-test needs at least 2 seeds per method")
        res = stats.ttest_ind(a, b, equal_var=False)
        statistic, p = float(res.statistic), float(res.pvalue)
        if not np.isfinite(p):  # zero variance in both groups
            p = 0.0 if a.mean() != b.mean() else 1.0
            statistic = float(np.sign(a.mean() - b.mean())) * np.inf if a.mean() != b.mean() else 0.0
        advantage = sign * statistic
    elif test == "sign":
        if a.shape != b.shape:
            raise ValueError("the paired sign test needs the same seeds for both methods")
        d = sign * (a - b)
        wins, losses = int((d > 0).sum()), int((d < 0).sum())
        n = wins + losses
        p = float(stats.binomtest(wins, n, 0.5).pvalue) if n > 0 else 1.0
        statistic = float(wins - losses)
        advantage = statistic
    else:
        raise ValueError(f"test must be 'welch' or 'sign', got {test!r}")
    verdict = "tie"
    if p < alpha and advantage != 0:
        verdict = "a" if advantage > 0 else "b"
    return Comparison(test=test, statistic=statistic, p_value=p, alpha=alpha, verdict=verdict,
                      n_a=int(a.size), n_b=int(b.size), mean_a=float(a.mean()), mean_b=float(b.mean()))


def loglog_plane_fit(T, delta, y, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Least-squares fit log ybar = c + a log T + b log delta over a (T x delta) grid, ybar the across-seed mean
    of ``y`` (shape (seeds, len T, len delta), positive), with percentile bootstrap CIs for a and b from resampling
    whole seeds (as ``loglog_slope(resample="seeds")``).  Returns {"a", "b", "a_ci", "b_ci", "intercept", "r2"}."""
    T = np.asarray(T, dtype=np.float64)
    d = np.asarray(delta, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 3 or y.shape[1:] != (T.size, d.size):
        raise ValueError(f"y must have shape (seeds, {T.size}, {d.size}), got {y.shape}")
    if np.any(y <= 0) or np.any(T <= 0) or np.any(d <= 0):
        raise ValueError("T, delta and y must be positive for a log-log fit")
    lt, ld = np.meshgrid(np.log(T), np.log(d), indexing="ij")
    Xd = np.column_stack([np.ones(lt.size), lt.ravel(), ld.ravel()])
    pinv = np.linalg.pinv(Xd)

    def fit(ybar):
        return pinv @ np.log(ybar).ravel()

    coef = fit(y.mean(0))
    ly = np.log(y.mean(0)).ravel()
    resid = ly - Xd @ coef
    sst = ((ly - ly.mean()) ** 2).sum()
    rng = np.random.default_rng(seed)
    k = y.shape[0]
    boots = np.array([fit(y[rng.integers(0, k, size=k)].mean(0)) for _ in range(n_boot)])
    q = (1 - level) / 2
    a_ci = np.quantile(boots[:, 1], [q, 1 - q])
    b_ci = np.quantile(boots[:, 2], [q, 1 - q])
    return {"a": float(coef[1]), "b": float(coef[2]), "intercept": float(coef[0]),
            "a_ci": [float(a_ci[0]), float(a_ci[1])], "b_ci": [float(b_ci[0]), float(b_ci[1])],
            "r2": float(1 - (resid ** 2).sum() / sst) if sst > 0 else 1.0, "level": level, "n_boot": n_boot}


# ---------------------------------------------------------------------------------------------- power of a paired test
# (appended for the claims' significance rules: a verdict is decided only by a test that has the power to decide it)

import math  # noqa: E402  (used by the power helpers below; appended, the module's header is unchanged)

def paired_t_power(n: int, effect: float, *, alpha: float = 0.05) -> float:
    """Power of the one-sided one-sample (paired) t-test at level ``alpha`` with ``n`` pairs against a true mean
    difference of ``effect`` standard deviations (standardised effect d_z): P(t > t_{1-alpha, n-1}) under the
    non-central t with n - 1 degrees of freedom and non-centrality d_z sqrt(n).  0 for n < 2."""
    from scipy import stats
    n = int(n)
    if n < 2 or not np.isfinite(effect):
        return 0.0
    crit = stats.t.ppf(1.0 - alpha, n - 1)
    return float(stats.nct.sf(crit, n - 1, float(effect) * math.sqrt(n)))


def paired_t_n_required(effect: float, *, alpha: float = 0.05, power: float = 0.9, n_max: int = 100_000) -> int:
    """Smallest n (pairs) whose one-sided paired t-test at ``alpha`` has at least ``power`` against a standardised
    effect d_z = ``effect`` (:func:`paired_t_power`); ``n_max + 1`` if none up to ``n_max``."""
    if not effect > 0:
        return n_max + 1
    n = 2
    while n <= n_max and paired_t_power(n, effect, alpha=alpha) < power:
        n += 1 if n < 64 else max(1, n // 16)
    return n


def paired_t_detectable_effect(n: int, *, alpha: float = 0.05, power: float = 0.9) -> float:
    """Smallest standardised effect d_z that the one-sided paired t-test with ``n`` pairs detects with ``power``
    (bisection on :func:`paired_t_power`); inf for n < 2."""
    if int(n) < 2:
        return math.inf
    lo, hi = 0.0, 1.0
    while paired_t_power(n, hi, alpha=alpha) < power:
        hi *= 2.0
        if hi > 1e6:
            return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if paired_t_power(n, mid, alpha=alpha) < power else (lo, mid)
    return hi
