"""Write one Allen Visual Coding ophys session as an NWB 1.x HDF5 file, with h5py only.

The layout is the one allensdk 2.16.2's ``BrainObservatoryNwbDataSet`` reads from the 2016
Brain Observatory files: metadata under ``/general``, the processing module
``/processing/brain_observatory_pipeline`` (dF/F, fluorescence, segmentation, running, eye
tracking), stimulus tables under ``/stimulus/presentation`` and templates under
``/stimulus/templates``. Three details matter to allensdk:

* metadata strings are fixed-length bytes (a variable-length string breaks ``get_metadata``);
* every child of ``/stimulus/presentation`` counts as a stimulus, so nothing else goes there;
* a presentation's link to its template is a soft link (a hard link would be walked by
  allensdk's dataset search and mistaken for the table's ``data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from poyocap_plugin.workflow.simulate.timeline import Schedule

PROCESSING = "processing/brain_observatory_pipeline"


@dataclass
class RoiShape:
    """One ROI as a boolean mask over its bounding box.

    Attributes:
        top: Row of the box's first pixel in the imaging plane.
        left: Column of the box's first pixel in the imaging plane.
        mask: Pixels inside the ROI, shape (h, w), bool.
    """

    top: int
    left: int
    mask: np.ndarray


@dataclass
class NwbSession:
    """Everything written to one file. Times are seconds; frame indices index ``timestamps``.

    Attributes:
        experiment_id: Ophys experiment id (the file's ``/general/session_id``).
        container_id: Experiment container id (one imaging plane of one mouse).
        specimen_name: The mouse (Allen's donor), e.g. ``"Cux2-CreERT2;simulated-1"``;
            several containers may share it.
        session_type: One of the allensdk session types.
        genotype: Full genotype; its first ``;`` field is the Cre line with a ``/wt`` suffix.
        age_days: Age of the mouse (days).
        sex: ``"male"`` or ``"female"``.
        imaging_depth_um: Imaging depth (micrometres).
        targeted_structure: Visual area, e.g. ``"VISp"``.
        session_start_time: Start time, in the ``"Thu Feb  4 10:25:24 2016"`` format.
        timestamps: 2-photon frame times (s), shape (T,).
        dff: dF/F, shape (T, N), float32.
        roi_ids: ROI ids, shape (N,), int64.
        cell_specimen_ids: Cell specimen ids, shape (N,), int64.
        rois: Mask of every ROI.
        plane_px: Side of the square imaging plane (pixels).
        schedule: Stimulus tables, in frame indices.
        templates: Stimulus templates by stimulus name, each (F, H, W) uint8.
        running_speed: Running speed (cm/s), shape (T,), NaN where not measured.
        pupil_location_deg: Pupil azimuth and altitude (degrees), shape (T, 2), or None.
        pupil_size: Pupil area (pixels), shape (T,), or None.
        motion_px: Motion-correction translation (pixels), shape (T, 2).
    """

    experiment_id: int
    container_id: int
    specimen_name: str
    session_type: str
    genotype: str
    age_days: int
    sex: str
    imaging_depth_um: int
    targeted_structure: str
    session_start_time: str
    timestamps: np.ndarray
    dff: np.ndarray
    roi_ids: np.ndarray
    cell_specimen_ids: np.ndarray
    rois: list[RoiShape]
    plane_px: int
    schedule: Schedule
    templates: dict[str, np.ndarray]
    running_speed: np.ndarray
    pupil_location_deg: np.ndarray | None
    pupil_size: np.ndarray | None
    motion_px: np.ndarray


def _text(value: str) -> np.bytes_:
    return np.bytes_(value.encode("utf-8"))


def _texts(values) -> np.ndarray:
    return np.array([str(v).encode("utf-8") for v in values], dtype="S")


def _put_text(group: h5py.Group, name: str, value: str) -> None:
    group.create_dataset(name, data=_text(value))


def _series(
    parent: h5py.Group,
    name: str,
    data: np.ndarray,
    timestamps: np.ndarray,
    *,
    unit: str,
    kind: str = "TimeSeries",
    **dataset_options,
) -> h5py.Group:
    """An NWB-1 TimeSeries group holding ``data`` and its ``timestamps`` (s)."""
    group = parent.create_group(name)
    group.attrs["neurodata_type"] = _text("TimeSeries")
    group.attrs["ancestry"] = _texts(["TimeSeries", kind])
    group.attrs["source"] = _text("poyocap_plugin.workflow.simulate")
    values = group.create_dataset("data", data=data, **dataset_options)
    values.attrs["unit"] = _text(unit)
    values.attrs["conversion"] = 1.0
    values.attrs["resolution"] = np.nan
    group.create_dataset("timestamps", data=np.asarray(timestamps, dtype=np.float64))
    group.create_dataset("num_samples", data=np.int64(len(timestamps)))
    return group


def _write_general(f: h5py.File, s: NwbSession) -> None:
    _put_text(f, "nwb_version", "NWB-1.0.5")
    _put_text(f, "identifier", f"poyocap-simulated-{s.experiment_id}")
    _put_text(f, "session_description", f"simulated Allen Brain Observatory {s.session_type}")
    _put_text(f, "session_start_time", s.session_start_time)
    f.create_dataset("file_create_date", data=_texts([s.session_start_time]))
    for name in ("acquisition/timeseries", "acquisition/images", "analysis", "epochs"):
        f.require_group(name)
    general = f.create_group("general")
    _put_text(general, "session_id", str(s.experiment_id))
    general.create_dataset("experiment_container_id", data=np.int64(s.container_id))
    _put_text(general, "session_type", s.session_type)
    _put_text(general, "specimen_name", s.specimen_name)
    _put_text(general, "targeted_structure", s.targeted_structure)
    _put_text(general, "fov", f"400x400 microns ({s.plane_px} x {s.plane_px} pixels)")
    # allensdk reads the pipeline version from the last element.
    general.create_dataset("generated_by", data=_texts(["poyocap_plugin.workflow.simulate", "3.0"]))
    subject = general.create_group("subject")
    _put_text(subject, "age", f"{s.age_days} days")
    _put_text(subject, "sex", s.sex)
    _put_text(subject, "genotype", s.genotype)
    _put_text(subject, "species", "Mus musculus")
    _put_text(subject, "subject_id", s.specimen_name)
    devices = general.create_group("devices")
    # allensdk splits this on "<device>. <name> Please" into device and device_name.
    _put_text(
        devices,
        "2-photon microscope",
        "Nikon A1R-MP multiphoton microscope. CAM2P.1 Please note: simulated session",
    )
    plane = general.create_group("optophysiology/imaging_plane_1")
    _put_text(plane, "imaging depth", f"{s.imaging_depth_um} microns")
    _put_text(plane, "location", s.targeted_structure)
    _put_text(plane, "excitation_lambda", "910 nanometers")
    _put_text(plane, "indicator", "GCaMP6f")
    _put_text(plane, "imaging_rate", "30 Hz")
    _put_text(plane, "device", "2-photon microscope")


def _write_segmentation(module: h5py.Group, s: NwbSession) -> list[str]:
    segmentation = module.create_group("ImageSegmentation")
    segmentation.create_dataset("roi_ids", data=_texts(s.roi_ids))
    segmentation.create_dataset("cell_specimen_ids", data=np.asarray(s.cell_specimen_ids))
    plane = segmentation.create_group("imaging_plane_1")
    names = [f"roi_{r}" for r in s.roi_ids]
    plane.create_dataset("roi_list", data=_texts(names))
    _put_text(plane, "imaging_plane_name", "imaging_plane_1")
    side = s.plane_px
    projection = np.zeros((side, side), dtype=np.uint8)
    for name, roi in zip(names, s.rois, strict=True):
        group = plane.create_group(name)
        h, w = roi.mask.shape
        # Chunked with a zero fill value: only the chunks under the ROI are stored.
        mask = group.create_dataset(
            "img_mask",
            shape=(side, side),
            dtype=np.float32,
            chunks=(32, 32),
            fillvalue=0.0,
            compression="gzip",
        )
        mask[roi.top : roi.top + h, roi.left : roi.left + w] = roi.mask.astype(np.float32)
        ys, xs = np.nonzero(roi.mask)
        pixels = np.stack([xs + roi.left, ys + roi.top], axis=1).astype(np.uint16)
        group.create_dataset("pix_mask", data=pixels)
        group.create_dataset("pix_mask_weight", data=np.ones(len(pixels), dtype=np.float32))
        box = projection[roi.top : roi.top + h, roi.left : roi.left + w]
        box[roi.mask] = 200
    reference = plane.create_group("reference_images/maximum_intensity_projection_image")
    reference.create_dataset("data", data=projection)
    return names


def _write_processing(f: h5py.File, s: NwbSession) -> None:
    module = f.create_group(PROCESSING)
    module.attrs["neurodata_type"] = _text("Module")
    names = _write_segmentation(module, s)
    ts = s.timestamps
    traces = np.ascontiguousarray(s.dff.T)  # allensdk stores (n_rois, T)
    dff = _series(module.create_group("DfOverF"), "imaging_plane_1", traces, ts, unit="None")
    dff.create_dataset("roi_names", data=_texts(names))

    fluorescence = module.create_group("Fluorescence")
    raw = _series(fluorescence, "imaging_plane_1", 400.0 * (1.0 + traces), ts, unit="None")
    raw.create_dataset("roi_names", data=_texts(names))
    demixed = fluorescence.create_group("imaging_plane_1_demixed_signal")
    demixed["data"] = raw["data"]  # hard link: demixing is the identity here
    demixed.create_dataset("timestamps", data=ts)
    neuropil = fluorescence.create_group("imaging_plane_1_neuropil_response")
    # A constant neuropil, stored as a fill value so it costs no disk space.
    neuropil.create_dataset(
        "data", shape=traces.shape, dtype=np.float32, chunks=True, fillvalue=120.0
    )
    neuropil.create_dataset("timestamps", data=ts)
    neuropil.create_dataset("r", data=np.full(len(names), 0.7))

    motion = module.create_group("MotionCorrection/2p_image_series")
    shift = _series(motion, "xy_translation", s.motion_px, ts, unit="pixels")
    shift.create_dataset("feature_description", data=_texts(["x_motion", "y_motion"]))

    behaviour = module.create_group("BehavioralTimeSeries")
    _series(behaviour, "running_speed", s.running_speed, ts, unit="cm/s")

    if s.pupil_location_deg is not None and s.pupil_size is not None:
        eye = module.create_group("EyeTracking")
        _series(eye, "pupil_location_spherical", s.pupil_location_deg, ts, unit="degrees")
        # Degrees to cm on a screen 15 cm away (small-angle approximation).
        centimetres = np.deg2rad(s.pupil_location_deg) * 15.0
        _series(eye, "pupil_location", centimetres, ts, unit="cm")
        _series(module.create_group("PupilTracking"), "pupil_size", s.pupil_size, ts, unit="pixels")


def _write_stimuli(f: h5py.File, s: NwbSession) -> None:
    presentation = f.create_group("stimulus/presentation")
    templates = f.create_group("stimulus/templates")
    ts = s.timestamps
    for name, table in s.schedule.tables.items():
        frames = np.asarray(table.frame_duration, dtype=np.int64)
        if table.kind == "gratings":
            group = _series(
                presentation,
                f"{name}_stimulus",
                np.asarray(table.data, dtype=np.float64),
                ts[frames[:, 0]],
                unit="None",
                kind="AbstractFeatureSeries",
            )
            group.create_dataset("features", data=_texts(table.features))
            group.create_dataset("feature_units", data=_texts(table.feature_units))
        elif table.kind == "spontaneous":
            # One +1 event at a block's first frame and one -1 at its last.
            events = np.tile(np.array([1, -1], dtype=np.int8), len(frames))
            frames = np.repeat(frames.ravel(), 2).reshape(-1, 2)
            group = _series(
                presentation,
                f"{name}_stimulus",
                events,
                ts[frames[:, 0]],
                unit="None",
                kind="IntervalSeries",
            )
        else:
            group = _series(
                presentation,
                f"{name}_stimulus",
                np.asarray(table.data, dtype=np.int32),
                ts[frames[:, 0]],
                unit="None",
                kind="IndexSeries",
            )
            group["indexed_timeseries"] = h5py.SoftLink(f"/stimulus/templates/{name}_image_stack")
        group.create_dataset("frame_duration", data=frames)
    for name, stack in s.templates.items():
        group = templates.create_group(f"{name}_image_stack")
        group.attrs["neurodata_type"] = _text("TimeSeries")
        group.create_dataset(
            "data", data=stack, chunks=(1, *stack.shape[1:]), compression="gzip", compression_opts=1
        )
        group.create_dataset("dimension", data=np.asarray(stack.shape[:0:-1], dtype=np.int32))
        _put_text(group, "format", "raw")
        group.create_dataset("bits_per_pixel", data=np.int32(8))


def write_session_nwb(path: Path, session: NwbSession) -> None:
    """Write ``session`` to ``path`` (overwritten) in the Allen 2016 ophys NWB layout.

    Args:
        path: Destination file.
        session: The session's metadata, traces, ROIs, stimuli and behaviour.
    """
    with h5py.File(path, "w") as f:
        _write_general(f, session)
        _write_processing(f, session)
        _write_stimuli(f, session)
