#!/usr/bin/env bash
# The main job: install everything (scripts/setup.sh), then run the POYO-CAP curriculum end
# to end at CPU size: simulate a small Allen-format dataset, prepare it with
# `brainsets prepare`, write the curriculum's dataset configs, pretrain (stage 1), finetune
# on movie frames and drifting gratings (stage 2) with and without the stage-1 trunk, and
# write a report. Rerunning resumes: finished stages are not run again.
# Outputs go under ${POYOCAP_DEMO_DIR:-runs/demo}/; the last line is the report's path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export UV_PYTHON_DOWNLOADS=never  # the pipeline's uv env uses this machine's Python 3.11
exec .venv/bin/poyocap curriculum "${POYOCAP_DEMO_DIR:-runs/demo}" --simulate
