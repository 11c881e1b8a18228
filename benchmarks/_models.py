"""The models the benchmarks compare, built as the shipped configs build them.

Stock: torch_brain 0.1.2's ``CalciumPOYOPlus`` with the whole modality registry, as
train.py builds it. Plugin: ``CAPOYO`` with the stage's readouts (stage 1: latent masking
plus 0.01 x DG; stage 2: the skip-connection UNet frame decoder and ``CAPFrameLoss``).
Both take the keyword arguments of the shipped ``model/capoyo_<size>.yaml``.
"""

from __future__ import annotations

import logging
import tempfile
from importlib import resources
from pathlib import Path

import torch
import torch_brain
from omegaconf import OmegaConf
from torch import nn
from torch_brain.models import CalciumPOYOPlus

import poyocap_plugin.modalities  # noqa: F401  (registers the plugin's readouts)
from poyocap_plugin.losses import CAPFrameLoss
from poyocap_plugin.models import CAPOYO
from poyocap_plugin.nn import LatentMasking, SkipUNetFrameDecoder

SIZES = ("48k", "1.2M", "32M", "114M", "319M")  # the shipped model/capoyo_<size>.yaml
STAGE1_LATENT_STEP_S = 0.2375  # poyocap_pretrain.yaml: 8 latent bins per 1.9 s window
SPARSE_WORDS = ("unit_emb", "session_emb", "readout")  # train.py's sparse SparseLamb group


def size_config(size: str) -> dict:
    """The keyword arguments of the shipped ``model/capoyo_<size>.yaml``."""
    path = resources.files("poyocap_plugin") / "configs" / "model" / f"capoyo_{size}.yaml"
    config = OmegaConf.to_container(OmegaConf.load(str(path)))
    config.pop("_target_")
    return config


def _perceptual_weights(directory: Path) -> Path:
    """A randomly initialised AlexNet stem state_dict: the perceptual term's cost, not its use."""
    from poyocap_plugin.losses.perceptual import _AlexNetStem

    path = directory / "alexnet_stem_random.pt"
    torch.save(_AlexNetStem().state_dict(), path)
    return path


def build_stock(stage: str, size: str, window_s: float) -> nn.Module:
    """torch_brain's ``CalciumPOYOPlus`` for one stage's windows, as train.py builds it."""
    latent_step = STAGE1_LATENT_STEP_S if stage == "stage1" else window_s
    return CalciumPOYOPlus(
        sequence_length=window_s,
        latent_step=latent_step,
        readout_specs=torch_brain.MODALITY_REGISTRY,
        **size_config(size),
    )


def build_capoyo(stage: str, size: str, window_s: float, frame_size: tuple[int, int]) -> CAPOYO:
    """``CAPOYO`` as ``poyocap_pretrain`` (stage 1) or ``poyocap_finetune_movie`` (stage 2)."""
    config = size_config(size)
    if stage == "stage1":
        return CAPOYO(
            sequence_length=window_s,
            latent_step=STAGE1_LATENT_STEP_S,
            readout_specs=torch_brain.MODALITY_REGISTRY,
            readouts={"drifting_gratings_orientation": 0.01},
            masking=LatentMasking(dim=config["dim"]),
            **config,
        )
    height, width = frame_size
    logging.getLogger("poyocap_plugin.losses").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as scratch:
        frame_loss = CAPFrameLoss(
            height=height, width=width, perceptual_weights_path=_perceptual_weights(Path(scratch))
        )
    return CAPOYO(
        sequence_length=window_s,
        latent_step=window_s,
        readout_specs=torch_brain.MODALITY_REGISTRY,
        readouts={"natural_movie_one_image": 1.0},
        frame_decoder=SkipUNetFrameDecoder(
            dim=config["dim"], height=height, width=width, num_stages=_stages(height, width)
        ),
        frame_loss=frame_loss,
        **config,
    )


def _stages(height: int, width: int) -> int:
    """The shipped 7 stages (128 x 256), or fewer for a smaller frame."""
    stages = 7
    while height % 2**stages or width % 2**stages:
        stages -= 1
    return stages


def sparse_and_dense(model: nn.Module) -> list[dict]:
    """train.py's two SparseLamb parameter groups."""
    sparse = [
        *model.unit_emb.parameters(),
        *model.session_emb.parameters(),
        *model.readout.parameters(),
    ]
    dense = [p for n, p in model.named_parameters() if not any(word in n for word in SPARSE_WORDS)]
    return [{"params": sparse, "sparse": True}, {"params": dense}]


def attention_backend(model: nn.Module, device: str) -> str:
    """The attention kernel torch_brain's rotary attention picks for this model and device."""
    from torch_brain.nn import rotary_attention

    uses_xformers = any(getattr(m, "use_xformers", False) for m in model.modules())
    if uses_xformers and rotary_attention.xops is not None and device.startswith("cuda"):
        return "xformers"
    return "sdpa"
