"""Training-step speed and memory: CAPOYO stage 1 vs torch_brain's CalciumPOYOPlus.

Both models get the same batches (the same windows, each tokenized by its own model) and
the same step as torch_brain 0.1.2's train.py: forward, the readouts' losses, backward,
and SparseLamb with train.py's two parameter groups. Each (model, size) runs in its own
process, so the peak resident memory it reports is its own.

    python benchmarks/bench_train_step.py                      # CPU, sizes 48k and 1.2M
    python benchmarks/bench_train_step.py --device cuda --sizes 114M --precision bf16
    python benchmarks/bench_train_step.py --out results.json

Reported per model: median step time (s) over --steps timed steps after --warmup steps,
steps/s, input tokens/s, and peak memory (CPU: max RSS of the process in MiB; CUDA:
torch.cuda.max_memory_allocated in MiB). The ratio is CAPOYO / CalciumPOYOPlus step time;
stage 1 runs the processor twice, so the expected ratio is below about 1.8.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

SIZES = ("48k", "1.2M", "32M", "114M", "319M")  # the shipped model/capoyo_<size>.yaml
WINDOW_S = 1.9
LATENT_STEP_S = 0.2375
SAMPLING_RATE_HZ = 30.0


def _window(rng: np.random.Generator, index: int, num_units: int):
    from temporaldata import ArrayDict, Data, Interval, RegularTimeSeries

    frames = int(WINDOW_S * SAMPLING_RATE_HZ)
    return Data(
        session=Data(id="bench/session"),
        units=ArrayDict(id=np.array([f"bench/session/unit_{i}" for i in range(num_units)])),
        calcium_traces=RegularTimeSeries(
            df_over_f=rng.standard_normal((frames, num_units)).astype(np.float32),
            sampling_rate=SAMPLING_RATE_HZ,
            domain_start=0.0,
        ),
        drifting_gratings=Interval(
            start=np.array([0.0]),
            end=np.array([WINDOW_S]),
            timestamps=np.array([WINDOW_S / 2]),
            orientation_id=np.array([index % 8]),
            timekeys=["start", "end", "timestamps"],
        ),
        config={"multitask_readout": [{"readout_id": "drifting_gratings_orientation"}]},
        domain=Interval(start=np.array([0.0]), end=np.array([WINDOW_S])),
    )


def _size_config(size: str) -> dict:
    """The keyword arguments of the shipped ``model/capoyo_<size>.yaml`` (both models take them)."""
    from importlib import resources

    from omegaconf import OmegaConf

    path = resources.files("poyocap_plugin") / "configs" / "model" / f"capoyo_{size}.yaml"
    config = OmegaConf.to_container(OmegaConf.load(str(path)))
    config.pop("_target_")
    return config


def _build(model_name: str, size: str, device: str):
    import torch_brain
    from torch_brain.models import CalciumPOYOPlus

    import poyocap_plugin.modalities  # noqa: F401
    from poyocap_plugin.models import CAPOYO
    from poyocap_plugin.nn import LatentMasking

    common = dict(
        sequence_length=WINDOW_S,
        latent_step=LATENT_STEP_S,
        readout_specs=torch_brain.MODALITY_REGISTRY,
        **_size_config(size),
    )
    if model_name == "CAPOYO":
        return CAPOYO(
            readouts={"drifting_gratings_orientation": 0.01},
            masking=LatentMasking(dim=common["dim"]),
            **common,
        )
    return CalciumPOYOPlus(**common)


def _measure(model_name, size, device, precision, batch_size, num_units, warmup, steps, queue):
    import torch
    from torch_brain.data import collate
    from torch_brain.optim import SparseLamb

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = _build(model_name, size, device)
    windows = [_window(rng, i, num_units) for i in range(batch_size)]
    model.unit_emb.initialize_vocab(list(windows[0].units.id))
    model.session_emb.initialize_vocab(["bench/session"])
    model = model.to(device)
    batch = collate([model.tokenize(w) for w in windows])

    def to_device(tree):
        if isinstance(tree, dict):
            return {k: to_device(v) for k, v in tree.items()}
        return tree.to(device) if torch.is_tensor(tree) else tree

    batch = to_device(batch)
    sparse = [
        *model.unit_emb.parameters(),
        *model.session_emb.parameters(),
        *model.readout.parameters(),
    ]
    dense = [
        p
        for n, p in model.named_parameters()
        if not any(word in n for word in ("unit_emb", "session_emb", "readout"))
    ]
    optimizer = SparseLamb([{"params": sparse, "sparse": True}, {"params": dense}], lr=1e-4)
    specs = model.readout.readout_specs
    autocast = torch.autocast(
        device_type="cuda" if device.startswith("cuda") else "cpu",
        dtype=torch.bfloat16,
        enabled=precision == "bf16",
    )

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            output = model(**batch["model_inputs"])
            loss = sum(
                specs[name].loss_fn(
                    out.float(), batch["target_values"][name], batch["target_weights"][name]
                )
                for name, out in output.items()
            )
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.startswith("cuda"):
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    median = statistics.median(times)
    tokens = int(batch["model_inputs"]["input_mask"].sum())
    queue.put(
        dict(
            model=model_name,
            size=size,
            step_s=median,
            steps_per_s=1 / median,
            tokens_per_s=tokens / median,
            peak_mib=peak_mib,
            params=sum(p.numel() for n, p in model.named_parameters()),
        )
    )


def run(args) -> dict:
    context = multiprocessing.get_context("spawn")
    rows = []
    for size in args.sizes:
        for model_name in ("CalciumPOYOPlus", "CAPOYO"):
            queue = context.Queue()
            process = context.Process(
                target=_measure,
                args=(
                    model_name,
                    size,
                    args.device,
                    args.precision,
                    args.batch_size,
                    args.units,
                    args.warmup,
                    args.steps,
                    queue,
                ),
            )
            process.start()
            rows.append(queue.get())
            process.join()
            if process.exitcode:
                raise RuntimeError(f"{model_name} {size} failed (exit {process.exitcode})")
    ratios = {
        size: next(r for r in rows if r["model"] == "CAPOYO" and r["size"] == size)["step_s"]
        / next(r for r in rows if r["model"] == "CalciumPOYOPlus" and r["size"] == size)["step_s"]
        for size in args.sizes
    }
    return dict(
        benchmark="train_step",
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        units=args.units,
        window_s=WINDOW_S,
        host=platform.node(),
        python=sys.version.split()[0],
        rows=rows,
        capoyo_over_stock_step_time=ratios,
    )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--precision", default="32", choices=["32", "bf16"])
    parser.add_argument("--sizes", nargs="+", default=["48k", "1.2M"], choices=SIZES)
    parser.add_argument("--batch-size", type=int, default=8, help="windows per step")
    parser.add_argument("--units", type=int, default=60, help="neurons per window")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15, help="timed steps (median)")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here")
    args = parser.parse_args(argv)
    result = run(args)
    header = ("size", "model", "step (s)", "steps/s", "tokens/s", "peak MiB")
    print("{:>6} {:>16} {:>9} {:>8} {:>10} {:>9}".format(*header))
    for r in result["rows"]:
        print(
            f"{r['size']:>6} {r['model']:>16} {r['step_s']:9.4f} {r['steps_per_s']:8.2f} "
            f"{r['tokens_per_s']:10.0f} {r['peak_mib']:9.0f}"
        )
    for size, ratio in result["capoyo_over_stock_step_time"].items():
        print(f"CAPOYO / CalciumPOYOPlus step time at {size}: {ratio:.2f}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
