"""How the linear probe turns a window's processed latents into one feature vector."""

from __future__ import annotations

from typing import Literal, get_args

import torch

__all__ = ["POOLINGS", "POOLING_DESCRIPTIONS", "Pooling", "check_pooling", "pool_latents"]

#: How a window's processed latents (:meth:`CAPOYO.encode`, :math:`(N_{latent}, D)`) become
#: the trial's trunk feature:
#:
#: - ``"mean"``: the average over all latents of the window, shape :math:`(D,)`;
#: - ``"latents"``: every latent's features in order (latent time, then latent index within
#:   a step, as ``CAPOYO.tokenize`` lays them out), concatenated, shape
#:   :math:`(N_{latent} \cdot D,)`. It keeps when in the window each feature arose, which the
#:   mean averages away.
Pooling = Literal["mean", "latents"]
#: The values of :data:`Pooling`, in their declared order.
POOLINGS: tuple[str, ...] = get_args(Pooling)
#: Each pooling in words, for ``probe.json``.
POOLING_DESCRIPTIONS: dict[str, str] = {
    "mean": "mean over the processed latents (CAPOYO.encode)",
    "latents": "every processed latent (CAPOYO.encode) in order, concatenated",
}


def check_pooling(pooling: str) -> None:
    """Check that ``pooling`` is one of :data:`POOLINGS`.

    Raises:
        ValueError: If it is not, listing the allowed values.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling={pooling!r} is not one of {', '.join(map(repr, POOLINGS))}")


def pool_latents(latents: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    r"""One feature vector per window from its processed latents.

    Args:
        latents: Processed latents of shape :math:`(B, N_{latent}, D)`.
        pooling: See :data:`Pooling`.

    Returns:
        Features of shape :math:`(B, D)` (``"mean"``) or :math:`(B, N_{latent} \cdot D)`
        (``"latents"``).

    Raises:
        ValueError: If ``pooling`` is unknown or ``latents`` is not 3-D.
    """
    check_pooling(pooling)
    if latents.ndim != 3:
        raise ValueError(f"latents must be (B, N_latent, D), got shape {tuple(latents.shape)}")
    if pooling == "mean":
        return latents.mean(dim=1)
    return latents.flatten(start_dim=1)
