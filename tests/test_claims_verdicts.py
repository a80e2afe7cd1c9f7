"""The one table of expected verdicts: every registered claim at quick scale, seed family 0, run once per test
session through the ``claim_cache`` fixture (tests/conftest.py) that the per-paper claim tests and the notebooks
read too. A changed verdict fails here, with the claim's reason; the per-paper modules test the numbers.

The timing claims (``osd.fig2``, ``golore.complexity``) decide from measured speedups far from 1 on this
machine class; their modules also check that the verdict follows from the timings."""
import pytest

from claims import verdicts as V
from claims.registry import default_registry

EXPECTED = {
    "galore.lemma3.3": "violated",
    "galore.lemma3.3-rectangular": "holds",
    "galore.low-rank-gradients": "inconclusive",
    "galore.memory-7b-24gb": "holds",
    "galore.table2-memory": "violated",
    "galore.thm3.8": "violated",
    "galore.thm3.8-corrected": "holds",
    "golore.complexity": "holds",
    "golore.counterexample": "holds",
    "golore.hybrid": "holds",
    "golore.lemma5": "holds",
    "golore.memory-arithmetic": "holds",
    "golore.noise-dominates": "holds",
    "golore.prop1": "holds",
    "golore.thm2": "holds",
    "golore.thm3": "holds",
    "golore.thm4": "holds",
    "muon.ns5-band": "holds",
    "osd.adam-a-below-b4": "holds",
    "osd.fig2": "holds",
    "osd.fig3": "holds",
    "osd.online-pca": "holds",
    "osd.online-pca-stationarity": "violated",
    "osd.thm4.5": "holds",
    "sm.convergence": "holds",
    "sn.memory": "holds",
    "sn.rates": "holds",
    "snsm.memory-1b": "violated",
    "snsm.memory-1b-excl-basis": "holds",
    "snsm.state-reduction": "violated",
    "sumo.fig1": "inconclusive",
    "sumo.fig2": "inconclusive",
    "sumo.lemma3.1": "holds",
    "sumo.lemma3.2": "holds",
    "sumo.lemma3.2-corrected": "holds",
    "sumo.lemma3.2-proof-reading": "violated",
    "sumo.lemma3.3": "violated",
    "sumo.memory-reduction": "violated",
    "sumo.moment-rank": "inconclusive",
    "sumo.remark3.7": "violated",
    "sumo.svd-vs-ns5": "inconclusive",
    "sumo.table1": "holds",
    "sumo.table3-memory": "holds",
    "sumo.thm3.8": "holds",
}


def test_the_table_names_every_registered_claim():
    assert sorted(EXPECTED) == sorted(default_registry().ids())


@pytest.mark.parametrize("claim_id", sorted(EXPECTED))
def test_quick_verdict(claim_cache, claim_id):
    out = claim_cache.outcome(claim_id)
    assert out.verdict == EXPECTED[claim_id], out.reason
    assert V.recompute(out.verdict) == out.verdict
