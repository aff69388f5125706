#!/usr/bin/env bash
# Install glid_mm on an air-gapped box from a wheelhouse made by
# tools/build_wheelhouse.sh, into the Python that already has the box's torch.
#
#   bash tools/install_offline.sh WHEELHOUSE [--cuda] [--dry-run]
#
#   --cuda     also build mmcv's CUDA ops (needs nvcc; TORCH_CUDA_ARCH_LIST
#              is read from the GPU unless set)
#   --dry-run  run the read-only checks, print the install commands
#
# Python: ${GLID_MM_PYTHON:-python3}; torch and torchvision must be
# installed there already and are never installed or replaced (to keep the
# box's packages apart, first: python3 -m venv --system-site-packages .venv
# and set GLID_MM_PYTHON=.venv/bin/python). Every pip call is --no-index.
# mmcv is built from its sdist (-std=c++17 patched to c++20 for torch >=
# 2.10 headers, MMCV_WITH_OPS=1) and cached under
# ${GLID_MM_CACHE:-~/.cache/glid_mm}/wheels like tools/setup_env.sh does.
# Each step prints what it does; its output goes to
# ${GLID_MM_LOG_DIR:-.setup_logs/offline}/<step>.log and a failure names the
# step and its log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOGS="${GLID_MM_LOG_DIR:-$ROOT/.setup_logs/offline}"
CACHE="${GLID_MM_CACHE:-$HOME/.cache/glid_mm}"
PY="${GLID_MM_PYTHON:-python3}"
WH=""
WITH_CUDA=0
DRY=0

die() { echo "install_offline.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cuda) WITH_CUDA=1 ;;
    --dry-run) DRY=1 ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$WH" ] || die "one WHEELHOUSE expected, got '$WH' and '$1'"; WH="$1" ;;
  esac
  shift
done
[ -n "$WH" ] || die "missing WHEELHOUSE (usage: install_offline.sh WHEELHOUSE [--cuda] [--dry-run])"
[ -d "$WH" ] || die "wheelhouse '$WH' is not a directory"
WH="$(cd "$WH" && pwd)"
for f in wheelhouse.env requirements.txt constraints.txt manifest.txt SHA256SUMS; do
  [ -f "$WH/$f" ] || die "wheelhouse '$WH' has no $f (was it made by tools/build_wheelhouse.sh?)"
done
whenv() {  # value of KEY in wheelhouse.env (read, never sourced)
  grep -E "^$1=" "$WH/wheelhouse.env" | head -n 1 | cut -d= -f2-
}
WH_PY="$(whenv GLID_MM_WH_PYTHON)"
MMCV="$(whenv GLID_MM_WH_MMCV)"
MMPOSE="$(whenv GLID_MM_WH_MMPOSE)"
[ -n "$WH_PY" ] && [ -n "$MMCV" ] && [ -n "$MMPOSE" ] ||
  die "$WH/wheelhouse.env lacks GLID_MM_WH_PYTHON / _MMCV / _MMPOSE"
command -v "$PY" >/dev/null 2>&1 || die "python '$PY' not found (set GLID_MM_PYTHON)"
if [ "$WITH_CUDA" = 1 ] && ! command -v nvcc >/dev/null 2>&1; then
  die "--cuda needs nvcc on PATH (the CUDA toolkit that matches torch's CUDA)"
fi
# absolute, as later steps run in other folders
[[ "$PY" != */* ]] || PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"

mkdir -p "$LOGS"
# Print a command the way a shell user would type it.
show() {
  local a out="   "
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=+,@%-]+$ ]]; then out+=" $a"
    else out+=" '${a//\'/\'\\\'\'}'"; fi
  done
  echo "$out"
}
step() {  # step <name> <description> <command...>
  local name="$1" desc="$2"; shift 2
  local log="$LOGS/$name.log" t0=$SECONDS
  printf '[offline] %-13s %s ... ' "$name" "$desc"
  if "$@" >"$log" 2>&1; then
    printf 'ok (%ds)\n' $((SECONDS - t0))
  else
    printf 'FAILED\n'
    echo "[offline] step '$name' failed after $((SECONDS - t0))s; last lines of $log:" >&2
    tail -n 25 "$log" >&2
    echo "[offline] full log: $log" >&2
    exit 1
  fi
}
# An install step: printed instead of run under --dry-run.
istep() {
  if [ "$DRY" = 1 ]; then
    printf '[offline] %-13s %s: would run\n' "$1" "$2"; shift 2
    show "$@"
  else
    step "$@"
  fi
}

# ---------------------------------------------------------------- checks
# (read-only: they run under --dry-run too)
HAVE_PY="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[ "$HAVE_PY" = "$WH_PY" ] || {
  echo "[offline] the wheelhouse was built for Python $WH_PY but $PY is Python" \
       "$HAVE_PY; rebuild it with: bash tools/build_wheelhouse.sh --python-version $HAVE_PY" >&2
  exit 1
}
step verify "check $(grep -c . "$WH/SHA256SUMS") files against $WH/SHA256SUMS" \
  bash -c 'cd "$1" && sha256sum --quiet -c SHA256SUMS' _ "$WH"
step torch "find the preinstalled torch and torchvision in $PY" \
  "$PY" -c 'import torch, torchvision; print("TORCH", torch.__version__, torchvision.__version__, torch.version.cuda, torch.cuda.is_available())'
read -r _ TORCH_VER TV_VER TORCH_CUDA CUDA_OK < <(grep '^TORCH ' "$LOGS/torch.log")
echo "[offline]   torch $TORCH_VER, torchvision $TV_VER, built for CUDA $TORCH_CUDA, GPU visible: $CUDA_OK"

PY_TAG="cp${HAVE_PY/./}"
FLAVOUR=cpu
if [ "$WITH_CUDA" = 1 ]; then
  [ "$TORCH_CUDA" != None ] || { echo "[offline] --cuda but torch $TORCH_VER is a CPU build" >&2; exit 1; }
  if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
    [ "$CUDA_OK" = True ] || { echo "[offline] --cuda: no GPU visible; set TORCH_CUDA_ARCH_LIST (e.g. 9.0)" >&2; exit 1; }
    TORCH_CUDA_ARCH_LIST="$("$PY" -c 'import torch; c = torch.cuda.get_device_capability(); print(f"{c[0]}.{c[1]}")')"
  fi
  export TORCH_CUDA_ARCH_LIST
  FLAVOUR="cuda-${TORCH_CUDA_ARCH_LIST//[^0-9a-zA-Z.]/_}"
fi

# Keep torch/torchvision exactly as found: pip may not replace them.
KEEP="$LOGS/keep-torch.txt"
"$PY" -c 'from importlib.metadata import version as v; print("torch==" + v("torch")); print("torchvision==" + v("torchvision"))' > "$KEEP"
PIP=("$PY" -m pip --disable-pip-version-check)
PIPI=("${PIP[@]}" install --no-index --find-links "$WH" -c "$WH/constraints.txt" -c "$KEEP")

# mmpretrain 1.2 does not import under transformers 5.
TF_VER="$("$PY" -c 'from importlib.metadata import version; print(version("transformers"))' 2>/dev/null || true)"
if [ -n "$TF_VER" ] && [ "${TF_VER%%.*}" -ge 5 ]; then
  if compgen -G "$WH/transformers-4.*.whl" >/dev/null; then
    istep transformers "replace transformers $TF_VER by transformers<5 (mmpretrain 1.2)" \
      "${PIPI[@]}" "transformers<5"
  else
    echo "[offline] transformers $TF_VER is installed and mmpretrain 1.2 does not import" \
         "under transformers 5: $PY -m pip uninstall transformers, or rebuild the" \
         "wheelhouse with --with-transformers" >&2
    exit 1
  fi
fi

# ---------------------------------------------------------------- installs
NUMPY_SPEC="$(whenv GLID_MM_WH_NUMPY)"
NUMPY_NOTE="$("$PY" - "$NUMPY_SPEC" 2>/dev/null <<'PYEOF' || true
import sys
from importlib.metadata import version
from pip._vendor.packaging.specifiers import SpecifierSet
have = version('numpy')
if have not in SpecifierSet(sys.argv[1]):
    print(f'numpy {have} is installed but the wheelhouse was built for '
          f'numpy{sys.argv[1]}: pip will replace it (rebuild the wheelhouse '
          'with --numpy to match the numpy of this torch instead)')
PYEOF
)"
[ -z "$NUMPY_NOTE" ] || echo "[offline]   note: $NUMPY_NOTE"
istep base "setuptools>=77,<82, wheel, ninja, Cython, numpy$NUMPY_SPEC" \
  "${PIPI[@]}" "setuptools>=77,<82" wheel ninja "Cython>=0.27.3" "numpy$NUMPY_SPEC"
istep deps "mmengine, mmdet, mmsegmentation, mmpretrain and requirements" \
  "${PIPI[@]}" -r "$WH/requirements.txt"
# A wheel where the wheelhouse has one, else built here against our numpy.
istep xtcocotools "xtcocotools (wheel or sdist built against the installed numpy)" \
  "${PIPI[@]}" --no-deps --no-build-isolation --no-cache-dir "xtcocotools>=1.14"

KEY="mmcv-${MMCV}_torch-${TORCH_VER//+/_}_${PY_TAG}_${FLAVOUR}"
WHEEL_DIR="$CACHE/wheels/$KEY"
SDIST="$WH/mmcv-$MMCV.tar.gz"
build_mmcv() {
  # Runs inside `if` (set -e is off there): chain with &&.
  local tmp; tmp="$(mktemp -d)"
  local src="$tmp/mmcv-$MMCV"
  tar -xzf "$SDIST" -C "$tmp" &&
  # torch >= 2.10 headers need C++20.
  sed -i 's/-std=c++17/-std=c++20/g' "$src/setup.py" &&
  grep -q -- '-std=c++20' "$src/setup.py" &&
  rm -rf "$WHEEL_DIR.partial" && mkdir -p "$WHEEL_DIR.partial" &&
  # --no-build-isolation: build against the installed torch and setuptools<82
  # (mmcv's setup.py imports pkg_resources).
  MMCV_WITH_OPS=1 FORCE_CUDA="$WITH_CUDA" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
    "${PIP[@]}" wheel --no-index --no-build-isolation --no-deps --no-cache-dir \
      "$src" -w "$WHEEL_DIR.partial" &&
  ls "$WHEEL_DIR.partial"/mmcv-*.whl &&
  rm -rf "$WHEEL_DIR" && mv "$WHEEL_DIR.partial" "$WHEEL_DIR" &&
  rm -rf "$tmp"
}
if ls "$WHEEL_DIR"/mmcv-*.whl >/dev/null 2>&1; then
  echo "[offline] mmcv-build     reuse cached wheel $WHEEL_DIR"
elif [ "$DRY" = 1 ]; then
  echo "[offline] mmcv-build     build mmcv $MMCV with ops: would run"
  echo "    tar -xzf $SDIST -C TMP && sed -i 's/-std=c++17/-std=c++20/g' TMP/mmcv-$MMCV/setup.py"
  show env MMCV_WITH_OPS=1 FORCE_CUDA="$WITH_CUDA" TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-}" \
    "${PIP[@]}" wheel --no-index --no-build-isolation --no-deps --no-cache-dir \
    "TMP/mmcv-$MMCV" -w "$WHEEL_DIR"
else
  [ -f "$SDIST" ] || { echo "[offline] $SDIST missing" >&2; exit 1; }
  mkdir -p "$CACHE/wheels"
  step mmcv-build "build mmcv $MMCV with ops for torch $TORCH_VER/$PY_TAG/$FLAVOUR (10+ min)" build_mmcv
fi
if compgen -G "$WHEEL_DIR/mmcv-*.whl" >/dev/null; then MMCV_WHEEL=("$WHEEL_DIR"/mmcv-*.whl)
else MMCV_WHEEL=("$WHEEL_DIR/mmcv-$MMCV-TAGS.whl"); fi  # dry run
istep mmcv-install "install mmcv from $WHEEL_DIR" \
  "${PIP[@]}" install --no-index --no-deps --force-reinstall "${MMCV_WHEEL[@]}"
istep mmpose "mmpose $MMPOSE without chumpy" \
  "${PIP[@]}" install --no-index --find-links "$WH" --no-deps "mmpose==$MMPOSE"
# pip < 25.3 would run the legacy `setup.py develop`, which setuptools >= 80
# turns into an isolated build that goes to the network: ask for PEP 660.
PEP517=()
if "${PIP[@]}" install --help 2>/dev/null | grep -q -- --use-pep517; then PEP517=(--use-pep517); fi
istep glid_mm "glid_mm (editable)" \
  "${PIP[@]}" install --no-index --no-deps --no-build-isolation ${PEP517[@]+"${PEP517[@]}"} -e "$ROOT"

CHECK='import glid_mm, mmcv.ops; print("glid_mm", glid_mm.__version__, "mmcv ops built for CUDA", mmcv.ops.get_compiling_cuda_version())'
if [ "$WITH_CUDA" = 1 ]; then
  CHECK="$CHECK"'; assert mmcv.ops.get_compiling_cuda_version() != "not available", "mmcv was built without CUDA ops"'
fi
istep check "import glid_mm, mmcv.ops" "$PY" -c "$CHECK"
[ "$DRY" = 1 ] && exit 0
grep '^glid_mm ' "$LOGS/check.log" | sed 's/^/[offline]   /'
echo "[offline] done: glid_mm installed into $("$PY" -c 'import sys; print(sys.prefix)')"
