"""Learning curves beside their baselines: the supervised positive control and stage 1.

Every run goes through torch_brain 0.1.2's stock ``train.py`` (``poyocap train``) on the
demo's simulated brainset (``SimulationSettings()``, prepared with ``brainsets prepare``):

1. **Positive control** (drifting-grating direction, 8 classes): torch_brain's own
   ``CalciumPOYOPlus`` (``poyocap_smoke``, every session) and CAPOYO with only the DG
   readout (``poyocap_finetune_dg`` from scratch, the finetuning sessions). Beside them, on
   the same test trials: chance and a logistic regression on each trial's mean dF/F.
2. **Stage 1** (``poyocap_pretrain``) for each target option (``detached``, ``ema``,
   ``normalized``: detached and layer-normalised, ``input``: the masked bins' activity through
   a fixed random projection): per epoch, the validation R^2 of the masked-latent
   reconstruction beside the window-mean, copy-forward and position-mean predictors' R^2, the
   targets' effective rank, and the training loss.
3. **Probe** (``poyocap probe``) of every stage-1 run, once per pooling of the trunk's
   latents (``--pooling mean``: key ``probe``; ``--pooling latents``: key
   ``probe_latents``): the pretrained trunk's test accuracy minus that of the same
   architecture at random initialisation. ``--targets`` picks the targets; those in
   ``--seeded-targets`` run ``--seeds N`` seeds (the others one), and each target's
   difference gets its mean and 95 % CI (Student t) per pooling.

Results go to ``<out>/learning_control.json`` and ``<out>/learning_stage1.json``; runs and
data stay under ``<out>/work`` (a rerun reuses finished runs). Run from the repository root
(CPU, the two sections in parallel on 2 cores, ~40 min with 3 seeds)::

    .venv/bin/python benchmarks/bench_learning.py --out bench_results --sections control &
    .venv/bin/python benchmarks/bench_learning.py --out bench_results --sections stage1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import yaml
from _stats import mean_ci
from temporaldata import Data

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.probe import POOLINGS, linear_probe_accuracy
from poyocap_plugin.workflow.runs import RunOutputs, find_run_outputs
from poyocap_plugin.workflow.scalars import read_scalars
from poyocap_plugin.workflow.simulated_brainset import SimulationSettings, prepare_data

TARGETS = {
    "detached": ["model.masking.target=detached"],
    "ema": ["model.masking.target=ema"],
    "normalized": ["model.masking.target=detached", "+model.masking.normalize_target=true"],
    "input": ["model.masking.target=input"],
}
DEFAULT_TARGET = "ema"
#: the result key (and probe folder of each run) of each pooling; "probe" is the mean's,
#: the key older readers of learning_stage1.json know
PROBE_KEYS = {pooling: "probe" if pooling == "mean" else f"probe_{pooling}" for pooling in POOLINGS}
_COMMON = ["batch_size=16", "optim.base_lr=2e-4", "eval_batch_size=64", "num_workers=0"]
_EXTRA_METRICS = [
    {"_target_": "poyocap_plugin.latent_metrics.MaskedLatentR2", "predictor": "window_mean"},
    {"_target_": "poyocap_plugin.latent_metrics.MaskedLatentR2", "predictor": "copy_forward"},
    {"_target_": "poyocap_plugin.latent_metrics.MaskedLatentR2", "predictor": "position_mean"},
    {"_target_": "poyocap_plugin.latent_metrics.MaskedLatentTargetRank"},
]


def _poyocap() -> str:
    return str(Path(sys.executable).parent / "poyocap")


def _bench_pretrain_config(config_dir: Path) -> None:
    """A copy of the curriculum's pretraining config that also logs the baselines."""
    groups = yaml.safe_load((config_dir / "dataset" / "poyocap_pretrain.yaml").read_text())
    for group in groups:
        for readout in group["config"]["multitask_readout"]:
            if readout["readout_id"] == "masked_latent_reconstruction":
                readout["metrics"] += [{"metric": m} for m in _EXTRA_METRICS]
    (config_dir / "dataset" / "bench_pretrain.yaml").write_text(yaml.safe_dump(groups))


def _train(log_dir: Path, overrides: list[str]) -> RunOutputs:
    """Run ``poyocap train`` unless ``log_dir`` holds a finished run; its outputs."""
    done = log_dir / "done"
    if not done.is_file():
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "train.log", "w") as log:
            subprocess.run(
                [_poyocap(), "train", *overrides, f"log_dir={log_dir}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
            )
        done.write_text("ok\n")
    return find_run_outputs(log_dir)


def _curves(scalars: Path) -> dict:
    """Per epoch: each validation metric averaged over recordings; the training loss."""
    series = read_scalars(scalars)
    epoch_at = {step: int(epoch) for step, epoch in series["epoch"]}  # logged with each value
    val: dict[str, dict[int, list[float]]] = {}
    loss: dict[int, list[float]] = {}
    test: dict[str, list[float]] = {}
    for key, points in series.items():
        if key.startswith("average"):
            continue
        name = "/".join(key.split("/")[2:-1])  # <brainset>/<session>/<readout>/<metric>
        for step, value in points:
            if key.endswith("/val"):
                val.setdefault(name, {}).setdefault(epoch_at[step], []).append(value)
            elif key.endswith("/test"):
                test.setdefault(name, []).append(value)
            elif key == "train_loss":
                loss.setdefault(epoch_at[step], []).append(value)
    return {
        "val": {n: [float(np.mean(v[e])) for e in sorted(v)] for n, v in val.items()},
        "train_loss": [float(np.mean(loss[e])) for e in sorted(loss)],
        "test": {n: float(np.mean(v)) for n, v in test.items()},
    }


def _trial_mean_logistic(data_root: Path, sessions: list[str]) -> dict[str, float]:
    """Logistic regression on each DG trial's mean dF/F, test accuracy per session."""
    scores = {}
    for session in sessions:
        path = data_root / BRAINSET_ID / f"{session}.h5"
        with h5py.File(path) as f:
            data = Data.from_hdf5(f, lazy=False)
            x = np.asarray(data.calcium_traces.df_over_f)
            t = np.asarray(data.calcium_traces.timestamps)
            dg = data.drifting_gratings
            split = {}
            for name in ("train", "test"):
                domain = getattr(data, f"{name}_domain")
                inside = [
                    i
                    for i, (s, e) in enumerate(zip(dg.start, dg.end, strict=True))
                    if ((domain.start <= s) & (domain.end >= e)).any()
                ]
                features = np.stack(
                    [np.nanmean(x[(t >= dg.start[i]) & (t < dg.end[i])], 0) for i in inside]
                )
                split[name] = (np.nan_to_num(features), np.asarray(dg.orientation_id)[inside])
        scores[session] = linear_probe_accuracy(*split["train"], *split["test"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_results"))
    parser.add_argument("--seeds", type=int, default=3, help="Seeds of each seeded target.")
    parser.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"Comma-separated stage-1 targets to run, of {', '.join(TARGETS)}.",
    )
    parser.add_argument(
        "--seeded-targets",
        default=f"{DEFAULT_TARGET},input",
        help="Targets run with --seeds seeds (the others with one); each gets a 95 %% CI.",
    )
    parser.add_argument("--control-epochs", type=int, default=16)
    parser.add_argument("--pretrain-epochs", type=int, default=16)
    parser.add_argument(
        "--sections",
        default="control,stage1",
        help="Comma-separated: control, stage1 (run them as two processes to use 2 cores).",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
    work = (args.out / "work").resolve()
    data_root = prepare_data(work / "data", SimulationSettings())
    config_dir = work / "configs"
    subprocess.run(
        [_poyocap(), "datasets", str(data_root), "--out", str(config_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    _bench_pretrain_config(config_dir)
    base = [f"data_root={data_root}", f"hydra.searchpath=[file://{config_dir}]", *_COMMON]
    result: dict = {"simulation": SimulationSettings().__dict__, "chance": 1 / 8}

    sessions = sorted(p.stem for p in (data_root / BRAINSET_ID).glob("*.h5"))
    controls = {
        "calcium_poyo_plus": [
            "--config-name",
            "poyocap_smoke",
            f"epochs={args.control_epochs}",
            "train_transforms=[${normalize}]",
        ],
        "capoyo_dg_only": [
            "--config-name",
            "poyocap_finetune_dg",
            "dataset=poyocap_finetune_dg",
            "model=capoyo_48k",
            f"epochs={args.control_epochs}",
        ],
    }
    if "control" in sections:
        logistic = _trial_mean_logistic(data_root, sessions)
        result["positive_control"] = {"logistic_trial_mean_dff_test": logistic}
        for name, overrides in controls.items():
            run = _train(work / "control" / name, [*overrides, *base])
            result["positive_control"][name] = _curves(run.scalars)
        _write(args.out, "learning_control.json", result)
    if "stage1" in sections:
        result["stage1"] = _stage1(work, base, args)
        for target, runs in result["stage1"].items():
            for key in PROBE_KEYS.values():
                differences = [
                    run[key]["pooled_pretrained_minus_random_init"] for run in runs.values()
                ]
                name = f"{key}_pretrained_minus_random_init"
                result.setdefault(name, {})[target] = mean_ci(differences)
        _write(args.out, "learning_stage1.json", result)


def _write(out: Path, name: str, result: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / name).write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out / name}")


def _stage1(work: Path, base: list[str], args: argparse.Namespace) -> dict:
    stage1: dict = {}
    seeded = args.seeded_targets.split(",")
    for target in args.targets.split(","):
        if target not in TARGETS:
            raise SystemExit(f"--targets: {target!r} is not one of {list(TARGETS)}")
        target_overrides = TARGETS[target]
        seeds = range(42, 42 + (args.seeds if target in seeded else 1))
        for seed in seeds:
            log_dir = work / "stage1" / target / f"seed_{seed}"
            overrides = [
                "--config-name",
                "poyocap_pretrain",
                "dataset=bench_pretrain",
                "model=capoyo_48k",
                f"epochs={args.pretrain_epochs}",
                f"seed={seed}",
                *target_overrides,
                *base,
            ]
            run = _train(log_dir, overrides)
            curves = _curves(run.scalars)
            stage1.setdefault(target, {})[seed] = {
                "curves": curves,
                **{
                    key: _probe(run.last_checkpoint, log_dir / key, pooling)
                    for pooling, key in PROBE_KEYS.items()
                },
            }
    return stage1


def _probe(checkpoint: Path, out: Path, pooling: str) -> dict:
    """``poyocap probe --pooling POOLING`` of ``checkpoint`` into ``out``; its probe.json."""
    # the trunk as pretraining left it (last.ckpt), the usual checkpoint of an SSL probe
    subprocess.run(
        [_poyocap(), "probe", str(checkpoint), "--out", str(out), "--pooling", pooling],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return json.loads((out / "probe.json").read_text())


if __name__ == "__main__":
    main()
