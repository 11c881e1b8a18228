"""The Markdown tables of ``run_all.py``'s results."""

from __future__ import annotations


def _data_path(result: dict) -> list[str]:
    lines = [
        "## Data path (one worker)",
        "",
        "| stage | path | latency (ms, median) | min-max (ms) | samples/s | input tokens "
        "| time / stock |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for stage, paths in result.items():
        for name, r in paths.items():
            lines.append(
                f"| {stage} | {name} | {r['latency_ms']:.2f} | {r['latency_ms_min']:.2f}-"
                f"{r['latency_ms_max']:.2f} | {r['samples_per_s']:.0f} | "
                f"{r['mean_input_tokens']:.0f} | {r['time_over_stock']:.2f} |"
            )
    return lines


def _train_step(result: list) -> list[str]:
    lines = [
        "## Training step (forward + backward + SparseLamb)",
        "",
        "| size | stage | model | step (s, median) | min-max (s) | tokens/s | TFLOP/s | "
        "peak MiB | params | attention |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    ratios = []
    for entry in result:
        for name, r in entry["rows"].items():
            peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.0f}"
            lines.append(
                f"| {entry['size']} | {entry['stage']} | {name} | {r['step_s']:.4f} | "
                f"{r['step_s_min']:.4f}-{r['step_s_max']:.4f} | {r['tokens_per_s']:.0f} | "
                f"{r['tflops_per_s']:.4f} | {peak} | {r['params']:,} | {r['attention']} |"
            )
        ratio = f"| {entry['size']} | {entry['stage']} | {entry['capoyo_over_stock']:.2f} |"
        if "capoyo_over_stock_plus_decoder" in entry:
            ratio += f" {entry['capoyo_over_stock_plus_decoder']:.2f} |"
        else:
            ratio += " - |"
        ratios.append(ratio)
    return [
        *lines,
        "",
        "| size | stage | CAPOYO / CalciumPOYOPlus | CAPOYO / (CalciumPOYOPlus + decoder) |",
        "|---|---|---:|---:|",
        *ratios,
    ]


def _prepare(result: dict) -> list[str]:
    lines = [
        "## Prepare (full-length sessions)",
        "",
        "| session | frames | ROIs | process (s) | statistics (s) | splits (s) | "
        "statistics + splits share | peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["sessions"]:
        lines.append(
            f"| {r['session_id']} | {r['n_frames']} | {r['n_rois']} | {r['process_s']:.1f} | "
            f"{r['statistics_s']:.3f} | {r['splits_s']:.3f} | "
            f"{100 * r['statistics_and_splits_share']:.2f} % | {r['prepare_peak_mib']:.0f} |"
        )
    return lines


def markdown(result: dict) -> str:
    """The results as Markdown: the machine, then one table per benchmark."""
    m = result["machine"]
    lines = [
        "# poyocap-plugin benchmarks",
        "",
        f"Machine: {m['host']}, {m['cpu_count']} CPUs, device {m['device']}, torch "
        f"{m['torch']} ({m['torch_threads']} threads), Python {m['python']}; load average "
        f"{m['load_average'][0]:.1f} at start, {m['load_average_after'][0]:.1f} at the end. "
        f"Precision: {result['settings']['precision']}.",
        "",
    ]
    if "data_path" in result:
        lines += [*_data_path(result["data_path"]), ""]
    if "train_step" in result:
        lines += [*_train_step(result["train_step"]), ""]
    if "prepare" in result:
        lines += [*_prepare(result["prepare"]), ""]
    return "\n".join(lines)
