"""Checks every claim test applies to an Outcome (imported by the tests/test_claims_*.py modules)."""
from claims import verdicts as V


def check_outcome(out, measured_keys=(), predicted_keys=(), row_keys=()):
    """The verdict re-derives from its recorded inputs; the named keys are present; rows are long-format with
    integer ``seed`` and ``step``."""
    again = V.recompute(out.verdict)
    assert again == out.verdict and again.reason == out.verdict.reason
    for k in measured_keys:
        assert k in out.measured, k
    for k in predicted_keys:
        assert k in out.predicted, k
    assert out.rows, "a claim returns its rows"
    for r in out.rows:
        for k in ("method", "seed", "step", *row_keys):
            assert k in r, (k, r)
        assert isinstance(r["seed"], int) and isinstance(r["step"], int), r
