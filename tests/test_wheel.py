"""The built wheel, installed non-editable into a fresh virtual environment, works alone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, **kwargs)
    assert result.returncode == 0, (
        f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory) -> Path:
    """A new venv holding only torch (this machine's build) and the plugin's wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp), "."],
        cwd=REPO,
    )
    (wheel,) = tmp.glob("poyocap_plugin-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    _run([*pip, f"torch=={torch.__version__.split('+')[0]}"])
    _run([*pip, str(wheel)])
    return venv


@pytest.mark.slow
def test_the_sdist_and_wheel_pass_twine_check(tmp_path):
    # the package is installed from a clone or a built wheel until it is published
    _run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), "."], cwd=REPO
    )
    built = sorted(str(p) for p in tmp_path.iterdir())
    assert sorted(Path(p).suffix for p in built) == [".gz", ".whl"]
    assert "PASSED" in _run([sys.executable, "-m", "twine", "check", "--strict", *built])


@pytest.mark.slow
def test_cli_and_configs_come_from_the_installed_wheel(fresh_env, tmp_path):
    bin_dir = fresh_env / "bin"
    assert "Commands:" in _run([str(bin_dir / "poyocap"), "--help"], cwd=tmp_path)
    located = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "from importlib.resources import files; import poyocap_plugin;"
            "print(poyocap_plugin.__file__);"
            "print(files('poyocap_plugin') / 'configs' / 'poyocap_smoke.yaml')",
        ],
        cwd=tmp_path,
    ).split()
    for path in located:
        assert Path(path).is_file() and str(fresh_env) in path  # not the working tree
    pipeline = list(fresh_env.glob("lib/python*/site-packages/brainsets_pipelines"))
    assert pipeline, "brainsets_pipelines namespace missing from the installed wheel"


@pytest.mark.slow
def test_stock_trainer_sees_the_plugin_from_the_installed_wheel(fresh_env, tmp_path):
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import write_calcium_session

    write_calcium_session(tmp_path / "data", session_id="900000")
    log_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    _run(
        [
            str(fresh_env / "bin" / "poyocap"),
            "train",
            "--config-name",
            "poyocap_smoke",
            f"data_root={tmp_path / 'data'}",
            f"log_dir={log_dir}",
        ],
        cwd=tmp_path,
        env=env,
    )
    (checkpoint,) = (log_dir / "lightning_logs").glob("version_*/checkpoints/last.ckpt")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    # task_emb has one row per registered modality plus padding: more than the 19 built-ins
    assert state["model.task_emb.weight"].shape[0] - 1 > 19
