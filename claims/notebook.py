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
        _display_figure(c.draw, out.rows)
    return out


def _display_figure(draw, rows) -> None:
    """Draw from the rows as saved rows read back, in the shared style, and display the PNG (a Figure made without
    pyplot shows only its repr in a kernel without the inline backend)."""
    import io

    from analysis import plotting
    with plotting.style():
        fig = draw(from_jsonable(to_jsonable(rows)))
    if fig is None:
        return
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plotting.close(fig)
    try:
        from IPython.display import Image, display
    except ImportError:
        return
    display(Image(data=buf.getvalue(), format="png"))
