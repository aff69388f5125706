"""tools/pch_cxx.sh, the compiler wrapper of the mmcv build: which calls get
the precompiled op helper and with which flags, checked with a fake
compiler that records its arguments (the real build, 332 s instead of
675 s, and its ops equal bit for bit to a plain build, are in
docs/install.md)."""
import os
import os.path as osp
import subprocess

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
WRAPPER = osp.join(ROOT, 'tools', 'pch_cxx.sh')
HELPER = '#include "pytorch_cpp_helper.hpp"'

FAKE = r'''#!/usr/bin/env bash
# records its arguments; "compiles" by writing the -o file
printf '%s\n' "$*" >> "$LOG"
prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then
    case "$*" in *c++-header*) [ -n "${FAIL_HEADER:-}" ] && exit 1 ;; esac
    echo built > "$a"
  fi
  prev="$a"
done
'''


@pytest.fixture
def cxx(tmp_path):
    fake = tmp_path / 'fake_cxx'
    fake.write_text(FAKE)
    fake.chmod(0o755)
    log = tmp_path / 'calls.log'

    def run(*args, pch=True, **env):
        full = dict(
            os.environ, GLID_MM_REAL_CXX=str(fake), LOG=str(log), **env)
        if pch:
            full['GLID_MM_PCH_DIR'] = str(tmp_path / 'pch')
        subprocess.run(['bash', WRAPPER, *args],
                       cwd=tmp_path,
                       env=full,
                       check=True)
        calls = log.read_text().splitlines()
        log.unlink()
        return calls

    return run


def _source(tmp_path, name, first_line):
    (tmp_path / name).write_text(f'// op\n{first_line}\nint x;\n')
    return name


def test_helper_first_sources_use_one_header_per_flag_set(cxx, tmp_path):
    src = _source(tmp_path, 'nms.cpp', HELPER)
    flags = ['-O3', '-DTORCH_EXTENSION_NAME=_ext', '-Iinc', '-std=c++20']
    calls = cxx('-MMD', '-MF', 'nms.o.d', *flags, '-c', src, '-o', 'nms.o')
    header, compile_ = calls
    stub = header.split(' -x c++-header ')[1].split()[0]
    # the header is built with the compile's own flags (no -c / -o / deps)
    assert header == (f'{" ".join(flags)} -x c++-header {stub} '
                      f'-o {stub}.gch.tmp')
    assert open(stub).read().strip() == HELPER  # the source's first include
    assert osp.isfile(stub + '.gch')
    assert compile_ == (f'-include {stub} -Winvalid-pch -MMD -MF nms.o.d '
                        f'{" ".join(flags)} -c {src} -o nms.o')
    # a second source with the same flags reuses the header
    other = _source(tmp_path, 'roi_align.cpp', '  #  include "pytorch_cpp'
                    '_helper.hpp"')
    calls = cxx(*flags, '-c', other, '-o', 'roi.o')
    assert calls == [
        f'-include {stub} -Winvalid-pch {" ".join(flags)} -c '
        f'{other} -o roi.o'
    ]
    # other flags: another header
    calls = cxx('-O0', '-c', src, '-o', 'nms.o')
    assert len(calls) == 2 and stub not in calls[0]


@pytest.mark.parametrize(
    'args',
    [
        ['-O3', '-c', 'iou.cpp', '-o', 'iou.o'],  # starts with another include
        ['-shared', 'a.o', 'b.o', '-o', '_ext.so'],  # a link
        ['-c', 'k.cu', '-o', 'k.o'],  # not a C++ source
        ['--version'],
    ])
def test_other_calls_pass_through(cxx, tmp_path, args):
    _source(tmp_path, 'iou.cpp', '#include "box_iou_rotated_utils.hpp"')
    assert cxx(*args) == [' '.join(args)]


def test_without_a_header_folder_or_when_the_header_fails(cxx, tmp_path):
    src = _source(tmp_path, 'nms.cpp', HELPER)
    assert cxx('-c', src, '-o', 'n.o', pch=False) == [f'-c {src} -o n.o']
    calls = cxx('-c', src, '-o', 'n.o', FAIL_HEADER='1')
    assert len(calls) == 2 and calls[1] == f'-c {src} -o n.o'
    # a failed header is not tried again
    assert cxx('-c', src, '-o', 'n.o') == [f'-c {src} -o n.o']
