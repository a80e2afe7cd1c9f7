"""Shared test configuration: hypothesis profiles ("ci" default, "full" for longer runs), one torch thread, and the
session's claim cache (each claim runs once; the notebooks read its saved results)."""
import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("full", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.getenv("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    """The tests' tensors are small: run them with one torch thread, as the claims runner does (on a shared 2-core
    machine thread hand-offs cost more than the work; tests that measure threading set their own count)."""
    import torch

    torch.set_num_threads(1)


class ClaimCache:
    """Each claim runs once per test session at quick scale, seed family 0: its Outcome is kept for the claim
    tests and saved (record and rows, ``claims.runner.save_outcome``) in ``folder``, which the notebooks read as
    their ``RESULTS`` folder. Outcomes are shared: tests must not modify them."""

    def __init__(self, folder):
        self.folder = folder
        self._outcomes = {}

    def outcome(self, claim_id: str):
        if claim_id not in self._outcomes:
            from claims.registry import default_registry
            from claims.runner import execute, save_outcome

            claim = default_registry().get(claim_id)
            out = execute(claim, scale="quick")
            save_outcome(claim, out, self.folder, config={"scale": "quick", "device": "cpu", "seed_family": 0},
                         figures=False)
            self._outcomes[claim_id] = out
        return self._outcomes[claim_id]

    def outcomes(self, claim_ids) -> dict:
        return {cid: self.outcome(cid) for cid in claim_ids}


@pytest.fixture(scope="session")
def claim_cache(tmp_path_factory):
    return ClaimCache(tmp_path_factory.mktemp("claim-results"))
