"""The probes' memory modes (--fused-backward, --factorized, --state-bits 8): the same losses as the standard step,
one step per accumulated batch, per-parameter clipping, exact resume per mode, a checkpoint of another mode refused,
bad combinations refused naming the flags, and the mode recorded in rows and summary. Tiny LLaMA, <= 6 steps."""
import argparse
import json

import pytest
import torch

from probes import checkpoint as ckpt
from probes.cli import add_arguments, main
from probes.train import ProbeConfig, read_rows, train

TINY = dict(model="llama", size="tiny", lr=3e-3, batch_size=4, seq_len=32, warmup=1, quiet=True)
LOW = dict(rank=4, update_gap=2)   # refreshes at steps 0, 2, 4
SUMO0 = {"complement_scale": 0.0}


def _rel(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("opt", ["adamw", "galore"])
def test_fused_backward_equals_the_standard_step_with_accumulation(tmp_path, opt):
    kw = dict(optimizer=opt, steps=4, grad_accum=2, **TINY, **({} if opt == "adamw" else LOW))
    std = train(ProbeConfig(**kw))
    fused = train(ProbeConfig(fused_backward=True, out=str(tmp_path / "f"), **kw))
    assert _rel(fused["losses"], std["losses"]) <= 1e-6
    # one step per accumulated batch: every parameter's own step count is the run's, not grad_accum times it
    state = ckpt.load_checkpoint(tmp_path / "f" / "checkpoint.pt")["optimizer"]["state"]
    assert {int(s["step"]) for s in state.values()} == {4}
    assert fused["memory_mode"] == "fused-backward"
    norms = [r["value"] for r in read_rows(tmp_path / "f") if r["metric"] == "grad_norm"]
    assert len(norms) == 4 and all(n > 0 for n in norms)   # measured by a hook before each parameter steps


def test_fused_per_parameter_clip_equals_the_standard_per_parameter_clip():
    kw = dict(optimizer="galore", steps=3, clip=0.05, clip_rule="per-parameter", **TINY, **LOW)
    std = train(ProbeConfig(**kw))
    fused = train(ProbeConfig(fused_backward=True, **kw))
    assert _rel(fused["losses"], std["losses"]) <= 1e-6
    unclipped = train(ProbeConfig(**{**kw, "clip": 0.0}))
    assert unclipped["losses"][-1] != std["losses"][-1]   # the clip acted


@pytest.mark.parametrize("opt, extra", [("galore", {}), ("golore", {}), ("sumo", SUMO0)])
def test_factorized_equals_the_standard_step_to_float32_round_off(opt, extra):
    kw = dict(optimizer=opt, steps=5, opt_kwargs=extra, **TINY, **LOW)
    std = train(ProbeConfig(**kw))
    fact = train(ProbeConfig(factorized=True, **kw))
    assert _rel(fact["losses"], std["losses"]) <= 1e-5   # the core's float32 bound (tests/test_core_factorized.py)
    assert fact["memory_mode"] == "factorized"


def test_8bit_states_are_quantized_and_track_the_float_run(tmp_path):
    kw = dict(optimizer="galore", steps=4, **TINY, **LOW)
    std = train(ProbeConfig(**kw))
    q = train(ProbeConfig(state_bits=8, out=str(tmp_path / "q"), **kw))
    assert q["memory_mode"] == "standard+8-bit" and q["optimizer_state_bytes"] < std["optimizer_state_bytes"]
    assert _rel(q["losses"], std["losses"]) < 1e-2   # quantized moments: close, not equal
    state = ckpt.load_checkpoint(tmp_path / "q" / "checkpoint.pt")["optimizer"]["state"]
    assert any(t.dtype in (torch.int8, torch.uint8) for s in state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


@pytest.mark.parametrize("mode", [dict(fused_backward=True), dict(factorized=True), dict(state_bits=8),
                                  dict(fused_backward=True, state_bits=8)])
def test_resume_reproduces_each_mode_exactly_and_refuses_another_mode(tmp_path, mode):
    kw = dict(optimizer="sumo", steps=6, opt_kwargs=SUMO0, **TINY, **LOW, **mode)
    full = train(ProbeConfig(out=str(tmp_path / "full"), checkpoint_every=3, keep_checkpoints=True, **kw))
    half = ckpt.checkpoint_path(tmp_path / "full", 3)
    resumed = train(ProbeConfig(out=str(tmp_path / "res"), resume=str(half), **kw))
    assert resumed["losses"] == full["losses"]   # bitwise: 3 restored + 3 recomputed (a refresh at step 4)
    header = read_rows(tmp_path / "res")[0]["config"]
    assert all(header[k] == v for k, v in mode.items())
    standard = {k: v for k, v in kw.items() if k not in mode}
    with pytest.raises(ValueError, match="different configuration.*(fused_backward|factorized|state_bits)"):
        train(ProbeConfig(out=str(tmp_path / "other"), resume=str(half), **standard))


def test_fused_backward_stops_at_a_non_finite_gradient_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "nan"
    res = train(ProbeConfig(**{**TINY, "lr": 1e6, "warmup": 0}, optimizer="adamw", steps=6, fused_backward=True,
                            checkpoint_every=1, out=str(out)))
    assert res["status"] == "nonfinite" and "non-finite" in res["message"] and "fused backward" in res["message"]
    ck = ckpt.load_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == res["steps_done"] and all(torch.isfinite(v).all() for v in ck["model"].values())


def _cli(argv):
    parser = add_arguments(argparse.ArgumentParser())
    return main(parser.parse_args(["llama", "--steps", "1", "--batch-size", "2", "--seq-len", "16", "--quiet",
                                   *argv]))


@pytest.mark.parametrize("argv, named", [
    (["--fused-backward", "--clip", "1.0"], ["--clip", "--fused-backward", "--clip-rule per-parameter"]),
    (["--factorized", "--optimizer", "adamw"], ["--factorized", "--optimizer", "galore, golore, sumo"]),
    (["--factorized", "--optimizer", "sumo"], ["--factorized", "--opt complement_scale=0"]),
    (["--factorized", "--optimizer", "galore", "--clip", "1"], ["--clip", "--factorized"]),
    (["--factorized", "--optimizer", "galore", "--selection", "all-linear"], ["--selection", "--factorized"]),
    (["--factorized", "--fused-backward", "--optimizer", "galore"], ["--factorized", "--fused-backward"]),
    (["--fsdp", "--fused-backward"], ["--fsdp", "--fused-backward"]),
    (["--fsdp", "--state-bits", "8"], ["--fsdp", "--state-bits 8"]),
    (["--opt", "state_bits=8"], ["--state-bits 8", "--opt state_bits"]),
])
def test_bad_combinations_exit_2_naming_the_flags(capsys, argv, named):
    assert _cli(argv) == 2
    err = capsys.readouterr().err
    assert "error" in err and all(word in err for word in named), err


def test_cli_flags_reach_the_run(tmp_path, capsys):
    out = tmp_path / "c"
    assert _cli(["--optimizer", "golore", "--rank", "4", "--factorized", "--state-bits", "8", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["memory_mode"] == "factorized+8-bit"
    assert summary["config"]["factorized"] and summary["config"]["state_bits"] == 8
    with pytest.raises(SystemExit) as refused:
        add_arguments(argparse.ArgumentParser()).parse_args(["llama", "--state-bits", "4"])
    assert refused.value.code == 2


@pytest.mark.parametrize("flag, field", [("--fused-backward", "fused_backward"), ("--factorized", "factorized")])
def test_torchrun_two_processes_match_one_process_in_each_mode(tmp_path, flag, field):
    """DDP (gloo): fused hooks all-reduce each gradient themselves (no DDP wrapper); factorized DDP all-reduces the
    factors and the optimizer averages a refresh step's full gradient. Two micro-batches per rank."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.test_probes_train import _free_port

    root = Path(__file__).resolve().parent.parent
    args = ["llama", "--size", "tiny", "--optimizer", "galore", "--rank", "4", "--update-gap", "2", "--steps", "3",
            "--batch-size", "8", "--grad-accum", "2", "--seq-len", "32", "--lr", "3e-3", "--warmup", "1", "--quiet",
            flag]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(root)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "probes", *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = train(ProbeConfig(optimizer="galore", steps=3, grad_accum=2, **{**TINY, "batch_size": 8}, **LOW,
                            **{field: True}))
    rows = read_rows(tmp_path / "ddp")
    assert [r["value"] for r in rows if r["metric"] == "loss"] == pytest.approx(one["losses"], rel=1e-5)
    assert all(r["value"] for r in rows if r["metric"] == "ddp.bases_identical")
    assert json.loads((tmp_path / "ddp" / "summary.json").read_text())["world_size"] == 2
