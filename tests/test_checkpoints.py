"""Rebuilding a train.py model from its checkpoint."""

import pytest
import torch
from omegaconf import OmegaConf

from poyocap_plugin.workflow.checkpoints import load_train_checkpoint

DG = "drifting_gratings_orientation"
MODEL = {
    "_target_": "poyocap_plugin.models.CAPOYO",
    "sequence_length": 1.0,
    "latent_step": 0.25,
    "num_latents_per_step": 2,
    "dim": 16,
    "depth": 1,
    "dim_head": 8,
    "cross_heads": 1,
    "self_heads": 2,
    "readouts": {DG: 1.0},
    "pretrained_trunk": "stage1.ckpt",
}


@pytest.fixture
def checkpoint(tmp_path):
    """A train.py-style checkpoint of a tiny CAPOYO with its vocabularies."""
    import hydra
    from torch_brain.registry import MODALITY_REGISTRY

    import poyocap_plugin.modalities  # noqa: F401

    model = hydra.utils.instantiate(
        OmegaConf.create({**MODEL, "pretrained_trunk": None}), readout_specs=MODALITY_REGISTRY
    )
    model.unit_emb.initialize_vocab(["a/u0", "a/u1", "a/u2"])
    model.session_emb.initialize_vocab(["a/s0"])
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    state["other.weight"] = torch.zeros(1)  # not the model's: left out
    hyper_parameters = {
        "model": MODEL,
        "data_root": "/the/runs/data",
        "eval_transforms": [],
        "seed": 0,
    }
    path = tmp_path / "run.ckpt"
    torch.save({"state_dict": state, "hyper_parameters": hyper_parameters}, path)
    return path, model


def test_the_model_comes_back_with_its_weights_and_vocabularies(checkpoint, tmp_path):
    path, original = checkpoint
    run = load_train_checkpoint(path, data_root=tmp_path / "data")
    assert run.path == path
    assert run.config.data_root == str(tmp_path / "data")
    assert run.config.model.pretrained_trunk is None  # the weights are in the checkpoint
    assert "other.weight" not in run.state_dict
    for _ in range(2):  # loading leaves the checkpoint's dict whole (the vocab hooks pop)
        model = run.load_model()
        assert not model.training
        assert model.unit_emb.vocab == original.unit_emb.vocab
        for key, value in original.state_dict().items():
            if not key.endswith("vocab"):
                torch.testing.assert_close(model.state_dict()[key], value)
    assert run.instantiate_model().unit_emb.is_lazy()
    assert run.eval_transforms() == []
    assert load_train_checkpoint(path).config.data_root == "/the/runs/data"


def test_files_that_are_no_train_py_checkpoint_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"checkpoint .*missing.ckpt does not exist"):
        load_train_checkpoint(tmp_path / "missing.ckpt")
    (tmp_path / "text.ckpt").write_text("hello")
    with pytest.raises(ValueError, match=r"text.ckpt is not a torch checkpoint"):
        load_train_checkpoint(tmp_path / "text.ckpt")
    torch.save({"hyper_parameters": {"model": MODEL}}, tmp_path / "weights_only.ckpt")
    with pytest.raises(ValueError, match=r"weights_only.ckpt is not a checkpoint of torch_brain"):
        load_train_checkpoint(tmp_path / "weights_only.ckpt")


def test_a_stage2_config_from_before_explicit_frame_sizes_is_sized_by_its_decoder(tmp_path):
    """Stage-2 runs before issue 13 configured CAPFrameLoss without height and width."""
    model = {
        **MODEL,
        "sequence_length": 0.033,
        "latent_step": 0.033,
        "readouts": {"natural_movie_one_image": 1.0},
        "pretrained_trunk": None,
        "frame_decoder": {
            "_target_": "poyocap_plugin.nn.SkipUNetFrameDecoder",
            "dim": 16,
            "height": 16,
            "width": 32,
            "num_stages": 4,
        },
        "frame_loss": {
            "_target_": "poyocap_plugin.losses.CAPFrameLoss",
            "perceptual_weights_path": None,
        },
    }
    path = tmp_path / "old_stage2.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"model": model}}, path)
    run = load_train_checkpoint(path)
    assert (run.config.model.frame_loss.height, run.config.model.frame_loss.width) == (16, 32)
    loss = run.instantiate_model().readout.readout_specs["natural_movie_one_image"].loss_fn
    assert (loss.height, loss.width) == (16, 32)
