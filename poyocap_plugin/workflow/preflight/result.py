"""What a preflight gives back: a report on a valid configuration, an error on the first fault."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PreflightError", "PreflightReport"]


class PreflightError(ValueError):
    """A training configuration that would fail before (or at) the first training step."""


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
