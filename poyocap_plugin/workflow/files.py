"""Writing files so that a reader never sees half of one: write beside, then rename.

Every file the workflow writes (configs, markers, reports, figures, simulated NWB files)
goes through :func:`write_atomically`. The brainsets pipeline keeps its own copy: it runs
in brainsets' isolated environment, without the plugin.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["write_atomically", "write_text_atomically"]


def write_atomically(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(partial)`` on a hidden name beside ``path``, then rename it to ``path``.

    The rename is atomic on one filesystem: ``path`` holds either its old content or the
    whole new one. If ``write`` raises, the partial file is removed and ``path`` is left as
    it was. The parent folder is created if needed.

    Args:
        path: The file to write.
        write: Writes the whole file to the path it is given.

    Returns:
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """:func:`write_atomically` for a text file (UTF-8)."""
    return write_atomically(path, lambda partial: partial.write_text(text, encoding="utf-8"))
