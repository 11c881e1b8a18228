#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs the test suite. Extra arguments go to
# pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
export UV_PYTHON_DOWNLOADS=never  # the pipeline's uv env uses this machine's Python 3.11
exec .venv/bin/python -m pytest "$@"
