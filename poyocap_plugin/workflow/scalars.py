"""The scalars a run logged, from whichever file Lightning's default logger wrote.

train.py gives Lightning no logger unless W&B is on, so Lightning picks its default: a
TensorBoard logger (``events.out.tfevents.*``) where ``tensorboard`` or ``tensorboardX`` is
installed (the plugin installs ``tensorboard``), otherwise a CSV logger (``metrics.csv``).
Both hold the same ``(step, value)`` series; TensorBoard spreads them over several event files
in the run's folder (train.py's test stage opens a new one). tensorboardX stores each name
as :func:`tag` makes it (``MovieSSIM()/test`` becomes ``MovieSSIM__/test``), tensorboard and
the CSV keep it, so this module names every series by :func:`tag`: a run reads the same
whichever writer logged it.
"""

from __future__ import annotations

import csv
import re
import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["find_scalars", "read_scalars", "tag"]

_EVENTS = "events.out.tfevents.*"
_CSV = "metrics.csv"
# a TFRecord: uint64 length, uint32 CRC of the length, the payload, uint32 CRC of it
_HEADER = struct.Struct("<QI")
_FOOTER = 4

# what tensorboardX keeps of a name; anything else becomes "_"
_TAG_CHARACTERS = re.compile(r"[^-/\w.]")

Series = dict[str, list[tuple[int, float]]]


def tag(name: str) -> str:
    """A logged name as tensorboardX stores it: other characters than letters, digits, ``_``,
    ``-``, ``.`` and ``/`` replaced by ``_``, without leading ``/``."""
    return _TAG_CHARACTERS.sub("_", name).lstrip("/")


def find_scalars(run_dir: Path) -> Path | None:
    """Where a run's scalars are: ``run_dir`` if it holds event files, else its
    ``metrics.csv``; None if neither."""
    run_dir = Path(run_dir)
    if any(run_dir.glob(_EVENTS)):
        return run_dir
    return run_dir / _CSV if (run_dir / _CSV).is_file() else None


def read_scalars(path: Path) -> Series:
    """Every logged scalar of a folder of TensorBoard event files or of a CSV (``metrics.csv``).

    Returns:
        ``{tag(name): [(step, value), ...]}`` in the order they were logged.

    Raises:
        ValueError: If ``path`` is neither a CSV file nor a folder with event files.
    """
    path = Path(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    events = sorted(path.glob(_EVENTS), key=_opened)
    if not events:
        raise ValueError(
            f"{path} is neither a CSV file (metrics.csv) nor a folder of TensorBoard event files"
        )
    series: Series = {}
    for events_file in events:
        for name, points in _read_events(events_file).items():
            series.setdefault(name, []).extend(points)
    return series


def _opened(events_file: Path) -> tuple[int, int, str]:
    """When a writer opened ``events_file``: tensorboard names it
    ``events.out.tfevents.<seconds>.<host>.<pid>.<n>``, ``n`` counting the files a process
    opened, so two files of one second are ordered by ``n`` (tensorboardX's names end at
    ``<host>``)."""
    fields = events_file.name.split(".")
    counter = int(fields[-1]) if fields[-1].isdigit() else -1
    return int(fields[3]), counter, events_file.name


def _read_csv(path: Path) -> Series:
    series: Series = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if key != "step" and value not in (None, ""):
                    point = (int(float(row["step"])), float(value))
                    series.setdefault(tag(key), []).append(point)
    return series


def _records(path: Path) -> Iterator[bytes]:
    # CRCs unchecked: a run's own local file; a record cut short (a writer still open or
    # killed mid-write) ends the file instead
    with path.open("rb") as f:
        while len(header := f.read(_HEADER.size)) == _HEADER.size:
            length, _ = _HEADER.unpack(header)
            payload = f.read(length)
            if len(payload) < length or len(f.read(_FOOTER)) < _FOOTER:
                return
            yield payload


def _read_events(path: Path) -> Series:
    from tensorboard.compat.proto.event_pb2 import Event

    series: Series = {}
    for record in _records(path):
        event = Event.FromString(record)
        for value in event.summary.value:
            if value.HasField("simple_value"):
                number = value.simple_value
            elif value.HasField("tensor") and value.tensor.float_val:
                number = value.tensor.float_val[0]
            else:
                continue  # not a scalar (text, histogram)
            series.setdefault(tag(value.tag), []).append((int(event.step), float(number)))
    return series
