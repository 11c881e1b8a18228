"""The preflight of a training run: compose its config, then check it as train.py uses it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from poyocap_plugin.workflow.preflight.command import compose_train_config, parse_trainer_args
from poyocap_plugin.workflow.preflight.config_checks import (
    check_dataset_config,
    check_paths,
    instantiate,
    split_datasets,
)
from poyocap_plugin.workflow.preflight.dry_run import check_transforms, run_first_batch
from poyocap_plugin.workflow.preflight.result import PreflightReport

__all__ = ["check_config", "check_training_run"]

logger = logging.getLogger(__name__)


def check_config(cfg: Any, *, config_name: str = "<config>") -> PreflightReport:
    """Check a composed, resolved training config the way ``train.py`` would use it.

    Args:
        cfg: The config from :func:`compose_train_config`.
        config_name: For messages.

    Returns:
        What was found; see :class:`PreflightReport`.

    Raises:
        PreflightError: On the first problem, naming the key, file or value and the fix.
    """
    from torch_brain.registry import MODALITY_REGISTRY

    report = PreflightReport(config_name=config_name)
    data_root = check_paths(cfg)
    check_dataset_config(cfg.dataset, data_root)
    model = instantiate(cfg.model, "model", readout_specs=MODALITY_REGISTRY)
    train_transforms = instantiate(cfg.train_transforms, "train_transforms")
    eval_transforms = instantiate(cfg.eval_transforms, "eval_transforms")
    datasets = split_datasets(cfg, data_root)
    train, train_intervals = datasets["train"]
    report.recordings = sorted(train.recording_dict)
    unit_ids = train.get_unit_ids()
    model.unit_emb.initialize_vocab(unit_ids)
    model.session_emb.initialize_vocab(train.get_session_ids())
    report.n_units = len(unit_ids)
    metrics: dict[str, list[tuple[str, Any]]] = {}  # readout -> (config key, metric)
    for recording_id, config in train.get_recording_config_dict().items():
        for readout in config["multitask_readout"]:
            for k, metric in enumerate(readout["metrics"]):
                key = (
                    f"dataset ({recording_id}) multitask_readout "
                    f"{readout['readout_id']} metrics[{k}].metric"
                )
                built = instantiate(metric["metric"], key)
                metrics.setdefault(readout["readout_id"], []).append((key, built))
    check_transforms(train_transforms, train, "train_transforms")
    for split in ("valid", "test"):
        check_transforms(eval_transforms, datasets[split][0], "eval_transforms")
    report.losses = run_first_batch(
        cfg, model, train, train_intervals, train_transforms, metrics=metrics
    )
    report.readouts = sorted(report.losses)
    return report


def check_training_run(args: Sequence[str], *, trainer_dir: Path) -> PreflightReport | None:
    """Compose and check the run ``train.py <args>`` would start.

    Args:
        args: ``train.py``'s command line (``--config-name`` and Hydra overrides).
        trainer_dir: The folder of the stock ``train.py``.

    Returns:
        The report, or None when the command line uses Hydra flags the preflight leaves
        to the trainer (see :func:`parse_trainer_args`).

    Raises:
        PreflightError: On any problem found.
    """
    parsed = parse_trainer_args(args)
    if parsed is None:
        return None
    cfg = compose_train_config(trainer_dir, parsed)
    report = check_config(cfg, config_name=parsed.config_name)
    logger.info("preflight passed: %s", report.summary())
    return report
