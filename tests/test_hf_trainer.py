"""The Hugging Face Trainer recipe (probes.hf_trainer): trains, checkpoints, and resumes to the uninterrupted run."""
import math

import pytest

pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from probes import hf_trainer  # noqa: E402

KW = dict(rank=4, update_gap=2, golore_fraction=1.0)  # GoLore: random bases, so the generator must travel


def test_trainer_checkpoint_resumes_to_the_uninterrupted_losses(tmp_path):
    full = hf_trainer.train(str(tmp_path / "full"), "golore", steps=6, **KW)
    hf_trainer.train(str(tmp_path / "cut"), "golore", steps=6, save_steps=3, **KW)
    resumed = hf_trainer.train(str(tmp_path / "cut"), "golore", steps=6, resume=str(tmp_path / "cut" / "checkpoint-3"),
                               **KW)
    assert len(full) == 6 and all(math.isfinite(x) for x in full)
    assert resumed == full  # the first three come from the checkpoint's log history


def test_optimizer_cls_and_kwargs_builds_the_same_optimizer(tmp_path):
    """The Trainer passes ``model`` as the optimizer's params: split by subspace.param_groups, as subspace.make does."""
    import subspace
    from transformers import Trainer

    model = hf_trainer.tiny_llama()
    trainer = Trainer(model=model, args=hf_trainer.arguments(str(tmp_path), max_steps=2),
                      train_dataset=hf_trainer.ByteLM(32),
                      optimizer_cls_and_kwargs=(subspace.GaLore, dict(model=model, lr=3e-3, rank=4, update_gap=2)))
    trainer.train()
    reference = subspace.make("galore", model, lr=3e-3, rank=4, update_gap=2)
    assert isinstance(trainer.optimizer.optimizer, subspace.GaLore)  # accelerate wraps it
    assert [len(g["params"]) for g in trainer.optimizer.param_groups] == [len(g["params"]) for g in reference.param_groups]
