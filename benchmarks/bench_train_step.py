"""Training-step speed and memory: CAPOYO stage 1 and stage 2 vs torch_brain's CalciumPOYOPlus.

Both models get the same windows of the same simulated brainset (read through torch_brain's
``Dataset``, the same seeded ``UnitDropout`` draws, each window tokenized by its own model)
and the same step as torch_brain 0.1.2's train.py: forward, the readouts' losses
(``spec.loss_fn(output, target, weights)``), backward, and SparseLamb with train.py's two
parameter groups, the whole forward and loss under autocast with ``precision="bf16"``.

Stage 1: ``CAPOYO`` with 50 % causal latent masking and 0.01 x DG vs ``CalciumPOYOPlus`` on
1.9 s DG windows. Stage 2: ``CAPOYO`` with the frame decoder and ``CAPFrameLoss`` vs
``CalciumPOYOPlus`` decoding torch_brain's ``natural_movie_one_frame`` class on the same
one-frame windows; ``frame_decoder`` is the decoder's own step (decoder + loss + backward +
its optimizer, on the decoded queries), reported separately.

Timing: all models live in one process and their steps alternate (A, B, A, B, ...), so load
on a shared machine hits every model alike; each figure is the median over ``steps`` steps
after ``warmup`` steps, with the spread (min, max). On the CPU the benchmark pins
``torch.set_num_threads`` (1 by default): with more OpenMP threads than free cores, a step
waits on descheduled threads and its time varies tenfold (see docs/benchmarks.md).

Memory: CUDA, ``torch.cuda.max_memory_allocated`` around each model's own steps; CPU, the
peak RSS of a separate process that builds one model and runs ``warmup`` steps.
FLOPs: ``torch.utils.flop_counter`` over one step with attention on PyTorch's math kernel
(which the counter sees), so achieved TFLOP/s are comparable across kernels.
"""

from __future__ import annotations

import multiprocessing
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import torch
from _brainset import STAGE1_WINDOW_S, STAGE2_WINDOW_S, open_dataset, sample_windows
from _models import attention_backend, build_capoyo, build_stock, sparse_and_dense
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode
from torch_brain.data import collate
from torch_brain.optim import SparseLamb
from torch_brain.transforms import Compose, UnitDropout

from poyocap_plugin.brainset import MOVIE_READOUT, TEMPLATE_RELATIVE_PATH
from poyocap_plugin.movie import TEMPLATE_DATASET, MovieFrameTargets

WINDOW_S = {"stage1": STAGE1_WINDOW_S, "stage2": STAGE2_WINDOW_S}
# The shipped stage configs' UnitDropout (poyocap_pretrain.yaml, poyocap_finetune_movie.yaml).
UNIT_DROPOUT = dict(
    field="calcium_traces.df_over_f", min_units=10, mode_units=50, max_units=300, tail_right=100
)


def _to(tree, device: str):
    if isinstance(tree, dict):
        return {k: _to(v, device) for k, v in tree.items()}
    return tree.to(device) if torch.is_tensor(tree) else tree


def _batch(dataset, model, windows, transforms, *, seed: int, device: str) -> dict:
    """Tokenize ``windows`` with ``model`` after ``transforms`` and the seeded UnitDropout."""
    np.random.seed(seed)  # UnitDropout draws its permutation from the global RNG
    dataset.transform = Compose(
        [*transforms, UnitDropout(**UNIT_DROPOUT, seed=seed), model.tokenize]
    )
    return _to(collate([dataset[w] for w in windows]), device)


def _train_step(model, batch, autocast) -> Callable[[], None]:
    optimizer = SparseLamb(sparse_and_dense(model), lr=1e-4)
    specs = model.readout.readout_specs

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            output = model(**batch["model_inputs"], unpack_output=False)
            loss = sum(
                specs[name].loss_fn(
                    out, batch["target_values"][name], batch["target_weights"][name]
                )
                for name, out in output.items()
            )
        loss.backward()
        optimizer.step()

    return step


def _decoder_step(model, batch, autocast, device: str) -> Callable[[], None]:
    """The frame decoder's own step: the part of stage 2 that CalciumPOYOPlus lacks."""

    decoder = model.frame_decoder
    spec = model.readout.readout_specs[MOVIE_READOUT]
    target = batch["target_values"][MOVIE_READOUT]
    weights = batch["target_weights"][MOVIE_READOUT]
    queries = torch.randn(len(target), model.dim, device=device, requires_grad=True)
    optimizer = SparseLamb([{"params": list(decoder.parameters())}], lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        queries.grad = None
        with autocast:
            loss = spec.loss_fn(decoder(queries).flatten(1), target, weights)
        loss.backward()
        optimizer.step()

    return step


def _setup(
    root: Path,
    stage: str,
    size: str,
    device: str,
    precision: str,
    batch_size: int,
    seed: int,
    only: str | None = None,
):
    """The stage's models and their step functions, on the same windows.

    With ``only``, builds just that model (``"frame_decoder"``: CAPOYO), for its memory.
    """
    window_s = WINDOW_S[stage]
    stock_data = open_dataset(root, stage=stage, path="stock")
    plugin_data = open_dataset(root, stage=stage, path="plugin")
    windows = sample_windows(stock_data, window_s=window_s, count=batch_size, seed=seed)
    template = root / TEMPLATE_RELATIVE_PATH
    with h5py.File(template, "r") as f:
        frame_size = tuple(f[TEMPLATE_DATASET].shape[1:])  # decode at the stored size
    models = {
        "CalciumPOYOPlus": (lambda: build_stock(stage, size, window_s), stock_data, []),
        "CAPOYO": (
            lambda: build_capoyo(stage, size, window_s, frame_size),
            plugin_data,
            [MovieFrameTargets(template_path=template, height=frame_size[0], width=frame_size[1])]
            if stage == "stage2"
            else [],
        ),
    }
    autocast = torch.autocast(
        device_type="cuda" if device.startswith("cuda") else "cpu",
        dtype=torch.bfloat16,
        enabled=precision == "bf16",
    )
    steps, info = {}, {}
    torch.manual_seed(seed)
    for name, (build, dataset, transforms) in models.items():
        if only is not None and name != ("CAPOYO" if only == "frame_decoder" else only):
            continue
        model = build()
        model.unit_emb.initialize_vocab(dataset.get_unit_ids())
        model.session_emb.initialize_vocab(dataset.get_session_ids())
        model = model.to(device).train()
        batch = _batch(dataset, model, windows, transforms, seed=seed, device=device)
        steps[name] = _train_step(model, batch, autocast)
        info[name] = dict(
            model=model,
            tokens=int(batch["model_inputs"]["input_mask"].sum()),
            params=sum(p.numel() for p in model.parameters()),
        )
        if name == "CAPOYO" and stage == "stage2":
            steps["frame_decoder"] = _decoder_step(model, batch, autocast, device)
            info["frame_decoder"] = dict(
                model=model.frame_decoder,
                tokens=0,
                params=sum(p.numel() for p in model.frame_decoder.parameters()),
            )
    return steps, info


def _count_flops(step: Callable[[], None], model: torch.nn.Module) -> int:
    """FLOPs of one step, attention on the math kernel (counted) instead of xformers."""
    modules = [m for m in model.modules() if getattr(m, "use_xformers", False)]
    for m in modules:
        m.use_xformers = False
    try:
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            step()
    finally:
        for m in modules:
            m.use_xformers = True
    return counter.get_total_flops()


def _peak_rss_child(root, stage, size, precision, batch_size, seed, warmup, name, queue) -> None:
    torch.set_num_threads(1)
    steps, _ = _setup(root, stage, size, "cpu", precision, batch_size, seed, only=name)
    for _ in range(warmup):
        steps[name]()
    queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _cpu_peak_mib(root, stage, size, precision, batch_size, seed, warmup, name) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    args = (root, stage, size, precision, batch_size, seed, max(warmup, 1), name, queue)
    process = context.Process(target=_peak_rss_child, args=args)
    process.start()
    peak = queue.get()
    process.join()
    if process.exitcode:
        raise RuntimeError(
            f"the memory run of {name} ({stage}, {size}) exited with {process.exitcode}"
        )
    return peak


def run_train_step(
    *,
    root: Path,
    stage: str,
    size: str,
    device: str = "cpu",
    precision: str = "32",
    batch_size: int = 8,
    warmup: int = 3,
    steps: int = 15,
    seed: int = 0,
    memory: bool = True,
) -> dict:
    """Median step time, tokens/s, TFLOP/s and peak memory of each model of one stage."""
    step_fns, info = _setup(root, stage, size, device, precision, batch_size, seed)
    cuda = device.startswith("cuda")
    flops = {name: _count_flops(fn, info[name]["model"]) for name, fn in step_fns.items()}
    for fn in step_fns.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in step_fns}
    peak = dict.fromkeys(step_fns, 0.0)
    for _ in range(steps):
        for name, fn in step_fns.items():  # interleaved: A, B, A, B, ...
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            fn()
            if cuda:
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
            if cuda:
                peak[name] = max(peak[name], torch.cuda.max_memory_allocated() / 2**20)
    if memory and not cuda:
        for name in step_fns:
            peak[name] = _cpu_peak_mib(root, stage, size, precision, batch_size, seed, warmup, name)
    rows = {}
    for name, series in times.items():
        median = statistics.median(series)
        rows[name] = dict(
            step_s=median,
            step_s_min=min(series),
            step_s_max=max(series),
            steps_per_s=1.0 / median,
            input_tokens=info[name]["tokens"],
            tokens_per_s=info[name]["tokens"] / median,
            flops_per_step=flops[name],
            tflops_per_s=flops[name] / median / 1e12,
            peak_mib=peak[name] if (memory or cuda) else None,
            params=info[name]["params"],
            attention=attention_backend(info[name]["model"], device),
        )
    stock = rows["CalciumPOYOPlus"]["step_s"]
    result = dict(
        stage=stage, size=size, rows=rows, capoyo_over_stock=rows["CAPOYO"]["step_s"] / stock
    )
    if "frame_decoder" in rows:
        result["capoyo_over_stock_plus_decoder"] = rows["CAPOYO"]["step_s"] / (
            stock + rows["frame_decoder"]["step_s"]
        )
    return result


def main() -> None:
    """Run only the training-step benchmark (``run_all.py`` runs every benchmark)."""
    from run_all import main as run_all_main

    run_all_main(["--only", "train_step"])


if __name__ == "__main__":
    main()
