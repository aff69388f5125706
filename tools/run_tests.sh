#!/usr/bin/env bash
# The README's test command: set the environment up when missing, then pytest.
#   bash tools/run_tests.sh [pytest args]
set -eo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source tools/ensure_env.sh
exec python -m pytest tests "$@"
