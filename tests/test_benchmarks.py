"""`sublab bench` functions on tiny shapes: row schema, ratios recomputed from the rows, exact state accounting,
saved rows. No timing is asserted (machines are shared and noisy)."""
import argparse
import json
import math

import pytest
import torch

import subspace
from analysis import benchmarks as B
from records import read_jsonl


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a loaded 2-core machine, OpenMP barriers turn microsecond ops into milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _check_schema(rows):
    assert rows
    for r in rows:
        assert set(r) == set(B.ROW_KEYS), sorted(set(r) ^ set(B.ROW_KEYS))
        assert isinstance(r["bench"], str) and isinstance(r["method"], str) and isinstance(r["shape"], str)
        assert isinstance(r["metric"], str) and isinstance(r["unit"], str) and isinstance(r["dtype"], str)
        assert isinstance(r["value"], float) and math.isfinite(r["value"]) and r["value"] >= 0
        assert isinstance(r["config"], dict) and r["code_version"]
        assert (r["baseline_method"] is None) == (r["baseline_metric"] is None) == (r["ratio"] is None)
        json.dumps(r, allow_nan=False)  # serialisable as is


def _check_ratios(rows):
    """ratio == value / value of the named baseline row, recomputed here independently of fill_ratios."""
    checked = 0
    for r in rows:
        if r["baseline_method"] is None:
            continue
        base = [b for b in rows if (b["bench"], b["shape"], b["device"], b["method"], b["metric"]) ==
                (r["bench"], r["shape"], r["device"], r["baseline_method"], r["baseline_metric"])]
        assert base, r
        assert len({b["value"] for b in base}) == 1
        assert r["ratio"] == pytest.approx(r["value"] / base[0]["value"], rel=1e-12)
        checked += 1
    assert checked
    return checked


def test_step_time_rows():
    rows = B.bench_step_time(shapes=[(12, 20)], model_layers=1, model_vocab=32, hidden=8, inter=20, rank=4, gap=3,
                             repeats=2, warmup=1, steady_window=2)
    _check_schema(rows)
    _check_ratios(rows)
    methods = {r["method"] for r in rows}
    assert set(subspace.available()) | {B.BASELINE, B.GALORE_TORCH} == methods
    shapes = {r["shape"] for r in rows}
    assert len(shapes) == 2 and "12x20" in shapes
    for s in shapes:
        ours = [r for r in rows if r["shape"] == s and r["method"] == "galore"]
        assert {r["baseline_method"] for r in ours} == {B.BASELINE, B.GALORE_TORCH}
        base = [r for r in rows if r["shape"] == s and r["method"] == B.BASELINE]
        assert base[0]["ratio"] == 1.0
    refreshing = {"galore", "golore", "galore-sgdm", "golore-sgdm", "sumo", "sumo-ns5", "adam-snsm", B.GALORE_TORCH}
    for r in rows:  # a refresh method's window is exactly one period
        assert r["config"]["window"] == (3 if r["config"]["refresh_period"] else 2)
        assert (r["config"]["refresh_period"] is not None) == (r["method"] in refreshing)
        assert len(r["config"]["times_s"]) == 2
    assert "galore / galore-torch" in B.format_step_table(rows)


def test_projector_rows():
    rows = B.bench_projector([(12, 20), (20, 12)], rank=4, repeats=2, warmup=0)
    _check_schema(rows)
    n = _check_ratios(rows)
    names = {r["method"] for r in rows if r["baseline_method"] is None}
    assert {"svd", "rsvd", "basis-gram-f64", "basis-svd-f32", "polar-gram-f64", "polar-svd-f32", "online-pca",
            "ns5-projected-fp32", "ns5-projected-bf16", "ns5-full-fp32", "ns5-full-bf16", "qr-gaussian"} == names
    assert n == 2 * (len(names) - 1)
    for r in rows:  # speed-up rows are t_svd / t_X
        if r["baseline_method"]:
            assert r["method"] == "svd"
    table = B.format_projector_table(rows)
    assert "ns5-full" in table and "12x20" in table


def test_threads_rows_compare_galore_with_galore_torch_at_each_thread_count():
    rows = B.bench_threads((1, 2), rank=4, gap=3, repeats=1)
    _check_schema(rows)
    ratios = [r for r in rows if r["baseline_method"] == B.GALORE_TORCH]
    assert {(r["shape"], r["method"]) for r in ratios} == {
        (f"llama-60m-shapes@{t}thr", m) for t in (1, 2) for m in ("galore", "galore-official")}
    assert all(r["ratio"] > 0 for r in ratios) and "@2thr" in B.format_threads_table(rows)


def test_projector_reference_numbers():
    assert B.OSD_PAPER_SPEEDUP[(4096, 11008)] == {"rtx3090": 58.01, "a100": 142.43}
    assert [B.OSD_PAPER_SPEEDUP[s]["a100"] for s in B.OSD_SHAPES] == [20.71, 57.93, 72.88, 142.43]


def test_state_bytes_exact_and_llama_sizes():
    rows = B.bench_state_bytes(steps=4)
    _check_schema(rows)
    _check_ratios(rows)
    measured = [r for r in rows if r["bench"] == "state_small" and r["metric"] == "state_bytes"]
    assert {r["method"] for r in measured} == set(subspace.available())
    for r in measured:
        assert r["ratio"] == 1.0, (r["method"], r["shape"], r["value"])
    llama = [r for r in rows if r["bench"] == "state_llama"]
    assert {r["shape"] for r in llama} == {f"llama-{s}" for s in B.LLAMA_SIZES}
    for r in llama:
        if r["method"] == "adamw":
            assert r["ratio"] == 1.0
            # AdamW: 2 states per parameter, 2 bytes each
            assert r["value"] == 4 * r["config"]["n_params"]
    galore60 = next(r for r in llama if r["method"] == "galore" and r["shape"] == "llama-60m")
    assert galore60["config"]["rank"] == 128 and galore60["ratio"] < 1.0
    assert "1.00" in B.format_state_table(rows)


def test_llama_shapes_match_reference():
    shapes = B.llama_layer_shapes("60m")
    assert shapes.count((512, 512)) == 4 * 8 and shapes.count((1376, 512)) == 2 * 8
    assert shapes.count((512, 1376)) == 8 and shapes.count((32000, 512)) == 2
    n = sum(math.prod(s) for s in B.llama_layer_shapes("1b"))
    assert 1.3e9 < n < 1.4e9   # LLaMA-1B of the GaLore configs: 1.339e9 parameters


def test_cli_state_only(tmp_path, capsys):
    parser = B.add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--only", "state", "--out", str(tmp_path), "--threads", "1", "--quick"])
    assert B.main(args) == 0
    out = capsys.readouterr().out
    assert "1 threads" in out and "AdamW" in out
    rows = read_jsonl(tmp_path / "state_bytes_cpu.jsonl")
    _check_schema(rows)
    assert parser.parse_args([]).out == "results/bench"


def test_cli_rejects_missing_cuda(capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    args = B.add_arguments(argparse.ArgumentParser()).parse_args(["--device", "cuda"])
    assert B.main(args) == 2
