"""Data-path throughput: NeuronSampler + UnitDropout + tokenize vs the stock UnitDropout + tokenize.

Both paths read the same windows of the same synthetic brainset through torch_brain 0.1.2's
``Dataset`` (lazy HDF5, as the stock trainer does) and end in ``CalciumPOYOPlus.tokenize``.
Each repeat times every window once per path (the paths alternate, so drift hits both), and
reseeds numpy's global RNG first (UnitDropout draws from it), so both paths see identical
windows and draws. Three paths: ``stock`` (UnitDropout + tokenize), ``plugin`` (the sampler
keeping the predictable half of the neurons, then the same) and ``plugin_all`` (the sampler
keeping every neuron: identical tokens to ``stock``, so its ratio is the sampler's bare
overhead). Reported: samples/s (median over repeats), the ratios to ``stock``, and the mean
number of input tokens per sample (selection shrinks the population before UnitDropout,
which changes the tokenizer's work).

Run (about a minute on 2 CPU cores)::

    .venv/bin/python benchmarks/bench_data_path.py --out bench_data_path.json
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np
import torch
import torch_brain
from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries
from torch_brain.data import Dataset
from torch_brain.data.sampler import RandomFixedWindowSampler
from torch_brain.models import CalciumPOYOPlus
from torch_brain.transforms import Compose, UnitDropout

from poyocap_plugin.neuron_sampler import NeuronSampler

logger = logging.getLogger("bench_data_path")

BRAINSET_ID = "allen_brain_observatory_calcium"
SAMPLING_RATE_HZ = 30.0
FIELD = "calcium_traces.df_over_f"

CONFIG = f"""
- selection:
    - brainset: {BRAINSET_ID}
  config:
    sampling_intervals_modifier: |
      sampling_intervals = sampling_intervals & data.drifting_gratings.coalesce(0.3)
    multitask_readout:
      - readout_id: drifting_gratings_orientation
        metrics: []
"""


def write_brainset(root: Path, *, n_sessions: int, n_units: int, n_trials: int, seed: int) -> None:
    """Sessions of DG trials (2 s on, 1 s off) with about half the neurons predictable."""
    rng = np.random.default_rng(seed)
    for s in range(n_sessions):
        start = 1.0 + 3.0 * np.arange(n_trials)
        n_frames = int((start[-1] + 3.0) * SAMPLING_RATE_HZ)
        trials = Interval(
            start=start,
            end=start + 2.0,
            timestamps=start + 1.0,
            orientation_id=rng.integers(0, 8, n_trials),
            timekeys=["start", "end", "timestamps"],
        )
        order = rng.permutation(n_trials)
        cut = int(0.7 * n_trials)
        split = {
            "train": np.sort(order[:cut]),
            "valid": np.sort(order[cut : cut + n_trials // 10]),
            "test": np.sort(order[cut + n_trials // 10 :]),
        }
        data = Data(
            brainset=Data(id=BRAINSET_ID),
            subject=Data(id=f"m{s}", cre_line="Sst-IRES-Cre"),
            session=Data(id=str(800_000 + s)),
            units=ArrayDict(
                id=np.array([f"roi_{i}" for i in range(n_units)]),
                skewness=rng.uniform(0.0, 7.0, n_units),
                kurtosis=rng.uniform(0.0, 45.0, n_units),
                stats_valid=np.ones(n_units, dtype=bool),
                cre_line=np.full(n_units, "Sst-IRES-Cre"),
            ),
            calcium_traces=RegularTimeSeries(
                df_over_f=rng.standard_normal((n_frames, n_units)).astype(np.float32),
                sampling_rate=SAMPLING_RATE_HZ,
                domain_start=0.0,
            ),
            drifting_gratings=trials,
            **{
                f"{name}_domain": Interval(start=start[i], end=start[i] + 2.0)
                for name, i in split.items()
            },
            domain=Interval(start=np.array([0.0]), end=np.array([n_frames / SAMPLING_RATE_HZ])),
        )
        path = root / BRAINSET_ID / f"{800_000 + s}.h5"
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            data.to_hdf5(f)


def _time(dataset: Dataset, windows: list, seed: int) -> tuple[float, float]:
    """Seconds to produce every window, and the mean input tokens per sample."""
    np.random.seed(seed)  # UnitDropout's draws
    tokens = 0
    start = time.perf_counter()
    for index in windows:
        sample = dataset[index]
        tokens += len(sample["model_inputs"]["input_unit_index"].obj)
    return time.perf_counter() - start, tokens / len(windows)


def run(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench_data_path_"))
    write_brainset(
        root, n_sessions=args.sessions, n_units=args.units, n_trials=args.trials, seed=args.seed
    )
    config = root / "dataset.yaml"
    config.write_text(CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        dataset = Dataset(str(root), config=str(config), split="train")
    model = CalciumPOYOPlus(
        sequence_length=args.window_length,
        latent_step=args.window_length / 4,
        num_latents_per_step=8,
        dim=32,
        depth=1,
        dim_head=16,
        readout_specs=torch_brain.MODALITY_REGISTRY,
    )
    model.unit_emb.initialize_vocab(dataset.get_unit_ids())
    model.session_emb.initialize_vocab(dataset.get_session_ids())
    sampler = RandomFixedWindowSampler(
        sampling_intervals=dataset.get_sampling_intervals(),
        window_length=args.window_length,
        generator=torch.Generator().manual_seed(args.seed),
    )
    windows = list(sampler)[: args.windows]
    dropout = dict(field=FIELD, min_units=20, mode_units=100, max_units=300, seed=args.seed)
    paths = {
        "stock": Compose([UnitDropout(**dropout), model.tokenize]),
        "plugin": Compose(
            [NeuronSampler(population="predictable"), UnitDropout(**dropout), model.tokenize]
        ),
        # keeps every neuron (all statistics are valid here): the sampler's bare overhead
        "plugin_all": Compose(
            [NeuronSampler(population="all"), UnitDropout(**dropout), model.tokenize]
        ),
    }
    for transform in paths.values():  # warm-up: file handles, lazy loads, caches
        dataset.transform = transform
        _time(dataset, windows[:10], args.seed)
    seconds = {name: [] for name in paths}
    tokens = {}
    for _ in range(args.repeats):
        for name, transform in paths.items():
            dataset.transform = transform
            elapsed, tokens[name] = _time(dataset, windows, args.seed)
            seconds[name].append(elapsed)
    result = {
        "setup": {
            "sessions": args.sessions,
            "units_per_session": args.units,
            "window_length_s": args.window_length,
            "windows": len(windows),
            "repeats": args.repeats,
            "torch_threads": torch.get_num_threads(),
        },
        "paths": {
            name: {
                "samples_per_s_median": len(windows) / statistics.median(seconds[name]),
                "samples_per_s_all": [len(windows) / s for s in seconds[name]],
                "mean_input_tokens": tokens[name],
            }
            for name in paths
        },
    }
    result["ratio_plugin_over_stock"] = (
        result["paths"]["plugin"]["samples_per_s_median"]
        / result["paths"]["stock"]["samples_per_s_median"]
    )
    result["ratio_plugin_all_over_stock"] = (
        result["paths"]["plugin_all"]["samples_per_s_median"]
        / result["paths"]["stock"]["samples_per_s_median"]
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=4, help="Synthetic sessions.")
    parser.add_argument("--units", type=int, default=400, help="Neurons per session.")
    parser.add_argument("--trials", type=int, default=120, help="DG trials per session.")
    parser.add_argument("--window-length", type=float, default=1.0, help="Window (s).")
    parser.add_argument("--windows", type=int, default=400, help="Windows timed per repeat.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed repeats per path.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of data, windows, dropout.")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run(args)
    print(f"{'path':<11} {'samples/s (median)':>19} {'mean input tokens':>18}")
    for name, row in result["paths"].items():
        print(f"{name:<11} {row['samples_per_s_median']:>19.1f} {row['mean_input_tokens']:>18.0f}")
    print(f"ratio plugin/stock:     {result['ratio_plugin_over_stock']:.3f}")
    print(f"ratio plugin_all/stock: {result['ratio_plugin_all_over_stock']:.3f}")
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
