"""``sublab probe llama|roberta|memory ...``: the command-line face of ``probes.train`` and ``probes.memory`` (also
``python -m probes ...``).

    sublab probe llama --size tiny --optimizer galore --rank 8 --update-gap 50 --steps 200 --out runs/tiny-galore
    sublab probe llama ... --resume                       # continue from runs/tiny-galore/checkpoint.pt
    sublab probe llama ... --overwrite                    # replace the run in runs/tiny-galore
    torchrun --nproc_per_node 2 -m probes llama ...       # DDP (gloo on CPU, NCCL with --device cuda)
    torchrun --nproc_per_node 2 -m probes llama --fsdp ...   # FSDP2: fully_shard per layer, sharded checkpoints
    sublab probe llama ... --fused-backward --state-bits 8 # memory modes: per-layer steps, 8-bit states
    sublab probe llama --optimizer golore ... --factorized # W0 + B A: no m x n gradient between refreshes
    sublab probe roberta --size tiny --optimizer sumo --rank 4 --data glue/RTE --glue-task rte --out runs/rte
    sublab probe memory                                   # parameter + optimizer-state memory vs the papers (GiB)

Every value is checked before any work: a bad one is refused with the option's name and what it allows.
Exit status: 0 on success, 2 on a usage or input error (bad value, missing data, an output folder that already holds
a run or is in use by another run), 3 when the run stopped at a non-finite loss, 130 when interrupted (Ctrl-C:
the summary is written and the exact ``--resume`` command is printed).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys

from records import FolderBusy, writable_file
from records.options import DefaultsHelpFormatter, integer, number, one_of

__all__ = ["add_arguments", "main", "config_from_args", "command_line"]

SIZES_HELP = "llama: tiny, 9m, 20m, 35m, 60m, 130m, 350m, 1b, 7b; roberta: tiny, small, base"
MEMORY_SIZES = ("tiny", "9m", "20m", "35m", "60m", "130m", "350m", "1b", "7b")
#: Options of ``llama``/``roberta`` whose destination differs from the ProbeConfig field name.
_FIELD_OF = {"opt": "opt_kwargs"}


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


def _bounded(name: str, kind):
    """The argparse type of ProbeConfig field ``name``: ``kind`` within ``probes.train.BOUNDS[name]``."""
    from .train import BOUNDS

    return (integer if kind is int else number)(*BOUNDS[name])


def _training_options() -> argparse.ArgumentParser:
    """The options shared by ``llama`` and ``roberta`` (a parent parser)."""
    import subspace

    p = argparse.ArgumentParser(add_help=False)
    b = _bounded
    model = p.add_argument_group("model and optimizer")
    model.add_argument("--size", default="tiny", help=SIZES_HELP)
    model.add_argument("--optimizer", default="adamw", type=one_of(subspace.available(), "optimizer"),
                       metavar="NAME", help=f"one of {', '.join(subspace.available())}")
    model.add_argument("--lr", type=b("lr", float), default=1e-3, help="peak learning rate")
    model.add_argument("--rank", type=b("rank", int), help="subspace rank r (default: the preset's)")
    model.add_argument("--update-gap", type=b("update_gap", int),
                       help="steps between basis refreshes T (default: the preset's)")
    model.add_argument("--scale", type=b("scale", float), help="update scale alpha (default: the preset's)")
    model.add_argument("--weight-decay", type=b("weight_decay", float), help="decoupled weight decay "
                       "(default: the preset's)")
    model.add_argument("--mode", choices=["paper", "official"], default="paper",
                       help="the core's switch between the papers' algorithms and the official code's behaviour")
    model.add_argument("--opt", action="append", type=_kv, default=[], metavar="KEY=VALUE",
                       help="further subspace.make keyword (JSON value), repeatable, e.g. --opt momentum=0.9 "
                            "(default: none)")
    model.add_argument("--selection", choices=["default", "galore", "all-linear"], default="default",
                       help="which matrices are low-rank (all-linear = SN/SM's rule, incl. lm_head)")
    model.add_argument("--dropout", type=b("dropout", float),
                       help="roberta only: dropout probability (default: 0.1, the model's)")
    sched = p.add_argument_group("schedule and batches")
    sched.add_argument("--steps", type=b("steps", int), default=100, help="optimizer steps")
    sched.add_argument("--warmup", type=b("warmup", int), help="linear warmup steps, at most --steps "
                       "(default: 10%% of --steps)")
    sched.add_argument("--min-lr-ratio", type=b("min_lr_ratio", float), default=0.1,
                       help="final learning rate of the cosine, as a fraction of --lr")
    sched.add_argument("--batch-size", type=b("batch_size", int), default=8,
                       help="global batch in sequences (a multiple of world size x --grad-accum)")
    sched.add_argument("--grad-accum", type=b("grad_accum", int), default=1, help="micro-batches per step")
    sched.add_argument("--seq-len", type=b("seq_len", int), default=128,
                       help="LM sequence length / classification max length, tokens")
    sched.add_argument("--clip", type=b("clip", float), default=0.0, help="grad-norm clipping threshold (0: off)")
    sched.add_argument("--clip-rule", choices=["global", "per-parameter"], default="global",
                       help="global: clip_grad_norm_ over all gradients; per-parameter: each gradient G scaled by "
                            "min(1, clip / ||G||_F) on its own (the only rule --fused-backward can apply)")
    sched.add_argument("--seed", type=int, default=0, help="seed of init, data split, batch order and bases")
    hw = p.add_argument_group("hardware")
    hw.add_argument("--device", default="cpu", help="cpu, cuda or cuda:<index>")
    hw.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                    help="weights and optimizer states (bfloat16: pure bf16, as the GaLore scaffold)")
    hw.add_argument("--fsdp", action="store_true",
                    help="shard weights, gradients and optimizer state with FSDP2 (fully_shard per decoder/encoder "
                         "layer and the root; under torchrun) instead of DDP; checkpoints are "
                         "torch.distributed.checkpoint folders that --resume reads at any world size")
    mem = p.add_argument_group("memory modes (recorded in the run's configuration; --resume refuses a checkpoint "
                               "of another mode)")
    mem.add_argument("--fused-backward", action="store_true",
                     help="per-layer weight updates: each parameter steps in its post-accumulate-grad hook and its "
                          "gradient is freed at once (subspace.fuse_into_backward), every preset; with --grad-accum "
                          "the step is taken once per accumulated batch; global --clip is refused (per-layer steps "
                          "never hold every gradient): use --clip-rule per-parameter; under torchrun each hook "
                          "all-reduces its gradient (no DDP wrapper); not with --fsdp or --factorized; same losses "
                          "as the standard step, except presets with random draws (golore, sumo's randomized SVD) "
                          "draw in backward order")
    mem.add_argument("--factorized", action="store_true",
                     help="factorized low-rank training: every low-rank Linear as W0 + B A with A the trainable "
                          "r x n factor (subspace.factorize), so the m x n gradient is formed only at "
                          "decomposition refreshes (never for golore); --optimizer galore, golore, sumo, sumo-ns5, "
                          "galore-sgdm or golore-sgdm (sumo: with --opt complement_scale=0); default --selection "
                          "only; not with --clip, --instrument-every, --fused-backward or --fsdp; the standard "
                          "trajectory to float32 round-off; DDP all-reduces only the factors")
    mem.add_argument("--state-bits", type=int, choices=(32, 8), default=32,
                     help="optimizer-moment storage: 8 = block-wise 8-bit moments (subspace state_bits=8; the "
                          "block size with --opt state_block=N), every preset and mode except --fsdp; give it "
                          "here, not as --opt state_bits=8")
    data = p.add_argument_group("data")
    data.add_argument("--data", help="text/JSONL(.gz) file or folder (llama), GLUE folder (roberta) "
                      "(default: the embedded pydoc_data.topics corpus)")
    data.add_argument("--tokenizer", help="folder with a tokenizer saved by save_pretrained (default: bytes)")
    data.add_argument("--glue-task", help="rte, qnli, sst-2, mrpc, cola, qqp, mnli, wnli, with --data "
                      "(default: none)")
    data.add_argument("--num-topics", type=b("num_topics", int), default=4,
                      help="default roberta task: classify k pydoc topics")
    inst = p.add_argument_group("instruments and evaluation")
    inst.add_argument("--instrument-every", type=b("instrument_every", int), default=0, metavar="K",
                      help="per-layer spectra, kappas and NS error every K steps (0: off)")
    inst.add_argument("--instrument-layers", nargs="+", metavar="REGEX",
                      help="parameter-name regexes to instrument (default: every low-rank matrix)")
    inst.add_argument("--max-sv", type=b("max_sv", int), help="store only the top singular values "
                      "(default: all)")
    inst.add_argument("--eval-every", type=b("eval_every", int), default=0,
                      help="evaluate every K steps (0: only at the end)")
    inst.add_argument("--eval-batches", type=b("eval_batches", int), default=16,
                      help="validation batches per LM evaluation")
    inst.add_argument("--log-every", type=b("log_every", int), default=10, help="progress line every K steps")
    out = p.add_argument_group("output")
    out.add_argument("--out", help="run folder: rows.jsonl, summary.json, checkpoint.pt "
                     "(default: none, nothing is saved)")
    out.add_argument("--checkpoint-every", type=b("checkpoint_every", int), default=0,
                     help="checkpoint every K steps (0: only at the end)")
    out.add_argument("--keep-checkpoints", action="store_true", help="also keep checkpoint-<step>.pt copies")
    out.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                     help="continue the run in --out from OUT/checkpoint.pt, or from the given checkpoint file "
                          "(default: off, a new run)")
    out.add_argument("--overwrite", action="store_true",
                     help="replace the run that --out already holds (not with --resume)")
    out.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


def _memory_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sizes", nargs="+", choices=MEMORY_SIZES, default=["60m", "130m", "350m", "1b", "7b"],
                   metavar="SIZE", help=f"LLaMA sizes, of {', '.join(MEMORY_SIZES)}")
    import subspace

    p.add_argument("--methods", nargs="+", metavar="METHOD", type=one_of(subspace.available(), "method"),
                   help=f"of {', '.join(subspace.available())} (default: all)")
    from .memory import MODES

    p.add_argument("--modes", nargs="+", choices=MODES, default=["standard"], metavar="MODE",
                   help=f"weight-update modes, of {', '.join(MODES)} (per-layer: gradients freed as they complete; "
                        "factorized: W0 + B A, its r x max(m, n) factor's gradient instead of m x n, for the "
                        "galore/golore/sumo families only: other methods get no factorized row)")
    p.add_argument("--state-bits", nargs="+", type=int, choices=(32, 8), default=[32], metavar="BITS",
                   help="optimizer-moment storage, of 32, 8")
    p.add_argument("--batch", type=integer(1), default=1, help="batch size of the activation column")
    p.add_argument("--seq-len", type=integer(1), default=256, help="sequence length of the activation column")
    p.add_argument("--json", metavar="PATH", help="also write the rows to this JSON file (default: none)")


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``probe`` subcommands (``llama``, ``roberta``: training; ``memory``: the memory table) to ``parser``."""
    parser.formatter_class = DefaultsHelpFormatter
    sub = parser.add_subparsers(dest="model", metavar="{llama,roberta,memory}", required=True)
    shared = _training_options()
    for name, what in (("llama", "train a LLaMA (causal LM) probe"), ("roberta", "train a RoBERTa classifier probe")):
        sub.add_parser(name, parents=[shared], help=what, description=what, formatter_class=DefaultsHelpFormatter)
    memory = sub.add_parser("memory", help="parameter + optimizer-state memory of the LLaMA sizes, in GiB, "
                            "against the papers' columns", formatter_class=DefaultsHelpFormatter)
    _memory_options(memory)
    return parser


def config_from_args(args):
    """The ProbeConfig of parsed ``llama``/``roberta`` arguments (every option is a field of the same name)."""
    from .train import ProbeConfig

    names = {f.name for f in dataclasses.fields(ProbeConfig)}
    values = {_FIELD_OF.get(k, k): v for k, v in vars(args).items() if _FIELD_OF.get(k, k) in names}
    values["opt_kwargs"] = dict(values.get("opt_kwargs") or [])
    return ProbeConfig(**values)


def command_line(cfg, **changes) -> str:
    """The ``sublab probe`` command that runs ``cfg`` with ``changes`` applied (options at their default are left
    out), e.g. ``command_line(cfg, resume=True, overwrite=False)``."""
    from .train import ProbeConfig

    cfg = dataclasses.replace(cfg, **changes)
    default = ProbeConfig(model=cfg.model)
    words = ["sublab", "probe", cfg.model]
    for f in dataclasses.fields(ProbeConfig):
        value = getattr(cfg, f.name)
        if f.name == "model" or value == getattr(default, f.name):
            continue
        flag = "--" + ("opt" if f.name == "opt_kwargs" else f.name).replace("_", "-")
        if f.name == "opt_kwargs":
            words += [w for k, v in value.items() for w in (flag, f"{k}={json.dumps(v)}")]
        elif value is True:
            words.append(flag)
        elif isinstance(value, list):
            words += [flag, *map(str, value)]
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _memory(args) -> int:
    from .memory import format_table, memory_table

    if args.json:
        writable_file(args.json, "--json")
    rows = memory_table(sizes=tuple(args.sizes), methods=args.methods, modes=args.modes, state_bits=args.state_bits,
                        batch=args.batch, seq_len=args.seq_len)
    print(format_table(rows))
    if "7b" in args.sizes:
        from .memory import format_budget, galore_7b_budget, seed_accounting
        print("\n" + format_budget(galore_7b_budget(), seed_accounting()))
    if args.json:
        from records import atomic_write_text, dumps
        atomic_write_text(args.json, dumps(rows, indent=1) + "\n")
    return 0


def _report_interrupt(cfg, result: dict) -> None:
    step = result.get("last_checkpoint_step")
    if step is None:
        print(f"sublab probe: interrupted after {result['steps_done']} step(s); no checkpoint had been written, so "
              f"there is nothing to resume (use --checkpoint-every K). Summary: "
              f"{os.path.join(cfg.out, 'summary.json') if cfg.out else 'not saved (no --out)'}", file=sys.stderr)
        return
    print(f"sublab probe: interrupted after {result['steps_done']} step(s); the last checkpoint holds step {step}. "
          f"Continue with:\n  {command_line(cfg, resume=True, overwrite=False)}", file=sys.stderr)


def main(args) -> int:
    """Run the ``probe`` subcommand from parsed ``args``; returns the exit status."""
    if args.model == "memory":
        try:
            return _memory(args)
        except ValueError as exc:
            print(f"sublab probe memory: error: {exc}", file=sys.stderr)
            return 2
    from .train import train

    cfg = config_from_args(args)
    if cfg.out is None:
        print("sublab probe: note: no --out given, nothing will be saved (rows, summary, checkpoint)", file=sys.stderr)
    try:
        result = train(cfg)
    except (ValueError, FileNotFoundError, FolderBusy) as exc:
        print(f"sublab probe: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # outside the steps (set-up, final evaluation): every file written is whole
        print("sublab probe: interrupted outside the training steps; the files already written are complete",
              file=sys.stderr)
        return 130
    if result["status"] == "interrupted":
        _report_interrupt(cfg, result)
        return 130
    if result["status"] != "ok":
        return 3
    if result.get("eval") and os.environ.get("RANK", "0") == "0":
        print(json.dumps({"final_loss": result["final_loss"], **result["eval"]}))
    return 0


def _standalone(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m probes", description=__doc__.splitlines()[0])
    return main(add_arguments(parser).parse_args(argv))
