#!/usr/bin/env bash
# Run the whole test suite repeatedly while another process keeps one core busy, and report every failure:
# a test that fails only under load fails CI one day. Fix its cause; never retry or skip it.
#   bash scripts/suite_under_load.sh [RUNS=20] [pytest args...]
# Writes one log per run to ${LOG_DIR:-suite-under-load}/ and prints a summary line per run, then the failed
# tests with how often each failed. Exit status: 0 when every run passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
runs="${1:-20}"
shift || true
PYTHON="${PYTHON:-.venv/bin/python}"
logs="${LOG_DIR:-suite-under-load}"
mkdir -p "$logs"
busy() { while :; do :; done; }
busy &
busy_pid=$!
trap 'kill "$busy_pid" 2>/dev/null' EXIT
failed_runs=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  "$PYTHON" -m pytest -q -p no:randomly "$@" >"$logs/run-$i.log" 2>&1
  status=$?
  summary=$(grep -E '^(=+ )?[0-9]+ (passed|failed)|(passed|failed).* in [0-9.]+s' "$logs/run-$i.log" | tail -n 1)
  echo "run $i/$runs: exit $status, $(( $(date +%s) - start )) s: ${summary:-no summary (see $logs/run-$i.log)}"
  [ "$status" -eq 0 ] || failed_runs=$((failed_runs + 1))
done
echo "$failed_runs of $runs runs failed"
grep -hE '^(FAILED|ERROR) ' "$logs"/run-*.log | sed 's/ - .*//' | sort | uniq -c | sort -rn
[ "$failed_runs" -eq 0 ]
