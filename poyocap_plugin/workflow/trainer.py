"""The stock POYO+ trainer of torch_brain 0.1.2, found or fetched, and run unchanged.

torch_brain's wheel does not ship ``examples/``, so the trainer
(``examples/poyo_plus/train.py`` with its ``configs/`` and ``metrics.py``) comes from the
torch_brain 0.1.2 source distribution on PyPI. We download that archive with pip, check
its SHA-256, and unpack ``examples/poyo_plus`` into a cache directory. The plugin never
copies or edits the script: it is run as it is, with the current interpreter, and Hydra
finds the plugin's configs through ``hydra_plugins.poyocap_plugin``; the configs register
the plugin's modalities through their Hydra callback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import platformdirs

__all__ = [
    "TORCH_BRAIN_VERSION",
    "SDIST_SHA256",
    "cache_dir",
    "find_trainer",
    "fetch_trainer",
    "run_trainer",
]

logger = logging.getLogger(__name__)

TORCH_BRAIN_VERSION = "0.1.2"
#: SHA-256 of torch_brain-0.1.2.tar.gz as published on PyPI.
SDIST_SHA256 = "2305357070327f0182a11be72e13c68d4585a348e83e44a1c54cd0e79d4be4ac"
#: Environment variable that moves the cache (default: the user cache dir of "poyocap").
CACHE_ENV_VAR = "POYOCAP_CACHE_DIR"

_SDIST_NAME = f"torch_brain-{TORCH_BRAIN_VERSION}.tar.gz"
_EXAMPLE_PREFIX = f"torch_brain-{TORCH_BRAIN_VERSION}/examples/poyo_plus/"
_MARKER = "poyocap_source.json"


def cache_dir() -> Path:
    """The directory holding fetched trainers: ``$POYOCAP_CACHE_DIR`` or the user cache."""
    configured = os.environ.get(CACHE_ENV_VAR)
    return Path(configured) if configured else Path(platformdirs.user_cache_dir("poyocap"))


def _trainer_dir(root: Path) -> Path:
    return root / f"torch_brain-{TORCH_BRAIN_VERSION}" / "poyo_plus"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_trainer(root: Path | None = None) -> Path | None:
    """Return the cached, unmodified stock ``train.py``, or None if it was never fetched.

    Args:
        root: the cache directory; defaults to :func:`cache_dir`.

    Raises:
        ValueError: if the cached copy differs from the one unpacked from the verified
            archive (someone edited it): the plugin only runs the stock trainer.
    """
    directory = _trainer_dir(root or cache_dir())
    marker = directory / _MARKER
    if not marker.is_file():
        return None
    recorded = json.loads(marker.read_text())
    train_py = directory / "train.py"
    if not train_py.is_file() or _sha256(train_py) != recorded["train_py_sha256"]:
        raise ValueError(
            f"{train_py} differs from the stock torch_brain {TORCH_BRAIN_VERSION} trainer "
            f"unpacked from {recorded['sdist']}. Delete {directory} and run "
            "`poyocap trainer` to fetch it again."
        )
    return train_py


def _download_sdist(dest: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        f"torch_brain=={TORCH_BRAIN_VERSION}",
        "--dest",
        str(dest),
    ]
    logger.info("Fetching the torch_brain %s sdist: %s", TORCH_BRAIN_VERSION, " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    archive = dest / _SDIST_NAME
    if result.returncode != 0 or not archive.is_file():
        raise RuntimeError(
            f"Could not download the torch_brain {TORCH_BRAIN_VERSION} sdist with pip "
            f"(exit code {result.returncode}):\n{result.stderr.strip()[-2000:]}\n"
            f"Check your access to PyPI, or download {_SDIST_NAME} elsewhere and run "
            "`poyocap trainer --sdist PATH`."
        )
    return archive


def _unpack(archive: Path, target: Path) -> None:
    """Unpack ``examples/poyo_plus`` of ``archive`` into ``target``, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the cache is shared like pip's
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(_EXAMPLE_PREFIX)]
            if not any(m.name == _EXAMPLE_PREFIX + "train.py" for m in members):
                raise ValueError(f"{archive} has no {_EXAMPLE_PREFIX}train.py")
            for member in members:
                member.name = member.name[len(_EXAMPLE_PREFIX) :]
                if member.name:
                    tar.extract(member, staging, filter="data")
        (staging / _MARKER).write_text(
            json.dumps(
                {
                    "sdist": _SDIST_NAME,
                    "sdist_sha256": SDIST_SHA256,
                    "train_py_sha256": _sha256(staging / "train.py"),
                },
                indent=2,
            )
        )
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch_trainer(*, root: Path | None = None, sdist: Path | None = None) -> Path:
    """Find the stock trainer in the cache, or fetch and unpack it; return ``train.py``.

    The verified archive is kept in the cache beside the unpacked trainer.

    Args:
        root: the cache directory; defaults to :func:`cache_dir`.
        sdist: a local copy of ``torch_brain-0.1.2.tar.gz`` to use instead of
            downloading one (for machines without access to PyPI).

    Raises:
        RuntimeError: if pip cannot download the archive.
        FileNotFoundError: if ``sdist`` does not exist.
        ValueError: if the archive's SHA-256 is not the published one, or the cached
            trainer was modified.
    """
    root = root or cache_dir()
    found = find_trainer(root)
    if found is not None:
        return found
    root.mkdir(parents=True, exist_ok=True)
    cached = root / _SDIST_NAME
    if sdist is not None:
        if not Path(sdist).is_file():
            raise FileNotFoundError(f"sdist {sdist} does not exist")
        archive = Path(sdist)
    elif cached.is_file():
        archive = cached
    else:
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            _download_sdist(Path(tmp)).rename(cached)
        archive = cached
    digest = _sha256(archive)
    if digest != SDIST_SHA256:
        raise ValueError(
            f"{archive} has SHA-256 {digest}, but torch_brain {TORCH_BRAIN_VERSION}'s "
            f"published sdist has {SDIST_SHA256}. Refusing to run an unknown trainer; "
            "delete the file and fetch it again."
        )
    if archive != cached:
        shutil.copyfile(archive, cached)
    _unpack(archive, _trainer_dir(root))
    train_py = find_trainer(root)
    logger.info("Stock trainer unpacked at %s", train_py)
    return train_py


def run_trainer(overrides: list[str], *, root: Path | None = None, check: bool = True) -> int:
    """Run the stock ``train.py`` with Hydra ``overrides``; return its exit code.

    The trainer runs in a child process of the current interpreter, so it sees the same
    installed packages (and thus the plugin's Hydra hook). Its output streams through.
    Before it starts, :func:`poyocap_plugin.workflow.preflight.check_training_run` composes the same
    config and checks it (seconds), so a bad config fails with a message naming the key or
    file instead of a stack trace from inside the trainer.

    Args:
        overrides: Hydra command-line arguments, e.g.
            ``["--config-name", "poyocap_smoke", "data_root=/data/processed"]``.
        root: the cache directory; defaults to :func:`cache_dir`.
        check: run the preflight first.

    Raises:
        poyocap_plugin.workflow.preflight.PreflightError: if the preflight finds a problem; the
            trainer is not started.
    """
    train_py = fetch_trainer(root=root)
    if check:
        from poyocap_plugin.workflow.preflight import check_training_run

        # train.py logs the same warnings again (e.g. the perceptual term being off); the
        # preflight's own result is an exception or nothing.
        logging.disable(logging.WARNING)
        try:
            check_training_run(overrides, trainer_dir=train_py.parent)
        finally:
            logging.disable(logging.NOTSET)
    command = [sys.executable, str(train_py), *overrides]
    logger.info("Running %s", " ".join(command))
    return subprocess.run(command).returncode
