"""Config faults caught by `poyocap train`'s preflight before train.py starts.

Each test injects one fault into a valid stage config and asserts a PreflightError that
names the key or file; the CLI test asserts exit code 2, the message and no traceback, and
that the trainer was never started. The configs are composed exactly as train.py composes
them (its configs dir + the plugin's pkg configs, the same overrides).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch_brain
from click.testing import CliRunner

from poyocap_plugin.models import CAPOYO
from poyocap_plugin.workflow import trainer
from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.preflight import PreflightError, check_training_run, parse_trainer_args

from conftest import write_calcium_session, write_nm1_frames_config

TINY = ["model=capoyo_48k", "batch_size=8", "num_workers=0"]
PRETRAIN = ["--config-name", "poyocap_pretrain", "dataset=allen_calcium_dg_orientation", *TINY]
MOVIE_16x32 = [
    "--config-name",
    "poyocap_finetune_movie",
    *TINY,
    "model.frame_decoder.height=16",
    "model.frame_decoder.width=32",
    "+model.frame_decoder.num_stages=4",
]


@pytest.fixture(scope="module")
def movie(tmp_path_factory) -> list[str]:
    """Stage 2 at 16x32, with the example dataset config's metric sized to match."""
    configs = tmp_path_factory.mktemp("movie_configs")
    return [*MOVIE_16x32, *write_nm1_frames_config(configs, height=16, width=32)]


@pytest.fixture(scope="module")
def trainer_dir() -> Path:
    train_py = trainer.find_trainer()
    if train_py is None:
        pytest.fail("the stock trainer is not cached: run `poyocap trainer` (scripts/setup.sh)")
    return train_py.parent


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """Two tiny sessions with gratings and 4 repeats of a 10-frame movie; a 16x32 template."""
    root = tmp_path_factory.mktemp("preflight")
    for i in range(2):
        write_calcium_session(
            root, session_id=f"80000{i}", seed=i, natural_movie_repeats=4, movie_frames=10
        )
    template = root / "allen_brain_observatory_calcium" / "templates" / "natural_movie_one.h5"
    template.parent.mkdir()
    with h5py.File(template, "w") as f:
        f["frames"] = np.random.default_rng(0).integers(0, 256, (10, 16, 32), dtype=np.uint8)
    return root


def check(trainer_dir: Path, base: list[str], data_root: Path | str, *overrides: str):
    return check_training_run(
        [*base, f"data_root={data_root}", *overrides], trainer_dir=trainer_dir
    )


def test_valid_configs_pass_and_run_a_batch(trainer_dir, data_root, movie):
    report = check(trainer_dir, PRETRAIN, data_root)
    assert report.recordings == [
        "allen_brain_observatory_calcium/800000",
        "allen_brain_observatory_calcium/800001",
    ]
    assert report.readouts == ["drifting_gratings_orientation", "masked_latent_reconstruction"]
    report = check(trainer_dir, movie, data_root)
    assert report.readouts == ["natural_movie_one_image"]
    assert all(np.isfinite(v) for v in report.losses.values())


def test_hydra_flags_other_than_config_name_are_left_to_train_py():
    assert parse_trainer_args(["--config-name=a", "x=1"]).overrides == ("x=1",)
    assert parse_trainer_args(["-cn", "a.yaml"]).config_name == "a"
    assert parse_trainer_args(["--config-name", "a", "--cfg", "job"]) is None
    assert parse_trainer_args(["-m", "--config-name", "a"]) is None
    with pytest.raises(PreflightError, match="no --config-name"):
        parse_trainer_args(["data_root=x"])


def test_missing_data_root(trainer_dir, tmp_path):
    with pytest.raises(PreflightError, match=r"data_root=.*nowhere' is not a directory"):
        check(trainer_dir, PRETRAIN, tmp_path / "nowhere")
    with pytest.raises(PreflightError, match="data_root must be set; add data_root=<value>"):
        check(trainer_dir, PRETRAIN, "???")


def test_unknown_model_readout_modality(trainer_dir, data_root):
    with pytest.raises(
        PreflightError,
        match=r"model \(poyocap_plugin.models.CAPOYO\): "
        r"model.readouts names 'natural_movie_four'",
    ):
        check(trainer_dir, PRETRAIN, data_root, "+model.readouts.natural_movie_four=1.0")


def test_unknown_dataset_readout(trainer_dir, data_root):
    bad = "dataset.0.config.multitask_readout.0.readout_id=drifting_gratings_orientatoin"
    with pytest.raises(
        PreflightError,
        match=r"dataset\[0\].config.multitask_readout\[0\].readout_id="
        r"'drifting_gratings_orientatoin' is not a registered modality",
    ):
        check(trainer_dir, PRETRAIN, data_root, bad)


def test_dataset_readout_the_model_lacks(trainer_dir, data_root):
    """The dataset asks for the movie while the stage-1 model only decodes gratings."""
    bad = "dataset.0.config.multitask_readout.0.readout_id=natural_movie_one_image"
    with pytest.raises(PreflightError, match="model.tokenize on allen_brain_observatory_"):
        check(trainer_dir, PRETRAIN, data_root, bad)


def test_unknown_config_group_option(trainer_dir, data_root):
    with pytest.raises(PreflightError, match=r"Could not find 'model/capoyo_7M'"):
        check(trainer_dir, PRETRAIN, data_root, "model=capoyo_7M")


def test_session_not_on_disk(trainer_dir, data_root):
    with pytest.raises(
        PreflightError,
        match=r"dataset\[0\].selection\[0\].session: session '123456' is not in .*"
        r"allen_brain_observatory_calcium \(no 123456.h5",
    ):
        check(trainer_dir, PRETRAIN, data_root, "+dataset.0.selection.0.session='123456'")
    with pytest.raises(PreflightError, match=r"session 800000 is a int; .* quote it: '800000'"):
        check(trainer_dir, PRETRAIN, data_root, "+dataset.0.selection.0.session=800000")


def test_brainset_folder_missing(trainer_dir, data_root):
    with pytest.raises(PreflightError, match=r"brainset='allen_typo': no processed sessions"):
        check(trainer_dir, PRETRAIN, data_root, "dataset.0.selection.0.brainset=allen_typo")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("neuron_sampler.skewness_threshold=-5.0", "0 of 12 neurons selected as predictable"),
        ("neuron_sampler.kurtosis_threshold=nan", "kurtosis_threshold must be finite"),
        ("+neuron_sampler.min_units=0", "min_units must be at least 1"),
        ("neuron_sampler.population=inhibitory", "population must be one of"),
        ("model.masking.ratio=1.5", "ratio"),
    ],
)
def test_thresholds_out_of_range(trainer_dir, data_root, override, message):
    with pytest.raises(PreflightError, match=message):
        check(trainer_dir, PRETRAIN, data_root, override)


def test_missing_template(trainer_dir, data_root, tmp_path, movie):
    with pytest.raises(
        PreflightError,
        match=r"train_transforms \(MovieFrameTargets\): natural-movie-one template "
        r".*missing.h5' does not exist",
    ):
        check(trainer_dir, movie, data_root, f"movie_targets.template_path={tmp_path}/missing.h5")


def test_frame_size_the_template_cannot_give(trainer_dir, data_root, movie):
    with pytest.raises(PreflightError, match=r"stored at 16x32 and cannot give 32x64 frames"):
        check(
            trainer_dir,
            movie,
            data_root,
            "model.frame_decoder.height=32",
            "model.frame_decoder.width=64",
        )


def test_a_metric_sized_for_other_frames_fails_before_training(trainer_dir, data_root):
    """The shipped dataset config scores 128x256 frames; a 16x32 decoder must be caught."""
    with pytest.raises(
        PreflightError,
        match=r"metrics\[0\]\.metric on the first batch's natural_movie_one_image outputs: "
        r"ValueError: MovieSSIM preds: expected 128x256 frames",
    ):
        check(trainer_dir, MOVIE_16x32, data_root, "dataset=allen_calcium_nm1_frames")


def _stage1_checkpoint(path: Path, *, dim: int, depth: int) -> Path:
    """A Lightning-style checkpoint of a CAPOYO trunk of the given size (no training)."""
    model = CAPOYO(
        sequence_length=1.9,
        latent_step=0.2375,
        readout_specs=torch_brain.MODALITY_REGISTRY,
        readouts={"drifting_gratings_orientation": 1.0},
        dim=dim,
        depth=depth,
        dim_head=16,
        cross_heads=1,
        self_heads=2,
        num_latents_per_step=4,
    )
    model.unit_emb.initialize_vocab(["a/b/0"])
    model.session_emb.initialize_vocab(["a/b"])
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state}, path)
    return path


def test_stage2_checkpoint_of_another_size(trainer_dir, data_root, tmp_path, movie):
    ckpt = _stage1_checkpoint(tmp_path / "epoch=1-step=10.ckpt", dim=64, depth=1)
    with pytest.raises(PreflightError, match=r"holds a trunk of another size; mismatched keys"):
        check(trainer_dir, movie, data_root, f"model.pretrained_trunk='{ckpt}'")
    same = _stage1_checkpoint(tmp_path / "same.ckpt", dim=32, depth=1)
    assert check(trainer_dir, movie, data_root, f"model.pretrained_trunk='{same}'")
    with pytest.raises(PreflightError, match=r"model.pretrained_trunk: .*absent.ckpt does not"):
        check(trainer_dir, movie, data_root, f"model.pretrained_trunk='{tmp_path}/absent.ckpt'")


def test_resume_checkpoint_missing(trainer_dir, data_root, tmp_path):
    with pytest.raises(PreflightError, match=r"ckpt_path=.*gone.ckpt' does not exist"):
        check(trainer_dir, PRETRAIN, data_root, f"ckpt_path='{tmp_path}/gone.ckpt'")


def test_cli_exits_2_without_traceback_and_never_starts_the_trainer(
    data_root, tmp_path, monkeypatch
):
    started = []
    monkeypatch.setattr(trainer.subprocess, "run", lambda *a, **k: started.append(a))
    result = CliRunner().invoke(
        cli, ["train", *PRETRAIN, f"data_root={tmp_path / 'nowhere'}", f"log_dir={tmp_path}"]
    )
    assert result.exit_code == 2, result.output
    assert "configuration check failed, train.py was not started" in result.output
    assert "is not a directory" in result.output and "Traceback" not in result.output
    assert not started
    result = CliRunner().invoke(cli, ["check", *PRETRAIN, f"data_root={data_root}"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: config 'poyocap_pretrain': 2 training recordings")
    # --no-check hands even a broken config to train.py
    result = CliRunner().invoke(
        cli, ["train", "--no-check", *PRETRAIN, f"data_root={tmp_path / 'nowhere'}"]
    )
    assert len(started) == 1 and "--no-check" not in started[0][0]
