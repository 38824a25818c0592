#!/usr/bin/env bash
# Bounded check of the whole pipeline on one CUDA GPU (under 5 minutes; results written after each section).
#   bash benchmarks/gpu_check.sh [--n 50000] [--features inception] [--budget-s 270] [--out DIR]
# Fails (exit 2) when torch sees no CUDA GPU; it never falls back to CPU sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PYTHON" ]; then
  echo "gpu_check: $PYTHON not found; run 'bash install.sh' first (with a CUDA torch: TORCH_SPEC), or set PYTHON" >&2
  exit 2
fi
export MPLBACKEND=Agg
# the script keeps to its own budget; this is the hard stop (what it measured is already on disk)
exec timeout --kill-after=10 300 "$PYTHON" benchmarks/gpu_check.py "$@"
