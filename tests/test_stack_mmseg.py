"""mmseg stack on real CamVid through tools/train.py and tools/test.py.

A stock FCN R-18-D8 (configs/stack/fcn_r18-d8_1xb2-2it_camvid-128x160.py)
trains 2 iterations from scratch and is validated with mmseg's IoUMetric;
the saved checkpoint is then evaluated again by tools/test.py. Values after
2 iterations are smoke numbers, so only ranges are asserted. ~25 s on CPU.
"""
import math
import os.path as osp
import subprocess
import sys

import pytest

from glid_tools import load_script
from glid_tools.stack_demo import read_scalars

# a module-scoped training run feeds every test here
pytestmark = pytest.mark.slow

CONFIG = 'configs/stack/fcn_r18-d8_1xb2-2it_camvid-128x160.py'
METRICS = ('aAcc', 'mIoU', 'mAcc')  # percentages


def _run(project_root, *args):
    proc = subprocess.run([sys.executable, *args],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def trained(project_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('camvid_fcn'))
    _run(project_root, 'tools/train.py', CONFIG, '--work-dir', work_dir)
    return work_dir


def test_trains_two_iterations(trained):
    records = read_scalars(trained)
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]
    for r in train:
        assert math.isfinite(r['loss']) and r['loss'] > 0
        assert math.isfinite(r['decode.loss_ce'])
        assert math.isfinite(r['aux.loss_ce'])
    assert osp.isfile(osp.join(trained, 'iter_2.pth'))


def test_validation_miou(trained):
    records = read_scalars(trained)
    val = [r for r in records if 'mIoU' in r]
    assert len(val) == 1 and val[0]['step'] == 2
    for key in METRICS:
        assert 0.0 <= val[0][key] <= 100.0, (key, val[0][key])


def test_test_tool_reproduces_validation(project_root, trained, tmp_path,
                                         monkeypatch):
    """tools/test.py's entry point (in-process: saves an import of the
    stack) evaluates the saved checkpoint to the validation numbers."""
    val = [r for r in read_scalars(trained) if 'mIoU' in r][-1]
    monkeypatch.chdir(project_root)
    ckpt = osp.join(trained, 'iter_2.pth')
    test = load_script('test').main(
        [CONFIG, ckpt, '--work-dir', str(tmp_path)])
    for key in METRICS:
        # same weights, same 4 frames, BN in eval mode: same numbers
        assert test[key] == pytest.approx(val[key], abs=0.011), key
