"""Probes under FSDP2 (``--fsdp``): a 2-process torchrun (gloo) of a tiny LLaMA against the single-process run.

One torchrun job (starting processes costs most of the time) runs three probes through the command line in one
process group: GaLore, GoLore@50% (SVD bases, then random Stiefel bases from the optimizer's generator) with
instruments and a sharded checkpoint after 3 of 6 steps, and GoLore resumed from that checkpoint. Checked here: the
losses equal the single-process ones (1e-5 relative), the bases agree across ranks (``ddp.bases_identical``), the
gathered per-layer instruments equal the single-process ones, the resumed run reproduces the uninterrupted losses
bitwise (same world size, CPU), and one process resumes the world-2 checkpoint (resharding) within round-off.
"""
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from probes import checkpoint as ckpt
from probes.train import ProbeConfig, read_rows, train

ROOT = Path(__file__).resolve().parents[1]
COMMON = dict(model="llama", size="tiny", rank=4, update_gap=2, steps=6, batch_size=8, seq_len=32, lr=3e-3, warmup=1,
              quiet=True)
GOLORE = dict(optimizer="golore", opt_kwargs={"golore_fraction": 0.5}, instrument_every=2, checkpoint_every=3,
              keep_checkpoints=True)


def _args(optimizer, out, *extra):
    words = ["llama", "--size", "tiny", "--optimizer", optimizer, "--rank", "4", "--update-gap", "2", "--steps", "6",
             "--batch-size", "8", "--seq-len", "32", "--lr", "3e-3", "--warmup", "1", "--quiet", "--fsdp",
             "--out", str(out), *extra]
    if optimizer == "golore":
        words += ["--opt", "golore_fraction=0.5", "--instrument-every", "2", "--checkpoint-every", "3"]
    return words


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _loss(out) -> dict:
    return {r["step"]: r["value"] for r in read_rows(out) if r.get("metric") == "loss"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probes_fsdp")
    jobs = [_args("galore", tmp / "galore"), _args("golore", tmp / "golore", "--keep-checkpoints"),
            _args("golore", tmp / "resumed", "--resume", str(ckpt.checkpoint_path(tmp / "golore", 3)))]
    driver = tmp / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import torch.distributed as dist
        from probes.cli import _standalone
        dist.init_process_group("gloo")
        for argv in {jobs!r}:
            assert _standalone(argv) == 0, argv
        dist.barrier()
        dist.destroy_process_group()
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(driver)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    single = {"galore": train(ProbeConfig(optimizer="galore", **COMMON)),
              "golore": train(ProbeConfig(out=str(tmp / "one"), **GOLORE, **COMMON))}
    return tmp, single


@pytest.mark.parametrize("optimizer", ["galore", "golore"])
def test_fsdp_losses_equal_the_single_process_run(runs, optimizer):
    tmp, single = runs
    rows = read_rows(tmp / optimizer)
    assert rows[0]["config"]["fsdp"] is True
    losses = _loss(tmp / optimizer)
    assert [losses[t] for t in range(6)] == pytest.approx(single[optimizer]["losses"], rel=1e-5, abs=1e-6)
    same = [r["value"] for r in rows if r.get("metric") == "ddp.bases_identical"]
    assert same and all(same)


def test_fsdp_instruments_gather_the_whole_layer(runs):
    tmp, _ = runs
    key = lambda r: (r["step"], r["metric"], r.get("layer"))  # noqa: E731
    one = {key(r): r["value"] for r in read_rows(tmp / "one") if r.get("kind") == "instrument"}
    sharded = {key(r): r["value"] for r in read_rows(tmp / "golore") if r.get("kind") == "instrument"}
    assert len([k for k in sharded if k[1] == "ddp.bases_identical"]) == 4
    for k, v in one.items():
        if k[1] in ("grad.fro_norm", "grad.sigma_max", "moment_full.fro_norm", "grad_proj.captured", "state.bytes"):
            assert sharded[k] == pytest.approx(v, rel=1e-4), k


def test_fsdp_checkpoint_resumes_bitwise_and_reshards_to_one_process(runs, tmp_path):
    tmp, single = runs
    folder = tmp / "golore"
    assert (folder / ckpt.sharded_name(3)).is_dir() and (folder / ckpt.sharded_name(6)).is_dir()
    assert ckpt.load_checkpoint(folder / "checkpoint.pt")["sharded"] == ckpt.sharded_name(6)
    full, resumed = _loss(folder), _loss(tmp / "resumed")
    assert sorted(resumed) == [3, 4, 5] and all(resumed[t] == full[t] for t in resumed)  # bitwise
    assert not (tmp / "resumed" / ckpt.sharded_name(3)).exists()  # only the latest folder is kept by default
    one = train(ProbeConfig(out=str(tmp_path / "one"), resume=str(ckpt.checkpoint_path(folder, 3)),
                            **{**GOLORE, "keep_checkpoints": False}, **COMMON))
    assert one["losses"] == pytest.approx(single["golore"]["losses"], rel=1e-5)


def test_fsdp_refuses_a_one_file_checkpoint(tmp_path):
    """(In one process: ``fsdp`` there makes a one-rank group, which the refused run destroys again.)"""
    import torch.distributed as dist

    kw = {**COMMON, "steps": 2}
    train(ProbeConfig(optimizer="galore", out=str(tmp_path / "a"), checkpoint_every=1, keep_checkpoints=True, **kw))
    with pytest.raises(ValueError, match="cannot be resumed with fsdp"):
        train(ProbeConfig(optimizer="galore", out=str(tmp_path / "b"), fsdp=True,
                          resume=str(ckpt.checkpoint_path(tmp_path / "a", 1)), **kw))
    assert not dist.is_initialized()
