"""The stock torch_brain 0.1.2 train.py, run through `poyocap train` with a plugin config."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from poyocap_plugin.modalities import plugin_modality_names
from poyocap_plugin.workflow import trainer
from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.scalars import tag

POYOCAP = str(Path(sys.executable).parent / "poyocap")


@pytest.mark.slow
def test_stock_trainer_runs_the_smoke_config_for_one_epoch(tiny_data_root, tmp_path):
    log_dir = tmp_path / "run"
    result = subprocess.run(
        [
            POYOCAP,
            "train",
            "--config-name",
            "poyocap_smoke",
            f"data_root={tiny_data_root}",
            f"log_dir={log_dir}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    run = find_run_outputs(log_dir)
    assert run.best_checkpoint.is_file() and run.last_checkpoint.is_file()
    # Lightning's default logger is TensorBoard's: the plugin installs tensorboard
    assert run.scalars == run.run_dir and any(run.run_dir.glob("events.out.tfevents.*"))
    assert not (run.run_dir / "metrics.csv").exists()
    for session in ("900000", "900001"):
        name = (
            f"allen_brain_observatory_calcium/{session}/drifting_gratings_orientation/"
            "MulticlassAccuracy()/test"
        )
        assert 0.0 <= run.test_metrics[tag(name)] <= 1.0
    assert "average_test_metric" in run.test_metrics

    checkpoint = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == 0
    # The model was built from a registry that held the plugin's modalities: train.py never
    # imported the plugin, the config's Hydra callback registered them.
    assert _modalities_of(checkpoint) == BUILT_IN + len(plugin_modality_names()) == 21
    assert checkpoint["hyper_parameters"]["model"]["_target_"] == (
        "torch_brain.models.CalciumPOYOPlus"
    )
    # Hydra wrote its own logs under log_dir, not into the working directory.
    assert (log_dir / "hydra" / ".hydra" / "config.yaml").is_file()


def _modalities_of(checkpoint: dict) -> int:
    """How many modalities the registry held when the model was built (ids start at 1)."""
    return checkpoint["state_dict"]["model.task_emb.weight"].shape[0] - 1


#: torch_brain's built-in modalities, counted in an interpreter that never saw the plugin
BUILT_IN = int(
    subprocess.run(
        [sys.executable, "-c", "import torch_brain; print(len(torch_brain.MODALITY_REGISTRY))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
)

#: a config that does not use the plugin: torch_brain's CalciumPOYOPlus on raw dF/F
STOCK_CONFIG = """
defaults:
  - defaults
  - _self_
epochs: 1
batch_size: 8
num_workers: 0
seed: 42
model:
  _target_: torch_brain.models.CalciumPOYOPlus
  sequence_length: 1.0
  latent_step: 0.25
  num_latents_per_step: 4
  dim: 32
  dim_head: 16
  depth: 1
  cross_heads: 1
  self_heads: 2
dataset:
  - selection:
      - brainset: allen_brain_observatory_calcium
    config:
      multitask_readout:
        - readout_id: drifting_gratings_orientation
          metrics:
            - metric:
                _target_: torchmetrics.Accuracy
                task: multiclass
                num_classes: 8
train_transforms: []
eval_transforms: []
wandb:
  enable: false
hydra:
  run:
    dir: ${log_dir}/hydra
"""


@pytest.mark.slow
def test_a_stock_config_sees_torch_brain_s_modalities_only_and_resumes_strictly(
    tiny_data_root, tmp_path
):
    """With the plugin installed, a config that does not use it builds the model it would
    build without the plugin (19 modalities, not 21), and its checkpoint resumes."""
    assert BUILT_IN == 19
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "stock_smoke.yaml").write_text(STOCK_CONFIG)
    log_dir = tmp_path / "run"

    def train(*overrides: str) -> None:
        result = subprocess.run(
            [
                sys.executable,
                str(trainer.find_trainer()),
                "--config-dir",
                str(tmp_path / "configs"),
                "--config-name",
                "stock_smoke",
                f"data_root={tiny_data_root}",
                f"log_dir={log_dir}",
                *overrides,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    train("epochs=2")
    (first_epoch,) = log_dir.glob("lightning_logs/version_0/checkpoints/epoch_epoch=00.ckpt")
    checkpoint = torch.load(first_epoch, map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == 0 and _modalities_of(checkpoint) == BUILT_IN
    # ckpt_path= resumes the run after its first epoch: Lightning loads the state dict
    # strictly into the model the config builds now, then trains the second epoch
    train("epochs=2", f"ckpt_path='{first_epoch}'")
    (resumed,) = log_dir.glob("lightning_logs/version_1/checkpoints/epoch_epoch=01.ckpt")
    assert torch.load(resumed, map_location="cpu", weights_only=False)["epoch"] == 1


def test_unknown_config_name_fails_with_hydra_message(tmp_path):
    result = subprocess.run(
        [POYOCAP, "train", "--config-name", "no_such_config"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Cannot find primary config 'no_such_config'" in result.stderr
    assert "pkg://poyocap_plugin.configs" in result.stderr
