#!/usr/bin/env bash
# mypy on the aebench package. The repository folders are mapped onto `aebench` (framework/ -> aebench,
# samplers/ -> aebench.samplers, models/ -> aebench.models), which mypy cannot follow, so it checks a
# tree of symbolic links with the installed layout.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
tree="$(mktemp -d)"
trap 'rm -rf "$tree"' EXIT
mkdir "$tree/aebench"
for entry in framework/*; do ln -s "$PWD/$entry" "$tree/aebench/$(basename "$entry")"; done
ln -s "$PWD/samplers" "$tree/aebench/samplers"
ln -s "$PWD/models" "$tree/aebench/models"
cd "$tree" && "$PYTHON" -m mypy --config-file "$OLDPWD/pyproject.toml" --cache-dir "$OLDPWD/.mypy_cache" -p aebench
