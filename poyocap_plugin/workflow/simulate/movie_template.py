"""A deterministic, structured stand-in for the Allen "natural movie one" template.

The real template is 900 frames of 304 x 608 uint8 grey levels (30 s at 30 fps). The
stand-in keeps that shape and dtype and is built from smooth parts that a decoder can learn:
six 5 s scenes, each a panning low-frequency texture, a drifting grating and a few moving
Gaussian blobs, with a brightness jump at every scene cut. Every part is separable in
(y, x), so a full-size movie is built with outer products instead of per-pixel loops.
"""

from __future__ import annotations

import numpy as np

NM1_N_FRAMES = 900
"""Frames in natural movie one (30 s at 30 fps)."""
NM1_HEIGHT_PX = 304
"""Height of the real natural movie one template (pixels)."""
NM1_WIDTH_PX = 608
"""Width of the real natural movie one template (pixels)."""

_SCENE_FRAMES = 150  # 5 s scenes, 6 per 900-frame movie
_FRAMES_PER_CHUNK = 50  # bounds the float32 working set to ~37 MB at full size
_N_BLOBS = 3


def _interpolation_matrix(n_out: int, n_in: int) -> np.ndarray:
    """Linear-interpolation matrix mapping ``n_in`` samples onto ``n_out`` (shape (n_out, n_in))."""
    position = np.linspace(0.0, n_in - 1.0, n_out)
    lower = np.clip(np.floor(position).astype(np.int64), 0, n_in - 1)
    upper = np.clip(lower + 1, 0, n_in - 1)
    frac = position - lower
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, lower), 1.0 - frac)
    np.add.at(matrix, (rows, upper), frac)
    return matrix


def _scene_frames(
    rng: np.random.Generator, local_t: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Render one scene at the frames ``local_t`` (frames since the scene's cut) as float32.

    The scene's parameters are drawn from ``rng`` in a fixed order whatever ``local_t`` is,
    so rendering a scene in chunks from identically seeded generators gives the same movie.
    """
    local_t = np.asarray(local_t, dtype=np.float64)
    y = np.arange(height, dtype=np.float64)
    x = np.arange(width, dtype=np.float64)

    # Panning texture: a coarse random field upsampled to (height, width + pan).
    pan_speed_px = rng.uniform(-1.5, 1.5) * width / 300.0
    pan_total = int(np.ceil(abs(pan_speed_px) * _SCENE_FRAMES)) + 1
    coarse = rng.standard_normal((6, 12 + int(np.ceil(12 * pan_total / width))))
    wide = _interpolation_matrix(height, coarse.shape[0]) @ coarse
    wide = (wide @ _interpolation_matrix(width + pan_total, coarse.shape[1]).T).astype(np.float32)
    offset = np.round(local_t * abs(pan_speed_px)).astype(np.int64)
    if pan_speed_px < 0:
        offset = pan_total - 1 - offset
    columns = offset[:, None] + np.arange(width)[None, :]  # (n, width)
    frames = np.ascontiguousarray(np.transpose(wide[:, columns], (1, 0, 2)))  # (n, H, W)
    frames *= np.float32(35.0)
    frames += np.float32(rng.uniform(90.0, 170.0))

    # Drifting grating: cos(kx x + ky y - w t) split into separable sin/cos products.
    angle = rng.uniform(0.0, np.pi)
    wavelength_px = rng.uniform(0.15, 0.4) * width
    kx = 2 * np.pi * np.cos(angle) / wavelength_px
    ky = 2 * np.pi * np.sin(angle) / wavelength_px
    phase = -2 * np.pi * rng.uniform(0.2, 1.0) / 30.0 * local_t
    a_y = (ky * y)[None, :] + phase[:, None]  # (n, height)
    b_x = kx * x  # (width,)
    contrast = rng.uniform(10.0, 30.0)
    cos_y, sin_y = (
        (contrast * np.cos(a_y)).astype(np.float32),
        (contrast * np.sin(a_y)).astype(np.float32),
    )
    cos_x, sin_x = np.cos(b_x).astype(np.float32), np.sin(b_x).astype(np.float32)
    frames += cos_y[:, :, None] * cos_x[None, None, :]
    frames -= sin_y[:, :, None] * sin_x[None, None, :]

    # Moving blobs: separable Gaussians on straight paths.
    for _ in range(_N_BLOBS):
        start = rng.uniform([0.1 * height, 0.1 * width], [0.9 * height, 0.9 * width])
        velocity = rng.uniform(-1.0, 1.0, 2) * np.array([height, width]) / 200.0
        centre = start[None, :] + local_t[:, None] * velocity[None, :]  # (n, 2)
        sigma = rng.uniform(0.04, 0.1) * height
        amplitude = rng.choice([-1.0, 1.0]) * rng.uniform(50.0, 90.0)
        gy = amplitude * np.exp(-0.5 * ((y[None, :] - centre[:, :1]) / sigma) ** 2)
        gx = np.exp(-0.5 * ((x[None, :] - centre[:, 1:]) / sigma) ** 2)
        frames += gy.astype(np.float32)[:, :, None] * gx.astype(np.float32)[:, None, :]
    return frames


def natural_movie_one_template(
    *,
    seed: int = 0,
    height: int = NM1_HEIGHT_PX,
    width: int = NM1_WIDTH_PX,
    n_frames: int = NM1_N_FRAMES,
) -> np.ndarray:
    """Build the synthetic natural-movie template, identical for identical arguments.

    Args:
        seed: Seed of the movie's content; every session of a simulated dataset uses the same.
        height: Frame height (pixels). The real template is 304; smaller values make tests fast.
        width: Frame width (pixels). The real template is 608.
        n_frames: Number of frames. Natural movie one has 900.

    Returns:
        Grey levels of shape :math:`(F, H, W)`, dtype uint8.

    Raises:
        ValueError: If a size is not positive.

    Example::

        >>> movie = natural_movie_one_template(seed=0, height=38, width=76)
        >>> movie.shape, movie.dtype
        ((900, 38, 76), dtype('uint8'))
    """
    for name, value in (("height", height), ("width", width), ("n_frames", n_frames)):
        if value <= 0:
            raise ValueError(f"{name} must be a positive number of pixels/frames, got {value!r}")
    movie = np.empty((n_frames, height, width), dtype=np.uint8)
    for scene, first in enumerate(range(0, n_frames, _SCENE_FRAMES)):
        scene_length = min(_SCENE_FRAMES, n_frames - first)
        for chunk in range(0, scene_length, _FRAMES_PER_CHUNK):
            local_t = np.arange(chunk, min(chunk + _FRAMES_PER_CHUNK, scene_length))
            rng = np.random.default_rng([seed, scene])
            frames = _scene_frames(rng, local_t, height, width)
            np.clip(frames, 0.0, 255.0, out=frames)
            movie[first + local_t] = np.rint(frames).astype(np.uint8)
    return movie
