#!/usr/bin/env bash
# C++ compiler wrapper that tools/setup_env.sh puts in CXX while it builds
# mmcv's ops with GCC: a precompiled header for mmcv's op helper.
#
# Most of the mmcv op build is GCC parsing torch's headers (ATen) again for
# each op source: 17 s for nms.cpp, 4 s of it left with the headers
# precompiled (measured on 2 cores). 63 of the 77 CPU op sources start
# with `#include "pytorch_cpp_helper.hpp"`, which pulls those headers. For
# such a compile this wrapper precompiles that one include once per set of
# compile flags and adds `-include <stub>`, the stub holding that same
# include line. The result is the same program:
#   - the compile sees exactly the tokens it saw before: the stub's
#     include is the source's own first include, and the source's
#     `#include "pytorch_cpp_helper.hpp"` is then empty (include guard);
#   - the header is precompiled with exactly the flags of the compile that
#     uses it (they name its folder), so macros and options agree;
#   - `-Winvalid-pch`: a header GCC cannot use is reported and GCC parses
#     the stub as usual; a header that fails to build is not used.
# Any other call (links, sources that start with another include, nvcc's
# host compiles) runs the compiler unchanged.
#
# Environment: GLID_MM_REAL_CXX (the compiler, default c++) and
# GLID_MM_PCH_DIR (where the headers go; without it, no precompiling).
set -uo pipefail
real="${GLID_MM_REAL_CXX:-c++}"
HEADER='#include "pytorch_cpp_helper.hpp"'
args=("$@")
compile=0 src="" flags=() skip=0
for ((i = 0; i < ${#args[@]}; i++)); do
  a="${args[$i]}"
  if [ "$skip" = 1 ]; then skip=0; continue; fi
  case "$a" in
    -c) compile=1 ;;
    -o|-MF|-MT|-MQ) skip=1 ;;
    -MD|-MMD) ;;
    *.cpp) src="$a" ;;
    *) flags+=("$a") ;;
  esac
done
if [ "$compile" != 1 ] || [ -z "$src" ] || [ -z "${GLID_MM_PCH_DIR:-}" ] ||
   [ "$(grep -m1 '^[[:space:]]*#[[:space:]]*include' "$src" 2>/dev/null |
        tr -d '[:space:]')" != "${HEADER// /}" ]; then
  exec "$real" "$@"
fi
dir="$GLID_MM_PCH_DIR/$(printf '%s\n' "$real" "${flags[@]}" | sha256sum |
                        cut -c1-16)"
stub="$dir/pytorch_cpp_helper_pch.h"
mkdir -p "$dir"
(
  flock 9
  if [ ! -f "$stub.gch" ] && [ ! -f "$dir/failed" ]; then
    echo "$HEADER" > "$stub"
    if "$real" "${flags[@]}" -x c++-header "$stub" -o "$stub.gch.tmp" \
        > "$dir/build.log" 2>&1; then
      mv "$stub.gch.tmp" "$stub.gch"
    else
      touch "$dir/failed"
    fi
  fi
) 9> "$dir.lock"
if [ -f "$stub.gch" ]; then
  exec "$real" -include "$stub" -Winvalid-pch "$@"
fi
exec "$real" "$@"
