"""The probe training loop: a LLaMA or RoBERTa model trained through the shared optimizer core, instrumented,
checkpointed, resumable and DDP-aware.

    from probes.train import ProbeConfig, train
    result = train(ProbeConfig(model="llama", size="tiny", optimizer="galore", rank=8, steps=50, out="runs/x"))

Per step: the global batch ``batch_size`` (sequences) is split across DDP ranks and into ``grad_accum``
micro-batches; the loss is the mean over the global batch; optional ``clip_grad_norm_``; the optimizer comes from
``subspace.make(optimizer, subspace.param_groups(model, selection))``; the schedule is GaLore's (reference §1.2):
linear warmup whose factor is ``step / warmup`` (so the first step uses lr 0 when warmup > 0) and a cosine to
``min_lr_ratio`` (0.1) after it.

Outputs in ``out``: ``rows.jsonl`` (long format: one row per step/metric[/layer], each carrying the full
configuration and the code version), ``summary.json``, ``checkpoint.pt`` (atomic, every ``checkpoint_every``
steps and at the end) and, with ``keep_checkpoints``, ``checkpoint-<step>.pt`` copies.

Exactness of ``resume``: the batch at step t is a pure function of (seed, t) (``data.BatchOrder``), model
weights, optimizer state (with its generator), scheduler and the global RNG (dropout) are restored bit for bit,
so on CPU a resumed run reproduces the uninterrupted run's losses exactly.

A non-finite loss (or a non-finite gradient, which the core rejects) stops the run before the update, with a
message naming the step; the last checkpoint written is the last good one and is never overwritten by the bad step.

Distributed: under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in DistributedDataParallel (gloo on
CPU, NCCL on CUDA); every rank builds the same model (seeded init) and the same optimizer (seeded generator), so
projection bases agree across ranks; ``ddp.bases_identical`` rows check it by gathering a fingerprint of every
basis at each instrument step and at the end.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import subspace

from . import checkpoint as ckpt
from . import data as D
from . import instruments as I
from .models import build_llama, build_roberta, selection_groups

__all__ = ["ProbeConfig", "train", "code_version", "lr_factor", "NonFiniteLoss"]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}
_METHOD_KEYS = ("rank", "update_gap", "scale", "weight_decay")


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
    quiet: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def identity(self) -> dict:
        """The keys a resumed run must share with the checkpoint (everything that changes the numbers)."""
        d = self.to_dict()
        for k in ("out", "resume", "quiet", "log_every", "checkpoint_every", "keep_checkpoints", "instrument_every",
                  "instrument_layers", "max_sv", "eval_every", "eval_batches", "device"):
            d.pop(k)
        return d


# ----------------------------------------------------------------------------------------------- helpers
_VERSION: str | None = None


def code_version() -> str:
    """``git describe --always --dirty --tags`` of the source tree, else the installed package version."""
    global _VERSION
    if _VERSION is None:
        root = Path(__file__).resolve().parent.parent
        try:
            _VERSION = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=root,
                                      capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            _VERSION = ""
        if not _VERSION:
            try:
                from importlib.metadata import version
                _VERSION = "sublab " + version("sublab")
            except Exception:
                _VERSION = "unknown"
    return _VERSION


def lr_factor(step: int, total: int, warmup: int, min_ratio: float = 0.1) -> float:
    """GaLore's cosine schedule with linear warmup (factor ``step/warmup``, 0 at step 0; cosine to ``min_ratio``)."""
    if warmup > 0 and step < warmup:
        return step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    progress = min(max(progress, 0.0), 1.0)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list):
        return [_json_value(x) for x in v]
    return v


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux: KiB
    except Exception:
        return 0


class _Rows:
    """Long-format JSONL writer; every row carries the run id, configuration and code version."""

    def __init__(self, path: Path | None, config: dict, version: str, run_id: str):
        self.path, self.fh = path, None
        self.base = {"run": run_id, "code_version": version, "config": config}
        if path is not None:
            self.fh = open(path, "a", encoding="utf-8")

    def write(self, kind: str, step: int, metric: str, value, **extra) -> None:
        if self.fh is None:
            return
        row = {"kind": kind, "step": step, "metric": metric, "value": _json_value(value), **extra, **self.base}
        self.fh.write(json.dumps(row, allow_nan=False) + "\n")

    def flush(self) -> None:
        if self.fh is not None:
            self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _truncate_rows(path: Path, start_step: int) -> None:
    """On resume, drop rows a killed run wrote after its checkpoint (atomically rewrites the file)."""
    if not path.exists():
        return
    keep = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line
            if row.get("step", -1) < start_step and row.get("kind") not in ("summary", "stop", "eval_final"):
                keep.append(line if line.endswith("\n") else line + "\n")
    with ckpt.atomic_path(path) as tmp:
        tmp.write_text("".join(keep), encoding="utf-8")


# ----------------------------------------------------------------------------------------------- setup
def _dist_setup(cfg: ProbeConfig):
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, torch.device(cfg.device), False
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cfg.device.startswith("cuda"):
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dist.get_rank(), dist.get_world_size(), device, True


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


def make_optimizer(cfg: ProbeConfig, model) -> torch.optim.Optimizer:
    """The one place the optimizer is chosen: ``subspace.make`` on ``selection_groups(model, cfg.selection)``."""
    hp = {k: getattr(cfg, k) for k in _METHOD_KEYS if getattr(cfg, k) is not None}
    hp.update(cfg.opt_kwargs)
    if cfg.optimizer.startswith("golore") and "golore_fraction" in hp:
        hp.setdefault("total_steps", cfg.steps)
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

    ``status`` is ``"ok"`` or ``"nonfinite"`` (the run stopped at a non-finite loss or gradient).
    """
    if cfg.steps < 1:
        raise ValueError(f"steps must be >= 1, got {cfg.steps}")
    if cfg.dtype not in _DTYPES:
        raise ValueError(f"dtype={cfg.dtype!r} is invalid; allowed: {list(_DTYPES)}")
    if cfg.optimizer not in subspace.available():
        raise ValueError(f"optimizer={cfg.optimizer!r} is unknown; allowed: {subspace.available()}")
    owns_pg = False
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch.distributed as dist
        owns_pg = not dist.is_initialized()
    rank, world, device, distributed = _dist_setup(cfg)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device=cuda requested but CUDA is not available")
    if cfg.batch_size % (world * cfg.grad_accum):
        raise ValueError(f"batch_size={cfg.batch_size} must be divisible by world size x grad_accum "
                         f"= {world} x {cfg.grad_accum}")
    dtype = _DTYPES[cfg.dtype]
    out = Path(cfg.out) if cfg.out else None
    main = rank == 0
    if out is not None and main:
        out.mkdir(parents=True, exist_ok=True)
    config = cfg.to_dict()
    run_id = hashlib.sha1(json.dumps(cfg.identity(), sort_keys=True).encode()).hexdigest()[:12]
    version = code_version()

    torch.manual_seed(cfg.seed)
    data = build_data(cfg)
    model = build_model(cfg, data, device, dtype)
    model.train()
    optimizer = make_optimizer(cfg, model)
    warmup = cfg.warmup if cfg.warmup is not None else cfg.steps // 10
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, cfg.steps, warmup, cfg.min_lr_ratio))
    order = D.BatchOrder(data.n_train, cfg.batch_size, seed=cfg.seed)
    history = {"loss": [], "lr": []}
    start = 0

    if cfg.resume:
        path = Path(cfg.resume) if isinstance(cfg.resume, str) else (ckpt.checkpoint_path(out) if out else None)
        if path is None:
            raise ValueError("resume=True needs out=<run folder>")
        ck = ckpt.load_checkpoint(path, map_location=device)
        saved = ProbeConfig(**{k: v for k, v in ck["config"].items() if k in config}).identity()
        diff = sorted(k for k in saved if saved[k] != cfg.identity()[k])
        if diff:
            raise ValueError(f"{path}: checkpoint was written with a different configuration "
                             f"({', '.join(f'{k}: {saved[k]!r} vs {cfg.identity()[k]!r}' for k in diff)})")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        ckpt.set_rng_state(ck["rng"])
        history = {k: list(v) for k, v in ck["history"].items()}
        start = int(ck["step"])
        if ck["data"].get("n_train") != data.n_train:
            raise ValueError(f"{path}: the data changed since the checkpoint "
                             f"(n_train {ck['data'].get('n_train')} vs {data.n_train})")
        if out is not None and main:
            _truncate_rows(out / "rows.jsonl", start)

    net = model
    if distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP
        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    rows = _Rows(out / "rows.jsonl" if (out is not None and main) else None, config, version, run_id)
    tracked = _tracked(optimizer, cfg.instrument_layers) if cfg.instrument_every else []
    tracked_ids = {id(p): name for name, p in tracked}
    params = [p for p in model.parameters() if p.requires_grad]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def save(step_done: int) -> None:
        if out is None or not main:
            return
        pos = {"step": step_done, "seed": cfg.seed, "batch_size": cfg.batch_size, "n_train": data.n_train,
               "epoch": order.epoch(step_done)}
        kw = dict(step=step_done, model=model, optimizer=optimizer, scheduler=scheduler, config=config,
                  data_position=pos, history=history, code_version=version)
        ckpt.save_checkpoint(ckpt.checkpoint_path(out), **kw)
        if cfg.keep_checkpoints:
            ckpt.save_checkpoint(ckpt.checkpoint_path(out, step_done), **kw)

    def log(msg: str) -> None:
        if main and not cfg.quiet:
            print(msg, file=sys.stderr, flush=True)

    status, message, evals = "ok", "", {}
    times = {"refresh": [], "update": []}
    prev_bases = _bases(optimizer)
    last_good = start if (cfg.resume and out is not None) else None
    per_rank = cfg.batch_size // world
    micro = per_rank // cfg.grad_accum
    t_run = time.perf_counter()
    tokens_seen = 0
    if main:
        log(f"probe {cfg.model}-{cfg.size} {cfg.optimizer} | {sum(p.numel() for p in params):,} params | "
            f"{data.n_train} train / {data.n_val} val examples | world {world} | steps {start}->{cfg.steps}")
    try:
        for step in range(start, cfg.steps):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            idx = order.indices(step, rank, world)
            loss_acc = torch.zeros((), dtype=torch.float64, device=device)
            ntok = 0
            for j in range(cfg.grad_accum):
                b = {k: v.to(device) for k, v in data.train_batch(idx[j * micro:(j + 1) * micro]).items()}
                ntok += int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel()
                sync = (not distributed) or j == cfg.grad_accum - 1
                with (contextlib.nullcontext() if sync else net.no_sync()):
                    loss = net(**b).loss
                    (loss / cfg.grad_accum).backward()
                loss_acc += loss.detach().double() / cfg.grad_accum
            if distributed:
                import torch.distributed as dist
                dist.all_reduce(loss_acc)
                loss_acc /= world
                t = torch.tensor([ntok], device=device)
                dist.all_reduce(t)
                ntok = int(t)
            loss_val = float(loss_acc)
            if not math.isfinite(loss_val):
                raise NonFiniteLoss(f"non-finite loss ({loss_val}) at step {step}")
            if cfg.clip > 0:
                gnorm = float(torch.nn.utils.clip_grad_norm_(params, cfg.clip))
            else:
                gnorm = float(torch.linalg.vector_norm(torch.stack(
                    [torch.linalg.vector_norm(p.grad.detach().float()) for p in params if p.grad is not None])))
            lr_now = optimizer.param_groups[0]["lr"]
            t_step = time.perf_counter()
            try:
                optimizer.step()
            except FloatingPointError as exc:
                raise NonFiniteLoss(f"non-finite gradient at step {step} ({exc})") from exc
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t_opt = time.perf_counter() - t_step
            scheduler.step()
            bases = _bases(optimizer)
            refreshed = [pid for pid, Q in bases.items() if Q is not None and prev_bases.get(pid) is not Q]
            dt = time.perf_counter() - t0
            (times["refresh"] if refreshed else times["update"]).append(t_opt)
            history["loss"].append(loss_val)
            history["lr"].append(lr_now)
            tokens_seen += ntok
            if main:
                for metric, value in (("loss", loss_val), ("lr", lr_now), ("grad_norm", gnorm),
                                      ("step_time_s", dt), ("optimizer_time_s", t_opt),
                                      ("tokens_per_s", ntok / dt), ("refresh", bool(refreshed)),
                                      ("peak_memory_bytes", _peak_memory(device))):
                    rows.write("train", step, metric, value)
                # consecutive bases of tracked layers: principal angles at every refresh
                for pid in refreshed:
                    if pid in tracked_ids and prev_bases.get(pid) is not None:
                        for k, v in I.basis_stats(prev_bases[pid], bases[pid]).items():
                            rows.write("instrument", step, f"basis.{k}", v, layer=tracked_ids[pid])
            prev_bases = bases
            if cfg.instrument_every and (step % cfg.instrument_every == 0 or step == cfg.steps - 1):
                if main:
                    total_state = sum(I.state_bytes(s) for s in optimizer.state.values())
                    rows.write("instrument", step, "optimizer.state_bytes", total_state)
                    for name, p in tracked:
                        rep = I.layer_report(p, optimizer.state.get(p, {}), max_sv=cfg.max_sv)
                        for k, v in rep.items():
                            rows.write("instrument", step, k, v, layer=name)
                if distributed:
                    _check_bases(optimizer, device, rows, step, world)
            optimizer.zero_grad(set_to_none=True)
            done = step + 1
            if cfg.eval_every and done % cfg.eval_every == 0 and done < cfg.steps:
                ev = evaluate(model, data, cfg, device)
                for k, v in ev.items():
                    rows.write("eval", step, k, v)
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                save(done)
                last_good = done if out is not None else last_good
            rows.flush()
            if main and (step % max(1, cfg.log_every) == 0 or done == cfg.steps):
                frac = done / cfg.steps
                bar = "#" * int(20 * frac) + "." * (20 - int(20 * frac))
                log(f"[{bar}] step {done}/{cfg.steps} | loss {loss_val:.4f} | lr {lr_now:.2e} | "
                    f"{ntok / dt:,.0f} tok/s | mem {_peak_memory(device) / 2**20:,.0f} MiB | {1e3 * dt:.0f} ms"
                    + (" | refresh" if refreshed else ""))
    except NonFiniteLoss as exc:
        status = "nonfinite"
        where = (f"last good checkpoint: {ckpt.checkpoint_path(out)} (after step {last_good})"
                 if last_good is not None else "no checkpoint had been written yet")
        message = f"{exc}; run stopped before updating the weights; {where}"
        log("ERROR: " + message)
        rows.write("stop", len(history["loss"]), "nonfinite", message)
    steps_done = len(history["loss"])
    if status == "ok":
        if not cfg.checkpoint_every or steps_done % cfg.checkpoint_every:
            save(steps_done)
        evals = evaluate(model, data, cfg, device)
        for k, v in evals.items():
            rows.write("eval_final", steps_done - 1, k, v)
        if distributed:
            _check_bases(optimizer, device, rows, steps_done - 1, world)
    wall = time.perf_counter() - t_run
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    summary = {"status": status, "message": message, "steps_done": steps_done, "final_loss":
               history["loss"][-1] if history["loss"] else None, "eval": evals, "world_size": world,
               "tokens_per_s": tokens_seen / wall if wall > 0 else None, "wall_s": wall,
               "optimizer_time_refresh_s": mean(times["refresh"]), "optimizer_time_update_s": mean(times["update"]),
               "n_refresh_steps": len(times["refresh"]), "peak_memory_bytes": _peak_memory(device),
               "optimizer_state_bytes": sum(I.state_bytes(s) for s in optimizer.state.values()),
               "data": data.info, "code_version": version, "run": run_id, "config": config}
    if main:
        for k in ("tokens_per_s", "optimizer_time_refresh_s", "optimizer_time_update_s", "peak_memory_bytes",
                  "optimizer_state_bytes"):
            rows.write("summary", steps_done - 1, k, summary[k])
        if out is not None:
            with ckpt.atomic_path(out / "summary.json") as tmp:
                tmp.write_text(json.dumps({k: _json_value(v) for k, v in summary.items()}, indent=1, default=str))
    rows.close()
    if owns_pg:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()
    return {**summary, "losses": history["loss"], "lrs": history["lr"], "out": str(out) if out else None}


def _check_bases(optimizer, device, rows, step, world) -> bool:
    """Gather a fingerprint of every projection basis from all ranks; write ``ddp.bases_identical``."""
    import torch.distributed as dist

    fp = _basis_fingerprint(optimizer, device)
    gathered = [torch.zeros_like(fp) for _ in range(world)]
    dist.all_gather(gathered, fp)
    same = all(torch.equal(g, gathered[0]) for g in gathered)
    rows.write("instrument", step, "ddp.bases_identical", same)
    return same
