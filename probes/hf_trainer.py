"""The Hugging Face Trainer with a subspace optimizer: a tiny LLaMA on the embedded corpus, checkpoints and resume.

    model = tiny_llama()
    opt = subspace.make("galore", model, lr=3e-3, rank=8, update_gap=10)   # embeddings, head, norms: dense Adam
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_then_constant(5))
    trainer = Trainer(model=model, args=arguments(out, max_steps=100), train_dataset=ByteLM(128),
                      optimizers=(opt, sched))
    trainer.train()                                   # later: trainer.train(resume_from_checkpoint=True)

The Trainer saves ``optimizer.state_dict()`` with ``torch.save`` and reloads it with ``torch.load(weights_only=True)``;
the state dict holds tensors, numbers and strings only, including the optimizer's generator (GoLore's random bases,
the randomized SVD's sketches), so a resumed run draws what the uninterrupted one draws. ``Trainer(...,
optimizer_cls_and_kwargs=(subspace.GaLore, {"model": model, "lr": ...}))`` builds the same optimizer inside the
Trainer (the Trainer passes ``model`` as the optimizer's params; a Module is split by ``subspace.param_groups``).
Under ``accelerate launch`` with FSDP2 the same optimizer runs on the sharded parameters (``subspace.sharded``).

``train(out, name, steps, ...)`` runs the recipe and returns the logged losses; ``tests/test_hf_trainer.py`` checks
that a checkpoint written mid-run resumes to the uninterrupted losses.
"""
from __future__ import annotations

import math

import torch

import subspace

from .data import lm_data
from .models import build_llama

__all__ = ["ByteLM", "tiny_llama", "arguments", "warmup_then_constant", "make_trainer", "train"]


class ByteLM(torch.utils.data.Dataset):
    """The embedded corpus (``pydoc_data.topics``), byte-tokenised and packed into ``seq_len`` rows, as Trainer items
    ``{"input_ids", "labels"}`` (the model shifts the labels)."""

    def __init__(self, seq_len: int = 64, max_docs: int | None = 8):
        self.rows = lm_data(seq_len=seq_len, max_docs=max_docs).train

    def __len__(self) -> int:
        return self.rows.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.rows[i], "labels": self.rows[i]}


def tiny_llama(seed: int = 0):
    """The probes' ``tiny`` LLaMA (hidden 64, 2 layers, byte vocabulary 260), randomly initialised."""
    return build_llama("tiny", seed=seed, max_positions=128)


def warmup_then_constant(warmup: int):
    """LR multiplier: linear warm-up over ``warmup`` steps, then 1 (a LambdaLR lambda)."""
    return lambda step: min(1.0, (step + 1) / max(1, warmup))


def arguments(out: str, *, max_steps: int, batch_size: int = 4, save_steps: int | None = None, seed: int = 0,
              **extra):
    """``TrainingArguments`` for a CPU run: no reporting, no workers, a loss logged every step, checkpoints every
    ``save_steps`` (none when None)."""
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=out, max_steps=max_steps, per_device_train_batch_size=batch_size,
                             logging_steps=1, save_strategy="steps" if save_steps else "no",
                             save_steps=save_steps or 500, seed=seed, data_seed=seed, report_to=[],
                             dataloader_num_workers=0, use_cpu=True, disable_tqdm=True, **extra)


def make_trainer(out: str, name: str = "galore", *, steps: int, lr: float = 3e-3, warmup: int = 2,
                 save_steps: int | None = None, seq_len: int = 64, seed: int = 0, **hparams):
    """A Trainer of ``tiny_llama`` with ``subspace.make(name, model, lr=lr, **hparams)`` and a warm-up schedule."""
    from transformers import Trainer

    model = tiny_llama(seed)
    opt = subspace.make(name, model, lr=lr, seed=seed, **hparams)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, warmup_then_constant(warmup))
    return Trainer(model=model, args=arguments(out, max_steps=steps, save_steps=save_steps, seed=seed),
                   train_dataset=ByteLM(seq_len), optimizers=(opt, sched))


def train(out: str, name: str = "galore", *, steps: int, resume: str | bool | None = None, **kwargs) -> list[float]:
    """Run the recipe (``resume``: a checkpoint folder, or True for the latest in ``out``); the logged losses."""
    trainer = make_trainer(out, name, steps=steps, **kwargs)
    trainer.train(resume_from_checkpoint=resume)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError(f"non-finite training loss: {losses}")
    return losses
