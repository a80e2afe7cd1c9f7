"""Atomic training checkpoints: model, optimizer state, scheduler, data position and RNG states in one file.

A checkpoint is written with ``records.atomic_path`` (a temporary file in the target folder, flushed to disk, moved
into place with ``os.replace``, mode ``0o666 & ~umask``), so a run killed at any moment leaves either the previous
checkpoint or the new one, never a torn file; the temporary file of a killed writer is removed when the next run
locks the folder. Everything in it loads with ``torch.load(weights_only=True)``: tensors, numbers, strings,
lists and dicts only (the run configuration is stored as a JSON string).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from records import atomic_path

__all__ = ["LATEST", "save_checkpoint", "load_checkpoint", "rng_state", "set_rng_state", "checkpoint_path"]

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
                    data_position: dict, history: dict, code_version: str) -> Path:
    """Write the checkpoint for the state *after* ``step`` optimizer steps, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": 1,
        "step": int(step),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "data": dict(data_position),
        "rng": rng_state(),
        "config": json.dumps(config, sort_keys=True),
        "history": history,
        "code_version": code_version,
    }
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
