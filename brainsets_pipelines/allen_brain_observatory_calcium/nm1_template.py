"""The natural-movie-one frame bank, stored once per brainset.

Every Allen session carries the same 900-frame, 304 x 608 uint8 template. The pipeline keeps
one copy, downsampled with Pillow's LANCZOS filter (as POYO-CAP does for its 128 x 256
targets), at ``<processed>/allen_brain_observatory_calcium/templates/natural_movie_one.h5``,
a subfolder the torch_brain Dataset's ``*.h5`` glob does not see. The file holds:

* dataset ``frames``: shape (900, H, W), uint8, chunked one frame per chunk (lazy reads);
* attrs ``source_sha256``, ``source_shape`` (the full-size template's digest and shape),
  ``height``, ``width``, ``resample`` ("LANCZOS"), ``first_session_id``.

Each session's full-size template must have the stored digest; a different movie is an error
that names the session.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import h5py
import numpy as np

TEMPLATE_SUBDIR = "templates"
TEMPLATE_FILE = "natural_movie_one.h5"


def template_digest(frames: np.ndarray) -> str:
    """SHA-256 of a template's shape, dtype and pixels."""
    frames = np.ascontiguousarray(frames)
    digest = hashlib.sha256(f"{frames.shape}{frames.dtype.str}".encode())
    digest.update(frames.data)
    return digest.hexdigest()


def downsample_template(frames: np.ndarray, *, height: int, width: int) -> np.ndarray:
    """Resize every frame with Pillow's LANCZOS filter.

    Args:
        frames: Template of shape :math:`(F, H, W)`, uint8.
        height: Output height (pixels).
        width: Output width (pixels).

    Returns:
        Frames of shape :math:`(F, height, width)`, uint8.

    Raises:
        ValueError: If ``frames`` is not a 3-D uint8 array or a size is not positive.
    """
    from PIL import Image

    if frames.ndim != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (F, H, W) uint8, got {frames.shape} {frames.dtype}")
    if height < 1 or width < 1:
        raise ValueError(f"template size must be positive, got {height}x{width}")
    out = np.empty((len(frames), height, width), dtype=np.uint8)
    for i, frame in enumerate(frames):
        resized = Image.fromarray(frame).resize((width, height), Image.Resampling.LANCZOS)
        out[i] = np.asarray(resized)
    return out


def _check(path: Path, *, digest: str, shape: tuple, height: int, width: int, session_id: str):
    with h5py.File(path, "r") as f:
        stored_digest = str(f.attrs["source_sha256"])
        stored_shape = tuple(int(v) for v in f.attrs["source_shape"])
        stored_hw = (int(f.attrs["height"]), int(f.attrs["width"]))
        first = str(f.attrs["first_session_id"])
    if stored_digest != digest or stored_shape != tuple(shape):
        raise ValueError(
            f"session {session_id}: its natural_movie_one template (shape {tuple(shape)}, "
            f"sha256 {digest[:12]}) differs from the brainset's template {path} (shape "
            f"{stored_shape}, sha256 {stored_digest[:12]}, written from session {first}). "
            "Every session must show the same movie: exclude this session, or delete the "
            "template file and rerun with --reprocess if the stored one is wrong."
        )
    if stored_hw != (height, width):
        raise ValueError(
            f"session {session_id}: {path} holds the template at {stored_hw[0]}x{stored_hw[1]} "
            f"but --template-size asks for {height}x{width}; pass --template-size "
            f"{stored_hw[0]} {stored_hw[1]}, or delete the file to rebuild it at the new size."
        )


def store_or_check_template(
    brainset_dir: Path, frames: np.ndarray, *, height: int, width: int, session_id: str
) -> Path:
    """Write the brainset's template from ``frames`` if absent, else check ``frames`` match it.

    The file is written under a temporary name and renamed, so concurrent sessions never see
    a partial file; if two write at once, both write the same bytes.

    Args:
        brainset_dir: ``<processed>/allen_brain_observatory_calcium``.
        frames: This session's full-size template, shape (900, H, W), uint8.
        height: Stored height (pixels).
        width: Stored width (pixels).
        session_id: The session, named in errors.

    Returns:
        Path of the template file.

    Raises:
        ValueError: If the stored template was built from a different movie or at another size.
    """
    path = Path(brainset_dir) / TEMPLATE_SUBDIR / TEMPLATE_FILE
    digest = template_digest(frames)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        small = downsample_template(frames, height=height, width=width)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:
            with h5py.File(partial, "w") as f:
                f.create_dataset(
                    "frames", data=small, chunks=(1, height, width), compression="gzip"
                )
                f.attrs["source_sha256"] = digest
                f.attrs["source_shape"] = np.asarray(frames.shape, dtype=np.int64)
                f.attrs["height"] = height
                f.attrs["width"] = width
                f.attrs["resample"] = "LANCZOS"
                f.attrs["first_session_id"] = session_id
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    _check(
        path, digest=digest, shape=frames.shape, height=height, width=width, session_id=session_id
    )
    return path
