#!/usr/bin/env bash
# Source this: runs tools/setup_env.sh when .venv is missing or was built
# from other set-up inputs (script, requirements, setup.py), then puts
# .venv/bin first on PATH.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GLID_MM_VENV:-$ROOT/.venv}"
want="$(cat "$ROOT/tools/setup_env.sh" "$ROOT"/requirements/*.txt "$ROOT/setup.py" | sha256sum | cut -d' ' -f1)"
have="$(cat "$VENV/.glid_mm_setup_stamp" 2>/dev/null || true)"
if [ "$want" != "$have" ] || [ ! -x "$VENV/bin/python" ]; then
  echo "[ensure_env] environment missing or out of date: running tools/setup_env.sh"
  bash "$ROOT/tools/setup_env.sh" ${GLID_MM_SETUP_ARGS:-} || return 1 2>/dev/null || exit 1
fi
export PATH="$VENV/bin:$PATH"
