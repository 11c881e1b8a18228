"""``train.py``'s command line, and the config Hydra composes from it.

``poyocap train`` hands its arguments to the unchanged stock trainer. The preflight splits
them into the ``--config-name`` and the Hydra overrides (:func:`parse_trainer_args`) and
composes the config exactly as train.py will (:func:`compose_train_config`): the trainer's
``configs/`` as the primary directory, the plugin's ``pkg://poyocap_plugin.configs``
appended by the Hydra search-path plugin, the same overrides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poyocap_plugin.workflow.preflight.result import PreflightError

__all__ = ["TrainerArgs", "compose_train_config", "parse_trainer_args"]

logger = logging.getLogger(__name__)

# Hydra's own command-line flags of a @hydra.main script that only choose the config.
_CONFIG_NAME_FLAGS = ("--config-name", "-cn")


@dataclass(frozen=True)
class TrainerArgs:
    """``train.py``'s command line, split into Hydra's config name and its overrides.

    Attributes:
        config_name: The ``--config-name`` (e.g. ``"poyocap_pretrain"``).
        overrides: The Hydra overrides, in order (e.g. ``["data_root=/data", "epochs=5"]``).
    """

    config_name: str
    overrides: tuple[str, ...]


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

    import poyocap_plugin.modalities  # noqa: F401  (what the configs' Hydra callback does)

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
