"""Shared test configuration: hypothesis profiles ("ci" default, "full" for longer runs)."""
import os

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
