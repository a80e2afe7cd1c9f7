"""The claim framework: verdict rules, registry and discovery, seeds, the runner's files, figures."""
from __future__ import annotations

import json
import math
import os
import pickle
import sys
import textwrap

import numpy as np
import pytest
import torch

from claims import runner
from claims import verdicts as V
from claims.registry import (Context, NoMatchError, Outcome, Registry, claim, derive_seed, discover)


# ---------------------------------------------------------------------------------------------- helpers

def make_claim(cid, *, verdict=lambda: V.upper_bound(0.5, 1.0), calls=None, rows=None, exc=None, draw=False):
    """A throwaway claim (never shipped in claims/)."""

    @claim(id=cid, kind="paper", paper="Toy", statement=f"toy statement {cid}", source="test suite")
    def fn(ctx):
        if calls is not None:
            calls.append(cid)
        if exc is not None:
            raise exc
        rs = rows if rows is not None else [
            {"method": m, "seed": ctx.seed(m, r), "step": t, "loss": (1 + r) / (t + 1)}
            for m in ("galore", "golore") for r in range(2) for t in range(4)]
        ctx.config["lr"] = 0.5
        return Outcome(measured={"x": 0.5}, predicted={"bound": 1.0}, verdict=verdict(), rows=rs)

    if draw:
        @fn.figure
        def _draw(rows):
            from analysis import plotting as P
            fig, ax = P.new_figure()
            for m, (x, y) in P.series(rows, x="step", y="loss").items():
                P.plot_measured(ax, x, y, m)
            return fig
    return fn


def no_temp_files(folder):
    return [p for p in folder.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


# ---------------------------------------------------------------------------------------------- verdict rules

@pytest.mark.parametrize("rtol,atol", [(0.0, 0.0), (1e-3, 0.0), (0.0, 1e-6), (0.1, 0.01)])
def test_upper_bound_at_and_beyond_tolerance(rtol, atol):
    bound = 2.0
    limit = bound + rtol * bound + atol
    assert V.upper_bound(limit, bound, rtol=rtol, atol=atol) == "holds"
    assert V.upper_bound(limit * (1 + 1e-9) + 1e-12, bound, rtol=rtol, atol=atol) == "violated"
    assert V.upper_bound(-5.0, bound, rtol=rtol, atol=atol) == "holds"


def test_upper_bound_arrays_report_worst_point():
    v = V.upper_bound([0.1, 0.5, 1.3, 0.9], [1.0, 1.0, 1.0, 1.0])
    assert v == "violated" and "1/4" in v.reason and "index 2" in v.reason
    v = V.upper_bound(np.array([0.1, 0.99]), 1.0)
    assert v == "holds" and "0.99" in v.reason
    assert V.upper_bound(5.0, math.inf) == "holds"
    assert V.upper_bound([0.1, math.nan], 1.0) == "inconclusive"


def test_lower_bound_at_and_beyond_tolerance():
    assert V.lower_bound(0.99, 1.0, rtol=0.01) == "holds"
    assert V.lower_bound(0.99 - 1e-9, 1.0, rtol=0.01) == "violated"
    assert V.lower_bound([2, 3], [1, 3]) == "holds"
    assert V.lower_bound(math.nan, 1.0) == "inconclusive"


def test_close_to_is_relative_and_absolute():
    assert V.close_to(1.001, 1.0, rtol=1e-3) == "holds"
    assert V.close_to(1.0011, 1.0, rtol=1e-3) == "violated"
    assert V.close_to(1e-9, 0.0, rtol=1e-3, atol=1e-8) == "holds"
    assert V.close_to(2e-8, 0.0, rtol=1e-3, atol=1e-8) == "violated"
    assert V.close_to([1.0, 2.0], [1.0, 2.0], rtol=0) == "holds"
    assert V.close_to(math.inf, math.inf, rtol=0) == "holds"


def test_within_ci_and_width():
    assert V.within_ci(-0.5, -0.6, -0.4) == "holds"
    assert V.within_ci(-0.6, -0.6, -0.4) == "holds"  # closed interval
    assert V.within_ci(-0.61, -0.6, -0.4) == "violated"
    assert V.within_ci(-0.5, -2.0, 1.0, max_width=1.0) == "inconclusive"
    assert V.within_ci(math.nan, 0, 1) == "inconclusive"
    assert "95% CI" in V.within_ci(0.5, 0, 1, level=0.95).reason
    with pytest.raises(ValueError):
        V.within_ci(0.0, 1.0, -1.0)


def test_ci_sides_are_three_valued():
    assert V.ci_at_most(-0.9, -0.6, -0.5) == "holds"
    assert V.ci_at_most(-0.6, -0.4, -0.5) == "inconclusive"
    assert V.ci_at_most(-0.4, -0.1, -0.5) == "violated"
    assert V.ci_at_least(1.1, 1.3, 1.0) == "holds"
    assert V.ci_at_least(0.5, 0.9, 1.0) == "violated"
    assert V.ci_at_least(0.9, 1.1, 1.0) == "inconclusive"


def test_interval_contains():
    assert V.interval_contains(0.7, 1.2, [0.7, 1.0, 1.2]) == "holds"
    v = V.interval_contains(0.7, 1.2, [0.69, 1.0, 1.3])
    assert v == "violated" and "2/3" in v.reason
    assert V.interval_contains(0.7, 1.2, [0.69], atol=0.02) == "holds"
    assert V.interval_contains(0.7, 1.2, []) == "inconclusive"


def test_ordering_significant_three_outcomes():
    rng = np.random.default_rng(0)
    low, high = 1.0 + 0.01 * rng.standard_normal(5), 2.0 + 0.01 * rng.standard_normal(5)
    assert V.ordering_significant(low, high) == "holds"
    assert V.ordering_significant(high, low) == "violated"
    assert V.ordering_significant(high, low, lower_is_better=False) == "holds"
    noisy = 1.0 + rng.standard_normal(5)
    assert V.ordering_significant(noisy, noisy + 0.01) == "inconclusive"
    assert V.ordering_significant([1.0], [2.0]) == "inconclusive"  # too few seeds
    assert V.ordering_significant([1.0, 1.0], [2.0, 2.0]) == "holds"  # zero variance: exact comparison
    assert V.ordering_significant([1, 2, 3], [1.5, 2.5, 3.5], paired=True) == "holds"
    v = V.ordering_significant(low, high)
    assert "p=" in v.reason and v.inputs["p_claim"] < 0.05


def test_all_of_provided_error():
    h, x, i = V.upper_bound(0, 1), V.upper_bound(2, 1), V.within_ci(0, -5, 5, max_width=1)
    assert V.all_of(h, h) == "holds"
    assert V.all_of(h, i) == "inconclusive"
    assert V.all_of(h, i, x) == "violated"
    assert V.all_of([h, h]) == "holds"
    assert V.provided(False, "1 - eta*lambda_1 > beta", x) == "inconclusive"
    assert V.provided(True, "precondition", x) == "violated"
    assert V.error(ValueError("boom\nsecond line")) == "inconclusive"
    assert "ValueError: boom" in V.error(ValueError("boom")).reason
    with pytest.raises(TypeError):
        V.all_of(h, "holds")


def test_every_rule_gives_a_one_line_reason_and_recomputes():
    verdicts = [V.upper_bound([1, 2], 1.5), V.lower_bound(3, 1), V.close_to(1, 1.1, rtol=0.01),
                V.within_ci(0, -1, 1), V.ci_at_most(0, 1, 2), V.interval_contains(0, 1, np.linspace(0, 1, 100)),
                V.ordering_significant([1, 1.1, 0.9], [2, 2.1, 1.9]),
                V.all_of(V.upper_bound(0, 1), V.provided(False, "pre", V.lower_bound(0, 1)))]
    for v in verdicts:
        assert v.value in V.VERDICTS and v.reason and "\n" not in v.reason
        assert V.recompute(v) == v and V.recompute(v).reason == v.reason
        assert pickle.loads(pickle.dumps(v)).reason == v.reason
        json.dumps(runner.to_jsonable(v.as_dict()), allow_nan=False)


def test_rules_accept_tensors():
    assert V.upper_bound(torch.tensor([0.5, 0.9]), torch.tensor(1.0)) == "holds"
    assert V.close_to(torch.tensor(1.0, dtype=torch.float64), 1.0, rtol=0) == "holds"


def test_outcome_refuses_literal_verdicts():
    with pytest.raises(TypeError, match="claims.verdicts"):
        Outcome(measured={}, predicted={}, verdict="holds")
    with pytest.raises(TypeError):
        Outcome(measured=[], predicted={}, verdict=V.upper_bound(0, 1))
    with pytest.raises(TypeError):
        Outcome(measured={}, predicted={}, verdict=V.upper_bound(0, 1), rows=[1, 2])
    with pytest.raises(ValueError):
        V.Verdict("fine", "reason", "rule")


# ---------------------------------------------------------------------------------------------- registry

def test_decorator_and_registry():
    a, b = make_claim("toy.alpha"), make_claim("toy.beta.one")
    assert a.claim.id == "toy.alpha" and callable(a.figure) and a.claim.draw is None
    reg = Registry([a, b])
    assert reg.ids() == ["toy.alpha", "toy.beta.one"] and "toy.alpha" in reg and len(reg) == 2
    assert [c.id for c in reg.select("toy.b*")] == ["toy.beta.one"]
    assert [c.id for c in reg.select("toy.beta")] == ["toy.beta.one"]  # dotted prefix
    assert [c.id for c in reg.select(["toy.alpha,toy.beta.one"])] == ["toy.alpha", "toy.beta.one"]
    with pytest.raises(NoMatchError) as e:
        reg.select("nothing*")
    assert "toy.alpha" in str(e.value) and "toy.beta.one" in str(e.value)
    with pytest.raises(ValueError, match="duplicate"):
        reg.add(make_claim("toy.alpha"))
    for bad in ("Toy.Upper", "toy/x", "", "toy.", "toy x"):
        with pytest.raises(ValueError):
            claim(id=bad, kind="paper", paper="p", statement="s", source="s")
    with pytest.raises(ValueError):
        claim(id="toy.ok", kind="paper", paper="p", statement=" ", source="s")
    with pytest.raises(ValueError, match="kind"):
        claim(id="toy.ok", kind="guess", paper="p", statement="s", source="s")


def test_discovery_imports_every_paper_module(tmp_path, monkeypatch):
    pkg = tmp_path / "toypkg_discovery"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "alpha.py").write_text(textwrap.dedent('''
        from claims.registry import claim, Outcome
        from claims import verdicts as V

        @claim(id="alpha.second", kind="paper", paper="A", statement="s", source="src")
        def second(ctx):
            return Outcome({}, {}, V.upper_bound(0, 1))

        @claim(id="alpha.first", kind="paper", paper="A", statement="s", source="src")
        def first(ctx):
            return Outcome({}, {}, V.upper_bound(0, 1))
    '''))
    (pkg / "beta.py").write_text("from toypkg_discovery.alpha import first  # re-export, not a new claim\n")
    (pkg / "broken.py").write_text("raise RuntimeError('half-written module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        reg = discover("toypkg_discovery")
        assert reg.ids() == ["alpha.second", "alpha.first"]  # definition order
        assert list(reg.import_errors) == ["toypkg_discovery.broken"]
        assert "half-written" in reg.import_errors["toypkg_discovery.broken"]
    finally:
        for m in [m for m in sys.modules if m.startswith("toypkg_discovery")]:
            del sys.modules[m]


def test_package_discovery_skips_framework_modules():
    reg = discover("claims")
    assert not any(m.split(".")[-1] in ("registry", "verdicts", "runner", "cli") for m in reg.import_errors)
    for c in reg:
        assert c.id == c.id.lower() and c.statement and c.source


# ---------------------------------------------------------------------------------------------- seeds

def test_seeds_deterministic_and_distinct():
    a, b = Context("golore.lemma5"), Context("golore.lemma5", scale="full")
    assert a.seed("galore", 0) == b.seed("galore", 0) == derive_seed("golore.lemma5", "galore", 0)
    seeds = {a.seed(m, r) for m in ("galore", "golore", "sumo", "") for r in range(20)}
    assert len(seeds) == 80
    assert Context("other.claim").seed("galore", 0) != a.seed("galore", 0)
    assert all(0 <= s < 2 ** 63 for s in seeds)
    assert derive_seed("x.y", "m", 3) == 1896956161240907292  # stable across versions and machines
    assert derive_seed("x.y", "m", 3, family=0) == 1896956161240907292
    assert len({Context("x.y", seed_family=f).seed("m", 3) for f in range(4)}) == 4
    t1 = torch.randn(4, generator=a.generator("galore", 1))
    t2 = torch.randn(4, generator=b.generator("galore", 1))
    t3 = torch.randn(4, generator=a.generator("galore", 2))
    assert torch.equal(t1, t2) and not torch.equal(t1, t3)
    assert np.array_equal(a.rng("m", 0).random(3), b.rng("m", 0).random(3))
    assert a.by_scale(quick=1, full=2) == 1 and b.by_scale(quick=1, full=2) == 2
    with pytest.raises(ValueError):
        Context("x.y", scale="huge")


# ---------------------------------------------------------------------------------------------- runner

def test_run_writes_records_rows_report_and_json(tmp_path):
    reg = Registry([make_claim("toy.holds"), make_claim("toy.violated", verdict=lambda: V.upper_bound(2, 1)),
                    make_claim("toy.raises", exc=ValueError("bad input")), make_claim("toy.after")])
    out, doc_path = tmp_path / "res", tmp_path / "doc" / "verify.json"
    s = runner.run(reg, out=out, json_path=doc_path, stream=None)
    assert s.ran == ["toy.holds", "toy.violated", "toy.raises", "toy.after"] and s.errors == ["toy.raises"]
    doc = json.loads(doc_path.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON {c}"))
    assert set(doc) == {"claims", "environment"}
    for entry in doc["claims"]:
        assert list(entry) == ["id", "paper", "kind", "statement", "verdict", "margin", "measured", "predicted", "detail",
                               "figure"]
        assert entry["verdict"] in ("holds", "violated", "inconclusive")
    by_id = {e["id"]: e for e in doc["claims"]}
    assert by_id["toy.holds"]["verdict"] == "holds" and by_id["toy.violated"]["verdict"] == "violated"
    err = by_id["toy.raises"]
    assert err["verdict"] == "inconclusive" and "ValueError: bad input" in err["detail"]
    assert "in fn" in err["detail"]  # traceback summary: where it raised
    assert by_id["toy.after"]["verdict"] == "holds"  # the run went on
    env = doc["environment"]
    for k in ("python", "torch", "numpy", "platform", "cpu_count", "device", "git_commit", "scale", "date"):
        assert k in env
    assert env["scale"] == "quick" and env["device"] == "cpu"
    rec = runner.load_record(out / "claims" / "toy.raises.json")
    assert rec["error"] and "Traceback" in rec["traceback"]
    rows = runner.load_rows(out / "rows" / "toy.holds.jsonl")
    assert len(rows) == 16
    for r in rows:
        assert r["claim"] == "toy.holds" and r["method"] in ("galore", "golore") and isinstance(r["seed"], int)
        assert r["config"] == {"scale": "quick", "device": "cpu", "seed_family": 0, "lr": 0.5}
        assert r["code_version"] == env["code_version"] and "step" in r
    report = (out / "report.md").read_text()
    assert "| id | paper | kind | verdict | margin |" in report and "toy.violated" in report and "**violated**" in report
    assert no_temp_files(out) == []


def test_nonfinite_numbers_round_trip(tmp_path):
    rows = [{"method": "galore", "seed": 1, "step": 0, "loss": math.inf},
            {"method": "galore", "seed": 1, "step": 1, "loss": math.nan},
            {"method": "galore", "seed": 1, "step": 2, "loss": np.float32(0.5), "vec": np.arange(3)}]

    @claim(id="toy.nonfinite", kind="paper", paper="Toy", statement="s", source="s")
    def fn(ctx):
        return Outcome({"steps_to_target": math.inf, "t": torch.tensor([1.0, 2.0])}, {"gap": np.float64(0.1)},
                       V.upper_bound(0, 1), rows=rows)

    runner.run([fn], out=tmp_path, json_path=tmp_path / "d.json", stream=None)
    json.loads((tmp_path / "rows" / "toy.nonfinite.jsonl").read_text().splitlines()[1],
               parse_constant=lambda c: pytest.fail("NaN literal in JSONL"))
    back = runner.load_rows(tmp_path / "rows" / "toy.nonfinite.jsonl")
    assert back[0]["loss"] == math.inf and math.isnan(back[1]["loss"]) and back[2]["vec"] == [0, 1, 2]
    rec = runner.load_record(tmp_path / "claims" / "toy.nonfinite.json")
    assert rec["measured"] == {"steps_to_target": math.inf, "t": [1.0, 2.0]} and rec["predicted"] == {"gap": 0.1}


def test_interrupt_keeps_finished_claims_and_resume_skips_them(tmp_path):
    calls = []
    first = [make_claim("toy.one", calls=calls), make_claim("toy.two", calls=calls),
             make_claim("toy.three", calls=calls, exc=KeyboardInterrupt())]
    with pytest.raises(KeyboardInterrupt):
        runner.run(first, out=tmp_path, stream=None)
    assert sorted(p.name for p in (tmp_path / "claims").iterdir()) == ["toy.one.json", "toy.two.json"]
    assert not (tmp_path / "rows" / "toy.three.jsonl").exists()
    assert no_temp_files(tmp_path) == []
    for name in ("toy.one", "toy.two"):  # complete, valid files
        assert runner.load_record(tmp_path / "claims" / f"{name}.json")["verdict"] == "holds"
    calls.clear()
    again = [make_claim("toy.one", calls=calls), make_claim("toy.two", calls=calls),
             make_claim("toy.three", calls=calls)]
    s = runner.run(again, out=tmp_path, resume=True, stream=None)
    assert calls == ["toy.three"] and s.skipped == ["toy.one", "toy.two"] and s.ran == ["toy.three"]
    assert [r["id"] for r in s.records] == ["toy.one", "toy.two", "toy.three"]
    calls.clear()
    runner.run(again, out=tmp_path, resume=True, scale="full", stream=None)  # other scale: not finished
    assert calls == ["toy.one", "toy.two", "toy.three"]


def test_resume_reruns_claims_that_raised(tmp_path):
    calls = []
    runner.run([make_claim("toy.flaky", exc=RuntimeError("x"))], out=tmp_path, stream=None)
    s = runner.run([make_claim("toy.flaky", calls=calls)], out=tmp_path, resume=True, stream=None)
    assert calls == ["toy.flaky"] and s.records[0]["verdict"] == "holds"


def test_crash_during_a_write_leaves_no_partial_file(tmp_path, monkeypatch):
    real_replace = os.replace

    def crash_on_two(src, dst):
        if str(dst).endswith("toy.two.json"):
            raise KeyboardInterrupt  # simulated kill between writing the temp file and renaming it
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_two)
    with pytest.raises(KeyboardInterrupt):
        runner.run([make_claim("toy.one"), make_claim("toy.two")], out=tmp_path, stream=None)
    monkeypatch.setattr(os, "replace", real_replace)
    assert (tmp_path / "claims" / "toy.one.json").exists()
    assert not (tmp_path / "claims" / "toy.two.json").exists()
    assert no_temp_files(tmp_path) == []
    calls = []
    s = runner.run([make_claim("toy.one", calls=calls), make_claim("toy.two", calls=calls)],
                   out=tmp_path, resume=True, stream=None)
    assert calls == ["toy.two"] and s.skipped == ["toy.one"]


def test_progress_lines_and_table(tmp_path, capsys):
    import io
    buf = io.StringIO()
    runner.run([make_claim("toy.p1"), make_claim("toy.p2", verdict=lambda: V.upper_bound(3, 1))],
               out=tmp_path, stream=buf)
    text = buf.getvalue()
    assert "[1/2] toy.p1" in text and "[2/2] toy.p2" in text and " s " in text
    assert "measured" in text and "predicted" in text and "1 holds, 1 violated" in text


def test_execute_returns_outcome_and_checks_type():
    out = runner.execute(make_claim("toy.exec"), scale="quick")
    assert out.verdict == "holds" and V.recompute(out.verdict) == out.verdict

    @claim(id="toy.not-outcome", kind="paper", paper="Toy", statement="s", source="s")
    def bad(ctx):
        return {"verdict": "holds"}

    with pytest.raises(TypeError):
        runner.execute(bad)


def test_only_matching_nothing_is_an_error(tmp_path):
    with pytest.raises(NoMatchError, match="toy.listed"):
        runner.run([make_claim("toy.listed")], only="zzz*", out=tmp_path, stream=None)


# ---------------------------------------------------------------------------------------------- figures

def test_figures_saved_and_redrawn_from_rows_without_rerunning(tmp_path):
    calls = []
    fn = make_claim("toy.fig", calls=calls, draw=True)
    s = runner.run([fn, make_claim("toy.nofig")], out=tmp_path, json_path=tmp_path / "d.json", stream=None)
    rec = s.records[0]
    assert rec["figure"] == "figures/toy.fig.png" and s.records[1]["figure"] is None
    png, pdf = tmp_path / "figures" / "toy.fig.png", tmp_path / "figures" / "toy.fig.pdf"
    assert png.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")
    assert json.loads((tmp_path / "d.json").read_text())["claims"][0]["figure"] == "figures/toy.fig.png"
    png.unlink(), pdf.unlink()
    drawn = runner.redraw(tmp_path, [fn], stream=None)
    assert calls == ["toy.fig"]  # drawn from rows, experiment not rerun
    assert list(drawn) == ["toy.fig"] and png.exists() and pdf.exists()
    gallery = tmp_path / "gallery"
    runner.redraw(tmp_path, [fn], out=tmp_path / "elsewhere", gallery=gallery, stream=None)
    assert (tmp_path / "elsewhere" / "toy.fig.png").exists() and (gallery / "toy.fig.png").exists()
    assert no_temp_files(tmp_path) == []


def test_figure_failure_does_not_lose_the_result(tmp_path):
    fn = make_claim("toy.badfig")
    fn.figure(lambda rows: 1 / 0)
    s = runner.run([fn], out=tmp_path, stream=None)
    assert s.records[0]["verdict"] == "holds" and s.records[0]["figure"] is None
    assert "figure failed" in s.records[0]["detail"]


def test_plotting_style_and_colours(tmp_path):
    from analysis import plotting as P
    names = ["adamw", "galore", "golore", "sumo", "sumo-ns5", "muon", "osd", "adam-sn", "adam-snsm", "full",
             "large-batch"]
    colours = [P.method_color(n) for n in names]
    assert len(set(colours)) == len(names)
    assert P.method_color("golore@20%") == P.method_color("GoLore") == P.method_color("golore_sgd")
    assert P.method_color("sumo-ns5-sgd") == P.method_color("sumo-ns5") != P.method_color("sumo")
    assert P.method_color("unknown-x") == P.method_color("unknown-x")
    assert P.method_label("golore@20%") == "GoLore@20%" and P.method_label("sumo-ns5") == "SUMO (NS5)"
    assert P.sort_methods(["zzz", "golore", "adamw"]) == ["adamw", "golore", "zzz"]
    assert P.figsize(1)[0] == P.ONE_COLUMN and P.figsize(2)[0] == P.TWO_COLUMN
    fig, ax = P.new_figure(columns=2)
    m = P.plot_measured(ax, [1, 2], [1, 2], "galore")
    t = P.plot_theory(ax, [1, 2], [1, 1.5], "galore")
    P.confidence_band(ax, [1, 2], [0.5, 1], [1.5, 3], "galore")
    assert t.get_linestyle() == "--" and t.get_zorder() > m.get_zorder() and m.get_color() == P.method_color("galore")
    paths = P.save_figure(fig, tmp_path / "sub" / "f")
    assert [p.name for p in paths] == ["f.png", "f.pdf"] and all(p.exists() for p in paths)
    assert no_temp_files(tmp_path) == []
    mean, lo, hi = P.mean_ci([[1.0, 2.0], [3.0, 4.0], [2.0, 3.0]])
    assert np.allclose(mean, [2.0, 3.0]) and np.all(lo < mean) and np.all(hi > mean)
    st = P.series_stats([{"method": "a", "seed": s, "step": t, "y": t + s} for s in range(3) for t in range(4)],
                        x="step", y="y")
    assert np.allclose(st["a"][1], [1, 2, 3, 4])


def test_full_scale_on_the_cpu_leaves_out_gpu_claims_unless_named(tmp_path):
    calls = []
    cpu, gpu = make_claim("toy.cpu", calls=calls), make_claim("toy.gpu", calls=calls)
    gpu.claim.gpu_at_full = True
    s = runner.run([cpu, gpu], scale="full", out=tmp_path / "a", stream=None)
    assert calls == ["toy.cpu"] and s.needs_gpu == ["toy.gpu"] and s.ran == ["toy.cpu"]
    s = runner.run([cpu, gpu], scale="full", out=tmp_path / "b", only="toy.gpu", stream=None)
    assert calls[-1] == "toy.gpu" and s.needs_gpu == []
    s = runner.run([cpu, gpu], scale="quick", out=tmp_path / "c", stream=None)
    assert s.needs_gpu == [] and calls[-2:] == ["toy.cpu", "toy.gpu"]


def test_a_claim_cannot_overwrite_the_runs_own_config_keys(tmp_path):
    @claim(id="toy.clobbers", kind="paper", paper="Toy", statement="s", source="s")
    def fn(ctx):
        ctx.config["scale"] = 2.0  # e.g. GaLore's projection scale under the run's key
        return Outcome({"x": 0.5}, {"bound": 1.0}, V.upper_bound(0.5, 1.0), rows=[{"method": "m", "seed": 0, "step": 0}])

    s = runner.run([fn], out=tmp_path, stream=None)
    rec = s.records[0]
    assert rec["error"] and rec["scale"] == "quick" and "runner owns: ['scale']" in rec["detail"]
