"""The probe training loop: a LLaMA or RoBERTa model trained through the shared optimizer core, instrumented,
checkpointed, resumable and DDP-aware.

    from probes.train import ProbeConfig, train
    result = train(ProbeConfig(model="llama", size="tiny", optimizer="galore", rank=8, steps=50, out="runs/x"))

Per step: the global batch ``batch_size`` (sequences) is split across DDP ranks and into ``grad_accum``
micro-batches; the loss is the mean over the global batch; optional ``clip_grad_norm_``; the optimizer comes from
``subspace.make(optimizer, subspace.param_groups(model, selection))``; the schedule is GaLore's (reference §1.2):
linear warmup whose factor is ``step / warmup`` (so the first step uses lr 0 when warmup > 0) and a cosine to
``min_lr_ratio`` (0.1) after it.

Outputs in ``out``: ``rows.jsonl`` (long format: a header row with the run's configuration and code version, then
one row per step/metric[/layer] carrying the run id; :func:`read_rows` gives each row its configuration back),
``summary.json``, ``checkpoint.pt`` (atomic, every ``checkpoint_every`` steps and at the end) and, with
``keep_checkpoints``, ``checkpoint-<step>.pt`` copies. The folder is locked while the run writes it; a folder that
holds a run is refused unless ``resume`` (continue it) or ``overwrite`` (replace it). All files are created with
the umask's mode (``records.files``).

Ctrl-C (KeyboardInterrupt) stops the run cleanly: no checkpoint is written for the interrupted step, the summary
is written with ``status="interrupted"`` and the message names the step the last checkpoint holds.

Exactness of ``resume``: the batch at step t is a pure function of (seed, t) (``data.BatchOrder``), model
weights, optimizer state (with its generator), scheduler and the global RNG (dropout) are restored bit for bit,
so on CPU a resumed run reproduces the uninterrupted run's losses exactly.

A non-finite loss (or a non-finite gradient, which the core rejects) stops the run before the update, with a
message naming the step; the last checkpoint written is the last good one and is never overwritten by the bad step.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel (gloo on
CPU, NCCL on CUDA); every rank builds the same model (seeded init) and the same optimizer (seeded generator), so
projection bases agree across ranks; ``ddp.bases_identical`` rows check it by gathering a fingerprint of every
basis at each instrument step and at the end.

Sharded (``fsdp=True``, ``--fsdp``): each decoder layer (LLaMA ``model.layers``, RoBERTa ``roberta.encoder.layer``)
and then the root are wrapped with FSDP2's ``fully_shard`` on a 1-D mesh of all ranks, and the optimizer is built
on the sharded parameters (the core steps DTensors; its bases are small replicated tensors, so the same
fingerprint check applies). Checkpoints: every rank writes its shards with ``torch.distributed.checkpoint`` into
``checkpoint-<step>.dcp`` and rank 0 writes ``checkpoint.pt`` with the rest (``probes.checkpoint``); ``resume``
reads them at any world size, and in one process. Per-layer instruments gather the whole gradient, weight and
state of each instrumented layer (a collective) and rank 0 measures them. ``fsdp`` does not change the numbers, so
it is not part of the configuration a resumed run must share.

The strategy (one process, DDP or FSDP2) is a small object chosen by ``_ProbeRun.distribute``
(:class:`_Replicated`, :class:`_DDP`, :class:`_FSDP`): it wraps the model, switches gradient synchronisation off
between micro-batches, measures the gradient norm, gathers instrumented layers and reads and writes the model and
optimizer part of a checkpoint; the loop has no branch on it.

Memory modes (``memory_mode`` in the summary; part of the configuration a resumed run must share): a second small
object chosen in ``distribute`` (:class:`_Standard`, :class:`_FusedBackward`, :class:`_Factorized`) transforms the
model before the strategy wraps it, builds the optimizer, names the data-parallel strategy that serves it, adds its
context to each micro-batch and measures the gradient norm.

* ``fused_backward`` (``--fused-backward``): ``subspace.fuse_into_backward``, each parameter steps in its
  post-accumulate-grad hook and its gradient is freed at once; with ``grad_accum`` the earlier micro-batches only
  accumulate, so one step per accumulated batch on the standard step's summed gradient (the same losses, exactly
  for deterministic presets; golore's random bases and sumo's randomized SVD draw in backward order). Global
  clipping is refused; ``clip_rule="per-parameter"`` clips each gradient on its own (the same rule is available
  in the standard step, so the two modes compare). Under torchrun the hooks all-reduce each gradient (no DDP
  wrapper, strategy ``ddp-fused``); the gradient norm is then not reported (NaN). A non-finite gradient stops the
  run; parameters whose gradients completed earlier in that backward were updated (the core's documented rule),
  the checkpoint on disk is from before that step.
* ``factorized`` (``--factorized``): ``subspace.factorize`` + ``subspace.FactorizedOptimizer`` for galore, golore,
  sumo (``complement_scale=0``) and their variants (``FACTORIZABLE``): W0, the factors and the bases live in the
  model's state dict, the factors' optimizer state is the standard state of their W; the standard trajectory to
  float32 round-off. Under DDP only the factors and dense parameters are all-reduced. Not with clipping (the
  factors' gradient norm is not the full gradient's), layer instruments, other selections or fsdp.
* ``state_bits=8`` (``--state-bits 8``): block-wise 8-bit moments (``subspace.quantize``), with either mode above;
  close to, not equal to, the float run.

None of them runs under ``fsdp`` yet (the core steps FSDP2 shards only in ``optimizer.step()`` and has no 8-bit
or factorized DTensor state); the combination is refused before any work.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import subspace
from subspace.sharded import is_dtensor, local
from records import (DTYPES, atomic_write_text, code_version, dumps, header_row, lock_folder, read_jsonl,
                     state_bytes, writable_folder)
from records import read_rows as _read_rows
from records.options import check_device

from . import checkpoint as ckpt
from . import data as D
from . import instruments as I
from .models import LLAMA_SIZES, ROBERTA_SIZES, build_llama, build_roberta, selection_groups

__all__ = ["ProbeConfig", "train", "lr_factor", "NonFiniteLoss", "BOUNDS", "RUN_FILES", "read_rows"]

_METHOD_KEYS = ("rank", "update_gap", "scale", "weight_decay")


#: Allowed ranges (inclusive; None: unbounded) of the numeric fields of ProbeConfig; the command line uses the same.
BOUNDS: dict[str, tuple] = {
    "lr": (0.0, None), "rank": (1, None), "update_gap": (1, None), "scale": (0.0, None), "weight_decay": (0.0, None),
    "steps": (1, None), "warmup": (0, None), "min_lr_ratio": (0.0, 1.0), "batch_size": (1, None),
    "grad_accum": (1, None), "seq_len": (2, None), "clip": (0.0, None), "num_topics": (2, None),
    "val_fraction": (0.0, 1.0), "dropout": (0.0, 1.0), "instrument_every": (0, None), "max_sv": (1, None),
    "eval_every": (0, None), "eval_batches": (1, None), "log_every": (1, None), "checkpoint_every": (0, None),
}
ROWS, SUMMARY = "rows.jsonl", "summary.json"
#: The files that make a folder hold a run (a new run there needs resume or overwrite).
RUN_FILES = (ROWS, SUMMARY, ckpt.LATEST)


class NonFiniteLoss(RuntimeError):
    """Raised inside the loop; ``train`` turns it into ``status="nonfinite"``."""


@dataclass
class ProbeConfig:
    """Everything that defines a probe run (stored in every row and in checkpoints)."""
    model: str = "llama"                 # llama | roberta
    size: str = "tiny"
    optimizer: str = "adamw"             # a name of subspace.available()
    lr: float = 1e-3
    rank: int | None = None
    update_gap: int | None = None
    scale: float | None = None
    weight_decay: float | None = None
    mode: str = "paper"                  # paper | official (the core's switch)
    opt_kwargs: dict = field(default_factory=dict)   # any further subspace.make keyword
    selection: str = "default"           # which matrices are low-rank: default | galore | all-linear
    steps: int = 100
    warmup: int | None = None            # default: 10% of steps (GaLore scripts)
    min_lr_ratio: float = 0.1
    batch_size: int = 8                  # global batch, sequences (all ranks, all micro-batches)
    grad_accum: int = 1
    seq_len: int = 128                   # LM sequence length / classification max length
    clip: float = 0.0                    # 0 = no clipping (GaLore default)
    device: str = "cpu"
    dtype: str = "float32"               # float32 | bfloat16 (pure bf16 as the GaLore scaffold)
    seed: int = 0
    data: str | None = None              # None: pydoc_data.topics; a text/JSONL file or folder; a GLUE folder
    tokenizer: str | None = None         # None: byte-level; a local folder saved by save_pretrained
    glue_task: str | None = None         # with data= a GLUE folder (roberta)
    num_topics: int = 4                  # default roberta task: which of k pydoc topics
    val_fraction: float = 0.1
    dropout: float | None = None         # roberta dropout (default 0.1)
    instrument_every: int = 0            # 0: off
    instrument_layers: list | None = None   # regexes on parameter names; default: every low-rank matrix
    max_sv: int | None = None            # keep only the top singular values in rows
    eval_every: int = 0                  # 0: only at the end
    eval_batches: int = 16
    log_every: int = 10
    checkpoint_every: int = 0            # 0: only at the end
    keep_checkpoints: bool = False
    out: str | None = None
    resume: bool | str = False           # True: out/checkpoint.pt; a path: that checkpoint
    overwrite: bool = False              # replace the run already in out (otherwise refused)
    fsdp: bool = False                   # shard with FSDP2 (fully_shard per layer) instead of DDP
    fused_backward: bool = False         # memory mode: each parameter steps in its post-accumulate-grad hook
    factorized: bool = False             # memory mode: projected Linears as W0 + B A (galore/golore/sumo family)
    state_bits: int = 32                 # 32 | 8: block-wise 8-bit optimizer moments (subspace state_bits)
    clip_rule: str = "global"            # global (clip_grad_norm_) | per-parameter (each gradient on its own)
    quiet: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The keys a resumed run must share with the checkpoint (everything that changes the numbers)."""
        d = self.to_dict()
        for k in ("out", "resume", "overwrite", "quiet", "log_every", "checkpoint_every", "keep_checkpoints",
                  "instrument_every", "instrument_layers", "max_sv", "eval_every", "eval_batches", "device",
                  "fsdp"):
            d.pop(k)
        return d

    @property
    def memory_mode(self) -> str:
        """``standard``, ``fused-backward`` or ``factorized``, with ``+8-bit`` for 8-bit states."""
        base = "fused-backward" if self.fused_backward else "factorized" if self.factorized else "standard"
        return base + ("+8-bit" if self.state_bits == 8 else "")


# ----------------------------------------------------------------------------------------------- helpers
def lr_factor(step: int, total: int, warmup: int, min_ratio: float = 0.1) -> float:
    """GaLore's cosine schedule with linear warmup (factor ``step/warmup``, 0 at step 0; cosine to ``min_ratio``)."""
    if warmup > 0 and step < warmup:
        return step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB
    except Exception:
        return 0


class _Rows:
    """Long-format JSONL writer: a header row states the run's configuration and code version once, then every row
    carries the run id (``records.read_rows`` puts the configuration back on each row)."""

    def __init__(self, path: Path | None, config: dict, version: str, run_id: str):
        self.fh = None
        self.run = run_id
        if path is not None:
            self.fh = open(path, "a", encoding="utf-8")
            self.fh.write(dumps(header_row(run_id, version, config)) + "\n")

    def write(self, kind: str, step: int, metric: str, value, **extra) -> None:
        if self.fh is not None:
            self.fh.write(dumps({"kind": kind, "step": step, "metric": metric, "value": value, **extra,
                                 "run": self.run}) + "\n")

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def read_rows(out: str | os.PathLike) -> list[dict]:
    """The rows of the run folder ``out``, each with ``config`` and ``code_version`` (also from files written before
    header rows, where every row carried them)."""
    return _read_rows(Path(out) / ROWS)


def _truncate_rows(path: Path, start_step: int) -> None:
    """On resume, drop rows a killed run wrote after its checkpoint (atomically rewrites the file); header rows
    stay."""
    keep = [row for row in read_jsonl(path)
            if row.get("step", -1) < start_step and row.get("kind") not in ("summary", "stop", "eval_final")]
    if path.exists():
        atomic_write_text(path, "".join(dumps(row) + "\n" for row in keep))


# ----------------------------------------------------------------------------------------------- setup
def _dist_setup(cfg: ProbeConfig):
    """(rank, world, device, distributed, owns_pg). ``fsdp`` in one process without torchrun gets a one-rank
    group (FSDP2 needs a mesh)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 and not cfg.fsdp:
        return 0, 1, torch.device(cfg.device), False, False
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.device.startswith("cuda"):
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    owns = not dist.is_initialized()
    if owns:
        if "MASTER_ADDR" in os.environ:
            dist.init_process_group(backend=backend)
        else:  # fsdp in a plain one-process run
            dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    return dist.get_rank(), dist.get_world_size(), device, True, owns


def build_data(cfg: ProbeConfig):
    tok = D.load_tokenizer(cfg.tokenizer)
    if cfg.model == "llama":
        if cfg.glue_task:
            raise ValueError("glue_task applies to --model roberta only")
        return D.lm_data(cfg.data, tok, seq_len=cfg.seq_len, val_fraction=cfg.val_fraction, seed=cfg.seed)
    if cfg.model == "roberta":
        if cfg.glue_task:
            if not cfg.data:
                raise ValueError("glue_task needs data=<folder with train.tsv and dev.tsv>")
            return D.glue_task(cfg.data, cfg.glue_task, tokenizer=tok, max_len=cfg.seq_len)
        if cfg.data:
            raise ValueError("for roberta, data= must be a GLUE folder given with glue_task=<task>")
        return D.topic_task(cfg.num_topics, tokenizer=tok, seed=cfg.seed, max_len=cfg.seq_len)
    raise ValueError(f"model={cfg.model!r} is invalid; allowed: ['llama', 'roberta']")


def build_model(cfg: ProbeConfig, data, device, dtype):
    vocab = data.tokenizer.vocab_size
    if cfg.model == "llama":
        return build_llama(cfg.size, vocab_size=vocab, max_positions=max(cfg.seq_len, 128), device=device,
                           dtype=dtype, seed=cfg.seed, bos_token_id=data.tokenizer.bos_id,
                           eos_token_id=data.tokenizer.eos_id)
    pad = data.tokenizer.pad_id
    L = data.train["input_ids"].shape[1]
    extra = {} if cfg.dropout is None else {"dropout": cfg.dropout}
    return build_roberta(cfg.size, data.num_labels, vocab_size=vocab, max_positions=max(L, cfg.seq_len) + pad + 1,
                         device=device, dtype=dtype, seed=cfg.seed, pad_token_id=pad,
                         bos_token_id=data.tokenizer.bos_id, eos_token_id=data.tokenizer.eos_id, **extra)


#: Presets the factorized form W0 + B A serves (``subspace.factorized``: a refreshed projector, no complement
#: term, no Subset-Norm preconditioner); sumo and sumo-ns5 need ``complement_scale=0``.
FACTORIZABLE = ("galore", "golore", "sumo", "sumo-ns5", "galore-sgdm", "golore-sgdm")


def _hparams(cfg: ProbeConfig) -> dict:
    """The preset keywords of ``cfg`` (method keys, ``opt_kwargs``, ``state_bits``), as ``subspace.make`` takes them."""
    hp = {k: getattr(cfg, k) for k in _METHOD_KEYS if getattr(cfg, k) is not None}
    hp.update(cfg.opt_kwargs)
    if cfg.state_bits != 32:
        hp["state_bits"] = cfg.state_bits
    if cfg.optimizer.startswith("golore") and "golore_fraction" in hp:
        hp.setdefault("total_steps", cfg.steps)
    return hp


def prepare_model(cfg: ProbeConfig, model):
    """The model transform of the memory mode, before any wrapping: ``factorized`` rewrites every low-rank
    ``nn.Linear`` as ``subspace.FactorizedLinear`` (W0 frozen, factor trainable, basis a buffer); otherwise the
    model itself."""
    if not cfg.factorized:
        return model
    return subspace.factorize(model, cfg.optimizer, mode=cfg.mode, lr=cfg.lr, **_hparams(cfg))


def make_optimizer(cfg: ProbeConfig, model, process_group=None) -> torch.optim.Optimizer:
    """The one place the optimizer is chosen: ``subspace.make`` on ``selection_groups(model, cfg.selection)``, or,
    with ``factorized``, ``subspace.FactorizedOptimizer`` on the :func:`prepare_model`-ed model (the core's default
    groups; ``process_group``: the DDP group a refresh step's full gradient is averaged over)."""
    hp = _hparams(cfg)
    if cfg.factorized:
        return subspace.FactorizedOptimizer(model, cfg.optimizer, lr=cfg.lr, seed=cfg.seed, mode=cfg.mode,
                                            process_group=process_group, **hp)
    return subspace.make(cfg.optimizer, selection_groups(model, cfg.selection), lr=cfg.lr, seed=cfg.seed,
                         mode=cfg.mode, **hp)


def _tracked(optimizer, patterns) -> list[tuple[str, torch.Tensor]]:
    res = [re.compile(p) for p in patterns] if patterns else None
    out = []
    for g in optimizer.param_groups:
        names = g.get("param_names") or [f"param{i}" for i in range(len(g["params"]))]
        for name, p in zip(names, g["params"]):
            if p.ndim < 2:
                continue
            if res is None and not g.get("low_rank", True):
                continue
            if res is not None and not any(r.search(name) for r in res):
                continue
            out.append((name, p))
    return out


def _bases(optimizer) -> dict:
    return {id(p): optimizer.state[p].get("basis") for g in optimizer.param_groups for p in g["params"]
            if p in optimizer.state}


def _basis_fingerprint(optimizer, device) -> torch.Tensor:
    vals = []
    for g in optimizer.param_groups:
        for p in g["params"]:
            Q = optimizer.state.get(p, {}).get("basis") if p in optimizer.state else None
            if Q is not None:
                w = torch.arange(1, Q.numel() + 1, dtype=torch.float64, device=Q.device).sin()
                vals.append(float((Q.detach().double().flatten() * w).sum()))
    return torch.tensor(vals or [0.0], dtype=torch.float64, device=device)


# ----------------------------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(model, data, cfg: ProbeConfig, device) -> dict:
    was = model.training
    model.eval()
    n = data.n_val
    bs = max(1, cfg.batch_size)
    batches = [torch.arange(i, min(i + bs, n)) for i in range(0, n, bs)]
    if data.task == "lm":
        batches = batches[: cfg.eval_batches]
        tot, cnt = 0.0, 0
        for idx in batches:
            b = {k: v.to(device) for k, v in data.val_batch(idx).items()}
            out = model(**b)
            ntok = b["input_ids"].numel() - b["input_ids"].shape[0]
            tot += float(out.loss.float()) * ntok
            cnt += ntok
        model.train(was)
        loss = tot / max(cnt, 1)
        return {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0)), "val_tokens": cnt}
    preds, labels, tot = [], [], 0.0
    for idx in batches:
        b = {k: v.to(device) for k, v in data.val_batch(idx).items()}
        out = model(**b)
        tot += float(out.loss.float()) * len(idx)
        preds.append(out.logits.argmax(-1).cpu())
        labels.append(b["labels"].cpu())
    model.train(was)
    p, y = torch.cat(preds), torch.cat(labels)
    res = {"val_loss": tot / n, "val_accuracy": float((p == y).double().mean()), "chance": data.chance}
    if data.num_labels == 2:
        tp = int(((p == 1) & (y == 1)).sum()); fp = int(((p == 1) & (y == 0)).sum())
        fn = int(((p == 0) & (y == 1)).sum()); tn = int(((p == 0) & (y == 0)).sum())
        res["val_f1"] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        den = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        res["val_mcc"] = (tp * tn - fp * fn) / den if den else 0.0
    return res


# ----------------------------------------------------------------------------------------------- the loop
def train(cfg: ProbeConfig) -> dict:
    """Run (or resume) a probe; returns ``{"status", "losses", "steps_done", "eval", "message", "out", ...}``.

    ``status`` is ``"ok"``, ``"nonfinite"`` (the run stopped at a non-finite loss or gradient) or ``"interrupted"``
    (KeyboardInterrupt: the summary is written, the last checkpoint is kept, ``last_checkpoint_step`` says which
    step it holds). The configuration is checked before any work (ValueError naming the field and what is
    allowed). The output folder is locked for the whole run (``records.lock_folder``: a second writer gets
    ``records.FolderBusy``) and a folder that already holds a run is refused unless ``resume`` or ``overwrite``.
    The run goes through stages, each a method of :class:`_ProbeRun`: set-up (``__init__``: process group, data,
    model), ``distribute`` (the strategy wraps the model, then the optimizer and schedule are built), ``resume``,
    ``begin`` (rows, instrumented layers, clocks), ``step`` (one optimizer step), ``instrument`` (rows,
    evaluation, checkpoint and progress after a step) and ``finish`` (final checkpoint, evaluation and summary).
    """
    _validate(cfg)
    with _claim_output(cfg):
        run = _ProbeRun(cfg)
        try:
            run.distribute()
            if cfg.resume:
                run.resume()
            run.begin()
        except BaseException:
            run.leave_group()
            raise
        status, message = "ok", ""
        try:
            for step in range(run.start, cfg.steps):
                run.instrument(step, run.step(step))
        except NonFiniteLoss as exc:
            status, message = "nonfinite", run.stop(exc, "nonfinite")
        except KeyboardInterrupt:
            status, message = "interrupted", run.stop(f"interrupted during step {len(run.history['loss'])}",
                                                      "interrupted")
        return run.finish(status, message)


@contextlib.contextmanager
def _claim_output(cfg: ProbeConfig):
    """Hold the lock of ``cfg.out`` (rank 0 writes it) for the ``with`` block, after refusing a folder that holds a
    run unless ``resume`` or ``overwrite`` (which deletes that run's files); nothing without an output folder."""
    if not cfg.out or int(os.environ.get("RANK", "0")) != 0:
        yield
        return
    out = writable_folder(cfg.out, "out")
    with lock_folder(out, "probe"):
        held = [name for name in RUN_FILES if (out / name).exists()]
        if held and not (cfg.resume or cfg.overwrite):
            raise ValueError(f"out={str(out)!r} already holds a run ({', '.join(held)}); continue it with resume "
                             f"(--resume), replace it with overwrite (--overwrite), or choose another folder")
        if cfg.overwrite:
            _remove_run(out)
        yield


def _remove_run(out: Path) -> None:
    """Delete the files of the run in ``out`` (rows, summary, latest and kept checkpoints)."""
    for path in [out / name for name in RUN_FILES] + sorted(out.glob("checkpoint-*.pt")):
        path.unlink(missing_ok=True)
    ckpt.prune_sharded(out, keep=set())


@dataclass
class _StepResult:
    """What one optimizer step measured."""
    loss: float
    grad_norm: float
    lr: float
    step_time_s: float
    optimizer_time_s: float
    tokens: int
    refreshed: list


# ----------------------------------------------------------------------------------------------- strategies
class _Replicated:
    """One process: the model as built; checkpoints hold the whole model and optimizer in one file."""
    name = "single"
    sharded = False

    def wrap(self, run) -> torch.nn.Module:
        """The module the loop calls (``run.model`` keeps the unwrapped one)."""
        return run.model

    def accumulate(self, net, sync: bool):
        """Context of one micro-batch's forward and backward; ``sync``: the last micro-batch of the step."""
        return contextlib.nullcontext()

    def grad_norm(self, params, clip: float, rule: str = "global") -> float:
        """The global gradient norm before clipping; with ``clip`` > 0 the gradients are clipped in place: the
        global rule scales all of them by min(1, clip / norm) (``clip_grad_norm_``), the per-parameter rule scales
        each G by min(1, clip / (||G||_F + 1e-6)) on its own (``subspace.fuse_into_backward``'s ``clip_norm``)."""
        if clip > 0 and rule == "global":
            return float(torch.nn.utils.clip_grad_norm_(params, clip))
        grads = [p.grad for p in params if p.grad is not None]
        norms = [torch.linalg.vector_norm(g.detach().float()) for g in grads]
        if clip > 0:
            for g, norm in zip(grads, norms):
                g.mul_((clip / (norm + 1e-6)).clamp(max=1.0).to(g.dtype))
        return float(torch.linalg.vector_norm(torch.stack(norms)))

    def whole_layer(self, p, state: dict):
        """(parameter, optimizer state) of an instrumented layer as whole tensors (for ``layer_report``)."""
        return p, state

    def save_sharded(self, run, step: int):
        """Write model and optimizer apart from the file (all ranks); the folder name, or None (in the file)."""
        return None

    def load_whole(self, run, ck: dict, path) -> None:
        """Load model and optimizer from a one-file checkpoint."""
        run.model.load_state_dict(ck["model"])
        run.optimizer.load_state_dict(ck["optimizer"])


class _DDP(_Replicated):
    """DistributedDataParallel: whole replicas, gradients all-reduced on the last micro-batch; rank 0 checkpoints."""
    name = "ddp"

    def wrap(self, run) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None,
                   **run.mode.ddp_options)

    def accumulate(self, net, sync: bool):
        return contextlib.nullcontext() if sync else net.no_sync()


def _layers(model) -> list:
    """The blocks to shard one by one: LLaMA's decoder layers, RoBERTa's encoder layers."""
    for path in ("model.layers", "roberta.encoder.layer"):
        try:
            return list(model.get_submodule(path))
        except AttributeError:
            continue
    raise ValueError(f"fsdp: no decoder/encoder layers found in {type(model).__name__}")


class _FSDP:
    """FSDP2: ``fully_shard`` per layer, then the root, on a 1-D mesh of all ranks; the optimizer steps the
    DTensor shards; gradients are reduce-scattered (averaged) on the last micro-batch; checkpoints are
    ``torch.distributed.checkpoint`` folders written by every rank."""
    name = "fsdp"
    sharded = True

    def wrap(self, run) -> torch.nn.Module:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(run.device.type, (run.world,))
        for layer in _layers(run.model):
            fully_shard(layer, mesh=mesh)
        fully_shard(run.model, mesh=mesh)
        return run.model

    @contextlib.contextmanager
    def accumulate(self, net, sync: bool):
        net.set_requires_gradient_sync(sync)
        try:
            yield
        finally:
            net.set_requires_gradient_sync(True)

    def grad_norm(self, params, clip: float, rule: str = "global") -> float:
        import torch.distributed as dist

        grads = [local(p.grad).detach() for p in params if p.grad is not None]
        sq = torch.zeros((), dtype=torch.float64, device=grads[0].device if grads else None)
        for g in grads:
            sq += g.double().pow(2).sum()
        dist.all_reduce(sq)  # every parameter is sharded (Shard(0)): the shards' squares add up to the whole
        norm = math.sqrt(float(sq))
        if clip > 0:
            coef = clip / (norm + 1e-6)  # clip_grad_norm_'s rule
            if coef < 1.0:
                for g in grads:
                    g.mul_(coef)
        return norm

    def whole_layer(self, p, state: dict):
        from types import SimpleNamespace

        grad = p.grad.full_tensor() if p.grad is not None and is_dtensor(p.grad) else p.grad
        whole = {k: v.full_tensor() if is_dtensor(v) else v for k, v in state.items()}
        return SimpleNamespace(grad=grad, shape=p.shape), whole

    def save_sharded(self, run, step: int):
        return ckpt.save_sharded(run.out, step, run.model, run.optimizer, main=run.main)

    def load_whole(self, run, ck: dict, path) -> None:
        raise ValueError(f"{path}: a one-file (single-process or DDP) checkpoint cannot be resumed with fsdp; "
                         f"resume it without --fsdp, or start the sharded run anew")


class _FusedAllReduce(_Replicated):
    """Data parallel for the fused-backward mode: whole replicas without a DDP wrapper (its reducer would run after
    the hooks stepped); each parameter's hook all-reduces and averages its own gradient over the default group
    before stepping, once per optimizer step; rank 0 checkpoints."""
    name = "ddp-fused"


# ----------------------------------------------------------------------------------------------- memory modes
class _Standard:
    """Memory mode ``standard``: backward fills every gradient, ``optimizer.step()`` then updates all parameters.

    A memory mode is the second small object of a run (beside the strategy): it transforms the model before the
    strategy wraps it (``prepare``), builds the optimizer (``build``), says which data-parallel strategy serves it
    (``ddp_strategy``) and with which DDP options, adds its own context to each micro-batch (``accumulate``) and
    measures the gradient norm (``grad_norm``)."""
    name = "standard"
    ddp_strategy = _DDP
    ddp_options: dict = {}
    #: What a non-finite gradient or loss leaves behind (the stop message).
    nonfinite_detail = "run stopped before updating the weights"

    def prepare(self, run) -> None:
        """Before the strategy wraps ``run.model``."""

    def build(self, run) -> torch.optim.Optimizer:
        """The optimizer, on the model as the strategy left it."""
        return make_optimizer(run.cfg, run.model)

    def accumulate(self, sync: bool):
        """Context of one micro-batch's forward and backward (inside the strategy's); ``sync``: the last one."""
        return contextlib.nullcontext()

    def grad_norm(self, run) -> float:
        """The gradient norm of the step (clipping as the configuration says)."""
        return run.strategy.grad_norm(run.params, run.cfg.clip, run.cfg.clip_rule)


class _FusedBackward(_Standard):
    """Memory mode ``fused-backward`` (``subspace.fuse_into_backward``): each parameter steps in its
    post-accumulate-grad hook as its gradient of the last micro-batch completes, and the gradient is freed at once;
    the earlier micro-batches run inside ``accumulating()`` (gradients add up, no step), so the step is taken once
    per accumulated batch, on the same summed gradient as the standard step. ``optimizer.step()`` is then a no-op
    that keeps the schedule's count (the optimizer time rows measure it; the update time is inside backward).
    Clipping: per parameter only (``clip_rule="per-parameter"``, the hooks' ``clip_norm``). The gradient norm is
    measured by a hook that runs before each stepping hook (one process; under data parallel the hooks see the
    local gradient before their all-reduce, so the norm is not reported: NaN)."""
    name = "fused-backward"
    ddp_strategy = _FusedAllReduce
    nonfinite_detail = ("run stopped; the parameters whose gradients completed before the non-finite one in that "
                        "backward were updated (fused backward), the checkpoint is from before that step")

    def build(self, run) -> torch.optim.Optimizer:
        opt = make_optimizer(run.cfg, run.model)
        self._measuring, self._norms = False, []
        for p in run.model.parameters():   # registered first, so each runs before the stepping hook of p
            if p.requires_grad:
                p.register_post_accumulate_grad_hook(self._measure)
        self.hooks = subspace.fuse_into_backward(opt, run.model, clip_norm=run.cfg.clip or None)
        return opt

    def _measure(self, p: torch.Tensor) -> None:
        if self._measuring:
            self._norms.append(torch.linalg.vector_norm(p.grad.detach().float()))

    def accumulate(self, sync: bool):
        self._measuring = sync
        return contextlib.nullcontext() if sync else self.hooks.accumulating()

    def grad_norm(self, run) -> float:
        norms, self._norms = self._norms, []
        if run.world > 1 or not norms:
            return math.nan
        return float(torch.linalg.vector_norm(torch.stack(norms)))


class _Factorized(_Standard):
    """Memory mode ``factorized`` (``subspace.factorize`` + ``subspace.FactorizedOptimizer``): every low-rank
    ``nn.Linear`` is W0 + B A before the strategy wraps the model; W0 (frozen), the factor A and the basis B are in
    the model's state, the factor's optimizer state is the standard state of its W (basis, moments, step). Under DDP
    only the factors and dense parameters are all-reduced (buffers are not broadcast: the bases agree by
    construction); a refresh step's full gradient is averaged over the default group by the optimizer. The
    gradient norm is that of the factors' gradients (Q^T G) and the dense ones, not of the full gradient."""
    name = "factorized"
    ddp_options = {"broadcast_buffers": False}

    def prepare(self, run) -> None:
        run.model = prepare_model(run.cfg, run.model)

    def build(self, run) -> torch.optim.Optimizer:
        group = None
        if run.distributed:
            import torch.distributed as dist
            group = dist.group.WORLD
        return make_optimizer(run.cfg, run.model, process_group=group)


def _memory_mode(cfg: ProbeConfig) -> _Standard:
    return (_FusedBackward if cfg.fused_backward else _Factorized if cfg.factorized else _Standard)()


class _ProbeRun:
    """The state of one probe run, shared by the stages of :func:`train`."""

    def __init__(self, cfg: ProbeConfig):
        """Set-up (``cfg`` already validated): join the process group, build data and model."""
        self.cfg = cfg
        self.rank, self.world, self.device, self.distributed, self.owns_pg = _dist_setup(cfg)
        self.main = self.rank == 0
        self.out = Path(cfg.out) if cfg.out else None
        self.config = cfg.to_dict()
        self.run_id = hashlib.sha1(json.dumps(cfg.identity(), sort_keys=True).encode()).hexdigest()[:12]
        self.version = code_version()

        torch.manual_seed(cfg.seed)
        self.data = build_data(cfg)
        self.model = build_model(cfg, self.data, self.device, DTYPES[cfg.dtype])
        self.model.train()
        self.net = self.model
        self.order = D.BatchOrder(self.data.n_train, cfg.batch_size, seed=cfg.seed)
        self.history = {"loss": [], "lr": []}
        self.start = 0
        self.last_good = None
        self.times = {"refresh": [], "update": []}
        self.tokens_seen = 0

    # --------------------------------------------------------------------------------------- resume
    def resume(self) -> None:
        """Restore weights, optimizer, schedule, RNG and history from the checkpoint; refuse a changed run."""
        cfg, out = self.cfg, self.out
        path = Path(cfg.resume) if isinstance(cfg.resume, str) else (ckpt.checkpoint_path(out) if out else None)
        if path is None:
            raise ValueError("resume=True needs out=<run folder>")
        ck = ckpt.load_checkpoint(path, map_location=self.device)
        saved = ProbeConfig(**{k: v for k, v in ck["config"].items() if k in self.config}).identity()
        diff = sorted(k for k in saved if saved[k] != cfg.identity()[k])
        if diff:
            raise ValueError(f"{path}: checkpoint was written with a different configuration "
                             f"({', '.join(f'{k}: {saved[k]!r} vs {cfg.identity()[k]!r}' for k in diff)})")
        if "sharded" in ck:
            ckpt.load_sharded(path.parent / ck["sharded"], self.model, self.optimizer)
        else:
            self.strategy.load_whole(self, ck, path)
        self.scheduler.load_state_dict(ck["scheduler"])
        ckpt.set_rng_state(ck["rng"])
        self.history = {k: list(v) for k, v in ck["history"].items()}
        self.start = int(ck["step"])
        if ck["data"].get("n_train") != self.data.n_train:
            raise ValueError(f"{path}: the data changed since the checkpoint "
                             f"(n_train {ck['data'].get('n_train')} vs {self.data.n_train})")
        if out is not None and cfg.resume is True:
            self.last_good = self.start
        if out is not None and self.main:
            _truncate_rows(out / ROWS, self.start)

    def distribute(self) -> None:
        """Choose the memory mode (standard, fused backward, factorized) and the strategy (one process, DDP or
        FSDP2; the mode says which data-parallel strategy serves it), let the mode transform the model and the
        strategy wrap it, then let the mode build the optimizer (on the parameters as the strategy leaves them:
        DTensors under FSDP2) and build the schedule."""
        cfg = self.cfg
        self.mode = _memory_mode(cfg)
        self.strategy = (_FSDP if cfg.fsdp else self.mode.ddp_strategy if self.distributed else _Replicated)()
        self.mode.prepare(self)
        self.net = self.strategy.wrap(self)
        self.optimizer = self.mode.build(self)
        warmup = cfg.warmup if cfg.warmup is not None else cfg.steps // 10
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, cfg.steps, warmup, cfg.min_lr_ratio))

    def begin(self) -> None:
        """After any resume: open the rows, pick the instrumented layers, start the clocks."""
        cfg = self.cfg
        rows_path = self.out / ROWS if (self.out is not None and self.main) else None
        self.rows = _Rows(rows_path, self.config, self.version, self.run_id)
        self.tracked = _tracked(self.optimizer, cfg.instrument_layers) if cfg.instrument_every else []
        self.tracked_ids = {id(p): name for name, p in self.tracked}
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.prev_bases = _bases(self.optimizer)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        self.t_run = time.perf_counter()
        self.log(f"probe {cfg.model}-{cfg.size} {cfg.optimizer} | {sum(p.numel() for p in self.params):,} params | "
                 f"{self.data.n_train} train / {self.data.n_val} val examples | world {self.world} "
                 f"({self.strategy.name}) | mode {cfg.memory_mode} | "
                 f"steps {self.start}->{cfg.steps}")

    def log(self, msg: str) -> None:
        if self.main and not self.cfg.quiet:
            print(msg, file=sys.stderr, flush=True)

    # --------------------------------------------------------------------------------------- step
    def step(self, step: int) -> _StepResult:
        """One optimizer step on the global batch of ``step``: micro-batches, loss all-reduce, clipping, update."""
        cfg, device = self.cfg, self.device
        _sync(device)
        t0 = time.perf_counter()
        try:
            loss_val, ntok = self._forward_backward(step)
        except FloatingPointError as exc:   # the screen of a mode that steps inside backward
            raise NonFiniteLoss(f"non-finite gradient at step {step} ({exc})") from exc
        if not math.isfinite(loss_val):
            raise NonFiniteLoss(f"non-finite loss ({loss_val}) at step {step}")
        gnorm = self.mode.grad_norm(self)
        lr_now = self.optimizer.param_groups[0]["lr"]
        t_step = time.perf_counter()
        try:
            self.optimizer.step()
        except FloatingPointError as exc:
            raise NonFiniteLoss(f"non-finite gradient at step {step} ({exc})") from exc
        _sync(device)
        t_opt = time.perf_counter() - t_step
        self.scheduler.step()
        bases = _bases(self.optimizer)
        refreshed = [pid for pid, Q in bases.items() if Q is not None and self.prev_bases.get(pid) is not Q]
        self.bases = bases
        dt = time.perf_counter() - t0
        (self.times["refresh"] if refreshed else self.times["update"]).append(t_opt)
        self.history["loss"].append(loss_val)
        self.history["lr"].append(lr_now)
        self.tokens_seen += ntok
        return _StepResult(loss_val, gnorm, lr_now, dt, t_opt, ntok, refreshed)

    def _forward_backward(self, step: int) -> tuple[float, int]:
        """Accumulate the gradient of the global batch; returns (mean loss over all ranks, tokens in the batch)."""
        cfg, device = self.cfg, self.device
        micro = cfg.batch_size // self.world // cfg.grad_accum
        idx = self.order.indices(step, self.rank, self.world)
        loss_acc = torch.zeros((), dtype=torch.float64, device=device)
        ntok = 0
        for j in range(cfg.grad_accum):
            b = {k: v.to(device) for k, v in self.data.train_batch(idx[j * micro:(j + 1) * micro]).items()}
            ntok += int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
            last = j == cfg.grad_accum - 1
            with self.strategy.accumulate(self.net, sync=last), self.mode.accumulate(sync=last):
                loss = self.net(**b).loss
                (loss / cfg.grad_accum).backward()
            loss_acc += loss.detach().double() / cfg.grad_accum
        if self.distributed:
            import torch.distributed as dist
            dist.all_reduce(loss_acc)
            loss_acc /= self.world
            t = torch.tensor([ntok], device=device)
            dist.all_reduce(t)
            ntok = int(t)
        return float(loss_acc), ntok

    # --------------------------------------------------------------------------------------- instrument
    def instrument(self, step: int, res: _StepResult) -> None:
        """After a step: train and instrument rows, periodic evaluation and checkpoint, the progress line."""
        cfg, rows = self.cfg, self.rows
        if self.main:
            self._write_train_rows(step, res)
        self.prev_bases = self.bases
        if cfg.instrument_every and (step % cfg.instrument_every == 0 or step == cfg.steps - 1):
            if self.main or self.strategy.sharded:  # sharded: every rank takes part in the gathers
                self._write_layer_rows(step)
            if self.distributed:
                _check_bases(self.optimizer, self.device, rows, step, self.world)
        self.optimizer.zero_grad(set_to_none=True)
        done = step + 1
        if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
            for k, v in evaluate(self.model, self.data, cfg, self.device).items():
                rows.write("eval", step, k, v)
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            self.save(done)
        rows.flush()
        if step % max(1, cfg.log_every) == 0 or done == cfg.steps:
            self._log_progress(done, res)

    def _write_train_rows(self, step: int, res: _StepResult) -> None:
        for metric, value in (("loss", res.loss), ("lr", res.lr), ("grad_norm", res.grad_norm),
                              ("step_time_s", res.step_time_s), ("optimizer_time_s", res.optimizer_time_s),
                              ("tokens_per_s", res.tokens / res.step_time_s), ("refresh", bool(res.refreshed)),
                              ("peak_memory_bytes", _peak_memory(self.device))):
            self.rows.write("train", step, metric, value)
        # consecutive bases of tracked layers: principal angles at every refresh
        for pid in res.refreshed:
            if pid in self.tracked_ids and self.prev_bases.get(pid) is not None:
                for k, v in I.basis_stats(self.prev_bases[pid], self.bases[pid]).items():
                    self.rows.write("instrument", step, f"basis.{k}", v, layer=self.tracked_ids[pid])

    def _write_layer_rows(self, step: int) -> None:
        self.rows.write("instrument", step, "optimizer.state_bytes", self._state_bytes())
        for name, p in self.tracked:
            param, state = self.strategy.whole_layer(p, self.optimizer.state.get(p, {}))
            if not self.main:
                continue
            rep = I.layer_report(param, state, max_sv=self.cfg.max_sv)
            for k, v in rep.items():
                self.rows.write("instrument", step, k, v, layer=name)

    def _log_progress(self, done: int, res: _StepResult) -> None:
        total = self.cfg.steps
        filled = int(20 * done / total)
        self.log(f"[{'#' * filled}{'.' * (20 - filled)}] step {done}/{total} | loss {res.loss:.4f} | "
                 f"lr {res.lr:.2e} | {res.tokens / res.step_time_s:,.0f} tok/s | "
                 f"mem {_peak_memory(self.device) / 2**20:,.0f} MiB | {1e3 * res.step_time_s:.0f} ms"
                 + (" | refresh" if res.refreshed else ""))

    def _state_bytes(self) -> int:
        """Bytes of optimizer state this rank holds (under FSDP2: its shards plus the replicated bases)."""
        return sum(state_bytes({k: local(v) for k, v in s.items()}) for s in self.optimizer.state.values())

    def save(self, step_done: int) -> None:
        """Checkpoint the state after ``step_done`` steps (with an output folder only): the strategy writes model
        and optimizer (FSDP2: every rank its shards), then rank 0 the file."""
        cfg, out = self.cfg, self.out
        if out is None:
            return
        sharded = self.strategy.save_sharded(self, step_done)
        if not self.main:
            return
        pos = {"step": step_done, "seed": cfg.seed, "batch_size": cfg.batch_size, "n_train": self.data.n_train,
               "epoch": self.order.epoch(step_done)}
        kw = dict(step=step_done, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                  config=self.config, data_position=pos, history=self.history, code_version=self.version,
                  sharded=sharded)
        ckpt.save_checkpoint(ckpt.checkpoint_path(out), **kw)
        if cfg.keep_checkpoints:
            ckpt.save_checkpoint(ckpt.checkpoint_path(out, step_done), **kw)
        if sharded is not None and not cfg.keep_checkpoints:
            ckpt.prune_sharded(out, keep={sharded})
        self.last_good = step_done

    def stop(self, reason, kind: str) -> str:
        """Log why the run stopped early and where it can continue from; writes a ``stop`` row; returns the
        message."""
        where = (f"the last checkpoint, {ckpt.checkpoint_path(self.out)}, holds step {self.last_good}"
                 if self.last_good is not None else "no checkpoint had been written yet")
        detail = self.mode.nonfinite_detail if kind == "nonfinite" else "run stopped"
        message = f"{reason}; {detail}; {where}"
        self.log("ERROR: " + message if kind == "nonfinite" else message)
        self.rows.write("stop", len(self.history["loss"]), kind, message)
        return message

    # --------------------------------------------------------------------------------------- finish
    def finish(self, status: str, message: str) -> dict:
        """Final checkpoint and evaluation (if the run is healthy), summary row and file, process-group teardown."""
        cfg, history = self.cfg, self.history
        steps_done = len(history["loss"])
        evals = {}
        if status == "ok":
            if not cfg.checkpoint_every or steps_done % cfg.checkpoint_every:
                self.save(steps_done)
            evals = evaluate(self.model, self.data, cfg, self.device)
            for k, v in evals.items():
                self.rows.write("eval_final", steps_done - 1, k, v)
            if self.distributed:
                _check_bases(self.optimizer, self.device, self.rows, steps_done - 1, self.world)
        summary = self._summary(status, message, steps_done, evals)
        if self.main:
            for k in ("tokens_per_s", "optimizer_time_refresh_s", "optimizer_time_update_s", "peak_memory_bytes",
                      "optimizer_state_bytes"):
                self.rows.write("summary", steps_done - 1, k, summary[k])
            if self.out is not None:
                atomic_write_text(self.out / SUMMARY, dumps(summary, indent=1) + "\n")
        self.rows.close()
        if self.owns_pg:
            import torch.distributed as dist
            dist.barrier()
        self.leave_group()
        return {**summary, "losses": history["loss"], "lrs": history["lr"],
                "out": str(self.out) if self.out else None}

    def leave_group(self) -> None:
        """Destroy the process group if this run created it."""
        if self.owns_pg:
            import torch.distributed as dist
            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_pg = False

    def _summary(self, status: str, message: str, steps_done: int, evals: dict) -> dict:
        wall = time.perf_counter() - self.t_run
        losses = self.history["loss"]
        return {"status": status, "message": message, "steps_done": steps_done, "memory_mode": self.cfg.memory_mode,
                "final_loss": losses[-1] if losses else None, "eval": evals, "world_size": self.world,
                "tokens_per_s": self.tokens_seen / wall if wall > 0 else None, "wall_s": wall,
                "optimizer_time_refresh_s": _mean(self.times["refresh"]),
                "optimizer_time_update_s": _mean(self.times["update"]),
                "n_refresh_steps": len(self.times["refresh"]), "peak_memory_bytes": _peak_memory(self.device),
                "optimizer_state_bytes": self._state_bytes(), "last_checkpoint_step": self.last_good,
                "data": self.data.info,
                "code_version": self.version, "run": self.run_id, "config": self.config}


def _validate(cfg: ProbeConfig) -> None:
    """Refuse, before any work, a configuration the loop cannot run or would silently ignore, naming the field
    and what is allowed."""
    for name, (lo, hi) in BOUNDS.items():
        value = getattr(cfg, name)
        if value is not None and ((lo is not None and value < lo) or (hi is not None and value > hi)):
            allowed = " and ".join(f"{op} {b}" for op, b in ((">=", lo), ("<=", hi)) if b is not None)
            raise ValueError(f"{name}={value!r} is invalid; allowed: {allowed}")
    if cfg.resume and cfg.overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run in out, or replace it")
    if cfg.model not in ("llama", "roberta"):
        raise ValueError(f"model={cfg.model!r} is invalid; allowed: llama, roberta")
    sizes = LLAMA_SIZES if cfg.model == "llama" else ROBERTA_SIZES
    if cfg.size not in sizes:
        raise ValueError(f"size={cfg.size!r} is invalid for {cfg.model}; allowed: {', '.join(sizes)}")
    if cfg.warmup is not None and cfg.warmup > cfg.steps:
        raise ValueError(f"warmup={cfg.warmup} is invalid; allowed: at most steps={cfg.steps}")
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype={cfg.dtype!r} is invalid; allowed: {list(DTYPES)}")
    if cfg.optimizer not in subspace.available():
        raise ValueError(f"optimizer={cfg.optimizer!r} is unknown; allowed: {subspace.available()}")
    if cfg.model == "llama" and cfg.dropout is not None:
        raise ValueError("dropout applies to model='roberta' only (the LLaMA probes have no dropout)")
    _validate_memory_mode(cfg)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % (world * cfg.grad_accum):
        raise ValueError(f"batch_size={cfg.batch_size} is invalid; allowed: a multiple of world size x grad_accum "
                         f"= {world} x {cfg.grad_accum}")
    check_device(cfg.device)


def _validate_memory_mode(cfg: ProbeConfig) -> None:
    """The memory-mode fields and their combinations (each message names the fields and their flags)."""
    if cfg.state_bits not in (32, 8):
        raise ValueError(f"state_bits={cfg.state_bits!r} (--state-bits) is invalid; allowed: 32, 8")
    if "state_bits" in cfg.opt_kwargs:
        raise ValueError("give 8-bit states with state_bits (--state-bits 8), not opt_kwargs (--opt state_bits=...): "
                         "the run records the memory mode from state_bits")
    if cfg.clip_rule not in ("global", "per-parameter"):
        raise ValueError(f"clip_rule={cfg.clip_rule!r} (--clip-rule) is invalid; allowed: global, per-parameter")
    if cfg.fused_backward and cfg.factorized:
        raise ValueError("fused_backward (--fused-backward) and factorized (--factorized) exclude each other: the "
                         "factorized optimizer cannot step from backward hooks (a factor's hook can fire before a "
                         "refresh step's full gradient is complete)")
    if cfg.fused_backward and cfg.clip > 0 and cfg.clip_rule == "global":
        raise ValueError(f"clip={cfg.clip} (--clip) with the global rule cannot be combined with fused_backward "
                         "(--fused-backward): a global gradient norm needs every gradient before the first "
                         "parameter steps; clip each parameter's gradient on its own with clip_rule='per-parameter' "
                         "(--clip-rule per-parameter), or drop --clip")
    if cfg.factorized:
        if cfg.optimizer not in FACTORIZABLE:
            raise ValueError(f"factorized (--factorized) is invalid with optimizer={cfg.optimizer!r} (--optimizer); "
                             f"allowed: {', '.join(FACTORIZABLE)} (a refreshed projector, no complement term)")
        if cfg.optimizer.startswith("sumo") and cfg.opt_kwargs.get("complement_scale", 1.0) != 0:
            raise ValueError(f"factorized (--factorized) with optimizer={cfg.optimizer!r} needs the complement term "
                             "off: opt_kwargs complement_scale=0 (--opt complement_scale=0); the complement "
                             "(I - Q Q^T) G needs the full gradient at every step")
        if cfg.selection != "default":
            raise ValueError(f"factorized (--factorized) is invalid with selection={cfg.selection!r} "
                             "(--selection); allowed: default (the core's param_groups choose the layers)")
        if cfg.clip > 0:
            raise ValueError(f"clip={cfg.clip} (--clip) cannot be combined with factorized (--factorized): the "
                             "factors' gradients are Q^T G, so their norm is not the full gradient's and clipping "
                             "would leave the standard trajectory")
        if cfg.instrument_every:
            raise ValueError("instrument_every (--instrument-every) cannot be combined with factorized "
                             "(--factorized): the layer instruments read the full m x n gradient and weight, which "
                             "the factorized form does not hold")
    if cfg.fsdp:
        for name, flag, on in (("fused_backward", "--fused-backward", cfg.fused_backward),
                               ("factorized", "--factorized", cfg.factorized),
                               ("state_bits=8", "--state-bits 8", cfg.state_bits == 8),
                               ("clip_rule='per-parameter'", "--clip-rule per-parameter",
                                cfg.clip > 0 and cfg.clip_rule == "per-parameter")):
            if on:
                raise ValueError(f"{name} ({flag}) is not supported with fsdp (--fsdp): the core steps FSDP2 "
                                 "shards in optimizer.step() only (no per-parameter hooks on sharded gradients, no "
                                 "factorized or 8-bit DTensor states yet); run it without --fsdp (DDP under "
                                 "torchrun, or one process)")


def _mean(xs: list) -> float | None:
    return sum(xs) / len(xs) if xs else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _check_bases(optimizer, device, rows, step, world) -> bool:
    """Gather a fingerprint of every projection basis from all ranks; write ``ddp.bases_identical``."""
    import torch.distributed as dist

    fp = _basis_fingerprint(optimizer, device)
    gathered = [torch.zeros_like(fp) for _ in range(world)]
    dist.all_gather(gathered, fp)
    same = all(torch.equal(g, gathered[0]) for g in gathered)
    rows.write("instrument", step, "ddp.bases_identical", same)
    return same
