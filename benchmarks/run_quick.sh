#!/usr/bin/env bash
# The quick speed suite (about two minutes on a 2-core CPU) with a markdown summary of the ratios.
# Fails only when a benchmark fails (values that disagree with a baseline, errors), never on timings.
#   PYTHON=.venv-ci/bin/python bash benchmarks/run_quick.sh [extra pytest args]
# AEBENCH_BENCH=full for the real sizes; AEBENCH_BENCH_THREADS (default 1 here) limits every thread pool.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
export AEBENCH_BENCH="${AEBENCH_BENCH:-quick}"
export AEBENCH_BENCH_THREADS="${AEBENCH_BENCH_THREADS:-1}"
export MPLBACKEND=Agg
mkdir -p benchmarks/results
json="benchmarks/results/${AEBENCH_BENCH}.json"
rm -f "$json"
"$PYTHON" -m pytest benchmarks -q --benchmark-json="$json" "$@"
status=$?
if [ -f "$json" ]; then
  "$PYTHON" benchmarks/summarize.py "$json" --out benchmarks/results/summary.md || status=1
fi
exit $status
