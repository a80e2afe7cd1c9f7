"""analysis.memory_bench: measured CPU peak step memory (fresh process) beside the analytic count; step times.
One tiny configuration each (the full grid is a benchmark run, not a test)."""
import pytest

from analysis import memory_bench as B


def test_tiny_per_layer_8bit_peak_agrees_with_the_analytic_count():
    row = B.measure("tiny", "galore", "per-layer+8-bit", steps=1)
    assert row["peak_rss"] >= row["base_rss"] > 0 and row["measured"] > 0
    assert row["agrees"], row
    assert row["state_bytes"] == row["analytic_states"]   # the optimizer's own tensors = subspace.state_bytes


def test_step_times_report_ratios_from_one_run_and_name_what_did_not_run():
    rows = B.step_times(("galore:standard", "galore:per-layer+8-bit"), size="tiny", rounds=1)
    assert rows[0]["vs_galore:standard"] == 1.0 and rows[1]["median_s"] > 0
    with pytest.raises(ValueError, match="mode"):
        B.measure("tiny", "galore", "fused")
