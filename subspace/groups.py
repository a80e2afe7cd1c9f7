"""Split a model into the low-rank group (2-D hidden matrices) and the dense group (everything else)."""
from __future__ import annotations

import re
from typing import Iterable, Optional

import torch

__all__ = ["param_groups", "as_groups", "DEFAULT_DENSE"]

#: Name patterns that go to the dense group even when 2-D: embeddings, output heads, norms (GaLore's and SUMO's
#: selections exclude embed_tokens and lm_head; RoBERTa's classifier and position/token-type embeddings likewise).
DEFAULT_DENSE = (r"embed", r"lm_head", r"(^|\.)head(\.|$)", r"classifier", r"norm", r"pooler", r"wte", r"wpe")


def param_groups(model: torch.nn.Module, low_rank: Optional[Iterable[str]] = None,
                 dense: Optional[Iterable[str]] = None, **low_rank_hparams) -> list[dict]:
    """Return ``[{"params", "param_names", "low_rank": True, **low_rank_hparams}, {..., "low_rank": False}]``.

    Default rule: a trainable parameter with ndim >= 2 whose name matches none of ``DEFAULT_DENSE`` is low-rank.
    ``low_rank``: regexes that force a parameter into the low-rank group (it must have ndim >= 2), e.g.
    ``[r"attn", r"mlp"]`` for GaLore's exact selection or ``[r"\\.weight$"]`` with ``dense=[r"embed"]`` for SN-SM's
    "every Linear incl. lm_head"; ``dense``: regexes replacing ``DEFAULT_DENSE``. Empty groups are omitted.
    Frozen parameters (requires_grad False) are left out.
    """
    dense_res = [re.compile(p) for p in (DEFAULT_DENSE if dense is None else dense)]
    low_res = None if low_rank is None else [re.compile(p) for p in low_rank]
    groups = {True: ([], []), False: ([], [])}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if low_res is not None:
            is_low = p.ndim >= 2 and any(r.search(name) for r in low_res) and not (
                dense is not None and any(r.search(name) for r in dense_res))
        else:
            is_low = p.ndim >= 2 and not any(r.search(name) for r in dense_res)
        groups[is_low][0].append(p)
        groups[is_low][1].append(name)
    out = []
    for flag in (True, False):
        params, names = groups[flag]
        if params:
            extra = low_rank_hparams if flag else {}
            out.append({"params": params, "param_names": names, "low_rank": flag, **extra})
    return out


def as_groups(params) -> list[dict]:
    """Normalise what an optimizer is given into group dicts.

    An ``nn.Module`` goes through :func:`param_groups`; group dicts pass through (copied); a flat list of tensors
    or (name, tensor) pairs is split by dimension alone: ndim >= 2 into a low-rank group, the rest into a dense
    group, so embeddings and output heads are projected too (pass a Module or ``param_groups(model)`` to keep
    them dense).
    """
    if isinstance(params, torch.nn.Module):
        return param_groups(params)
    params = list(params)
    if not params:
        raise ValueError("params is empty; pass a model, model.parameters(), named parameters or parameter groups")
    if isinstance(params[0], dict):
        return [dict(g) for g in params]
    named = isinstance(params[0], tuple)
    low, dense = [], []
    for item in params:
        p = item[1] if named else item
        (low if p.ndim >= 2 else dense).append(item)
    return [g for g in ({"params": low, "low_rank": True}, {"params": dense, "low_rank": False}) if g["params"]]
