"""How the curriculum's training runs are sized: presets, epochs, batch, overrides."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, get_args

from poyocap_plugin.frame_layout import PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX

__all__ = ["COMPUTED", "RELEASED_UNIT_DROPOUT", "CurriculumSettings", "Preset"]

Preset = Literal["cpu", "study", "paper"]

#: the released code's UnitDropout density (torch_brain's TriangleDistribution arguments)
RELEASED_UNIT_DROPOUT = {"peak": 50, "M": 50}

#: train.py keys the settings compute, and the settings that set them
COMPUTED = {
    "batch_size": "batch_size (per GPU)",
    "optim.base_lr": "base_lr (peak LR per window of a GPU's batch)",
    "gpus": "gpus",
    "nodes": "nodes",
}


@dataclass(frozen=True)
class CurriculumSettings:
    """How the training runs are sized; each field becomes one Hydra override.

    Args:
        model: The model-size config (``model=<name>``), e.g. ``capoyo_48k`` (CPU) or
            ``capoyo_114M`` (the paper's width and depth).
        pretrain_epochs: Epochs of stage 1.
        finetune_epochs: Epochs of the stage-2 movie runs.
        dg_epochs: Epochs of the stage-2 DG runs (cheap: one window per DG trial).
        batch_size: Windows per GPU (or CPU process) per step of the stage-2 runs; the
            runs get train.py's global ``batch_size`` = this x ``gpus`` x ``nodes``.
        pretrain_batch_size: The same for stage 1; None uses ``batch_size``.
        released_unit_dropout: Every run's ``UnitDropout`` keeps as many units as the
            released code's (its density's peak and M, :data:`RELEASED_UNIT_DROPOUT`: a
            median ~63 kept), not torch_brain's default (~123).
        pretrain_every_trial: Stage 1 trains on every drifting-grating trial of the
            pretraining sessions but the validation split's, as the paper counts them;
            off, on the training split's (70 %), as the stock trainer samples
            (:func:`~poyocap_plugin.workflow.datasets.dataset_config`).
        eval_batch_size: Batch size of validation and testing (train.py's
            ``eval_batch_size``); None uses the global ``batch_size``.
        base_lr: Peak learning rate per window of one GPU's batch: a stage's peak LR is
            ``base_lr`` x its per-GPU batch whatever the number of GPUs, the released
            code's rule. train.py's own LR is ``optim.base_lr`` x the global batch, so the
            runs get ``optim.base_lr`` = base_lr / (``gpus`` x ``nodes``).
        gpus: GPUs per node of every run (train.py's ``gpus``).
        nodes: Nodes of every run (train.py's ``nodes``).
        frame_size: Decoded movie frame (height, width) in pixels, with the UNet's number of
            x2 upsampling stages; None keeps the config's 128 x 256.
        num_workers: DataLoader workers per process.
        eval_epochs: Stage-2 runs validate (and keep their best checkpoint) every this
            many epochs (train.py's ``eval_epochs``); None validates once, after the last
            epoch, which halves a CPU movie run's time (its validation windows outnumber its
            training windows two to one). Stage 1 validates every epoch (its curves).
        parallel_runs: How many training runs (``poyocap train`` processes) go at once;
            above 1 (refused with a launcher or more than one GPU or node, where every rank
            would schedule its own), each run gets ``OMP_NUM_THREADS`` = cores /
            ``parallel_runs`` unless the environment sets it. 2 on a 2-core CPU: one run's
            data loading overlaps the other's compute.
        perceptual: Train the movie runs with the CAP loss's perceptual term (the paper's
            fifth term); it needs ``perceptual_weights``. Off: four terms, and the loss
            warns once per run.
        perceptual_weights: A local AlexNet state_dict file for the perceptual term
            (``model.frame_loss.perceptual_weights_path``; never downloaded), e.g.
            torchvision's ``alexnet-owt-7be5be79.pth``.
        dg: Also run the DG-classification finetune (Table 3's DG-accuracy column).
        overrides: More Hydra overrides for every run, e.g. ``("wandb.enable=true",
            "precision=bf16-mixed")``; not the keys the settings compute (:data:`COMPUTED`).
        launcher: A command prefix for every training run, e.g. ``("srun",)`` inside a
            SLURM allocation: the curriculum itself runs once, each stage runs as one task
            per GPU and Lightning sets up DDP from SLURM's environment.
    """

    model: str = "capoyo_48k"
    pretrain_epochs: int = 6
    finetune_epochs: int = 6
    dg_epochs: int = 12
    batch_size: int = 16
    pretrain_batch_size: int | None = None
    pretrain_every_trial: bool = False
    released_unit_dropout: bool = False
    eval_batch_size: int | None = 64
    base_lr: float = 2e-4
    gpus: int = 1
    nodes: int = 1
    frame_size: tuple[int, int, int] | None = (16, 32, 4)
    num_workers: int = 0
    eval_epochs: int | None = None
    parallel_runs: int = 2
    perceptual: bool = False
    perceptual_weights: str | None = None
    dg: bool = True
    overrides: tuple[str, ...] = ()
    launcher: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "pretrain_epochs",
            "finetune_epochs",
            "dg_epochs",
            "batch_size",
            "gpus",
            "nodes",
        ) + (("pretrain_batch_size",) if self.pretrain_batch_size is not None else ()):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"CurriculumSettings.{name} must be an int >= 1, got {value!r}")
        if not self.base_lr > 0:
            raise ValueError(f"CurriculumSettings.base_lr must be > 0, got {self.base_lr!r}")
        stage2_epochs = {"movie": self.finetune_epochs} | (
            {"DG": self.dg_epochs} if self.dg else {}
        )
        if self.eval_epochs is not None and (
            self.eval_epochs < 1 or any(e % self.eval_epochs for e in stage2_epochs.values())
        ):
            # Lightning validates (and checkpoints) only at multiples of eval_epochs: the
            # epochs after the last multiple would be trained and thrown away
            raise ValueError(
                f"CurriculumSettings.eval_epochs must be None or divide the stage-2 epochs "
                f"({stage2_epochs}), got {self.eval_epochs!r}"
            )
        if self.parallel_runs > 1 and (self.launcher or self.gpus * self.nodes > 1):
            raise ValueError(
                f"CurriculumSettings.parallel_runs={self.parallel_runs} with a launcher or "
                "several GPUs or nodes: every rank would schedule its own runs; use 1"
            )
        if self.parallel_runs < 1:
            raise ValueError(
                f"CurriculumSettings.parallel_runs must be >= 1, got {self.parallel_runs}"
            )
        if self.perceptual and self.perceptual_weights is None:
            raise ValueError(
                "CurriculumSettings.perceptual is on (the paper preset trains with the CAP "
                "loss's perceptual term) but perceptual_weights is not set: give "
                "--perceptual-weights PATH (a local AlexNet state_dict, e.g. torchvision's "
                "alexnet-owt-7be5be79.pth), or --no-perceptual to train on the other four terms"
            )
        if self.perceptual_weights is not None and not self.perceptual:
            raise ValueError(
                f"CurriculumSettings.perceptual_weights={self.perceptual_weights!r} with "
                "perceptual off: the weights would not be used; turn it on (--perceptual)"
            )
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
            key = override.split("=", 1)[0].lstrip("+~")
            if key in COMPUTED:
                raise ValueError(
                    f"override {override!r} sets a key the curriculum computes from its "
                    f"settings; give {COMPUTED[key]} instead"
                )

    def stage_batch(self, stage: str) -> tuple[int, float]:
        """A stage's train.py ``batch_size`` (global) and ``optim.base_lr``.

        Args:
            stage: ``"pretrain"`` or a stage-2 stage.
        """
        per_gpu = self.batch_size
        if stage == "pretrain" and self.pretrain_batch_size is not None:
            per_gpu = self.pretrain_batch_size
        devices = self.gpus * self.nodes
        return per_gpu * devices, self.base_lr / devices

    @property
    def frame_height_width(self) -> tuple[int, int]:
        """The decoded frame's (height, width) in pixels: ``frame_size``'s, or the config's."""
        if self.frame_size is None:
            return PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX
        return self.frame_size[0], self.frame_size[1]

    def run_environment(self) -> dict[str, str] | None:
        """The environment of every training run: None (inherit) unless runs share the cores."""
        if self.parallel_runs == 1 or "OMP_NUM_THREADS" in os.environ:
            return None
        threads = max(1, (os.cpu_count() or 1) // self.parallel_runs)
        return dict(os.environ, OMP_NUM_THREADS=str(threads))

    @classmethod
    def preset(cls, name: Preset, **changes: Any) -> CurriculumSettings:
        """``cpu``: the demo size (minutes on 2 cores); ``study``: for the larger simulated set
        of ``table3 --simulate --preset study``
        (:data:`~poyocap_plugin.workflow.simulated_brainset.SIMULATIONS`), the demo's runs
        with fewer stage-2 epochs, so that 5 arms x 3 seeds fit 90 min on 2 cores;
        ``paper``: the paper's settings.

        Args:
            name: A :data:`Preset`.
            **changes: Fields to change from the preset.

        Raises:
            ValueError: For an unknown preset name, or changes that make invalid settings
                (``paper`` needs ``perceptual_weights`` or ``perceptual=False``).
        """
        if name == "cpu":
            fields: dict[str, Any] = {}
        elif name == "study":
            # 42 runs: the movie runs were 54 % of the 6 + 6 + 12-epoch study's time
            fields = dict(finetune_epochs=4, dg_epochs=8)
        elif name == "paper":
            fields = dict(
                model="capoyo_114M",
                pretrain_epochs=50,
                finetune_epochs=25,
                dg_epochs=25,
                # the released runs: 8 (stage 1) and 32 (stage 2) windows per GPU, peak LR
                # 1.5625e-5 per window of a GPU's batch (1.25e-4 and 5e-4)
                batch_size=32,
                pretrain_batch_size=8,
                pretrain_every_trial=True,
                released_unit_dropout=True,
                base_lr=1.5625e-5,
                eval_batch_size=None,
                frame_size=None,
                num_workers=4,
                eval_epochs=1,
                parallel_runs=1,
                perceptual=True,
            )
        else:
            raise ValueError(f"preset must be one of {get_args(Preset)}, got {name!r}")
        # built once with the changes: the paper preset alone is incomplete (its weights)
        return cls(**(fields | changes))
