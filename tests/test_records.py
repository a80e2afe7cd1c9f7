"""records: the provenance and I/O module (code version, atomic writes with the umask's mode, stale temporaries,
the folder lock, writability checks, the NaN encoding, header-row JSONL, state bytes, dtypes, option types)."""
import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import records
import subspace
from records import files as F
from records.options import DefaultsHelpFormatter, integer, number, one_of

ROOT = Path(__file__).resolve().parents[1]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_code_version_is_one_format():
    v = records.code_version()
    assert v == records.code_version()  # computed once: every result of a process carries the same label
    commit = records.git_commit()
    if commit:
        assert v in (commit, commit + "+dirty")
    else:
        assert v.startswith("sublab ")


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_write_respects_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        path = records.atomic_write_text(tmp_path / "a.json", "{}")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    assert path.read_text() == "{}"


def test_atomic_write_all_or_nothing(tmp_path, monkeypatch):
    path = tmp_path / "rows.jsonl"
    records.atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError), records.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["rows.jsonl"]

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(F.os, "replace", boom)
    with pytest.raises(OSError):
        records.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["rows.jsonl"]


def test_temporary_names_carry_the_pid_and_dead_writers_are_cleaned(tmp_path):
    with records.atomic_path(tmp_path / "checkpoint.pt") as tmp:
        assert f".checkpoint.pt.{os.getpid()}." in tmp.name
        assert records.remove_stale_temporaries(tmp_path) == []  # our own, alive
    (tmp_path / "sub").mkdir()
    dead = tmp_path / "sub" / f".checkpoint.pt.{_dead_pid()}.x1y2z3w4.tmp"
    alive = tmp_path / f".summary.json.{os.getpid()}.abcdefgh.tmp"
    other = tmp_path / ".notes.tmp"  # not a records temporary: never touched
    deep = tmp_path / "sub" / "deeper" / f".x.{_dead_pid()}.abcdefgh.tmp"  # another run folder's: its own lock
    deep.parent.mkdir()
    for p in (dead, alive, other, deep):
        p.write_bytes(b"x" * 100)
    assert records.remove_stale_temporaries(tmp_path) == [dead]
    assert not dead.exists() and alive.exists() and other.exists() and deep.exists()


def _hold_lock(folder: Path) -> subprocess.Popen:
    code = ("import sys, time, records\n"
            "with records.lock_folder(sys.argv[1], 'probe'):\n"
            "    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_lock_refuses_a_second_writer_and_a_killed_holder_releases_it(tmp_path):
    proc = _hold_lock(tmp_path)
    try:
        with pytest.raises(records.FolderBusy, match=rf"in use by another probe \(pid {proc.pid}\)"):
            with records.lock_folder(tmp_path):
                pass
    finally:
        proc.kill()
        proc.wait()
    with records.lock_folder(tmp_path, "probe") as held:  # the kernel released the dead holder's lock
        assert held == tmp_path and (tmp_path / F.LOCK_NAME).exists()
    assert not (tmp_path / F.LOCK_NAME).exists()  # removed on release


def test_lock_cleans_stale_temporaries(tmp_path):
    stale = tmp_path / f".checkpoint.pt.{_dead_pid()}.zzzzzzzz.tmp"
    stale.write_bytes(b"x")
    with records.lock_folder(tmp_path):
        assert not stale.exists()


def test_writable_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="--out .*file: is a file"):
        records.writable_folder(tmp_path / "file", "--out")
    with pytest.raises(ValueError, match="--json .*: is a folder"):
        records.writable_file(tmp_path, "--json")
    assert records.writable_folder(tmp_path / "new" / "deep", "--out").is_dir()
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        records.writable_folder(ro, "--out")
    except ValueError as exc:
        assert "not a writable folder" in str(exc)
    else:  # root ignores the mode: sysfs refuses new files to everyone
        with pytest.raises(ValueError, match="--out /sys: not a writable folder"):
            records.writable_folder("/sys", "--out")


def test_nan_encoding_round_trip():
    values = {"a": math.nan, "b": [math.inf, -math.inf, 1.5], "c": None, "t": torch.tensor([1.0, math.nan])}
    text = records.dumps(values)
    assert json.loads(text) == {"a": "nan", "b": ["inf", "-inf", 1.5], "c": None, "t": [1.0, "nan"]}
    back = records.from_jsonable(json.loads(text))
    assert math.isnan(back["a"]) and back["b"][:2] == [math.inf, -math.inf] and back["c"] is None


def test_rows_keep_the_configuration_once(tmp_path):
    path = tmp_path / "rows.jsonl"
    lines = [records.header_row("r1", "v1", {"lr": 1.0}), {"kind": "train", "step": 0, "value": math.nan, "run": "r1"},
             records.header_row("r1", "v2", {"lr": 1.0, "log_every": 5}),  # a resume with another log_every
             {"kind": "train", "step": 1, "value": 2.0, "run": "r1"}]
    path.write_text("".join(records.dumps(r) + "\n" for r in lines) + '{"torn')
    rows = records.read_rows(path)
    assert [r["step"] for r in rows] == [0, 1] and math.isnan(rows[0]["value"])
    assert rows[0]["config"] == {"lr": 1.0} and rows[0]["code_version"] == "v1"
    assert rows[1]["config"]["log_every"] == 5 and rows[1]["code_version"] == "v2"
    old = tmp_path / "old.jsonl"  # the format before header rows: the configuration on every row
    old.write_text(json.dumps({"kind": "train", "step": 0, "value": None, "run": "r", "config": {"lr": 2},
                               "code_version": "v0"}) + "\n")
    assert records.read_rows(old) == [{"kind": "train", "step": 0, "value": None, "run": "r", "config": {"lr": 2},
                                       "code_version": "v0"}]
    assert records.read_jsonl(tmp_path / "missing.jsonl") == []


def test_state_bytes_and_dtypes():
    state = {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4, 5), "basis": torch.zeros(4, 2, dtype=torch.float64),
             "note": "x"}
    assert records.state_bytes(state) == 4 * 5 * 4 + 4 * 2 * 8  # the 0-d step counter is not counted
    assert records.DTYPES is subspace.DTYPES


def test_option_types_name_what_is_allowed():
    p = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    p.add_argument("--n", type=integer(1), default=2, help="count")
    p.add_argument("--x", type=number(0.0, 1.0), help="fraction (default: the model's)")
    p.add_argument("--name", type=one_of(["a", "b"], "method"), help="which")
    p.add_argument("--flag", action="store_true", help="switch")
    assert p.parse_args(["--n", "3", "--x", "0.5", "--name", "b"]).n == 3
    for argv, message in ((["--n", "0"], "must be an integer >= 1, got '0'"),
                          (["--x", "nan"], "must be a finite number >= 0.0 <= 1.0"),
                          (["--name", "c"], "unknown method 'c'; allowed: a, b")):
        with pytest.raises(SystemExit):
            p.parse_args(argv)
    text = p.format_help()
    assert "count (default: 2)" in text and "(default: the model's)" in text and "switch (default: off)" in text


def test_option_errors_are_printed(capsys):
    p = argparse.ArgumentParser(prog="t")
    p.add_argument("--n", type=integer(1))
    with pytest.raises(SystemExit) as exc:
        p.parse_args(["--n", "-1"])
    assert exc.value.code == 2 and "argument --n: must be an integer >= 1, got '-1'" in capsys.readouterr().err


def test_importing_records_does_not_import_torch():
    code = "import sys, records; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False", out.stderr
