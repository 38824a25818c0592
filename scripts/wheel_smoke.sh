#!/usr/bin/env bash
# Build the wheel, install it in a fresh venv (no source tree on the path) and run aebench from it:
# catches a subpackage missing from the wheel, which an editable install never shows.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf build  # stale files from an earlier build would land in the wheel
"$PYTHON" -m build --wheel --no-isolation --outdir "$work/dist" . >/dev/null
wheel="$(ls "$work"/dist/aebench-*.whl)"
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
"$work/venv/bin/python" -m pip install -q "$wheel"
export AEBENCH_CACHE_DIR="$work/cache" MPLBACKEND=Agg
cd "$work"  # away from the repository: only the installed wheel can be imported
"$work/venv/bin/aebench" train --set dataset.size=16 --set model.channels=8,16 --latent-dim 4 --epochs 1 \
  --device cpu --out "$work/model/model.safetensors" >/dev/null
"$work/venv/bin/aebench" run --sampler gaussian --features fast --n 64 --no-figures --quiet \
  --checkpoint "$work/model/model.safetensors" --set dataset.size=16 --out "$work/run"
test -s "$work/run/results.json"
echo "wheel smoke: $(basename "$wheel") installs and runs"
