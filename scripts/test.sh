#!/usr/bin/env bash
# Installs everything (scripts/setup.sh), then runs the test suite. Extra arguments go to
# pytest, e.g. `bash scripts/test.sh -m "not slow"`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
