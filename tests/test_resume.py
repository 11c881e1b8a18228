"""Kill torch_brain's stock train.py mid-run and resume it with ``ckpt_path``.

Lightning restores the weights, the optimizer and LR-scheduler state, the epoch and the
global step from the per-epoch checkpoint, so the resumed run ends with the same number of
optimizer steps as an uninterrupted one. It does not end with the same weights: train.py
builds its ``RandomFixedWindowSampler`` with ``torch.Generator().manual_seed(seed + 1)``
in ``train_dataloader()``, which a resumed process calls afresh, so the first resumed
epoch draws the window order of epoch 0, not of the epoch it resumes; and
``seed_everything(seed)`` restarts the global RNG streams (unit dropout, masking). Neither
lives in the checkpoint, and both are in the stock trainer, which the plugin runs unchanged.
``test_resumed_sampler_replays_epoch_zero_order`` pins that cause.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from temporaldata import Interval
from torch_brain.data.sampler import RandomFixedWindowSampler

from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.scalars import read_scalars

POYOCAP = str(Path(sys.executable).parent / "poyocap")
EPOCHS = 6  # the kill after epoch 1 lands seconds before the end, even on a loaded machine
STEPS_PER_EPOCH = 5  # 42 training windows of tiny_data_root // batch 8


def _command(data_root: Path, log_dir: Path, *overrides: str, check: bool = False) -> list[str]:
    return [
        POYOCAP,
        "train",
        "--check" if check else "--no-check",
        "--config-name",
        "poyocap_pretrain",
        "dataset=allen_calcium_dg_orientation",
        f"data_root={data_root}",
        f"log_dir={log_dir}",
        "model=capoyo_48k",
        "batch_size=8",
        "num_workers=0",
        "optim.base_lr=2e-4",
        f"epochs={EPOCHS}",
        *overrides,
    ]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _wait_for_checkpoint(process: subprocess.Popen, pattern: str, log_dir: Path) -> Path:
    """Poll until ``pattern`` exists under ``log_dir`` and loads (fully written)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the trainer ended (code {process.returncode}) before {pattern}")
        for path in log_dir.rglob(pattern):
            try:
                _load(path)
            except (RuntimeError, EOFError, OSError):
                continue  # still being written
            return path
        time.sleep(0.05)
    pytest.fail(f"no {pattern} under {log_dir} after 600 s")


def _learning_rates(scalars: Path) -> dict[int, float]:
    return dict(read_scalars(scalars)["lr-SparseLamb/pg2"])


@pytest.mark.slow
def test_killed_mid_epoch_resumes_to_the_same_step_count(tiny_data_root, tmp_path):
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full = subprocess.run(_command(tiny_data_root, full_dir), capture_output=True, text=True)
    assert full.returncode == 0, full.stderr[-4000:]
    reference = find_run_outputs(full_dir)

    process = subprocess.Popen(
        _command(tiny_data_root, killed_dir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # poyocap and its train.py child form one process group
    )
    try:
        _wait_for_checkpoint(process, "epoch_epoch=01.ckpt", killed_dir)
        os.killpg(process.pid, signal.SIGKILL)  # in epoch 2 (or later, if we were slow)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    checkpoints = sorted((killed_dir / "lightning_logs").rglob("epoch_epoch=*.ckpt"))
    newest = checkpoints[-1]
    saved = _load(newest)
    assert saved["global_step"] < EPOCHS * STEPS_PER_EPOCH  # the run was cut short
    # Up to the kill the run is deterministic: the same state as the uninterrupted run.
    same_epoch = reference.run_dir / "checkpoints" / newest.name
    for key, value in _load(same_epoch)["state_dict"].items():
        torch.testing.assert_close(saved["state_dict"][key], value, rtol=0, atol=0)

    resumed = subprocess.run(
        _command(tiny_data_root, killed_dir, f"ckpt_path='{newest}'", check=True),
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-4000:]
    run = find_run_outputs(killed_dir)
    assert run.run_dir.name == "version_1"
    final, final_reference = _load(run.last_checkpoint), _load(reference.last_checkpoint)
    assert final["global_step"] == final_reference["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert final["epoch"] == final_reference["epoch"] == EPOCHS - 1

    # The resumed run continues from the saved step, on the same LR schedule.
    rates, reference_rates = (
        _learning_rates(run.scalars),
        _learning_rates(reference.scalars),
    )
    assert min(rates) == saved["global_step"]
    for step, rate in rates.items():
        assert rate == pytest.approx(reference_rates[step], rel=1e-6)

    # Same metric names, finite; the values differ (see the module docstring).
    assert set(run.test_metrics) == set(reference.test_metrics)
    assert all(math.isfinite(v) for v in run.test_metrics.values())


def test_resumed_sampler_replays_epoch_zero_order():
    """train.py's sampler is rebuilt on resume with the same seed: epoch 0's order again."""
    intervals = {"a/s": Interval(start=[0.0], end=[40.0])}

    def sampler() -> RandomFixedWindowSampler:
        return RandomFixedWindowSampler(
            sampling_intervals=intervals,
            window_length=1.0,
            generator=torch.Generator().manual_seed(43),
        )

    def order(epoch_iterable) -> list[tuple[str, float]]:
        return [(index.recording_id, round(float(index.start), 6)) for index in epoch_iterable]

    uninterrupted = sampler()
    epochs = [order(uninterrupted) for _ in range(3)]
    resumed_epoch_2 = order(sampler())
    assert resumed_epoch_2 == epochs[0]
    assert resumed_epoch_2 != epochs[2]
