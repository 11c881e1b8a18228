"""The model's readout: torch_brain's linear heads, plus the specs of readouts without one."""

from __future__ import annotations

from typing import Any

from torch import nn
from torch_brain.nn import MultitaskReadout
from torch_brain.registry import DataType, ModalitySpec

__all__ = ["ReadoutHeads", "copy_spec"]


def copy_spec(spec: Any, loss_fn: nn.Module) -> ModalitySpec:
    """A copy of a modality spec with another loss.

    Args:
        spec: a ``ModalitySpec``, or an OmegaConf node with its fields (train.py hands the
            model a snapshot of the registry).
        loss_fn: the loss the copy carries.

    Returns:
        A new ``ModalitySpec`` with ``spec``'s id, dim, type and keys, and ``loss_fn``.
    """
    return ModalitySpec(
        id=int(spec.id),
        dim=int(spec.dim),
        type=DataType(spec.type),
        timestamp_key=str(spec.timestamp_key),
        value_key=str(spec.value_key),
        loss_fn=loss_fn,
    )


class ReadoutHeads(MultitaskReadout):
    """torch_brain's linear multitask readout, plus the specs of readouts without a head.

    train.py looks every output's loss up in ``model.readout.readout_specs``, so the specs
    of readouts that the model produces otherwise (the self-supervised readout, from the
    trunk; the movie frames, from the frame decoder) live here too.

    Args:
        dim: width of the output queries.
        head_specs: the readouts that get a linear head, by name.
        headless_specs: the readouts without a head, by name.
    """

    def __init__(
        self,
        *,
        dim: int,
        head_specs: dict[str, ModalitySpec],
        headless_specs: dict[str, ModalitySpec],
    ):
        super().__init__(dim=dim, readout_specs=head_specs)
        self.readout_specs = {**head_specs, **headless_specs}
