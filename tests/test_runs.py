import pytest

from poyocap_plugin.workflow.runs import find_run_outputs

HEADER = "epoch,step,average_test_metric,rec/task/Acc()/test,train_loss\n"


CHECKPOINTS = ("epoch=1-step=10.ckpt", "epoch_epoch=01.ckpt", "epoch_epoch=02.ckpt", "last.ckpt")


def _run_dir(log_dir, version, rows, checkpoints=CHECKPOINTS):
    run = log_dir / "lightning_logs" / f"version_{version}"
    (run / "checkpoints").mkdir(parents=True)
    for name in checkpoints:
        (run / "checkpoints" / name).write_bytes(b"")
    (run / "metrics.csv").write_text(HEADER + rows)
    return run


def test_finds_the_newest_run_and_its_test_metrics(tmp_path):
    _run_dir(tmp_path, 2, "0,10,,,1.5\n")
    newest = _run_dir(tmp_path, 10, "0,10,,,1.5\n0,10,0.25,0.5,\n")
    run = find_run_outputs(tmp_path)
    assert run.run_dir == newest
    assert run.best_checkpoint == newest / "checkpoints" / "epoch=1-step=10.ckpt"
    assert run.last_checkpoint == newest / "checkpoints" / "epoch_epoch=02.ckpt"
    # names as TensorBoard would store them, whichever file held them
    assert run.test_metrics == {"average_test_metric": 0.25, "rec/task/Acc__/test": 0.5}


def test_missing_run_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No run under .*lightning_logs"):
        find_run_outputs(tmp_path)


def test_missing_checkpoint_is_named(tmp_path):
    _run_dir(tmp_path, 0, "0,10,0.25,0.5,\n", checkpoints=("epoch=0-step=10.ckpt",))
    with pytest.raises(FileNotFoundError, match="lacks a per-epoch checkpoint"):
        find_run_outputs(tmp_path)


@pytest.mark.parametrize("rows", ["0,10,,,1.5\n", "0,10,nan,0.5,\n"])
def test_unfinished_or_nonfinite_test_metrics_are_refused(tmp_path, rows):
    _run_dir(tmp_path, 0, rows)
    with pytest.raises(ValueError, match="no finite test metrics"):
        find_run_outputs(tmp_path)
