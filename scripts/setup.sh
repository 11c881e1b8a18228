#!/usr/bin/env bash
# Installs everything the project needs into .venv and fetches the stock trainer.
# Safe to rerun: it reinstalls the plugin from the working tree each time.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
# torch is pinned here, not in the package: on this machine torch==2.13.0 is a CPU wheel
# on disk, while an unpinned torch would pull a multi-GB CUDA build. On a GPU machine set
# TORCH_SPEC to the build you want (e.g. TORCH_SPEC="torch==2.13.0 xformers").
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# --no-compile: Python compiles what it imports on first use, instead of pip compiling all
# ~15,600 modules of the dependencies at install time, most of which no run imports.
PIP=(.venv/bin/python -m pip install --quiet --no-compile)
# shellcheck disable=SC2086
"${PIP[@]}" $TORCH_SPEC
# setuptools never empties build/: a module moved or deleted since the last install would
# still be copied into site-packages from there and hide a broken import.
rm -rf build
"${PIP[@]}" ".[dev]"
# Non-editable on purpose: brainsets finds named pipelines only in site-packages. The dev
# extra installed the build backend, so this build needs no isolated environment.
"${PIP[@]}" --no-build-isolation --no-deps --force-reinstall .
# The stock POYO+ trainer (torch_brain 0.1.2 sdist, checked by SHA-256), into the cache.
.venv/bin/poyocap trainer
