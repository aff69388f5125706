#!/usr/bin/env bash
# The README's main-job command: set the environment up when missing, then
# run the demo (writes work_dirs/stack_demo/results.{md,json}).
set -eo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source tools/ensure_env.sh
exec python tools/demo_stack.py "$@"
