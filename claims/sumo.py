"""SUMO (Refael, Smorodinsky, Tirer, Lindenbaum, "SUMO: Subspace-Aware Moment-Orthogonalization for Accelerating
Memory-Efficient LLM Training", NeurIPS 2025, arXiv 2505.24749): the paper's lemmas, remark, theorem and tables as
runnable checks.

Sources: ``../shared/reference/paper-claims.md`` §0 (Muon's quintic), §1 (SUMO: Lemma 3.1 eq. (1) and Lemma 3.2 are
reconstructed [R] from the proofs, the displayed formulas being lost), §6 (cross-paper gotchas).  The LLM-scale
figures (Fig. 1, Fig. 2, moment rank) are in ``claims/llm.py``, not here.

Ids: ``sumo.lemma3.1`` (moment becomes rank one), ``sumo.lemma3.2`` (Newton–Schulz error bound, literal),
``sumo.lemma3.2-proof-reading`` (the proof's kappa), ``sumo.lemma3.2-corrected`` (exact cubic recursion),
``sumo.lemma3.3`` (the delta Muon's rate needs vs the delta NS delivers), ``sumo.remark3.7`` (SVD vs NS5 cost),
``sumo.thm3.8`` (O(1/eps^2) steps to an eps-critical point), ``sumo.svd-vs-ns5`` (steps to a target loss),
``sumo.table1`` (optimizer-state sizes).

Every measurement uses ``analysis`` (bounds, NS error, kappas, FLOP counts, rate fits), ``synthetic`` (problems with
known constants) and the optimizer core ``subspace``; nothing here re-derives what those packages provide.

Performance note: the matrices are tiny, and with two torch threads OpenBLAS/MKL thread hand-offs make a 64 x 256
SVD ~20x slower on the 2-core CPU; the runner therefore runs every claim with one torch thread (``claims.runner``).
"""
from __future__ import annotations

import math
import statistics
import time

import numpy as np
import torch

from claims import verdicts as V
from claims.registry import Outcome, claim
from records import state_bytes

PAPER = "SUMO"
#: Round-off allowance of the Newton–Schulz bound checks (float64): each NS step is three products with inner
#: dimension <= max(m, n); with ||X||_2 <= 1 each adds <= max(m, n) eps to the spectral error, and the reference
#: polar factor and the norm of E are float64 SVDs (error ~ max(m, n) eps).  For i <= 8 steps this is
#: <= 3 (8 + 2) max(m, n) eps; we allow 10 (I_MAX + 1) max(m, n) eps (computed in ``_ns_atol``).
I_MAX = 8
#: The kappa grid searched for counterexamples to Lemma 3.2 (ascending: the first failure is the smallest).
KAPPAS_32 = (1.0, 1.01, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0, 300.0, 1e3, 1e4, 1e5, 1e6)
#: Lemma 3.1 fit floor: kappa_M is computed from the tail energy sum_{i>1} sigma_i^2 (no cancellation), whose float64
#: error is ~ (eps ||M||)^2 mn relative to ||M||^2, i.e. ~1e-30 here; points where any seed is below 1e-24 are dropped.
KAPPA_FLOOR = 1e-24
#: Rate tolerance of Theorem 3.8: the exponent of 1/eps in the number of steps may exceed 2 by at most 1/2 (half the
#: distance between consecutive integer exponents, i.e. closer to 2 than to 3).  Fixed before any run.
RATE_TOL_38 = 0.5
#: Theorem 3.8 binding precondition: the fitted exponent's CI must lie at or above 1 (polynomial regime).
BIND_38 = 1.0
#: svd-vs-ns5 target: f - f* reduced to 1% of its initial value (the same fraction as golore.counterexample).
TARGET_FRACTION = 0.01
#: Muon's quintic after 5 steps lands in its band [0.68, 1.2024] exactly when sigma / ||M||_F >= NS5_TAU (certified
#: in exact arithmetic by ``muon.ns5-band``, claims/muon.py; tests/test_claims_sumo.py checks the digits).
NS5_TAU = 1.500447e-3
#: svd-vs-ns5 power rule: standardised paired effect (mean difference / SD of the differences) each comparison must
#: detect with probability SVD_POWER (a large effect; fixed before the runs).
SVD_EFFECT = 1.5
SVD_POWER = 0.9

__all__ = ["lemma32_error", "lemma32_grid", "smallest_counterexample", "moment_kappa_runs",
           "muon_delta_run", "table1_formulas", "I_MAX", "KAPPAS_32", "KAPPA_FLOOR", "RATE_TOL_38",
           "TARGET_FRACTION"]


# ---------------------------------------------------------------------------------------------- helpers

def _ns_atol(m: int, n: int) -> float:
    return 10.0 * (I_MAX + 1) * max(m, n) * float(np.finfo(np.float64).eps)


def lemma32_error(A, steps: int, coeffs="cubic", normalize: str = "spectral", *, norm: str = "spectral") -> float:
    """||E_i|| = ||orth(A) - NS_i(A)|| (float64) with the lemma's exact normalisation X_0 = A/||A|| (no eps added),
    measured by ``analysis.orthogonality.ns_error``.  ``norm``: "spectral" or "frobenius"."""
    from analysis.orthogonality import ns_error
    r = ns_error(A, steps=steps, coeffs=coeffs, normalize=normalize, eps=0.0)
    return r.spectral if norm == "spectral" else r.frobenius


def _spectrum(kappa_A: float, k: int, kind: str = "geometric") -> torch.Tensor:
    from synthetic import with_condition_number
    return with_condition_number(float(kappa_A), k, kind=kind)


def lemma32_grid(generator: torch.Generator, *, kappas=KAPPAS_32, steps=range(I_MAX + 1), kappa_of: str = "gram",
                 coeffs="cubic", normalize: str = "spectral", m: int = 8, n: int = 32, kind: str = "geometric",
                 norm: str = "spectral") -> np.ndarray:
    """Measured ||E_i|| on an m x n matrix per (kappa, i) (shape (len(kappas), len(steps))).

    ``kappa_of="gram"``: kappa is the condition number of A A^T (the lemma's text), so A has kappa(A) = sqrt(kappa);
    ``"input"``: kappa is the condition number of A itself (the proof's X_0 = B/||B||_2 reading).  One matrix per
    kappa with the given spectrum shape and Haar singular vectors from ``generator``.
    """
    from synthetic import matrix_with_spectrum
    out = np.empty((len(kappas), len(list(steps))))
    for a, kappa in enumerate(kappas):
        kA = math.sqrt(kappa) if kappa_of == "gram" else kappa
        A = matrix_with_spectrum(_spectrum(kA, min(m, n), kind), m, n, generator)
        for b, i in enumerate(steps):
            out[a, b] = lemma32_error(A, i, coeffs, normalize, norm=norm)
    return out


def smallest_counterexample(measured: np.ndarray, bound: np.ndarray, kappas, steps, atol: float) -> dict | None:
    """First (kappa ascending, then i ascending) grid point with measured > bound + atol, or None."""
    for a, kappa in enumerate(kappas):
        for b, i in enumerate(steps):
            if measured[a, b] > bound[a, b] + atol:
                return {"kappa": float(kappa), "i": int(i), "measured": float(measured[a, b]),
                        "bound": float(bound[a, b])}
    return None


def _grid_rows(method, kappas, steps, meas, bound, **extra):
    return [{"method": method, "seed": 0, "step": int(i), "kappa": float(k), "error": float(meas[a, b]),
             "bound": float(bound[a, b]), **extra}
            for a, k in enumerate(kappas) for b, i in enumerate(steps)]


# ---------------------------------------------------------------------------------------------- Lemma 3.1

def moment_kappa_runs(ctx, *, eta: float, beta: float, steps: int, seeds: int, m: int = 8, n: int = 6,
                      tag: str = "layer"):
    """kappa_M(t), t = 0..steps, for ``seeds`` random reversible layers with the SAME spectrum of S
    (``ReversibleLayer.random`` with spread 0: lambda_1 = 1, lambda_2 = 1.5, lambda_max = 2.25), so every seed has the
    same predicted C.  Returns (array seeds x (steps+1), C constant object, lambda1, lambda2, precondition)."""
    from analysis.bounds import sumo_lemma31_constant, sumo_lemma31_trajectory
    from synthetic import ReversibleLayer
    out = np.empty((seeds, steps + 1))
    layer = None
    for s in range(seeds):
        gen = ctx.generator(tag, s)
        layer = ReversibleLayer.random(m, n, N=3, generator=gen, lambda1=1.0, gap=0.5, spread=0.0)
        W0 = torch.randn(m, n, generator=gen, dtype=torch.float64)
        A = [a.numpy() for a in layer.A]
        B = [b.numpy() for b in layer.B]
        C = [c.numpy() for c in layer.C]
        out[s] = sumo_lemma31_trajectory(A, B, C, W0.numpy(), eta, beta, steps)
    const = sumo_lemma31_constant(beta, eta, layer.lambda1, layer.lambda2)
    return out, const, layer.lambda1, layer.lambda2, layer.sumo_precondition(eta, beta)


def _decay_fit(ctx, K: np.ndarray, window: np.ndarray, name: str):
    """Per-step decay factor exp(slope of log mean_s kappa_M(t) on t) over ``window`` with a 95% bootstrap over
    seeds (``analysis.rates.loglog_slope`` with T = e^t is exactly the semi-log fit)."""
    from analysis.rates import loglog_slope
    t = np.nonzero(window)[0].astype(float)
    fit = loglog_slope(np.exp(t), K[:, window], n_boot=2000, level=0.95, seed=ctx.seed(name) % 2 ** 32,
                       resample="seeds")
    return fit, math.exp(fit.slope), math.exp(fit.ci_low), math.exp(fit.ci_high)


@claim(id="sumo.lemma3.1", kind="paper", paper=PAPER, source="SUMO, Lemma 3.1 (App. A, Lemma A.1 in v1); paper-claims §1.3",
       statement="The first moment M_t = beta M_{t-1} + G_t of a reversible layer becomes rank one: "
                 "kappa_M(t) = ||M - P_1 M||_F^2 / ||M||_F^2 <= O(C^-t) for some C > 1.")
def lemma31(ctx):
    """Lemma 3.1: the moment of a reversible layer becomes rank one, kappa_M(t) <= O(C^{-t}).

    Statement [V/R]: G_t = (1/N) sum_i (A_i - B_i W_t C_i) along SGD W_t = W_{t-1} + eta G_{t-1}, S = (1/N) sum_i
    C_i (x) B_i with smallest distinct eigenvalues lambda_1 < lambda_2, M_t = beta M_{t-1} + G_t; kappa_M(t) (eq. (1),
    reconstructed: relative error of the best rank-one approximation, ``analysis.spectra.sumo_kappa``) obeys
    kappa_M(t) <= O(C^{-t}), C = (max{beta, 1 - eta lambda_1} / max{beta, 1 - eta lambda_2})^2 from the proof
    (``analysis.bounds.sumo_lemma31_constant``).  Precondition [I]: C > 1 needs 1 - eta lambda_1 > beta; the lemma
    does not state it.
    Setting: ``synthetic.ReversibleLayer.random(8, 6, N=3, lambda1=1, gap=0.5, spread=0)``: lambda_1 = 1 (one-
    dimensional V1 with a decomposable eigenvector, so the limit is rank one), lambda_2 = 1.5, lambda_max = 2.25 for
    every seed (random U, V, A_i, W_0 per seed); G_t propagated by its exact linear recursion
    (``analysis.bounds.sumo_lemma31_trajectory``).  Regime "holds": eta = 0.1, beta = 0.5 (1 - eta lambda_1 = 0.9 >
    beta; C = (0.9/0.85)^2).  Regime "fails": eta = 0.1, beta = 0.95 (0.9 < beta; C = 1).
    Measured: per-step decay factor q = exp(slope) of log(mean over seeds of kappa_M(t)) against t, with a 95%
    bootstrap CI over seeds (>= 8 seeds).  Fit window (both regimes): the second half of the run, t in [T/2, T]
    (T = 240; the O(C^-t) statement is asymptotic, and a seed whose initial lambda_1 component is small has a
    transient of ~100 steps), keeping only t where every seed has kappa_M >= KAPPA_FLOOR = 1e-24 (kappa_M is the
    tail energy sum_{i>1} sigma_i^2 / ||M||_F^2, accurate down to ~1e-30 in float64).
    Rule: the lemma holds iff the whole CI of q lies at or below 1/C (decay at least as fast as C^{-t};
    ``ci_at_most``), violated if it lies wholly above, else inconclusive; applied to the "holds" regime under
    ``provided`` (its precondition).  The "fails" regime is measured and reported (factor, tail kappa_M) but does not
    enter the verdict: there kappa_M levels off at a positive constant, i.e. the lemma as stated (no precondition)
    is false in that regime.
    Known: for a rank-one limit the residual is fourth order in the cross components, so the measured factor is
    about (1/C)^2, well inside the bound.
    """
    seeds = ctx.by_scale(quick=8, full=32)
    steps = ctx.by_scale(quick=240, full=240)
    eta = 0.1
    regimes = {"holds": 0.5, "fails": 0.95}
    ctx.config.update({"layer": "ReversibleLayer.random(8, 6, N=3, lambda1=1, gap=0.5, spread=0)", "eta": eta,
                       "betas": regimes, "steps": steps, "seeds": seeds, "kappa": "1 - sigma_1^2/||M||_F^2",
                       "fit_floor": KAPPA_FLOOR, "fit_start": steps // 2})
    rows, res = [], {}
    for regime, beta in regimes.items():
        K, const, l1, l2, ok = moment_kappa_runs(ctx, eta=eta, beta=beta, steps=steps, seeds=seeds,
                                                tag=f"layer/{regime}")
        mean = K.mean(0)
        t = np.arange(steps + 1)
        window = (t >= steps // 2) & (K.min(0) >= KAPPA_FLOOR)
        fit, q, qlo, qhi = _decay_fit(ctx, K, window, f"bootstrap/{regime}")
        res[regime] = dict(K=K, const=const, fit=fit, q=q, ci=(qlo, qhi), ok=ok, window=window, beta=beta,
                           l1=l1, l2=l2)
        for s in range(seeds):
            for tt in range(steps + 1):
                rows.append({"method": f"beta={beta:g}", "regime": regime, "seed": s, "step": tt,
                             "kappa_M": float(K[s, tt]), "C": const.C, "beta": beta, "eta": eta,
                             "in_fit": bool(window[tt])})
        ctx.log(f"{regime}: q = {q:.4f} [{qlo:.4f}, {qhi:.4f}], 1/C = {1 / const.C:.4f}")
    h, f = res["holds"], res["fails"]
    verdict = V.provided(h["ok"], "1 - eta*lambda_1 > beta",
                         V.ci_at_most(h["ci"][0], h["ci"][1], 1.0 / h["const"].C,
                                      name="per-step decay factor of kappa_M (beta=0.5)"))
    tail = float(f["K"][:, -1].mean())
    measured = {"decay_factor": h["q"], "decay_factor_ci": list(h["ci"]), "r2": h["fit"].r2,
                "fit_steps": [int(np.nonzero(h["window"])[0][0]), int(np.nonzero(h["window"])[0][-1])],
                "exponent_ratio": math.log(h["q"]) / math.log(1.0 / h["const"].C),
                "fails_regime": {"beta": f["beta"], "C": f["const"].C, "decay_factor": f["q"],
                                 "decay_factor_ci": list(f["ci"]), "kappa_M_final": tail,
                                 "precondition": bool(f["ok"])}}
    predicted = {"C": h["const"].C, "decay_factor_at_most": 1.0 / h["const"].C, "lambda1": h["l1"],
                 "lambda2": h["l2"], "beta": h["beta"], "eta": eta, "fails_regime_C": f["const"].C}
    detail = (f"{seeds} layers, {steps} steps; beta = {h['beta']}: kappa_M decays by {h['q']:.4f}/step "
              f"(CI [{h['ci'][0]:.4f}, {h['ci'][1]:.4f}]) vs 1/C = {1 / h['const'].C:.4f}, i.e. "
              f"{measured['exponent_ratio']:.2f}x the predicted exponent. Precondition violated (beta = "
              f"{f['beta']} >= 1 - eta*lambda_1 = {1 - eta * f['l1']:.2f}, C = 1): factor {f['q']:.6f} "
              f"[{f['ci'][0]:.6f}, {f['ci'][1]:.6f}], kappa_M levels off at {tail:.3f} -- the moment never "
              f"becomes rank one, so the lemma as stated (without 1 - eta*lambda_1 > beta) is false there")
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


@lemma31.figure
def _draw_lemma31(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    colors = {"holds": "#d62728", "fails": "#1f77b4"}
    for regime in ("holds", "fails"):
        sub = [r for r in rows if r.get("regime") == regime]
        if not sub:
            continue
        stats = P.series_stats(sub, x="step", y="kappa_M", by="regime")
        x, mean, lo, hi = stats[regime]
        beta, C = sub[0]["beta"], sub[0]["C"]
        keep = mean > 1e-30
        for s, (xs, ys) in P.series(sub, x="step", y="kappa_M", by="seed").items():
            ok = ys > 1e-30
            ax.plot(xs[ok], ys[ok], color=colors[regime], alpha=0.25, linewidth=0.5, zorder=1)
        P.plot_measured(ax, x[keep], mean[keep], color=colors[regime],
                        label=rf"$\beta={beta:g}$" + (" (1-$\\eta\\lambda_1>\\beta$)" if regime == "holds"
                                                      else " (precondition fails)"))
        fit = [r for r in sub if r.get("in_fit")]
        if regime == "holds" and fit:
            t0 = min(r["step"] for r in fit)
            k0 = float(np.mean([r["kappa_M"] for r in fit if r["step"] == t0]))
            xs = x[keep & (x >= t0)]
            P.plot_theory(ax, xs, k0 * C ** (-(xs - t0)), label=rf"$C^{{-t}}$, $C={C:.3f}$")
    P.finish(ax, xlabel="step $t$ (thin: seeds, bold: mean)", ylabel=r"$\kappa_M(t)=1-\sigma_1^2/\|M\|_F^2$",
             logy=True)
    return fig


# ---------------------------------------------------------------------------------------------- Lemma 3.2

_LEMMA32_SHAPE = (8, 32)


def _lemma32_variants(ctx, variants, kappa_of):
    """{name: (measured, bound)} on the KAPPAS_32 x (0..I_MAX) grid; same matrices for every variant."""
    from analysis.bounds import sumo_lemma32_bound
    m, n = _LEMMA32_SHAPE
    steps = list(range(I_MAX + 1))
    K, Iv = np.meshgrid(np.asarray(KAPPAS_32), np.asarray(steps), indexing="ij")
    bound = np.asarray(sumo_lemma32_bound(K, Iv))
    out = {}
    for name, (coeffs, normalize) in variants.items():
        meas = lemma32_grid(ctx.generator("matrix", 0), kappas=KAPPAS_32, steps=steps,
                            kappa_of=kappa_of, coeffs=coeffs, normalize=normalize, m=m, n=n)
        out[name] = (meas, bound)
    return out, steps


@claim(id="sumo.lemma3.2", kind="paper", paper=PAPER, source="SUMO, Lemma 3.2 (§3, proof in App.); paper-claims §1.4",
       statement="For A in R^{m x n} with kappa the condition number of A A^T, the Newton–Schulz error after i "
                 "iterations obeys ||E_i||_2 <= (1 - 1/kappa)^(2^i).")
def lemma32(ctx):
    """Lemma 3.2 as stated: ||E_i||_2 <= (1 - 1/kappa)^(2^i), kappa = sigma_1/sigma_m of A A^T.

    Statement [V text, R bound]: E_i = orth(A) - NS_i(A), orth(A) = U V^T; "kappa = sigma_1/sigma_m the condition
    number of A A^T"; the bound (1 - 1/kappa)^(2^i) (spectral; sqrt(r) times it in Frobenius) is reconstructed
    from the proof (``analysis.bounds.sumo_lemma32_bound``).  The lemma is about the classical Newton–Schulz
    iteration (cubic, X <- 1.5 X - 0.5 X X^T X) with X_0 = B/||B||_2 (spectral normalisation).
    Literal check: A is 8 x 32 with a geometric spectrum and kappa(A A^T) = kappa, i.e. kappa(A) = sqrt(kappa);
    kappa in KAPPAS_32 (1 ... 1e6), i = 0..8; one Haar-random matrix per kappa; error by
    ``analysis.orthogonality.ns_error`` in float64, normalisation exactly A/||A||_2 (no eps).
    Rule: ``upper_bound`` at every grid point with atol = 10 (I_MAX + 1) max(m, n) eps64 (round-off of eight
    float64 NS steps and of the SVD-based reference, see ``I_MAX``): holds iff no point exceeds bound + atol.
    Proof that it holds (analysis.bounds): with s = sigma/sigma_1 and d = 1 - s^2 the cubic step gives
    1 - p(s)^2 - d^2 = -u (1 - u)^2/4 <= 0 (u = s^2), so d_{k+1} <= d_k^2 and 1 - s_k <= d_k <= (1 - 1/kappa)^(2^k).
    Recorded, not in the verdict (the lemma does not cover them): the same grid for cubic NS with Frobenius
    normalisation (Muon's X_0 = A/||A||_F; fails already at A = I, since x_0 = 1/sqrt(m) needs steps to reach 1) and
    for Muon's quintic (3.4445, -4.7750, 2.0315) with Frobenius (Muon) and spectral normalisation: it never
    converges (error floor ~0.3), so every bound below the floor is exceeded.  Smallest counterexample of each.
    """
    variants = {"cubic": ("cubic", "spectral"), "cubic-frobenius": ("cubic", "frobenius"),
                "quintic": ("muon", "frobenius"), "quintic-spectral": ("muon", "spectral")}
    m, n = _LEMMA32_SHAPE
    atol = _ns_atol(m, n)
    ctx.config.update({"shape": [m, n], "kappas": list(KAPPAS_32), "steps": [0, I_MAX], "kappa_of": "A A^T",
                       "spectrum": "geometric", "dtype": "float64", "atol": atol})
    res, steps = _lemma32_variants(ctx, variants, "gram")
    from analysis.orthogonality import iterate_polynomial, iterated_band
    xs = np.unique(np.concatenate([np.geomspace(1e-4, 1.0, 161), np.linspace(0.0, 1.0, 101)]))
    maps = {"quintic": iterate_polynomial(xs, "muon", 5), "cubic": iterate_polynomial(xs, "cubic", 5)}
    band = iterated_band(NS5_TAU, 1.0, "muon", 5)
    rows = []
    for name, (coeffs, normalize) in variants.items():
        meas, bound = res[name]
        rows += _grid_rows(name, KAPPAS_32, steps, meas, bound, coeffs=coeffs, normalize=normalize,
                           kappa_of="gram")
    for name, y in maps.items():
        rows += [{"method": f"map-{name}", "seed": 0, "step": 5, "x": float(x), "p5": float(v)} for x, v in zip(xs, y)]
    meas, bound = res["cubic"]
    verdict = V.upper_bound(meas, bound, atol=atol, name="cubic NS, spectral normalisation, kappa of A A^T")
    ce = {k: smallest_counterexample(res[k][0], res[k][1], KAPPAS_32, steps, atol) for k in variants}
    informative = bound > 1e-8
    ratio = np.where(informative, meas / np.where(informative, bound, 1.0), 0.0)
    a, b = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    qmeas = res["quintic"][0]
    q1 = smallest_counterexample(qmeas[:, 1:], bound[:, 1:], KAPPAS_32, steps[1:], atol)
    measured = {"cubic_counterexample": ce["cubic"],
                "cubic_max_ratio": {"ratio": float(ratio[a, b]), "kappa": KAPPAS_32[a], "i": int(steps[b]),
                                    "measured": float(meas[a, b]), "bound": float(bound[a, b])},
                "cubic_kappa10_i5": float(meas[KAPPAS_32.index(10.0), 5]),
                "cubic_frobenius_counterexample": ce["cubic-frobenius"],
                "quintic_counterexample": ce["quintic"], "quintic_counterexample_i_ge_1": q1,
                "quintic_spectral_counterexample": ce["quintic-spectral"],
                "quintic_error_i8_min_over_kappa": float(qmeas[:, -1].min()),
                "quintic_exceedances": int((qmeas > bound + atol).sum()), "grid_points": int(meas.size),
                "quintic_band_5_steps": [band.lo, band.hi]}
    predicted = {"bound": "(1 - 1/kappa)^(2^i)", "kappa": "kappa(A A^T)",
                 "cubic_kappa10_i5_bound": float(bound[KAPPAS_32.index(10.0), 5]), "atol": atol}
    qce = ce["quintic"]
    def _ce(c):
        return "none" if c is None else f"kappa = {c['kappa']:g}, i = {c['i']} ({c['measured']:.3g} > {c['bound']:.3g})"
    detail = (f"cubic NS (the lemma's iteration), kappa of A A^T: no counterexample on {meas.size} grid points "
              f"(kappa 1..1e6, i 0..{I_MAX}); largest measured/bound {ratio[a, b]:.3f} (kappa = {KAPPAS_32[a]:g}, "
              f"i = {steps[b]}). Not covered by the lemma: cubic with Frobenius normalisation fails from "
              f"{_ce(ce['cubic-frobenius'])}; Muon's quintic (Frobenius) from {_ce(qce)}, with i >= 1 from "
              f"{_ce(q1)}, spectral normalisation from {_ce(ce['quintic-spectral'])}, and keeps an error of at least "
              f"{measured['quintic_error_i8_min_over_kappa']:.3f} after 8 steps (singular values land in "
              f"[{band.lo:.3f}, {band.hi:.3f}] after 5 steps for sigma/||A||_F >= 1.5e-3)")
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


def _draw_ns_grid(ax, rows, methods, show_i=(1, 3, 5, 8)):
    from analysis import plotting as P
    styles = {1: ":", 3: "-.", 5: "-", 8: "--"}
    for method in methods:
        for i in show_i:
            pts = sorted((r["kappa"], r["error"], r["bound"]) for r in rows
                         if r.get("method") == method and r.get("step") == i)
            if not pts:
                continue
            k, e, b = (np.array(v) for v in zip(*pts))
            color = "#d62728" if method.startswith("cubic") else "#9467bd"
            P.plot_measured(ax, k, np.maximum(e, 1e-17), color=color, linestyle=styles[i],
                            label=f"{method}, i={i}")
            if method == methods[0]:
                P.plot_theory(ax, k, np.maximum(b, 1e-17), label="bound (black, same dash per i)" if i == show_i[0]
                              else None,
                              linestyle=styles[i], color="#000000", linewidth=0.8)
    return ax


@lemma32.figure
def _draw_lemma32(rows):
    from analysis import plotting as P
    fig, axes = P.new_figure(columns=2, nrows=1, ncols=2, squeeze=False, aspect=0.85)
    ax0, ax1 = axes[0]
    _draw_ns_grid(ax0, rows, ["cubic", "quintic"])
    P.finish(ax0, xlabel=r"$\kappa(AA^\top)$", ylabel=r"$\|E_i\|_2$ (dashed black: Lemma 3.2 bound)", logx=True,
             logy=True, fontsize=5, ncol=2)
    ax0.set_ylim(1e-17, 3)
    for name, color in (("quintic", "#9467bd"), ("cubic", "#d62728")):
        pts = sorted((r["x"], r["p5"]) for r in rows if r.get("method") == f"map-{name}")
        if pts:
            x, y = (np.array(v) for v in zip(*pts))
            P.plot_measured(ax1, x, y, color=color, label=rf"{name}: $p^5(x)$")
    P.reference_line(ax1, 1.0, label="target 1")
    P.finish(ax1, xlabel=r"normalised singular value $x_0=\sigma/\|A\|$", ylabel=r"$p^{5}(x_0)$", logx=True)
    return fig


@claim(id="sumo.lemma3.2-proof-reading", kind="reading", paper=PAPER,
       source="SUMO, proof of Lemma 3.2 (X_0 = B/||B||_2, ||X_0 - O||_2 = 1 - sigma_m/sigma_1); paper-claims §1.4",
       statement="Reading of the proof: with kappa the condition number of the matrix Newton–Schulz iterates on, "
                 "||E_i||_2 <= (1 - 1/kappa)^(2^i) for the classical cubic iteration.")
def lemma32_proof_reading(ctx):
    """Lemma 3.2 under the proof's reading of kappa (the condition number of A itself).

    The proof starts from X_0 = B/||B||_2 with ||X_0 - O||_2 = 1 - sigma_m/sigma_1 and then asserts
    ||X_k - O|| <= ||X_0 - O||^(2^k) ("NS converges quadratically"), i.e. it uses kappa of the iterated matrix.
    Check: cubic NS, spectral normalisation, A 8 x 32 with kappa(A) = kappa (geometric spectrum), the same kappa grid
    and i = 0..8 as ``sumo.lemma3.2``, float64, ``analysis.orthogonality.ns_error``.
    Rule: ``upper_bound`` at every grid point with the round-off atol of ``sumo.lemma3.2``; violated iff some point
    exceeds it.  The smallest counterexample (kappa ascending, then i) is reported.  Why it fails: the true worst-case
    error obeys e_{k+1} = e_k^2 (3 - e_k)/2 > e_k^2 for e_k < 1 (constant 3/2, not 1), so already i = 1 breaks the
    bound for every kappa > 1.
    """
    m, n = _LEMMA32_SHAPE
    atol = _ns_atol(m, n)
    ctx.config.update({"shape": [m, n], "kappas": list(KAPPAS_32), "steps": [0, I_MAX], "kappa_of": "A",
                       "spectrum": "geometric", "dtype": "float64", "atol": atol})
    res, steps = _lemma32_variants(ctx, {"cubic": ("cubic", "spectral")}, "input")
    meas, bound = res["cubic"]
    rows = _grid_rows("cubic", KAPPAS_32, steps, meas, bound, coeffs="cubic", normalize="spectral",
                      kappa_of="input")
    verdict = V.upper_bound(meas, bound, atol=atol, name="cubic NS, spectral normalisation, kappa of A")
    ce = smallest_counterexample(meas, bound, KAPPAS_32, steps, atol)
    k10 = KAPPAS_32.index(10.0)
    measured = {"smallest_counterexample": ce, "kappa10_i5": float(meas[k10, 5]),
                "violations": int((meas > bound + atol).sum()), "grid_points": int(meas.size),
                "max_ratio": float(np.max(meas / np.maximum(bound, 1e-300) * (bound > 1e-12)))}
    predicted = {"bound": "(1 - 1/kappa(A))^(2^i)", "kappa10_i5_bound": float(bound[k10, 5]), "atol": atol}
    detail = (f"smallest counterexample kappa = {ce['kappa']:g}, i = {ce['i']}: {ce['measured']:.4g} > "
              f"{ce['bound']:.4g}; kappa = 10, i = 5: {meas[k10, 5]:.4f} vs bound {bound[k10, 5]:.4f}; "
              f"{measured['violations']}/{meas.size} grid points violate") if ce else "no counterexample"
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


@lemma32_proof_reading.figure
def _draw_lemma32_proof(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    _draw_ns_grid(ax, rows, ["cubic"])
    P.finish(ax, xlabel=r"$\kappa(A)$", ylabel=r"$\|E_i\|_2$ (black: $(1-1/\kappa)^{2^i}$)", logx=True, logy=True,
             fontsize=5)
    ax.set_ylim(1e-17, 3)
    return fig


@claim(id="sumo.lemma3.2-corrected", kind="corrected", paper=PAPER,
       source="Corrected Lemma 3.2 (workbench): exact cubic NS recursion, analysis.bounds.cubic_ns_error_bound",
       statement="For classical cubic Newton–Schulz with spectral normalisation and kappa = kappa(A): "
                 "||E_i||_2 <= e_i and ||E_i||_F <= sqrt(r) e_i, where e_0 = 1 - 1/kappa and "
                 "e_{k+1} = e_k^2 (3 - e_k)/2 (tight).")
def lemma32_corrected(ctx):
    """Corrected Lemma 3.2: the exact worst-case error of cubic Newton–Schulz.

    Derivation (``analysis.bounds`` / ``analysis.symbolic.cubic_error_recursion``): with spectral normalisation
    every singular value follows s <- (3 s - s^3)/2, increasing on [0, 1] and mapping it into itself, so the worst
    one is the smallest, s_0 = 1/kappa(A); with e = 1 - s, e_{k+1} = e_k^2 (3 - e_k)/2 exactly.  Hence
    ||E_i||_2 = e_i(1 - 1/kappa) (attained) and ||E_i||_F <= sqrt(r) e_i (r = rank).  In the lemma's own symbols
    (kappa of A A^T) replace 1/kappa by 1/sqrt(kappa).  Equivalently e_i <= (1.5 e_0)^(2^i)/1.5: quadratic
    convergence with constant 3/2, which the paper's bound drops.
    Check: A 8 x 32 (r = 8) with kappa(A) in KAPPAS_32 and three spectrum shapes (geometric, one-small, two-cluster),
    i = 0..8, float64; bound ``analysis.bounds.cubic_ns_error_bound(kappa, i, r, norm, kappa_of="input")``.
    Rule: ``upper_bound`` with the round-off atol of ``sumo.lemma3.2`` for both norms (all_of): holds iff no point
    exceeds.  Tightness is reported (measured/bound of the spectral error where the bound exceeds 1e-8: 1 up to
    round-off, since sigma_min is present in every spectrum).
    """
    from analysis.bounds import cubic_ns_error_bound
    m, n = _LEMMA32_SHAPE
    r = min(m, n)
    atol = _ns_atol(m, n)
    kinds = ("geometric", "one-small", "two-cluster")
    steps = list(range(I_MAX + 1))
    ctx.config.update({"shape": [m, n], "kappas": list(KAPPAS_32), "steps": [0, I_MAX], "kappa_of": "A",
                       "spectra": list(kinds), "dtype": "float64", "atol": atol})
    K, Iv = np.meshgrid(np.asarray(KAPPAS_32), np.asarray(steps), indexing="ij")
    b_spec = np.vectorize(lambda k, i: cubic_ns_error_bound(k, int(i)))(K, Iv)
    b_fro = math.sqrt(r) * b_spec
    spec, fro, rows = [], [], []
    for j, kind in enumerate(kinds):
        for norm, store, bnd in (("spectral", spec, b_spec), ("frobenius", fro, b_fro)):
            meas = lemma32_grid(ctx.generator(f"matrix/{kind}", 0), kappas=KAPPAS_32,
                                steps=steps, kappa_of="input", coeffs="cubic", normalize="spectral", m=m, n=n,
                                kind=kind, norm=norm)
            store.append(meas)
            rows += _grid_rows(f"cubic-{kind}" if norm == "spectral" else f"cubic-{kind}-fro", KAPPAS_32,
                               steps, meas, bnd, spectrum=kind, norm=norm, kappa_of="input")
    spec, fro = np.stack(spec), np.stack(fro)
    verdict = V.all_of(
        V.upper_bound(spec, np.broadcast_to(b_spec, spec.shape), atol=atol, name="||E_i||_2 <= e_i"),
        V.upper_bound(fro, np.broadcast_to(b_fro, fro.shape), atol=atol, name="||E_i||_F <= sqrt(r) e_i"))
    big = np.broadcast_to(b_spec, spec.shape) > 1e-8
    ratio = spec[big] / np.broadcast_to(b_spec, spec.shape)[big]
    measured = {"max_spectral_excess": float((spec - b_spec).max()), "max_frobenius_excess": float((fro - b_fro).max()),
                "tightness_min": float(ratio.min()), "tightness_max": float(ratio.max()),
                "kappa10_i5": float(spec[0, KAPPAS_32.index(10.0), 5]), "points": int(spec.size + fro.size)}
    predicted = {"bound": "e_{k+1} = e_k^2 (3 - e_k)/2, e_0 = 1 - 1/kappa(A)",
                 "kappa10_i5": float(b_spec[KAPPAS_32.index(10.0), 5]), "atol": atol}
    detail = (f"{spec.size} points per norm over 3 spectrum shapes; spectral error / bound in "
              f"[{ratio.min():.6f}, {ratio.max():.6f}] where bound > 1e-8 (tight)")
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


@lemma32_corrected.figure
def _draw_lemma32_corrected(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    _draw_ns_grid(ax, rows, ["cubic-geometric"])
    P.finish(ax, xlabel=r"$\kappa(A)$", ylabel=r"$\|E_i\|_2$ (black: exact recursion $e_i$)", logx=True, logy=True,
             fontsize=5)
    ax.set_ylim(1e-17, 3)
    return fig


# ---------------------------------------------------------------------------------------------- Lemma 3.3

def muon_delta_run(prob, *, delta: float, kind: str, steps: int, eta: float, beta: float,
                   x0_generator: torch.Generator, noise_generator: torch.Generator,
                   error_generator: torch.Generator) -> np.ndarray:
    """Muon-type run of Lemma 3.3 with a controlled orthogonalisation error; returns ||grad f(W_t)||_F, t < steps.

    M <- beta M + (1 - beta) g (stochastic gradient), W <- W - eta (U V^T + E) with U V^T = ``subspace.polar(M)`` and
    ||E||_F = delta sqrt(k) (k = min(m, n) = ||U V^T||_F^2): ``kind="random"`` E along a fresh Gaussian direction,
    ``"adversarial"`` E = -delta sqrt(k) M/||M||_F (opposes descent).
    """
    from subspace import polar
    W = prob.x0(x0_generator)
    M = torch.zeros_like(W)
    k = min(W.shape)
    norms = np.empty(steps)
    for t in range(steps):
        G = prob.grad(W)
        norms[t] = float(torch.linalg.matrix_norm(G))
        g = prob.stochastic_grad(W, noise_generator)
        M = beta * M + (1.0 - beta) * g
        O = polar(M)
        if delta > 0:
            if kind == "random":
                Z = torch.randn(W.shape, generator=error_generator, dtype=W.dtype)
            elif kind == "adversarial":
                Z = -M
            else:
                raise ValueError(f"kind must be 'random' or 'adversarial', got {kind!r}")
            O = O + (delta * math.sqrt(k) / float(torch.linalg.matrix_norm(Z))) * Z
        W = W - eta * O
    return norms


@claim(id="sumo.lemma3.3", kind="auxiliary", paper=PAPER, source="SUMO, Lemma 3.3 (A4), Remarks 3.5-3.6; paper-claims §1.5",
       statement="Auxiliary (not a statement of the paper): do five Newton–Schulz steps (Muon's quintic, as in "
                 "SUMO-NS5) meet assumption A4 of Lemma 3.3 with the delta < 1/(4 sqrt n) that Remark 3.6 requires, "
                 "||E|| <= delta ||U V^T||_F, on moments of rising condition number?  The paper never claims they "
                 "do; 'violated' means Lemma 3.3's rate does not cover Muon / SUMO-NS5, not that the lemma is false.")
def lemma33(ctx):
    """Auxiliary: whether five Newton–Schulz steps meet Lemma 3.3's precondition (A4) with delta < 1/(4 sqrt n).

    Kind: auxiliary.  Lemma 3.3 assumes (A4) and concludes a rate; the paper does not claim that NS5 satisfies (A4).
    This experiment asks whether the method SUMO compares against (Muon / SUMO-NS5) meets the assumption, so a
    violation says "Lemma 3.3 does not apply to NS5 here", which supports SUMO's argument for the exact SVD; it is
    not a counterexample to the lemma (no run here satisfies (A4) and contradicts the rate).

    Statement [V]: under (A4) ||E_i^(t)|| <= delta ||U V^T|| = delta sqrt(n), Muon's averaged gradient norm obeys the
    lemma's bound [GAP: expression lost], which requires 1 - 4 sqrt(n) delta > 0 (Remark 3.6,
    ``analysis.bounds.sumo_delta_threshold``); "smaller delta => better rate; larger delta => smaller eta" (3.5).
    What is tested: whether SUMO-NS5's orthogonaliser (five steps of Muon's quintic on M/||M||_F, as in the
    ``sumo-ns5`` preset and Muon) meets that precondition.  Moments: 64 x 256 matrices (n = 64 singular values, so
    the threshold is 1/(4*8) = 0.03125) with a geometric spectrum of condition number kappa in {1, 3, 10, ..., 1e6}
    and Haar singular vectors; delta = ||E||_F/sqrt(n) (``analysis.orthogonality.ns_delta``, float64).  Also
    recorded: a Gaussian 64 x 256 matrix, and the classical cubic (five steps, spectral normalisation, the Lemma 3.2
    setting).
    Rule: ``upper_bound`` of delta_NS5(kappa) by 1/(4 sqrt n) at every kappa (no tolerance needed: the gap is
    orders of magnitude above float64 round-off); violated at any kappa means (A4) with the required delta fails for
    SUMO-NS5 / Muon, so Lemma 3.3 says nothing about them.  The smallest failing kappa is reported; for the cubic the
    largest kappa that still passes.
    Effect of delta (measured, outside the verdict): Muon-type updates W <- W - eta (U V^T + E) with ||E||_F =
    delta sqrt(k) injected exactly (``muon_delta_run``), random or adversarial (E = -delta sqrt(k) M/||M||_F),
    on ``SmoothMatrixProblem.random(16, 8, 12, rho=0.5, sigma=0.1)`` (k = 8, threshold 0.088), with the lemma's own
    parameters at delta = 0 (``analysis.bounds.sumo_lemma33_step_size``, R = f(W0) - f_lower, B = 1) kept fixed
    across delta so only E changes; delta in threshold x {0, 1, 4, 16} (quick: 2 seeds, T = 200) or
    {0, 1/2, 1, 2, 4, 8, 16} (full: 10 seeds, T = 3000).  Reported: (1/T) sum_t
    ||grad f(W_t)||_F (the lemma's left side) per delta, mean over seeds, and the smallest multiple at which it
    doubles relative to delta = 0 ("breakdown").
    """
    from analysis.bounds import sumo_delta_threshold, sumo_lemma33_step_size
    from analysis.orthogonality import ns_delta
    from synthetic import SmoothMatrixProblem, matrix_with_spectrum
    kappas = (1.0, 3.0, 10.0, 30.0, 100.0, 1e3, 1e4, 1e5, 1e6)
    m, n = 64, 256
    k = min(m, n)
    thr = sumo_delta_threshold(k)
    seeds = ctx.by_scale(quick=2, full=10)
    T = ctx.by_scale(quick=200, full=3000)
    mults = ctx.by_scale(quick=(0.0, 1.0, 4.0, 16.0), full=(0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0))
    rows = []
    gen = ctx.generator("moment", 0)
    d5, dc = [], []
    for kappa in kappas:
        M = matrix_with_spectrum(_spectrum(kappa, k), m, n, gen)
        d5.append(ns_delta(M, steps=5, coeffs="muon", normalize="frobenius"))
        dc.append(ns_delta(M, steps=5, coeffs="cubic", normalize="spectral"))
    Gm = torch.randn(m, n, generator=ctx.generator("gaussian", 0), dtype=torch.float64)
    gauss = {"quintic": ns_delta(Gm, steps=5, coeffs="muon"),
             "cubic": ns_delta(Gm, steps=5, coeffs="cubic", normalize="spectral")}
    for kappa, a, b in zip(kappas, d5, dc):
        rows.append({"method": "ns5-quintic", "part": "delta", "seed": 0, "step": 5, "kappa": kappa, "delta": a,
                     "threshold": thr})
        rows.append({"method": "ns5-cubic", "part": "delta", "seed": 0, "step": 5, "kappa": kappa, "delta": b,
                     "threshold": thr})
    # effect of delta on a Muon-type run
    prob = SmoothMatrixProblem.random(m=16, n=8, p=12, rho=0.5, sigma=0.1,
                                      generator=ctx.generator("problem", 0))
    k_run = min(prob.m, prob.n)
    thr_run = sumo_delta_threshold(k_run)
    R = float(prob.loss(prob.x0(ctx.generator("x0", 0)))) - prob.f_lower
    par = sumo_lemma33_step_size(R, prob.L, T, prob.m, 0.0, prob.sigma)
    avg = {}
    for kind in ("random", "adversarial"):
        for mult in mults:
            delta = mult * thr_run
            vals = []
            for s in range(seeds):
                norms = muon_delta_run(prob, delta=delta, kind=kind, steps=T, eta=par["eta"], beta=par["beta"],
                                       x0_generator=ctx.generator("x0", s),
                                       noise_generator=ctx.generator("noise", s),
                                       error_generator=ctx.generator(f"E/{kind}/{mult:g}", s))
                vals.append(float(norms.mean()))
                rows.append({"method": f"E-{kind}", "part": "rate", "seed": s, "step": T, "delta": delta,
                             "delta_over_threshold": mult, "avg_grad_norm": float(norms.mean()),
                             "final_grad_norm": float(norms[-1]), "threshold": thr_run, "eta": par["eta"],
                             "beta": par["beta"]})
            avg[(kind, mult)] = float(np.mean(vals))
    ctx.config.update({"moment_shape": [m, n], "kappas": list(kappas), "spectrum": "geometric",
                       "run_problem": "SmoothMatrixProblem.random(16, 8, 12, rho=0.5, sigma=0.1)", "steps": T,
                       "seeds": seeds, "eta": par["eta"], "beta": par["beta"], "delta_multiples": list(mults)})
    verdict = V.upper_bound(np.asarray(d5), thr, name="delta of 5 quintic NS steps (Muon / SUMO-NS5)")
    fail5 = [kap for kap, d in zip(kappas, d5) if d >= thr]
    pass_c = [kap for kap, d in zip(kappas, dc) if d < thr]
    measured = {"delta_ns5_quintic": dict(zip([f"{k:g}" for k in kappas], d5)),
                "delta_ns5_cubic": dict(zip([f"{k:g}" for k in kappas], dc)),
                "delta_gaussian_64x256": gauss,
                "smallest_failing_kappa_quintic": fail5[0] if fail5 else None,
                "largest_passing_kappa_cubic": pass_c[-1] if pass_c else None,
                "avg_grad_norm_random": {f"{m_:g}x": avg[("random", m_)] for m_ in mults},
                "avg_grad_norm_adversarial": {f"{m_:g}x": avg[("adversarial", m_)] for m_ in mults}}
    predicted = {"delta_threshold_n64": thr, "delta_threshold_run_n8": thr_run,
                 "eta": par["eta"], "beta": par["beta"]}
    r0, rmax = avg[("random", 0.0)], avg[("random", mults[-1])]
    adv = [avg[("adversarial", m_)] for m_ in mults]
    breakdown = {kind: next((m_ for m_ in mults if avg[(kind, m_)] > 2.0 * avg[(kind, 0.0)]), None)
                 for kind in ("random", "adversarial")}
    measured["breakdown_multiple"] = breakdown
    detail = (f"threshold 1/(4 sqrt 64) = {thr:.4f}: quintic NS5 delivers delta {min(d5):.3f}..{max(d5):.3f} over "
              f"kappa 1..1e6 (Gaussian: {gauss['quintic']:.3f}); cubic NS5 passes up to kappa = "
              f"{measured['largest_passing_kappa_cubic']}. Effect on a Muon-type run (threshold {thr_run:.3f}, "
              f"eta {par['eta']:.3g}, beta {par['beta']:.3g}): mean ||grad f|| {r0:.3g} at delta 0 vs {rmax:.3g} at "
              f"{mults[-1]:g}x threshold with random E ({_doubles(breakdown['random'])}); adversarial E (against "
              f"the momentum): " + ", ".join(f"{m_:g}x: {a_:.3g}" for m_, a_ in zip(mults, adv))
              + f" ({_doubles(breakdown['adversarial'])})")
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


def _doubles(multiple) -> str:
    return "never doubles up to the largest delta" if multiple is None else f"doubles from {multiple:g}x threshold"


@lemma33.figure
def _draw_lemma33(rows):
    from analysis import plotting as P
    fig, axes = P.new_figure(columns=2, nrows=1, ncols=2, squeeze=False)
    ax0, ax1 = axes[0]
    thr = None
    for method, color in (("ns5-quintic", "#9467bd"), ("ns5-cubic", "#d62728")):
        pts = sorted((r["kappa"], r["delta"]) for r in rows if r.get("method") == method)
        if pts:
            x, y = (np.array(v) for v in zip(*pts))
            P.plot_measured(ax0, x, np.maximum(y, 1e-17), color=color, marker="o",
                            label={"ns5-quintic": "5 quintic steps (Muon)", "ns5-cubic": "5 cubic steps"}[method])
            thr = next(r["threshold"] for r in rows if r.get("method") == method)
    if thr is not None:
        P.reference_line(ax0, thr, label=r"$1/(4\sqrt{n})$")
    P.finish(ax0, xlabel=r"$\kappa$ of the moment (64$\times$256)", ylabel=r"$\delta=\|E\|_F/\sqrt{n}$", logx=True,
             logy=True)
    sub = [r for r in rows if r.get("part") == "rate"]
    for method, (x, mean, lo, hi) in P.series_stats(sub, x="delta", y="avg_grad_norm").items():
        color = "#1f77b4" if method == "E-random" else "#ff7f0e"
        P.confidence_band(ax1, x, lo, hi, color=color)
        P.plot_measured(ax1, x, mean, color=color, marker="o", label=method)
    if sub:
        ax1.axvline(sub[0]["threshold"], color="#555555", linestyle=":", linewidth=0.9, label=r"$1/(4\sqrt{n})$")
    P.finish(ax1, xlabel=r"injected $\delta$", ylabel=r"$\frac{1}{T}\sum_t\|\nabla f(W_t)\|_F$", logy=True)
    return fig


# ---------------------------------------------------------------------------------------------- Remark 3.7

def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


@claim(id="sumo.remark3.7", kind="paper", paper=PAPER, source="SUMO, Remark 3.7 (FLOP comparison); paper-claims §1.5",
       statement="For r = 8 and n = 1024 the SVD approach requires approximately twice as many operations as "
                 "Newton–Schulz with five iterations (SVD ~ 4nr^2 + 8r^3 + rn^2 + r^2 n, NS5 ~ nr^2 + r^2 n + 20r^3 "
                 "+ 10r^2).")
def remark37(ctx):
    """Remark 3.7: "SVD ~ twice NS5" for A in R^{n x r}, r = 8, n = 1024.

    Three numbers for the ratio SVD/NS5 of the cost of orthogonalising an n x r moment:
    (1) the paper's own formulas (``analysis.flops.sumo_remark37_flops`` and, exactly, ``analysis.symbolic.
    sumo_flops_ratio``): 8,720,384 / 141,952 = 61.43 -- the r n^2 term dominates;
    (2) textbook counts (``analysis.flops``, Golub & Van Loan): thin SVD with vectors (R-SVD 6 n r^2 + 20 r^3;
    Golub–Reinsch 14 n r^2 + 8 r^3) plus the product U V^T (2 n r^2), against Frobenius normalisation plus five
    quintic steps on the wide r x n orientation (``flops_ns``);
    (3) measured wall time (CPU, one torch thread, float32): ``subspace.polar`` (SVD + U V^T) vs
    ``subspace.newton_schulz(A, 5, "muon")`` on a 1024 x 8 and an 8 x 1024 matrix; median over repeats, both
    medians from the same run.
    Rule: the sentence is judged on the paper's own formulas: "approximately twice" read generously as a ratio within
    a factor 1.5 of 2, i.e. in [4/3, 3] (``interval_contains``); violated if the formula ratio is outside.  Textbook
    and measured ratios are recorded (machine-dependent, not in the verdict).
    """
    from analysis.flops import flops_matmul, flops_ns, flops_svd, sumo_remark37_flops
    from analysis.symbolic import sumo_flops_ratio
    from subspace import newton_schulz, polar
    n, r = 1024, 8
    paper = sumo_remark37_flops(n, r)
    exact = sumo_flops_ratio(n, r)
    svd_r = flops_svd(n, r, vectors=True, method="r-svd") + flops_matmul(n, r, r)
    svd_gr = flops_svd(n, r, vectors=True, method="golub-reinsch") + flops_matmul(n, r, r)
    ns5 = flops_ns(n, r, 5, degree=5)
    repeats = ctx.by_scale(quick=100, full=2000)
    rows, timing = [], {}
    gen = ctx.generator("matrix", 0)
    for shape in ((n, r), (r, n)):
        A = torch.randn(*shape, generator=gen, dtype=torch.float32)
        t_svd = _median_time(lambda: polar(A), repeats)
        t_ns = _median_time(lambda: newton_schulz(A, 5, "muon"), repeats)
        key = f"{shape[0]}x{shape[1]}"
        timing[key] = {"svd_s": t_svd, "ns5_s": t_ns, "ratio": t_svd / t_ns}
        rows += [{"method": "svd", "seed": 0, "step": 0, "shape": key, "median_s": t_svd, "repeats": repeats},
                 {"method": "ns5", "seed": 0, "step": 0, "shape": key, "median_s": t_ns, "repeats": repeats}]
    ratios = {"paper sentence": 2.0, "paper formulas": paper["ratio"], "textbook (R-SVD)": svd_r / ns5,
              "textbook (Golub-Reinsch)": svd_gr / ns5,
              **{f"time {k}": v["ratio"] for k, v in timing.items()}}
    rows += [{"method": "ratio", "seed": 0, "step": 0, "source": k, "ratio": v} for k, v in ratios.items()]
    ctx.config.update({"n": n, "r": r, "dtype": "float32", "threads": 1, "repeats": repeats,
                       "svd_route": "subspace.polar (thin SVD + U V^T)", "ns_route": "newton_schulz(A, 5, 'muon')"})
    verdict = V.interval_contains(4.0 / 3.0, 3.0, paper["ratio"],
                                  name="SVD/NS5 FLOP ratio from the paper's formulas vs 'approximately twice'")
    measured = {"formula_ratio": paper["ratio"], "formula_svd": paper["svd"], "formula_ns5": paper["ns5"],
                "formula_ratio_exact": str(exact["ratio"]), "textbook_ratio_rsvd": svd_r / ns5,
                "textbook_ratio_golub_reinsch": svd_gr / ns5, "textbook_flops": {"svd_rsvd": svd_r,
                "svd_golub_reinsch": svd_gr, "ns5": ns5}, "time": timing}
    predicted = {"ratio": 2.0, "accepted_interval": [4.0 / 3.0, 3.0]}
    detail = (f"paper's formulas: {paper['svd']:,} vs {paper['ns5']:,} FLOPs = {paper['ratio']:.2f}x (the r n^2 "
              f"term is {r * n * n:,}); textbook: SVD/NS5 = {svd_r / ns5:.2f} (R-SVD) or {svd_gr / ns5:.2f} "
              f"(Golub-Reinsch), i.e. the SVD of a thin matrix is CHEAPER than NS5; measured (1 thread, float32, "
              f"median of {repeats}): " + ", ".join(f"{k}: SVD {v['svd_s'] * 1e6:.0f} us vs NS5 {v['ns5_s'] * 1e6:.0f}"
                                                   f" us ({v['ratio']:.2f}x)" for k, v in timing.items()))
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


@remark37.figure
def _draw_remark37(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    pts = [(r["source"], r["ratio"]) for r in rows if r.get("method") == "ratio"]
    if pts:
        names, vals = zip(*pts)
        colors = ["#7f7f7f", "#d62728"] + ["#1f77b4"] * (len(vals) - 2)
        ax.barh(range(len(vals)), vals, color=colors)
        ax.set_yticks(range(len(vals)))
        ax.set_yticklabels(names)
        for j, v in enumerate(vals):
            ax.text(v, j, f" {v:.2f}", va="center", fontsize=6)
        ax.axvline(1.0, color="#555555", linestyle=":", linewidth=0.9)
    P.finish(ax, xlabel=r"cost ratio SVD / NS5 ($n=1024$, $r=8$)", logx=True, legend=False)
    return fig


# ---------------------------------------------------------------------------------------------- Theorem 3.8

@claim(id="sumo.thm3.8", kind="paper", paper=PAPER, source="SUMO, Theorem 3.8 (App. A); paper-claims §1.7",
       statement="On a beta-smooth, bounded non-convex problem SUMO reaches an epsilon-critical point, "
                 "(1/T) sum_{t<T} ||G_t||_F^2 <= epsilon, within O(1/epsilon^2) steps.")
def thm38(ctx):
    """Theorem 3.8: SUMO needs O(1/eps^2) steps to an eps-critical point.

    Statement [V text]: for beta-smooth non-convex f bounded by M there are C, N with (1/T_N) sum ||G^(t)||_F^2 <= eps
    for T_N > C/eps^2; "Algorithm 1 achieves an eps-critical point".  Step size and C are [GAP].
    Problem: ``synthetic.SmoothMatrixProblem.random(m=16, n=8, p=12, rho=0.5, sigma=1.0)`` (non-convex: p < m makes
    A^T A singular; L = ||A||^2 + 2 rho known; f >= 0), Gaussian gradient noise with E||g - grad f||^2 = sigma^2 = 1.
    Method: ``subspace.make("sumo", rank=4, update_gap=20)`` (randomized SVD projector, mu = 0.95, exact polar
    factor, limiter 1.1, raw complement gradient), step size lr_t = (1/L)/sqrt(t + 1) (the anytime form of the
    O(1/sqrt T) non-convex step).  One run per seed (initial point, noise stream, bases), T steps.
    Measured: A_t = (1/t) sum_{s<t} ||grad f(W_s)||_F^2 (the theorem's own average, true gradient); for eps on 8
    geometric levels from the largest A_{T/64} over seeds down to 1.02 x the largest A_T (every seed reaches every
    level: no censoring), the first t with A_t <= eps.  Fit: slope of log(mean steps) on log(1/eps), 95% bootstrap
    over seeds (``loglog_slope``).  Earlier versions used min_t ||grad f||^2 on levels stopping at 1.5x the noise
    floor: the fit then sat in the linear-convergence transient (slope 0.30) where no polynomial bound can bind.
    Rule: ``ci_at_most`` against 2 + RATE_TOL_38 (= 2.5; RATE_TOL_38 is half the distance between consecutive
    integer exponents, fixed before the runs): holds iff the whole CI <= 2.5, violated iff it lies wholly above,
    else inconclusive; under two stated preconditions (``provided``), otherwise inconclusive:
    (1) the bound can bind: the CI lies at or above BIND_38 = 1 (steps grow at least like 1/eps, the polynomial
    regime; a slope near 0 is the log(1/eps) transient where the bound is vacuous) -- "inconclusive: not tested
    where the bound binds";
    (2) negative control: the same pipeline on SUMO with lr_t = (1/L)/(t + 1) (sum of steps ~ log T, so the
    average cannot decay polynomially fast; levels from the largest A_{T/8}, after the fast transient, to 1.02 x
    the largest A_T) must be rejected by the rule (its whole CI above 2.5).
    """
    import subspace
    from analysis.rates import loglog_slope, steps_to_target
    from synthetic import SmoothMatrixProblem
    seeds = ctx.by_scale(quick=6, full=16)
    T = ctx.by_scale(quick=1024, full=16384)
    seeds_c = ctx.by_scale(quick=4, full=8)
    T_c = ctx.by_scale(quick=512, full=4096)
    n_eps = 8
    prob = SmoothMatrixProblem.random(m=16, n=8, p=12, rho=0.5, sigma=1.0,
                                      generator=ctx.generator("problem", 0))
    lr0 = 1.0 / prob.L
    rank, gap = 4, 20
    ctx.config.update({"problem": "SmoothMatrixProblem.random(16, 8, 12, rho=0.5, sigma=1.0)", "L": prob.L,
                       "nonconvex": prob.is_nonconvex, "optimizer": "sumo", "rank": rank, "update_gap": gap,
                       "lr": "(1/L)/sqrt(t+1)", "control_lr": "(1/L)/(t+1)", "steps": T, "seeds": seeds,
                       "control_steps": T_c, "control_seeds": seeds_c, "rate_tolerance": RATE_TOL_38,
                       "bind_slope": BIND_38, "criterion": "(1/t) sum_{s<t} ||grad f(W_s)||^2"})

    def runs(tag, power, n_seeds, steps, start):
        sq = np.empty((n_seeds, steps))
        for s in range(n_seeds):
            W = torch.nn.Parameter(prob.x0(ctx.generator(f"{tag}/x0", s)))
            opt = subspace.make("sumo", [W], lr=lr0, rank=rank, update_gap=gap,
                                seed=ctx.seed(f"{tag}/bases", s) % 2 ** 62)
            noise = ctx.generator(f"{tag}/noise", s)
            group = opt.param_groups[0]
            for t in range(steps):
                group["lr"] = lr0 / (t + 1) ** power
                G = prob.grad(W.detach())
                sq[s, t] = float((G * G).sum())
                W.grad = prob.stochastic_grad(W.detach(), noise)
                opt.step()
        avg = np.cumsum(sq, axis=1) / np.arange(1, steps + 1)
        eps = np.geomspace(float(avg[:, steps // start - 1].max()), 1.02 * float(avg[:, -1].max()), n_eps)
        st = np.array([[steps_to_target(avg[s], e) for e in eps] for s in range(n_seeds)], dtype=float) + 1.0
        fit = loglog_slope(1.0 / eps, st, n_boot=2000, level=0.95, seed=ctx.seed(f"{tag}/bootstrap") % 2 ** 32,
                           resample="seeds")
        return eps, st, fit

    eps, steps, fit = runs("sumo", 0.5, seeds, T, 64)
    eps_c, steps_c, fit_c = runs("control", 1.0, seeds_c, T_c, 8)
    rows = [{"method": "sumo", "seed": s, "step": int(steps[s, j]), "epsilon": float(e), "inv_epsilon": float(1 / e)}
            for s in range(seeds) for j, e in enumerate(eps)]
    rows += [{"method": "control lr 1/t", "seed": s, "step": int(steps_c[s, j]), "epsilon": float(e),
              "inv_epsilon": float(1 / e)} for s in range(seeds_c) for j, e in enumerate(eps_c)]
    bound = 2.0 + RATE_TOL_38
    rule = V.ci_at_most(fit.ci_low, fit.ci_high, bound, name="slope of log(steps) on log(1/eps)")
    control = V.ci_at_most(fit_c.ci_low, fit_c.ci_high, bound, name="negative control (lr 1/t)")
    binds = fit.ci_low >= BIND_38
    verdict = V.provided(binds and control == V.VIOLATED,
                         f"the bound can bind (slope CI low {fit.ci_low:.3g} >= {BIND_38:g}; else: not tested where "
                         f"the bound binds) and the rule rejects the negative control (lr 1/t: {control.value}, CI "
                         f"[{fit_c.ci_low:.3g}, {fit_c.ci_high:.3g}])", rule)
    measured = {"slope": fit.slope, "ci": [fit.ci_low, fit.ci_high], "r2": fit.r2,
                "eps_range": [float(eps[0]), float(eps[-1])], "mean_steps": [float(v) for v in steps.mean(0)],
                "margin_to_bound": bound - fit.ci_high, "margin_to_binding": fit.ci_low - BIND_38,
                "control": {"slope": fit_c.slope, "ci": [fit_c.ci_low, fit_c.ci_high], "verdict": control.value,
                            "mean_steps": [float(v) for v in steps_c.mean(0)]}}
    predicted = {"exponent": 2.0, "tolerance": RATE_TOL_38, "slope_at_most": bound, "bind_slope_at_least": BIND_38}
    detail = (f"{seeds} seeds x {T} steps, lr_t = (1/L)/sqrt(t+1), L = {prob.L:.3g}; eps (on the running average of "
              f"||grad f||^2) from {eps[0]:.3g} to {eps[-1]:.3g}; steps {steps.mean(0)[0]:.0f} .. "
              f"{steps.mean(0)[-1]:.0f}; slope {fit.slope:.2f} [{fit.ci_low:.2f}, {fit.ci_high:.2f}]; negative "
              f"control lr 1/t: slope {fit_c.slope:.2f} [{fit_c.ci_low:.2f}, {fit_c.ci_high:.2f}] ({control.value})")
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)


@thm38.figure
def _draw_thm38(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    stats = P.series_stats(rows, x="inv_epsilon", y="step")
    for method, (x, mean, lo, hi) in stats.items():
        P.confidence_band(ax, x, lo, hi, method)
        slope = np.polyfit(np.log(x), np.log(mean), 1)[0]
        P.plot_measured(ax, x, mean, method, marker="o", label=f"{method}: slope {slope:.2f}")
        if method == "sumo":
            P.plot_theory(ax, x, mean[0] * (x / x[0]) ** 2, label=r"$O(\epsilon^{-2})$")
            P.plot_theory(ax, x, mean[0] * (x / x[0]) ** (2 + RATE_TOL_38), label="rule bound", linestyle=":")
    P.finish(ax, xlabel=r"$1/\epsilon$", ylabel=r"steps to $\frac{1}{t}\sum_{s<t}\|\nabla f\|_F^2\leq\epsilon$",
             logx=True, logy=True)
    return fig


# ---------------------------------------------------------------------------------------------- SVD vs NS5

def _target_run(prob, name, lr, *, rank, gap, steps, x0_gen, noise_gen, seed):
    """One run: (the loss at every step, numpy; the smallest sigma_min(M) / ||M||_F of the projected moment M that
    the step orthogonalises, over the run)."""
    import subspace
    W = torch.nn.Parameter(prob.x0(x0_gen))
    extra = {"scale": 1.0} if name == "galore" else {}
    opt = subspace.make(name, [W], lr=lr, rank=rank, update_gap=gap, seed=seed, **extra)
    losses = np.empty(steps + 1)
    smallest = math.inf
    for t in range(steps):
        losses[t] = float(prob.loss(W.detach()))
        W.grad = prob.stochastic_grad(W.detach(), noise_gen)
        opt.step()
        M = opt.state[W]["exp_avg"]
        sv = torch.linalg.svdvals(M.double())
        smallest = min(smallest, float(sv[-1] / max(float(torch.linalg.vector_norm(sv)), 1e-300)))
    losses[steps] = float(prob.loss(W.detach()))
    return losses, smallest


@claim(id="sumo.svd-vs-ns5", kind="reading", paper=PAPER, source="SUMO, Figure 2 (QNLI) and §4 ('~1.6x faster'); paper-claims §1.8",
       statement="SUMO with exact SVD orthogonalisation reaches a target loss in fewer steps than SUMO with "
                 "Newton–Schulz5 and than GaLore on ill-conditioned problems (paper: ~1.6x fewer steps).")
def svd_vs_ns5(ctx):
    """SUMO (SVD) vs SUMO (NS5) vs GaLore: steps to a target loss on an ill-conditioned problem.

    Source: Figure 2 ("SUMO with SVD demonstrates superior convergence speed (~1.6x faster) ... than GaLore and SUMO
    with Newton-Schultz5"), on RoBERTa/QNLI; here on a synthetic ill-conditioned least-squares problem where the
    mechanism (NS5 leaves singular values below ~1.5e-3 ||M||_F un-orthogonalised) can act.
    Problem: ``SmoothMatrixProblem.ill_conditioned(kappa=1000, m=24, n=12, rho=0, sigma=0)`` (square A with
    geometric spectrum s_1 = 1 .. 1e-3, so A^T A has condition 1e6; rho = 0 makes f* = f_lower = 0 exactly known).
    Exact gradients (sigma = 0): Fig. 2's statement is about convergence speed, and with sigma = 0.01 the 1% target
    sat at the noise floor (an independent re-run: SUMO reached it in 0 of 5 runs), so the comparison measured
    the noise, not the orthogonaliser.  The randomness is the problem, W_0 and the randomized-SVD bases.
    Methods: presets ``sumo``, ``sumo-ns5``, ``galore`` (scale 1), rank 8 of 12, update gap 50.  Learning rate per
    method chosen from {0.03, 0.1, 0.3, 1} on a separate tuning seed (fewest steps to target, ties by final loss),
    then evaluated on fresh seeds (initial point and noise stream shared across methods: paired).
    Target: f(W) - f* <= TARGET_FRACTION x (f(W_0) - f*) = 1%; steps = first step reaching it (a run that never
    does counts as the budget, which only shrinks differences).
    Rule: all_of two ``ordering_significant`` tests (paired one-sided t on steps, SUMO lower, alpha = 0.05/2
    Bonferroni): SUMO vs SUMO-NS5 and SUMO vs GaLore; holds iff both orderings are significant, violated iff one is
    significantly reversed, else inconclusive.  Power (``claims.llm.powered_ordering``): each test is decided only
    with the seeds that give power SVD_POWER = 0.9 against a standardised effect SVD_EFFECT = 1.5 at alpha =
    0.025 (``analysis.rates.paired_t_n_required``: 7 seeds), and only if SUMO reaches the target in every run.
    Mechanism (issue 10: a comparison where its mechanism cannot act is not a test of it): the SUMO vs SUMO-NS5
    test is decided only if some SUMO-NS5 run's moment M reaches sigma_min(M)/||M||_F < NS5_TAU at some step
    (below it NS5 leaves directions outside its band); ``measured["min_moment_ratio"]`` records it per method.
    Scales: quick (3 seeds, 300 steps, CPU ~7 s) is a smoke run, inconclusive at every seed family by this rule
    (measured: at 7 seeds x 400 steps SUMO missed the target in every run at family 0 and won both comparisons at
    family 1 -- the lr chosen on one tuning seed and the budget decide, so quick cannot); full (12 seeds, 3000
    steps, CPU ~3 min) decides.  The step ratios NS5/SVD and GaLore/SVD are recorded against 1.6.
    """
    from analysis.rates import steps_to_target
    from synthetic import SmoothMatrixProblem
    from analysis.rates import paired_t_n_required
    from claims.llm import powered_ordering
    alpha = 0.05 / 2
    n_req = paired_t_n_required(SVD_EFFECT, alpha=alpha, power=SVD_POWER)
    seeds = ctx.by_scale(quick=3, full=max(12, n_req))   # quick: a smoke run, below n_req by design
    T = ctx.by_scale(quick=300, full=3000)
    kappa = 1000.0
    lrs = (0.03, 0.1, 0.3, 1.0)
    methods = ("sumo", "sumo-ns5", "galore")
    rank, gap = 8, 50
    sigma = 0.0
    prob = SmoothMatrixProblem.ill_conditioned(kappa, m=24, n=12, rho=0.0, sigma=sigma,
                                               generator=ctx.generator("problem", 0))
    fstar = prob.f_lower

    def run(name, lr, tag, s):
        losses, smallest = _target_run(prob, name, lr, rank=rank, gap=gap, steps=T,
                                       x0_gen=ctx.generator(f"{tag}/x0", s),
                                       noise_gen=ctx.generator(f"{tag}/noise", s),
                                       seed=ctx.seed(f"{tag}/bases/{name}", s) % 2 ** 62)
        target = fstar + TARGET_FRACTION * (losses[0] - fstar)
        hit = steps_to_target(losses, target)
        return losses, (T if hit is None else hit), hit is not None, smallest

    rows, chosen, steps_of, reached, final_gap, smallest_ratio = [], {}, {}, {}, {}, {}
    for name in methods:
        scores = []
        for lr in lrs:
            losses, st, ok, _ = run(name, lr, "tune", 0)
            scores.append((st, losses[-1], lr))
        chosen[name] = min(scores)[2]
        sts, oks, finals, smallest = [], [], [], []
        for s in range(seeds):
            losses, st, ok, low = run(name, chosen[name], "eval", s)
            smallest.append(low)
            sts.append(st)
            oks.append(ok)
            gap0 = losses[0] - fstar
            finals.append(float((losses[-1] - fstar) / gap0))
            rows += [{"method": name, "seed": s, "step": t, "loss": float(losses[t]),
                      "rel_gap": float((losses[t] - fstar) / gap0), "lr": chosen[name]}
                     for t in range(0, T + 1, 10)]
        steps_of[name], reached[name], smallest_ratio[name] = sts, oks, float(min(smallest))
        final_gap[name] = float(np.mean(finals))
        ctx.log(f"{name}: lr {chosen[name]}, steps {sts}")
    ctx.config.update({"problem": "SmoothMatrixProblem.ill_conditioned(1000, m=24, n=12, rho=0, sigma=0)",
                       "rank": rank, "update_gap": gap, "lr_grid": list(lrs), "lr_chosen": chosen, "steps": T,
                       "seeds": seeds, "target_fraction": TARGET_FRACTION, "alpha": alpha})
    acts = smallest_ratio["sumo-ns5"] < NS5_TAU
    mechanism = {"sumo-ns5": (acts, f"; the NS5 runs' moments fall below NS5's band threshold (min sigma_min/||M||_F "
                                    f"{smallest_ratio['sumo-ns5']:.3g}, needs < tau = {NS5_TAU:.4g})"),
                 "galore": (True, "")}
    parts = [powered_ordering(steps_of["sumo"], steps_of[o], unit="seeds", effect=SVD_EFFECT, alpha=alpha,
                              power=SVD_POWER, lower_is_better=True, name=f"steps to target: SUMO (SVD) vs {o}",
                              extra_ok=all(reached["sumo"]) and mechanism[o][0],
                              extra_what="SUMO (SVD) reaches the target in every run (not at a noise floor)"
                                         + mechanism[o][1])[0]
             for o in ("sumo-ns5", "galore")]
    mean = {k: float(np.mean(v)) for k, v in steps_of.items()}
    measured = {"mean_steps": mean, "final_rel_gap": final_gap, "ratio_ns5_over_svd": mean["sumo-ns5"] / mean["sumo"],
                "ratio_galore_over_svd": mean["galore"] / mean["sumo"], "steps": steps_of,
                "reached_target": {k: int(sum(v)) for k, v in reached.items()}, "lr": chosen,
                "p_values": {o: p.inputs["verdict"].inputs["p_claim"] for o, p in zip(("sumo-ns5", "galore"), parts)},
                "seeds_required": n_req, "min_moment_ratio": smallest_ratio, "ns5_tau": NS5_TAU}
    predicted = {"ratio_paper": 1.6, "sumo_fewer_steps": True, "alpha": alpha}
    detail = (f"kappa(A) = {kappa:g}, {seeds} paired seeds, budget {T} steps; mean steps to 1% of the initial gap: "
              + ", ".join(f"{k} {v:.0f} (lr {chosen[k]})" for k, v in mean.items())
              + f"; ratios NS5/SVD {measured['ratio_ns5_over_svd']:.2f}, GaLore/SVD "
                f"{measured['ratio_galore_over_svd']:.2f} (paper ~1.6); targets reached "
                f"{measured['reached_target']}; final (f - f*)/(f_0 - f*) "
              + ", ".join(f"{k} {v:.4f}" for k, v in final_gap.items()))
    return Outcome(measured=measured, predicted=predicted, verdict=V.all_of(parts), detail=detail, rows=rows)


@svd_vs_ns5.figure
def _draw_svd_vs_ns5(rows):
    from analysis import plotting as P
    fig, ax = P.new_figure(columns=1)
    for method, (x, mean, lo, hi) in P.series_stats(rows, x="step", y="rel_gap").items():
        P.confidence_band(ax, x, np.maximum(lo, 1e-12), hi, method)
        P.plot_measured(ax, x, np.maximum(mean, 1e-12), method)
    P.reference_line(ax, TARGET_FRACTION, label="target")
    P.finish(ax, xlabel="step", ylabel=r"$(f(W_t)-f^*)/(f(W_0)-f^*)$", logy=True)
    return fig


# ---------------------------------------------------------------------------------------------- Table 1

def table1_formulas(m: int, n: int, r: int) -> dict:
    """SUMO Table 1 in elements, read with GaLore's convention m <= n (m = the projected side, as GaLore's Table 1
    states it; the table is copied from there): SUMO nr + mr, GaLore 2nr + mr, Adam 2mn.  ``galore_m_ge_n`` is
    GaLore's entry read with SUMO §3's convention m >= n instead."""
    lo, hi = min(m, n), max(m, n)
    return {"sumo": hi * r + lo * r, "sumo-ns5": hi * r + lo * r, "galore": 2 * hi * r + lo * r,
            "adamw": 2 * m * n, "galore_m_ge_n": 2 * lo * r + hi * r}


@claim(id="sumo.table1", kind="paper", paper=PAPER, source="SUMO, Table 1 (optimizer-state memory); paper-claims §1.6",
       statement="Optimizer-state sizes per m x n weight at rank r: nr + mr (SUMO), 2nr + mr (GaLore), 2mn (Adam).")
def table1(ctx):
    """Table 1: optimizer-state memory, measured in bytes after real steps.

    Statement [V]: SUMO keeps nr + mr (basis Q and the r-dimensional first moment), GaLore 2nr + mr (basis plus two
    Adam moments), Adam 2mn.  Convention: Table 1 repeats GaLore's Table 1, where m <= n and the basis is on the m
    side; read that way, m is the smaller dimension (the side ``subspace`` projects, as GaLore's code does).
    Measured: for shapes (64, 256), (256, 64), (128, 128), (96, 40) at r = 8 and each of ``sumo``, ``sumo-ns5``,
    ``galore``, ``adamw``: three optimizer steps with Gaussian gradients (float32 parameter), then the total bytes of
    the tensors in ``opt.state[p]`` (``records.state_bytes``: 0-d scalars are not state).  Predicted: the formula in elements x 4 bytes.
    Rule: exact equality (``close_to`` with rtol = atol = 0) at every (method, shape).  Recorded: GaLore's entry read
    with SUMO §3's m >= n (2 min r + max r) differs from the implementation by (max - min) r elements on non-square
    shapes -- the table is only right with GaLore's convention.
    """
    import subspace
    shapes = ((64, 256), (256, 64), (128, 128), (96, 40))
    methods = ("sumo", "sumo-ns5", "galore", "adamw")
    r = 8
    rows, meas, pred = [], [], []
    alt = {}
    for j, (m, n) in enumerate(shapes):
        f = table1_formulas(m, n, r)
        for name in methods:
            gen = ctx.generator(f"grad/{name}", j)
            W = torch.nn.Parameter(torch.zeros(m, n, dtype=torch.float32))
            low_rank = {} if name == "adamw" else dict(rank=r, update_gap=2)  # AdamW reads neither
            opt = subspace.make(name, [W], lr=1e-3, seed=ctx.seed("bases", j) % 2 ** 62, **low_rank)
            for _ in range(3):
                W.grad = torch.randn(m, n, generator=gen, dtype=torch.float32)
                opt.step()
            b = state_bytes(opt.state[W])
            pb = f[name] * W.element_size()
            meas.append(b)
            pred.append(pb)
            rows.append({"method": name, "seed": 0, "step": 3, "m": m, "n": n, "rank": r, "measured_bytes": b,
                         "predicted_bytes": pb, "core_formula_bytes": subspace.state_numel(name, (m, n), **low_rank)
                         * W.element_size()})
        alt[f"{m}x{n}"] = {"galore_measured": meas[-2], "galore_if_m_ge_n": f["galore_m_ge_n"] * 4}
    ctx.config.update({"shapes": [list(s) for s in shapes], "rank": r, "dtype": "float32", "steps": 3})
    verdict = V.close_to(np.asarray(meas, dtype=float), np.asarray(pred, dtype=float), rtol=0.0, atol=0.0,
                         name="state bytes = Table 1 formula x 4")
    measured = {"bytes": {f"{r_['method']} {r_['m']}x{r_['n']}": r_["measured_bytes"] for r_ in rows},
                "galore_m_ge_n_reading": alt}
    predicted = {"formulas": {"sumo": "nr + mr", "galore": "2nr + mr", "adamw": "2mn"}, "rank": r,
                 "bytes": {f"{r_['method']} {r_['m']}x{r_['n']}": r_["predicted_bytes"] for r_ in rows}}
    mism = {k: v for k, v in alt.items() if v["galore_measured"] != v["galore_if_m_ge_n"]}
    detail = (f"{len(rows)} (method, shape) pairs at r = {r}, float32; with SUMO's m >= n reading GaLore's "
              f"2nr + mr would differ on {len(mism)} non-square shapes, e.g. "
              + (", ".join(f"{k}: {v['galore_measured']} B measured vs {v['galore_if_m_ge_n']} B"
                           for k, v in list(mism.items())[:2]) or "none"))
    return Outcome(measured=measured, predicted=predicted, verdict=verdict, detail=detail, rows=rows)
