"""Model configurations of the papers, built from transformers config classes with random initialisation.

LLaMA sizes follow the GaLore scaffold's ``configs/llama_*.json`` (identical in GaLore, OSD and sn-sm;
reference-implementations.md §1.1): SiLU, RMSNorm eps 1e-6, initializer range 0.02, untied embeddings, no
biases, vocabulary 32000 (the T5 tokenizer's), ``max_position_embeddings`` 1024 (2048 for 7B).
``tiny`` is ours, for CPU tests. RoBERTa ``base`` is roberta-base's shape (vocab 50265, 514 positions,
one token type, LayerNorm eps 1e-5); ``tiny`` is ours.

Nothing is downloaded: weights are random. ``device="meta"`` builds the module tree without allocating storage,
which is what ``probes.memory`` uses for 1B and 7B.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LlamaShape", "LLAMA_SIZES", "ROBERTA_SIZES", "SELECTIONS", "llama_config", "build_llama",
           "roberta_config", "build_roberta", "count_parameters", "selection_groups"]


@dataclass(frozen=True)
class LlamaShape:
    hidden: int
    intermediate: int
    heads: int
    layers: int
    vocab: int = 32000
    max_positions: int = 1024


LLAMA_SIZES: dict[str, LlamaShape] = {
    "tiny": LlamaShape(64, 176, 4, 2, vocab=260, max_positions=256),
    "9m": LlamaShape(128, 352, 4, 4),
    "20m": LlamaShape(256, 688, 4, 4),
    "35m": LlamaShape(384, 1024, 8, 6),
    "60m": LlamaShape(512, 1376, 8, 8),
    "130m": LlamaShape(768, 2048, 12, 12),
    "350m": LlamaShape(1024, 2736, 16, 24),
    "1b": LlamaShape(2048, 5461, 32, 24),
    "7b": LlamaShape(4096, 11008, 32, 32, max_positions=2048),
}

# (hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, layer_norm_eps)
ROBERTA_SIZES: dict[str, dict] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                 vocab_size=260, max_position_embeddings=258, type_vocab_size=1, layer_norm_eps=1e-5),
    "small": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024,
                  vocab_size=260, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                 vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5),
}


def _check_size(size: str, table: dict) -> None:
    if size not in table:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(table)}")


def llama_config(size: str, *, vocab_size: int | None = None, max_positions: int | None = None,
                 bos_token_id: int = 0, eos_token_id: int = 2, pad_token_id: int | None = None,
                 attn_implementation: str = "sdpa"):
    """A ``LlamaConfig`` for one of ``LLAMA_SIZES``; ``vocab_size`` overrides the paper's 32000."""
    from transformers import LlamaConfig

    _check_size(size, LLAMA_SIZES)
    s = LLAMA_SIZES[size]
    cfg = LlamaConfig(vocab_size=vocab_size or s.vocab, hidden_size=s.hidden, intermediate_size=s.intermediate,
                      num_attention_heads=s.heads, num_hidden_layers=s.layers, hidden_act="silu",
                      rms_norm_eps=1e-6, initializer_range=0.02, tie_word_embeddings=False,
                      max_position_embeddings=max_positions or s.max_positions, use_cache=False,
                      bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=pad_token_id)
    cfg._attn_implementation = attn_implementation
    return cfg


def _build(cls, cfg, device, dtype, seed):
    device = torch.device(device)
    if device.type == "meta":
        with torch.device("meta"):
            model = cls(cfg)
        return model.to(dtype=dtype)
    # Random init is drawn on the CPU from a private generator state, so a seed gives the same weights on
    # every device and every DDP rank without touching the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(cfg)
    return model.to(device=device, dtype=dtype)


def build_llama(size: str, *, vocab_size: int | None = None, max_positions: int | None = None,
                device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                **config_kwargs):
    """Randomly initialised ``LlamaForCausalLM`` of the given size (``device="meta"`` allocates nothing)."""
    from transformers import LlamaForCausalLM

    cfg = llama_config(size, vocab_size=vocab_size, max_positions=max_positions, **config_kwargs)
    return _build(LlamaForCausalLM, cfg, device, dtype, seed)


def roberta_config(size: str, num_labels: int, *, vocab_size: int | None = None, max_positions: int | None = None,
                   pad_token_id: int = 1, bos_token_id: int = 0, eos_token_id: int = 2,
                   dropout: float = 0.1, attn_implementation: str = "sdpa"):
    """A ``RobertaConfig`` for one of ``ROBERTA_SIZES`` with a ``num_labels``-way classification head.

    RoBERTa numbers positions from ``pad_token_id + 1``, so ``max_positions`` is the longest sequence plus
    ``pad_token_id + 1`` (514 = 512 + 2 for roberta-base).
    """
    from transformers import RobertaConfig

    _check_size(size, ROBERTA_SIZES)
    kw = dict(ROBERTA_SIZES[size])
    if vocab_size:
        kw["vocab_size"] = vocab_size
    if max_positions:
        kw["max_position_embeddings"] = max_positions
    cfg = RobertaConfig(num_labels=num_labels, pad_token_id=pad_token_id, bos_token_id=bos_token_id,
                        eos_token_id=eos_token_id, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout, initializer_range=0.02, **kw)
    cfg._attn_implementation = attn_implementation
    return cfg


def build_roberta(size: str, num_labels: int, *, vocab_size: int | None = None, max_positions: int | None = None,
                  device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
                  **config_kwargs):
    """Randomly initialised ``RobertaForSequenceClassification`` (no pretrained weights: nothing is downloaded)."""
    from transformers import RobertaForSequenceClassification

    cfg = roberta_config(size, num_labels, vocab_size=vocab_size, max_positions=max_positions, **config_kwargs)
    return _build(RobertaForSequenceClassification, cfg, device, dtype, seed)


def count_parameters(model) -> int:
    """Number of parameter elements (works on the meta device)."""
    return sum(p.numel() for p in model.parameters())


#: Which matrices an optimizer compresses (regexes for ``subspace.param_groups``; only 2-D weights qualify).
#: ``galore``: attention and MLP projections (GaLore's ``torchrun_main.py``: modules named *attn*/*mlp*; SUMO's
#: LLaMA rule; for RoBERTa the attention/intermediate/output dense layers); embeddings, heads, norms dense.
#: ``all-linear``: every Linear weight including ``lm_head`` / the classifier (SN/SM's ``get_optimizer.py``).
#: ``default``: the core's own rule (2-D hidden matrices; embeddings, output head, norms, biases dense).
SELECTIONS: dict[str, dict | None] = {
    "default": None,
    "galore": dict(low_rank=[r"self_attn\.", r"mlp\.", r"attention\.", r"intermediate\.", r"layer\.\d+\.output\."],
                   dense=[r"embed", r"lm_head", r"norm", r"Norm", r"classifier", r"pooler"]),
    "all-linear": dict(low_rank=[r"weight$"], dense=[r"embed", r"norm", r"Norm"]),
}


def selection_groups(model, selection: str = "default") -> list[dict]:
    """``subspace.param_groups(model, ...)`` with one of ``SELECTIONS``."""
    import subspace

    if selection not in SELECTIONS:
        raise ValueError(f"selection={selection!r} is invalid; allowed: {list(SELECTIONS)}")
    kw = SELECTIONS[selection]
    return subspace.param_groups(model) if kw is None else subspace.param_groups(model, **kw)
