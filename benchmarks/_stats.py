"""Summaries of learning figures across seeds, as JSON."""

from __future__ import annotations

from poyocap_plugin.workflow.statistics import mean_ci95


def mean_ci(values: list[float]) -> dict:
    """Mean and 95 % Student-t interval (``ci95`` None for one value), as a JSON dict."""
    summary = mean_ci95(values)
    ci95 = None if summary.ci95 is None else list(summary.ci95)
    return {"mean": summary.mean, "ci95": ci95, "n": len(values)}
