"""Notebook helpers: run one claim, show its numbers and its figure inline (the notebooks stay thin wrappers)."""
from __future__ import annotations

import json

from .registry import Outcome, default_registry
from .runner import execute, from_jsonable, load_outcome, margin_text, to_jsonable
from .verdicts import margin

__all__ = ["show", "statement"]


def statement(claim_id: str) -> str:
    """The claim's statement and source, as registered."""
    c = default_registry().get(claim_id)
    return f"{c.id} ({c.source}): {c.statement}"


def show(claim_id: str, scale: str = "quick", results: str | None = None, device: str = "cpu",
         figure: bool = True) -> Outcome:
    """Print ``claim_id``'s statement, measured, predicted, kind, verdict, margin and reason and draw its figure.

    ``results`` names an output folder of ``sublab verify`` (e.g. ``"results/quick"``): the claim's saved record
    and rows at ``scale`` are shown without re-running it; None, or a folder without that record, runs the claim
    here. The expected verdicts are asserted in tests/test_claims_*.py, not here."""
    c = default_registry().get(claim_id)
    saved = load_outcome(results, claim_id, scale=scale) if results is not None else None
    if saved is None:
        out = execute(c, scale=scale, device=device)
        decided = margin_text({"margin": margin(out.verdict)})
    else:
        out, record = saved
        decided = margin_text(record)
        print(f"(saved record from {results})")
    print(statement(claim_id))
    for label, values in (("measured", out.measured), ("predicted", out.predicted)):
        print(f"{label:>9}: {json.dumps(to_jsonable(values), default=str)[:600]}")
    print(f"  verdict: {out.verdict} ({c.kind} claim{'; margin ' + decided if decided else ''})  ({out.reason})")
    if out.detail:
        print(f"   detail: {out.detail[:600]}")
    if figure and c.draw is not None and out.rows:
        from analysis import plotting
        with plotting.style():
            fig = c.draw(from_jsonable(to_jsonable(out.rows)))  # exactly what saved rows give
        if fig is not None:
            try:
                from IPython.display import display
                display(fig)
            except ImportError:
                pass
            plotting.close(fig)
    return out
