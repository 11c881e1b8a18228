"""The plugin refuses a torch_brain other than 0.1.x with an error that says how to fix it."""

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import tomllib

from poyocap_plugin.torch_brain_version import REQUIRED_TORCH_BRAIN, require_torch_brain

ROOT = Path(__file__).resolve().parents[1]


def test_the_installed_torch_brain_is_accepted():
    require_torch_brain()


@pytest.mark.parametrize(
    "version, found",
    [("0.2.1", "found torch_brain 0.2.1"), (None, "torch_brain is not installed")],
)
def test_another_torch_brain_is_refused_with_the_fix(monkeypatch, version, found):
    def fake_version(name):
        if version is None:
            raise metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(metadata, "version", fake_version)
    with pytest.raises(ImportError) as error:
        require_torch_brain()
    message = str(error.value)
    assert found in message and "0.1.x" in message
    assert f'pip install "torch_brain=={REQUIRED_TORCH_BRAIN}"' in message


def test_the_registry_module_checks_before_it_imports_torch_brain():
    # as train.py's Hydra start-up imports it, in a process that sees torch_brain 0.2.1
    code = (
        "import importlib.metadata as m; m.version = lambda name: '0.2.1'; "
        "import poyocap_plugin.modalities"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "ImportError: poyocap-plugin needs torch_brain 0.1.x (found torch_brain 0.2.1)" in (
        result.stderr
    )


def test_the_required_version_is_the_one_pyproject_pins():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"torch_brain=={REQUIRED_TORCH_BRAIN}" in dependencies
