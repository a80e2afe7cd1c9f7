"""A verdict is a property of a claim, not of a seed: the quick scale at three seed families gives the same verdicts.

Slow (the whole quick scale three times, ~10 min on 2 cores): ``pytest -m slow tests/test_seed_families.py``. The
default suite checks the cheapest claims of each paper module at families 0 and 1 (tests/test_claims_*.py).
"""
import pytest

from claims import runner
from claims.registry import default_registry


@pytest.mark.slow
def test_quick_scale_verdicts_are_identical_at_three_seed_families(tmp_path):
    verdicts = {}
    for family in (0, 1, 2):
        summary = runner.run(default_registry(), scale="quick", out=tmp_path / f"family{family}", figures=False,
                             stream=None, seed_family=family)
        verdicts[family] = {r["id"]: r["verdict"] for r in summary.records}
    moved = {cid: [verdicts[f][cid] for f in (0, 1, 2)] for cid in verdicts[0]
             if len({verdicts[f][cid] for f in (0, 1, 2)}) > 1}
    assert not moved, f"verdicts that depend on the seed family: {moved}"
