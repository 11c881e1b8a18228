"""How the curriculum's training runs are sized: presets, epochs, batch, overrides."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from poyocap_plugin.frame_layout import PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX

__all__ = ["CurriculumSettings", "Preset"]

Preset = Literal["cpu", "paper"]


@dataclass(frozen=True)
class CurriculumSettings:
    """How the training runs are sized; each field becomes one Hydra override.

    Args:
        model: The model-size config (``model=<name>``), e.g. ``capoyo_48k`` (CPU) or
            ``capoyo_114M`` (the paper's width and depth).
        pretrain_epochs: Epochs of stage 1.
        finetune_epochs: Epochs of the stage-2 movie runs.
        dg_epochs: Epochs of the stage-2 DG runs (cheap: one window per DG trial).
        batch_size: Global batch size (windows), split across GPUs by train.py.
        eval_batch_size: Batch size of validation and testing (train.py's
            ``eval_batch_size``); None uses ``batch_size``.
        base_lr: ``optim.base_lr`` (train.py's peak LR is base_lr x batch_size); None keeps
            each stage config's paper value.
        frame_size: Decoded movie frame (height, width) in pixels, with the UNet's number of
            x2 upsampling stages; None keeps the config's 128 x 256.
        num_workers: DataLoader workers per process.
        dg: Also run the DG-classification finetune (Table 3's DG-accuracy column).
        overrides: More Hydra overrides for every run, e.g. ``("gpus=4", "nodes=2")`` or
            ``("wandb.enable=true",)``.
        launcher: A command prefix for every training run, e.g. ``("srun",)`` inside a
            SLURM allocation: the curriculum itself runs once, each stage runs as one task
            per GPU and Lightning sets up DDP from SLURM's environment.
    """

    model: str = "capoyo_48k"
    pretrain_epochs: int = 6
    finetune_epochs: int = 3
    dg_epochs: int = 16
    batch_size: int = 16
    eval_batch_size: int | None = 64
    base_lr: float | None = 2e-4
    frame_size: tuple[int, int, int] | None = (16, 32, 4)
    num_workers: int = 0
    dg: bool = True
    overrides: tuple[str, ...] = ()
    launcher: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("pretrain_epochs", "finetune_epochs", "dg_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"CurriculumSettings.{name} must be an int >= 1, got {value!r}")
        if self.num_workers < 0:
            raise ValueError(f"CurriculumSettings.num_workers must be >= 0, got {self.num_workers}")
        if self.frame_size is not None and len(self.frame_size) != 3:
            raise ValueError(
                "CurriculumSettings.frame_size must be (height, width, num_stages) or None, "
                f"got {self.frame_size!r}"
            )
        for override in self.overrides:
            if "=" not in override:
                raise ValueError(f"override {override!r} is not a Hydra KEY=VALUE override")

    @property
    def frame_height_width(self) -> tuple[int, int]:
        """The decoded frame's (height, width) in pixels: ``frame_size``'s, or the config's."""
        if self.frame_size is None:
            return PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX
        return self.frame_size[0], self.frame_size[1]

    @classmethod
    def preset(cls, name: Preset, **changes: Any) -> CurriculumSettings:
        """``cpu``: the demo size (minutes on 2 cores); ``paper``: the paper's settings.

        Args:
            name: ``"cpu"`` or ``"paper"``.
            **changes: Fields to change from the preset.

        Raises:
            ValueError: For an unknown preset name.
        """
        if name == "cpu":
            base = cls()
        elif name == "paper":
            base = cls(
                model="capoyo_114M",
                pretrain_epochs=50,
                finetune_epochs=25,
                dg_epochs=25,
                batch_size=32,
                eval_batch_size=None,
                base_lr=None,
                frame_size=None,
                num_workers=4,
            )
        else:
            raise ValueError(f"preset must be 'cpu' or 'paper', got {name!r}")
        return replace(base, **changes)
