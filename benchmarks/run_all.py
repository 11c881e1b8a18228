"""Every benchmark of the plugin against the stock torch_brain path, side by side, in one run.

1. Data path (``bench_data_path.py``): per-sample latency of the plugin's stage-1 and
   stage-2 transforms + ``CAPOYO.tokenize`` vs ``UnitDropout`` + ``CalciumPOYOPlus.tokenize``.
2. Training step (``bench_train_step.py``): CAPOYO stage 1 and stage 2 vs CalciumPOYOPlus of
   the same size, forward + backward + SparseLamb, and the frame decoder's own step.
3. Prepare (``bench_prepare.py``, with ``--prepare``; minutes): ``brainsets prepare`` of
   full-length simulated sessions, with the share of the statistics and splits.

All of them read one simulated brainset, written once under a temporary folder; the data
path and the training step draw the same windows. Results go to ``<out>/benchmarks.json``
and ``<out>/benchmarks.md``.

Run from the repository root (CPU, about 5 minutes on 2 cores at the default sizes)::

    .venv/bin/python benchmarks/run_all.py --out bench_results
    .venv/bin/python benchmarks/run_all.py --prepare --out bench_results   # + prepare
    python benchmarks/run_all.py --device cuda --precision bf16 --sizes 114M --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch
from _brainset import write_brainset
from _models import SIZES
from _report import markdown

SECTIONS = ("data_path", "train_step", "prepare")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench_results"),
        help="Folder for benchmarks.json and benchmarks.md.",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (cuda:N).")
    parser.add_argument(
        "--precision",
        default="32",
        choices=["32", "bf16"],
        help="Training-step precision: fp32, or bf16 autocast (train.py's bf16-mixed).",
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=["48k", "1.2M"],
        choices=SIZES,
        help="Model sizes (model/capoyo_<size>.yaml) for the training step.",
    )
    parser.add_argument("--batch-size", type=int, default=8, help="Windows per training step.")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed training steps per model.")
    parser.add_argument(
        "--steps", type=int, default=15, help="Timed training steps per model (median)."
    )
    parser.add_argument("--windows", type=int, default=300, help="Windows per data-path repeat.")
    parser.add_argument("--repeats", type=int, default=5, help="Data-path repeats (median).")
    parser.add_argument("--sessions", type=int, default=4, help="Simulated sessions.")
    parser.add_argument("--units", type=int, default=200, help="Neurons per simulated session.")
    parser.add_argument(
        "--frame-size",
        nargs=2,
        type=int,
        default=[128, 256],
        metavar=("H", "W"),
        help="Stored NM1 template size = decoded frame size (pixels).",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads; default 1 on the CPU (docs/benchmarks.md), PyTorch's on CUDA.",
    )
    parser.add_argument(
        "--no-memory",
        action="store_true",
        help="Skip the CPU peak-memory runs (one process per model).",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="Also time brainsets prepare of full-length sessions (slow).",
    )
    parser.add_argument(
        "--prepare-sessions", type=int, default=2, help="Full-length sessions to prepare."
    )
    parser.add_argument("--only", choices=SECTIONS, default=None, help="Run one benchmark only.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of data, windows and dropout.")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger = logging.getLogger("run_all")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: torch {torch.__version__} sees no CUDA device")
    threads = args.threads or (1 if args.device == "cpu" else torch.get_num_threads())
    torch.set_num_threads(threads)
    sections = [args.only] if args.only else [s for s in SECTIONS if s != "prepare" or args.prepare]
    result = dict(
        machine=dict(
            host=platform.node(),
            cpu_count=os.cpu_count(),
            load_average=os.getloadavg(),
            python=sys.version.split()[0],
            torch=torch.__version__,
            device=torch.cuda.get_device_name(args.device)
            if args.device.startswith("cuda")
            else "cpu",
            torch_threads=threads,
        ),
        settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    )
    with tempfile.TemporaryDirectory(prefix="poyocap_bench_") as scratch:
        root = Path(scratch)
        if "data_path" in sections or "train_step" in sections:
            write_brainset(
                root,
                sessions=args.sessions,
                units=args.units,
                trials=120,
                movie_repeats=3,
                movie_frames=300,
                frame_size=tuple(args.frame_size),
                seed=args.seed,
            )
        if "data_path" in sections:
            from bench_data_path import run_data_path

            logger.info("data path ...")
            result["data_path"] = run_data_path(
                root=root, windows=args.windows, repeats=args.repeats, seed=args.seed
            )
        if "train_step" in sections:
            from bench_train_step import run_train_step

            result["train_step"] = []
            for size in args.sizes:
                for stage in ("stage1", "stage2"):
                    logger.info("train step %s %s ...", stage, size)
                    result["train_step"].append(
                        run_train_step(
                            root=root,
                            stage=stage,
                            size=size,
                            device=args.device,
                            precision=args.precision,
                            batch_size=args.batch_size,
                            warmup=args.warmup,
                            steps=args.steps,
                            seed=args.seed,
                            memory=not args.no_memory,
                        )
                    )
        if "prepare" in sections:
            from bench_prepare import run_prepare

            logger.info("prepare (minutes) ...")
            result["prepare"] = run_prepare(n_sessions=args.prepare_sessions, n_rois=300)
    result["machine"]["load_average_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmarks.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (args.out / "benchmarks.md").write_text(table)
    print(table)
    print(f"wrote {args.out / 'benchmarks.json'} and {args.out / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
