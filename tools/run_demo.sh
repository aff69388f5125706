#!/usr/bin/env bash
# The README's main-job command: set the environment up when missing, then
# run the GLID demo (writes work_dirs/glid_demo/). Extra arguments go to
# tools/demo_glid.py. The stock-toolbox stack demo is tools/demo_stack.py.
set -eo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
source tools/ensure_env.sh
exec python tools/demo_glid.py "$@"
