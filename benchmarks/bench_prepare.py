"""Prepare time and peak memory of the allen_brain_observatory_calcium pipeline.

Simulates full-length sessions (``SessionLayout.full()``: about 110,000 frames, i.e. 1 h at
30 Hz, with the real 304 x 608 natural-movie template) and prepares them with the real
``brainsets prepare allen_brain_observatory_calcium --use-raw-files -s <id>`` command, which
runs the pipeline in its isolated uv environment (allensdk inside). Every command runs under a
small wrapper process that reports the peak resident memory of its descendants
(``getrusage(RUSAGE_CHILDREN).ru_maxrss``), i.e. of the pipeline's Python process.

Reported per session: the simulation time; the time of ``brainsets prepare --list`` (building
the uv environment from the uv cache, importing allensdk and reading the manifest: the fixed
cost of every prepare command); the time of ``prepare -s <id>``; their difference, the
processing time of one session; and the peak memory (MiB) of each command. The first session
also writes the brainset's natural-movie template (LANCZOS to 128 x 256); the later ones only
check it. The uv cache must be warm (run any ``brainsets prepare`` once) for stable figures.

The share of the plugin's own additions: after each prepare, the pipeline's split helpers
(``split_trials``, ``repeat_intervals``, ``split_repeats``, ``build_split_domains``) and its
statistics (``frames_in_domain`` + ``extract_predictability_stats`` on the training frames)
are timed in this process on the processed session's own arrays, and reported as seconds
and as a share of the session's processing time.

Run (about 3 minutes on 2 CPU cores; the plugin must be installed non-editable)::

    UV_PYTHON_DOWNLOADS=never .venv/bin/python benchmarks/run_all.py --only prepare
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from poyocap_plugin.brainset import BRAINSET_ID
from poyocap_plugin.workflow.simulate import (
    SessionLayout,
    natural_movie_one_template,
    nwb_path,
    simulate_session,
)

logger = logging.getLogger("bench_prepare")

_WRAPPER = (
    "import json, resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'returncode': code, 'peak_kib': peak}))\n"
)


def _measure(command: list[str]) -> dict[str, float]:
    """Wall time (s) and peak RSS (MiB) of ``command`` and everything it starts."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("UV_PYTHON_DOWNLOADS", "never")
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *command],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - start
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if report["returncode"] != 0:
        raise RuntimeError(f"{' '.join(command)} failed with code {report['returncode']}")
    return {"seconds": seconds, "peak_mib": report["peak_kib"] / 1024}


_PIPELINE_DIR = Path(__file__).resolve().parents[1] / "brainsets_pipelines" / BRAINSET_ID
_SPLIT_SEED = 42  # the pipeline's default --split-seed


def _time_statistics_and_splits(h5_path: Path, repeats: int = 3) -> dict[str, float]:
    """Median seconds of the pipeline's split and statistics steps on one processed session."""
    sys.path.insert(0, str(_PIPELINE_DIR))
    try:
        from neuron_stats import extract_predictability_stats
        from split import (
            build_split_domains,
            frames_in_domain,
            repeat_intervals,
            split_repeats,
            split_trials,
        )
    finally:
        sys.path.remove(str(_PIPELINE_DIR))
    with h5py.File(h5_path, "r") as f:
        df_over_f = f["calcium_traces"]["df_over_f"][:]
        series = f["calcium_traces"]
        timestamps = series["domain"]["start"][0] + np.arange(len(df_over_f)) / float(
            series.attrs["sampling_rate"]
        )
        dg = {k: f["drifting_gratings"][k][:] for k in ("start", "end")}
        nm1 = {k: f["natural_movie_one"][k][:] for k in ("start", "end", "repeat")}
    splits_s, statistics_s = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        repeats_iv = repeat_intervals(nm1["start"], nm1["end"], nm1["repeat"])
        domains = build_split_domains(
            [
                (dg["start"], dg["end"], split_trials(len(dg["start"]), seed=_SPLIT_SEED)),
                (repeats_iv.start, repeats_iv.end, split_repeats(repeats_iv.repeat)),
            ]
        )
        splits_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        extract_predictability_stats(df_over_f[frames_in_domain(timestamps, domains["train"])])
        statistics_s.append(time.perf_counter() - start)
    return {
        "splits_s": sorted(splits_s)[repeats // 2],
        "statistics_s": sorted(statistics_s)[repeats // 2],
    }


def run_prepare(*, n_sessions: int = 2, n_rois: int = 300, work_dir: Path | None = None) -> dict:
    """Prepare ``n_sessions`` full-length simulated sessions; time and memory of each."""
    with tempfile.TemporaryDirectory() as scratch:
        work = work_dir or Path(scratch)
        raw, processed = work / "raw", work / "processed"
        brainsets = str(Path(sys.executable).parent / "brainsets")
        common = ["--raw-dir", str(raw), "--processed-dir", str(processed)]
        movie = natural_movie_one_template(seed=0)
        rows = []
        for i in range(n_sessions):
            experiment_id = 900_100_001 + i
            start = time.perf_counter()
            truth = simulate_session(
                path=nwb_path(raw, experiment_id),
                experiment_id=experiment_id,
                cre_line="Cux2-CreERT2" if i % 2 == 0 else "Sst-IRES-Cre",
                n_rois=n_rois,
                layout=SessionLayout.full(),
                nm1_template=movie,
                seed=i,
            )
            simulate_s = time.perf_counter() - start
            listing = _measure(
                [brainsets, "prepare", BRAINSET_ID, *common, "--use-raw-files", "--list"]
            )
            prepare = _measure(
                [
                    brainsets,
                    "prepare",
                    BRAINSET_ID,
                    *common,
                    "--use-raw-files",
                    "-s",
                    str(experiment_id),
                ]
            )
            h5_path = processed / BRAINSET_ID / f"{experiment_id}.h5"
            added = _time_statistics_and_splits(h5_path)
            process_s = prepare["seconds"] - listing["seconds"]
            rows.append(
                {
                    "session_id": str(experiment_id),
                    "n_frames": truth.n_frames,
                    "n_rois": truth.n_rois,
                    "nwb_mib": truth.path.stat().st_size / 2**20,
                    "h5_mib": h5_path.stat().st_size / 2**20,
                    "simulate_s": simulate_s,
                    "fixed_cost_s": listing["seconds"],
                    "prepare_s": prepare["seconds"],
                    "process_s": process_s,
                    **added,
                    "statistics_and_splits_share": (added["statistics_s"] + added["splits_s"])
                    / process_s,
                    "fixed_cost_peak_mib": listing["peak_mib"],
                    "prepare_peak_mib": prepare["peak_mib"],
                }
            )
            logger.info("session %d/%d timed", i + 1, n_sessions)
    return {"cpu_count": os.cpu_count(), "sessions": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-sessions", type=int, default=2, help="Sessions to time (default 2).")
    parser.add_argument("--n-rois", type=int, default=300, help="ROIs per session (default 300).")
    parser.add_argument(
        "--work-dir", type=Path, default=None, help="Scratch folder (default: a temporary one)."
    )
    parser.add_argument("--out", type=Path, default=Path("bench_prepare.json"), help="JSON output.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run_prepare(n_sessions=args.n_sessions, n_rois=args.n_rois, work_dir=args.work_dir)
    rows = result["sessions"]
    args.out.write_text(json.dumps(result, indent=2))
    header = (
        f"{'session':>10} {'frames':>7} {'rois':>5} {'nwb MiB':>8} {'h5 MiB':>7} {'sim s':>6} "
        f"{'fixed s':>8} {'prepare s':>10} {'process s':>10} {'peak MiB':>9}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['session_id']:>10} {r['n_frames']:>7} {r['n_rois']:>5} {r['nwb_mib']:>8.0f} "
            f"{r['h5_mib']:>7.0f} {r['simulate_s']:>6.1f} {r['fixed_cost_s']:>8.1f} "
            f"{r['prepare_s']:>10.1f} {r['process_s']:>10.1f} {r['prepare_peak_mib']:>9.0f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
