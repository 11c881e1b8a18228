"""Reading a run's scalars from TensorBoard event files and from Lightning's metrics.csv."""

import pytest
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from poyocap_plugin.workflow.runs import find_run_outputs
from poyocap_plugin.workflow.scalars import find_metrics_file, read_scalars, tag

LOGGED = [
    (0, {"train_loss": 2.5, "epoch": 0.0}),
    (1, {"train_loss": 1.25, "epoch": 0.0}),
    (1, {"rec/task/Acc()/val": 0.5, "epoch": 0.0}),
    (1, {"rec/task/Acc()/test": 0.75, "average_test_metric": 0.75}),
]


def _log(logger):
    for step, metrics in LOGGED:
        logger.log_metrics(metrics, step=step)
    logger.finalize("success")
    return find_metrics_file(logger.log_dir)


@pytest.mark.parametrize("kind", [TensorBoardLogger, CSVLogger])
def test_both_default_loggers_read_back_as_the_same_series(tmp_path, kind):
    path = _log(kind(tmp_path, name="lightning_logs", version=0))
    assert path.name.startswith("events.out.tfevents") == (kind is TensorBoardLogger)
    assert read_scalars(path) == {
        "train_loss": [(0, 2.5), (1, 1.25)],
        "epoch": [(0, 0.0), (1, 0.0), (1, 0.0)],
        "rec/task/Acc__/val": [(1, 0.5)],  # TensorBoard's tag of "Acc()"
        "rec/task/Acc__/test": [(1, 0.75)],
        "average_test_metric": [(1, 0.75)],
    }


def test_a_record_cut_short_ends_the_event_file(tmp_path):
    path = _log(TensorBoardLogger(tmp_path, name="lightning_logs", version=0))
    whole = read_scalars(path)
    path.write_bytes(path.read_bytes()[:-5])  # a writer killed mid-record
    cut = read_scalars(path)
    assert cut["train_loss"] == whole["train_loss"]
    assert "average_test_metric" not in cut


def test_a_tensorboard_run_is_found_with_its_test_metrics(tmp_path):
    logger = TensorBoardLogger(tmp_path, name="lightning_logs", version=0)
    _log(logger)
    checkpoints = tmp_path / "lightning_logs" / "version_0" / "checkpoints"
    checkpoints.mkdir()
    for name in ("epoch=1-step=1.ckpt", "epoch_epoch=01.ckpt"):
        (checkpoints / name).write_bytes(b"")
    run = find_run_outputs(tmp_path)
    assert run.metrics_file.name.startswith("events.out.tfevents")
    assert run.test_metrics == {"rec/task/Acc__/test": 0.75, "average_test_metric": 0.75}


def test_tag_is_what_the_writer_keeps_of_a_name(tmp_path):
    names = ["/rec/MovieSSIM()/test", "lr-SparseLamb/pg2", "a b.c{d}", "x__y"]
    logger = TensorBoardLogger(tmp_path, name="lightning_logs", version=0)
    path = _log_names(logger, names)
    assert sorted(read_scalars(path)) == sorted(tag(n) for n in names)
    assert tag("/rec/MovieSSIM()/test") == "rec/MovieSSIM__/test"


def _log_names(logger, names):
    logger.log_metrics({n: 1.0 for n in names}, step=0)
    logger.finalize("success")
    return find_metrics_file(logger.log_dir)


def test_another_file_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="other.log is neither"):
        read_scalars(tmp_path / "other.log")
