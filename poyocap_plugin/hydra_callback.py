"""The Hydra callback that gives the plugin's runs, and only them, the plugin's modalities."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

__all__ = ["RegisterModalities"]


class RegisterModalities(Callback):
    """Registers :mod:`poyocap_plugin.modalities` when a Hydra job starts.

    The plugin's configs declare it under ``hydra.callbacks``, and Hydra calls it before the
    job's function, i.e. before the stock train.py's ``main()`` builds its model from a
    snapshot of torch_brain's registry. A config that does not declare it (any stock
    config) sees torch_brain's built-in modalities only, so models and checkpoints of runs
    that do not use the plugin are what they would be without it. Every DDP rank runs the
    job, and so registers, itself.
    """

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        from poyocap_plugin.modalities import register_all  # registers on import too

        register_all()
