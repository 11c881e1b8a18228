"""One stage-2 option measured against a finished Table 3: the same runs with overrides added.

Every stage-2 run (movie and DG) of the chosen arms of a ``poyocap table3`` folder runs
again through ``poyocap train`` with the command its done-marker recorded (same data,
seed, run sizes and stage-1 trunk) plus the given Hydra overrides, two at a time, into
``<out>/runs/<arm>/seed_<n>/<stage>``. A ``--override`` of ``table3`` cannot do this: it
reaches stage 1 too, which then trains again with the option. The result, each arm's test
metric per seed with and without the overrides and their paired difference (mean, 95 % CI,
paired t-test), goes to ``<out>/stage2_ablation.json``. A rerun skips finished runs.

Example (the Cre-line embedding on the study preset, docs/results_simulated.md)::

    .venv/bin/python benchmarks/stage2_ablation.py runs/study runs/study_cre \\
        --arm poyocap --arm from_scratch -- model.cre_line_embedding=true
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _stats import mean_ci

from poyocap_plugin.workflow.runs import StageResult, arm_metrics, find_run_outputs
from poyocap_plugin.workflow.stages import STAGES
from poyocap_plugin.workflow.statistics import paired
from poyocap_plugin.workflow.steps import read_marker, run_logged, run_step

STAGE2 = [stage for stage in STAGES if stage != "pretrain"]


def _recorded(run_dir: Path) -> tuple[list[str], dict[str, float]]:
    """A finished run's command and test metrics, from its done-marker."""
    marker = read_marker(run_dir)
    if marker is None:
        raise FileNotFoundError(f"{run_dir}: no done-marker; is the Table 3 run finished?")
    return marker["signature"]["command"], marker["outputs"]["test_metrics"]


def _rerun(command: list[str], log_dir: Path) -> dict[str, float]:
    """One run, skipped when its done-marker records the same command (the curriculum's)."""

    def action() -> dict[str, dict[str, float]]:
        run_logged(command, log_dir / "train.log")
        return {"test_metrics": find_run_outputs(log_dir).test_metrics}

    return run_step(str(log_dir), log_dir, {"command": command}, action)["test_metrics"]


def _arm_value(metrics_by_stage: dict[str, dict[str, float]], metric: str) -> float:
    results = {
        stage: StageResult(stage, (), Path(), Path(), Path(), metrics, 0)
        for stage, metrics in metrics_by_stage.items()
    }
    return arm_metrics(results)[metric]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("table3_dir", type=Path, help="A finished `poyocap table3` folder.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--arm", action="append", required=True, help="An arm (repeatable).")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("overrides", nargs="+", help="Hydra overrides added to every run.")
    args = parser.parse_args()

    base_runs = args.table3_dir / "runs"
    jobs, base = [], {}
    for arm in args.arm:
        seeds = sorted(int(d.name.split("_")[1]) for d in (base_runs / arm).glob("seed_*"))
        for seed in seeds:
            for stage in STAGE2:
                command, metrics = _recorded(base_runs / arm / f"seed_{seed}" / stage)
                base[arm, seed, stage] = metrics
                log_dir = (args.out / "runs" / arm / f"seed_{seed}" / stage).resolve()
                command = [f"log_dir={log_dir}" if c.startswith("log_dir=") else c for c in command]
                jobs.append(((arm, seed, stage), command + args.overrides, log_dir))
    jobs.sort(key=lambda job: job[0][2] != "finetune_movie")  # the long runs first
    with ThreadPoolExecutor(args.parallel) as pool:
        outcomes = pool.map(lambda job: _rerun(job[1], job[2]), jobs)
        rerun = dict(zip([job[0] for job in jobs], outcomes, strict=True))

    summary: dict = {"table3_dir": str(args.table3_dir), "overrides": args.overrides, "arms": {}}
    for arm in args.arm:
        seeds = sorted({seed for a, seed, _ in base if a == arm})
        for metric in (spec.metric for spec in STAGES.values() if spec.metric is not None):
            values = {
                name: [
                    _arm_value({s: runs[arm, seed, s] for s in STAGE2}, metric) for seed in seeds
                ]
                for name, runs in (("without", base), ("with", rerun))
            }
            comparison = paired(values["with"], values["without"], a="with", b="without")
            difference = comparison.mean_difference
            summary["arms"].setdefault(arm, {})[metric] = {
                "seeds": seeds,
                **{name: mean_ci(v) | {"values": v} for name, v in values.items()},
                "with_minus_without": mean_ci(list(difference.values)) | {"p": comparison.p},
            }
            print(
                f"{arm} {metric}: with {mean_ci(values['with'])['mean']:.3f}, without "
                f"{mean_ci(values['without'])['mean']:.3f}, with - without {comparison}"
            )
    path = args.out / "stage2_ablation.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
