"""Stage 1 through torch_brain 0.1.2's stock train.py (`poyocap train`), CPU, 1 and 2 processes."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch_brain

from poyocap_plugin.models import CAPOYO
from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.scalars import read_scalars, tag

POYOCAP = str(Path(sys.executable).parent / "poyocap")
TINY = [
    "model=capoyo_48k",
    "batch_size=8",
    "num_workers=0",
    "optim.base_lr=2e-4",
    "dataset=allen_calcium_dg_orientation",  # every session (no curriculum partition)
]


def pretrain(data_root: Path, log_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [
            POYOCAP,
            "train",
            "--config-name",
            "poyocap_pretrain",
            f"data_root={data_root}",
            f"log_dir={log_dir}",
            *TINY,
            *overrides,
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def logged(scalars: Path, key: str) -> list[float]:
    return [value for _, value in read_scalars(scalars).get(tag(key), [])]


@pytest.mark.slow
def test_pretraining_learns_and_its_checkpoint_gives_the_trunk(tiny_data_root, tmp_path):
    pretrain(tiny_data_root, tmp_path / "run", "epochs=10")
    run = find_run_outputs(tmp_path / "run")

    validation = logged(
        run.scalars,
        "allen_brain_observatory_calcium/900000/drifting_gratings_orientation/"
        "MulticlassAccuracy()/val",
    )
    assert len(validation) == 10 and all(0.0 <= v <= 1.0 for v in validation)
    masked = logged(run.scalars, "losses/masked_latent_reconstruction")
    assert len(masked) == 50  # 42 training windows / batch 8 = 5 steps x 10 epochs
    assert sum(masked[-5:]) < sum(masked[:5])
    assert logged(run.scalars, "losses/drifting_gratings_orientation")

    checkpoint = torch.load(run.best_checkpoint, map_location="cpu", weights_only=False)
    model_cfg = checkpoint["hyper_parameters"]["model"]
    assert model_cfg["_target_"] == "poyocap_plugin.models.CAPOYO"
    stage2 = CAPOYO(
        sequence_length=1.9,
        latent_step=0.2375,
        readout_specs=torch_brain.MODALITY_REGISTRY,
        readouts={"drifting_gratings_orientation": 1.0},
        **{
            k: model_cfg[k]
            for k in (
                "dim",
                "depth",
                "dim_head",
                "cross_heads",
                "self_heads",
                "num_latents_per_step",
            )
        },
        pretrained_trunk=run.best_checkpoint,
    )
    torch.testing.assert_close(
        stage2.enc_atn.to_q.weight, checkpoint["state_dict"]["model.enc_atn.to_q.weight"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("target", ["detached", "ema", "input"])
def test_pretraining_runs_under_ddp_with_two_cpu_processes(tiny_data_root, tmp_path, target):
    result = pretrain(
        tiny_data_root, tmp_path / "run", "epochs=2", "gpus=2", f"model.masking.target={target}"
    )
    assert "world size/num nodes: 1/0/2/1" in result.stdout + result.stderr
    run = find_run_outputs(tmp_path / "run")
    checkpoint = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)
    # each of the 2 ranks takes 4 of the 8 windows of a step: 42 // 8 = 5 steps per epoch
    assert checkpoint["global_step"] == 10
    state = checkpoint["state_dict"]
    if target == "ema":  # one teacher update per optimiser step, saved with the run
        assert int(state["model.teacher_steps"]) == 10
        assert any(key.startswith("model.teacher.proc_layers.") for key in state)
    else:
        assert not any(key.startswith("model.teacher") for key in state)


@pytest.mark.slow
def test_a_seed_repeats_with_dataloader_workers(tiny_data_root, tmp_path):
    # The stage configs default to 4 workers (every other test here runs with none): the
    # registry, the transforms' generators and torch's per-worker seeds all cross a fork.
    # Unit dropout sized to the 12 units, so that the count it draws matters.
    dropout = ["unit_dropout.min_units=2", "unit_dropout.mode_units=6", "unit_dropout.max_units=12"]
    states = []
    for name in ("first", "second"):
        pretrain(tiny_data_root, tmp_path / name, "epochs=2", "num_workers=2", *dropout)
        run = find_run_outputs(tmp_path / name)
        checkpoint = torch.load(run.last_checkpoint, map_location="cpu", weights_only=False)
        assert checkpoint["global_step"] == 10
        states.append(checkpoint["state_dict"])
    first, second = states
    assert first.keys() == second.keys()
    for key, value in first.items():
        if torch.is_tensor(value):
            torch.testing.assert_close(second[key], value, rtol=0, atol=0, msg=key)
