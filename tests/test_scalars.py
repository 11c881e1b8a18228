"""Reading a run's scalars from TensorBoard event files and from Lightning's metrics.csv."""

import time
from pathlib import Path

import pytest
from lightning.pytorch import Trainer
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.scalars import find_scalars, read_scalars, tag

FIT = [
    (0, {"train_loss": 2.5, "epoch": 0.0}),
    (1, {"train_loss": 1.25, "epoch": 0.0}),
    (1, {"rec/task/Acc()/val": 0.5, "epoch": 0.0}),
]
TEST = [(1, {"rec/task/Acc()/test": 0.75, "average_test_metric": 0.75})]
READ = {
    "train_loss": [(0, 2.5), (1, 1.25)],
    "epoch": [(0, 0.0), (1, 0.0), (1, 0.0)],
    "rec/task/Acc__/val": [(1, 0.5)],  # TensorBoard's tag of "Acc()"
    "rec/task/Acc__/test": [(1, 0.75)],
    "average_test_metric": [(1, 0.75)],
}


def _log(logger, logged):
    for step, metrics in logged:
        logger.log_metrics(metrics, step=step)
    logger.finalize("success")


def test_both_default_loggers_read_back_as_the_same_series(tmp_path):
    for kind in (TensorBoardLogger, CSVLogger):
        logger = kind(tmp_path / kind.__name__, name="lightning_logs", version=0)
        _log(logger, FIT + TEST)
        assert read_scalars(find_scalars(logger.log_dir)) == READ, kind


def test_event_files_of_fit_and_test_are_read_in_order(tmp_path, monkeypatch):
    # As train.py's test stage does after fit: the logger reopens its writer, a second file.
    # A short fit (a resumed run's last epoch) ends within the second it began: a writer
    # that names files by the second alone (tensorboardX) replaced fit's file with test's.
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.5)
    logger = Trainer(default_root_dir=tmp_path, logger=True).logger  # Lightning's default
    assert isinstance(logger, TensorBoardLogger)
    _log(logger, FIT)
    _log(logger, TEST)
    run_dir = tmp_path / "lightning_logs" / "version_0"
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 2
    assert find_scalars(run_dir) == run_dir
    assert read_scalars(run_dir) == READ


def test_a_record_cut_short_ends_its_event_file(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="lightning_logs", version=0)
    _log(logger, FIT + TEST)
    (path,) = (tmp_path / "lightning_logs" / "version_0").glob("events.out.tfevents.*")
    path.write_bytes(path.read_bytes()[:-5])  # a writer killed mid-record
    cut = read_scalars(path.parent)
    assert cut["train_loss"] == READ["train_loss"]
    assert "average_test_metric" not in cut


def test_a_tensorboard_run_is_found_with_its_test_metrics(tmp_path):
    _log(TensorBoardLogger(tmp_path, name="lightning_logs", version=0), FIT + TEST)
    run_dir = tmp_path / "lightning_logs" / "version_0"
    (run_dir / "checkpoints").mkdir()
    for name in ("epoch=1-step=1.ckpt", "epoch_epoch=01.ckpt"):
        (run_dir / "checkpoints" / name).write_bytes(b"")
    run = find_run_outputs(tmp_path)
    assert run.scalars == run_dir
    assert run.test_metrics == {"rec/task/Acc__/test": 0.75, "average_test_metric": 0.75}


def test_every_name_reads_back_as_its_tag(tmp_path):
    names = ["/rec/MovieSSIM()/test", "lr-SparseLamb/pg2", "a b.c{d}", "x__y"]
    logger = TensorBoardLogger(tmp_path, name="lightning_logs", version=0)
    _log(logger, [(0, {n: 1.0 for n in names})])
    assert sorted(read_scalars(find_scalars(logger.log_dir))) == sorted(tag(n) for n in names)
    assert tag("/rec/MovieSSIM()/test") == "rec/MovieSSIM__/test"
    # names tensorboardX already stored as tags read back unchanged
    assert all(tag(tag(n)) == tag(n) for n in names)


def test_files_of_one_second_are_read_in_the_order_opened(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_800_000_000.5)
    for step in (0, 1):
        logger = TensorBoardLogger(tmp_path, name="lightning_logs", version=0)
        _log(logger, [(step, {"x": float(step)})])
    run_dir = Path(logger.log_dir)
    # events.out.tfevents.<s>.<host>.<pid>.<n>: the 2nd and 10th file a process opened
    first, second = sorted(run_dir.glob("events.out.tfevents.*"), key=lambda p: int(p.suffix[1:]))
    first.rename(first.with_suffix(".2"))
    second.rename(second.with_suffix(".10"))  # before ".2" by name
    assert read_scalars(run_dir)["x"] == [(0, 0.0), (1, 1.0)]


def test_a_folder_without_event_files_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="nor a folder of TensorBoard event files"):
        read_scalars(tmp_path)
    assert find_scalars(tmp_path) is None
