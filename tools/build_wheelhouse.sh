#!/usr/bin/env bash
# Fill a wheelhouse for an air-gapped GPU box (run on a connected machine).
#
#   bash tools/build_wheelhouse.sh [--out DIR] [--python-version X.Y]
#        [--platform PLAT ...] [--numpy SPEC] [--with-transformers] [--dry-run]
#
#   --out DIR            folder to fill (default: wheelhouse/, git-ignored)
#   --python-version X.Y target Python (default: the interpreter running pip)
#   --platform PLAT      target platform tag, repeatable (default: this
#                        machine's, e.g. manylinux_2_36_x86_64); manylinux
#                        tags are expanded to the older manylinux_2_17..
#                        and manylinux2014 tags the target glibc also accepts
#   --numpy SPEC         numpy range on the target (default '<2' for Python
#                        <= 3.11, '>=2' for 3.12+): match the target's torch
#   --with-transformers  also download transformers<5 (mmpretrain 1.2 does
#                        not import under transformers 5)
#   --dry-run            print the pip commands, download nothing
#
# The box keeps its own CUDA torch/torchvision: nothing here pulls them.
# Contents: wheels for the target (pip download --only-binary=:all:), the
# mmcv 2.1.0 sdist (built on the box), the xtcocotools sdist where no wheel
# exists for the target, mmpose (--no-deps: chumpy does not build),
# requirements.txt / constraints.txt / wheelhouse.env for
# tools/install_offline.sh, manifest.txt and SHA256SUMS.
# Runs pip with ${GLID_MM_PYTHON:-python3}, which needs numpy and a
# setuptools with pkg_resources (< 82): pip reads the mmcv and xtcocotools
# sdists' metadata by running their setup.py.
# Logs: ${GLID_MM_LOG_DIR:-.setup_logs/wheelhouse}/<step>.log.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOGS="${GLID_MM_LOG_DIR:-$ROOT/.setup_logs/wheelhouse}"
PY="${GLID_MM_PYTHON:-python3}"
OUT="$ROOT/wheelhouse"
PYVER=""
PLATFORMS=()
NUMPY_SPEC=""
WITH_TRANSFORMERS=0
DRY=0

# OpenMMLab pins (requirements/mminstall.txt gives the ranges glid_mm accepts).
MMENGINE=0.10.7 MMCV=2.1.0 MMDET=3.3.0 MMSEG=1.2.2 MMPOSE=1.3.2 MMPRETRAIN=1.2.0

die() { echo "build_wheelhouse.sh: $*" >&2; exit 2; }
need_value() { [ $# -ge 2 ] && [ -n "$2" ] && [ "${2#--}" = "$2" ] ||
  die "option '$1' needs a value"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --out|-o) need_value "$@"; OUT="$2"; shift 2 ;;
    --python-version) need_value "$@"; PYVER="$2"; shift 2 ;;
    --platform) need_value "$@"; PLATFORMS+=("$2"); shift 2 ;;
    --numpy) need_value "$@"; NUMPY_SPEC="$2"; shift 2 ;;
    --with-transformers) WITH_TRANSFORMERS=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1 {sub(/^# ?/, ""); print}' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

command -v "$PY" >/dev/null 2>&1 || die "python '$PY' not found (set GLID_MM_PYTHON)"
# absolute, as later steps run in other folders
[[ "$PY" != */* ]] || PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")"
HOST_PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
PYVER="${PYVER:-$HOST_PYVER}"
[[ "$PYVER" =~ ^3\.[0-9]+$ ]] || die "--python-version '$PYVER' is not of the form 3.Y"
CP="cp${PYVER/./}"
MINOR="${PYVER#3.}"
if [ -z "$NUMPY_SPEC" ]; then
  if [ "$MINOR" -le 11 ]; then NUMPY_SPEC="<2"; else NUMPY_SPEC=">=2"; fi
fi
# numpy 1 targets: xtcocotools wheels and opencv-python < 4.12 need it.
NUMPY1=0
[[ ",$NUMPY_SPEC," =~ ,(<2(\.0)*|<=?1[.0-9]*|==1[.0-9]*|~=1[.0-9]*), ]] && NUMPY1=1
SPEC_RE='^(<|<=|>|>=|==|!=|~=)[0-9][0-9.]*(,(<|<=|>|>=|==|!=|~=)[0-9][0-9.]*)*$'
[[ "$NUMPY_SPEC" =~ $SPEC_RE ]] ||
  die "--numpy '$NUMPY_SPEC' is not a version range like '<2' or '>=2'"

if [ ${#PLATFORMS[@]} -eq 0 ]; then
  HOST_PLAT="$("$PY" -c 'import platform as p; l = p.libc_ver(); print("manylinux_%s_%s" % (l[1].replace(".", "_"), p.machine()) if l[0] == "glibc" else "")')"
  [ -n "$HOST_PLAT" ] || die "cannot tell this machine's glibc platform; pass --platform (e.g. manylinux_2_28_x86_64)"
  PLATFORMS=("$HOST_PLAT")
fi

# manylinux_2_N_ARCH -> manylinux_2_N.. manylinux_2_17_ARCH + manylinux2014_ARCH
# (pip expands manylinux2014 to 2010/1 itself, but not the PEP 600 names).
expand_platform() {
  local p="$1" arch glibc
  if [[ "$p" =~ ^manylinux2014_(.+)$ ]]; then
    echo "$p"; echo "manylinux_2_17_${BASH_REMATCH[1]}"
  elif [[ "$p" =~ ^manylinux_2_([0-9]+)_(.+)$ ]]; then
    glibc="${BASH_REMATCH[1]}" arch="${BASH_REMATCH[2]}"
    [ "$glibc" -ge 17 ] || die "--platform '$p': glibc 2.$glibc is older than manylinux2014 (2.17)"
    for ((i = glibc; i >= 17; i--)); do echo "manylinux_2_${i}_$arch"; done
    echo "manylinux2014_$arch"
  elif [[ "$p" =~ ^[a-z0-9_]+$ ]]; then
    echo "$p"
  else
    die "--platform '$p' is not a platform tag like manylinux_2_28_x86_64"
  fi
}
ALL_PLATS=()
for p in "${PLATFORMS[@]}"; do
  tags="$(expand_platform "$p")" || exit 2
  for tag in $tags; do
    [[ " ${ALL_PLATS[*]} " == *" $tag "* ]] || ALL_PLATS+=("$tag")
  done
done
TARGET=(--python-version "$PYVER" --implementation cp)
for tag in "${ALL_PLATS[@]}"; do TARGET+=(--platform "$tag"); done

case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
REQ="$OUT/requirements.txt" CON="$OUT/constraints.txt"
PIP=("$PY" -m pip --disable-pip-version-check)
BIN=("${PIP[@]}" download --only-binary=:all: "${TARGET[@]}" -d "$OUT")
SDIST=("${PIP[@]}" download --no-deps --no-binary=:all: --no-build-isolation -d "$OUT")

# ---------------------------------------------------------------- inputs
# Everything glid_mm needs but torch/torchvision and the sdists below:
# glid_mm's runtime and test requirements (its numpy pin replaced by the
# target's), the toolboxes, the runtime requirements of mmcv and mmpose and
# the build requirements of mmcv and xtcocotools.
_requirements() {
  echo "# generated by tools/build_wheelhouse.sh for $CP (${PLATFORMS[*]})"
  echo "mmengine==$MMENGINE"
  echo "mmdet==$MMDET"
  echo "mmsegmentation==$MMSEG"
  echo "mmpretrain==$MMPRETRAIN"
  echo "# mmcv $MMCV runtime requirements (mmcv itself is built from its sdist)"
  printf '%s\n' addict packaging pillow pyyaml yapf opencv-python
  echo "# mmpose $MMPOSE runtime requirements but chumpy, torchvision, xtcocotools"
  printf '%s\n' json_tricks munkres matplotlib scipy
  echo "# build requirements (mmcv, xtcocotools) and set-up extras"
  printf '%s\n' "setuptools>=77,<82" wheel ninja "Cython>=0.27.3" psutil "numpy$NUMPY_SPEC"
  echo "# requirements/runtime.txt and tests.txt of glid_mm"
  grep -hv -e '^[[:space:]]*#' -e '^[[:space:]]*$' \
      "$ROOT/requirements/runtime.txt" "$ROOT/requirements/tests.txt" |
    sed 's/[[:space:]]*#.*//' | grep -v -i -e '^numpy' -e '^xtcocotools'
}
requirements_txt() { _requirements | awk '!seen[$0]++'; }
constraints_txt() {
  echo "# generated by tools/build_wheelhouse.sh for $CP"
  echo "numpy$NUMPY_SPEC"
  if [ "$NUMPY1" = 1 ]; then
    echo "# opencv-python >= 4.12 requires numpy >= 2"
    echo "opencv-python<4.12"
    echo "opencv-python-headless<4.12"
  else
    echo "# mmcv $MMCV and mmengine $MMENGINE predate OpenCV 5"
    echo "opencv-python<5"
    echo "opencv-python-headless<5"
  fi
  echo "# 82 dropped pkg_resources (mmcv's setup.py, mmengine's mmdet:: lookup)"
  echo "setuptools>=77,<82"
  echo "# mmpretrain $MMPRETRAIN does not import under transformers 5"
  echo "transformers<5"
  echo "mmengine==$MMENGINE"
  echo "mmcv==$MMCV"
  echo "mmdet==$MMDET"
  echo "mmsegmentation==$MMSEG"
  echo "mmpose==$MMPOSE"
  echo "mmpretrain==$MMPRETRAIN"
}

# ---------------------------------------------------------------- steps
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
  if [ "$DRY" = 1 ]; then
    printf '[wheelhouse] %-13s %s: would run\n' "$name" "$desc"
    show "$@"
    return 0
  fi
  printf '[wheelhouse] %-13s %s ... ' "$name" "$desc"
  if "$@" >"$log" 2>&1; then
    printf 'ok (%ds)\n' $((SECONDS - t0))
  else
    printf 'FAILED\n'
    echo "[wheelhouse] step '$name' failed after $((SECONDS - t0))s; last lines of $log:" >&2
    tail -n 25 "$log" >&2
    echo "[wheelhouse] full log: $log" >&2
    exit 1
  fi
}

echo "[wheelhouse] target $CP on ${ALL_PLATS[*]}, numpy$NUMPY_SPEC -> $OUT"
if [ "$PYVER" != "$HOST_PYVER" ]; then
  echo "[wheelhouse] note: pip runs on Python $HOST_PYVER; environment markers" \
       "(python_version < ...) are evaluated for it, not for $PYVER." \
       "Set GLID_MM_PYTHON to a Python $PYVER to avoid surprises."
fi

if [ "$DRY" = 1 ]; then
  echo "[wheelhouse] requirements.txt would be:"; requirements_txt | sed 's/^/    /'
  echo "[wheelhouse] constraints.txt would be:"; constraints_txt | sed 's/^/    /'
else
  "$PY" -c 'import numpy, pkg_resources' 2>/dev/null || {
    echo "[wheelhouse] $PY needs numpy and a setuptools with pkg_resources (<82)" \
         "to read the mmcv/xtcocotools sdists; use the glid_mm .venv" \
         "(GLID_MM_PYTHON=.venv/bin/python) or: $PY -m pip install numpy 'setuptools>=77,<82'" >&2
    exit 1
  }
  mkdir -p "$OUT" "$LOGS"
  requirements_txt > "$REQ"
  constraints_txt > "$CON"
fi

step wheels "wheels for $CP: toolboxes and their requirements" \
  "${BIN[@]}" -c "$CON" -r "$REQ"
step mmpose "mmpose $MMPOSE wheel (--no-deps: chumpy does not build)" \
  "${BIN[@]}" --no-deps "mmpose==$MMPOSE"
step mmcv "mmcv $MMCV sdist (no wheel for a new torch; built on the box)" \
  "${SDIST[@]}" "mmcv==$MMCV"

# xtcocotools: a wheel where one exists for the target (built against
# numpy 1), else its sdist (built on the box against the box's numpy).
xtcocotools_wheel() {
  local log="$LOGS/xtcocotools-wheel.log"
  if "${BIN[@]}" --no-deps -c "$CON" "xtcocotools>=1.14" >"$log" 2>&1; then
    echo "xtcocotools: wheel for $CP"
  elif grep -q 'No matching distribution' "$log"; then
    echo "xtcocotools: no wheel for $CP; taking the sdist"
    "${SDIST[@]}" "xtcocotools>=1.14"
  else
    cat "$log"; return 1
  fi
}
if [ "$DRY" = 1 ]; then
  step xtcocotools "xtcocotools wheel for $CP" \
    "${BIN[@]}" --no-deps -c "$CON" "xtcocotools>=1.14"
  step xtcocotools "xtcocotools sdist, only if no wheel exists for $CP" \
    "${SDIST[@]}" "xtcocotools>=1.14"
else
  step xtcocotools "xtcocotools (wheel for $CP, else sdist)" xtcocotools_wheel
  grep '^xtcocotools:' "$LOGS/xtcocotools.log" | sed 's/^/[wheelhouse]   /'
fi
if [ "$WITH_TRANSFORMERS" = 1 ]; then
  step transformers "transformers<5 for mmpretrain $MMPRETRAIN" \
    "${BIN[@]}" -c "$CON" "transformers<5"
fi
[ "$DRY" = 1 ] && exit 0

# ---------------------------------------------------------------- checks
stray="$(cd "$OUT" && ls | grep -i -E '^(torch|torchvision|triton|nvidia_|chumpy)[-_]' || true)"
if [ -n "$stray" ]; then
  echo "[wheelhouse] a requirement pulled in packages the box must keep or" \
       "cannot build: $stray (see $LOGS/wheels.log)" >&2
  exit 1
fi
for f in "mmcv-$MMCV.tar.gz" "mmpose-$MMPOSE-*.whl" "mmengine-$MMENGINE-*.whl" \
         "xtcocotools-*"; do
  compgen -G "$OUT/$f" >/dev/null || { echo "[wheelhouse] $f missing in $OUT" >&2; exit 1; }
done

# ---------------------------------------------------------------- manifest
{
  echo "GLID_MM_WH_PYTHON=$PYVER"
  echo "GLID_MM_WH_PLATFORMS=${ALL_PLATS[*]}"
  echo "GLID_MM_WH_NUMPY=$NUMPY_SPEC"
  echo "GLID_MM_WH_MMCV=$MMCV"
  echo "GLID_MM_WH_MMPOSE=$MMPOSE"
} > "$OUT/wheelhouse.env"
(
  cd "$OUT"
  files=$(ls | grep -E '\.(whl|tar\.gz|zip)$' | sort)
  {
    echo "# glid_mm wheelhouse for $CP on ${ALL_PLATS[*]}"
    echo "# built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $("$PY" -m pip --version | cut -d' ' -f1-2)"
    echo "# kind    size_kib  file"
    for f in $files; do
      case "$f" in *.whl) kind=wheel ;; *) kind=sdist ;; esac
      printf '%-8s %9d  %s\n' "$kind" $(( ($(stat -c %s "$f") + 1023) / 1024 )) "$f"
    done
  } > manifest.txt
  # shellcheck disable=SC2086
  sha256sum $files requirements.txt constraints.txt wheelhouse.env > SHA256SUMS
)
n_whl=$(ls "$OUT"/*.whl | wc -l)
sdists=$(cd "$OUT" && ls | grep -E '\.(tar\.gz|zip)$' | tr '\n' ' ' || true)
echo "[wheelhouse] done: $OUT ($(du -sh "$OUT" | cut -f1), $n_whl wheels; sdists: $sdists)"
echo "[wheelhouse] on the box: bash tools/install_offline.sh $OUT [--cuda]"
