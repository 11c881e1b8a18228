"""A model of torch_brain's stock train.py, rebuilt from one of its checkpoints.

train.py saves Lightning checkpoints whose ``hyper_parameters`` hold the run's whole Hydra
config (``model``, ``data_root``, ``dataset``, ``eval_transforms``, ``seed``, ...) and whose
``state_dict`` holds the wrapped model's weights under the prefix ``model.``. The model is
rebuilt as train.py built it, ``hydra.utils.instantiate(cfg.model,
readout_specs=MODALITY_REGISTRY)``, after the plugin's modalities are registered.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

__all__ = ["TrainCheckpoint", "load_train_checkpoint"]

_MODEL_PREFIX = "model."  # train.py's Lightning module holds the model as ``self.model``


@dataclass(frozen=True)
class TrainCheckpoint:
    """The config and model weights of one train.py checkpoint.

    Attributes:
        path: The checkpoint file.
        config: The run's Hydra config, with ``data_root`` replaced when asked and
            ``model.pretrained_trunk`` (stage 2) set to ``None``: the weights are here.
        state_dict: The model's weights, without train.py's ``model.`` prefix.
    """

    path: Path
    config: DictConfig
    state_dict: dict[str, Any]

    def instantiate_model(self) -> torch.nn.Module:
        """The model the config describes, freshly initialised from torch's global RNG.

        Its unit and session vocabularies are still empty (lazy).
        """
        import hydra
        from torch_brain.registry import MODALITY_REGISTRY

        import poyocap_plugin.modalities  # noqa: F401  (the registry the model was built with)

        return hydra.utils.instantiate(self.config.model, readout_specs=MODALITY_REGISTRY)

    def load_model(self) -> torch.nn.Module:
        """The model with the checkpoint's weights and vocabularies, in eval mode."""
        model = self.instantiate_model()
        # a copy: the vocabularies' load hooks pop their entries from the dict they get
        model.load_state_dict(dict(self.state_dict))
        return model.eval()

    def initial_model(self, *, seed: int, vocabularies_of: torch.nn.Module) -> torch.nn.Module:
        """The architecture drawn afresh after ``torch.manual_seed(seed)``, as train.py
        builds its model just after seeding torch (with the run's seed: the weights the run
        started from), given ``vocabularies_of``'s unit and session vocabularies; in eval
        mode."""
        with torch.random.fork_rng(devices=[]):  # the caller's RNG stays as it was
            torch.manual_seed(seed)
            model = self.instantiate_model()
            for name in ("unit_emb", "session_emb"):
                vocab = getattr(vocabularies_of, name).vocab
                # by index, without the padding word "NA" (index 0), which initialize_vocab adds
                getattr(model, name).initialize_vocab(sorted(vocab, key=vocab.get)[1:])
        return model.eval()

    def eval_transforms(self) -> list[Any]:
        """The run's ``eval_transforms``, instantiated (the model's ``tokenize`` not included)."""
        import hydra

        return list(hydra.utils.instantiate(self.config.eval_transforms))


def _size_frame_loss(model: DictConfig) -> None:
    """Give a stage-2 run's ``frame_loss`` its decoder's frame size if it lacks one.

    Runs from before the frame size was passed explicitly configured the loss without
    ``height``/``width``; they are the decoder's by construction.
    """
    loss, decoder = model.get("frame_loss"), model.get("frame_decoder")
    if loss is None or decoder is None:
        return
    for key in ("height", "width"):
        if key not in loss:
            loss[key] = decoder[key]


def load_train_checkpoint(checkpoint: Path, *, data_root: Path | None = None) -> TrainCheckpoint:
    """Read a checkpoint written by torch_brain's train.py.

    Args:
        checkpoint: The ``.ckpt`` file.
        data_root: The processed-data root to use instead of the run's ``data_root``.

    Returns:
        The run's config and model weights. A stage-2 config written before the frame
        size was explicit gets its ``frame_loss`` sized as its ``frame_decoder``.

    Raises:
        FileNotFoundError: If ``checkpoint`` does not exist.
        ValueError: If it is not a torch file, or not a checkpoint of train.py (no
            ``hyper_parameters.model`` or no ``state_dict``).
    """
    checkpoint = Path(checkpoint)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        raise ValueError(f"{checkpoint} is not a torch checkpoint: {error}") from error
    if (
        not isinstance(state, dict)
        or not isinstance(state.get("hyper_parameters"), dict)
        or "model" not in state["hyper_parameters"]
        or "state_dict" not in state
    ):
        raise ValueError(
            f"{checkpoint} is not a checkpoint of torch_brain's train.py: it needs "
            "'hyper_parameters' holding the run's config (with a 'model' key) and a 'state_dict'"
        )
    config = OmegaConf.create(state["hyper_parameters"])
    if data_root is not None:
        config.data_root = str(data_root)
    if "pretrained_trunk" in config.model:
        config.model.pretrained_trunk = None
    _size_frame_loss(config.model)
    weights = {
        key.removeprefix(_MODEL_PREFIX): value
        for key, value in state["state_dict"].items()
        if key.startswith(_MODEL_PREFIX)
    }
    return TrainCheckpoint(path=checkpoint, config=config, state_dict=weights)
