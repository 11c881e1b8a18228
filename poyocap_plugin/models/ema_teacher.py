"""The EMA (momentum) teacher of stage 1: which modules it copies, and its update rule.

``CAPOYO.forward`` updates the teacher at the start of every training step, so the update
runs once per optimiser step (train.py accumulates no gradients) with the weights that step
left; every DDP rank applies the same update to the same weights. The step count is a
buffer of the model (``teacher_steps``), so a resumed run continues the decay schedule
(``LatentMasking.decay_at``) where it stopped.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["TEACHER_MODULES", "build_teacher", "step_teacher", "update_teacher"]

TEACHER_MODULES = ("enc_atn", "enc_ffn", "proc_layers")
"""The modules of the model of which an EMA teacher (``masking.target="ema"``) keeps a copy."""


def build_teacher(model: nn.Module) -> nn.ModuleDict:
    """Frozen copies of ``model``'s :data:`TEACHER_MODULES`, keyed by module name.

    The teacher shares the token embeddings with the model (train.py builds the unit
    vocabulary after the model), so only the encoder and processor are copied.
    """
    teacher = nn.ModuleDict({name: copy.deepcopy(getattr(model, name)) for name in TEACHER_MODULES})
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def update_teacher(teacher: nn.ModuleDict, online: nn.Module, *, decay: float) -> None:
    r"""Move every teacher weight towards the online one: :math:`t \leftarrow d\,t + (1-d)\,o`.

    Args:
        teacher: the copies made by :func:`build_teacher`.
        online: the model whose modules of the same names the teacher follows.
        decay: :math:`d`, in [0, 1].
    """
    for name, module in teacher.items():
        for target, source in zip(
            module.parameters(), getattr(online, name).parameters(), strict=True
        ):
            target.lerp_(source, 1.0 - decay)


@torch.no_grad()
def step_teacher(model: nn.Module) -> None:
    """One EMA step of ``model.teacher`` at the decay of its step count, then count it."""
    decay = model.masking.decay_at(int(model.teacher_steps))
    update_teacher(model.teacher, model, decay=decay)
    model.teacher_steps += 1
