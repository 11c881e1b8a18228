"""Data-path throughput: the plugin's stage transforms + CAPOYO.tokenize vs the stock path.

Every path reads the same windows of the same simulated brainset through torch_brain 0.1.2's
``Dataset`` (lazy HDF5, as the stock trainer's DataLoader workers do), in one process (one
worker). Per stage:

- ``stock``: ``UnitDropout`` + ``CalciumPOYOPlus.tokenize`` (stage 2: decoding torch_brain's
  ``natural_movie_one_frame`` class on the same one-frame windows);
- ``plugin_all``: ``NeuronSampler(population="all")`` (+ ``MovieFrameTargets`` in stage 2) +
  ``UnitDropout`` + ``CAPOYO.tokenize``: the same neurons and the same dropout draws as
  ``stock``, so its time over stock's is the plugin's own overhead (the issue's target);
- ``plugin``: the stage's population (predictable in stage 1, unpredictable in stage 2),
  which shrinks the tokens and so usually takes less time than stock.

Each repeat times every window once per path, window by window, the paths' order rotating
from one window to the next, so that load drift on a shared machine hits every path alike
(timing each path's whole pass in turn let drift between passes move the ratio by 0.2).
Before each sample numpy's global RNG is reseeded from the window's index (UnitDropout draws
from it), so every path sees the same draws.
Reported: per-sample latency (ms, median over repeats, with min and max), samples/s per
worker, mean input tokens per sample, and each path's time over stock's.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import h5py
import numpy as np
from _brainset import STAGE1_WINDOW_S, STAGE2_WINDOW_S, open_dataset, sample_windows
from _models import build_capoyo, build_stock
from bench_train_step import UNIT_DROPOUT
from torch_brain.transforms import Compose, UnitDropout

from poyocap_plugin.brainset import TEMPLATE_RELATIVE_PATH
from poyocap_plugin.movie import TEMPLATE_DATASET, MovieFrameTargets
from poyocap_plugin.neuron_sampler import NeuronSampler

STAGES = {
    "stage1": (STAGE1_WINDOW_S, "predictable"),
    "stage2": (STAGE2_WINDOW_S, "unpredictable"),
}


def _time_paths(paths: dict, windows: list, seed: int) -> dict[str, tuple[float, float]]:
    """Per path: seconds per sample and mean input tokens per sample, paths interleaved."""
    names = list(paths)
    seconds = dict.fromkeys(names, 0.0)
    tokens = dict.fromkeys(names, 0)
    for i, window in enumerate(windows):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            np.random.seed(seed + i)
            start = time.perf_counter()
            sample = paths[name][window]
            seconds[name] += time.perf_counter() - start
            tokens[name] += len(sample["model_inputs"]["input_unit_index"].obj)
    return {name: (seconds[name] / len(windows), tokens[name] / len(windows)) for name in names}


def _paths(root: Path, stage: str, seed: int) -> tuple[dict, float]:
    """The dataset of each path of one stage, its transforms set; and the window length."""
    window_s, population = STAGES[stage]
    stock_data = open_dataset(root, stage=stage, path="stock")
    template = root / TEMPLATE_RELATIVE_PATH
    with h5py.File(template, "r") as f:
        frame_size = tuple(f[TEMPLATE_DATASET].shape[1:])
    stock = build_stock(stage, "48k", window_s)  # tokenize does not depend on the size
    capoyo = build_capoyo(stage, "48k", window_s, frame_size)
    paths = {}
    for name, model, population_kept in (
        ("stock", stock, None),
        ("plugin_all", capoyo, "all"),
        ("plugin", capoyo, population),
    ):
        dataset = stock_data if name == "stock" else open_dataset(root, stage=stage, path="plugin")
        if model.unit_emb.is_lazy():
            model.unit_emb.initialize_vocab(dataset.get_unit_ids())
            model.session_emb.initialize_vocab(dataset.get_session_ids())
        transforms = [] if population_kept is None else [NeuronSampler(population=population_kept)]
        if stage == "stage2" and name != "stock":
            transforms.append(
                MovieFrameTargets(template_path=template, height=frame_size[0], width=frame_size[1])
            )
        transforms += [UnitDropout(**UNIT_DROPOUT, seed=seed), model.tokenize]
        dataset.transform = Compose(transforms)
        paths[name] = dataset
    return paths, window_s


def run_data_path(*, root: Path, windows: int = 400, repeats: int = 5, seed: int = 0) -> dict:
    """Per-sample latency of each path of each stage, and the ratios to the stock path."""
    result = {}
    for stage in STAGES:
        paths, window_s = _paths(root, stage, seed)
        chosen = sample_windows(paths["stock"], window_s=window_s, count=windows, seed=seed)
        _time_paths(paths, chosen[:20], seed)  # warm-up: file handles, caches, template
        seconds = {name: [] for name in paths}
        tokens = {}
        for _ in range(repeats):
            for name, (latency, tokens[name]) in _time_paths(paths, chosen, seed).items():
                seconds[name].append(latency)
        stock = statistics.median(seconds["stock"])
        result[stage] = {
            name: dict(
                latency_ms=1e3 * statistics.median(series),
                latency_ms_min=1e3 * min(series),
                latency_ms_max=1e3 * max(series),
                samples_per_s=1.0 / statistics.median(series),
                mean_input_tokens=tokens[name],
                time_over_stock=statistics.median(series) / stock,
            )
            for name, series in seconds.items()
        }
    return result


if __name__ == "__main__":
    from run_all import main

    main(["--only", "data_path"])
