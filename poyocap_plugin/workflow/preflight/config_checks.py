"""The checks of a composed training config that need no sample: paths, dataset, objects.

Each check walks a step train.py takes before its first training step (the data root and
resume checkpoint, the dataset config's selections and readouts, instantiating the model,
transforms and metrics, torch_brain's ``Dataset`` of every split) and turns the first
problem into a :class:`~poyocap_plugin.workflow.preflight.result.PreflightError` naming the
dotted config key, file or value and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.preflight.result import PreflightError

__all__ = [
    "INPUT_ERRORS",
    "check_dataset_config",
    "check_paths",
    "error_message",
    "instantiate",
    "split_datasets",
]

# The errors a constructor or a data check raises on bad input; anything else is a bug in
# the plugin or upstream and keeps its traceback.
INPUT_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, OSError, ImportError)


def instantiate(config: Any, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(config, **kwargs)``, with a bad input as a PreflightError.

    Args:
        config: The node to instantiate (e.g. ``cfg.model``).
        key: Its dotted config key, for messages.
        **kwargs: Passed on, as train.py passes them (``readout_specs=...``).

    Raises:
        PreflightError: Naming ``key``, the ``_target_`` and the constructor's message.
    """
    import hydra
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = _cause(error)
        target = getattr(config, "_target_", None) if hasattr(config, "get") else None
        where = f"{key} ({target})" if target else key
        raise PreflightError(f"{where}: {error_message(cause)}") from cause
    except INPUT_ERRORS as error:
        raise PreflightError(f"{key}: {error_message(error)}") from error


def _cause(error: BaseException) -> BaseException:
    """The user-facing error inside Hydra's InstantiationException wrapper."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return error


def error_message(error: BaseException) -> str:
    """An error's message without the quotes ``str(KeyError)`` adds."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error) or type(error).__name__


def check_paths(cfg: Any) -> Path:
    """Check that ``data_root`` is a directory and ``ckpt_path`` (when set) a file.

    Returns:
        ``data_root`` as a path.

    Raises:
        PreflightError: Naming the key, the value and what to pass instead.
    """
    data_root = Path(str(cfg.data_root))
    if not data_root.is_dir():
        raise PreflightError(
            f"data_root={str(cfg.data_root)!r} is not a directory; pass the --processed-dir "
            f"of `brainsets prepare {BRAINSET_ID}`, e.g. "
            "data_root=data/processed"
        )
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(str(ckpt_path)).is_file():
        raise PreflightError(
            f"ckpt_path={str(ckpt_path)!r} does not exist; resume from the newest "
            "<log_dir>/lightning_logs/version_N/checkpoints/epoch_epoch=NN.ckpt "
            "(`poyocap summary <log_dir>` prints it), quoted: ckpt_path='<path>'"
        )
    return data_root


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | int | float):
        return [value]
    return list(value)


def _check_sessions(brainset_dir: Path, key: str, names: Iterable[Any], stems: set[str]) -> None:
    for name in names:
        if not isinstance(name, str):
            raise PreflightError(
                f"{key}: session {name!r} is a {type(name).__name__}; session ids are file "
                f"names, quote it: '{name}'"
            )
        if name not in stems:
            near = sorted(stems)[:5]
            raise PreflightError(
                f"{key}: session {name!r} is not in {brainset_dir} (no {name}.h5; found "
                f"{len(stems)} sessions, e.g. {near}). Prepare it, or remove it from the "
                "dataset config"
            )


def check_dataset_config(dataset: Any, data_root: Path) -> None:
    """Check the selections and readouts of a torch_brain dataset config (a list of groups).

    Raises:
        PreflightError: Naming the ``dataset[i]...`` key of an empty selection, a missing
            brainset folder or session, an unregistered readout or a readout without metrics.
    """
    from torch_brain.registry import MODALITY_REGISTRY

    if dataset is None or isinstance(dataset, str | bytes) or not len(dataset):
        raise PreflightError(
            f"dataset is {dataset!r}: choose a dataset config (dataset=<name>) or write one "
            "with `poyocap datasets`"
        )
    for i, group in enumerate(dataset):
        selection = group.get("selection") if hasattr(group, "get") else None
        if not selection:
            raise PreflightError(f"dataset[{i}].selection is empty: name at least a brainset")
        for j, sub in enumerate(selection):
            key = f"dataset[{i}].selection[{j}]"
            brainset = sub.get("brainset")
            if not brainset:
                raise PreflightError(f"{key}.brainset is not set")
            brainset_dir = data_root / str(brainset)
            stems = {p.stem for p in brainset_dir.glob("*.h5")}
            if not stems:
                raise PreflightError(
                    f"{key}.brainset={brainset!r}: no processed sessions (*.h5) in "
                    f"{brainset_dir}; check data_root or run `brainsets prepare {brainset}`"
                )
            _check_sessions(brainset_dir, f"{key}.session", _as_list(sub.get("session")), stems)
            _check_sessions(brainset_dir, f"{key}.sessions", _as_list(sub.get("sessions")), stems)
            excluded = _as_list(sub.get("exclude_sessions"))
            _check_sessions(brainset_dir, f"{key}.exclude_sessions", excluded, stems)
        readouts = (group.get("config") or {}).get("multitask_readout") or []
        if not readouts:
            raise PreflightError(f"dataset[{i}].config.multitask_readout names no readout")
        for k, readout in enumerate(readouts):
            key = f"dataset[{i}].config.multitask_readout[{k}]"
            name = readout.get("readout_id")
            if name not in MODALITY_REGISTRY:
                raise PreflightError(
                    f"{key}.readout_id={name!r} is not a registered modality; known: "
                    f"{sorted(MODALITY_REGISTRY)}"
                )
            if not readout.get("metrics"):
                raise PreflightError(
                    f"{key} ({name}) has no metrics; train.py needs at least one, e.g. "
                    "metrics: [{metric: {_target_: torchmetrics.Accuracy, ...}}]"
                )


def split_datasets(cfg: Any, data_root: Path) -> dict[str, Any]:
    """torch_brain's ``Dataset`` of each split, as train.py builds them.

    Returns:
        ``(dataset, sampling_intervals)`` by split (``"train"``, ``"valid"``, ``"test"``).

    Raises:
        PreflightError: If torch_brain's ``Dataset`` fails on the config, or a split has no
            sampling intervals.
    """
    from torch_brain.data import Dataset

    datasets = {}
    for split in ("train", "valid", "test"):
        try:
            dataset = Dataset(root=str(data_root), config=cfg.dataset, split=split)
            dataset.disable_data_leakage_check()
            intervals = dataset.get_sampling_intervals()
        except (*INPUT_ERRORS, AssertionError, AttributeError, SyntaxError, NameError) as error:
            raise PreflightError(
                f"dataset (split {split!r}): torch_brain's Dataset fails on it: "
                f"{type(error).__name__}: {error_message(error)}"
            ) from error
        total = sum(float((iv.end - iv.start).sum()) for iv in intervals.values())
        if not total > 0:
            raise PreflightError(
                f"dataset: the {split!r} split has no sampling intervals in any of "
                f"{sorted(intervals)}; check the sessions' {split}_domain and the "
                "sampling_intervals_modifier"
            )
        datasets[split] = (dataset, intervals)
    return datasets
