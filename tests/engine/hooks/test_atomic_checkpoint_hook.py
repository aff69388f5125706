from types import SimpleNamespace

from mmengine.fileio import get_file_backend
from mmengine.hooks import CheckpointHook

from glid_mm.engine import AtomicLocalBackend
from glid_mm.engine.hooks import AtomicCheckpointHook


def _runner(tmp_path, **ckpt_kwargs):
    ckpt = CheckpointHook(interval=1, **ckpt_kwargs)
    return SimpleNamespace(hooks=[ckpt], work_dir=str(tmp_path)), ckpt


def test_local_checkpoints_become_atomic(tmp_path):
    runner, ckpt = _runner(tmp_path)
    AtomicCheckpointHook().before_train(runner)
    assert ckpt.backend_args == dict(backend='atomic_local')
    backend = get_file_backend(str(tmp_path), backend_args=ckpt.backend_args)
    assert isinstance(backend, AtomicLocalBackend)
    # it runs before the checkpoint hook picks its backend
    assert AtomicCheckpointHook.priority == 'VERY_HIGH'


def test_own_backend_remote_dir_and_opt_out_are_kept(tmp_path):
    runner, ckpt = _runner(tmp_path, backend_args=dict(backend='local'))
    AtomicCheckpointHook().before_train(runner)
    assert ckpt.backend_args == dict(backend='local')
    runner, ckpt = _runner(tmp_path, out_dir='s3://bucket/run')
    AtomicCheckpointHook().before_train(runner)
    assert ckpt.backend_args is None
    runner, ckpt = _runner(tmp_path)
    AtomicCheckpointHook(enabled=False).before_train(runner)
    assert ckpt.backend_args is None
