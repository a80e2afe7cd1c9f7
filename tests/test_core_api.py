"""The preset API: strict keys, user keys in every rule that reads them, typed constructors, group rules, Modules,
checked state dicts and the rank-clamp warning (issue 9, items 4-7, 15, 16, 18). One battery over every preset."""
import inspect
import io
import pydoc
import warnings

import pytest
import torch

import subspace
from subspace.config import GROUP_DEFAULTS, KEY_DOCS, READS, reads

NAMES = subspace.available()
MODES = ("paper", "official")


def _model():
    model = torch.nn.Sequential()
    model.add_module("embed", torch.nn.Embedding(10, 8))
    model.add_module("attn", torch.nn.Linear(8, 12))
    model.add_module("norm", torch.nn.LayerNorm(12))
    model.add_module("lm_head", torch.nn.Linear(12, 10, bias=False))
    return model


def _wb(m=8, n=12):
    return torch.nn.Parameter(torch.randn(m, n)), torch.nn.Parameter(torch.randn(n))


def _steps(opt, params, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    for _ in range(k):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g)
        opt.step()


# ------------------------------------------------------------------------------------------ the tables themselves
def test_every_key_has_a_reads_entry_and_a_doc():
    assert set(READS) == set(GROUP_DEFAULTS) == set(KEY_DOCS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", NAMES)
def test_preset_tables_hold_only_keys_their_rules_read(name, mode):
    """No dead configuration: every value a preset sets is read by the rule it is set for."""
    preset = subspace.PRESETS[name]
    low, dense = preset.configs(mode)
    assert set(preset.low_rank) <= reads(low) | {"random_after"}
    assert set(preset.dense) <= reads(dense)
    if mode == "official":
        assert set(preset.official) <= reads(low)
        assert set(preset.official_dense) <= reads(dense)


# ------------------------------------------------------------------------------------------ item 5: strict keys
@pytest.mark.parametrize("name, key, value", [("adamw", "rank", 4), ("muon", "update_gap", 10),
                                              ("galore", "ns_steps", 3), ("galore", "oversample", 3),
                                              ("sumo", "subset", 4), ("osd", "update_gap", 5),
                                              ("adam-sn", "momentum", 0.9), ("galore", "dense_rank", 4),
                                              ("galore", "golore_fraction", 0.5), ("galore", "low_rank", False)])
def test_a_key_the_preset_does_not_read_is_refused(name, key, value):
    W, b = _wb()
    with pytest.raises(ValueError, match=rf"does not read \[.*'{key}'.*\]; it accepts: \[.*'lr'"):
        subspace.make(name, [W, b], **{key: value})


@pytest.mark.parametrize("name, stage, key, value", [("galore", {"projector": "rsvd"}, "oversample", 3),
                                                     ("galore", {"orthogonalizer": "newton-schulz"}, "ns_steps", 3),
                                                     ("adamw", {"projector": "svd"}, "rank", 4),
                                                     ("galore", {"base": "momentum"}, "momentum_init", "grad"),
                                                     ("galore", {"projector": "stiefel"}, "stiefel_method", "polar"),
                                                     ("sumo", {"orthogonalizer": "none"}, "momentum", 0.5)])
def test_a_stage_change_makes_its_keys_readable(name, stage, key, value):
    W, b = _wb()
    opt = subspace.make(name, [W, b], **stage, **{key: value})
    assert opt.param_groups[0][key] == value
    _steps(opt, [W, b])


def test_golore_fraction_is_preset_data_not_a_name_check():
    assert {n for n in NAMES if subspace.PRESETS[n].random_fraction} == {"golore", "golore-sgdm"}
    W, _ = _wb()
    opt = subspace.make("golore-sgdm", [W], golore_fraction=0.5, total_steps=10)
    assert opt.param_groups[0]["random_after"] == 5


def test_callable_projector_reads_the_svd_keys_but_svd_driver():
    calls = []

    def first_coordinates(A, r, t):
        calls.append((tuple(A.shape), r, t))
        return torch.eye(A.shape[0], r, dtype=A.dtype)

    W, _ = _wb()
    opt = subspace.make("galore", [W], projector=first_coordinates, rank=3, update_gap=2)
    with pytest.raises(ValueError, match="svd_driver"):
        subspace.make("galore", [W], projector=first_coordinates, svd_driver="svd")
    assert reads(opt.param_groups[0]) == reads({**opt.param_groups[0], "projector": "svd"}) - {"svd_driver"}


@pytest.mark.parametrize("key, value", [("momentum_init", "ones"), ("stiefel_method", "householder"),
                                        ("fixed_lr", -1.0), ("moment_on_refresh", "transport-later"),
                                        ("projector", 3)])
def test_new_keys_are_validated(key, value):
    W, _ = _wb()
    stage = {"momentum_init": {"base": "momentum"}, "stiefel_method": {"projector": "stiefel"}}.get(key, {})
    with pytest.raises(ValueError, match=key):
        subspace.make("galore", [W], **stage, **{key: value})


def test_dense_group_base_is_adam_or_momentum():
    W, b = _wb()
    with pytest.raises(ValueError, match="base"):
        subspace.make("galore", [W, b], dense_base="ema")
    opt = subspace.make("galore", [W, b], dense_base="momentum", momentum=0.5)
    assert opt.param_groups[1]["base"] == "momentum" and opt.param_groups[1]["momentum"] == 0.5


# ------------------------------------------------------------------------------------------ item 4: user keys win
#: Values no preset uses by default, for every key presets set for dense groups (and the keys dense rules inherit).
_DENSE_VALUES = {"lr": 0.0123, "weight_decay": 0.037, "betas": (0.81, 0.91), "eps": 3e-7, "fixed_lr": 0.25,
                 "state_dtype": "float64"}
_TOGGLES = {"eps_style": ("torch", "hf"), "wd_order": ("before", "after"), "bias_correction": (True, False)}


def _dense_keys():
    keys = set(_DENSE_VALUES) | set(_TOGGLES)
    for p in subspace.PRESETS.values():
        keys |= (set(p.dense) | set(p.official_dense)) - {"base"}
    return sorted(keys)


def _other(key, dense):
    if key in _TOGGLES:
        a, b = _TOGGLES[key]
        return b if dense[key] == a else a
    return _DENSE_VALUES[key]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", _dense_keys())
@pytest.mark.parametrize("name", NAMES)
def test_a_user_value_reaches_every_rule_that_reads_it(name, key, mode):
    model = _model()
    low0, dense0 = subspace.PRESETS[name].configs(mode)
    value = _other(key, dense0)
    if key not in reads(low0) | reads(dense0):
        with pytest.raises(ValueError, match=key):
            subspace.make(name, model, mode=mode, **{key: value})
        return
    opt = subspace.make(name, model, mode=mode, **{key: value})
    low, dense = opt.param_groups
    assert dense[key] == (value if key in reads(dense0) else dense0[key])
    assert low[key] == (value if key in reads(low0) else low0[key])
    if key in reads(dense0):
        only = subspace.make(name, model, mode=mode, **{f"dense_{key}": value})
        assert only.param_groups[1][key] == value and only.param_groups[0][key] == low0[key]


def test_adamw_weight_decay_zero_reaches_the_dense_group():
    opt = subspace.make("adamw", subspace.param_groups(_model()), weight_decay=0.0)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.0, 0.0]


def test_muon_defaults_its_auxiliary_adam_only_where_the_user_said_nothing():
    model = _model()
    assert [g["lr"] for g in subspace.make("muon", model).param_groups] == [0.02, 3e-4]
    assert [g["lr"] for g in subspace.make("muon", model, lr=0.05).param_groups] == [0.05, 0.05]
    assert [g["lr"] for g in subspace.make("muon", model, dense_lr=1e-3).param_groups] == [0.02, 1e-3]


# ------------------------------------------------------------------------------------------ item 6: typed constructors
@pytest.mark.parametrize("name", NAMES)
def test_typed_constructor_signature_lists_each_key_with_its_default(name):
    cls = subspace.CONSTRUCTORS[name]
    assert getattr(subspace, cls.__name__) is cls
    low, dense = subspace.PRESETS[name].configs()
    sig = inspect.signature(cls)
    assert list(sig.parameters)[0] == "params"
    for key in (reads(low) | reads(dense)) - {"low_rank"}:
        param = sig.parameters[key]
        assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.annotation == KEY_DOCS[key][0]
        assert param.default == (low[key] if key in reads(low) else dense[key])
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    for key in sig.parameters:
        assert f"{key}:" in text, key
    assert "State:" in text and "Equivalent to" in text and 'mode="official" sets' in text


@pytest.mark.parametrize("name", NAMES)
def test_make_dispatches_to_the_typed_constructor(name):
    W, b = _wb()
    opt = subspace.make(name, [W, b], lr=0.01)
    assert type(opt) is subspace.CONSTRUCTORS[name] and isinstance(opt, subspace.SubspaceOptimizer)
    W2, b2 = torch.nn.Parameter(W.detach().clone()), torch.nn.Parameter(b.detach().clone())
    typed = subspace.CONSTRUCTORS[name]([W2, b2], lr=0.01)
    _steps(opt, [W, b])
    _steps(typed, [W2, b2])
    assert torch.equal(W, W2) and torch.equal(b, b2)


def test_official_differences_are_in_the_docstrings():
    doc = {n: subspace.CONSTRUCTORS[n].__doc__ for n in NAMES}
    assert "transport-step" in doc["golore"] and "stiefel_method='polar'" in doc["golore"]
    assert "momentum_init='grad'" in doc["galore-sgdm"] and "dense rule: base='momentum'" in doc["golore-sgdm"]
    assert "fixed_lr=1e-05" in doc["sumo"] and "complement gradient gets alpha only" in doc["sumo"]
    assert "no released code" in doc["sumo-ns5"] and "reset-after" in doc["adam-snsm"]
    assert "Not reproduced" not in doc["adam-snsm"] and "keeps them at 1" in doc["sumo"]


def test_repr_shows_preset_mode_and_only_what_differs():
    W, b = _wb()
    text = repr(subspace.GaLore([W, b], rank=4, mode="official", dense_lr=1e-4))
    assert text.splitlines() == ["GaLore(preset='galore', mode='official')",
                                 "  group 0 (low-rank, 1 params): rank=4", "  group 1 (dense, 1 params): lr=0.0001"]


# ------------------------------------------------------------------------------------------ item 7: group rules
@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_dense_gets_the_dense_rule(name):
    W, b = _wb()
    opt = subspace.make(name, [W, b])
    M = torch.nn.Parameter(torch.randn(6, 10))
    opt.add_param_group({"params": [M], "low_rank": False})
    assert {k: v for k, v in opt.param_groups[-1].items() if k != "params"} == \
        {k: v for k, v in opt.param_groups[1].items() if k != "params"}
    _steps(opt, [W, b, M])
    assert "basis" not in opt.state[M]


@pytest.mark.parametrize("name", NAMES)
def test_vectors_inside_a_low_rank_group_get_the_dense_rule(name):
    W, b = _wb()
    opt = subspace.make(name, [{"params": [W, b], "weight_decay": 0.02}])
    flat = subspace.make(name, [W, b], weight_decay=0.02)
    assert [(g["low_rank"], g["params"]) for g in opt.param_groups] == [(True, [W]), (False, [b])]
    for got, want in zip(opt.param_groups, flat.param_groups):
        assert {k: v for k, v in got.items() if k != "params"} == {k: v for k, v in want.items() if k != "params"}


def test_muon_vector_in_a_low_rank_group_does_not_take_lr_002():
    W, b = _wb()
    opt = subspace.make("muon", [{"params": [W, b]}])
    assert [g["lr"] for g in opt.param_groups] == [0.02, 3e-4]


def test_group_dict_keys_are_strict_too():
    W, b = _wb()
    with pytest.raises(ValueError, match="rank"):
        subspace.make("adamw", [{"params": [W], "rank": 4}])
    with pytest.raises(ValueError, match="projector"):
        subspace.make("galore", [{"params": [b], "low_rank": False, "projector": "svd"}])


# ------------------------------------------------------------------------------------------ item 15: nn.Module
@pytest.mark.parametrize("name", ["galore", "sumo"])
def test_a_module_is_split_by_param_groups(name):
    model = _model()
    opt = subspace.make(name, model)
    assert [g.get("param_names") for g in opt.param_groups] == \
        [g["param_names"] for g in subspace.param_groups(model)]
    assert opt.param_groups[0]["param_names"] == ["attn.weight"]
    typed = subspace.CONSTRUCTORS[name](model)
    assert [g["params"] for g in typed.param_groups] == [g["params"] for g in opt.param_groups]
    flat = subspace.make(name, model.parameters())  # a flat list: every matrix is low-rank, the embedding too
    assert model.embed.weight in flat.param_groups[0]["params"]


# ------------------------------------------------------------------------------------------ item 16: state dicts
def _saved(opt):
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _trained(name, shape=(8, 12), **hp):
    W, b = _wb(*shape)
    opt = subspace.make(name, [W, b], **hp)
    _steps(opt, [W, b])
    return opt, W, b


def test_state_of_another_preset_is_refused():
    sd = _saved(_trained("sumo", rank=4)[0])
    opt, _, _ = _trained("galore", rank=4)
    with pytest.raises(ValueError, match=r"preset: saved 'sumo', here 'galore'"):
        opt.load_state_dict(sd)


def test_state_of_another_configuration_is_refused_unless_taken():
    sd = _saved(_trained("galore", rank=8)[0])
    opt, _, _ = _trained("galore", rank=4)
    with pytest.raises(ValueError, match=r"param_groups\[0\]\['rank'\]: saved 8, here 4"):
        opt.load_state_dict(sd)
    opt.load_state_dict(sd, take_hyperparameters=True)
    assert opt.param_groups[0]["rank"] == 8
    with pytest.raises(ValueError, match="mode"):
        _trained("galore", rank=8, mode="official")[0].load_state_dict(sd)


def test_state_of_another_model_is_refused_naming_the_shape():
    sd = _saved(_trained("galore", shape=(8, 12), rank=4)[0])
    opt, _, _ = _trained("galore", shape=(8, 16), rank=4)
    with pytest.raises(ValueError, match=r"shape \(8, 12\) there, \(8, 16\) here"):
        opt.load_state_dict(sd, take_hyperparameters=True)


def test_scheduled_lr_is_not_a_difference():
    opt, W, b = _trained("galore", rank=4, lr=0.01)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    sched.step()
    sd = _saved(opt)
    fresh = subspace.make("galore", [W, b], rank=4, lr=0.01)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["lr"] == 0.005 and fresh.param_groups[0]["initial_lr"] == 0.01


def test_callable_projector_state_dict_loads_weights_only():
    def coords(A, r, t):
        return torch.eye(A.shape[0], r, dtype=A.dtype)

    opt, W, b = _trained("galore", rank=3, projector=coords)
    sd = _saved(opt)
    fresh = subspace.make("galore", [W, b], rank=3, projector=coords)
    fresh.load_state_dict(sd)
    assert fresh.param_groups[0]["projector"] is coords


def test_state_dict_without_new_keys_still_loads():
    """A state saved before keys existed: a missing key reads as its default."""
    opt, W, b = _trained("galore", rank=4)
    sd = _saved(opt)
    for key in ("preset", "mode", "shapes"):
        del sd[key]
    for g in sd["param_groups"]:
        for key in ("momentum_init", "stiefel_method", "fixed_lr"):
            del g[key]
    subspace.make("galore", [W, b], rank=4).load_state_dict(sd)


# ------------------------------------------------------------------------------------------ item 18: rank clamp
def test_clamped_rank_with_a_state_above_adamw_warns_once_naming_the_parameter():
    W = torch.nn.Parameter(torch.randn(6, 9))
    with pytest.warns(UserWarning, match=r"attn\.weight \(shape \(6, 9\)\): rank 50 is clamped") as record:
        opt = subspace.make("galore", [("attn.weight", W)], rank=50)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _steps(opt, [W])
        subspace.make("galore", [W], rank=6 - 1)        # not clamped
        subspace.make("sumo", [W], rank=50)             # clamped, but k r + r l = 90 <= 2 m n = 108
        subspace.make("adamw", [W])                     # no rank
