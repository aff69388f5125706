"""mmdet and mmpose stacks on real COCO data through tools/train.py: a stock
Mask R-CNN R-18 on COCO128 (COCOeval bbox + segm) and a stock top-down
heatmap R-18 on the COCO keypoint samples (xtcocotools OKS AP), each
trained 2 iterations from scratch with ``custom_imports`` of glid_mm and
evaluated with its toolbox's metric. Smoke numbers: ranges only."""
import math
import os
import os.path as osp
import subprocess
import sys

import pytest

from glid_tools.stack_demo import last_metrics, read_scalars

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

CASES = {
    'configs/stack/mask-rcnn_r18_fpn_1xb2-2it_coco128.py':
    ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/segm_mAP'),
    'configs/stack/td-hm_res18_1xb2-2it_coco-kpt-samples.py':
    ('coco/AP', 'coco/AR'),
}


@pytest.mark.parametrize('config', sorted(CASES))
def test_stock_config_trains_and_evaluates(project_root, tmp_path, config):
    work_dir = str(tmp_path / 'run')
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', config, '--work-dir', work_dir],
        cwd=project_root,
        capture_output=True,
        text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = read_scalars(work_dir)
    train = [r for r in records if 'loss' in r]
    assert [r['iter'] for r in train] == [1, 2]
    assert all(math.isfinite(r['loss']) and r['loss'] > 0 for r in train)
    metrics = last_metrics(records)
    for key in CASES[config]:
        assert 0.0 <= metrics[key] <= 1.0, (key, metrics)
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))


def test_missing_data_root_names_the_path(project_root, tmp_path):
    env = dict(os.environ, GLID_MM_DATA=str(tmp_path / 'nowhere'))
    proc = subprocess.run([
        sys.executable, 'tools/train.py',
        'configs/stack/mask-rcnn_r18_fpn_1xb2-2it_coco128.py', '--work-dir',
        str(tmp_path / 'run')
    ],
                          cwd=project_root,
                          env=env,
                          capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'data root not found' in proc.stderr
    assert str(tmp_path / 'nowhere') in proc.stderr
