"""A population model of Allen Visual Coding dF/F for one imaging plane.

Every unit fires calcium events as an inhomogeneous Poisson process whose rate follows the
stimulus; events are convolved with a GCaMP6f-like kernel and measured with Gaussian noise.
Two regimes reproduce the phenomenon POYO-CAP builds on (Bae et al., ICLR 2026):

* **dense** (the paper's predictable lines: Sst, Vip, Pvalb, Ntsr1): many small, overlapping
  events and broad tuning, so dF/F is close to Gaussian: low skewness and kurtosis.
* **sparse** (the other nine lines): rare, large events and sharp tuning, so dF/F is
  heavy-tailed: skewness and kurtosis far above the paper's 3.51 / 22.62.

Units are tuned to drifting-grating direction (von Mises) and temporal frequency (Gaussian in
octaves), and have Gaussian receptive fields over the movie templates, so grating labels and
movie frames are both decodable from the population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from poyocap_plugin.brainset import ALLEN_CRE_LINES, PAPER_PREDICTABLE_CRE_LINES
from poyocap_plugin.workflow.simulate.timeline import Schedule

# The simulator writes the real lines and makes the paper's predictable ones predictable.
CRE_LINES = ALLEN_CRE_LINES
PREDICTABLE_CRE_LINES = PAPER_PREDICTABLE_CRE_LINES

_RF_GRID = (19, 38)  # receptive fields live on a coarse (rows, cols) grid over any template


@dataclass(frozen=True)
class _LineProfile:
    """Firing regime of one Cre line.

    Attributes:
        dense: True for the predictable regime.
        rate_hz: Median background event rate (Hz).
        amplitude: Median dF/F of one event.
        decay_s: Median decay time constant of the calcium kernel (s).
        running_gain: Relative rate change per unit of normalised running speed.
        depths_um: Imaging depths this line is recorded at (micrometres).
    """

    dense: bool
    rate_hz: float
    amplitude: float
    decay_s: float
    running_gain: float
    depths_um: tuple[int, ...]


_PROFILES = {
    "Cux2-CreERT2": _LineProfile(False, 0.10, 0.9, 0.45, 0.10, (175, 225, 275)),
    "Emx1-IRES-Cre": _LineProfile(False, 0.12, 0.8, 0.45, 0.10, (175, 275, 375)),
    "Fezf2-CreER": _LineProfile(False, 0.08, 1.0, 0.50, 0.05, (375, 425)),
    "Nr5a1-Cre": _LineProfile(False, 0.10, 0.9, 0.45, 0.05, (325, 350)),
    "Ntsr1-Cre_GN220": _LineProfile(True, 6.0, 0.045, 0.50, 0.10, (550, 625)),
    "Pvalb-IRES-Cre": _LineProfile(True, 9.0, 0.035, 0.40, 0.10, (275, 375)),
    "Rbp4-Cre_KL100": _LineProfile(False, 0.09, 1.0, 0.50, 0.05, (375, 435)),
    "Rorb-IRES2-Cre": _LineProfile(False, 0.10, 0.9, 0.45, 0.05, (275, 325)),
    "Scnn1a-Tg3-Cre": _LineProfile(False, 0.08, 1.0, 0.45, 0.05, (325, 350)),
    "Slc17a7-IRES2-Cre": _LineProfile(False, 0.11, 0.8, 0.45, 0.10, (175, 275, 375)),
    "Sst-IRES-Cre": _LineProfile(True, 5.0, 0.050, 0.50, 0.15, (275, 375)),
    "Tlx3-Cre_PL56": _LineProfile(False, 0.09, 1.0, 0.50, 0.05, (375,)),
    "Vip-IRES-Cre": _LineProfile(True, 4.0, 0.055, 0.50, 0.40, (175, 275)),
}


def line_profile(cre_line: str) -> _LineProfile:
    """The firing regime of ``cre_line``; raises ValueError naming the known lines."""
    if cre_line not in _PROFILES:
        raise ValueError(f"cre_line must be one of {list(CRE_LINES)}, got {cre_line!r}")
    return _PROFILES[cre_line]


@dataclass(frozen=True)
class UnitTuning:
    """Ground-truth tuning of the simulated units (one entry per unit).

    Attributes:
        preferred_direction_deg: Preferred drift direction (degrees), shape (N,).
        preferred_temporal_frequency_hz: Preferred temporal frequency (Hz), shape (N,).
        rf_center_yx: Receptive-field centre as a fraction of the template's (height, width),
            shape (N, 2).
        dense: Whether each unit fires in the dense (predictable) regime, shape (N,), bool.
    """

    preferred_direction_deg: np.ndarray
    preferred_temporal_frequency_hz: np.ndarray
    rf_center_yx: np.ndarray
    dense: np.ndarray


def _coarse(template: np.ndarray) -> np.ndarray:
    """Block-average a (F, H, W) template onto the receptive-field grid, z-scored per pixel."""
    rows, cols = _RF_GRID
    f, h, w = template.shape
    y_edges = np.linspace(0, h, rows + 1).astype(np.int64)
    x_edges = np.linspace(0, w, cols + 1).astype(np.int64)
    if h < rows or w < cols:
        y_edges = np.minimum(np.arange(rows + 1) * h // rows, h)
        x_edges = np.minimum(np.arange(cols + 1) * w // cols, w)
    summed = np.add.reduceat(template.astype(np.float32), y_edges[:-1], axis=1)
    summed = np.add.reduceat(summed, x_edges[:-1], axis=2)
    coarse = summed.reshape(f, rows * cols)
    coarse -= coarse.mean()
    coarse /= max(float(coarse.std()), 1e-6)
    return coarse


def _gcamp_kernels(decay_s: np.ndarray, sampling_rate_hz: float) -> np.ndarray:
    """Double-exponential GCaMP6f kernels, peak 1, shape (K, N) with K = 6 * max decay."""
    rise_s = 0.05
    length = int(np.ceil(6 * decay_s.max() * sampling_rate_hz)) + 1
    t = np.arange(length)[:, None] / sampling_rate_hz
    kernels = (1.0 - np.exp(-t / rise_s)) * np.exp(-t / decay_s[None, :])
    return kernels / kernels.max(axis=0, keepdims=True)


def _convolve(events: np.ndarray, kernels: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Causal convolution of (T, N) events with per-unit (K, N) kernels, via the FFT."""
    n_frames = events.shape[0]
    size = 1 << int(np.ceil(np.log2(n_frames + kernels.shape[0])))
    out = np.empty(events.shape, dtype=np.float32)
    for first in range(0, events.shape[1], chunk):
        cols = slice(first, first + chunk)
        spectrum = np.fft.rfft(events[:, cols], n=size, axis=0)
        spectrum *= np.fft.rfft(kernels[:, cols], n=size, axis=0)
        out[:, cols] = np.fft.irfft(spectrum, n=size, axis=0)[:n_frames]
    return out


def _draw_tuning(rng: np.random.Generator, n: int, dense: bool) -> UnitTuning:
    return UnitTuning(
        preferred_direction_deg=rng.uniform(0.0, 360.0, n),
        preferred_temporal_frequency_hz=2.0 ** rng.uniform(0.0, np.log2(15.0), n),
        rf_center_yx=rng.uniform(0.1, 0.9, (n, 2)),
        dense=np.full(n, dense),
    )


def _grating_drive(
    schedule: Schedule,
    tuning: UnitTuning,
    kappa: np.ndarray,
    tf_sigma_oct: float,
    sampling_rate_hz: float,
) -> np.ndarray:
    """Tuning-curve response in [0, 1] at every frame of every non-blank grating trial, (T, N)."""
    n_units = len(kappa)
    drive = np.zeros((schedule.n_frames, n_units), dtype=np.float32)
    table = schedule.tables.get("drifting_gratings")
    if table is None:
        return drive
    rows = np.asarray(table.data, dtype=np.float64)
    frames = np.asarray(table.frame_duration, dtype=np.int64)
    shown = rows[:, 2] == 0.0
    frequency, direction, frames = rows[shown, 0], rows[shown, 1], frames[shown]
    length = frames[:, 1] - frames[:, 0]
    frame_index = np.repeat(frames[:, 0], length) + (
        np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
    )
    trial_time_s = (frame_index - np.repeat(frames[:, 0], length)) / sampling_rate_hz
    angle = np.deg2rad(direction[:, None] - tuning.preferred_direction_deg[None, :])
    direction_tuning = np.exp(kappa * (np.cos(angle) - 1.0))
    direction_tuning += 0.3 * np.exp(kappa * (np.cos(angle + np.pi) - 1.0))
    octaves = np.log2(frequency[:, None] / tuning.preferred_temporal_frequency_hz[None, :])
    trial_response = direction_tuning * np.exp(-0.5 * (octaves / tf_sigma_oct) ** 2)
    # Phase-locked modulation at the grating's temporal frequency (the F1 component).
    carrier = 1.0 + 0.4 * np.sin(2 * np.pi * np.repeat(frequency, length) * trial_time_s)
    drive[frame_index] = (np.repeat(trial_response, length, axis=0) * carrier[:, None]) / 1.3
    return drive


def _movie_drive(
    schedule: Schedule,
    templates: dict[str, np.ndarray],
    tuning: UnitTuning,
    rng: np.random.Generator,
) -> np.ndarray:
    """Receptive-field projection of the movie frame on screen, z-scored per unit, (T, N)."""
    n_units = len(tuning.dense)
    rows, cols = _RF_GRID
    gy, gx = np.mgrid[0:rows, 0:cols]
    cy = tuning.rf_center_yx[:, 0] * rows
    cx = tuning.rf_center_yx[:, 1] * cols
    sigma = rng.uniform(1.5, 3.0, n_units)
    centre = np.exp(
        -0.5 * ((gy.ravel()[:, None] - cy) ** 2 + (gx.ravel()[:, None] - cx) ** 2) / sigma**2
    )
    surround = np.exp(
        -0.5
        * ((gy.ravel()[:, None] - cy) ** 2 + (gx.ravel()[:, None] - cx) ** 2)
        / (2 * sigma) ** 2
    )
    sign = rng.choice([-1.0, 1.0], n_units)
    weights = sign * (centre / centre.sum(0) - 0.8 * surround / surround.sum(0))  # (P, N)
    drive = np.zeros((schedule.n_frames, n_units), dtype=np.float32)
    for name, template in templates.items():
        table = schedule.tables.get(name)
        if table is None or not name.startswith("natural_movie"):
            continue
        response = _coarse(template) @ weights  # (F, N)
        response -= response.mean(axis=0)
        response /= np.maximum(response.std(axis=0), 1e-6)
        frames = np.asarray(table.frame_duration, dtype=np.int64)[:, 0]
        drive[frames] = response[np.asarray(table.data, dtype=np.int64)]
    return drive


def _flash_drive(schedule: Schedule, n_units: int, rng: np.random.Generator) -> np.ndarray:
    """A random, unit-specific response to each static-grating / scene / noise flash, (T, N)."""
    drive = np.zeros((schedule.n_frames, n_units), dtype=np.float32)
    for name, table in schedule.tables.items():
        if name.startswith(("static_gratings", "natural_scenes", "locally_sparse_noise")):
            frames = np.asarray(table.frame_duration, dtype=np.int64)
            response = rng.standard_normal((len(frames), n_units)).astype(np.float32)
            length = frames[:, 1] - frames[:, 0]
            index = np.repeat(frames[:, 0], length) + (
                np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
            )
            drive[index] = np.repeat(response, length, axis=0)
    return drive


def simulate_dff(
    *,
    schedule: Schedule,
    templates: dict[str, np.ndarray],
    running_speed: np.ndarray,
    cre_line: str,
    n_units: int,
    sampling_rate_hz: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, UnitTuning]:
    """Simulate the dF/F of ``n_units`` units of one Cre line through one session.

    Args:
        schedule: The session's stimulus schedule (frame indices).
        templates: Movie templates by stimulus name, each (F, H, W) uint8; the movies drive
            the receptive fields.
        running_speed: Running speed at every frame (cm/s), shape (T,), NaN allowed.
        cre_line: One of :data:`CRE_LINES`; picks the dense or sparse regime.
        n_units: Number of ROIs.
        sampling_rate_hz: 2-photon frame rate (Hz).
        rng: Source of every random draw.

    Returns:
        ``(dff, tuning)``: dF/F of shape :math:`(T, N)`, float32, and the units' tuning.
    """
    profile = line_profile(cre_line)
    n = n_units
    tuning = _draw_tuning(rng, n, profile.dense)
    if profile.dense:
        kappa = rng.uniform(1.0, 2.5, n)  # broad tuning
        tf_sigma = 1.8
    else:
        kappa = rng.uniform(2.5, 6.0, n)  # sharp tuning
        tf_sigma = 0.8
    grating = _grating_drive(schedule, tuning, kappa, tf_sigma, sampling_rate_hz)
    movie = _movie_drive(schedule, templates, tuning, rng)
    flash = _flash_drive(schedule, n, rng)

    speed = np.nan_to_num(running_speed, nan=0.0)
    run = (speed / max(float(speed.max()), 1e-6)).astype(np.float32)[:, None]
    base = (profile.rate_hz * rng.lognormal(0.0, 0.3, n)).astype(np.float32)
    running_gain = np.float32(profile.running_gain)
    if profile.dense:
        gain = rng.uniform(0.8, 1.5, n).astype(np.float32)
        modulation = 1.0 + gain * (grating + 0.5 * np.tanh(movie) + 0.3 * np.tanh(flash))
        rate = base * np.maximum(modulation, 0.05) * (1.0 + running_gain * run)
    else:
        reliability = rng.uniform(0.5, 1.0, n).astype(np.float32)
        peak_grating = rng.uniform(2.0, 6.0, n).astype(np.float32) * reliability
        # The movie drives the sparse lines as strongly as the gratings do (the same cells
        # see both); flashes more weakly.
        peak_movie = rng.uniform(2.0, 6.0, n).astype(np.float32) * reliability
        peak_flash = rng.uniform(0.25, 0.75, n).astype(np.float32) * reliability
        rate = base + peak_grating * grating**2
        rate += peak_movie * np.maximum(movie - 1.0, 0.0) ** 2
        rate += peak_flash * np.maximum(flash - 1.5, 0.0) ** 2
        rate *= 1.0 + running_gain * run
    counts = rng.poisson(rate / sampling_rate_hz)

    amplitude = profile.amplitude * rng.lognormal(0.0, 0.25, n)
    events = np.zeros(counts.shape, dtype=np.float64)
    t_idx, u_idx = np.nonzero(counts)
    c = counts[t_idx, u_idx]
    if profile.dense:
        # Sum of c gamma(2)-sized events: small and regular.
        events[t_idx, u_idx] = rng.gamma(2.0 * c, amplitude[u_idx] / 2.0)
    else:
        # Bursts: log-normal event sizes give the heavy tail of sparse excitatory cells.
        events[t_idx, u_idx] = c * amplitude[u_idx] * rng.lognormal(0.0, 0.6, len(c))

    decay_s = profile.decay_s * rng.lognormal(0.0, 0.15, n)
    dff = _convolve(events, _gcamp_kernels(decay_s, sampling_rate_hz))
    dff -= np.median(dff, axis=0, keepdims=True)
    noise_sd = rng.uniform(0.03, 0.06, n).astype(np.float32)
    dff += noise_sd * rng.standard_normal(dff.shape, dtype=np.float32)
    return dff, tuning


__all__ = [
    "CRE_LINES",
    "PREDICTABLE_CRE_LINES",
    "UnitTuning",
    "line_profile",
    "simulate_dff",
]
