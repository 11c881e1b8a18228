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

Run (about 3 minutes on 2 CPU cores; the plugin must be installed non-editable)::

    UV_PYTHON_DOWNLOADS=never .venv/bin/python benchmarks/bench_prepare.py --out bench_prepare.json
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

from poyocap_plugin.simulate import (
    SessionLayout,
    natural_movie_one_template,
    nwb_path,
    simulate_session,
)

logger = logging.getLogger("bench_prepare")

BRAINSET_ID = "allen_brain_observatory_calcium"
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

    with tempfile.TemporaryDirectory() as scratch:
        work = args.work_dir or Path(scratch)
        raw, processed = work / "raw", work / "processed"
        brainsets = str(Path(sys.executable).parent / "brainsets")
        common = ["--raw-dir", str(raw), "--processed-dir", str(processed)]
        movie = natural_movie_one_template(seed=0)
        rows = []
        for i in range(args.n_sessions):
            experiment_id = 900_100_001 + i
            start = time.perf_counter()
            truth = simulate_session(
                path=nwb_path(raw, experiment_id),
                experiment_id=experiment_id,
                cre_line="Cux2-CreERT2" if i % 2 == 0 else "Sst-IRES-Cre",
                n_rois=args.n_rois,
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
            rows.append(
                {
                    "session_id": str(experiment_id),
                    "n_frames": truth.n_frames,
                    "n_rois": truth.n_rois,
                    "nwb_mib": truth.path.stat().st_size / 2**20,
                    "h5_mib": (processed / BRAINSET_ID / f"{experiment_id}.h5").stat().st_size
                    / 2**20,
                    "simulate_s": simulate_s,
                    "fixed_cost_s": listing["seconds"],
                    "prepare_s": prepare["seconds"],
                    "process_s": prepare["seconds"] - listing["seconds"],
                    "fixed_cost_peak_mib": listing["peak_mib"],
                    "prepare_peak_mib": prepare["peak_mib"],
                }
            )
            logger.info("session %d/%d timed", i + 1, args.n_sessions)

    result = {
        "benchmark": "bench_prepare",
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "sessions": rows,
    }
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
