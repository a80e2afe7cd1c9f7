"""analysis.memory_bench: measured CPU peak step memory (fresh process) beside the analytic count; step times.
One tiny configuration each (the full grid is a benchmark run, not a test)."""
import math

import pytest

from analysis import memory_bench as B


def test_tiny_per_layer_8bit_peak_agrees_with_the_analytic_count():
    row = B.measure("tiny", "galore", "per-layer+8-bit", steps=1)
    assert row["peak_rss"] >= row["base_rss"] > 0 and row["measured"] > 0
    assert row["agrees"], row
    assert row["state_bytes"] == row["analytic_states"]   # the optimizer's own tensors = subspace.state_bytes


def test_tiny_factorized_peak_agrees_and_adamw_has_no_factorized_row():
    row = B.measure("tiny", "golore", "factorized", steps=1)
    assert row["applicable"] and row["agrees"], row
    assert row["state_bytes"] == row["analytic_states"]   # a factor's state is its W's standard state
    assert row["analytic_grads_refresh"] == row["analytic_grads"] > 0   # golore: no step forms the full gradient
    assert row["analytic_factor"] > 0
    na = B.measure("tiny", "adamw", "factorized")
    assert na["applicable"] is False and "adamw" in na["reason"] and "measured" not in na
    assert "n/a" in B.format_rows([row, na])


def test_step_times_report_ratios_from_one_run_and_name_what_did_not_run():
    rows = B.step_times(("galore:standard", "galore:per-layer+8-bit", "golore:standard", "golore:factorized",
                         "adamw:factorized"), size="tiny", rounds=1)
    by = {r["entry"]: r for r in rows}
    assert by["galore:standard"]["vs_galore:standard"] == 1.0 and by["galore:per-layer+8-bit"]["median_s"] > 0
    assert by["golore:factorized"]["vs_standard"] > 0 and by["golore:standard"]["vs_standard"] == 1.0
    assert "no factorized form" in by["adamw:factorized"]["error"]
    assert "not run" in B.format_times(rows) and not math.isnan(by["golore:factorized"]["vs_galore:standard"])
    with pytest.raises(ValueError, match="mode"):
        B.measure("tiny", "galore", "fused")
