import io
import tarfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from poyocap_plugin.workflow import trainer
from poyocap_plugin.workflow.cli import cli


@pytest.fixture(scope="module")
def stock_sdist() -> Path:
    """The verified torch_brain 0.1.2 sdist that the project's setup fetched."""
    archive = trainer.cache_dir() / "torch_brain-0.1.2.tar.gz"
    if not archive.is_file():
        pytest.fail(f"{archive} is missing: run `poyocap trainer` (scripts/setup.sh does)")
    return archive


def _fake_sdist(path: Path) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        payload = b"print('not the stock trainer')\n"
        member = tarfile.TarInfo("torch_brain-0.1.2/examples/poyo_plus/train.py")
        member.size = len(payload)
        tar.addfile(member, io.BytesIO(payload))
    return path


def test_fetch_from_local_sdist_unpacks_the_stock_trainer(tmp_path, stock_sdist):
    train_py = trainer.fetch_trainer(root=tmp_path, sdist=stock_sdist)
    with tarfile.open(stock_sdist) as tar:
        member = tar.extractfile("torch_brain-0.1.2/examples/poyo_plus/train.py")
        assert train_py.read_bytes() == member.read()
    assert (train_py.parent / "configs" / "defaults.yaml").is_file()
    assert (tmp_path / "torch_brain-0.1.2.tar.gz").read_bytes() == stock_sdist.read_bytes()
    assert trainer.find_trainer(tmp_path) == train_py
    mtime = train_py.stat().st_mtime_ns
    assert trainer.fetch_trainer(root=tmp_path) == train_py  # found, not unpacked again
    assert train_py.stat().st_mtime_ns == mtime


def test_archive_with_another_hash_is_refused(tmp_path):
    fake = _fake_sdist(tmp_path / "torch_brain-0.1.2.tar.gz")
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match=r"has SHA-256 [0-9a-f]{64}, but .*published sdist"):
        trainer.fetch_trainer(root=cache, sdist=fake)
    assert trainer.find_trainer(cache) is None


def test_edited_trainer_is_refused(tmp_path, stock_sdist):
    train_py = trainer.fetch_trainer(root=tmp_path, sdist=stock_sdist)
    train_py.write_text(train_py.read_text() + "\n# patched\n")
    with pytest.raises(ValueError, match="differs from the stock torch_brain 0.1.2 trainer"):
        trainer.find_trainer(tmp_path)


def test_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    # pip with no index and an empty find-links folder cannot find the sdist.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    monkeypatch.setenv(trainer.CACHE_ENV_VAR, str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="Could not download the torch_brain 0.1.2 sdist"):
        trainer.fetch_trainer()
    result = CliRunner().invoke(cli, ["trainer"])
    assert result.exit_code == 1
    assert "Error: Could not download the torch_brain 0.1.2 sdist" in result.output
    assert "poyocap trainer --sdist PATH" in result.output


def test_cli_reports_a_wrong_hash(tmp_path, monkeypatch):
    monkeypatch.setenv(trainer.CACHE_ENV_VAR, str(tmp_path / "cache"))
    fake = _fake_sdist(tmp_path / "fake.tar.gz")
    result = CliRunner().invoke(cli, ["trainer", "--sdist", str(fake)])
    assert result.exit_code == 1
    assert f"Error: {fake} has SHA-256" in result.output


def test_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(trainer.CACHE_ENV_VAR, str(tmp_path))
    assert trainer.cache_dir() == tmp_path
