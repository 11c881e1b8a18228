"""What a stage-1 trunk keeps of its input and of the stimulus, beside its random init.

Reads the stage-1 runs that ``bench_learning.py`` left (``<out>/work/stage1/<target>/
seed_<n>``). For each, the probe's windows (one per drifting-grating trial, training and
test split of every recording, ``poyocap probe``'s trials and transforms) go through the
pretrained trunk and the same architecture at random initialisation (the run's seed); each
window's processed latents are pooled two ways (their mean, ``D`` features; every latent,
``N_latent x D``). Fit on the training trials, scored on the test trials, per recording:

- ``direction``, ``temporal_frequency``: accuracy of a logistic regression (chance 1/8, 1/5);
- ``running``, ``population_mean``: R^2 of a ridge regression of the window's mean running
  speed and mean dF/F over its neurons;
- ``input``: R^2 of a ridge regression of every neuron's mean dF/F in the window: how much
  of the input the trunk keeps.

Beside them, the same for the window's raw mean dF/F per neuron (the input itself) and for
random Gaussian projections of it to 16, 32 and 64 features (mean of 5 draws): a trunk that
keeps what a random projection of its width keeps has learned nothing about its input.
Writes ``<out>/trunk_content.json``. Run from the repository root after bench_learning.py::

    .venv/bin/python benchmarks/bench_trunk_content.py --out bench_results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import h5py
import numpy as np
import torch
from _stats import mean_ci
from temporaldata import Data

from poyocap_plugin.workflow.checkpoints import load_train_checkpoint
from poyocap_plugin.workflow.probe import linear_probe_accuracy
from poyocap_plugin.workflow.probe.features import check_capoyo, load_trunks, trial_features
from poyocap_plugin.workflow.runs import find_run_outputs

PROJECTION_WIDTHS = (16, 32, 64)
_PROJECTION_DRAWS = 5
_RIDGE_ALPHAS = np.logspace(-3, 4, 15)


def _ridge_r2(train_x, train_y, test_x, test_y) -> float:
    """Test R^2 (pooled over outputs) of a ridge regression on standardised features."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), RidgeCV(alphas=_RIDGE_ALPHAS))
    model.fit(train_x, train_y)
    test_y = np.asarray(test_y).reshape(len(test_y), -1)
    residual = test_y - model.predict(test_x).reshape(test_y.shape)
    return float(1.0 - (residual**2).sum() / ((test_y - test_y.mean(0)) ** 2).sum())


def _trial_covariates(data_root: Path, recording: str, starts: np.ndarray, window_s: float):
    """Temporal-frequency class and mean running speed of the windows starting at ``starts``."""
    with h5py.File(data_root / f"{recording}.h5") as f:
        data = Data.from_hdf5(f, lazy=False)
        trials = data.drifting_gratings
        trial = np.searchsorted(np.asarray(trials.start), starts)
        frequency = np.asarray(trials.temporal_frequency_id, dtype=np.int64)[trial]
        speed = np.asarray(data.running.running_speed, dtype=np.float64)
        times = np.asarray(data.running.timestamps)
    running = np.array([np.nanmean(speed[(times >= s) & (times < s + window_s)]) for s in starts])
    return frequency, np.nan_to_num(running)


def _scores(train: dict, test: dict, feature: str) -> dict[str, float]:
    x, y = train["features"][feature], test["features"][feature]
    return {
        "direction": linear_probe_accuracy(x, train["direction"], y, test["direction"]),
        "temporal_frequency": linear_probe_accuracy(x, train["tf"], y, test["tf"]),
        "running": _ridge_r2(x, train["running"], y, test["running"]),
        "population_mean": _ridge_r2(x, train["raw"].mean(1), y, test["raw"].mean(1)),
        "input": _ridge_r2(x, train["raw"], y, test["raw"]),
    }


def trunk_content(checkpoint: Path) -> dict:
    """The scores of every feature set, per recording, for one stage-1 checkpoint."""
    run = load_train_checkpoint(checkpoint)
    check_capoyo(run)
    models = load_trunks(run, seed=int(run.config.seed), device=torch.device("cpu"))
    window_s = float(models["pretrained"].sequence_length)
    root = Path(run.config.data_root)
    splits = trial_features(
        run, models, root=root, pooling="latents", batch_size=64, device=torch.device("cpu")
    )
    result = {}
    for recording in splits["train"]:
        sets = {}
        for split, by_recording in splits.items():
            trials = by_recording[recording]
            tf, running = _trial_covariates(root, recording, trials.starts, window_s)
            raw = trials.features["raw_df_over_f"]
            features = {"raw_df_over_f": raw}
            for name in models:
                every = trials.features[name]
                features[f"{name}/latents"] = every
                features[f"{name}/mean"] = every.reshape(len(every), -1, models[name].dim).mean(1)
            for width in PROJECTION_WIDTHS:
                for draw in range(_PROJECTION_DRAWS):
                    matrix = np.random.default_rng(draw).standard_normal((raw.shape[1], width))
                    features[f"random_projection_{width}/{draw}"] = raw @ matrix
            sets[split] = dict(
                features=features, direction=trials.labels, tf=tf, running=running, raw=raw
            )
        scores = {
            name: _scores(sets["train"], sets["test"], name)
            for name in sets["train"]["features"]
            if not name.startswith("random_projection")
        }
        for width in PROJECTION_WIDTHS:
            draws = [
                _scores(sets["train"], sets["test"], f"random_projection_{width}/{draw}")
                for draw in range(_PROJECTION_DRAWS)
            ]
            scores[f"random_projection_{width}"] = {
                key: float(np.mean([d[key] for d in draws])) for key in draws[0]
            }
        result[recording] = scores
    return result


def _summary(runs: dict[str, dict]) -> dict:
    """Per feature set and score: mean and 95 % CI over runs x recordings; and the
    pretrained-minus-random-init difference per pooling (mean over recordings, CI over runs)."""
    values: dict[str, dict[str, list[float]]] = {}
    differences: dict[str, dict[str, list[float]]] = {}
    for per_recording in runs.values():
        for scores in per_recording.values():
            for name, by_score in scores.items():
                for key, value in by_score.items():
                    values.setdefault(name, {}).setdefault(key, []).append(value)
        for pooling in ("mean", "latents"):
            for key in next(iter(per_recording.values()))["raw_df_over_f"]:
                gaps = [
                    s[f"pretrained/{pooling}"][key] - s[f"random_init/{pooling}"][key]
                    for s in per_recording.values()
                ]
                differences.setdefault(pooling, {}).setdefault(key, []).append(np.mean(gaps))
    return {
        "mean_over_runs_and_recordings": {
            name: {key: mean_ci(v) for key, v in by_score.items()}
            for name, by_score in values.items()
        },
        "pretrained_minus_random_init": {
            pooling: {key: mean_ci(v) for key, v in by_key.items()}
            for pooling, by_key in differences.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_results"))
    parser.add_argument(
        "--targets",
        default=None,
        help="Comma-separated targets to read (default: every one); their entries replace "
        "those of an existing trunk_content.json, the others stay.",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    stage1 = (args.out / "work" / "stage1").resolve()
    result: dict = {"chance": {"direction": 1 / 8, "temporal_frequency": 1 / 5}, "targets": {}}
    wanted = None if args.targets is None else set(args.targets.split(","))
    for target_dir in sorted(p for p in stage1.iterdir() if p.is_dir()):
        if wanted is not None and target_dir.name not in wanted:
            continue
        runs = {}
        for run_dir in sorted(target_dir.glob("seed_*")):
            if (run_dir / "done").is_file():
                checkpoint = find_run_outputs(run_dir).last_checkpoint
                runs[run_dir.name] = trunk_content(checkpoint)
                print(f"{target_dir.name}/{run_dir.name}", flush=True)
        result["targets"][target_dir.name] = {"runs": runs, **_summary(runs)}
    path = args.out / "trunk_content.json"
    if wanted is not None and path.is_file():  # keep the other targets' earlier entries
        result["targets"] = json.loads(path.read_text())["targets"] | result["targets"]
    path.write_text(json.dumps(result, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
