"""Atomic training checkpoints: model, optimizer state, scheduler, data position and RNG states in one file.

A checkpoint is written with ``records.atomic_path`` (a temporary file in the target folder, flushed to disk, moved
into place with ``os.replace``, mode ``0o666 & ~umask``), so a run killed at any moment leaves either the previous
checkpoint or the new one, never a torn file; the temporary file of a killed writer is removed when the next run
locks the folder. Everything in it loads with ``torch.load(weights_only=True)``: tensors, numbers, strings,
lists and dicts only (the run configuration is stored as a JSON string).

Sharded runs (``--fsdp``): every rank writes its shards of the model and the optimizer state with
``torch.distributed.checkpoint`` into a folder ``checkpoint-<step>.dcp`` beside the file (``save_sharded``: written
as ``.checkpoint-<step>.dcp.tmp``, then renamed), and rank 0 writes the file as above without ``model`` and
``optimizer`` but with ``"sharded": "<folder name>"``. The file is written after the folder is in place, so it is
the commit point: a run killed at any moment leaves a file that names a whole folder. ``load_sharded`` reads the
folder into any layout (another world size, or one process without a process group) through
``torch.distributed.checkpoint.state_dict``; ``prune_sharded`` removes the folders no file names any more and the
temporary folders of killed writers.
"""
from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch

from records import atomic_path

__all__ = ["LATEST", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "checkpoint_path",
           "sharded_name", "save_sharded", "load_sharded", "prune_sharded"]

LATEST = "checkpoint.pt"


def checkpoint_path(out_dir: str | os.PathLike, step: int | None = None) -> Path:
    """``out/checkpoint.pt`` (latest) or ``out/checkpoint-00000123.pt`` (kept copies)."""
    return Path(out_dir) / (LATEST if step is None else f"checkpoint-{step:08d}.pt")


def rng_state() -> dict:
    """The global torch RNG states (CPU and, if present, every CUDA device)."""
    st = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        st["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict) -> None:
    torch.set_rng_state(st["torch"].cpu())
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in st["cuda"]])


def save_checkpoint(path: str | os.PathLike, *, step: int, model, optimizer, scheduler, config: dict,
                    data_position: dict, history: dict, code_version: str, sharded: str | None = None) -> Path:
    """Write the checkpoint for the state *after* ``step`` optimizer steps, atomically. With ``sharded`` (the name
    of a folder beside ``path`` written by :func:`save_sharded`), model and optimizer are in that folder and
    ``model``/``optimizer`` are not read."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": 1,
        "step": int(step),
        "scheduler": scheduler.state_dict(),
        "data": dict(data_position),
        "rng": rng_state(),
        "config": json.dumps(config, sort_keys=True),
        "history": history,
        "code_version": code_version,
    }
    if sharded is None:
        payload["model"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        payload["optimizer"] = optimizer.state_dict()
    else:
        payload["sharded"] = str(sharded)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by ``save_checkpoint`` (``weights_only=True``); ``config`` comes back as a dict."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ck, dict) or ck.get("format") != 1:
        raise ValueError(f"{path}: not a probes checkpoint (format 1)")
    ck["config"] = json.loads(ck["config"])
    return ck


# ----------------------------------------------------------------------------------------------- sharded (DCP)
def sharded_name(step: int) -> str:
    """The folder of the sharded state after ``step`` steps: ``checkpoint-00000123.dcp``."""
    return f"checkpoint-{step:08d}.dcp"


def _dcp_state(model, optimizer) -> dict:
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, optimizer)}


def save_sharded(out_dir: str | os.PathLike, step: int, model, optimizer, *, main: bool) -> str:
    """Every rank: write model and optimizer shards into ``out/checkpoint-<step>.dcp`` (a temporary folder, renamed
    by rank 0 once every rank has written); returns the folder's name. A collective: all ranks call it."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp

    out = Path(out_dir)
    name = sharded_name(step)
    tmp, final = out / f".{name}.tmp", out / name
    if main:
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    dist.barrier()
    dcp.save(_dcp_state(model, optimizer), checkpoint_id=str(tmp))
    dist.barrier()
    if main:
        if final.exists():  # a killed run wrote it but never committed the file that names it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(out)
    dist.barrier()
    return name


def load_sharded(folder: str | os.PathLike, model, optimizer) -> None:
    """Load a folder written by :func:`save_sharded` into ``model`` and ``optimizer``, whatever their layout: FSDP2
    at any world size (resharding), DDP, or one process without a process group."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    folder = Path(folder)
    if not (folder / ".metadata").exists():
        raise FileNotFoundError(f"{folder}: the sharded checkpoint folder is missing or incomplete")
    sd = _dcp_state(model, optimizer)
    with warnings.catch_warnings():  # one process without a process group is a supported way to read it
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(sd, checkpoint_id=str(folder))
    set_model_state_dict(model, sd["model"])
    set_optimizer_state_dict(model, optimizer, sd["optim"])


def prune_sharded(out_dir: str | os.PathLike, keep: set) -> None:
    """Remove ``checkpoint-*.dcp`` folders of ``out`` not in ``keep`` and temporary folders of killed writers."""
    out = Path(out_dir)
    for folder in list(out.glob("checkpoint-*.dcp")) + list(out.glob(".checkpoint-*.dcp.tmp")):
        if folder.name not in keep:
            shutil.rmtree(folder, ignore_errors=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
