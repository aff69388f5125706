#!/usr/bin/env bash
# The README's test command: set the environment up when missing, then
# pytest on several worker processes (pytest-xdist; one per core, at most 4,
# GLID_MM_TEST_WORKERS=N to choose, 0 for one process). Each test file runs
# in one worker (--dist loadfile), so the module fixtures that share a
# training run among a file's tests are built once.
#   bash tools/run_tests.sh [pytest args]
set -eo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source tools/ensure_env.sh
workers="${GLID_MM_TEST_WORKERS:-$(python -c 'import os; print(min(len(os.sched_getaffinity(0)), 4))')}"
if [ "$workers" -gt 0 ] 2>/dev/null; then
  exec python -m pytest tests -n "$workers" --dist loadfile "$@"
fi
exec python -m pytest tests "$@"
