"""The README's main job, at a few iterations: every stage runs and writes
its outputs (the full-length run is recorded in docs/status.md)."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores


@pytest.fixture(scope='module')
def demo(project_root, tmp_path_factory):
    """One short demo run with ``--table4`` (every stage of the main job,
    plus the backbone and backbone + BiFPN initialisations), shared by the
    tests that read its outputs."""
    work_dir = tmp_path_factory.mktemp('demo')
    proc = subprocess.run([
        sys.executable, 'tools/demo_glid.py', '--work-dir',
        str(work_dir), '--pretrain-iters', '20', '--finetune-iters', '3',
        '--table4', '--val-frames', '8'
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    return work_dir


def _count(log: str, entry: str = 'missing') -> int:
    """A count of a converter log's load report (its first line: ``N
    loaded, ..., M missing, K unexpected``)."""
    return int(re.search(rf'(\d+) {entry}\b', log).group(1))


def test_glid_demo_end_to_end(demo):
    work_dir = demo
    for name in ('results.md', 'results.json', 'loss_curves.png',
                 'reconstruction.png', 'glid_nano_finetune_init.pth'):
        assert osp.getsize(work_dir / name) > 0, name
    res = json.loads((work_dir / 'results.json').read_text())
    assert res['pretrain']['iters'] == 20
    # one seed: the table says so and points to the multi-seed study
    assert 'tools/study.py glid-camvid' in (work_dir /
                                            'results.md').read_text()
    assert {'pre-trained init', 'random init'} <= set(res['finetune'])
    for run in res['finetune'].values():
        assert {'mIoU', 'aAcc'} <= set(run['metrics'])
    # same seed, same data order: the two fine-tunings differ only by the
    # initialisation, so equal results would mean the converted checkpoint
    # was not loaded
    runs = res['finetune']
    assert runs['pre-trained init']['last_loss'] != \
        runs['random init']['last_loss']
    convert_log = (work_dir / 'convert.log').read_text()
    assert _count(convert_log) == 3
    assert _count(convert_log, 'unexpected') == 0


def test_bad_iterations_are_refused(project_root):
    proc = subprocess.run(
        [sys.executable, 'tools/demo_glid.py', '--finetune-iters', '0'],
        cwd=project_root,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert '--finetune-iters must be >= 1' in proc.stderr


def test_table4_initialisations(demo):
    """--table4 fine-tunes from random, backbone, backbone + BiFPN and all
    pre-trained weights (GLID Table 4), each from its converted
    checkpoint."""
    work_dir = demo
    res = json.loads((work_dir / 'results.json').read_text())
    assert list(res['finetune']) == [
        'random init', 'backbone', 'backbone + BiFPN', 'pre-trained init'
    ]
    logs = {
        mode: (work_dir / f'convert{suffix}.log').read_text()
        for mode, suffix in [('backbone',
                              '_backbone'), ('backbone+neck',
                                             '_backbone_neck'), ('all', '')]
    }
    # fewer parts loaded -> more keys left missing
    missing = {mode: _count(log) for mode, log in logs.items()}
    assert missing['backbone'] > missing['backbone+neck'] > missing['all']


def test_val_frames_evaluates_a_subset(demo):
    """--val-frames 8: the fine-tunes were evaluated on 8 CamVid frames,
    and the table says so."""
    res = json.loads((demo / 'results.json').read_text())
    assert all(run['val_frames'] == 8 for run in res['finetune'].values())
    assert 'first 8 CamVid val frames' in (demo / 'results.md').read_text()
