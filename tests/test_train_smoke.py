"""The stock torch_brain 0.1.2 train.py, run through `poyocap train` with a plugin config."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from poyocap_plugin.modalities import plugin_modality_names
from poyocap_plugin.workflow.runs import find_run_outputs

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
    for session in ("900000", "900001"):
        name = (
            f"allen_brain_observatory_calcium/{session}/drifting_gratings_orientation/"
            "MulticlassAccuracy()/test"
        )
        assert 0.0 <= run.test_metrics[name] <= 1.0
    assert "average_test_metric" in run.test_metrics

    checkpoint = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == 0
    # The model was built from a registry that already held the plugin's modalities:
    # train.py never imported the plugin, Hydra's search-path hook did.
    n_modalities = checkpoint["state_dict"]["model.task_emb.weight"].shape[0] - 1
    assert n_modalities >= 19 + len(plugin_modality_names())
    assert checkpoint["hyper_parameters"]["model"]["_target_"] == (
        "torch_brain.models.CalciumPOYOPlus"
    )
    # Hydra wrote its own logs under log_dir, not into the working directory.
    assert (log_dir / "hydra" / ".hydra" / "config.yaml").is_file()


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
