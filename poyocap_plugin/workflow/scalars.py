"""The scalars a run logged, from whichever file Lightning's default logger wrote.

train.py gives Lightning no logger unless W&B is on, so Lightning picks its default: a
TensorBoard logger (``events.out.tfevents.*``) where ``tensorboard`` or ``tensorboardX`` is
installed, as it is with the plugin, and otherwise a CSV logger (``metrics.csv``). Both
hold the same ``(step, value)`` series; TensorBoard stores each name as :func:`tag` makes
it (``MovieSSIM()/test`` becomes ``MovieSSIM__/test``), so this module reads either file
with those names.
"""

from __future__ import annotations

import csv
import re
import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["find_metrics_file", "read_scalars", "tag"]

_EVENTS = "events.out.tfevents.*"
_CSV = "metrics.csv"
# a TFRecord: uint64 length, uint32 CRC of the length, the payload, uint32 CRC of it
_HEADER = struct.Struct("<QI")
_FOOTER = 4

# what TensorBoard's writers keep of a name; anything else becomes "_"
_TAG_CHARACTERS = re.compile(r"[^-/\w.]")

Series = dict[str, list[tuple[int, float]]]


def tag(name: str) -> str:
    """A logged name as TensorBoard stores it: other characters than letters, digits, ``_``,
    ``-``, ``.`` and ``/`` replaced by ``_``, without leading ``/``."""
    return _TAG_CHARACTERS.sub("_", name).lstrip("/")


def find_metrics_file(run_dir: Path) -> Path | None:
    """The run's event file (the newest, if a restart wrote several) or ``metrics.csv``."""
    events = sorted(Path(run_dir).glob(_EVENTS), key=lambda p: p.stat().st_mtime)
    if events:
        return events[-1]
    csv_file = Path(run_dir) / _CSV
    return csv_file if csv_file.is_file() else None


def read_scalars(path: Path) -> Series:
    """Every logged scalar of a TensorBoard event file or a Lightning CSV (``metrics.csv``).

    Returns:
        ``{tag(name): [(step, value), ...]}`` in the order they were logged.

    Raises:
        ValueError: If ``path`` is neither kind of file.
    """
    path = Path(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    if path.match(_EVENTS):
        return _read_events(path)
    raise ValueError(f"{path} is neither a CSV file (metrics.csv) nor a TensorBoard event file")


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
    from tensorboardX.proto.event_pb2 import Event

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
            series.setdefault(value.tag, []).append((int(event.step), float(number)))
    return series
