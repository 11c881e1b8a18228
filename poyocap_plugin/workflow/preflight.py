"""Check a training run's configuration before torch_brain's stock ``train.py`` starts it.

``poyocap train`` hands its Hydra overrides to the unchanged trainer in a child process. A
typo there (an unknown readout, a missing data root, a session that is not on disk, a
checkpoint of another model size) would otherwise surface as a stack trace from deep inside
torch_brain, Lightning or a DataLoader worker, possibly after minutes of set-up. The
preflight composes the same config the trainer will see (the trainer's ``configs/`` as the
primary directory, the plugin's ``pkg://poyocap_plugin.configs`` appended by the Hydra
search-path plugin, the same overrides) and walks the path ``train.py`` takes up to its
first optimizer step, on CPU and in seconds:

1. every mandatory key (``???``) is set and every interpolation resolves;
2. ``data_root`` is a directory, ``ckpt_path`` (when set) a file;
3. each dataset selection names a brainset folder holding ``*.h5`` files and sessions that
   exist (as strings), and each ``multitask_readout`` names a registered modality;
4. the model is instantiated as ``train.py`` does it (``readout_specs=MODALITY_REGISTRY``),
   which checks its readouts, sizes and, for a stage-2 model, the pretrained trunk's shapes;
5. the transforms and metrics are instantiated; torch_brain's ``Dataset`` is built for the
   three splits and every split has sampling intervals;
6. plugin transforms check what they would otherwise find at their first sample: the
   neuron sampler's selection on every recording, the movie template's presence and size;
7. two training windows go through the transforms, the model's tokenizer, ``collate``, the
   forward pass and each readout's ``loss_fn``, as in ``train.py``'s ``training_step``.

Any failure is a :class:`PreflightError` naming the dotted config key, file or value and the
fix. The check never changes the config and never trains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "PreflightError",
    "PreflightReport",
    "TrainerArgs",
    "check_config",
    "check_training_run",
    "compose_train_config",
    "parse_trainer_args",
]

logger = logging.getLogger(__name__)

# Hydra's own command-line flags of a @hydra.main script that only choose the config.
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")
_N_SAMPLE_WINDOWS = 2  # windows pushed through tokenize -> collate -> forward -> loss


class PreflightError(ValueError):
    """A training configuration that would fail before (or at) the first training step."""


@dataclass(frozen=True)
class TrainerArgs:
    """``train.py``'s command line, split into Hydra's config name and its overrides.

    Attributes:
        config_name: The ``--config-name`` (e.g. ``"poyocap_pretrain"``).
        overrides: The Hydra overrides, in order (e.g. ``["data_root=/data", "epochs=5"]``).
    """

    config_name: str
    overrides: tuple[str, ...]


@dataclass
class PreflightReport:
    """What the preflight found on a valid configuration.

    Attributes:
        config_name: The composed config's name.
        recordings: Recording ids of the training split.
        n_units: Units in the model's vocabulary (all training recordings).
        readouts: Readout names the model returned on the sample batch.
        losses: Each readout's loss on the sample batch.
    """

    config_name: str
    recordings: list[str] = field(default_factory=list)
    n_units: int = 0
    readouts: list[str] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the log and the console."""
        losses = ", ".join(f"{k}={v:.4g}" for k, v in sorted(self.losses.items()))
        return (
            f"config {self.config_name!r}: {len(self.recordings)} training recordings, "
            f"{self.n_units} units, first batch losses: {losses}"
        )


def parse_trainer_args(args: Sequence[str]) -> TrainerArgs | None:
    """Split ``train.py``'s arguments into config name and overrides.

    Returns None when the command line uses a Hydra flag other than ``--config-name``
    (``--multirun``, ``--cfg``, ``--config-dir``, ``--help``, ...): the preflight then
    leaves the run to the trainer rather than guess what Hydra will compose.

    Raises:
        PreflightError: If no ``--config-name`` is given (train.py's default
            ``train.yaml`` does not exist in torch_brain 0.1.2).
    """
    config_name: str | None = None
    overrides: list[str] = []
    items = list(args)
    i = 0
    while i < len(items):
        item = items[i]
        if item in _CONFIG_NAME_FLAGS:
            if i + 1 == len(items):
                raise PreflightError(f"{item} needs a config name, e.g. {item} poyocap_pretrain")
            config_name = items[i + 1]
            i += 2
            continue
        if item.startswith("--config-name="):
            config_name = item.split("=", 1)[1]
        elif item.startswith("-"):
            logger.info("preflight skipped: train.py option %s is left to Hydra", item)
            return None
        else:
            overrides.append(item)
        i += 1
    if not config_name:
        raise PreflightError(
            "no --config-name: name a stage config, e.g. `poyocap train --config-name "
            "poyocap_pretrain data_root=<processed dir>` (torch_brain 0.1.2's train.py has "
            "no default config)"
        )
    return TrainerArgs(config_name=config_name.removesuffix(".yaml"), overrides=tuple(overrides))


def compose_train_config(trainer_dir: Path, args: TrainerArgs) -> Any:
    """Compose the config ``train.py`` in ``trainer_dir`` would run, with every value resolved.

    Args:
        trainer_dir: The folder of the stock ``train.py`` (holding ``configs/``).
        args: Config name and overrides.

    Returns:
        The ``DictConfig`` without its ``hydra`` node, as ``train.py``'s ``main`` receives it.

    Raises:
        PreflightError: On an unknown config name or group option, an override Hydra cannot
            parse, a missing mandatory value or an interpolation that does not resolve.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    import poyocap_plugin.modalities  # noqa: F401  (what the Hydra plugin does at start-up)

    config_dir = Path(trainer_dir) / "configs"
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(
                config_name=args.config_name,
                overrides=list(args.overrides),
                return_hydra_config=True,
            )
            HydraConfig.instance().set_config(cfg)
            with open_dict(cfg):
                del cfg["hydra"]
            missing = sorted(OmegaConf.missing_keys(cfg))
            if missing:
                raise PreflightError(
                    f"config {args.config_name!r}: {', '.join(missing)} must be set; add "
                    + " ".join(f"{key}=<value>" for key in missing)
                    + " (data_root is the --processed-dir of `brainsets prepare`)"
                )
            OmegaConf.resolve(cfg)
    except HydraException as error:
        raise PreflightError(f"config {args.config_name!r}: {error}") from None
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        raise PreflightError(
            f"config {args.config_name!r}: key {key} does not resolve: {_first_line(error)}"
        ) from None
    return cfg


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cause(error: BaseException) -> BaseException:
    """The user-facing error inside Hydra's InstantiationException wrapper."""
    from hydra.errors import InstantiationException

    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return error


# The errors a constructor or a data check raises on bad input; anything else is a bug in
# the plugin or upstream and keeps its traceback.
_INPUT_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, OSError, ImportError)


def _instantiate(config: Any, key: str, **kwargs: Any) -> Any:
    import hydra
    from hydra.errors import InstantiationException

    try:
        return hydra.utils.instantiate(config, **kwargs)
    except InstantiationException as error:
        cause = _cause(error)
        target = getattr(config, "_target_", None) if hasattr(config, "get") else None
        where = f"{key} ({target})" if target else key
        raise PreflightError(f"{where}: {_message(cause)}") from cause
    except _INPUT_ERRORS as error:
        raise PreflightError(f"{key}: {_message(error)}") from error


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    return str(error) or type(error).__name__


def _check_paths(cfg: Any) -> Path:
    data_root = Path(str(cfg.data_root))
    if not data_root.is_dir():
        raise PreflightError(
            f"data_root={str(cfg.data_root)!r} is not a directory; pass the --processed-dir "
            "of `brainsets prepare allen_brain_observatory_calcium`, e.g. "
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


def _datasets(cfg: Any, data_root: Path) -> dict[str, Any]:
    from torch_brain.data import Dataset

    datasets = {}
    for split in ("train", "valid", "test"):
        try:
            dataset = Dataset(root=str(data_root), config=cfg.dataset, split=split)
            dataset.disable_data_leakage_check()
            intervals = dataset.get_sampling_intervals()
        except (*_INPUT_ERRORS, AssertionError, AttributeError, SyntaxError, NameError) as error:
            raise PreflightError(
                f"dataset (split {split!r}): torch_brain's Dataset fails on it: "
                f"{type(error).__name__}: {_message(error)}"
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


def _check_plugin_transforms(transforms: Iterable[Any], dataset: Any, key: str) -> None:
    from poyocap_plugin.movie import MovieFrameTargets
    from poyocap_plugin.neuron_sampler import NeuronSampler

    for transform in transforms:
        try:
            if isinstance(transform, NeuronSampler):
                transform.check_dataset(dataset)
            elif isinstance(transform, MovieFrameTargets):
                transform.frames  # noqa: B018  (reads and checks the template)
        except _INPUT_ERRORS as error:
            raise PreflightError(
                f"{key} ({type(transform).__name__}): {_message(error)}"
            ) from error


def _sample_windows(intervals: dict[str, Any], length: float) -> list[tuple[str, float, float]]:
    windows = []
    for recording_id in sorted(intervals):
        interval = intervals[recording_id]
        for start, end in zip(interval.start, interval.end, strict=True):
            if end - start >= length:
                windows.append((recording_id, float(start), float(start) + length))
                break
        if len(windows) == _N_SAMPLE_WINDOWS:
            break
    return windows


def _run_first_batch(cfg: Any, model: Any, dataset: Any, intervals: dict, transforms: list) -> dict:
    import torch
    from torch_brain.data import collate
    from torch_brain.transforms import Compose

    windows = _sample_windows(intervals, float(model.sequence_length))
    if not windows:
        raise PreflightError(
            f"dataset: no training interval is as long as model.sequence_length="
            f"{model.sequence_length} s, so train.py's RandomFixedWindowSampler has nothing "
            "to sample; shorten the window or check the sampling_intervals_modifier"
        )
    transform = Compose([*transforms, model.tokenize])
    samples = []
    for recording_id, start, end in windows:
        try:
            samples.append(transform(dataset.get(recording_id, start, end)))
        except _INPUT_ERRORS as error:
            raise PreflightError(
                f"train_transforms + model.tokenize on {recording_id} [{start:.3f}, {end:.3f}] "
                f"s: {type(error).__name__}: {_message(error)}"
            ) from error
    batch = collate(samples)
    losses = {}
    try:
        model.train()
        with torch.no_grad():
            outputs = model(**batch["model_inputs"], unpack_output=False)
            for name, output in outputs.items():
                spec = model.readout.readout_specs[name]
                weights = batch["target_weights"].get(name)
                loss = spec.loss_fn(
                    output, batch["target_values"][name], 1.0 if weights is None else weights
                )
                losses[name] = float(loss)
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as error:
        raise PreflightError(
            f"model ({cfg.model.get('_target_')}) on the first batch: "
            f"{type(error).__name__}: {_message(error)}"
        ) from error
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        raise PreflightError(
            f"the first batch gives non-finite losses {bad}: check the recordings' dF/F for "
            "NaN (units with stats_valid=False) and the neuron selection"
        )
    return losses


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
    data_root = _check_paths(cfg)
    check_dataset_config(cfg.dataset, data_root)
    model = _instantiate(cfg.model, "model", readout_specs=MODALITY_REGISTRY)
    train_transforms = _instantiate(cfg.train_transforms, "train_transforms")
    eval_transforms = _instantiate(cfg.eval_transforms, "eval_transforms")
    datasets = _datasets(cfg, data_root)
    train, train_intervals = datasets["train"]
    report.recordings = sorted(train.recording_dict)
    unit_ids = train.get_unit_ids()
    model.unit_emb.initialize_vocab(unit_ids)
    model.session_emb.initialize_vocab(train.get_session_ids())
    report.n_units = len(unit_ids)
    for recording_id, config in train.get_recording_config_dict().items():
        for readout in config["multitask_readout"]:
            for k, metric in enumerate(readout["metrics"]):
                _instantiate(
                    metric["metric"],
                    f"dataset ({recording_id}) multitask_readout "
                    f"{readout['readout_id']} metrics[{k}].metric",
                )
    _check_plugin_transforms(train_transforms, train, "train_transforms")
    for split in ("valid", "test"):
        _check_plugin_transforms(eval_transforms, datasets[split][0], "eval_transforms")
    report.losses = _run_first_batch(cfg, model, train, train_intervals, train_transforms)
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
