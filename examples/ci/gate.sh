#!/usr/bin/env bash
# The CI gate: compare a new run with the committed baseline, write the comparison and the run's report to
# the job summary, and exit as `aebench compare` does (0 pass, 1 regression, 2 cannot compare).
#   bash examples/ci/gate.sh BASELINE_RESULTS_JSON NEW_RUN_DIR [aebench compare options]
# AEBENCH (default: aebench on PATH) is the command; GITHUB_STEP_SUMMARY (default: stdout) the summary file.
set -uo pipefail
if [ $# -lt 2 ]; then
  echo "usage: gate.sh BASELINE_RESULTS_JSON NEW_RUN_DIR [aebench compare options]" >&2
  exit 2
fi
baseline="$1" new="$2"
shift 2
summary="${GITHUB_STEP_SUMMARY:-/dev/stdout}"
${AEBENCH:-aebench} compare "$baseline" "$new/results.json" --markdown "$@" > "$new/compare.md"
status=$?
cat "$new/compare.md" >> "$summary"
if [ -f "$new/report.md" ]; then
  { echo; cat "$new/report.md"; } >> "$summary"
fi
exit $status
