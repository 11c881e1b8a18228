r"""Natural-movie-one targets: the template frame shown at each NM1 presentation in a window.

The brainset's pipeline stores the NM1 template once, at
``<data_root>/allen_brain_observatory_calcium/templates/natural_movie_one.h5`` (dataset
``frames``, :math:`(900, H_s, W_s)` uint8, LANCZOS-downsampled from 304 x 608), and each
session's ``natural_movie_one`` Interval carries the template index of every presentation
(``frame``). :class:`MovieFrameTargets` looks those indices up and attaches the images to
the window, where torch_brain's ``prepare_for_multitask_readout`` finds them through the
``natural_movie_one_image`` modality's ``value_key``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from temporaldata import Data

from poyocap_plugin._moved import moved_names
from poyocap_plugin.frame_layout import PAPER_FRAME_HEIGHT_PX, PAPER_FRAME_WIDTH_PX

__all__ = ["MovieFrameTargets", "TEMPLATE_DATASET"]

__getattr__ = moved_names(
    __name__, {"TEMPLATE_RELATIVE_PATH": "poyocap_plugin.brainset.TEMPLATE_RELATIVE_PATH"}
)  # issue 13

logger = logging.getLogger(__name__)

TEMPLATE_DATASET = "frames"
"""HDF5 dataset of the template file: (frames, height, width) uint8 grey levels."""

_INTERVAL_KEY = "natural_movie_one"  # the stimulus Interval of each session
_FRAME_ATTR = "frame"  # its template index per presentation (int)
_IMAGE_ATTR = "image"  # what this transform attaches


def _resize_frames(frames: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Resize (F, H, W) uint8 frames with Pillow's LANCZOS filter to (F, height, width)."""
    from PIL import Image

    out = np.empty((len(frames), height, width), dtype=np.uint8)
    for i, frame in enumerate(frames):
        image = Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS)
        out[i] = np.asarray(image)
    return out


class MovieFrameTargets:
    r"""Attach the target image of every natural-movie-one presentation in a window.

    For a window ``data`` (a slice of one session), keeps the presentations whose midpoint
    (``timestamps``) lies inside the window (slicing keeps every one that overlaps it),
    reads their template indices ``data.natural_movie_one.frame`` of shape :math:`(N,)`
    and sets
    ``data.natural_movie_one.image`` to the matching template frames, flattened to shape
    :math:`(N, H \cdot W)`, float32 grey levels in [0, 255]. The readout's target is
    flattened because torch_brain 0.1.2's stitcher pools only 1-D and 2-D values (see
    :mod:`poyocap_plugin.frame_layout`), and float because it pools only float (and
    long) values. **Changes** ``data`` **in place** and returns it.

    The template is read on first use, once per process (each DataLoader worker reads its
    own copy and never receives one by pickling), and resized once with Pillow's LANCZOS
    filter when ``(height, width)`` differs from the stored size. It is only ever made
    smaller: a size above the stored one is an error (store a larger template instead,
    with the pipeline's ``--template-size``).

    .. note::
        As the paper, targets are the template resized with LANCZOS, grey levels not
        normalised. When the stored size is not the model's, frames are resampled twice
        (304 x 608 -> stored -> model size); store the template at the model's size to
        resample once, exactly as the released code.

    Args:
        template_path: the brainset's NM1 template file, usually
            ``<data_root>/`` + :data:`TEMPLATE_RELATIVE_PATH`.
        height: target frame height (pixels), the frame decoder's.
        width: target frame width (pixels), the frame decoder's.

    Raises:
        ValueError: if a size is not a positive integer.

    Example::

        >>> transform = MovieFrameTargets(template_path=root / TEMPLATE_RELATIVE_PATH,
        ...                               height=16, width=32)  # doctest: +SKIP
        >>> window = transform(data.slice(start, start + 0.033))  # doctest: +SKIP
        >>> window.natural_movie_one.image.shape  # doctest: +SKIP
        (1, 512)
    """

    def __init__(
        self,
        *,
        template_path: str | Path,
        height: int = PAPER_FRAME_HEIGHT_PX,
        width: int = PAPER_FRAME_WIDTH_PX,
    ):
        for key, value in (("height", height), ("width", width)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{key} must be a positive number of pixels; got {value!r}")
        self.template_path = Path(template_path)
        self.height, self.width = height, width
        self._frames: np.ndarray | None = None  # (F, height, width) uint8, read lazily

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_frames"] = None  # each process reads its own copy
        return state

    @property
    def frames(self) -> np.ndarray:
        """The template at the target size, shape (F, height, width), uint8 (read once)."""
        if self._frames is None:
            self._frames = self._load()
        return self._frames

    def check_dataset(self, dataset: Any) -> None:
        """Check at set-up what the first sample would: the template exists and fits.

        Reads the template (and keeps it, as the first sample would), so that a missing file
        or a size the template cannot give fails before training starts rather than in a
        DataLoader worker. Preflight calls this on every transform that has the method.

        Args:
            dataset: The ``torch_brain.data.Dataset`` the transform will see; the template
                is shared by all its recordings, so it is not read.

        Raises:
            FileNotFoundError: If the template file does not exist.
            KeyError: If it has no :data:`TEMPLATE_DATASET`.
            ValueError: If its frames are not (frames, height, width) uint8, or are smaller
                than ``(height, width)``.
        """
        self.frames  # noqa: B018  (reads and checks the template)

    def _load(self) -> np.ndarray:
        path = self.template_path
        if not path.is_file():
            raise FileNotFoundError(
                f"natural-movie-one template {str(path)!r} does not exist; the brainset "
                "pipeline writes it (brainsets prepare allen_brain_observatory_calcium), or "
                "point template_path at it"
            )
        with h5py.File(path, "r") as f:
            if TEMPLATE_DATASET not in f:
                raise KeyError(
                    f"natural-movie-one template {str(path)!r} has no dataset "
                    f"{TEMPLATE_DATASET!r} (found {sorted(f.keys())})"
                )
            frames = f[TEMPLATE_DATASET][()]
        if frames.ndim != 3 or frames.dtype != np.uint8:
            raise ValueError(
                f"natural-movie-one template {str(path)!r}: {TEMPLATE_DATASET!r} must be "
                f"(frames, height, width) uint8; got shape {frames.shape}, dtype {frames.dtype}"
            )
        stored = frames.shape[1:]
        if stored == (self.height, self.width):
            return frames
        if self.height > stored[0] or self.width > stored[1]:
            raise ValueError(
                f"natural-movie-one template {str(path)!r} is stored at {stored[0]}x{stored[1]} "
                f"and cannot give {self.height}x{self.width} frames without upsampling; "
                f"rebuild it at that size (pipeline option --template-size {self.height} "
                f"{self.width}) or ask for a size up to {stored[0]}x{stored[1]}"
            )
        logger.debug(
            "resizing the natural-movie-one template %s from %dx%d to %dx%d",
            path,
            *stored,
            self.height,
            self.width,
        )
        return _resize_frames(frames, height=self.height, width=self.width)

    def __call__(self, data: Data) -> Data:
        """Attach ``natural_movie_one.image`` to ``data`` (in place) and return it.

        Raises:
            KeyError: if ``data`` has no ``natural_movie_one`` Interval with ``frame``.
            ValueError: if a frame index is not an integer within the template.
        """
        try:
            interval = getattr(data, _INTERVAL_KEY)
            # Interval slicing keeps every presentation overlapping the window; the
            # targets are those shown at the window's time: midpoint inside the window.
            midpoint = np.asarray(interval.timestamps)
            shown = (midpoint >= data.domain.start[0]) & (midpoint < data.domain.end[-1])
            if not shown.all():
                interval = interval.select_by_mask(shown)
                setattr(data, _INTERVAL_KEY, interval)
            index = np.asarray(getattr(interval, _FRAME_ATTR))
        except AttributeError as error:
            raise KeyError(
                f"MovieFrameTargets needs data.{_INTERVAL_KEY}.{_FRAME_ATTR} (template index "
                f"of each presentation); session {_session_id(data)!r} has none: {error}"
            ) from error
        if index.ndim != 1 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(
                f"data.{_INTERVAL_KEY}.{_FRAME_ATTR} of session {_session_id(data)!r} must be "
                f"1-D integers; got shape {index.shape}, dtype {index.dtype}"
            )
        frames = self.frames
        if len(index) and (index.min() < 0 or index.max() >= len(frames)):
            bad = index[(index < 0) | (index >= len(frames))]
            raise ValueError(
                f"session {_session_id(data)!r}: natural_movie_one frame indices {bad.tolist()} "
                f"lie outside the {len(frames)} frames of template {str(self.template_path)!r}"
            )
        images = frames[index].reshape(len(index), self.height * self.width)
        setattr(interval, _IMAGE_ATTR, images.astype(np.float32))
        return data

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(template_path={str(self.template_path)!r}, "
            f"height={self.height}, width={self.width})"
        )


def _session_id(data: Data) -> str:
    session = getattr(data, "session", None)
    return str(getattr(session, "id", "<unknown>"))
