"""Where each analysis leaves its result, and the curriculum report's links to them.

Each ``poyocap analyze`` command writes ``<name>.json`` (with the ``data_root`` it ran on)
beside its CSV and PNG. A curriculum report links the ones found in its own output folder
that ran on its data, so an analysis run into the curriculum's folder shows up there.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

__all__ = ["ANALYSES", "CURVE_VERDICTS", "analyses_section", "result_path"]

logger = logging.getLogger(__name__)

#: the analyses, by command name
ANALYSES = ("landscape", "fisher", "scaling")
#: a scaling curve's verdict in a word, by whether its mean rises at every larger size
#: (None: one size), as ``scaling.json`` records it under ``monotonic``
CURVE_VERDICTS = {True: "monotonic", False: "not monotonic", None: "one size"}


def result_path(out_dir: Path, name: str) -> Path:
    """``<out_dir>/<name>.json``: where the analysis ``name`` writes its result."""
    if name not in ANALYSES:
        raise ValueError(f"unknown analysis {name!r}; one of {ANALYSES}")
    return Path(out_dir) / f"{name}.json"


def _headline(name: str, record: dict) -> str:
    if name == "landscape" and record.get("roughness_ratio") is not None:
        return (
            f"roughness unpredictable / predictable {record['roughness_ratio']:.3g}x "
            f"(paper {record['paper_roughness_ratio']:g}x)"
        )
    if name == "fisher":
        ratio = record.get("ratio_predictable_over_unpredictable", {}).get("trained")
        if ratio is not None:
            paper = record["paper_ratio"]
            return f"Fisher trace predictable / unpredictable {ratio:.3g}x (paper {paper:g}x)"
    if name == "scaling" and record.get("monotonic"):
        return "test metric against size: " + "; ".join(
            f"{arm} {metric} {CURVE_VERDICTS[rises]}"
            for arm, by_metric in record["monotonic"].items()
            for metric, rises in by_metric.items()
        )
    return "see the file"


def analyses_section(out_dir: Path, data_root: Path, rel: Callable[[Path], str]) -> list[str]:
    """The report's lines linking the analyses in ``out_dir`` that ran on ``data_root``.

    Args:
        out_dir: The curriculum's output folder.
        data_root: The report's processed-data root.
        rel: A path as the report links it.

    Returns:
        Markdown lines; none when no analysis ran there on the same data.
    """
    lines = []
    for name in ANALYSES:
        path = result_path(out_dir, name)
        if not path.is_file():
            continue
        try:
            record = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            logger.warning("%s is not JSON (%s): not linked from the report", path, error)
            continue
        if Path(record.get("data_root", "")).resolve() != Path(data_root).resolve():
            continue
        figure = path.with_suffix(".png")
        lines.append(
            f"- `poyocap analyze {name}`: {_headline(name, record)}; "
            f"[{rel(path)}]({rel(path)}), [{rel(figure)}]({rel(figure)})"
        )
    if not lines:
        return []
    return ["## Analyses on the same data (docs/analyses.md)", "", *lines, ""]
