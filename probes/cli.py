"""``sublab probe llama|roberta ...``: the command-line face of ``probes.train`` (also ``python -m probes ...``).

    sublab probe llama --size tiny --optimizer galore --rank 8 --update-gap 50 --steps 200 --out runs/tiny-galore
    sublab probe llama ... --resume                       # continue from runs/tiny-galore/checkpoint.pt
    torchrun --nproc_per_node 2 -m probes llama ...       # DDP (gloo on CPU, NCCL with --device cuda)
    sublab probe roberta --size tiny --optimizer sumo --rank 4 --data glue/RTE --glue-task rte --out runs/rte
    sublab probe memory                                   # parameter + optimizer-state memory vs the papers

Exit status: 0 on success, 3 when the run stopped at a non-finite loss, 2 on a usage or input error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

__all__ = ["add_arguments", "main", "config_from_args"]


def _kv(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        val = json.loads(v)
    except json.JSONDecodeError:
        val = v
    if isinstance(val, list):
        val = tuple(val)
    return k.replace("-", "_"), val


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``probe`` subcommand's arguments to ``parser``."""
    parser.add_argument("model", choices=["llama", "roberta", "memory"],
                        help="model family to train, or 'memory' for the meta-device memory table")
    parser.add_argument("--size", default="tiny",
                        help="llama: tiny, 9m, 20m, 35m, 60m, 130m, 350m, 1b, 7b; roberta: tiny, small, base")
    parser.add_argument("--optimizer", default="adamw", help="a name of subspace.available()")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--rank", type=int)
    parser.add_argument("--update-gap", type=int)
    parser.add_argument("--scale", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--mode", choices=["paper", "official"], default="paper")
    parser.add_argument("--opt", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                        help="further subspace.make keyword (JSON value), repeatable, e.g. --opt momentum=0.9")
    parser.add_argument("--selection", choices=["default", "galore", "all-linear"], default="default",
                        help="which matrices are low-rank (all-linear = SN/SM's rule, incl. lm_head)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, help="warmup steps (default 10%% of --steps)")
    parser.add_argument("--min-lr-ratio", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=8, help="global batch in sequences")
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--clip", type=float, default=0.0, help="grad-norm clipping (0: off)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", help="text/JSONL(.gz) file or folder (llama), GLUE folder (roberta)")
    parser.add_argument("--tokenizer", help="folder with a tokenizer saved by save_pretrained (default: bytes)")
    parser.add_argument("--glue-task", help="rte, qnli, sst-2, mrpc, cola, qqp, mnli, wnli (with --data)")
    parser.add_argument("--num-topics", type=int, default=4, help="default roberta task: k pydoc topics")
    parser.add_argument("--dropout", type=float)
    parser.add_argument("--instrument-every", type=int, default=0, metavar="K")
    parser.add_argument("--instrument-layers", nargs="+", metavar="REGEX")
    parser.add_argument("--max-sv", type=int, help="store only the top singular values")
    parser.add_argument("--eval-every", type=int, default=0)
    parser.add_argument("--eval-batches", type=int, default=16)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--keep-checkpoints", action="store_true")
    parser.add_argument("--out", help="run folder (rows.jsonl, summary.json, checkpoint.pt)")
    parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                        help="resume from OUT/checkpoint.pt, or from the given checkpoint file")
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--sizes", nargs="+", help="memory: sizes (default 60m 130m 350m 1b 7b)")
    parser.add_argument("--methods", nargs="+", help="memory: methods (default all)")
    parser.add_argument("--json", help="memory: also write the rows to this JSON file")
    return parser


def config_from_args(args):
    from .train import ProbeConfig

    return ProbeConfig(
        model=args.model, size=args.size, optimizer=args.optimizer, lr=args.lr, rank=args.rank,
        update_gap=args.update_gap, scale=args.scale, weight_decay=args.weight_decay, mode=args.mode,
        opt_kwargs=dict(args.opt), selection=args.selection, steps=args.steps, warmup=args.warmup,
        min_lr_ratio=args.min_lr_ratio, batch_size=args.batch_size, grad_accum=args.grad_accum,
        seq_len=args.seq_len, clip=args.clip, device=args.device, dtype=args.dtype, seed=args.seed, data=args.data,
        tokenizer=args.tokenizer, glue_task=args.glue_task, num_topics=args.num_topics, dropout=args.dropout,
        instrument_every=args.instrument_every, instrument_layers=args.instrument_layers, max_sv=args.max_sv,
        eval_every=args.eval_every, eval_batches=args.eval_batches, log_every=args.log_every,
        checkpoint_every=args.checkpoint_every, keep_checkpoints=args.keep_checkpoints, out=args.out,
        resume=args.resume, quiet=args.quiet)


def _memory(args) -> int:
    from .memory import SIZES, format_table, memory_table

    rows = memory_table(sizes=tuple(args.sizes or SIZES), methods=args.methods)
    print(format_table(rows))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


def main(args) -> int:
    """Run the ``probe`` subcommand from parsed ``args``; returns the exit status."""
    try:
        if args.model == "memory":
            return _memory(args)
        from .train import train

        result = train(config_from_args(args))
    except (ValueError, FileNotFoundError) as exc:
        print(f"sublab probe: error: {exc}", file=sys.stderr)
        return 2
    if result["status"] != "ok":
        return 3
    if result.get("eval") and os.environ.get("RANK", "0") == "0":
        print(json.dumps({"final_loss": result["final_loss"], **result["eval"]}))
    return 0


def _standalone(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m probes", description=__doc__.splitlines()[0])
    return main(add_arguments(parser).parse_args(argv))
