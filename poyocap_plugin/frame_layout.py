r"""How movie frames are laid out where a readout hands them to torch_brain.

torch_brain 0.1.2's stitcher (``torch_brain.utils.stitcher.stitch``) mean-pools float values
that share a timestamp, but it only broadcasts correctly for values of shape :math:`(N, D)`:
for :math:`(N, H, W)` images it raises when the number of unique timestamps differs from
:math:`H`, and divides by the wrong counts when it equals :math:`H`. So the natural-movie
readout carries its images flattened to :math:`(N, H \cdot W)` (the model's output and the
target the movie transform attaches alike), and the image losses and metrics unflatten them
here, from the frame's aspect ratio, which needs no frame size in their configuration.
"""

from __future__ import annotations

import math

import torch

__all__ = ["NM1_ASPECT_RATIO", "check_aspect_ratio", "unflatten_frames"]

NM1_ASPECT_RATIO = 2.0
"""Width / height of natural movie one (608 / 304 pixels), kept by every stored size."""


def check_aspect_ratio(aspect_ratio: float) -> None:
    """Raise ValueError unless ``aspect_ratio`` (width / height) is a positive number."""
    if not (isinstance(aspect_ratio, (int, float)) and aspect_ratio > 0):
        raise ValueError(
            f"frame_aspect_ratio (width / height) must be a positive number; got "
            f"{aspect_ratio!r}. Natural movie one frames have {NM1_ASPECT_RATIO}."
        )


def unflatten_frames(frames: torch.Tensor, *, aspect_ratio: float, name: str) -> torch.Tensor:
    r"""Return frames as images, unflattening rows of :math:`H \cdot W` pixels if needed.

    Args:
        frames: images of shape :math:`(N, H, W)`, returned as they are, or flattened rows
            of shape :math:`(N, H \cdot W)` with :math:`W = \text{aspect\_ratio} \cdot H`.
        aspect_ratio: frame width / height.
        name: what ``frames`` is (e.g. ``"input"``), named in errors.

    Returns:
        Images of shape :math:`(N, H, W)` (a view of ``frames``).

    Raises:
        ValueError: if ``frames`` is neither 2-D nor 3-D, or a row's length is not
            :math:`H \cdot W` for an integer :math:`H` at this aspect ratio.

    Example::

        >>> unflatten_frames(torch.zeros(3, 512), aspect_ratio=2.0, name="input").shape
        torch.Size([3, 16, 32])
    """
    if frames.ndim == 3:
        return frames
    if frames.ndim != 2:
        raise ValueError(
            f"{name} must be images of shape (N, H, W) or flattened frames (N, H*W); got "
            f"shape {tuple(frames.shape)}"
        )
    num_pixels = frames.shape[1]
    height = max(1, round(math.sqrt(num_pixels / aspect_ratio)))
    width = round(height * aspect_ratio)
    if height * width != num_pixels:
        raise ValueError(
            f"{name} has flattened frames of {num_pixels} pixels, which is not H*W for frames "
            f"with width / height = {aspect_ratio}; pass (N, H, W) images or set "
            "frame_aspect_ratio to the frames' width / height"
        )
    return frames.reshape(frames.shape[0], height, width)
