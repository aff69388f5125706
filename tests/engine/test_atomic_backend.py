import os

import pytest
from mmengine.fileio import get_file_backend

from glid_mm.engine import AtomicLocalBackend, atomic_write


def test_backend_is_registered(tmp_path):
    backend = get_file_backend(
        str(tmp_path), backend_args=dict(backend='atomic_local'))
    assert isinstance(backend, AtomicLocalBackend)
    backend.put(b'abc', tmp_path / 'sub' / 'x.pth')
    backend.put_text('iter_4.pth', tmp_path / 'last_checkpoint')
    assert (tmp_path / 'sub' / 'x.pth').read_bytes() == b'abc'
    assert (tmp_path / 'last_checkpoint').read_text() == 'iter_4.pth'
    assert sorted(os.listdir(tmp_path)) == ['last_checkpoint', 'sub']


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / 'iter_2.pth'
    atomic_write(b'old', target)

    class Boom(bytes):
        pass

    def failing_fsync(fd):
        raise OSError('disk full')

    real = os.fsync
    os.fsync = failing_fsync
    try:
        with pytest.raises(OSError, match='disk full'):
            atomic_write(b'new-but-broken', target)
    finally:
        os.fsync = real
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['iter_2.pth']
