"""mmpretrain stack on real hymenoptera through tools/train.py and
tools/test.py.

A stock ResNet-18 (configs/stack/resnet18_1xb4-2it_hymenoptera-112px.py)
trains 2 iterations from scratch and is validated with mmpretrain's Accuracy
(top-1) on 4 ants + 4 bees; the checkpoint is then evaluated again by
tools/test.py. Values after 2 iterations are smoke numbers, so only ranges
are asserted. ~25 s on CPU.
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

CONFIG = 'configs/stack/resnet18_1xb4-2it_hymenoptera-112px.py'
KEY = 'accuracy/top1'  # percentage


def _run(project_root, *args):
    proc = subprocess.run([sys.executable, *args],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope='module')
def trained(project_root, tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp('hymenoptera_r18'))
    _run(project_root, 'tools/train.py', CONFIG, '--work-dir', work_dir)
    return work_dir


def test_trains_two_iterations(trained):
    records = read_scalars(trained)
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]
    for r in train:
        # 2-way cross-entropy from scratch starts near ln 2
        assert math.isfinite(r['loss']) and 0 < r['loss'] < 5
    assert osp.isfile(osp.join(trained, 'iter_2.pth'))


def test_validation_accuracy(trained):
    val = [r for r in read_scalars(trained) if KEY in r]
    assert len(val) == 1 and val[0]['step'] == 2
    # 8 images: accuracy is a multiple of 12.5 %
    assert 0.0 <= val[0][KEY] <= 100.0
    assert (val[0][KEY] / 12.5) == pytest.approx(round(val[0][KEY] / 12.5))


def test_test_tool_reproduces_validation(project_root, trained, tmp_path,
                                         monkeypatch):
    """tools/test.py's entry point (in-process: saves an import of the
    stack) evaluates the saved checkpoint to the validation numbers."""
    val = [r for r in read_scalars(trained) if KEY in r][-1]
    monkeypatch.chdir(project_root)
    ckpt = osp.join(trained, 'iter_2.pth')
    test = load_script('test').main(
        [CONFIG, ckpt, '--work-dir', str(tmp_path)])
    assert test[KEY] == pytest.approx(val[KEY], abs=1e-6)
