"""Symbolic (sympy) derivations and certified numerics for the Newton–Schulz maps and SUMO Remark 3.7.

* Fixed points of an odd NS polynomial p(x) = a x + b x^3 (+ c x^5) on (0, inf): p(x) = x <=> a - 1 + b y + c y^2 = 0
  with y = x^2 (exact, the coefficients taken as exact decimals), with multipliers |p'(x*)| (> 1: repelling).
  For Muon's quintic (3.4445, -4.7750, 2.0315) (paper-claims §0): x* ~ 0.8680 and 1.2637, both repelling.
* The cycle the orbit of x0 settles on (Muon from x0 = 1: a 4-cycle ~ {0.6819, 1.1343, 0.7529, 1.0469}), refined by
  solving p^period(x) = x with mpmath at 50 digits; multiplier |prod p'(x_i)| (< 1: attracting).
* ``level_threshold``: the smallest x0 > 0 with p^k(x0) >= level, certified. Let x_c be the first positive critical
  point of p (p' > 0 on [0, x_c)). If every iterate p^j(x_hi), j < k, lies below x_c then by induction p^k is
  increasing on [0, x_hi]; bisection gives x_lo < x_hi with p^k(x_lo) < level <= p^k(x_hi), both inequalities
  checked in exact integer arithmetic (unreduced fractions), so the threshold lies in (x_lo, x_hi].
* The classical cubic NS error recursion: with p(x) = 3/2 x - 1/2 x^3 and x = 1 - e, 1 - p(1 - e) = e^2 (3 - e)/2.
* SUMO Remark 3.7's FLOP formulas for A in R^{n x r}: SVD ~ 4nr^2 + 8r^3 + rn^2 + r^2 n, NS5 ~ nr^2 + r^2 n + 20r^3
  + 10r^2; at r = 8, n = 1024 the ratio is 8,720,384/141,952 ~ 61.4, not "about twice".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import mpmath
import sympy as sp

from subspace import COEFFICIENTS

__all__ = ["x_sym", "e_sym", "odd_polynomial", "FixedPoint", "fixed_points", "Cycle", "find_cycle",
           "Threshold", "level_threshold", "cubic_error_recursion", "sumo_flops_expressions",
           "sumo_flops_ratio"]

x_sym = sp.Symbol("x", positive=True)
e_sym = sp.Symbol("e", real=True)
_n, _r = sp.symbols("n r", positive=True, integer=True)


def _coeff_tuple(coeffs) -> tuple:
    c = COEFFICIENTS[coeffs] if isinstance(coeffs, str) else tuple(coeffs)
    if len(c) not in (2, 3):
        raise ValueError("coeffs must be a name or a tuple of 2 or 3 numbers")
    return c


def _exact(c) -> sp.Rational:
    """A float coefficient as the exact decimal it was written as (3.4445 -> 6889/2000)."""
    return sp.Rational(repr(float(c))) if not isinstance(c, (sp.Rational, Fraction)) else sp.Rational(c)


def odd_polynomial(coeffs="muon", x: sp.Symbol = x_sym) -> sp.Expr:
    """p(x) = a x + b x^3 (+ c x^5) with exact rational coefficients."""
    c = [_exact(v) for v in _coeff_tuple(coeffs)]
    return sum(ci * x ** (2 * i + 1) for i, ci in enumerate(c))


@dataclass(frozen=True)
class FixedPoint:
    x: float
    exact: sp.Expr
    multiplier: float  # |p'(x*)|

    @property
    def kind(self) -> str:
        return "repelling" if self.multiplier > 1 else ("attracting" if self.multiplier < 1 else "neutral")


def fixed_points(coeffs="muon") -> list[FixedPoint]:
    """Fixed points of p on (0, inf), ascending, with exact closed forms and |p'| there."""
    p = odd_polynomial(coeffs)
    dp = sp.diff(p, x_sym)
    y = sp.Symbol("y", positive=True)
    quad = sp.expand(sp.cancel((p - x_sym) / x_sym).subs(x_sym ** 2, y))
    quad = sp.expand(quad.subs(x_sym, sp.sqrt(y)))
    out = []
    for root in sp.solve(sp.Eq(quad, 0), y):
        if root.is_real and root > 0:
            xs = sp.sqrt(root)
            out.append(FixedPoint(x=float(sp.N(xs, 30)), exact=sp.simplify(xs),
                                  multiplier=float(abs(sp.N(dp.subs(x_sym, xs), 30)))))
    return sorted(out, key=lambda f: f.x)


def _p_float(c, x):
    x2 = x * x
    return x * (c[0] + c[1] * x2) if len(c) == 2 else x * (c[0] + x2 * (c[1] + c[2] * x2))


def _dp_float(c, x):
    x2 = x * x
    return c[0] + 3 * c[1] * x2 if len(c) == 2 else c[0] + x2 * (3 * c[1] + 5 * c[2] * x2)


@dataclass(frozen=True)
class Cycle:
    points: tuple          # the cycle in orbit order, starting from its smallest point
    period: int
    multiplier: float      # |prod_i p'(x_i)|
    transient: int         # iterations of the burn-in before the cycle was detected


def find_cycle(x0: float = 1.0, coeffs="muon", *, max_period: int = 32, burn_in: int = 2000,
               tol: float = 1e-12, digits: int = 50) -> Cycle:
    """Iterate p from x0 for ``burn_in`` steps, detect the smallest period q <= max_period with
    |p^q(x) - x| < tol, then refine by solving p^q(x) = x with mpmath (``digits`` digits) from the orbit point."""
    c = _coeff_tuple(coeffs)
    x = float(x0)
    for _ in range(burn_in):
        x = _p_float(c, x)
    orbit = [x]
    for _ in range(max_period):
        orbit.append(_p_float(c, orbit[-1]))
    period = next((q for q in range(1, max_period + 1) if abs(orbit[q] - orbit[0]) < tol), None)
    if period is None:
        raise ValueError(f"no cycle of period <= {max_period} detected from x0={x0}")
    with mpmath.workdps(digits):
        cm = [mpmath.mpf(repr(float(v))) for v in c]

        def g(t):  # p^q(t) - t
            s = t
            for _ in range(period):
                s = _p_float(cm, s)
            return s - t

        root = mpmath.findroot(g, mpmath.mpf(repr(orbit[0])))
        pts = [root]
        for _ in range(period - 1):
            pts.append(_p_float(cm, pts[-1]))
        mult = abs(mpmath.fprod([_dp_float(cm, v) for v in pts]))
    i0 = min(range(period), key=lambda i: pts[i])
    ordered = pts[i0:] + pts[:i0]
    return Cycle(points=tuple(float(v) for v in ordered), period=period, multiplier=float(mult),
                 transient=burn_in)


@dataclass(frozen=True)
class Threshold:
    """Certified bracket (x_lo, x_hi] of the smallest x0 with p^k(x0) >= level."""
    level: float
    steps: int
    x_lo: float
    x_hi: float
    critical_point: float   # x_c, first positive critical point of p
    certified: bool

    @property
    def value(self) -> float:
        return self.x_hi


def _iterate_exact(c: list[Fraction], x: Fraction, steps: int) -> list[tuple[int, int]]:
    """Exact orbit of x under p as unreduced integer fractions (num, den), den > 0 (no gcd: fast).

    With x = X/Q and c_i = C_i/D (common denominator D):
    p(x) = X (C_0 Q^4 + C_1 X^2 Q^2 + C_2 X^4) / (D Q^5)   (quintic),   X (C_0 Q^2 + C_1 X^2) / (D Q^3)   (cubic).
    """
    D = 1
    for v in c:
        D = D * v.denominator // math.gcd(D, v.denominator)
    C = [int(v * D) for v in c]
    X, Q = x.numerator, x.denominator
    orbit = [(X, Q)]
    for _ in range(steps):
        X2, Q2 = X * X, Q * Q
        if len(C) == 2:
            X, Q = X * (C[0] * Q2 + C[1] * X2), D * Q2 * Q
        else:
            X, Q = X * (C[0] * Q2 * Q2 + C[1] * X2 * Q2 + C[2] * X2 * X2), D * Q2 * Q2 * Q
        orbit.append((X, Q))
    return orbit


def _lt(a: tuple[int, int], b: Fraction) -> bool:
    """a = num/den (den > 0) < b, exactly."""
    return a[0] * b.denominator < b.numerator * a[1]


@lru_cache(maxsize=None)
def _first_critical_point(coeffs: tuple) -> float:
    p = odd_polynomial(coeffs)
    crit = sorted(float(sp.N(r, 30)) for r in sp.solve(sp.diff(p, x_sym), x_sym) if r.is_real and r > 0)
    return crit[0] if crit else float("inf")


def level_threshold(level: float = 0.68, coeffs="muon", steps: int = 5, *, xtol: float = 1e-13) -> Threshold:
    """Smallest x0 > 0 with p^steps(x0) >= level, with an exact-arithmetic certificate (module docstring)."""
    c = _coeff_tuple(coeffs)
    cf = [Fraction(repr(float(v))) for v in c]
    x_c = _first_critical_point(tuple(float(v) for v in c))

    def pk(x):
        for _ in range(steps):
            x = _p_float(c, x)
        return x

    # largest u on which every iterate before the last stays below x_c (p^k increasing on [0, u])
    def on_branch(x):
        for _ in range(steps):
            if x >= x_c:
                return False
            x = _p_float(c, x)
        return True

    lo, hi = 0.0, min(x_c, 1e6)
    if on_branch(hi):
        u = hi
    else:
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if on_branch(mid) else (lo, mid)
        u = lo
    if pk(u) < level:
        raise ValueError(f"level {level} is not reached on the monotone branch [0, {u:.6g}] (max {pk(u):.6g})")
    a, b = 0.0, u
    while b - a > xtol * max(b, 1e-300):
        mid = 0.5 * (a + b)
        if mid in (a, b):
            break
        a, b = (mid, b) if pk(mid) < level else (a, mid)
    # exact certificate (integer arithmetic). Float rounding can misplace the bracket where p^k is flat (levels
    # near the branch maximum), so each end is pushed outward (doubling steps) until the exact test agrees.
    lev = Fraction(repr(float(level)))
    xc_low = Fraction(x_c) * (1 - Fraction(1, 10 ** 12)) if x_c != float("inf") else None

    def exact_below(x: float) -> bool:
        return _lt(_iterate_exact(cf, Fraction(x), steps)[-1], lev)

    delta = max(b - a, 1e-300)
    for _ in range(64):
        if a <= 0 or exact_below(a):
            break
        a, delta = max(a - delta, 0.0), 2 * delta
    delta = max(b - a, 1e-300)
    for _ in range(64):
        if not exact_below(b) or b >= u:
            break
        b, delta = min(b + delta, u), 2 * delta
    orbit_hi = _iterate_exact(cf, Fraction(b), steps)
    # x_c is irrational: compare with a rational strictly below it (x_c rounded down by a relative 1e-12)
    branch_ok = xc_low is None or all(_lt(v, xc_low) for v in orbit_hi[:-1])
    certified = bool(branch_ok and (a == 0 or exact_below(a)) and not _lt(orbit_hi[-1], lev) and a >= 0)
    return Threshold(level=float(level), steps=steps, x_lo=a, x_hi=b, critical_point=x_c, certified=certified)


def cubic_error_recursion() -> sp.Expr:
    """Derive e_{k+1} = 1 - p(1 - e_k) for p(x) = 3/2 x - 1/2 x^3; returns the factored expression
    e^2 (3 - e)/2 (asserted equal symbolically)."""
    p = odd_polynomial((sp.Rational(3, 2), sp.Rational(-1, 2)), x=x_sym)
    expr = sp.factor(sp.expand(1 - p.subs(x_sym, 1 - e_sym)))
    target = e_sym ** 2 * (3 - e_sym) / 2
    assert sp.simplify(expr - target) == 0
    return expr


def sumo_flops_expressions() -> tuple[sp.Expr, sp.Expr]:
    """SUMO Remark 3.7 (paper-claims §1.5): (SVD route, NS5 route) FLOPs for A in R^{n x r} in symbols n, r."""
    svd = 4 * _n * _r ** 2 + 8 * _r ** 3 + _r * _n ** 2 + _r ** 2 * _n
    ns5 = _n * _r ** 2 + _r ** 2 * _n + 20 * _r ** 3 + 10 * _r ** 2
    return svd, ns5


def sumo_flops_ratio(n: int = 1024, r: int = 8) -> dict:
    """Evaluate Remark 3.7's formulas: {"svd", "ns5"} as exact integers and "ratio" as an exact Rational and a
    float (r = 8, n = 1024: 8,720,384 / 141,952 = 61.43...)."""
    svd, ns5 = sumo_flops_expressions()
    sv, nv = int(svd.subs({_n: n, _r: r})), int(ns5.subs({_n: n, _r: r}))
    ratio = sp.Rational(sv, nv)
    return {"svd": sv, "ns5": nv, "ratio": ratio, "ratio_float": float(ratio)}


@lru_cache(maxsize=1)
def golore_complexity() -> dict:
    """GoLore talk's computation table, symbolically (m, n, r, b > 0): the exact product counts of
    ``analysis.flops.linear_layer_flops`` against the table, and the rank r* at which the factorized form stops
    paying (its count equals GaLore's).  Table: exact - table = 0 (GaLore) and b m + b n (the factorized form's two
    sums).  From the table: r* = 2 m n (b + 1) / (4 b m + 6 b n + 2 n - 4 m n) (when the denominator is <= 0 the
    factorized form is cheaper at every r), -> 2 m n / (4 m + 6 n) for b >> m, n; it is not "r << min(m, n)": at
    m = n, r* -> n / 5."""
    from analysis.flops import golore_table_flops, linear_layer_flops
    m, n, r, b = sp.symbols("m n r b", positive=True)
    ex = linear_layer_flops(m, n, r, b)["totals"]
    tab = golore_table_flops(m, n, r, b)
    diff = {k: sp.expand(ex[k] - tab[k]) for k in ("galore", "factorized")}
    sol = sp.solve(sp.Eq(tab["galore"], tab["factorized"]), r)
    r_star = sp.simplify(sol[0])
    limit = sp.limit(r_star, b, sp.oo)
    sol_exact = sp.solve(sp.Eq(ex["galore"], ex["factorized"]), r)
    return {"symbols": (m, n, r, b), "exact": ex, "table": tab, "exact_minus_table": diff, "r_star": r_star,
            "r_star_large_batch": sp.simplify(limit), "r_star_exact": sp.simplify(sol_exact[0])}


def golore_crossover_rank(m: int, n: int, b: int, *, exact: bool = False) -> float:
    """r* of :func:`golore_complexity` at given sizes (from the table, or from the exact counts); inf if the
    factorized form is cheaper at every rank."""
    d = golore_complexity()
    mm, nn, _, bb = d["symbols"]
    expr = d["r_star_exact" if exact else "r_star"]
    val = float(expr.subs({mm: m, nn: n, bb: b}))
    return val if val > 0 else float("inf")
