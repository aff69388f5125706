#!/usr/bin/env bash
# C++ compiler wrapper used by tools/setup_env.sh to build mmcv's ops with a
# precompiled <torch/extension.h>.
#
# Most of mmcv's op build time is the compiler parsing torch's headers again
# for each of its op sources. This wrapper compiles those headers once per
# set of compile flags into a GCC precompiled header and adds
# `-include <it>` to each compile, so each source starts from the parsed
# headers. It is safe by construction:
#   - the header is built with exactly the flags of the compile that uses it
#     (the key is a hash of those flags), so macros and options agree;
#   - every op source includes <torch/extension.h> anyway (through
#     pytorch_cpp_helper.hpp / pytorch_device_registry.hpp), and its include
#     guards make a second inclusion a no-op, so including it first changes
#     no declaration the source sees (setup_env.sh checks that every source
#     includes one of those headers before building);
#   - `-Winvalid-pch` reports a header GCC cannot use, and GCC then parses
#     the headers as usual; a header that fails to build is not used.
# Anything that is not a plain `-c x.cpp` compile (links, nvcc's host
# compiles of .cu files) passes through untouched.
#
# Environment: GLID_MM_REAL_CXX (the compiler to run, default c++),
# GLID_MM_PCH_DIR (where the headers go, required).
set -uo pipefail
real="${GLID_MM_REAL_CXX:-c++}"
args=("$@")
compile=0 src="" flags=()
skip_next=0
for ((i = 0; i < ${#args[@]}; i++)); do
  a="${args[$i]}"
  if [ "$skip_next" = 1 ]; then skip_next=0; continue; fi
  case "$a" in
    -c) compile=1 ;;
    -o|-MF|-MT|-MQ) skip_next=1 ;;
    -MD|-MMD) ;;
    *.cpp|*.cc|*.cxx) src="$a" ;;
    *) flags+=("$a") ;;
  esac
done
if [ "$compile" != 1 ] || [ -z "$src" ] || [ -z "${GLID_MM_PCH_DIR:-}" ]; then
  exec "$real" "$@"
fi
key="$(printf '%s\n' "$real" "${flags[@]}" | sha256sum | cut -c1-16)"
dir="$GLID_MM_PCH_DIR/$key"
hdr="$dir/torch_extension_pch.h"
mkdir -p "$dir"
(
  flock 9
  if [ ! -f "$hdr.gch" ] && [ ! -f "$dir/failed" ]; then
    echo '#include <torch/extension.h>' > "$hdr"
    "$real" "${flags[@]}" -x c++-header "$hdr" -o "$hdr.gch.tmp" \
      > "$dir/build.log" 2>&1 && mv "$hdr.gch.tmp" "$hdr.gch" ||
      touch "$dir/failed"
  fi
) 9> "$dir.lock"
if [ -f "$hdr.gch" ]; then
  exec "$real" -include "$hdr" -Winvalid-pch "$@"
fi
exec "$real" "$@"
