"""The `sublab` command line: subcommands, exit codes, delegation, figures from saved rows."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from claims import cli
from claims import verdicts as V
from claims.registry import Outcome, Registry, claim

ROOT = Path(__file__).resolve().parents[1]


def toy_registry(calls=None, interrupt_at=None):
    """Throwaway claims: one holds, one violated, one with a figure (none shipped in claims/)."""

    def make(cid, value, bound, with_figure=False):
        @claim(id=cid, kind="paper", paper="Toy", statement=f"{cid}: value <= bound", source="tests/test_cli.py")
        def fn(ctx):
            if calls is not None:
                calls.append(cid)
            if cid == interrupt_at:
                raise KeyboardInterrupt
            rows = [{"method": "golore", "seed": ctx.seed("golore", r), "step": t, "loss": value / (t + 1)}
                    for r in range(2) for t in range(3)]
            return Outcome({"value": value}, {"bound": bound}, V.upper_bound(value, bound), rows=rows)

        if with_figure:
            @fn.figure
            def _draw(rows):
                from analysis import plotting as P
                fig, ax = P.new_figure()
                for m, (x, y) in P.series(rows, "step", "loss").items():
                    P.plot_measured(ax, x, y, m)
                return fig
        return fn

    return Registry([make("toy.cli.holds", 0.5, 1.0), make("toy.cli.violated", 2.0, 1.0),
                     make("toy.cli.figure", 0.1, 1.0, with_figure=True)])


def test_list(capsys):
    assert cli.main(["list"], registry=toy_registry()) == 0
    out = capsys.readouterr().out
    assert "toy.cli.holds" in out and "value <= bound" in out
    assert cli.main(["list", "--json", "--only", "toy.cli.f*"], registry=toy_registry()) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["id"] for e in listed] == ["toy.cli.figure"] and listed[0]["figure"] is True


def test_verify_exit_zero_with_violations_and_json(tmp_path, capsys):
    doc = tmp_path / "verify.json"
    rc = cli.main(["verify", "--scale", "quick", "--out", str(tmp_path / "r"), "--json", str(doc),
                   "--only", "toy.cli.holds,toy.cli.violated"], registry=toy_registry())
    assert rc == 0  # a violated claim is a result, not a failure
    out = capsys.readouterr().out
    assert "[1/2] toy.cli.holds" in out and "violated" in out
    d = json.loads(doc.read_text())
    assert [(c["id"], c["verdict"]) for c in d["claims"]] == [("toy.cli.holds", "holds"),
                                                               ("toy.cli.violated", "violated")]
    assert d["environment"]["scale"] == "quick"
    assert (tmp_path / "r" / "report.md").exists()


def test_only_without_match_lists_ids(tmp_path, capsys):
    rc = cli.main(["verify", "--only", "nope*", "--out", str(tmp_path)], registry=toy_registry())
    assert rc == 2
    err = capsys.readouterr().err
    assert "matches no claim" in err and "toy.cli.holds" in err and "toy.cli.figure" in err
    assert not (tmp_path / "claims").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is absent")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["verify", "--device", "cuda", "--out", str(tmp_path)], registry=toy_registry()) == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert cli.main(["verify", "--device", "tpu", "--out", str(tmp_path)], registry=toy_registry()) == 2


def test_usage_errors(capsys):
    assert cli.main([]) == 2
    assert cli.main(["verify", "--scale", "huge"], registry=toy_registry()) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["--help"]) == 0
    assert "verify" in capsys.readouterr().out


def test_interrupt_then_resume(tmp_path, capsys):
    calls = []
    out = tmp_path / "r"
    rc = cli.main(["verify", "--out", str(out)], registry=toy_registry(calls, interrupt_at="toy.cli.figure"))
    assert rc == 130 and "--resume" in capsys.readouterr().err
    assert sorted(p.name for p in (out / "claims").glob("*.json")) == ["toy.cli.holds.json", "toy.cli.violated.json"]
    calls.clear()
    assert cli.main(["verify", "--out", str(out), "--resume", "--no-figures"], registry=toy_registry(calls)) == 0
    assert calls == ["toy.cli.figure"]
    assert "finished earlier, skipped" in capsys.readouterr().out


def test_strict_flags_errors(tmp_path):
    @claim(id="toy.cli.raises", kind="paper", paper="Toy", statement="s", source="s")
    def raises(ctx):
        raise RuntimeError("broken experiment")

    reg = Registry([raises])
    assert cli.main(["verify", "--quiet", "--out", str(tmp_path)], registry=reg) == 0
    assert cli.main(["verify", "--quiet", "--strict", "--out", str(tmp_path)], registry=reg) == 1


def test_figures_redrawn_from_saved_rows(tmp_path, capsys):
    calls = []
    res = tmp_path / "r"
    assert cli.main(["verify", "--quiet", "--out", str(res), "--only", "toy.cli.figure"],
                    registry=toy_registry(calls)) == 0
    png = res / "figures" / "toy.cli.figure.png"
    png.unlink()
    calls.clear()
    gallery = tmp_path / "gallery"
    rc = cli.main(["figures", "--results", str(res), "--gallery", str(gallery)], registry=toy_registry(calls))
    assert rc == 0 and calls == [] and png.exists() and (gallery / "toy.cli.figure.png").exists()
    assert "1 figure(s) redrawn" in capsys.readouterr().out
    assert cli.main(["figures", "--results", str(res), "--out", str(tmp_path / "f")],
                    registry=toy_registry()) == 0
    assert (tmp_path / "f" / "toy.cli.figure.pdf").exists()
    assert cli.main(["figures", "--results", str(tmp_path / "empty")], registry=toy_registry()) == 1


def test_probe_and_bench_delegate_or_explain(monkeypatch, capsys):
    monkeypatch.setitem(cli._DELEGATES, "probe", ("sublab_no_such_module.cli",))
    assert cli.main(["probe", "--steps", "3"]) == 2
    assert "not available" in capsys.readouterr().err

    seen = {}
    fake = types.ModuleType("sublab_fake_probe_cli")
    fake.add_arguments = lambda p: p.add_argument("--steps", type=int, default=1)
    fake.main = lambda args: seen.setdefault("steps", args.steps) and 0
    monkeypatch.setitem(sys.modules, "sublab_fake_probe_cli", fake)
    monkeypatch.setitem(cli._DELEGATES, "probe", ("sublab_fake_probe_cli",))
    assert cli.main(["probe", "--steps", "3"]) == 0 and seen == {"steps": 3}
    assert cli.main(["probe", "--bogus"]) == 2  # the delegate's own usage error

    argv_seen = []
    bench = types.ModuleType("sublab_fake_bench")
    bench.main = lambda argv: argv_seen.append(argv) or 0
    monkeypatch.setitem(sys.modules, "sublab_fake_bench", bench)
    monkeypatch.setitem(cli._DELEGATES, "bench", ("sublab_missing_bench", "sublab_fake_bench"))
    assert cli.main(["bench", "--quick"]) == 0 and argv_seen == [["--quick"]]


def test_entry_point_is_light_and_runs():
    code = ("import sys, claims.cli, claims.runner, claims.registry, claims.verdicts; "
            "print(sorted(m for m in ('matplotlib', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
    out = subprocess.run([sys.executable, "-m", "claims", "verify", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "--resume" in out.stdout and "--only" in out.stdout


def test_only_refuses_each_pattern_that_matches_nothing(tmp_path, capsys):
    calls = []
    rc = cli.main(["verify", "--only", "toy.cli.holds,nosuch", "--out", str(tmp_path)], registry=toy_registry(calls))
    assert rc == 2 and calls == [] and "--only 'nosuch' matches no claim" in capsys.readouterr().err
    assert not (tmp_path / "claims").exists()


def test_a_partial_run_keeps_the_report_and_json_of_the_whole_folder(tmp_path):
    out, doc = tmp_path / "r", tmp_path / "v.json"
    assert cli.main(["verify", "--quiet", "--out", str(out), "--no-figures"], registry=toy_registry()) == 0
    calls = []
    assert cli.main(["verify", "--quiet", "--out", str(out), "--no-figures", "--only", "toy.cli.violated",
                     "--json", str(doc)], registry=toy_registry(calls)) == 0
    assert calls == ["toy.cli.violated"]
    report = (out / "report.md").read_text()
    assert report.startswith("# sublab verify report") and "3 claims:" in report
    assert all(f"## toy.cli.{name}" in report for name in ("holds", "violated", "figure"))
    assert [c["id"] for c in json.loads(doc.read_text())["claims"]] == ["toy.cli.holds", "toy.cli.violated",
                                                                       "toy.cli.figure"]


def test_outputs_are_checked_before_any_claim_runs(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    calls = []
    assert cli.main(["verify", "--out", str(tmp_path / "file")], registry=toy_registry(calls)) == 2
    assert "--out" in capsys.readouterr().err
    assert cli.main(["verify", "--out", str(tmp_path / "r"), "--json", str(tmp_path / "file" / "v.json")],
                    registry=toy_registry(calls)) == 2
    assert calls == [] and "--json" in capsys.readouterr().err


def test_verify_into_a_folder_another_run_holds(tmp_path, capsys):
    code = ("import sys, time, records\n"
            "with records.lock_folder(sys.argv[1], 'sublab verify'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        calls = []
        assert cli.main(["verify", "--out", str(tmp_path)], registry=toy_registry(calls)) == 2
        assert calls == [] and f"in use by another sublab verify (pid {holder.pid})" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_figures_refuse_what_they_cannot_do(tmp_path, capsys):
    res = tmp_path / "r"
    assert cli.main(["verify", "--quiet", "--out", str(res)], registry=toy_registry()) == 0
    capsys.readouterr()
    assert cli.main(["figures", "--results", str(res), "--only", "nosuch"], registry=toy_registry()) == 2
    assert "--only 'nosuch' matches no claim" in capsys.readouterr().err
    assert cli.main(["figures", "--results", str(res), "--only", "toy.cli.holds"], registry=toy_registry()) == 1
    assert "no figure was redrawn" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli.main(["figures", "--results", str(res), "--out", str(tmp_path / "file")], registry=toy_registry()) == 2
    assert "--out" in capsys.readouterr().err


def test_result_files_respect_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        assert cli.main(["verify", "--quiet", "--out", str(tmp_path), "--only", "toy.cli.holds"],
                        registry=toy_registry()) == 0
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files and {p.stat().st_mode & 0o777 for p in files} == {0o664}


def test_list_refuses_a_pattern_that_matches_nothing(capsys):
    assert cli.main(["list", "--only", "toy.cli.holds,nosuch"], registry=toy_registry()) == 2
    assert "--only 'nosuch' matches no claim" in capsys.readouterr().err
