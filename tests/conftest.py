"""Shared fixtures: registry isolation and tiny processed calcium sessions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch_brain.registry as registry
from omegaconf import OmegaConf
from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries

from poyocap_plugin.brainset import BRAINSET_ID

PIPELINE_DIR = Path(__file__).resolve().parents[1] / "brainsets_pipelines" / BRAINSET_ID


def load_pipeline_module(name: str):
    """Import ``<PIPELINE_DIR>/<name>.py`` once, under a private name (the folder is no package)."""
    module_name = f"_allen_calcium_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, PIPELINE_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def isolated_registry():
    """Snapshot torch_brain's modality registry (both dicts) and restore it afterwards."""
    modalities = dict(registry.MODALITY_REGISTRY)
    ids = dict(registry._ID_TO_MODALITY)
    yield registry
    registry.MODALITY_REGISTRY.clear()
    registry.MODALITY_REGISTRY.update(modalities)
    registry._ID_TO_MODALITY.clear()
    registry._ID_TO_MODALITY.update(ids)


def _split_trials(trials: Interval, rng: np.random.Generator) -> dict[str, Interval]:
    order = rng.permutation(len(trials))
    n_train, n_valid = int(0.7 * len(trials)), int(0.1 * len(trials))
    parts = {
        "train": order[:n_train],
        "valid": order[n_train : n_train + n_valid],
        "test": order[n_train + n_valid :],
    }
    return {
        name: Interval(start=trials.start[np.sort(i)], end=trials.end[np.sort(i)])
        for name, i in parts.items()
    }


def write_calcium_session(
    root: Path,
    *,
    session_id: str,
    n_units: int = 12,
    n_trials: int = 30,
    sampling_rate_hz: float = 30.0,
    seed: int = 0,
    cre_line: str = "Cux2-CreERT2",
    subject_id: str | None = None,
    skewness: np.ndarray | None = None,
    kurtosis: np.ndarray | None = None,
    stats_valid: np.ndarray | None = None,
    natural_movie_repeats: int = 0,
    movie_frames: int = 30,
) -> Path:
    """Write one tiny processed session in the plugin's data layout (DESIGN contract 7).

    Drifting-grating trials last 2 s with 1 s gaps; each unit prefers one direction class,
    so the orientation is decodable. ``units`` carries the pipeline's per-neuron columns
    (``skewness``, ``kurtosis``, ``stats_valid``, ``is_predictable``, ``cre_line``); the
    statistics are random unless given. With ``natural_movie_repeats > 0`` a
    ``natural_movie_one`` block of that many repeats of ``movie_frames`` frames (one 2P
    frame each) follows the gratings, split by repeat: the last two are valid and test.
    """
    rng = np.random.default_rng(seed)
    starts = np.arange(n_trials) * 3.0 + 1.0
    trials = Interval(start=starts, end=starts + 2.0)
    orientation = rng.integers(0, 8, n_trials)
    duration_s = float(starts[-1] + 3.0)
    movie = None
    if natural_movie_repeats:
        if natural_movie_repeats < 3:
            raise ValueError(
                f"natural_movie_repeats must be 0 or >= 3, got {natural_movie_repeats}"
            )
        frame_s = 1.0 / sampling_rate_hz
        frame_start = duration_s + frame_s * np.arange(natural_movie_repeats * movie_frames)
        movie = Interval(
            start=frame_start,
            end=frame_start + frame_s,
            timestamps=frame_start + frame_s / 2,
            frame=np.tile(np.arange(movie_frames), natural_movie_repeats).astype(np.int64),
            repeat=np.repeat(np.arange(natural_movie_repeats), movie_frames).astype(np.int64),
            timekeys=["start", "end", "timestamps"],
        )
        duration_s = float(frame_start[-1] + frame_s + 1.0)

    n_frames = int(duration_s * sampling_rate_hz)
    t = np.arange(n_frames) / sampling_rate_hz
    preferred = np.arange(n_units) % 8
    drive = np.zeros((n_frames, n_units), dtype=np.float32)
    for start, end, direction in zip(trials.start, trials.end, orientation, strict=True):
        frames = (t >= start) & (t < end)
        drive[frames] = (preferred == direction).astype(np.float32)
    df_over_f = drive + 0.1 * rng.standard_normal((n_frames, n_units)).astype(np.float32)

    grating = Interval(
        start=trials.start,
        end=trials.end,
        timestamps=(trials.start + trials.end) / 2,
        orientation_id=orientation.astype(np.int64),
        temporal_frequency_id=rng.integers(0, 5, n_trials).astype(np.int64),
        timekeys=["start", "end", "timestamps"],
    )
    splits = _split_trials(trials, rng)
    if movie is not None:
        for name, repeats in (
            ("train", np.arange(natural_movie_repeats - 2)),
            ("valid", [natural_movie_repeats - 2]),
            ("test", [natural_movie_repeats - 1]),
        ):
            frames = np.isin(movie.repeat, repeats)
            blocks = Interval(start=movie.start[frames], end=movie.end[frames]).coalesce()
            splits[name] = splits[name] | blocks
    random_skewness = rng.uniform(0.5, 6.0, n_units)
    random_kurtosis = rng.uniform(1.0, 40.0, n_units)
    skewness = random_skewness if skewness is None else np.asarray(skewness, dtype=np.float64)
    kurtosis = random_kurtosis if kurtosis is None else np.asarray(kurtosis, dtype=np.float64)
    if stats_valid is None:
        stats_valid = np.isfinite(skewness) & np.isfinite(kurtosis)
    stats_valid = np.asarray(stats_valid, dtype=bool)
    with np.errstate(invalid="ignore"):
        is_predictable = stats_valid & (skewness <= 3.51) & (kurtosis <= 22.62)
    extra = {} if movie is None else {"natural_movie_one": movie}
    data = Data(
        brainset=Data(id=BRAINSET_ID),
        subject=Data(id=subject_id or f"mouse_{session_id}", cre_line=cre_line),
        session=Data(id=session_id),
        units=ArrayDict(
            id=np.array([f"roi_{i}" for i in range(n_units)]),
            skewness=skewness,
            kurtosis=kurtosis,
            stats_valid=stats_valid,
            is_predictable=is_predictable,
            cre_line=np.array([cre_line] * n_units),
            df_over_f_mean=df_over_f.mean(axis=0).astype(np.float64),
            df_over_f_std=df_over_f.std(axis=0).astype(np.float64),
        ),
        calcium_traces=RegularTimeSeries(
            df_over_f=df_over_f, sampling_rate=sampling_rate_hz, domain_start=0.0
        ),
        drifting_gratings=grating,
        **extra,
        train_domain=splits["train"],
        valid_domain=splits["valid"],
        test_domain=splits["test"],
        domain=Interval(start=np.array([0.0]), end=np.array([n_frames / sampling_rate_hz])),
    )
    path = root / BRAINSET_ID / f"{session_id}.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        data.to_hdf5(f)
    return path


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A processed-data root with two tiny calcium sessions."""
    root = tmp_path_factory.mktemp("processed")
    for i in range(2):
        write_calcium_session(root, session_id=f"90000{i}", seed=i)
    return root


# Per-neuron statistics of the curriculum brainset: in a "dense" (predictable-line) session
# units 1-6 are predictable, unit 0 is not and unit 7 has NaN statistics; a "sparse" session
# mirrors it (unit 0 predictable, units 1-6 not, unit 7 NaN).
DENSE_SKEWNESS = [9.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, np.nan]
DENSE_KURTOSIS = [50.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
SPARSE_SKEWNESS = [1.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
SPARSE_KURTOSIS = [2.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, np.nan]

#: (session id, Cre line, subject id, shows natural movie one) of the curriculum brainset.
CURRICULUM_SESSIONS = (
    ("700000", "Sst-IRES-Cre", "sst_0", True),
    ("700001", "Sst-IRES-Cre", "sst_1", True),
    ("700002", "Vip-IRES-Cre", "vip_0", True),
    ("700003", "Pvalb-IRES-Cre", "pvalb_0", True),
    ("700004", "Ntsr1-Cre_GN220", "ntsr1_0", True),
    ("700005", "Cux2-CreERT2", "cux2_0", True),
    ("700006", "Cux2-CreERT2", "cux2_1", True),
    ("700007", "Rorb-IRES2-Cre", "rorb_0", False),
)
PAPER_LINES = ("Sst-IRES-Cre", "Vip-IRES-Cre", "Pvalb-IRES-Cre", "Ntsr1-Cre_GN220")


def write_curriculum_brainset(root: Path) -> Path:
    """Eight 8-unit sessions over six Cre lines (see CURRICULUM_SESSIONS); returns root."""
    for i, (session_id, line, subject, movie) in enumerate(CURRICULUM_SESSIONS):
        dense = line in PAPER_LINES
        write_calcium_session(
            root,
            session_id=session_id,
            n_units=8,
            n_trials=10,
            seed=i,
            cre_line=line,
            subject_id=subject,
            skewness=DENSE_SKEWNESS if dense else SPARSE_SKEWNESS,
            kurtosis=DENSE_KURTOSIS if dense else SPARSE_KURTOSIS,
            natural_movie_repeats=4 if movie else 0,
            movie_frames=10,
        )
    return root


@pytest.fixture(scope="session")
def curriculum_data_root(tmp_path_factory) -> Path:
    """A processed-data root with the eight sessions of CURRICULUM_SESSIONS."""
    return write_curriculum_brainset(tmp_path_factory.mktemp("curriculum"))


def write_nm1_frames_config(search_dir: Path, *, height: int, width: int) -> list[str]:
    """The shipped ``allen_calcium_nm1_frames`` dataset config, its metric sized height x width.

    The metric must score the frames the model decodes, and torch_brain's Dataset does not
    resolve interpolations, so a run at another frame size needs its own copy.

    Returns:
        The Hydra overrides that select it.
    """
    import yaml

    from poyocap_plugin.configs import __file__ as configs_init

    shipped = Path(configs_init).parent / "dataset" / "allen_calcium_nm1_frames.yaml"
    groups = yaml.safe_load(shipped.read_text())
    for group in groups:
        for readout in group["config"]["multitask_readout"]:
            for metric in readout["metrics"]:
                metric["metric"].update(height=height, width=width)
    name = f"allen_calcium_nm1_frames_{height}x{width}"
    (search_dir / "dataset").mkdir(parents=True, exist_ok=True)
    (search_dir / "dataset" / f"{name}.yaml").write_text(yaml.safe_dump(groups))
    return [f"hydra.searchpath=[file://{search_dir}]", f"dataset={name}"]


#: train.py seed of the stage-1 checkpoints below
PROBE_SEED = 3


def stage1_run_config(data_root) -> dict:
    """A stage-1 config as train.py saves it: plain containers, interpolations unresolved."""
    return {
        "model": {
            "_target_": "poyocap_plugin.models.CAPOYO",
            "sequence_length": 1.0,
            "latent_step": 0.25,
            "num_latents_per_step": 2,
            "dim": 16,
            "depth": 1,
            "dim_head": 8,
            "cross_heads": 1,
            "self_heads": 2,
            "ffn_dropout": 0.0,
            "lin_dropout": 0.0,
            "atn_dropout": 0.0,
            "readouts": {"drifting_gratings_orientation": 0.01},
            "masking": {
                "_target_": "poyocap_plugin.nn.LatentMasking",
                "dim": "${model.dim}",
                "seed": "${seed}",
            },
        },
        "data_root": str(data_root),
        "dataset": [
            {
                "selection": [{"brainset": BRAINSET_ID}],
                "config": {
                    "sampling_intervals_modifier": "sampling_intervals = sampling_intervals"
                    " & data.drifting_gratings.coalesce(0.3)\n",
                    "multitask_readout": [
                        {"readout_id": "drifting_gratings_orientation", "metrics": []}
                    ],
                },
            }
        ],
        "neuron_sampler": {
            "_target_": "poyocap_plugin.neuron_sampler.NeuronSampler",
            "population": "predictable",
        },
        "eval_transforms": ["${neuron_sampler}"],
        "seed": PROBE_SEED,
    }


def write_stage1_checkpoint(
    path, data_root, *, trained: bool, scale: float = 0.5, noise_seed: int | None = None
):
    """A Lightning-style checkpoint of a model built as train.py builds it; ``trained``
    adds Gaussian noise of std ``scale`` (drawn with ``noise_seed``) to every weight."""
    import hydra
    from torch_brain.data import Dataset
    from torch_brain.registry import MODALITY_REGISTRY

    import poyocap_plugin.modalities  # noqa: F401

    config = stage1_run_config(data_root)
    cfg = OmegaConf.create(config)
    torch.manual_seed(cfg.seed)
    model = hydra.utils.instantiate(cfg.model, readout_specs=MODALITY_REGISTRY)
    dataset = Dataset(root=cfg.data_root, config=cfg.dataset, split="train")
    model.unit_emb.initialize_vocab(dataset.get_unit_ids())
    model.session_emb.initialize_vocab(dataset.get_session_ids())
    if trained:  # stands in for stage 1: any weights other than the initial ones
        generator = None if noise_seed is None else torch.Generator().manual_seed(noise_seed)
        with torch.no_grad():
            for parameter in model.parameters():
                noise = torch.randn(parameter.shape, generator=generator)
                parameter.add_(scale * noise)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": config}, path)
    return path
