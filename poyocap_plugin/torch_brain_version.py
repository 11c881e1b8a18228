"""The torch_brain the plugin runs in: 0.1.x, checked before its registry is imported.

torch_brain 0.2 removed the modality registry that the plugin registers into and the POYO+
trainer (``train.py``) that runs it. Without this check a user with 0.2 installed gets
whatever error the first missing import raises.
"""

from __future__ import annotations

from importlib import metadata

__all__ = ["REQUIRED_TORCH_BRAIN", "require_torch_brain"]

REQUIRED_TORCH_BRAIN = "0.1.2"
"""The version pyproject.toml pins (``tests/test_torch_brain_version.py`` checks the two agree)."""


def require_torch_brain() -> None:
    """Return if torch_brain 0.1.x is installed; otherwise say what was found and the fix.

    Raises:
        ImportError: naming the version found (or that none is), why 0.1 is needed and the
            pip command that installs it.
    """
    series = REQUIRED_TORCH_BRAIN.rsplit(".", 1)[0] + "."
    try:
        found = metadata.version("torch_brain")
    except metadata.PackageNotFoundError:
        found = None
    if found is not None and found.startswith(series):
        return
    what = "torch_brain is not installed" if found is None else f"found torch_brain {found}"
    raise ImportError(
        f"poyocap-plugin needs torch_brain {series}x ({what}): it registers its modalities in "
        "torch_brain 0.1's modality registry and trains with its POYO+ train.py, both removed "
        f'in 0.2. Install the supported version: pip install "torch_brain=={REQUIRED_TORCH_BRAIN}"'
    )
