"""probes.memory and probes.models: exact meta-device memory accounting against the papers' columns."""
import pytest
import torch

import subspace
from probes import memory as M
from probes.models import LLAMA_SIZES, build_llama, build_roberta, count_parameters, selection_groups



def test_meta_models_have_the_reference_shapes():
    m = build_llama("7b", device="meta")
    assert next(m.parameters()).device.type == "meta"
    assert count_parameters(m) == 6_738_415_616  # LLaMA-7B with untied head, vocab 32000
    cfg = m.config
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.num_hidden_layers) == \
        (4096, 11008, 32, 32)
    assert cfg.tie_word_embeddings is False and cfg.rms_norm_eps == 1e-6 and cfg.hidden_act == "silu"
    assert m.lm_head.weight is not m.model.embed_tokens.weight
    assert set(LLAMA_SIZES) >= {"9m", "20m", "35m", "60m", "130m", "350m", "1b", "7b", "tiny"}
    assert count_parameters(build_roberta("base", 2, device="meta")) == pytest.approx(124.6e6, rel=0.01)


def test_selections():
    m = build_llama("60m", device="meta")
    low = {n for g in selection_groups(m, "galore") if g["low_rank"] for n in g["param_names"]}
    assert len(low) == 7 * 8 and not any("embed" in n or "lm_head" in n or "norm" in n for n in low)
    low_all = {n for g in selection_groups(m, "all-linear") if g["low_rank"] for n in g["param_names"]}
    assert low_all == low | {"lm_head.weight"}


@pytest.fixture(scope="module")
def table():
    return M.memory_table(sizes=("60m", "130m", "350m", "1b"))


def _row(table, size, method, selection="galore"):
    return next(r for r in table if (r["size"], r["method"], r["selection"]) == (size, method, selection))


def test_every_method_has_a_row(table):
    assert {r["method"] for r in table} == set(subspace.available())
    for r in table:
        assert r["n_state"] > 0 and r["total_gib"] == pytest.approx(r["params_gib"] + r["states_gib"])


def test_full_rank_column_of_galore_table2(table):
    """Full-rank Adam, BF16 params + 2 states, read in GiB: within 5% at 130M/350M/1B; 60M is 10% below the
    paper's 0.36G (which equals the nominal 60e6 x 6 bytes / 1e9). Reported, not tuned."""
    ratios = {}
    for size in ("60m", "130m", "350m", "1b"):
        (p,) = _row(table, size, "adamw")["paper"]
        assert p["source"] == "GaLore Table 2"
        ratios[size] = p["ratio"]
    for size in ("130m", "350m", "1b"):
        assert abs(ratios[size] - 1) < 0.05, ratios
    assert 0.88 < ratios["60m"] < 0.92, ratios
    # with 1e9 bytes per G, 130M and 350M would be 6-7% off: GiB is the unit that fits
    assert _row(table, "350m", "adamw")["total_gib"] * 2**30 / 1e9 / 2.06 > 1.05


def test_sn_sm_readme_states_at_1b(table):
    adam = _row(table, "1b", "adamw", "all-linear")["paper"][0]
    sn = _row(table, "1b", "adam-sn", "all-linear")["paper"][0]
    snsm = _row(table, "1b", "adam-snsm", "all-linear")["paper"][0]
    assert abs(adam["ratio"] - 1) < 0.01 and abs(sn["ratio"] - 1) < 0.01
    assert abs(snsm["ratio_excl_basis"] - 1) < 0.01  # the README's 0.84 GB leaves the projection basis out


def test_low_rank_rows_match_state_numel_by_hand(table):
    r = _row(table, "60m", "galore")
    h, i, L, V, rank = 512, 1376, 8, 32000, 128
    mats = [(h, h)] * 4 + [(i, h), (i, h), (h, i)]
    expect = L * sum(min(a, b) * rank + 2 * rank * max(a, b) for a, b in mats) + 2 * (2 * V * h + 2 * L * h + h)
    assert r["n_state"] == expect
    assert "0.24" in M.format_table([r])


def test_state_bytes_of_a_real_optimizer_match_the_meta_count():
    model = build_llama("tiny")
    groups = selection_groups(model, "galore")
    opt = subspace.make("galore", groups, rank=8, lr=1e-3)
    model(input_ids=torch.randint(4, 200, (2, 16)), labels=torch.randint(4, 200, (2, 16))).loss.backward()
    opt.step()
    real = sum(v.numel() for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.ndim > 0)
    row = M.memory_row("tiny", "galore", rank=8, model=build_llama("tiny", device="meta"))
    assert real == row["n_state"]


@pytest.mark.parametrize("method", ["galore", "golore"])
def test_factorized_count_matches_a_real_factorized_model(method):
    """mode='factorized': the gradients are those of the trainable tensors of subspace.factorize's model (dense
    parameters + the r x max(m, n) factors), the factor column is the factors plus the basis buffers; a galore
    refresh step adds every compressed matrix's full gradient, golore's never does."""
    row = M.memory_row("tiny", method, rank=8, mode="factorized", bytes_per_element=4, batch=2, seq_len=16)
    model = subspace.factorize(build_llama("tiny"), method, rank=8)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    buffers = sum(b.numel() for n, b in model.named_buffers() if n.endswith("basis"))
    factors = sum(p.numel() for n, p in model.named_parameters() if n.endswith("factor"))
    assert row["grads_gib"] * M.UNIT == 4 * trainable
    assert row["factor_gib"] * M.UNIT == 4 * (factors + buffers)
    assert row["grads_refresh_gib"] - row["grads_gib"] == (row["n_low_rank_params"] * 4 / M.UNIT
                                                          if method == "galore" else 0)
    std = M.memory_row("tiny", method, rank=8, bytes_per_element=4, batch=2, seq_len=16)
    assert row["states_gib"] == std["states_gib"] and row["grads_gib"] < std["grads_gib"]
    with pytest.raises(ValueError, match="factorized.*adamw"):
        M.memory_row("tiny", "adamw", mode="factorized")
    assert {r["method"] for r in M.memory_table(sizes=("tiny",), modes=("factorized",), rank=8)} == \
        set(M.FACTORIZABLE) & set(subspace.available())
