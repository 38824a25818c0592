#!/usr/bin/env bash
# Whole pipeline at real sizes on one GPU (about 5 minutes on an H100); a tiny CPU smoke run without one.
#   bash benchmarks/gpu_check.sh [--cpu-smoke] [--n 50000] [--features inception] [--out DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export MPLBACKEND=Agg
exec "$PYTHON" benchmarks/gpu_check.py "$@"
