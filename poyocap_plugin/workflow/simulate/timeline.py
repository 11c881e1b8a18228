"""Stimulus schedules of the Allen Visual Coding sessions, in 2-photon frame indices.

A schedule lays the stimulus blocks of one session type end to end, the way the Allen
Brain Observatory showed them: drifting-grating trials of 2 s with 1 s of grey between them,
movies at one movie frame per 2-photon frame, 250 ms flashes for static gratings, natural
scenes and sparse noise. Blocks of the same stimulus are separated by other stimuli and by
grey gaps longer than allensdk's epoch threshold, so ``get_stimulus_epoch_table`` finds the
blocks a real session has (A: 7, B: 8, C: 7, C2: 10).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

SESSION_TYPES = ("three_session_A", "three_session_B", "three_session_C", "three_session_C2")
"""Session types allensdk 2.16.2 can split into stimulus epochs."""

DG_DIRECTIONS_DEG = tuple(float(d) for d in range(0, 360, 45))
"""Drift directions of the drifting gratings (degrees)."""
DG_TEMPORAL_FREQUENCIES_HZ = (1.0, 2.0, 4.0, 8.0, 15.0)
"""Temporal frequencies of the drifting gratings (Hz)."""
SG_ORIENTATIONS_DEG = tuple(float(o) for o in range(0, 180, 30))
SG_SPATIAL_FREQUENCIES_CPD = (0.02, 0.04, 0.08, 0.16, 0.32)
SG_PHASES_CYCLES = (0.0, 0.25, 0.5, 0.75)

DG_ON_FRAMES = 60  # 2 s grating
DG_OFF_FRAMES = 30  # 1 s grey between trials (below session A's threshold of 39 frames)
FLASH_FRAMES = 7  # 250 ms flashes at ~30 Hz, shown back to back
BLOCK_GAP_FRAMES = 60  # grey between blocks, above every session type's epoch threshold
LEAD_IN_FRAMES = 30  # ~1 s before the first stimulus, and after the last one


@dataclass(frozen=True)
class SessionLayout:
    """How much of each stimulus one simulated session shows.

    The defaults give a short session (about 9 min at 30 Hz for ``three_session_A``) that
    still carries every label the curriculum uses: all 40 drifting-grating conditions and the
    10 natural-movie-one repeats. :meth:`full` gives the real session lengths (about 1 h).

    Args:
        dg_repeats: Repeats of each of the 40 drifting-grating conditions (8 directions x
            5 temporal frequencies); the real sessions show 15.
        dg_blank_fraction: Blank sweeps added, as a fraction of the grating trials.
        nm1_repeats: Repeats of the 900-frame natural movie one; the real sessions show 10.
        nm2_frames: Frames of natural movie two's template (real: 900).
        nm2_repeats: Repeats of natural movie two (real: 10).
        nm3_frames: Frames of natural movie three's template (real: 3600).
        nm3_repeats_per_block: Repeats of natural movie three in each of its two blocks (real: 5).
        flashes_per_block: Static-grating, natural-scene and sparse-noise flashes per block
            (real: about 2000).
        spontaneous_frames: Frames of each grey spontaneous block (real: about 8880).
    """

    dg_repeats: int = 3
    dg_blank_fraction: float = 0.05
    nm1_repeats: int = 10
    nm2_frames: int = 300
    nm2_repeats: int = 2
    nm3_frames: int = 300
    nm3_repeats_per_block: int = 1
    flashes_per_block: int = 120
    spontaneous_frames: int = 300

    def __post_init__(self) -> None:
        for name in (
            "dg_repeats",
            "nm1_repeats",
            "nm2_frames",
            "nm2_repeats",
            "nm3_frames",
            "nm3_repeats_per_block",
            "flashes_per_block",
            "spontaneous_frames",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"SessionLayout.{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.dg_blank_fraction < 1.0:
            raise ValueError(
                f"SessionLayout.dg_blank_fraction must be in [0, 1), got {self.dg_blank_fraction!r}"
            )

    @classmethod
    def full(cls) -> SessionLayout:
        """The real Allen session lengths: about 110,000 frames (1 h) for three_session_A."""
        return cls(
            dg_repeats=15,
            nm2_frames=900,
            nm2_repeats=10,
            nm3_frames=3600,
            nm3_repeats_per_block=5,
            flashes_per_block=2000,
            spontaneous_frames=8880,
        )


@dataclass
class StimulusTable:
    """Presentations of one stimulus, as an Allen NWB ``/stimulus/presentation`` group holds them.

    Attributes:
        kind: ``"gratings"`` (``data`` rows of features), ``"indexed"`` (``data`` is a
            template index), or ``"spontaneous"`` (on/off events).
        frame_duration: First and last 2-photon frame of each presentation, shape (N, 2), int64.
        data: Per-presentation features, shape (N, K) float64 for gratings, (N,) int for
            indexed stimuli.
        features: Names of the feature columns (gratings only).
        feature_units: Units of the feature columns (gratings only).
    """

    kind: str
    frame_duration: list[tuple[int, int]] = field(default_factory=list)
    data: list = field(default_factory=list)
    features: tuple[str, ...] = ()
    feature_units: tuple[str, ...] = ()


@dataclass
class Schedule:
    """The stimulus schedule of one session.

    Attributes:
        session_type: One of :data:`SESSION_TYPES`.
        n_frames: Number of 2-photon frames in the session.
        tables: Stimulus name (without ``_stimulus``) to its presentations.
        blocks: ``(stimulus, first frame, last frame)`` of each block in display order.
        template_lengths: Number of template frames of every templated stimulus.
    """

    session_type: str
    n_frames: int
    tables: dict[str, StimulusTable]
    blocks: list[tuple[str, int, int]]
    template_lengths: dict[str, int]


class _Builder:
    """Appends stimulus blocks at a moving 2-photon frame cursor."""

    def __init__(self, rng: np.random.Generator, layout: SessionLayout) -> None:
        self.rng = rng
        self.layout = layout
        self.cursor = LEAD_IN_FRAMES
        self.tables: dict[str, StimulusTable] = {}
        self.blocks: list[tuple[str, int, int]] = []
        self.template_lengths: dict[str, int] = {}
        self._flash_counter: dict[str, int] = {}
        self._dg_trials = self._draw_dg_trials()
        self._dg_blocks_shown = 0

    def _table(self, name: str, kind: str, **kwargs) -> StimulusTable:
        if name not in self.tables:
            self.tables[name] = StimulusTable(kind=kind, **kwargs)
        return self.tables[name]

    def _close_block(self, name: str, first: int) -> None:
        last = self.tables[name].frame_duration[-1][1]
        self.blocks.append((name, first, last))
        self.cursor = last + BLOCK_GAP_FRAMES

    def _draw_dg_trials(self) -> np.ndarray:
        directions, frequencies = np.meshgrid(DG_DIRECTIONS_DEG, DG_TEMPORAL_FREQUENCIES_HZ)
        conditions = np.stack([frequencies.ravel(), directions.ravel()], axis=1)
        trials = np.tile(conditions, (self.layout.dg_repeats, 1))
        trials = np.concatenate([trials, np.zeros((len(trials), 1))], axis=1)
        n_blank = int(round(self.layout.dg_blank_fraction * len(trials)))
        blanks = np.tile([np.nan, np.nan, 1.0], (n_blank, 1))
        trials = np.concatenate([trials, blanks])
        return trials[self.rng.permutation(len(trials))]

    def drifting_gratings(self) -> None:
        """One third of the trials (temporal frequency, direction, blank flag) per block."""
        table = self._table(
            "drifting_gratings",
            "gratings",
            features=("temporal_frequency", "orientation", "blank_sweep"),
            feature_units=("Hz", "degrees", "none"),
        )
        parts = np.array_split(np.arange(len(self._dg_trials)), 3)
        rows = self._dg_trials[parts[self._dg_blocks_shown % 3]]
        self._dg_blocks_shown += 1
        first = self.cursor
        starts = first + np.arange(len(rows)) * (DG_ON_FRAMES + DG_OFF_FRAMES)
        table.frame_duration.extend((int(s), int(s) + DG_ON_FRAMES) for s in starts)
        table.data.extend(rows.tolist())
        self._close_block("drifting_gratings", first)

    def static_gratings(self) -> None:
        table = self._table(
            "static_gratings",
            "gratings",
            features=("orientation", "spatial_frequency", "phase"),
            feature_units=("degrees", "cycles/degree", "cycles"),
        )
        n = self.layout.flashes_per_block
        rows = np.stack(
            [
                self.rng.choice(SG_ORIENTATIONS_DEG, n),
                self.rng.choice(SG_SPATIAL_FREQUENCIES_CPD, n),
                self.rng.choice(SG_PHASES_CYCLES, n),
            ],
            axis=1,
        )
        rows[self.rng.random(n) < 0.04] = np.nan  # blank flashes
        self._flashes("static_gratings", table, rows.tolist())

    def natural_scenes(self, n_images: int) -> None:
        table = self._table("natural_scenes", "indexed")
        self.template_lengths["natural_scenes"] = n_images
        images = self.rng.integers(-1, n_images, self.layout.flashes_per_block)  # -1 = blank
        self._flashes("natural_scenes", table, images.tolist())

    def sparse_noise(self, name: str) -> None:
        table = self._table(name, "indexed")
        start = self._flash_counter.get(name, 0)
        n = self.layout.flashes_per_block
        self._flash_counter[name] = start + n
        self.template_lengths[name] = start + n
        self._flashes(name, table, list(range(start, start + n)))

    def _flashes(self, name: str, table: StimulusTable, rows: list) -> None:
        first = self.cursor
        starts = first + np.arange(len(rows)) * FLASH_FRAMES
        table.frame_duration.extend((int(s), int(s) + FLASH_FRAMES) for s in starts)
        table.data.extend(rows)
        self._close_block(name, first)

    def movie(self, name: str, n_frames: int, n_repeats: int) -> None:
        table = self._table(name, "indexed")
        self.template_lengths[name] = n_frames
        first = self.cursor
        starts = first + np.arange(n_frames * n_repeats)
        table.frame_duration.extend((int(s), int(s) + 1) for s in starts)
        table.data.extend(np.tile(np.arange(n_frames), n_repeats).tolist())
        self._close_block(name, first)

    def spontaneous(self) -> None:
        table = self._table("spontaneous", "spontaneous")
        first = self.cursor
        table.frame_duration.append((first, first + self.layout.spontaneous_frames))
        self._close_block("spontaneous", first)


def build_schedule(
    *,
    session_type: str,
    layout: SessionLayout,
    rng: np.random.Generator,
    unsplittable_epochs: bool = False,
) -> Schedule:
    """Lay out the stimulus blocks of one session.

    Args:
        session_type: One of :data:`SESSION_TYPES`.
        layout: How long each stimulus runs.
        rng: Source of the trial order and flash contents.
        unsplittable_epochs: Append a fourth block of the session's first stimulus, which makes
            allensdk's ``get_stimulus_epoch_table`` raise ``EpochSeparationException`` (as it
            does for real sessions 556363813 and 659495103).

    Returns:
        The schedule, with frame indices counted from the session's first 2-photon frame.

    Raises:
        ValueError: If ``session_type`` is unknown.
    """
    b = _Builder(rng, layout)
    lay = layout
    nm1 = lambda: b.movie("natural_movie_one", 900, lay.nm1_repeats)  # noqa: E731
    nm2 = lambda: b.movie("natural_movie_two", lay.nm2_frames, lay.nm2_repeats)  # noqa: E731
    nm3 = lambda: b.movie("natural_movie_three", lay.nm3_frames, lay.nm3_repeats_per_block)  # noqa: E731
    ns = lambda: b.natural_scenes(118)  # noqa: E731
    lsn = lambda: b.sparse_noise("locally_sparse_noise")  # noqa: E731
    lsn4 = lambda: b.sparse_noise("locally_sparse_noise_4deg")  # noqa: E731
    lsn8 = lambda: b.sparse_noise("locally_sparse_noise_8deg")  # noqa: E731
    dg, sg, spont = b.drifting_gratings, b.static_gratings, b.spontaneous
    orders: dict[str, list[Callable[[], None]]] = {
        "three_session_A": [dg, nm1, nm3, dg, spont, nm3, dg],
        "three_session_B": [sg, ns, spont, ns, sg, nm1, sg, ns],
        "three_session_C": [lsn, spont, nm1, lsn, nm2, spont, lsn],
        "three_session_C2": [lsn4, lsn8, spont, nm1, lsn4, lsn8, nm2, spont, lsn4, lsn8],
    }
    if session_type not in orders:
        raise ValueError(f"session_type must be one of {list(SESSION_TYPES)}, got {session_type!r}")
    for step in orders[session_type]:
        step()
    if unsplittable_epochs:
        orders[session_type][0]()
    n_frames = b.blocks[-1][2] + LEAD_IN_FRAMES
    return Schedule(
        session_type=session_type,
        n_frames=n_frames,
        tables=b.tables,
        blocks=b.blocks,
        template_lengths=b.template_lengths,
    )
