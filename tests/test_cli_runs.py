"""The command line under bad input and faults (issue 13), as a user meets it: subprocesses of ``sublab``
(``python -m claims``) with tiny models and a few steps. Each case: a clear message, the exit status, and no lost,
mixed or unreadable file."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from probes.train import read_rows
from records import read_jsonl

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
TINY = ["--size", "tiny", "--batch-size", "2", "--seq-len", "16", "--lr", "3e-3", "--quiet"]


def sublab(*args, timeout=120, umask=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "claims", *map(str, args)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=None if umask is None else (lambda: os.umask(umask)))


_DRIVER = """
import contextlib, io, json, sys
from claims import cli
results = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            rc = cli.main(argv)
        except SystemExit as exc:
            rc = exc.code
    results.append([rc, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def sublab_each(*argvs: list) -> list[tuple[int, str, str]]:
    """(exit status, stdout, stderr) of ``sublab <argv>`` for each argv, one after the other in one fresh process
    (one import of torch for all of them)."""
    argvs = [[str(a) for a in argv] for argv in argvs]
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(argvs)], cwd=ROOT, env=ENV, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [tuple(r) for r in json.loads(proc.stdout.strip().splitlines()[-1])]


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "claims", *map(str, args)], cwd=ROOT, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(predicate, proc, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def read_only(tmp_path) -> Path:
    """A folder nobody can write: mode 0555, or sysfs when running as root (root ignores the mode)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder = Path("/sys")
        try:
            (folder / "sublab-probe").touch()
            pytest.skip("no read-only folder on this machine")
        except OSError:
            pass
    return folder


# ---------------------------------------------------------------------------------------------- probe outputs
def test_second_probe_into_the_same_folder_is_refused_until_the_first_dies(tmp_path):
    out = tmp_path / "run"
    first = start("probe", "llama", *TINY, "--steps", "100000", "--out", out)
    try:
        wait_for(lambda: (out / "rows.jsonl").exists(), first)
        second = sublab("probe", "llama", *TINY, "--steps", "2", "--out", out, "--overwrite")
        assert second.returncode == 2
        assert f"is in use by another probe (pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.wait()
    # the kernel released the killed run's lock: the folder can be taken over
    again = sublab("probe", "llama", *TINY, "--steps", "2", "--out", out, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert [r["step"] for r in read_rows(out) if r["metric"] == "loss"] == [0, 1]


def test_new_run_into_a_folder_with_a_run_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    assert sublab("probe", "llama", *TINY, "--steps", "3", "--out", out).returncode == 0
    before = {p: p.read_bytes() for p in out.iterdir()}
    (rc, _, err), = sublab_each(["probe", "llama", *TINY, "--steps", "3", "--out", out])
    assert rc == 2 and "already holds a run" in err and "--resume" in err
    assert {p: p.read_bytes() for p in out.iterdir()} == before  # nothing touched
    run = ["probe", "llama", *TINY, "--out", out, "--lr", "1e-3"]
    replaced, resumed = sublab_each([*run, "--steps", "3", "--overwrite"], [*run, "--steps", "5", "--resume"])
    assert replaced[0] == 0, replaced[2]
    rows = read_rows(out)
    assert [r["step"] for r in rows if r["metric"] == "loss"] == [0, 1, 2]  # one run, not two
    assert {r["config"]["lr"] for r in rows} == {1e-3}
    assert resumed[0] == 2 and "different configuration" in resumed[2]  # steps changed: refused


def test_stale_temporaries_of_a_dead_writer_are_removed_and_files_respect_the_umask(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".checkpoint.pt.{dead.pid}.k1llk1ll.tmp"
    stale.write_bytes(b"\0" * 4096)
    res = sublab("probe", "llama", *TINY, "--steps", "2", "--out", out, umask=0o002)
    assert res.returncode == 0, res.stderr
    assert not stale.exists()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "rows.jsonl", "summary.json"]
    assert {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o664}


def test_rows_state_the_configuration_once(tmp_path):
    out = tmp_path / "run"
    res = sublab("probe", "llama", *TINY, "--steps", "3", "--instrument-every", "2", "--optimizer", "galore",
                 "--rank", "4", "--out", out)
    assert res.returncode == 0, res.stderr
    raw = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in raw].count("run") == 1 and raw[0]["kind"] == "run"
    assert all("config" not in r for r in raw[1:]) and all(r["run"] == raw[0]["run"] for r in raw)
    rows = read_rows(out)
    assert len(rows) == len(raw) - 1
    assert all(r["config"]["optimizer"] == "galore" and r["code_version"] == raw[0]["code_version"] for r in rows)
    per_row = len(json.dumps(raw[0]["config"]))
    assert (out / "rows.jsonl").stat().st_size < len(rows) * per_row / 3  # was > config size per row


BAD_PROBE = [
    (["--batch-size", "0"], "argument --batch-size: must be an integer >= 1, got '0'"),
    (["--grad-accum", "0"], "argument --grad-accum: must be an integer >= 1, got '0'"),
    (["--device", "tpu"], "--device 'tpu' is unknown; allowed: cpu, cuda, cuda:<index>"),
    (["--clip", "-1"], "argument --clip: must be a finite number >= 0.0, got '-1'"),
    (["--warmup", "500", "--steps", "3"], "warmup=500 is invalid; allowed: at most steps=3"),
    (["--instrument-every", "-1"], "argument --instrument-every: must be an integer >= 0, got '-1'"),
    (["--dropout", "2"], "argument --dropout: must be a finite number >= 0.0 <= 1.0, got '2'"),
    (["--dropout", "0.1"], "dropout applies to model='roberta' only"),
    (["--batch-size", "3", "--grad-accum", "2"], "batch_size=3 is invalid; allowed: a multiple of"),
    (["--size", "huge"], "size='huge' is invalid for llama; allowed: tiny, 9m"),
    (["--optimizer", "nope"], "argument --optimizer: unknown optimizer 'nope'; allowed: adam-sn"),
    (["--resume", "--overwrite"], "resume and overwrite exclude each other"),
] + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "--device cuda: CUDA is not available here")])


def test_bad_probe_values_are_refused_before_any_work(tmp_path):
    out = tmp_path / "run"
    results = sublab_each(*[["probe", "llama", *TINY, "--steps", "3", *argv, "--out", out] for argv, _ in BAD_PROBE])
    wrong = [(argv, rc, err) for (argv, message), (rc, _, err) in zip(BAD_PROBE, results)
             if rc != 2 or message not in err or "Traceback" in err]
    assert not wrong, wrong
    assert not (out / "rows.jsonl").exists()


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path, read_only):
    (tmp_path / "file").write_text("x")
    (rc_file, _, file_err), (rc_ro, _, ro_err), (rc_bench, bench_out, bench_err) = sublab_each(
        ["probe", "llama", *TINY, "--out", tmp_path / "file"], ["probe", "llama", *TINY, "--out", read_only],
        ["bench", "--only", "state", "--out", read_only])
    assert rc_file == 2 and "is a file; a folder is needed" in file_err
    assert rc_ro == 2 and "not a writable folder" in ro_err and "Traceback" not in ro_err
    assert rc_bench == 2 and "not a writable folder" in bench_err and "sublab bench:" not in bench_out


def test_ctrl_c_stops_cleanly_with_the_resume_command(tmp_path):
    out = tmp_path / "run"
    args = ["probe", "llama", *TINY, "--steps", "400", "--checkpoint-every", "3", "--out", out]
    proc = start(*args)
    wait_for(lambda: '"step": 4, "metric": "loss"' in _text(out / "rows.jsonl"), proc)  # after the step-3 checkpoint
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    summary = json.loads((out / "summary.json").read_text())
    step = summary["last_checkpoint_step"]
    assert summary["status"] == "interrupted" and step % 3 == 0 and step > 0
    assert f"the last checkpoint holds step {step}" in err
    command = err.strip().splitlines()[-1].strip()
    assert command.startswith("sublab probe llama") and "--resume" in shlex.split(command)
    resumed = sublab(*shlex.split(command)[1:], timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    losses = [r for r in read_rows(out) if r["metric"] == "loss"]
    assert [r["step"] for r in losses] == list(range(400))


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_probe_without_out_says_nothing_is_saved():
    res = sublab("probe", "llama", *TINY, "--steps", "1")
    assert res.returncode == 0 and "no --out given, nothing will be saved" in res.stderr


def test_probe_memory_has_its_own_options_and_units():
    table, refused, usage = sublab_each(["probe", "memory", "--sizes", "60m", "--methods", "adamw"],
                                        ["probe", "memory", "--steps", "3"], ["probe", "memory", "--help"])
    assert table[0] == 0 and "GiB (2^30 bytes)" in table[1]
    assert refused[0] == 2 and "unrecognized arguments: --steps 3" in refused[2]
    assert usage[0] == 0 and "--sizes" in usage[1] and "--steps" not in usage[1]


# ---------------------------------------------------------------------------------------------- help texts
def _options(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((f"{name} {o}", a, sub) for o, a, sub in _options(sub))
        elif action.option_strings and action.dest != "help":
            yield action.option_strings[-1], action, parser


def test_every_option_of_every_subcommand_has_help_and_a_default():
    import argparse

    from analysis import benchmarks
    from claims import cli
    from probes import cli as probe_cli

    parsers = [cli.build_parser(), probe_cli.add_arguments(argparse.ArgumentParser(prog="sublab probe")),
               benchmarks.add_arguments(argparse.ArgumentParser(prog="sublab bench"))]
    missing = []
    for parser in parsers:
        for name, action, owner in _options(parser):
            if name.endswith("--version"):
                continue
            text = owner._get_formatter()._expand_help(action) if action.help else ""
            if "default" not in text:
                missing.append(f"{parser.prog} {name}: {text!r}")
    assert not missing, "\n".join(missing)


# ---------------------------------------------------------------------------------------------- bench
BAD_BENCH = [
    (["--methods", "foo"], "argument --methods: unknown method 'foo'; allowed:"),
    (["--threads", "-1"], "argument --threads: must be an integer >= 1, got '-1'"),
    (["--repeats", "0"], "argument --repeats: must be an integer >= 1, got '0'"),
    (["--rank", "0"], "argument --rank: must be an integer >= 1, got '0'"),
    (["--device", "tpu"], "--device 'tpu' is unknown"),
]


def test_bad_bench_values_are_refused(tmp_path):
    out = tmp_path / "b"
    results = sublab_each(*[["bench", "--only", "state", *argv, "--out", out] for argv, _ in BAD_BENCH])
    wrong = [(argv, rc, err) for (argv, message), (rc, _, err) in zip(BAD_BENCH, results)
             if rc != 2 or message not in err or "Traceback" in err]
    assert not wrong, wrong
    assert not list(out.glob("*.jsonl"))


def test_bench_saves_each_unit_and_resumes_the_missing_ones(tmp_path):
    out = tmp_path / "b"
    args = ["bench", "--only", "state", "--quick", "--threads", "1", "--methods", "adamw", "galore", "--out", out]
    assert sublab(*args).returncode == 0
    path = out / "state_bytes_cpu.jsonl"
    full = path.read_text().splitlines()
    refused, other = sublab_each(args, [*args, "--resume", "--rank", "64"])
    assert refused[0] == 2 and "already holds results" in refused[2]
    assert other[0] == 2 and "rank: 128 vs 64" in other[2]
    # a run killed after its first unit: only the adamw rows were saved; --resume measures the rest
    kept = [line for line in full if (json.loads(line)["method"], json.loads(line)["bench"]) == ("adamw", "state_small")]
    path.write_text("".join(line + "\n" for line in kept))
    assert sublab(*args, "--resume").returncode == 0
    assert path.read_text().splitlines()[:len(kept)] == kept
    assert sorted(path.read_text().splitlines()) == sorted(full)
    assert sublab(*args, "--overwrite").returncode == 0 and len(read_jsonl(path)) == len(full)


def test_bench_step_is_silent_about_bitsandbytes(tmp_path):
    res = sublab("bench", "--only", "step", "--quick", "--threads", "1", "--methods", "galore", "--gap", "2",
                 "--repeats", "1", "--model-layers", "0", "--out", tmp_path / "b", timeout=300)
    assert res.returncode == 0, res.stderr
    assert "bitsandbytes" not in res.stderr + res.stdout and "kernels" not in res.stderr + res.stdout
    assert {r["method"] for r in read_jsonl(tmp_path / "b" / "step_time_cpu.jsonl")} >= {"galore", "galore-torch"}


# ---------------------------------------------------------------------------------------------- verify, figures
def test_verify_refuses_an_unmatched_pattern_and_an_unwritable_json_before_any_claim_runs(tmp_path, read_only):
    # '*': whichever claim modules import today
    nosuch, json_ro = sublab_each(["verify", "--only", "*,nosuch", "--out", tmp_path / "r"],
                                  ["verify", "--only", "*", "--out", tmp_path / "r", "--json", read_only / "v.json"])
    assert nosuch[0] == 2 and "--only 'nosuch' matches no claim" in nosuch[2]
    assert json_ro[0] == 2 and "--json" in json_ro[2] and "not a writable folder" in json_ro[2]
    assert not (tmp_path / "r" / "claims").exists()


def test_figures_refuse_an_unmatched_pattern_and_a_read_only_folder(tmp_path, read_only):
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "x.a.json").write_text(json.dumps({"id": "x.a", "scale": "quick"}))
    nosuch, ro = sublab_each(["figures", "--results", tmp_path, "--only", "nosuch"],
                             ["figures", "--results", tmp_path, "--out", read_only])
    assert nosuch[0] == 2 and "--only 'nosuch' matches no claim" in nosuch[2]
    assert ro[0] == 2 and "--out" in ro[2] and "not a writable folder" in ro[2]
