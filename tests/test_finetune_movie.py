"""Stage 2 through torch_brain 0.1.2's stock train.py: the trunk from a stage-1 run, or none."""

import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from poyocap_plugin.workflow.cli import cli
from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.scalars import read_scalars, tag

from conftest import write_calcium_session, write_nm1_frames_config

POYOCAP = str(Path(sys.executable).parent / "poyocap")
TINY = ["model=capoyo_48k", "batch_size=8", "num_workers=0", "optim.base_lr=2e-4"]
STAGE1_EVERY_SESSION = "dataset=allen_calcium_dg_orientation"


@pytest.fixture(scope="module")
def frames_16x32(tmp_path_factory) -> list[str]:
    """A 16x32 decoder, and every NM1 session with the movie metric sized to match."""
    configs = tmp_path_factory.mktemp("movie_configs")
    return [
        "model.frame_decoder.height=16",
        "model.frame_decoder.width=32",
        "+model.frame_decoder.num_stages=4",
        *write_nm1_frames_config(configs, height=16, width=32),
    ]


@pytest.fixture(scope="module")
def movie_data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("movie")
    for i in range(2):
        write_calcium_session(
            root, session_id=f"80000{i}", seed=i, natural_movie_repeats=4, movie_frames=10
        )
    template = root / "allen_brain_observatory_calcium" / "templates" / "natural_movie_one.h5"
    template.parent.mkdir()
    with h5py.File(template, "w") as f:
        f["frames"] = np.random.default_rng(0).integers(0, 256, (10, 16, 32), dtype=np.uint8)
    return root


def train(config: str, data_root: Path, log_dir: Path, *overrides: str) -> str:
    result = subprocess.run(
        [
            POYOCAP,
            "train",
            "--config-name",
            config,
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
    return result.stdout + result.stderr


def movie_test_metrics(log_dir: Path) -> dict[str, float]:
    metrics = find_run_outputs(log_dir).test_metrics
    ssim = {k: v for k, v in metrics.items() if k.endswith(tag("MovieSSIM()/test"))}
    assert len(ssim) == 2  # one per recording
    assert all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in ssim.values())
    return metrics


@pytest.mark.slow
def test_finetuning_from_a_stage1_trunk_and_from_scratch(movie_data_root, tmp_path, frames_16x32):
    train(
        "poyocap_pretrain", movie_data_root, tmp_path / "stage1", "epochs=2", STAGE1_EVERY_SESSION
    )
    stage1 = find_run_outputs(tmp_path / "stage1").best_checkpoint

    log = train(
        "poyocap_finetune_movie",
        movie_data_root,
        tmp_path / "stage2",
        "epochs=2",
        # quoted: Lightning's checkpoint names hold '=', which Hydra's override parser rejects
        f"model.pretrained_trunk='{stage1}'",
        *frames_16x32,
    )
    assert f"Loaded the trunk (42 tensors) from {stage1}" in log  # modulated token: no value map
    assert log.count("the perceptual term is OFF") == 1
    movie_test_metrics(tmp_path / "stage2")
    logged = read_scalars(find_run_outputs(tmp_path / "stage2").scalars)
    image_loss = [value for _, value in logged["losses/natural_movie_one_image"]]
    assert len(image_loss) == 10  # 40 training windows / batch 8 = 5 steps x 2 epochs
    assert sum(image_loss[-5:]) < sum(image_loss[:5])
    checkpoint = torch.load(
        find_run_outputs(tmp_path / "stage2").best_checkpoint,
        map_location="cpu",
        weights_only=False,
    )
    model_cfg = checkpoint["hyper_parameters"]["model"]
    assert model_cfg["pretrained_trunk"] == str(stage1)
    assert model_cfg["frame_loss"]["perceptual_weights_path"] is None  # recorded: off
    assert "model.frame_decoder.to_pixels.weight" in checkpoint["state_dict"]

    renders = tmp_path / "renders"
    result = CliRunner().invoke(
        cli,
        [
            "render",
            str(find_run_outputs(tmp_path / "stage2").best_checkpoint),
            "--out",
            str(renders),
            "--frames",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    pngs = sorted(renders.glob("*.png"))
    assert [p.name for p in pngs] == ["800000.png", "800001.png"]
    for png in pngs:
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG" and image.size[0] > image.size[1]

    log = train(
        "poyocap_finetune_movie",
        movie_data_root,
        tmp_path / "scratch",
        "epochs=1",
        *frames_16x32,
    )
    assert "Loaded the trunk" not in log
    movie_test_metrics(tmp_path / "scratch")
