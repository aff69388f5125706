#!/usr/bin/env bash
# One-command set-up of the glid_mm environment at <project>/.venv.
#
#   bash tools/setup_env.sh            # CPU ops (any machine)
#   bash tools/setup_env.sh --cuda     # also build mmcv's CUDA ops (needs nvcc + GPU torch)
#
# Idempotent: a second run reuses the venv and the mmcv wheel cached under
# ${GLID_MM_CACHE:-~/.cache/glid_mm}/wheels, keyed by mmcv, torch, Python and
# the ops flavour, so a wheel built against another torch is never reused
# (pip's own wheel cache would hand one back: we never build through it).
# Each step prints what it does; its output goes to .setup_logs/<step>.log
# and a failure names the step and its log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GLID_MM_VENV:-$ROOT/.venv}"
LOGS="$ROOT/.setup_logs"
CACHE="${GLID_MM_CACHE:-$HOME/.cache/glid_mm}"
PYTHON="${GLID_MM_PYTHON:-}"
MMCV_VERSION="2.1.0"
WITH_CUDA=0

for arg in "$@"; do
  case "$arg" in
    --cuda) WITH_CUDA=1 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "setup_env.sh: unknown option '$arg' (known: --cuda)" >&2; exit 2 ;;
  esac
done

mkdir -p "$LOGS" "$CACHE/wheels"

# What the environment was built from; tools/ensure_env.sh compares it.
stamp_of_inputs() {
  cat "$ROOT/tools/setup_env.sh" "$ROOT"/requirements/*.txt "$ROOT/setup.py" |
    sha256sum | cut -d' ' -f1
}
CONSTRAINTS="$ROOT/requirements/constraints.txt"

step() {  # step <name> <description> <command...>
  local name="$1" desc="$2"; shift 2
  local log="$LOGS/$name.log"
  local t0=$SECONDS
  printf '[setup] %-14s %s ... ' "$name" "$desc"
  if "$@" >"$log" 2>&1; then
    printf 'ok (%ds)\n' $((SECONDS - t0))
  else
    printf 'FAILED\n'
    echo "[setup] step '$name' failed after $((SECONDS - t0))s; last lines of $log:" >&2
    tail -n 25 "$log" >&2
    echo "[setup] full log: $log" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- python
if [ -z "$PYTHON" ]; then
  for cand in python3.11 python3 python; do
    if command -v "$cand" >/dev/null 2>&1; then PYTHON="$cand"; break; fi
  done
fi
[ -n "$PYTHON" ] || { echo "[setup] no python3 found; set GLID_MM_PYTHON" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  step venv "create $VENV with $($PYTHON --version 2>&1)" "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
PIPC=("${PIP[@]}" install -c "$CONSTRAINTS")

step base "pip, setuptools>=77,<82, wheel, ninja, numpy<2" \
  "${PIPC[@]}" -U pip "setuptools>=77,<82" wheel ninja "numpy<2"
step torch "torch 2.14.1 + torchvision 0.29.1" \
  "${PIPC[@]}" torch==2.14.1 torchvision==0.29.1
step mmengine "mmengine 0.10.7 and mmcv's build requirements" \
  "${PIPC[@]}" mmengine==0.10.7 "opencv-python<4.12" addict packaging psutil pyyaml yapf pillow

# ---------------------------------------------------------------- mmcv
TORCH_VER="$("$PY" -c 'import torch; print(torch.__version__)')"
PY_TAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
FLAVOUR=cpu
if [ "$WITH_CUDA" = 1 ]; then
  command -v nvcc >/dev/null 2>&1 || { echo "[setup] --cuda needs nvcc on PATH" >&2; exit 1; }
  ARCH="${TORCH_CUDA_ARCH_LIST:-$("$PY" -c 'import torch; c=torch.cuda.get_device_capability(); print(f"{c[0]}.{c[1]}")')}"
  export TORCH_CUDA_ARCH_LIST="$ARCH"
  FLAVOUR="cuda-${ARCH//[^0-9a-zA-Z.]/_}"
fi
KEY="mmcv-${MMCV_VERSION}_torch-${TORCH_VER//+/_}_${PY_TAG}_${FLAVOUR}"
WHEEL_DIR="$CACHE/wheels/$KEY"

pch_env() {  # pch_env <dir>: with GCC, compile through tools/pch_cxx.sh
  # (a precompiled header for the op sources' first include: the same
  # program, built in about a third of the time; see that script). Other
  # compilers build as before.
  local cxx="${CXX:-c++}"
  if "$cxx" --version 2>/dev/null | grep -q 'Free Software Foundation'; then
    export GLID_MM_REAL_CXX="$cxx" GLID_MM_PCH_DIR="$1"
    export CXX="$ROOT/tools/pch_cxx.sh"
    echo "compiling through tools/pch_cxx.sh (precompiled headers in $1)"
  fi
}

build_mmcv() (  # a subshell: the compiler settings stay inside
  # Runs inside `if`, where bash ignores `set -e`: chain with && instead.
  local tmp; tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT  # sources, objects and ~0.6 GB of headers
  local src="$tmp/mmcv-$MMCV_VERSION"
  # --no-build-isolation: an isolated build env would take setuptools>=82,
  # which has no pkg_resources, and mmcv's setup.py imports it.
  "${PIP[@]}" download --no-deps --no-binary :all: --no-build-isolation \
      -c "$CONSTRAINTS" "mmcv==$MMCV_VERSION" -d "$tmp" &&
  tar -xzf "$tmp/mmcv-$MMCV_VERSION.tar.gz" -C "$tmp" &&
  # torch >= 2.10 headers need C++20.
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py" &&
  grep -q -- '-std=c++20' "$src/setup.py" &&
  rm -rf "$WHEEL_DIR.partial" && mkdir -p "$WHEEL_DIR.partial" &&
  pch_env "$tmp/pch" &&
  MMCV_WITH_OPS=1 FORCE_CUDA="$WITH_CUDA" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${PIP[@]}" wheel --no-build-isolation --no-deps --no-cache-dir \
      "$src" -w "$WHEEL_DIR.partial" &&
  ls "$WHEEL_DIR.partial"/mmcv-*.whl &&
  rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.partial" "$WHEEL_DIR" &&  # publish atomically
  rm -rf "$tmp"
)

if ! ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  step mmcv-build "build mmcv $MMCV_VERSION with ops for torch $TORCH_VER/$PY_TAG/$FLAVOUR (about 6 min on 2 cores)" build_mmcv
else
  echo "[setup] mmcv-build     reuse cached wheel $WHEEL_DIR"
fi
WHEEL_SHA="$(cat "$WHEEL_DIR"/mmcv-*.whl | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$VENV/.mmcv_wheel_sha256" 2>/dev/null)" = "$WHEEL_SHA" ] &&
   "$PY" -c 'import mmcv._ext' >/dev/null 2>&1; then
  echo "[setup] mmcv-install   mmcv from $KEY already installed"
else
  step mmcv-install "install mmcv from $WHEEL_DIR" \
    "${PIP[@]}" install --no-deps --force-reinstall --no-index "$WHEEL_DIR"/mmcv-*.whl
  echo "$WHEEL_SHA" > "$VENV/.mmcv_wheel_sha256"
fi

# ---------------------------------------------------------------- toolboxes
step toolboxes "mmdet 3.3.0, mmsegmentation 1.2.2, mmpretrain 1.2.0" \
  "${PIPC[@]}" "mmcv==$MMCV_VERSION" mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0
step mmpose "mmpose 1.3.2 without chumpy" "${PIP[@]}" install --no-deps mmpose==1.3.2
step runtime "pycocotools, xtcocotools and runtime requirements" \
  "${PIPC[@]}" "mmcv==$MMCV_VERSION" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"
step glid_mm "glid_mm (editable)" \
  "${PIPC[@]}" --no-deps --no-build-isolation -e "$ROOT"
step check "import glid_mm (version guard + compiled mmcv ops)" \
  "$PY" -c 'import glid_mm, mmcv.ops; print("glid_mm", glid_mm.__version__)'
stamp_of_inputs > "$VENV/.glid_mm_setup_stamp"
echo "[setup] done: $VENV (activate with: source $VENV/bin/activate)"
