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
"""
from __future__ import annotations

import subspace

from .models import build_llama, selection_groups

__all__ = ["UNIT", "SIZES", "RANKS", "PAPER_COLUMNS", "memory_row", "memory_table", "format_table"]

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


def _count(model, method, selection, hparams):
    n_params = n_state = n_low = n_basis = 0
    for g in selection_groups(model, selection):
        for p in g["params"]:
            n_params += p.numel()
            n_state += subspace.state_numel(method, tuple(p.shape), low_rank=g["low_rank"], **hparams)
            if g["low_rank"]:
                n_low += p.numel()
                if method not in _NO_RANK:
                    k = min(p.shape[0], p.numel() // p.shape[0])
                    n_basis += k * min(int(hparams["rank"]), k)
    return n_params, n_state, n_low, n_basis


def memory_row(size: str, method: str, *, selection: str = "galore", rank: int | None = None,
               bytes_per_element: int = 2, model=None, **hparams) -> dict:
    """Parameter and optimizer-state memory of one (size, method, selection), with the paper's value if there is one.

    ``n_basis`` counts the projection bases (k x r per compressed matrix) inside ``n_state``; some papers leave them
    out (the SN-SM README's AdamSNSM figure matches only without them), so each paper entry also carries
    ``ratio_excl_basis``.
    """
    if model is None:
        model = build_llama(size, device="meta")
    if method not in _NO_RANK:
        hparams.setdefault("rank", rank or RANKS.get(size, 128))
    n_params, n_state, n_low, n_basis = _count(model, method, selection, hparams)
    row = dict(size=size, method=method, selection=selection, rank=hparams.get("rank"),
               bytes_per_element=bytes_per_element, n_params=n_params, n_low_rank_params=n_low,
               n_state=n_state, n_basis=n_basis, params_gib=n_params * bytes_per_element / UNIT,
               states_gib=n_state * bytes_per_element / UNIT, basis_gib=n_basis * bytes_per_element / UNIT,
               total_gib=(n_params + n_state) * bytes_per_element / UNIT, unit="GiB (2^30 bytes)")
    for col in PAPER_COLUMNS:
        if (col["size"], col["method"], col["selection"]) == (size, method, selection):
            measured = row["states_gib"] if col["quantity"] == "states" else row["total_gib"]
            row.setdefault("paper", []).append(dict(col, measured=measured, ratio=measured / col["value"],
                                                    ratio_excl_basis=(measured - row["basis_gib"]) / col["value"]))
    return row


def memory_table(sizes=SIZES, methods=None, selections=("galore", "all-linear"), bytes_per_element: int = 2,
                 **hparams) -> list[dict]:
    """One row per (size, method, selection) for every method of ``subspace.available()`` by default."""
    methods = list(methods or subspace.available())
    rows = []
    for size in sizes:
        model = build_llama(size, device="meta")
        for sel in selections:
            for method in methods:
                rows.append(memory_row(size, method, selection=sel, bytes_per_element=bytes_per_element,
                                       model=model, **hparams))
    return rows


def format_table(rows: list[dict]) -> str:
    """A plain-text table: size, method, selection, rank, params, states, total (GiB), paper value and ratio, under
    a line that states the units."""
    bpe = {r["bytes_per_element"] for r in rows}
    lines = [f"memory in GiB (2^30 bytes), {'/'.join(map(str, sorted(bpe)))} bytes per element; paper values in the "
             f"papers' G (read as GiB)",
             f"{'size':>5} {'method':<11} {'selection':<10} {'rank':>5} {'params':>7} {'states':>7} {'total':>7}"
             f"  paper (source: value -> measured/paper)"]
    for r in rows:
        paper = "; ".join(f"{p['source']} {p['quantity']}: {p['value']:.2f} -> {p['ratio']:.3f}"
                          + (f" ({p['ratio_excl_basis']:.3f} without the basis)" if r["n_basis"] else "")
                          for p in r.get("paper", []))
        lines.append(f"{r['size']:>5} {r['method']:<11} {r['selection']:<10} {str(r['rank'] or '-'):>5} "
                     f"{r['params_gib']:7.3f} {r['states_gib']:7.3f} {r['total_gib']:7.3f}  {paper}")
    return "\n".join(lines)
