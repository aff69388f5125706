"""A local file backend that never leaves a checkpoint half-written.

mmengine's ``LocalBackend.put`` opens the target with ``'wb'`` and writes
into it, so a process killed mid-write (SIGKILL, OOM killer, pre-emption)
leaves a truncated ``iter_N.pth`` that ``--resume`` then picks up and fails
on. This backend writes to a temporary file in the same folder, flushes and
fsyncs it, then renames it over the target (``os.replace`` is atomic on
POSIX within one file system), so a reader sees the old file or the new one,
never a partial one.

Use it through ``CheckpointHook(backend_args=dict(backend='atomic_local'))``;
``tools/train.py`` sets this when the config's checkpoint hook names no
backend.
"""
import os
import os.path as osp
import tempfile
from pathlib import Path
from typing import Union

from mmengine.fileio.backends import LocalBackend, register_backend


def atomic_write(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` to ``filepath`` through a temporary file + rename."""
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f'.{osp.basename(filepath)}.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """:class:`LocalBackend` whose writes are write-then-rename."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write(obj, filepath)

    def put_text(self,
                 obj: str,
                 filepath: Union[str, Path],
                 encoding: str = 'utf-8') -> None:
        atomic_write(obj.encode(encoding), filepath)
