#!/usr/bin/env bash
# Lint as CI runs it: flake8, isort and yapf with the settings in setup.cfg.
#   bash tools/lint.sh          # check (exit 1 on any finding)
#   bash tools/lint.sh --fix    # rewrite imports (isort) and layout (yapf)
set -eo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source tools/ensure_env.sh
PATHS=(glid_mm tools tests configs setup.py)
if [ "${1:-}" = "--fix" ]; then
  isort "${PATHS[@]}"
  yapf --in-place --recursive --parallel "${PATHS[@]}"
fi
status=0
echo "[lint] flake8"; flake8 "${PATHS[@]}" || status=1
echo "[lint] isort"; isort --check-only --diff "${PATHS[@]}" || status=1
echo "[lint] yapf"; yapf --diff --recursive --parallel "${PATHS[@]}" || status=1
[ "$status" = 0 ] && echo "[lint] clean"
exit "$status"
