"""Every preset, paper and official mode, on FSDP2-sharded parameters (real gloo processes on the CPU).

One spawned job per world size runs every configuration (spawning costs ~10 s; the steps cost little). The model
has a wide weight (5 x 6, left projection, uneven at world 2 and 3), a tall one (61 x 5, right projection, uneven;
tall enough that the stages which may all-reduce a small Gram instead of gathering do so), a 4 x 61 weight (an
empty shard at world 3) and biases (1-D, the dense rule). Each rank feeds the same batch, so
FSDP2's averaged gradient is the single-process one up to round-off, and the weights must match the single-process
run to 1e-5 (relative, per parameter). (A 1 x N weight has empty shards too, but at r = k = 1 OSD's basis gradient
vanishes identically and its Adam step turns float32 round-off, ~5e-7, into a 7% move of P in the single-process
run itself: no other reduction order can follow that; every other preset matches there as well.) Checkpoints are written with torch.distributed.checkpoint at
world 2 after 3 of 6 steps; world 2 resumes them bitwise, world 3 and world 1 reshard them and continue.
"""
import json
import os
import socket

import pytest
import torch

import subspace

STEPS, SAVE_AT, TOL = 6, 3, 1e-5
CONFIGS = [(name, mode) for name in subspace.available() for mode in ("paper", "official")]


def _keys(name):
    """Small rank and gap (several refreshes in six steps), both GoLore projector kinds, where the preset reads them."""
    accepts = subspace.PRESETS[name].accepts()
    wanted = dict(rank=2, update_gap=2, golore_fraction=0.5, total_steps=STEPS, lr=0.02)
    return {k: v for k, v in wanted.items() if k in accepts}


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 61), torch.nn.Tanh(),
                               torch.nn.Linear(61, 4))


def _batch(t):
    g = torch.Generator().manual_seed(100 + t)
    return torch.randn(8, 6, generator=g), torch.randn(8, 4, generator=g)


def _train(model, opt, steps, start=0):
    for t in range(start, start + steps):
        x, y = _batch(t)
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def _make(model, name, mode):
    return subspace.make(name, list(model.parameters()), mode=mode, seed=3, **_keys(name))


def _weights(model):
    """The whole parameters (a collective for DTensors)."""
    return [p.full_tensor() if hasattr(p, "full_tensor") else p.detach().clone() for p in model.parameters()]


def _rel(a, b):
    return max(float((x - y).norm() / y.norm().clamp_min(1e-30)) for x, y in zip(a, b))


def _reference(name, mode):
    """The single-process weights after STEPS steps."""
    model = _model()
    _train(model, _make(model, name, mode), STEPS)
    return _weights(model)


def _sharded(mesh):
    from torch.distributed.fsdp import fully_shard

    model = _model()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    return fully_shard(model, mesh=mesh)


def _dcp_io(model, opt):
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict

    return {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)}


def _load(model, opt, path):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

    sd = _dcp_io(model, opt)
    dcp.load(sd, checkpoint_id=path)
    set_model_state_dict(model, sd["model"])
    set_optimizer_state_dict(model, opt, sd["optim"])


def _job(rank, world, port, out):
    """Worker: every configuration at this world size; rank 0 writes {config: measurements} to ``out``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.device_mesh import init_device_mesh

    dist.init_process_group("gloo", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    ckpts = os.path.join(os.path.dirname(out), "ckpt")
    results = {}
    for name, mode in CONFIGS:
        key = f"{name}/{mode}"
        ref = _reference(name, mode)
        row = results[key] = {}
        model = _sharded(mesh)
        opt = _make(model, name, mode)
        try:
            if world == 2:
                _train(model, opt, SAVE_AT)
                dcp.save(_dcp_io(model, opt), checkpoint_id=os.path.join(ckpts, key))
                _train(model, opt, STEPS - SAVE_AT, SAVE_AT)
                row["equal"] = _rel(_weights(model), ref)
                resumed = _sharded(mesh)
                ropt = _make(resumed, name, mode)
                _load(resumed, ropt, os.path.join(ckpts, key))
                _train(resumed, ropt, STEPS - SAVE_AT, SAVE_AT)
                row["bitwise"] = all(torch.equal(a, b) for a, b in zip(_weights(resumed), _weights(model)))
            else:
                _train(model, opt, STEPS)
                row["equal"] = _rel(_weights(model), ref)
                resumed = _sharded(mesh)
                ropt = _make(resumed, name, mode)
                _load(resumed, ropt, os.path.join(ckpts, key))
                _train(resumed, ropt, STEPS - SAVE_AT, SAVE_AT)
                row["resharded"] = _rel(_weights(resumed), ref)
        except Exception as exc:  # reported per configuration, so one failure does not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
            dist.barrier()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(results, f)
    dist.barrier()
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawn(world, folder):
    import torch.multiprocessing as mp

    out = os.path.join(folder, f"world{world}.json")
    mp.spawn(_job, args=(world, _free_port(), out), nprocs=world)
    with open(out) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("fsdp"))
    two = _spawn(2, folder)  # writes the checkpoints that world 3 and world 1 read
    return {"folder": folder, 2: two, 3: _spawn(3, folder)}


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("name,mode", CONFIGS)
def test_sharded_trajectory_equals_the_single_process_one(runs, world, name, mode):
    row = runs[world][f"{name}/{mode}"]
    assert "error" not in row, row.get("error")
    assert row["equal"] <= TOL


@pytest.mark.parametrize("name,mode", CONFIGS)
def test_resume_at_the_same_world_size_is_bitwise(runs, name, mode):
    row = runs[2][f"{name}/{mode}"]
    assert "error" not in row, row.get("error")
    assert row["bitwise"]


@pytest.mark.parametrize("name,mode", CONFIGS)
def test_checkpoint_of_world_2_reshards_to_world_3(runs, name, mode):
    row = runs[3][f"{name}/{mode}"]
    assert "error" not in row, row.get("error")
    assert row["resharded"] <= TOL


@pytest.mark.parametrize("name,mode", CONFIGS)
def test_checkpoint_of_world_2_loads_in_one_process(runs, name, mode):
    """No process group, no FSDP: the sharded checkpoint becomes whole tensors and the run continues."""
    model = _model()
    opt = _make(model, name, mode)
    _load(model, opt, os.path.join(runs["folder"], "ckpt", name, mode))
    _train(model, opt, STEPS - SAVE_AT, SAVE_AT)
    assert _rel(_weights(model), _reference(name, mode)) <= TOL
