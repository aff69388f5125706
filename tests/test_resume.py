"""Done-when of the foundation issue: a 4-iteration run resumed to 6
iterations gives the same iteration 5-6 losses as an uninterrupted
6-iteration run (same seed, deterministic mode). This also proves that
``--resume`` loads an mmengine checkpoint with torch's weights-only
unpickler (torch >= 2.6 default), which stock mmengine 0.10.7 cannot."""
import glob
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from glid_tools.stack_demo import read_scalars

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

CONFIG = 'configs/stack/resnet18_1xb4-2it_hymenoptera-112px.py'
COMMON = [
    'randomness.seed=0', 'randomness.deterministic=True',
    'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=2',
    'default_hooks.checkpoint.by_epoch=False', 'train_cfg.val_interval=1000',
    'val_dataloader.dataset.indices=4'
]  # the config's lr schedule does not depend on max_iters


def _cmd(work_dir, max_iters, resume=False):
    return [
        sys.executable, 'tools/train.py', CONFIG, '--work-dir', work_dir,
        '--cfg-options', f'train_cfg.max_iters={max_iters}'
    ] + COMMON + (['--resume'] if resume else [])


def _losses(work_dir):
    return {
        r['step']: r['loss']
        for r in read_scalars(work_dir) if 'loss' in r
    }


def _train(root, work_dir, max_iters, resume=False):
    proc = subprocess.run(
        _cmd(work_dir, max_iters, resume),
        cwd=root,
        capture_output=True,
        text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return _losses(work_dir)


@pytest.fixture(scope='module')
def full_run(project_root, tmp_path_factory):
    """The uninterrupted 6-iteration reference run."""
    if not osp.exists(osp.join(project_root, CONFIG)):
        pytest.fail(f'{CONFIG} is missing')
    return _train(project_root, str(tmp_path_factory.mktemp('full')), 6)


def test_resume_reproduces_losses(project_root, tmp_path, full_run):
    full = full_run
    part_dir = str(tmp_path / 'part')
    first = _train(project_root, part_dir, 4)
    ckpt = osp.join(part_dir, 'iter_4.pth')
    assert osp.isfile(ckpt)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(ckpt) == []
    resumed = _train(project_root, part_dir, 6, resume=True)
    assert sorted(full) == [1, 2, 3, 4, 5, 6]
    assert sorted(resumed) == [5, 6]
    for step in (1, 2, 3, 4):
        assert first[step] == pytest.approx(full[step], rel=1e-6, abs=1e-7)
    for step in (5, 6):
        assert resumed[step] == pytest.approx(full[step], rel=1e-6, abs=1e-7)
    # the losses are real and move: not one constant value
    assert len({round(v, 6) for v in full.values()}) > 1


def test_sigkill_then_resume(project_root, tmp_path, full_run):
    """SIGKILL mid-run, resume from the last checkpoint, same losses."""
    work_dir = str(tmp_path / 'killed')
    proc = subprocess.Popen(
        _cmd(work_dir, 6),
        cwd=project_root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not osp.exists(osp.join(work_dir, 'iter_2.pth')):
        assert proc.poll() is None, 'training ended before the kill'
        assert time.time() < deadline, 'no checkpoint within 300 s'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    # every checkpoint on disk is complete (write-then-rename)
    for ckpt in glob.glob(osp.join(work_dir, 'iter_*.pth')):
        torch.load(ckpt, weights_only=True)
    resumed = _train(project_root, work_dir, 6, resume=True)
    assert resumed, 'the resumed run logged no iteration'
    assert max(resumed) == 6
    for step, loss in resumed.items():
        assert loss == pytest.approx(full_run[step], rel=1e-6, abs=1e-7)
