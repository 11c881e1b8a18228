#!/usr/bin/env bash
# The main job: install everything (scripts/setup.sh), simulate a small Allen-format dataset,
# prepare it with `brainsets prepare`, and train on it with the stock POYO+ trainer.
# Outputs go under ${POYOCAP_DEMO_DIR:-demo}/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export UV_PYTHON_DOWNLOADS=never  # the pipeline's uv env uses this machine's Python 3.11
export PATH="$PWD/.venv/bin:$PATH"
out="${POYOCAP_DEMO_DIR:-demo}"

poyocap simulate --out-dir "$out/raw" --n-sessions 4 --n-rois 20 --movie-size 38 76 \
    --cre-line Sst-IRES-Cre --cre-line Cux2-CreERT2
brainsets prepare allen_brain_observatory_calcium --raw-dir "$out/raw" \
    --processed-dir "$out/processed" --use-raw-files -c 1 --template-size 16 32
poyocap train --config-name poyocap_smoke data_root="$out/processed" log_dir="$out/runs/smoke"
poyocap summary "$out/runs/smoke"
