"""probes.train and probes.cli: tiny LLaMA/RoBERTa training through the core, instruments, exact resume,
non-finite stop, CLI exit codes, and a 2-process torchrun (gloo) run against the single-process one."""
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from probes import checkpoint as ckpt
from probes.cli import add_arguments, main
from probes.train import ProbeConfig, lr_factor, read_rows, train


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from intra-op threads, and on a shared 2-core box they lose a lot."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


ROOT = Path(__file__).resolve().parent.parent
LLAMA = dict(model="llama", size="tiny", lr=3e-3, batch_size=4, seq_len=32, warmup=2, quiet=True)


def _rows(out):
    return read_rows(out)


def test_lr_schedule_is_galores():
    assert lr_factor(0, 100, 10) == 0.0 and lr_factor(5, 100, 10) == 0.5
    assert lr_factor(10, 100, 10) == pytest.approx(1.0) and lr_factor(100, 100, 10) == pytest.approx(0.1)


@pytest.mark.parametrize("opt, kw", [("adamw", {}), ("galore", dict(rank=4, update_gap=5, scale=1.0)),
                                     ("sumo", dict(rank=4, update_gap=5))])
def test_tiny_llama_loss_falls(opt, kw):
    res = train(ProbeConfig(optimizer=opt, steps=20, **{**LLAMA, "batch_size": 8}, **kw))
    L = res["losses"]
    assert res["status"] == "ok" and len(L) == 20
    assert sum(L[-4:]) / 4 < sum(L[:4]) / 4 - 0.5, L
    assert res["eval"]["val_loss"] < L[0]


def test_tiny_roberta_loss_falls_and_beats_chance():
    res = train(ProbeConfig(model="roberta", size="tiny", optimizer="adamw", lr=3e-3, steps=60, batch_size=16,
                            warmup=2, dropout=0.0, quiet=True))
    L = res["losses"]
    assert sum(L[-10:]) / 10 < sum(L[:10]) / 10 - 0.01, L
    assert res["eval"]["chance"] == 0.25 and res["eval"]["val_accuracy"] > 0.3


def test_instrument_rows(tmp_path):
    out = tmp_path / "run"
    res = train(ProbeConfig(optimizer="galore", rank=4, update_gap=3, steps=7, instrument_every=3, out=str(out),
                            **LLAMA))
    rows = _rows(out)
    assert all(r["config"]["optimizer"] == "galore" and r["code_version"] for r in rows)
    inst = [r for r in rows if r["kind"] == "instrument"]
    layers = {r["layer"] for r in inst if "layer" in r}
    assert len(layers) == 14  # 7 matrices x 2 layers: every low-rank matrix
    steps = {r["step"] for r in inst if r["metric"] == "grad.sv"}
    assert steps == {0, 3, 6}
    by = lambda m: [r["value"] for r in inst if r["metric"] == m]  # noqa: E731
    assert all(1 - 1e-6 <= v <= 4 + 1e-6 for v in by("moment_proj.stable_rank"))
    assert all(0 <= v <= 1 for v in by("moment_proj.kappa_defect"))
    assert all(v >= 1 or math.isnan(v) for v in by("moment_proj.kappa_cond"))
    assert all(0 <= v <= 1 + 1e-6 for v in by("grad_proj.captured"))
    assert all(0 <= a <= math.pi / 2 + 1e-6 for v in by("basis.principal_angles") for a in v)
    assert {r["step"] for r in inst if r["metric"] == "basis.overlap"} == {3, 6}
    assert len(by("moment.ns_error_rel")) == 3 * 14 and by("optimizer.state_bytes")[0] > 0
    train_metrics = {r["metric"] for r in rows if r["kind"] == "train"}
    assert {"loss", "tokens_per_s", "peak_memory_bytes", "refresh", "optimizer_time_s"} <= train_metrics
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_refresh_steps"] == 3 and summary["optimizer_time_refresh_s"] > 0
    assert res["optimizer_state_bytes"] == summary["optimizer_state_bytes"]


@pytest.mark.parametrize("opt", ["galore", "sumo"])
def test_resume_reproduces_uninterrupted_losses_exactly(tmp_path, opt):
    kw = dict(optimizer=opt, rank=4, update_gap=3, steps=8, **LLAMA)
    full = train(ProbeConfig(out=str(tmp_path / "full"), checkpoint_every=4, keep_checkpoints=True, **kw))
    half = ckpt.checkpoint_path(tmp_path / "full", 4)
    assert ckpt.load_checkpoint(half)["step"] == 4
    resumed = train(ProbeConfig(out=str(tmp_path / "res"), resume=str(half), **kw))
    assert resumed["losses"] == full["losses"]  # bitwise, all 8 (4 restored + 4 recomputed)
    # a killed run: the folder holds the step-4 checkpoint and rows up to step 5; --resume continues it
    kill = tmp_path / "kill"
    kill.mkdir()
    (kill / "checkpoint.pt").write_bytes(half.read_bytes())
    (kill / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in _rows(tmp_path / "full")
                                             if r["step"] <= 5 and r["kind"] == "train") + '{"torn')
    again = train(ProbeConfig(out=str(kill), resume=True, **kw))
    assert again["losses"] == full["losses"]
    losses = [r["value"] for r in _rows(kill) if r["metric"] == "loss"]
    assert losses == full["losses"]
    with pytest.raises(ValueError, match="different configuration.*lr"):
        train(ProbeConfig(out=str(kill), resume=True, **{**kw, "lr": 1e-2}))


def test_resume_roberta_with_dropout_exact(tmp_path):
    kw = dict(model="roberta", size="tiny", optimizer="galore", rank=4, update_gap=2, steps=4, batch_size=4,
              seq_len=40, quiet=True)
    full = train(ProbeConfig(out=str(tmp_path / "a"), checkpoint_every=2, keep_checkpoints=True, **kw))
    res = train(ProbeConfig(out=str(tmp_path / "b"), resume=str(ckpt.checkpoint_path(tmp_path / "a", 2)), **kw))
    assert res["losses"] == full["losses"]


def test_nonfinite_loss_stops_and_keeps_last_checkpoint(tmp_path, capsys):
    out = tmp_path / "nan"
    res = train(ProbeConfig(**{**LLAMA, "quiet": False, "lr": 1e6, "warmup": 0}, optimizer="adamw", steps=20,
                            checkpoint_every=1, out=str(out)))
    assert res["status"] == "nonfinite" and res["steps_done"] < 20
    bad = res["steps_done"]
    assert f"non-finite loss (nan) at step {bad}" in res["message"] and "checkpoint" in res["message"]
    assert f"non-finite loss (nan) at step {bad}" in capsys.readouterr().err
    ck = ckpt.load_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == bad and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert json.loads((out / "summary.json").read_text())["status"] == "nonfinite"
    assert any(r["kind"] == "stop" for r in _rows(out))


def test_cli(tmp_path, capsys):
    import argparse

    parser = add_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["llama", "--size", "tiny", "--optimizer", "golore", "--rank", "4", "--update-gap",
                              "2", "--steps", "3", "--batch-size", "2", "--seq-len", "16", "--quiet",
                              "--opt", "golore_fraction=0.5", "--out", str(tmp_path / "c")])
    assert main(args) == 0
    assert "final_loss" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:
        parser.parse_args(["llama", "--optimizer", "nope", "--steps", "1"])
    assert refused.value.code == 2
    assert main(parser.parse_args(["llama", "--size", "huge", "--steps", "1"])) == 2
    assert main(parser.parse_args(["llama", "--data", str(tmp_path / "missing.txt"), "--steps", "1"])) == 2
    assert main(parser.parse_args(["llama", "--lr", "1e6", "--warmup", "0", "--steps", "30", "--quiet",
                                   "--seq-len", "16", "--batch-size", "2"])) == 3
    assert main(parser.parse_args(["memory", "--sizes", "60m", "--methods", "adamw", "galore"])) == 0
    assert "GaLore Table 2" in capsys.readouterr().out


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_processes_match_single_process(tmp_path):
    # GoLore@50%: SVD bases at steps 0 and 2 (from the all-reduced gradient), random Stiefel bases from step 3 on
    # (from the optimizer's seeded generator): both must agree across ranks.
    args = ["llama", "--size", "tiny", "--optimizer", "golore", "--rank", "4", "--update-gap", "2", "--steps", "6",
            "--batch-size", "8", "--seq-len", "32", "--lr", "3e-3", "--warmup", "1", "--instrument-every", "2",
            "--opt", "golore_fraction=0.5", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "probes", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = train(ProbeConfig(model="llama", size="tiny", optimizer="golore", rank=4, update_gap=2, steps=6,
                               batch_size=8, seq_len=32, lr=3e-3, warmup=1, quiet=True, out=str(tmp_path / "one"),
                               opt_kwargs={"golore_fraction": 0.5}))
    rows = _rows(tmp_path / "ddp")
    ddp_losses = [r["value"] for r in rows if r["metric"] == "loss"]
    assert ddp_losses == pytest.approx(single["losses"], rel=1e-5, abs=1e-6)
    same = [r["value"] for r in rows if r["metric"] == "ddp.bases_identical"]
    assert len(same) >= 4 and all(same)
    assert rows[0]["config"]["batch_size"] == 8
    a = ckpt.load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")["model"]
    b = ckpt.load_checkpoint(tmp_path / "one" / "checkpoint.pt")["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def test_grad_accumulation_matches_one_big_batch_and_bfloat16_runs(tmp_path):
    kw = dict(optimizer="galore", rank=4, update_gap=2, steps=3, **{**LLAMA, "batch_size": 8})
    one = train(ProbeConfig(**kw))
    acc = train(ProbeConfig(grad_accum=4, **kw))
    assert acc["losses"] == pytest.approx(one["losses"], rel=1e-5)
    bf = train(ProbeConfig(dtype="bfloat16", out=str(tmp_path / "bf"), **kw))
    assert bf["status"] == "ok" and bf["losses"][0] == pytest.approx(one["losses"][0], rel=2e-2)
    state = ckpt.load_checkpoint(tmp_path / "bf" / "checkpoint.pt")["optimizer"]["state"]
    assert {v["exp_avg"].dtype for v in state.values()} == {torch.bfloat16}  # pure bf16, as the GaLore scaffold


def test_sigkill_at_any_point_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    """A real ``kill -9`` of a running probe (mid-step, mid-write: wherever it lands), then ``--resume``."""
    import signal
    import time

    args = ["-m", "probes", "llama", "--size", "tiny", "--optimizer", "galore", "--rank", "4", "--update-gap", "3",
            "--steps", "120", "--batch-size", "4", "--seq-len", "32", "--lr", "3e-3", "--warmup", "2",
            "--checkpoint-every", "5", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    full = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "full")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert full.returncode == 0, full.stderr[-2000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, *args, "--out", str(killed)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = killed / "rows.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if rows.exists() and rows.read_text().count('"metric": "loss"') >= 17:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = subprocess.run([sys.executable, *args, "--out", str(killed), "--resume"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    loss = lambda out: [r["value"] for r in _rows(out) if r["metric"] == "loss"]  # noqa: E731
    assert len(loss(tmp_path / "full")) == 120 and loss(killed) == loss(tmp_path / "full")
