# /// brainset-pipeline
# python-version = "3.11"
# dependencies = [
#   "allensdk==2.16.2",
#   "statsmodels==0.14.6",
#   "setuptools==81.0.0",
#   "temporaldata==0.1.6",
#   "pillow",
# ]
# ///
"""Allen Brain Observatory Visual Coding 2-photon sessions with POYO-CAP's predictability data.

Each ophys experiment becomes ``<processed>/allen_brain_observatory_calcium/<experiment_id>.h5``
holding dF/F (``calcium_traces.df_over_f``, time x units), the units with their Cre line, ROI
geometry and predictability statistics (skewness and kurtosis on the training split, see
``neuron_stats.py``), the drifting-grating trials and natural-movie frames with their labels,
running speed, pupil tracking when present, stimulus epochs, and POYO-CAP's splits (see
``split.py``). The natural-movie-one frames are stored once per brainset (``nm1_template.py``).

Run it with ``brainsets prepare allen_brain_observatory_calcium --raw-dir R --processed-dir P``.
By default the manifest is the 433 three_session_A experiments of POYO-CAP
(``session_ids.txt``), downloaded through allensdk's BrainObservatoryCache into
``R/allen_brain_observatory_calcium/ophys_experiment_data/`` (no request for a file already
there). ``--use-raw-files`` processes every ``<id>.nwb`` already under that raw folder instead,
e.g. sessions written by ``poyocap simulate``.

A session allensdk cannot split into stimulus epochs, a truncated file, a session without
natural movie one, without ROIs or whose every ROI has an all-NaN or constant dF/F fails on
its own (status FAILED, with the session id and cause in the error); the others complete.
A finished session is skipped on a rerun unless ``--reprocess`` is given.

The isolated environment pins statsmodels below 0.15 (0.15 breaks allensdk's import) and
setuptools below 82 (allensdk needs ``pkg_resources``) with exact ``==`` pins: Ray re-runs the
``uv run --with ...`` command line through a shell for its workers, where ``<`` or ``>`` in a
requirement would be read as a redirection and kill every worker.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
from argparse import ArgumentParser, Namespace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from brainsets.pipeline import BrainsetPipeline
from temporaldata import Interval

# Sibling modules (split.py, extract.py, ...) must import whatever the working directory:
# ``brainsets prepare --use-active-env`` does not change into this folder.
_PIPELINE_DIR = str(Path(__file__).resolve().parent)
if _PIPELINE_DIR not in sys.path:
    sys.path.insert(0, _PIPELINE_DIR)

from extract import (  # noqa: E402
    cre_line_from_metadata,
    donor_from_metadata,
    extract_calcium_traces,
    extract_drifting_gratings,
    extract_epochs,
    extract_frame_presentations,
    extract_pupil,
    extract_running,
    extract_static_gratings,
    extract_units,
)
from neuron_stats import check_usable_units, extract_predictability_stats  # noqa: E402
from nm1_template import store_or_check_template  # noqa: E402
from split import (  # noqa: E402
    build_split_domains,
    frames_in_domain,
    repeat_intervals,
    split_repeats,
    split_trials,
)

logger = logging.getLogger(__name__)

BRAINSET_ID = "allen_brain_observatory_calcium"
NWB_SUBDIR = "ophys_experiment_data"
SESSION_IDS_FILE = Path(__file__).resolve().parent / "session_ids.txt"
MAX_DOWNLOAD_ATTEMPTS = 3

parser = ArgumentParser(prog=BRAINSET_ID, description=__doc__.splitlines()[0])
parser.add_argument(
    "--redownload",
    action="store_true",
    help="Delete and download again NWB files already in the raw folder (default manifest only).",
)
parser.add_argument(
    "--reprocess",
    action="store_true",
    help="Process sessions again even if their .h5 file already exists.",
)
parser.add_argument(
    "--use-raw-files",
    action="store_true",
    help=(
        "Process every <experiment_id>.nwb already under <raw-dir>/allen_brain_observatory_calcium "
        "instead of the 433 POYO-CAP experiments of session_ids.txt; nothing is downloaded."
    ),
)
parser.add_argument(
    "--session-ids",
    type=Path,
    default=None,
    help="Text file of experiment ids (one per line, '#' comments) replacing session_ids.txt.",
)
parser.add_argument(
    "--template-size",
    type=int,
    nargs=2,
    default=(128, 256),
    metavar=("HEIGHT", "WIDTH"),
    help="Size (pixels) of the stored natural-movie-one frames, LANCZOS-resized (default 128 256).",
)
parser.add_argument(
    "--split-seed",
    type=int,
    default=42,
    help="Seed of the drifting-grating trial split, the same for every session (default 42).",
)


class DownloadOutput(NamedTuple):
    session_id: str
    nwb_file: Path
    output_file: Path
    skip: bool


# --------------------------------------------------------------------------------------------
# Manifest helpers
# --------------------------------------------------------------------------------------------


def read_session_ids(path: Path) -> list[str]:
    """Experiment ids listed in ``path``: one integer per line, ``#`` starts a comment."""
    ids = []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not text.isdigit():
            raise ValueError(f"{path}:{number}: expected an experiment id, got {text!r}")
        ids.append(text)
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: experiment ids are listed more than once")
    return ids


def find_raw_files(raw_dir: Path) -> dict[str, Path]:
    """Every ``<experiment_id>.nwb`` under ``raw_dir``, by experiment id (str).

    Raises:
        ValueError: If two files share an experiment id.
    """
    found: dict[str, Path] = {}
    for path in sorted(Path(raw_dir).rglob("*.nwb")):
        if not path.stem.isdigit():
            logger.warning("ignoring %s: its name is not <experiment_id>.nwb", path)
            continue
        if path.stem in found:
            raise ValueError(f"experiment {path.stem} has two files: {found[path.stem]} and {path}")
        found[path.stem] = path
    return found


# The pipeline
# --------------------------------------------------------------------------------------------


class Pipeline(BrainsetPipeline):
    """Downloads (or finds) Allen ophys NWB files and writes one processed .h5 per session.

    ``get_manifest`` runs on the root process; ``download`` and ``process`` run per session,
    in parallel workers unless ``-s`` picks one.
    """

    brainset_id = BRAINSET_ID
    parser = parser

    @classmethod
    def get_manifest(cls, raw_dir: Path, args: Namespace | None) -> pd.DataFrame:
        """Sessions to prepare, indexed by ``session_id`` (the experiment id as a str)."""
        args = parser.parse_args([]) if args is None else args
        raw_dir = Path(raw_dir)
        if args.use_raw_files:
            files = find_raw_files(raw_dir)
            if not files:
                raise FileNotFoundError(
                    f"--use-raw-files: no <experiment_id>.nwb under {raw_dir}; write some with "
                    "`poyocap simulate --out-dir <raw-dir>` or drop the flag to download."
                )
            ids = sorted(files)
            paths = [files[i] for i in ids]
        else:
            ids = read_session_ids(args.session_ids or SESSION_IDS_FILE)
            paths = [raw_dir / NWB_SUBDIR / f"{i}.nwb" for i in ids]
            from allensdk.core.brain_observatory_cache import BrainObservatoryCache

            # Built once here so that workers find manifest.json instead of racing to write it.
            BrainObservatoryCache(manifest_file=str(raw_dir / "manifest.json"))
        manifest = pd.DataFrame(
            {"experiment_id": [int(i) for i in ids], "nwb_file": [str(p) for p in paths]},
            index=pd.Index(ids, name="session_id"),
        )
        return manifest

    def _output_file(self, session_id: str) -> Path:
        return Path(self.processed_dir) / f"{session_id}.h5"

    def download(self, manifest_item) -> DownloadOutput:
        """Make sure the session's NWB file is present and readable; download it if needed."""
        session_id = str(manifest_item.Index)
        nwb_file = Path(manifest_item.nwb_file)
        output_file = self._output_file(session_id)
        if output_file.exists() and not self.args.reprocess:
            return DownloadOutput(session_id, nwb_file, output_file, skip=True)
        if self.args.use_raw_files:
            if not nwb_file.exists():
                raise FileNotFoundError(f"session {session_id}: {nwb_file} disappeared")
            self._open(session_id, nwb_file, existed=True)
            return DownloadOutput(session_id, nwb_file, output_file, skip=False)
        if self.args.redownload and nwb_file.exists():
            nwb_file.unlink()
        existed = nwb_file.exists()
        if not existed:
            self.update_status("DOWNLOADING")
        for attempt in range(1, MAX_DOWNLOAD_ATTEMPTS + 1):
            try:
                self._open(session_id, nwb_file, existed=existed)
                break
            except OSError:
                if existed or attempt == MAX_DOWNLOAD_ATTEMPTS:
                    raise
                logger.warning("session %s: download %d was corrupt, retrying", session_id, attempt)
                nwb_file.unlink(missing_ok=True)
        return DownloadOutput(session_id, nwb_file, output_file, skip=False)

    def _open(self, session_id: str, nwb_file: Path, *, existed: bool):
        from allensdk.core.brain_observatory_cache import BrainObservatoryCache

        cache = BrainObservatoryCache(manifest_file=str(Path(self.raw_dir) / "manifest.json"))
        try:
            return cache.get_ophys_experiment_data(
                ophys_experiment_id=int(session_id), file_name=str(nwb_file)
            )
        except OSError as error:
            fix = (
                "rerun with --redownload"
                if existed and not self.args.use_raw_files
                else "replace or remove the file"
            )
            raise OSError(
                f"session {session_id}: cannot read {nwb_file}; the file is truncated or "
                f"corrupt ({error}). {fix}."
            ) from error

    def process(self, download_output: DownloadOutput) -> None:
        """Read one NWB file with allensdk and write its processed .h5 atomically."""
        from allensdk.core.brain_observatory_nwb_data_set import (
            BrainObservatoryNwbDataSet,
            EpochSeparationException,
        )

        session_id, nwb_file, output_file, skip = download_output
        if skip:
            self.update_status("Already processed")
            return
        self.update_status("PROCESSING")
        dataset = BrainObservatoryNwbDataSet(str(nwb_file))
        try:
            epoch_table = dataset.get_stimulus_epoch_table()
        except EpochSeparationException as error:
            raise RuntimeError(
                f"session {session_id}: allensdk cannot split the stimulus epochs of {nwb_file} "
                f"(EpochSeparationException: {error}); the session is skipped. Real sessions "
                "such as 556363813 and 659495103 have this defect; remove the id from the "
                "manifest to silence this error."
            ) from error
        try:
            data = _assemble(self, dataset, session_id, epoch_table)
        except (ValueError, KeyError, IndexError, OSError) as error:
            if str(error).startswith(f"session {session_id}:"):
                raise
            raise RuntimeError(
                f"session {session_id}: cannot assemble {nwb_file}: {type(error).__name__}: {error}"
            ) from error
        self.update_status("WRITING")
        _write_atomically(data, output_file)
        logger.info("session %s written to %s", session_id, output_file)


def _assemble(pipeline: Pipeline, dataset, session_id: str, epoch_table: pd.DataFrame):
    """Build the session's Data object from an allensdk BrainObservatoryNwbDataSet."""
    from allensdk.core.brain_observatory_nwb_data_set import (
        BrainObservatoryNwbDataSet,
        NoEyeTrackingException,
    )
    from brainsets.descriptions import (
        BrainsetDescription,
        DeviceDescription,
        SessionDescription,
        SubjectDescription,
    )
    from temporaldata import Data

    args = pipeline.args
    metadata = dataset.get_metadata()
    if str(metadata.get("ophys_experiment_id")) != session_id:
        raise ValueError(
            f"session {session_id}: the NWB file says it is experiment "
            f"{metadata.get('ophys_experiment_id')!r}; rename the file or fix the manifest"
        )
    cre_line = cre_line_from_metadata(metadata, session_id)
    session_type = metadata["session_type"]

    timestamps, traces = dataset.get_dff_traces()
    if len(traces) == 0:
        check_usable_units({"stats_valid": np.zeros(0, dtype=bool)}, session_id=session_id)
    calcium = extract_calcium_traces(timestamps, traces)
    units = extract_units(dataset.get_roi_ids(), dataset.get_roi_mask_array(), cre_line)

    stimuli: dict[str, Interval] = {}
    for name in dataset.list_stimuli():
        table = dataset.get_stimulus_table(name)
        if name == "drifting_gratings":
            stimuli[name] = extract_drifting_gratings(table, timestamps)
        elif name == "static_gratings":
            stimuli[name] = extract_static_gratings(table, timestamps)
        elif "frame" in table.columns:
            stimuli[name] = extract_frame_presentations(table, timestamps)
            if n_zero_length := len(table) - len(stimuli[name]):
                logger.info(
                    "session %s: %d of %d %s presentations have zero length (one 2-photon "
                    "frame saw none of them): left out of the frame targets",
                    session_id,
                    n_zero_length,
                    len(table),
                    name,
                )
    if "natural_movie_one" not in stimuli:
        raise ValueError(f"session {session_id} ({session_type}) has no natural_movie_one table")

    # Splits: DG by trial, NM1 by repeat.
    parts = []
    if "drifting_gratings" in stimuli:
        dg = stimuli["drifting_gratings"]
        parts.append((dg.start, dg.end, split_trials(len(dg), seed=args.split_seed)))
    nm1 = stimuli["natural_movie_one"]
    repeats = repeat_intervals(nm1.start, nm1.end, nm1.repeat)
    parts.append((repeats.start, repeats.end, split_repeats(repeats.repeat)))
    domains = build_split_domains(parts)

    # Predictability statistics on the training split's frames only.
    train_frames = frames_in_domain(calcium.timestamps, domains["train"])
    statistics = extract_predictability_stats(calcium.df_over_f[train_frames])
    n_invalid = check_usable_units(statistics, session_id=session_id)
    if n_invalid:
        logger.warning(
            "session %s: %d of %d ROIs have all-NaN or constant dF/F on the training split; "
            "they are stored with stats_valid=False and never selected",
            session_id,
            n_invalid,
            len(statistics["stats_valid"]),
        )
    for key, value in statistics.items():
        setattr(units, key, value)

    template = BrainObservatoryNwbDataSet.get_stimulus_template.__wrapped__(
        dataset, "natural_movie_one"
    )  # bypasses allensdk's unbounded template cache
    height, width = args.template_size
    store_or_check_template(
        Path(pipeline.processed_dir), template, height=height, width=width, session_id=session_id
    )
    del template

    speed, speed_timestamps = dataset.get_running_speed()
    extras = {"running": extract_running(speed, speed_timestamps)}
    try:
        pupil_timestamps, location = dataset.get_pupil_location(as_spherical=True)
        _, size = dataset.get_pupil_size()
        extras["pupil"] = extract_pupil(pupil_timestamps, location, size)
    except NoEyeTrackingException:
        logger.info("session %s has no eye tracking; no pupil data", session_id)

    start_time = metadata.get("session_start_time")
    return Data(
        brainset=BrainsetDescription(
            id=BRAINSET_ID,
            origin_version="Allen Brain Observatory Visual Coding 2-photon (allensdk 2.16.2)",
            derived_version="1.0.0",
            source="https://observatory.brain-map.org/visualcoding",
            description=(
                "Allen Brain Observatory 2-photon calcium imaging (dF/F) of mouse visual cortex "
                "with drifting-grating and natural-movie labels, per-neuron predictability "
                "statistics and the POYO-CAP splits."
            ),
        ),
        subject=SubjectDescription(
            id=donor_from_metadata(metadata, session_id),
            species="Mus musculus",
            age=metadata.get("age_days"),
            sex=metadata.get("sex") or None,
            cre_line=cre_line,
            genotype=str(metadata.get("genotype", "")),
        ),
        session=SessionDescription(
            id=session_id,
            recording_date=start_time if isinstance(start_time, datetime.datetime) else None,
            session_type=session_type,
        ),
        device=DeviceDescription(
            id=str(metadata.get("device_name") or "two_photon_microscope"),
            recording_tech="two_photon_calcium_imaging",
            imaging_depth=float(metadata["imaging_depth_um"]),
            target_area=str(metadata["targeted_structure"]),
        ),
        units=units,
        calcium_traces=calcium,
        **stimuli,
        **extras,
        **extract_epochs(epoch_table, timestamps),
        train_domain=domains["train"],
        valid_domain=domains["valid"],
        test_domain=domains["test"],
        domain=calcium.domain,
    )


def _write_atomically(data, output_file: Path) -> None:
    """Write ``data`` to ``output_file`` through a temporary name, then rename.

    The temporary file, ``.<name>.<pid>.partial``, does not match the ``*.h5`` glob of
    torch_brain's Dataset, and the rename is atomic on one filesystem, so a reader sees
    either no file or a complete one, even if the process is killed mid-write. Leftovers of
    a killed earlier attempt at the same session are removed first.
    """
    import h5py
    from brainsets import serialize_fn_map

    output_file = Path(output_file)
    for stale in output_file.parent.glob(f".{output_file.name}.*.partial"):
        logger.warning("removing %s, left by an interrupted earlier write", stale)
        stale.unlink(missing_ok=True)
    partial = output_file.with_name(f".{output_file.name}.{os.getpid()}.partial")
    try:
        with h5py.File(partial, "w") as f:
            data.to_hdf5(f, serialize_fn_map=serialize_fn_map)
        os.replace(partial, output_file)
    finally:
        partial.unlink(missing_ok=True)
