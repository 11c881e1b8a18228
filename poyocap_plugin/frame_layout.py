r"""How movie frames are laid out where a readout hands them to torch_brain.

torch_brain 0.1.2's stitcher (``torch_brain.utils.stitcher.stitch``) mean-pools float values
that share a timestamp, but it only broadcasts correctly for values of shape :math:`(N, D)`:
for :math:`(N, H, W)` images it raises when the number of unique timestamps differs from
:math:`H`, and divides by the wrong counts when it equals :math:`H`. So the natural-movie
readout carries its images flattened to :math:`(N, H \cdot W)` (the model's output and the
target the movie transform attaches alike), and the image losses and metrics unflatten them
here. They are given the frame's height and width explicitly (from the frame decoder's
config, ``model.frame_decoder.height`` / ``width``); nothing is guessed from a pixel count.
"""

from __future__ import annotations

import torch

__all__ = [
    "PAPER_FRAME_HEIGHT_PX",
    "PAPER_FRAME_WIDTH_PX",
    "check_frame_size",
    "unflatten_frames",
]

PAPER_FRAME_HEIGHT_PX = 128
"""Height (pixels) of the decoded natural-movie-one frames in the paper (304 stored)."""
PAPER_FRAME_WIDTH_PX = 256
"""Width (pixels) of the decoded natural-movie-one frames in the paper (608 stored)."""


def check_frame_size(*, height: int, width: int, owner: str) -> None:
    """Raise ValueError unless ``height`` and ``width`` are positive integers (pixels).

    Args:
        height: frame height (pixels).
        width: frame width (pixels).
        owner: what takes the size (e.g. ``"MovieSSIM"``), named in the error.
    """
    for key, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(
                f"{owner}: {key} must be a positive integer (pixels); got {value!r}. Give "
                f"the frame decoder's size (model.frame_decoder.{key})."
            )


def unflatten_frames(frames: torch.Tensor, *, height: int, width: int, name: str) -> torch.Tensor:
    r"""Return frames as images of the given size, unflattening rows of :math:`H \cdot W`.

    Args:
        frames: images of shape :math:`(N, H, W)`, returned as they are, or flattened rows
            of shape :math:`(N, H \cdot W)`, with :math:`H` = ``height`` and
            :math:`W` = ``width``.
        height: frame height :math:`H` (pixels).
        width: frame width :math:`W` (pixels).
        name: what ``frames`` is (e.g. ``"MovieSSIM preds"``), named in errors.

    Returns:
        Images of shape :math:`(N, H, W)` (a view of ``frames``).

    Raises:
        ValueError: if ``frames`` is neither :math:`(N, H, W)` nor :math:`(N, H \cdot W)`
            for this height and width.

    Example::

        >>> unflatten_frames(torch.zeros(3, 512), height=16, width=32, name="input").shape
        torch.Size([3, 16, 32])
    """
    if frames.ndim == 2 and frames.shape[1] == height * width:
        return frames.reshape(frames.shape[0], height, width)
    if frames.ndim == 3 and tuple(frames.shape[1:]) == (height, width):
        return frames
    raise ValueError(
        f"{name}: expected {height}x{width} frames, of shape (N, {height}, {width}) or "
        f"flattened (N, {height * width}); got shape {tuple(frames.shape)}. The height and "
        "width must be the frame decoder's (model.frame_decoder.height / width)."
    )
