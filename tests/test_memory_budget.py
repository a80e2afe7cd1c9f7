"""Training-memory accounting (probes.memory): gradient, activation and mode columns, 8-bit state bytes, GaLore's
7B budget, the seed slides' 58 GB / 1620 GB, and the claim galore.memory-7b-24gb."""
import argparse

import pytest
import torch

import subspace
from probes import memory as M
from probes.cli import add_arguments
from probes.models import build_llama, llama_config, selection_groups


def test_activation_model_by_hand():
    cfg = llama_config("7b")
    h, i, a, L, V, s = 4096, 11008, 32, 32, 32000, 256
    assert M.activation_bytes(cfg, 2, s) == 2 * s * (L * (16 * h + 8 * i + 2 * a * s) + 8 * V)


def test_per_layer_mode_keeps_only_the_largest_gradient_and_8bit_states_shrink():
    std = M.memory_row("60m", "galore")
    fused = M.memory_row("60m", "galore", mode="per-layer", state_bits=8)
    assert std["grads_gib"] == std["params_gib"]
    assert fused["grads_gib"] * M.UNIT == 32000 * 512 * 2          # lm_head (= embedding) gradient, BF16
    assert fused["states_gib"] < 0.6 * std["states_gib"] and fused["params_gib"] == std["params_gib"]
    assert std["train_total_gib"] == pytest.approx(std["total_gib"] + std["grads_gib"] + std["activations_gib"])
    with pytest.raises(ValueError, match="mode"):
        M.memory_row("60m", "galore", mode="layerwise")


def test_8bit_meta_count_equals_a_real_optimizer():
    model = build_llama("tiny")
    opt = subspace.make("galore", selection_groups(model, "galore"), rank=8, lr=1e-3, state_bits=8)
    model(input_ids=torch.randint(4, 200, (2, 16)), labels=torch.randint(4, 200, (2, 16))).loss.backward()
    opt.step()
    real = sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values()
               if torch.is_tensor(v) and v.ndim > 0)
    row = M.memory_row("tiny", "galore", rank=8, state_bits=8, bytes_per_element=4)
    assert real == round(row["states_gib"] * M.UNIT)


def test_galore_7b_budget_fits_24gb_and_adamw_does_not():
    b = M.galore_7b_budget()
    g, a = b["galore"], b["adamw"]
    assert (g["rank"], g["batch"], g["seq_len"], g["state_bits"], g["mode"]) == (1024, 1, 256, 8, "per-layer")
    gb = lambda r: r["train_total_gib"] * M.UNIT / 1e9  # noqa: E731
    assert 19 < gb(g) < 22.0 < 24 < gb(a)
    assert any("not counted" in x for x in b["assumptions"])
    text = M.format_budget(b, M.seed_accounting())
    assert "14 + 14 + 28 + 2 = 58 (slides: 58)" in text and "350 + 350 + 700 + 220 = 1620 (slides: 1620)" in text


def test_probe_memory_parser_takes_modes_bits_batch_and_sequence():
    args = add_arguments(argparse.ArgumentParser()).parse_args(
        ["memory", "--sizes", "tiny", "--modes", "standard", "per-layer", "--state-bits", "8", "--batch", "2",
         "--seq-len", "64"])
    assert (args.modes, args.state_bits, args.batch, args.seq_len) == (["standard", "per-layer"], [8], 2, 64)
    rows = M.memory_table(sizes=("tiny",), methods=["adamw"], selections=("galore",), modes=args.modes,
                          state_bits=args.state_bits, batch=2, seq_len=64)
    assert [r["mode"] for r in rows] == ["standard", "per-layer"] and "per-layer" in M.format_table(rows)


def test_claim_memory_7b_24gb_measures_the_papers_budget(claim_cache):
    out = claim_cache.outcome("galore.memory-7b-24gb")
    assert 0.85 < out.measured["ratio_to_paper"] < 1.0 and out.measured["saving_vs_adamw"] > 0.6
