"""Simulated Allen Brain Observatory sessions: schedule, neurons, behaviour, NWB file."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from poyocap_plugin.brainset import BRAINSET_ID, NWB_SUBDIR
from poyocap_plugin.workflow.files import write_atomically
from poyocap_plugin.workflow.simulate.movie_template import (
    NM1_HEIGHT_PX,
    NM1_WIDTH_PX,
    natural_movie_one_template,
)
from poyocap_plugin.workflow.simulate.neurons import (
    CRE_LINES,
    PREDICTABLE_CRE_LINES,
    UnitTuning,
    line_profile,
    simulate_dff,
)
from poyocap_plugin.workflow.simulate.nwb_writer import NwbSession, RoiShape, write_session_nwb
from poyocap_plugin.workflow.simulate.timeline import (
    SESSION_TYPES,
    Schedule,
    SessionLayout,
    build_schedule,
)

logger = logging.getLogger(__name__)

SAMPLING_RATE_HZ = 30.0
"""2-photon frame rate of the simulated sessions (Hz)."""
PLANE_PX = 512
"""Side of the imaging plane (pixels), as in the real 400 x 400 um fields of view."""

Breakage = Literal["truncated", "unsplittable_epochs"]
BREAKAGES: tuple[str, ...] = ("truncated", "unsplittable_epochs")
_AREAS = ("VISp", "VISl", "VISal", "VISpm", "VISam", "VISrl")
_OTHER_TEMPLATE_HW = (38, 76)  # templates nothing decodes are written small


@dataclass(frozen=True)
class SimulatedSession:
    """Ground truth of one simulated session.

    Attributes:
        path: The NWB file.
        experiment_id: Ophys experiment id; the file is ``<experiment_id>.nwb``.
        specimen_name: The mouse (Allen's donor, the brainset's subject).
        cre_line: Cre line, spelled as allensdk reports it.
        session_type: allensdk session type.
        n_frames: Number of 2-photon frames T.
        n_rois: Number of ROIs N.
        timestamps: 2-photon frame times (s), shape (T,).
        roi_ids: ROI ids, shape (N,), int64.
        dff: The dF/F written to the file, shape (T, N), float32.
        schedule: Stimulus tables in frame indices (drifting-grating rows are
            ``(temporal_frequency_hz, direction_deg, blank_sweep)``).
        tuning: The units' ground-truth tuning.
        predictable_line: Whether ``cre_line`` is one of the paper's predictable lines.
        eye_tracking: Whether the file has pupil data.
        broken: How the file was broken on purpose, or None.
    """

    path: Path
    experiment_id: int
    specimen_name: str
    cre_line: str
    session_type: str
    n_frames: int
    n_rois: int
    timestamps: np.ndarray
    roi_ids: np.ndarray
    dff: np.ndarray
    schedule: Schedule
    tuning: UnitTuning
    predictable_line: bool
    eye_tracking: bool
    broken: str | None


def nwb_path(out_dir: Path, experiment_id: int) -> Path:
    """Where the pipeline looks for an experiment under the brainsets raw root ``out_dir``."""
    return Path(out_dir) / BRAINSET_ID / NWB_SUBDIR / f"{experiment_id}.nwb"


def _smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance noise low-passed with a ``width``-frame moving average, shape (n,)."""
    raw = rng.standard_normal(n + width)
    smooth = np.convolve(raw, np.ones(width) / width, mode="valid")[:n]
    return smooth / smooth.std()


def _rois(rng: np.random.Generator, n: int) -> list[RoiShape]:
    """Elliptical somata of 100-500 pixels scattered over the plane."""
    rois = []
    for _ in range(n):
        ry, rx = rng.uniform(5.5, 11.5, 2)
        angle = rng.uniform(0, np.pi)
        half = int(np.ceil(max(ry, rx))) + 1
        yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
        u = xx * np.cos(angle) + yy * np.sin(angle)
        v = -xx * np.sin(angle) + yy * np.cos(angle)
        mask = (u / rx) ** 2 + (v / ry) ** 2 <= 1.0
        top, left = rng.integers(2, PLANE_PX - 2 * half - 2, 2)
        rois.append(RoiShape(top=int(top), left=int(left), mask=mask))
    return rois


def _genotype(cre_line: str) -> str:
    if line_profile(cre_line).dense:
        return f"{cre_line}/wt;Ai148(TIT2L-GC6f-ICL-tTA2)/wt"
    return f"{cre_line}/wt;Camk2a-tTA/wt;Ai93(TITL-GCaMP6f)/wt"


def _other_templates(schedule: Schedule, seed: int) -> dict[str, np.ndarray]:
    """Small templates for the stimuli the pipeline does not decode."""
    rng = np.random.default_rng([seed, 7])
    templates: dict[str, np.ndarray] = {}
    height, width = _OTHER_TEMPLATE_HW
    for offset, name in enumerate(("natural_movie_two", "natural_movie_three")):
        if name in schedule.template_lengths:
            templates[name] = natural_movie_one_template(
                seed=seed + 1 + offset,
                height=height,
                width=width,
                n_frames=schedule.template_lengths[name],
            )
    if "natural_scenes" in schedule.template_lengths:
        n = schedule.template_lengths["natural_scenes"]
        templates["natural_scenes"] = rng.integers(0, 256, (n, 24, 30), dtype=np.uint8)
    for name, shape in (
        ("locally_sparse_noise", (16, 28)),
        ("locally_sparse_noise_4deg", (16, 28)),
        ("locally_sparse_noise_8deg", (8, 14)),
    ):
        if name in schedule.template_lengths:
            n = schedule.template_lengths[name]
            frames = np.full((n, *shape), 127, dtype=np.uint8)
            spots = rng.random((n, *shape)) < 11.0 / (shape[0] * shape[1])
            frames[spots] = rng.choice(np.array([0, 255], dtype=np.uint8), int(spots.sum()))
            templates[name] = frames
    return templates


def simulate_session(
    *,
    path: Path,
    experiment_id: int,
    cre_line: str,
    session_type: str = "three_session_A",
    n_rois: int = 20,
    layout: SessionLayout | None = None,
    nm1_template: np.ndarray | None = None,
    template_seed: int = 0,
    eye_tracking: bool = True,
    broken: Breakage | None = None,
    donor: int | None = None,
    seed: int = 0,
) -> SimulatedSession:
    """Write one simulated Allen ophys session to ``path`` and return its ground truth.

    The file is written to a temporary name beside ``path`` and renamed, so ``path`` is
    either absent or complete (unless ``broken="truncated"`` asks for a broken one).

    Args:
        path: Destination ``.nwb`` file; its folder is created.
        experiment_id: Ophys experiment id written into the file.
        cre_line: One of :data:`CRE_LINES`.
        session_type: One of :data:`SESSION_TYPES`.
        n_rois: Number of ROIs.
        layout: Stimulus durations; defaults to the short :class:`SessionLayout`.
        nm1_template: Natural movie one, (900, H, W) uint8. Defaults to
            ``natural_movie_one_template(seed=template_seed)`` at the real 304 x 608 size;
            pass one to share it across sessions.
        template_seed: Seed of the default natural-movie templates.
        eye_tracking: Write pupil position and size (many real sessions have none).
        broken: ``"truncated"`` cuts the file to a third of its size (h5py cannot open it);
            ``"unsplittable_epochs"`` adds a fourth block of the first stimulus, which allensdk
            cannot split into stimulus epochs (``EpochSeparationException``).
        donor: Number of the mouse, in ``specimen_name`` ``"<cre_line>;simulated-<donor>"``;
            None gives the session's experiment container a mouse of its own. Sessions
            with one donor must share ``cre_line``.
        seed: Seed of everything random in this session, combined with ``experiment_id``.

    Returns:
        The session's ground truth.

    Raises:
        ValueError: On an unknown Cre line, session type or breakage, a non-positive
            ``n_rois``, or a template that is not (900, H, W) uint8.
    """
    if cre_line not in CRE_LINES:
        raise ValueError(f"cre_line must be one of {list(CRE_LINES)}, got {cre_line!r}")
    if session_type not in SESSION_TYPES:
        raise ValueError(f"session_type must be one of {list(SESSION_TYPES)}, got {session_type!r}")
    if broken is not None and broken not in BREAKAGES:
        raise ValueError(f"broken must be None or one of {list(BREAKAGES)}, got {broken!r}")
    if n_rois < 1:
        raise ValueError(f"n_rois must be positive, got {n_rois!r}")
    if nm1_template is None:
        nm1_template = natural_movie_one_template(seed=template_seed)
    if nm1_template.dtype != np.uint8 or nm1_template.ndim != 3 or len(nm1_template) != 900:
        raise ValueError(
            "nm1_template must be a (900, H, W) uint8 array, "
            f"got shape {nm1_template.shape} dtype {nm1_template.dtype}"
        )
    layout = SessionLayout() if layout is None else layout
    path = Path(path)
    rng = np.random.default_rng([seed, experiment_id])

    schedule = build_schedule(
        session_type=session_type,
        layout=layout,
        rng=rng,
        unsplittable_epochs=broken == "unsplittable_epochs",
    )
    n_frames = schedule.n_frames
    jitter = rng.normal(0.0, 1e-4, n_frames)
    timestamps = rng.uniform(1.0, 5.0) + np.arange(n_frames) / SAMPLING_RATE_HZ + jitter

    running_speed = np.maximum(0.0, 12.0 * _smooth_noise(rng, n_frames, 90) + 4.0)
    running_speed[rng.random(n_frames) < 0.002] = np.nan
    templates = {"natural_movie_one": nm1_template, **_other_templates(schedule, template_seed)}
    dff, tuning = simulate_dff(
        schedule=schedule,
        templates=templates,
        running_speed=running_speed,
        cre_line=cre_line,
        n_units=n_rois,
        sampling_rate_hz=SAMPLING_RATE_HZ,
        rng=rng,
    )

    pupil_location = pupil_size = None
    if eye_tracking:
        pupil_location = np.stack(
            [6.0 * _smooth_noise(rng, n_frames, 15), 3.0 * _smooth_noise(rng, n_frames, 15)],
            axis=1,
        )
        speed = np.nan_to_num(running_speed)
        pupil_size = 1500.0 + 40.0 * speed + 100.0 * _smooth_noise(rng, n_frames, 60)
        blinks = rng.random(n_frames) < 0.005
        pupil_location[blinks] = np.nan
        pupil_size[blinks] = np.nan

    profile = line_profile(cre_line)
    block = experiment_id % 1_000_000
    roi_ids = 1_000_000_000 + block * 1000 + np.arange(n_rois, dtype=np.int64)
    container_id = 700_000_000 + block
    specimen_name = f"{cre_line};simulated-{container_id if donor is None else donor}"
    session = NwbSession(
        experiment_id=experiment_id,
        container_id=container_id,
        specimen_name=specimen_name,
        session_type=session_type,
        genotype=_genotype(cre_line),
        age_days=int(rng.integers(80, 140)),
        sex=str(rng.choice(["male", "female"])),
        imaging_depth_um=int(rng.choice(profile.depths_um)),
        targeted_structure=str(rng.choice(_AREAS)),
        session_start_time="Thu Feb  4 10:25:24 2016",
        timestamps=timestamps,
        dff=dff,
        roi_ids=roi_ids,
        cell_specimen_ids=roi_ids - 400_000_000,
        rois=_rois(rng, n_rois),
        plane_px=PLANE_PX,
        schedule=schedule,
        templates=templates,
        running_speed=running_speed,
        pupil_location_deg=pupil_location,
        pupil_size=pupil_size,
        motion_px=rng.normal(0.0, 0.5, (n_frames, 2)),
    )

    def write(partial: Path) -> None:
        write_session_nwb(partial, session)
        if broken == "truncated":
            os.truncate(partial, partial.stat().st_size // 3)

    write_atomically(path, write)
    logger.info(
        "wrote %s: %s, %s, %d ROIs x %d frames%s",
        path,
        cre_line,
        session_type,
        n_rois,
        n_frames,
        f" (broken: {broken})" if broken else "",
    )
    return SimulatedSession(
        path=path,
        experiment_id=experiment_id,
        specimen_name=specimen_name,
        cre_line=cre_line,
        session_type=session_type,
        n_frames=n_frames,
        n_rois=n_rois,
        timestamps=timestamps,
        roi_ids=roi_ids,
        dff=dff,
        schedule=schedule,
        tuning=tuning,
        predictable_line=cre_line in PREDICTABLE_CRE_LINES,
        eye_tracking=eye_tracking,
        broken=broken,
    )


def simulate_sessions(
    *,
    out_dir: Path,
    n_sessions: int = 13,
    cre_lines: Sequence[str] = CRE_LINES,
    session_types: Sequence[str] = ("three_session_A",),
    n_rois: int = 20,
    layout: SessionLayout | None = None,
    movie_height: int = NM1_HEIGHT_PX,
    movie_width: int = NM1_WIDTH_PX,
    template_seed: int = 0,
    eye_tracking: bool = True,
    broken: Breakage | None = None,
    first_experiment_id: int = 900_000_001,
    seed: int = 0,
) -> list[Path]:
    """Write ``n_sessions`` simulated Allen ophys sessions under a brainsets raw root.

    Session ``i`` gets experiment id ``first_experiment_id + i``, Cre line
    ``cre_lines[i % len(cre_lines)]`` and session type
    ``session_types[i % len(session_types)]``; a line's sessions come from one mouse two
    at a time (two experiment containers, i.e. imaging planes, per donor, as in many Allen
    mice). Each is written to
    ``<out_dir>/allen_brain_observatory_calcium/ophys_experiment_data/<id>.nwb``, where
    ``brainsets prepare allen_brain_observatory_calcium --raw-dir <out_dir>`` (and allensdk's
    BrainObservatoryCache with its manifest in that folder) finds it. Every session shows the
    same natural movie one, as in the real data.

    Args:
        out_dir: The brainsets raw root.
        n_sessions: Number of sessions.
        cre_lines: Cre lines to cycle through (allensdk spelling, see :data:`CRE_LINES`).
        session_types: Session types to cycle through (see :data:`SESSION_TYPES`).
        n_rois: ROIs per session.
        layout: Stimulus durations; the default :class:`SessionLayout` is short (about 9 min
            for three_session_A), ``SessionLayout.full()`` is the real length (about 1 h).
        movie_height: Natural movie one height (pixels); the real movie has 304.
        movie_width: Natural movie one width (pixels); the real movie has 608.
        template_seed: Seed of the movie templates (shared by all sessions).
        eye_tracking: Write pupil data.
        broken: Write the last session broken this way (see :func:`simulate_session`).
        first_experiment_id: Experiment id of the first session. The default lies outside the
            real Allen id range (501021421 to 716956096).
        seed: Seed of the sessions' content.

    Returns:
        The written files, in session order.

    Raises:
        ValueError: On a non-positive ``n_sessions`` or empty ``cre_lines``/``session_types``,
            and on any argument :func:`simulate_session` rejects.

    Example::

        >>> paths = simulate_sessions(out_dir=tmp, n_sessions=2, movie_height=38, movie_width=76)
        >>> [p.name for p in paths]
        ['900000001.nwb', '900000002.nwb']
    """
    if n_sessions < 1:
        raise ValueError(f"n_sessions must be positive, got {n_sessions!r}")
    if len(cre_lines) == 0 or len(session_types) == 0:
        raise ValueError(
            f"cre_lines and session_types must not be empty, got {list(cre_lines)!r} "
            f"and {list(session_types)!r}"
        )
    for line in cre_lines:
        if line not in CRE_LINES:
            raise ValueError(f"cre_lines must be from {list(CRE_LINES)}, got {line!r}")
    for kind in session_types:
        if kind not in SESSION_TYPES:
            raise ValueError(f"session_types must be from {list(SESSION_TYPES)}, got {kind!r}")
    template = natural_movie_one_template(
        seed=template_seed, height=movie_height, width=movie_width
    )
    paths = []
    for i in range(n_sessions):
        experiment_id = first_experiment_id + i
        session = simulate_session(
            path=nwb_path(out_dir, experiment_id),
            experiment_id=experiment_id,
            cre_line=cre_lines[i % len(cre_lines)],
            session_type=session_types[i % len(session_types)],
            n_rois=n_rois,
            layout=layout,
            nm1_template=template,
            template_seed=template_seed,
            eye_tracking=eye_tracking,
            broken=broken if i == n_sessions - 1 else None,
            # the line's k-th session (k = i // lines) is from the line's mouse k // 2
            donor=i % len(cre_lines) + len(cre_lines) * (i // len(cre_lines) // 2),
            seed=seed,
        )
        logger.info("session %d/%d written: %s", i + 1, n_sessions, session.path)
        paths.append(session.path)
    return paths
