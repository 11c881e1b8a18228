"""Resumable steps: run a piece of work once, and skip it on a rerun with the same inputs.

A step is a folder, a *signature* (the command line or settings that define it) and an
action. Once the action succeeded, :func:`run_step` writes ``<folder>/done.json`` holding
the signature, what the action produced and its wall time. A rerun skips a step whose
marker records the same signature and returns the recorded outputs; a step that failed or
was interrupted has no marker and runs again, and one whose signature changed runs again.
The curriculum (:mod:`poyocap_plugin.workflow.curriculum`) is a chain of such steps.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from poyocap_plugin.workflow.files import write_text_atomically

__all__ = ["MARKER_NAME", "read_marker", "run_logged", "run_step"]

logger = logging.getLogger(__name__)

MARKER_NAME = "done.json"
"""Written into a step's folder once the step succeeded."""


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The done-marker of the step in ``folder``, or None if the step never finished.

    Returns:
        ``{"signature": ..., "outputs": ..., "wall_s": ...}``.

    Raises:
        ValueError: If the marker is not valid JSON (the fix: delete it).
    """
    marker = Path(folder) / MARKER_NAME
    if not marker.is_file():
        return None
    try:
        return json.loads(marker.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{marker} is not valid JSON ({error}); delete it to run that step again"
        ) from error


def _write_marker(folder: Path, record: dict[str, Any]) -> None:
    write_text_atomically(folder / MARKER_NAME, json.dumps(record, indent=2) + "\n")


def _plain(value: Any) -> Any:
    """``value`` as JSON would give it back (paths and tuples become strings and lists)."""
    return json.loads(json.dumps(value, default=str))


def run_step(
    name: str,
    folder: Path,
    signature: dict[str, Any],
    action: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run ``action`` unless ``folder``'s done-marker records the same ``signature``.

    Args:
        name: The step's name in the log.
        folder: The step's folder; the marker goes to ``<folder>/done.json``.
        signature: What defines the step (JSON-serialisable; paths become strings).
        action: The work; returns what it produced (JSON-serialisable).

    Returns:
        The action's outputs, fresh or as recorded (in their JSON form).
    """
    folder = Path(folder)
    signature = _plain(signature)
    record = read_marker(folder)
    if record is not None and record.get("signature") == signature:
        logger.info("%s: finished before (%s), not run again", name, folder / MARKER_NAME)
        return record["outputs"]
    if record is not None:
        logger.info("%s: settings changed since %s; running it again", name, folder / MARKER_NAME)
        (folder / MARKER_NAME).unlink()
    start = time.monotonic()
    outputs = _plain(action())
    wall_s = time.monotonic() - start
    _write_marker(folder, {"signature": signature, "outputs": outputs, "wall_s": wall_s})
    logger.info("%s: done in %.0f s", name, wall_s)
    return outputs


def run_logged(command: list[str], log_path: Path, *, env: dict[str, str] | None = None) -> None:
    """Run ``command`` with its output (stdout and stderr) going to ``log_path``.

    Raises:
        RuntimeError: If it exits non-zero: names the command, the exit code and the log,
            and quotes the log's last lines.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        code = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"`{shlex.join(command)}` failed with exit code {code}; its output is in "
            f"{log_path}. Last lines:\n{tail}"
        )
