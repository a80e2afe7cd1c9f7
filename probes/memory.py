"""Exact parameter + optimizer-state memory of the LLaMA configurations, counted on the meta device.

For each size and method the model is built on ``device="meta"`` (no storage), split into the low-rank and dense
groups by ``subspace.param_groups`` and every parameter's state size is taken from ``subspace.state_numel`` (the
preset's docstring formula). Bytes = elements x ``bytes_per_element`` (2: the papers' pure-BF16 estimate, where
weights and optimizer states are both bf16).

Selections (which matrices are compressed):
* ``"galore"``: every attention and MLP projection (q/k/v/o, gate/up/down); embeddings, lm_head and norms dense.
  This is GaLore's ``torchrun_main.py`` rule and SUMO's LLaMA rule (reference-implementations §2.1, §4.4).
* ``"all-linear"``: every ``nn.Linear`` weight including ``lm_head`` (SN/SM's ``get_optimizer.py``, §6.1);
  embeddings and norms dense.

Units. The papers print "G"/"GB". The check against the full-rank column decides which unit they mean:
with 2^30 (GiB) the measured full-rank totals are 0.90 / 0.99 / 1.00 / 0.96 of GaLore Table 2 at
60M / 130M / 350M / 1B, with 10^9 they are 0.97 / 1.06 / 1.07 / 1.03; the SN-SM README's "Adam 4.99 GB" of 1B
optimizer states is 2 x 1.339e9 x 2 bytes = 4.99 * 2^30 exactly. So "G" is read as GiB (``UNIT = 2**30``); the 60M
entry (0.36G) is 10% above the count and is reported, not tuned (0.36 = 60e6 x 6 bytes / 1e9 suggests it was
computed from the nominal size).

Training memory (``train_total_gib``) adds the two columns a real run also holds, under stated models:

* gradients: ``mode="standard"`` keeps every parameter's gradient until the step (P elements);
  ``mode="per-layer"`` steps each parameter from its post-accumulate-grad hook and frees its gradient at once
  (``subspace.fuse_into_backward``), counted as the largest single gradient (the one alive at a time);
  ``mode="factorized"`` (``subspace.factorize``, for ``FACTORIZABLE`` methods) writes each compressed m x n matrix
  as W0 + B A: the trainable factor A is r x max(m, n) (the projected side is the shorter one), so between refreshes
  the gradients are the dense parameters' plus r max(m, n) per compressed matrix; a decomposition refresh step
  (galore, sumo: SVD of G) also forms every compressed matrix's full gradient (``grads_refresh_gib``; golore's
  random bases never do).
* factorized weights (``factor_gib``): beside W0 (the m x n weight, counted in ``params_gib``), each compressed
  matrix holds A (r x max(m, n)) and the basis buffer B (min(m, n) x r; the optimizer's state keeps its own copy,
  counted in the states), and the forward keeps one r-vector per token per compressed matrix for backward
  (added to the activations: x A^T or x B, b s r elements).
* activations (``ACTIVATION_MODEL``): bytes per token per layer of a LLaMA block with 16-bit activations, no
  recomputation, no dropout and the attention scores materialized (after Korthikanti et al. 2022 §4.1, with
  SwiGLU and RMSNorm): attention 10 h + 2 a s (QKV input 2h, Q and K 4h, softmax output 2 a s, V 2h, output
  projection input 2h), MLP 2 h + 8 i (gate/up input, gate output, SiLU output, up output, down input), norms
  4 h; total 16 h + 8 i + 2 a s per token per layer, times batch x sequence x layers, plus the head's float32
  logits and their gradient, 8 V bytes per token.
* optimizer states: ``subspace.state_bytes`` with ``bytes_per_element`` per float state element and, with
  ``state_bits=8``, each base-update moment of E elements in E + 4 ceil(E / 256) bytes (bases stay 16-bit);
  8-bit steps also hold one parameter's moments in float while it updates (``transient_gib``: the largest
  ``subspace.moment_numel`` x bytes_per_element).
"""
from __future__ import annotations

import subspace

from .models import build_llama, selection_groups

__all__ = ["UNIT", "SIZES", "RANKS", "PAPER_COLUMNS", "MODES", "FACTORIZABLE", "ACTIVATION_MODEL", "GALORE_7B", "activation_bytes",
           "memory_row", "memory_table", "format_table", "galore_7b_budget", "seed_accounting", "format_budget"]

UNIT = 2 ** 30
SIZES = ("60m", "130m", "350m", "1b", "7b")
#: Ranks of GaLore Table 2 / SUMO Table 3 (r / d_model: 128/256, 256/768, 256/1024, 512/2048); 7B: GaLore's
#: 7B script (rank 1024). Used for every low-rank method unless ``rank`` is given.
RANKS = {"9m": 32, "20m": 64, "35m": 64, "60m": 128, "130m": 256, "350m": 256, "1b": 512, "7b": 1024, "tiny": 8}

#: Paper columns, in the papers' "G" (read as GiB, see the module docstring). ``quantity`` says what was counted.
PAPER_COLUMNS: list[dict] = []


def _paper(source, method, selection, quantity, values):
    for size, v in values.items():
        PAPER_COLUMNS.append(dict(source=source, size=size, method=method, selection=selection,
                                  quantity=quantity, value=v))


_paper("GaLore Table 2", "adamw", "galore", "params+states", {"60m": 0.36, "130m": 0.76, "350m": 2.06, "1b": 7.80})
_paper("GaLore Table 2", "galore", "galore", "params+states", {"60m": 0.24, "130m": 0.52, "350m": 1.22, "1b": 4.38})
_paper("SUMO Table 3", "sumo", "galore", "params+states", {"60m": 0.23, "130m": 0.51, "350m": 1.16, "1b": 3.84})
_paper("SN-SM README", "adamw", "all-linear", "states", {"1b": 4.99})
_paper("SN-SM README", "adam-sn", "all-linear", "states", {"1b": 2.62})
_paper("SN-SM README", "adam-snsm", "all-linear", "states", {"1b": 0.84})

_NO_RANK = {"adamw", "muon", "adam-sn"}
MODES = ("standard", "per-layer", "factorized")
#: Methods with a factorized form (``subspace.factorized``'s scope; sumo and sumo-ns5 with complement_scale=0).
FACTORIZABLE = ("galore", "golore", "sumo", "sumo-ns5", "galore-sgdm", "golore-sgdm")
_DECOMPOSITION = ("galore", "sumo", "sumo-ns5", "galore-sgdm")   # refreshes that need the full gradient (SVD)
ACTIVATION_MODEL = ("16 h + 8 i + 2 a s bytes per token per layer (16-bit, no recomputation, no dropout, attention "
                    "scores materialized) + 8 V bytes per token for the float32 logits and their gradient")
#: GaLore §1/§5: "8-bit GaLore ... LLaMA 7B ... on a single 24 GB GPU" (per-layer updates, rank 1024, batch 1,
#: sequence 256), measured there at 22.0 GB.
GALORE_7B = dict(size="7b", method="galore", mode="per-layer", state_bits=8, rank=1024, batch=1, seq_len=256)


def activation_bytes(config, batch: int, seq_len: int, bytes_per_element: int = 2) -> int:
    """``ACTIVATION_MODEL`` for a LLaMA ``config`` (hidden h, intermediate i, heads a, layers L, vocab V), with the
    block's activations in ``bytes_per_element`` (the model's 16-bit counts scaled by bytes_per_element / 2)."""
    h, i, a = config.hidden_size, config.intermediate_size, config.num_attention_heads
    layer = (16 * h + 8 * i + 2 * a * seq_len) * bytes_per_element // 2
    return batch * seq_len * (config.num_hidden_layers * layer + 8 * config.vocab_size)


def _count(model, method, selection, hparams, bytes_per_element):
    n_params = n_state = n_low = n_basis = state_bytes = largest = moments = n_factor = n_factor_basis = n_mats = 0   # n_mats: sum of ranks
    for g in selection_groups(model, selection):
        for p in g["params"]:
            n_params += p.numel()
            largest = max(largest, p.numel())
            moments = max(moments, subspace.moment_numel(method, tuple(p.shape), low_rank=g["low_rank"], **hparams))
            n_state += subspace.state_numel(method, tuple(p.shape), low_rank=g["low_rank"], **hparams)
            state_bytes += subspace.state_bytes(method, tuple(p.shape), low_rank=g["low_rank"],
                                                element_size=bytes_per_element, **hparams)
            if g["low_rank"]:
                n_low += p.numel()
                if method not in _NO_RANK:
                    k = min(p.shape[0], p.numel() // p.shape[0])
                    r = min(int(hparams["rank"]), k)
                    n_basis += k * r
                    n_factor += r * (p.numel() // k)
                    n_factor_basis += k * r
                    n_mats += r
    return dict(n_params=n_params, n_state=n_state, n_low=n_low, n_basis=n_basis, state_bytes=state_bytes,
                largest=largest, moments=moments, n_factor=n_factor, n_factor_basis=n_factor_basis,
                rank_sum=n_mats)


def memory_row(size: str, method: str, *, selection: str = "galore", rank: int | None = None,
               bytes_per_element: int = 2, model=None, mode: str = "standard", state_bits: int = 32,
               batch: int = 1, seq_len: int = 256, **hparams) -> dict:
    """Parameter and optimizer-state memory of one (size, method, selection), with the paper's value if there is one,
    and the training memory of ``mode`` with ``state_bits`` states at ``batch`` x ``seq_len`` tokens (module
    docstring).

    ``n_basis`` counts the projection bases (k x r per compressed matrix) inside ``n_state``; some papers leave them
    out (the SN-SM README's AdamSNSM figure matches only without them), so each paper entry also carries
    ``ratio_excl_basis``.
    """
    if mode not in MODES:
        raise ValueError(f"mode={mode!r} is invalid; allowed: {list(MODES)}")
    if mode == "factorized" and method not in FACTORIZABLE:
        raise ValueError(f"mode='factorized' is invalid for method={method!r}; allowed: {', '.join(FACTORIZABLE)}")
    if model is None:
        model = build_llama(size, device="meta")
    if method not in _NO_RANK:
        hparams.setdefault("rank", rank or RANKS.get(size, 128))
    c = _count(model, method, selection, dict(hparams, state_bits=state_bits), bytes_per_element)
    n_params, n_state, n_low, n_basis, state_bytes = (c[k] for k in ("n_params", "n_state", "n_low", "n_basis",
                                                                     "state_bytes"))
    factor = grads_refresh = 0
    acts = activation_bytes(model.config, batch, seq_len, bytes_per_element)
    if mode == "factorized":
        grads = (n_params - n_low + c["n_factor"]) * bytes_per_element
        grads_refresh = grads + (n_low * bytes_per_element if method in _DECOMPOSITION else 0)
        factor = (c["n_factor"] + c["n_factor_basis"]) * bytes_per_element
        acts += batch * seq_len * c["rank_sum"] * bytes_per_element
    else:
        grads = (n_params if mode == "standard" else c["largest"]) * bytes_per_element
        grads_refresh = grads
    transient = c["moments"] * bytes_per_element if state_bits == 8 else 0
    row = dict(size=size, method=method, selection=selection, rank=hparams.get("rank"), mode=mode,
               state_bits=state_bits, batch=batch, seq_len=seq_len,
               bytes_per_element=bytes_per_element, n_params=n_params, n_low_rank_params=n_low,
               n_state=n_state, n_basis=n_basis, params_gib=n_params * bytes_per_element / UNIT,
               states_gib=state_bytes / UNIT, basis_gib=n_basis * bytes_per_element / UNIT,
               total_gib=n_params * bytes_per_element / UNIT + state_bytes / UNIT, grads_gib=grads / UNIT,
               activations_gib=acts / UNIT, transient_gib=transient / UNIT, factor_gib=factor / UNIT,
               grads_refresh_gib=grads_refresh / UNIT,
               train_total_gib=(n_params * bytes_per_element + factor + state_bytes + grads + acts + transient)
               / UNIT,
               unit="GiB (2^30 bytes)")
    for col in PAPER_COLUMNS:
        if (col["size"], col["method"], col["selection"], state_bits) == (size, method, selection, 32):
            measured = row["states_gib"] if col["quantity"] == "states" else row["total_gib"]
            row.setdefault("paper", []).append(dict(col, measured=measured, ratio=measured / col["value"],
                                                    ratio_excl_basis=(measured - row["basis_gib"]) / col["value"]))
    return row


def memory_table(sizes=SIZES, methods=None, selections=("galore", "all-linear"), bytes_per_element: int = 2,
                 modes=("standard",), state_bits=(32,), **hparams) -> list[dict]:
    """One row per (size, method, selection, mode, state bits) for every method of ``subspace.available()`` by
    default."""
    methods = list(methods or subspace.available())
    rows = []
    for size in sizes:
        model = build_llama(size, device="meta")
        for sel in selections:
            for method in methods:
                for mode in modes:
                    if mode == "factorized" and method not in FACTORIZABLE:
                        continue   # no factorized form (adamw, muon, osd, SN/SM)
                    for bits in state_bits:
                        rows.append(memory_row(size, method, selection=sel, bytes_per_element=bytes_per_element,
                                               model=model, mode=mode, state_bits=bits, **hparams))
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table: size, method, selection, rank, params, states, total (GiB), paper value and ratio, under
    a line that states the units."""
    bpe = {r["bytes_per_element"] for r in rows}
    lines = [f"memory in GiB (2^30 bytes), {'/'.join(map(str, sorted(bpe)))} bytes per element; paper values in the "
             f"papers' G (read as GiB)",
             f"training memory (mode, 8- or 32-bit states) adds gradients and activations "
             f"({ACTIVATION_MODEL}; batch {'/'.join(sorted({str(r['batch']) for r in rows}))}, sequence "
             f"{'/'.join(sorted({str(r['seq_len']) for r in rows}))})",
             f"{'size':>5} {'method':<11} {'selection':<10} {'rank':>5} {'mode':<10} {'bits':>4} {'params':>7} "
             f"{'states':>7} {'total':>7} {'grads':>7} {'acts':>7} {'train':>7}  paper (source: value -> measured/paper)"]
    for r in rows:
        paper = "; ".join(f"{p['source']} {p['quantity']}: {p['value']:.2f} -> {p['ratio']:.3f}"
                          + (f" ({p['ratio_excl_basis']:.3f} without the basis)" if r["n_basis"] else "")
                          for p in r.get("paper", []))
        lines.append(f"{r['size']:>5} {r['method']:<11} {r['selection']:<10} {str(r['rank'] or '-'):>5} "
                     f"{r['mode']:<10} {r['state_bits']:>4} {r['params_gib']:7.3f} {r['states_gib']:7.3f} "
                     f"{r['total_gib']:7.3f} {r['grads_gib']:7.3f} {r['activations_gib']:7.3f} "
                     f"{r['train_total_gib']:7.3f}  {paper}")
    return "\n".join(lines)


def galore_7b_budget(**changes) -> dict:
    """GaLore's 7B training budget (``GALORE_7B``, with ``changes``) beside BF16 AdamW in the standard step."""
    cfg = dict(GALORE_7B, **changes)
    galore = memory_row(cfg.pop("size"), cfg.pop("method"), **cfg)
    adamw = memory_row(galore["size"], "adamw", batch=galore["batch"], seq_len=galore["seq_len"])
    return dict(galore=galore, adamw=adamw, paper_gb=22.0, gpu_gb=24.0,
                assumptions=[f"LLaMA {galore['size']}: {galore['n_params']:,} parameters (untied head, vocab 32000)",
                             "weights, gradients and float states in BF16 (2 bytes)",
                             f"GaLore rank {galore['rank']} on every attention/MLP matrix; embeddings, head, norms "
                             f"dense (AdamW); {galore['state_bits']}-bit moments in blocks of 256, bases BF16",
                             f"{galore['mode']} weight updates: only the largest gradient alive",
                             "8-bit transient: the largest parameter's moments in BF16 during its update",
                             f"activations: {ACTIVATION_MODEL}; batch {galore['batch']}, sequence {galore['seq_len']}",
                             "not counted: CUDA context, allocator fragmentation, temporaries of the step",
                             "GB = 10^9 bytes, GiB = 2^30 bytes"])


#: The seed slides' accounting (seed 004, "Minimum memory requirement"): nominal parameters, BF16 weights and
#: gradients, Adam's two BF16 moments, activations as quoted there.
_SLIDES = (("LLaMA 7B", 7e9, 2.0, 58.0), ("GPT-3", 175e9, 220.0, 1620.0))


def seed_accounting() -> list[dict]:
    """The slides' 58 GB (LLaMA 7B) and 1620 GB (GPT-3) rows: 2P + 2P + 4P bytes plus the quoted activations."""
    return [dict(model=name, n_params=n, weights_gb=2 * n / 1e9, grads_gb=2 * n / 1e9, states_gb=4 * n / 1e9,
                 activations_gb=act, total_gb=8 * n / 1e9 + act, slides_gb=total) for name, n, act, total in _SLIDES]


def format_budget(budget: dict, slides: list[dict]) -> str:
    """The 7B budget and the slides' accounting as text, every assumption listed."""
    g, a = budget["galore"], budget["adamw"]
    gb = lambda r, k: r[k] * UNIT / 1e9  # noqa: E731
    cols = ("params_gib", "grads_gib", "states_gib", "activations_gib", "transient_gib", "train_total_gib")
    lines = ["GaLore 7B budget (GB = 10^9 bytes): weights + gradients + states + activations + 8-bit transient "
             "= total"]
    for label, r in (("8-bit GaLore, per-layer", g), ("BF16 AdamW, standard", a)):
        lines.append(f"  {label:<24} " + " + ".join(f"{gb(r, k):.2f}" for k in cols[:-1])
                     + f" = {gb(r, 'train_total_gib'):.2f} GB ({r['train_total_gib']:.2f} GiB)")
    lines.append(f"  paper: {budget['paper_gb']} GB measured, fits a {budget['gpu_gb']:.0f} GB GPU; counted/paper "
                 f"{gb(g, 'train_total_gib') / budget['paper_gb']:.3f}")
    lines += ["  assumptions: " + "; ".join(budget["assumptions"]),
              "Seed slides (nominal P, 2P weights + 2P gradients + 4P Adam states, activations as quoted), GB:"]
    lines += [f"  {r['model']:<9} {r['weights_gb']:.0f} + {r['grads_gb']:.0f} + {r['states_gb']:.0f} + "
              f"{r['activations_gb']:.0f} = {r['total_gb']:.0f} (slides: {r['slides_gb']:.0f})" for r in slides]
    return "\n".join(lines)
