"""The claim registry: every lemma, theorem and headline figure as a small, runnable function.

How to add a claim (this is the claims/ README)
===============================================

1. Put it in ``claims/<paper>.py`` (``golore``, ``sumo``, ``galore``, ``osd``, ``snsm``, ``muon``, ...).
   Nothing else to edit: :func:`discover` imports every module of the package, and ``sublab verify``,
   ``sublab list`` and ``sublab figures`` see the new claim.  Ids are ``<paper>.<name>``, lowercase
   (``[a-z0-9._-]``); a corrected or reconstructed version of a statement gets its own id.

2. Write the function ``fn(ctx) -> Outcome``; its docstring is the paper's appendix in miniature
   (statement with symbols, source, preconditions, what is measured, the verdict rule and where its
   tolerance comes from, known discrepancies)::

       from claims.registry import claim, Outcome
       from claims import verdicts as V

       @claim(id="golore.lemma5", kind="paper", paper="GoLore", source="GoLore, Lemma 5 (App. B)", kind="paper",
              statement="For uniform Stiefel P: E[P P^T] = (r/m) I.")
       def lemma5(ctx):
           \"\"\"...statement, preconditions, measurement, rule: Monte Carlo 99% CI must contain r/m...\"\"\"
           n = ctx.by_scale(quick=2_000, full=200_000)
           g = ctx.generator("stiefel", 0)            # seeded from (claim id, method, repetition)
           est, lo, hi, rows = ...                    # experiment; rows = [{"method", "seed", "step", ...}]
           return Outcome(measured={"diag_mean": est, "ci": [lo, hi]}, predicted={"diag": r / m},
                          verdict=V.within_ci(r / m, lo, hi, level=0.99), rows=rows)

3. Optional figure, drawn from the saved rows only (so ``sublab figures`` redraws without rerunning).
   Import matplotlib/``analysis.plotting`` inside the function, never at module level::

       @lemma5.figure
       def _draw(rows):
           from analysis import plotting as P
           fig, ax = P.new_figure(columns=1)
           for method, (x, y) in P.series(rows, x="step", y="err").items():
               P.plot_measured(ax, x, y, method)
           return fig

Rules of the house
------------------
* The verdict comes from a rule in :mod:`claims.verdicts` applied to the numbers you return
  (``Outcome`` rejects a plain string).  Tolerances come from confidence intervals or round-off
  analysis, stated in the docstring; never tune them until the claim passes.  A violated claim is a
  result: report the smallest counterexample in ``measured`` and ``detail``.
* No global random state: every random draw uses ``ctx.generator(method, repetition)`` (torch),
  ``ctx.rng(method, repetition)`` (numpy) or ``ctx.seed(method, repetition)``.
* ``ctx.scale`` is "quick" (all claims together within ~3 min on 2 CPU cores) or "full" (paper size);
  use ``ctx.by_scale(quick=..., full=...)``.  Work on ``ctx.device``.
* ``measured``/``predicted`` are small dicts of JSON-able numbers (numpy/torch scalars and arrays are
  converted; NaN/inf are stored as the strings "nan"/"inf"/"-inf" and decoded on load).
* ``rows`` are long-format: one dict per (method, seed, step, ...).  The runner adds ``claim``, the
  run ``config`` (scale, device and whatever you put in ``ctx.config``) and ``code_version``.
* Tests: ``claims.runner.execute(fn_or_id, scale="quick")`` returns the Outcome without writing files,
  and ``claims.verdicts.recompute(outcome.verdict)`` re-derives the verdict from its recorded inputs.
"""
from __future__ import annotations

import fnmatch
import hashlib
import importlib
import inspect
import pkgutil
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

__all__ = ["claim", "Claim", "Outcome", "Context", "Registry", "NoMatchError", "discover",
           "default_registry", "derive_seed", "SCALES", "KINDS"]

SCALES = ("quick", "full")
#: What a claim tests. ``paper``: the paper's statement under its own hypotheses (a violation is a counterexample
#: that meets every hypothesis); ``reading``: one reading of an ambiguous statement, of its proof, or of an
#: empirical statement at the scale this workbench runs; ``corrected``: a statement the project derived or
#: reconstructed; ``auxiliary``: an experiment outside the hypotheses (is an assumption necessary, does a method
#: meet a precondition).
KINDS = ("paper", "reading", "corrected", "auxiliary")
_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_.\-]*[a-z0-9])?$")
# modules of the package that are framework, not papers
FRAMEWORK_MODULES = frozenset({"registry", "verdicts", "runner", "cli", "bench", "testing", "notebook", "runtime"})

_DEFINED: list["Claim"] = []  # every decorated claim, in definition order (discover() filters by module)


@dataclass
class Claim:
    id: str
    paper: str
    statement: str
    source: str
    fn: Callable[["Context"], "Outcome"]
    kind: str = "paper"
    draw: Callable[[list], Any] | None = None
    gallery: bool = True
    module: str = ""
    gpu_at_full: bool = False

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.fn.__doc__ or "")

    def __call__(self, ctx: "Context") -> "Outcome":
        return self.fn(ctx)


def claim(*, id: str, paper: str, statement: str, source: str, kind: str,
          figure: Callable[[list], Any] | None = None, gallery: bool = True, gpu_at_full: bool = False):
    """Register ``fn(ctx) -> Outcome`` as a claim of the given ``kind`` (one of :data:`KINDS`).  Returns ``fn``
    unchanged except for two attributes:
    ``fn.claim`` (the :class:`Claim`) and ``fn.figure`` (a decorator registering ``draw(rows) -> Figure``).

    ``figure=draw`` is the same as decorating ``draw`` with ``@fn.figure``.  ``gallery=False`` keeps the
    figure out of the committed gallery (``sublab figures --gallery``). ``gpu_at_full=True`` marks a claim whose
    full scale needs a GPU (hours on a CPU): ``sublab verify --scale full`` on the CPU leaves it out unless
    ``--only`` names it.
    """
    if not isinstance(id, str) or not _ID_RE.match(id):
        raise ValueError(f"claim id {id!r} must match {_ID_RE.pattern} (e.g. 'golore.lemma5')")
    for k, v in (("paper", paper), ("statement", statement), ("source", source)):
        if not isinstance(v, str) or not v.strip():
            raise ValueError(f"claim {id!r}: {k} must be a non-empty string")
    if kind not in KINDS:
        raise ValueError(f"claim {id!r}: kind={kind!r} is invalid; allowed: {list(KINDS)}")

    def decorate(fn):
        if not callable(fn):
            raise TypeError(f"@claim({id!r}) must decorate a function fn(ctx) -> Outcome")
        c = Claim(id=id, paper=paper, statement=" ".join(statement.split()), source=source, fn=fn, kind=kind,
                  draw=figure, gallery=gallery, module=getattr(fn, "__module__", "") or "", gpu_at_full=gpu_at_full)

        def register_figure(draw):
            if not callable(draw):
                raise TypeError("figure must be a function draw(rows) -> matplotlib Figure")
            c.draw = draw
            return draw

        fn.claim = c
        fn.figure = register_figure
        _DEFINED.append(c)
        return fn

    return decorate


def _as_claim(obj) -> Claim:
    if isinstance(obj, Claim):
        return obj
    c = getattr(obj, "claim", None)
    if isinstance(c, Claim):
        return c
    raise TypeError(f"{obj!r} is not a claim (decorate it with @claim)")


# ---------------------------------------------------------------------------------------------- outcome

@dataclass
class Outcome:
    """What a claim returns.  ``verdict`` must come from a rule in :mod:`claims.verdicts`."""
    measured: dict
    predicted: dict
    verdict: Any
    detail: str = ""
    rows: list = field(default_factory=list)

    def __post_init__(self):
        from .verdicts import Verdict
        if not isinstance(self.verdict, Verdict):
            raise TypeError("Outcome.verdict must be produced by a rule in claims.verdicts "
                            f"(upper_bound, within_ci, ...), not the literal {self.verdict!r}")
        if not isinstance(self.measured, Mapping) or not isinstance(self.predicted, Mapping):
            raise TypeError("Outcome.measured and Outcome.predicted must be dicts")
        self.measured, self.predicted = dict(self.measured), dict(self.predicted)
        self.rows = list(self.rows or [])
        for r in self.rows:
            if not isinstance(r, Mapping):
                raise TypeError(f"Outcome.rows must be dicts (long format), got {type(r).__name__}")
        self.detail = str(self.detail or "")

    @property
    def reason(self) -> str:
        return self.verdict.reason


# ---------------------------------------------------------------------------------------------- context

def derive_seed(claim_id: str, method: str = "", repetition: int = 0, family: int = 0) -> int:
    """A 63-bit seed from (seed family, claim id, method, repetition): stable across runs, machines and Python
    versions. Family 0 is the canonical run (its key omits the family, so its seeds predate families)."""
    prefix = "" if int(family) == 0 else f"family={int(family)}\x1f"
    key = f"{prefix}{claim_id}\x1f{method}\x1f{int(repetition)}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") & ((1 << 63) - 1)


class Context:
    """What a claim function receives.

    ``scale`` ("quick"/"full"), ``device`` ("cpu"/"cuda[:k]"), ``out_dir`` (this claim's scratch folder,
    created on first use), ``config`` (dict; add the hyper-parameters you use: copied into every row),
    ``seed_family`` (``sublab verify --seed-family N``: reseeds every draw; verdicts must not depend on it),
    ``seed/generator/rng(method, repetition)`` (deterministic, distinct per (family, claim, method, repetition)),
    ``by_scale(quick=..., full=...)`` and ``log(msg)`` (progress line during long runs).
    """

    def __init__(self, claim_id: str, *, scale: str = "quick", device: str = "cpu",
                 out_dir: str | Path | None = None, log: Callable[[str], None] | None = None, seed_family: int = 0):
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
        if not isinstance(seed_family, int) or isinstance(seed_family, bool) or seed_family < 0:
            raise ValueError(f"seed_family={seed_family!r} is invalid; allowed: an integer >= 0")
        self.seed_family = seed_family
        self.claim_id = claim_id
        self.scale = scale
        self.device = device
        self._out_dir = Path(out_dir) if out_dir is not None else None
        self._log = log
        self.config: dict[str, Any] = {}

    @property
    def quick(self) -> bool:
        return self.scale == "quick"

    @property
    def full(self) -> bool:
        return self.scale == "full"

    def by_scale(self, *, quick, full):
        return quick if self.scale == "quick" else full

    @property
    def out_dir(self) -> Path:
        if self._out_dir is None:
            import tempfile
            self._out_dir = Path(tempfile.mkdtemp(prefix=f"sublab-{self.claim_id}-"))
        self._out_dir.mkdir(parents=True, exist_ok=True)
        return self._out_dir

    def seed(self, method: str = "", repetition: int = 0) -> int:
        return derive_seed(self.claim_id, method, repetition, self.seed_family)

    def generator(self, method: str = "", repetition: int = 0, device: str = "cpu"):
        """A fresh ``torch.Generator`` on ``device`` seeded by :meth:`seed`. CPU by default, so a claim draws the
        same numbers whatever ``ctx.device`` is (a CUDA generator's stream differs); move the draws to the device."""
        import torch
        g = torch.Generator(device=device)
        g.manual_seed(self.seed(method, repetition))
        return g

    def rng(self, method: str = "", repetition: int = 0):
        """A fresh ``numpy.random.Generator`` seeded by :meth:`seed`."""
        import numpy as np
        return np.random.default_rng(self.seed(method, repetition))

    def log(self, msg: str) -> None:
        if self._log is not None:
            self._log(f"{self.claim_id}: {msg}")

    def __repr__(self) -> str:
        return (f"Context({self.claim_id!r}, scale={self.scale!r}, device={self.device!r}, "
                f"seed_family={self.seed_family})")


# ---------------------------------------------------------------------------------------------- registry

class NoMatchError(LookupError):
    """``--only`` matched nothing; the message lists every known id."""

    def __init__(self, patterns: Iterable[str], ids: Iterable[str]):
        self.patterns, self.ids = list(patterns), list(ids)
        known = "\n".join(f"  {i}" for i in self.ids) or "  (no claims registered)"
        super().__init__(f"--only {','.join(self.patterns)!r} matches no claim. Known ids:\n{known}")


def _split_patterns(only) -> list[str]:
    if only is None:
        return []
    items = [only] if isinstance(only, str) else list(only)
    return [p.strip() for item in items for p in item.split(",") if p.strip()]


def matches(claim_id: str, pattern: str) -> bool:
    """Glob match; a pattern also selects its dotted children (``sumo`` ~ ``sumo.*``)."""
    return fnmatch.fnmatchcase(claim_id, pattern) or fnmatch.fnmatchcase(claim_id, pattern + ".*")


class Registry:
    """An ordered set of claims.  ``Registry(fns)`` for throwaway claims; :func:`discover` for the package."""

    def __init__(self, claims: Iterable = ()):
        self._claims: dict[str, Claim] = {}
        self.import_errors: dict[str, str] = {}
        for c in claims:
            self.add(c)

    def add(self, obj) -> Claim:
        c = _as_claim(obj)
        old = self._claims.get(c.id)
        if old is not None and old is not c:
            raise ValueError(f"duplicate claim id {c.id!r}: {old.module}.{old.fn.__qualname__} "
                             f"and {c.module}.{c.fn.__qualname__}")
        self._claims[c.id] = c
        return c

    def get(self, claim_id: str) -> Claim:
        try:
            return self._claims[claim_id]
        except KeyError:
            raise NoMatchError([claim_id], self.ids()) from None

    def ids(self) -> list[str]:
        return list(self._claims)

    def select(self, only=None) -> list[Claim]:
        """Claims whose id matches any of the (comma-separated) globs; all if ``only`` is empty."""
        patterns = _split_patterns(only)
        if not patterns:
            return list(self._claims.values())
        chosen = [c for c in self._claims.values() if any(matches(c.id, p) for p in patterns)]
        if not chosen:
            raise NoMatchError(patterns, self.ids())
        return chosen

    def __iter__(self):
        return iter(self._claims.values())

    def __len__(self) -> int:
        return len(self._claims)

    def __contains__(self, claim_id) -> bool:
        return claim_id in self._claims


def discover(package: str = "claims") -> Registry:
    """Import every module of ``package`` (except framework modules and ``_private`` ones) and collect
    the claims they define, in module-name then definition order.  A module that fails to import is
    recorded in ``registry.import_errors`` (module -> traceback) instead of breaking the others."""
    reg = Registry()
    pkg = importlib.import_module(package)
    imported: list[str] = []
    for info in sorted(pkgutil.iter_modules(getattr(pkg, "__path__", [])), key=lambda i: i.name):
        if info.name.startswith("_") or (package == "claims" and info.name in FRAMEWORK_MODULES):
            continue
        name = f"{package}.{info.name}"
        try:
            importlib.import_module(name)
        except Exception:  # a broken paper module must not hide the others
            reg.import_errors[name] = traceback.format_exc()
            continue
        imported.append(name)
    by_module: dict[str, list[Claim]] = {}
    for c in _DEFINED:
        top = c.module if c.module in imported else next(
            (m for m in imported if c.module.startswith(m + ".")), None)
        if top is not None:
            by_module.setdefault(top, []).append(c)
    for name in imported:
        latest: dict[str, Claim] = {}
        for c in by_module.get(name, []):  # a re-imported (reloaded) module redefines its claims: keep the last
            latest[c.id] = c
        for c in latest.values():
            try:
                reg.add(c)
            except ValueError as e:  # same id in two modules: keep the first, report the second
                reg.import_errors[name] = f"ValueError: {e}"
    return reg


_DEFAULT: Registry | None = None


def default_registry(refresh: bool = False) -> Registry:
    """The registry of the ``claims`` package (discovered once per process)."""
    global _DEFAULT
    if _DEFAULT is None or refresh:
        _DEFAULT = discover("claims")
    return _DEFAULT
