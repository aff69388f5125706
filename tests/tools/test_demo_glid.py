import pytest
"""The README's main job, at a few iterations: every stage runs and writes
its outputs (the full-length run is recorded in docs/status.md)."""
import json
import os.path as osp
import subprocess
import sys

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores


def test_glid_demo_end_to_end(project_root, tmp_path):
    work_dir = tmp_path / 'demo'
    proc = subprocess.run([
        sys.executable, 'tools/demo_glid.py', '--work-dir',
        str(work_dir), '--pretrain-iters', '20', '--finetune-iters', '4'
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    for name in ('results.md', 'results.json', 'loss_curves.png',
                 'reconstruction.png', 'glid_nano_finetune_init.pth'):
        assert osp.getsize(work_dir / name) > 0, name
    res = json.loads((work_dir / 'results.json').read_text())
    assert res['pretrain']['iters'] == 20
    # one seed: the table says so and points to the multi-seed study
    assert 'tools/study.py glid-camvid' in (work_dir /
                                            'results.md').read_text()
    assert set(res['finetune']) == {'pre-trained init', 'random init'}
    for run in res['finetune'].values():
        assert {'mIoU', 'aAcc'} <= set(run['metrics'])
    # same seed, same data order: the two fine-tunings differ only by the
    # initialisation, so equal results would mean the converted checkpoint
    # was not loaded
    runs = res['finetune']
    assert runs['pre-trained init']['last_loss'] != \
        runs['random init']['last_loss']
    convert_log = (work_dir / 'convert.log').read_text()
    assert 'missing: 3' in convert_log and 'unexpected: 0' in convert_log


def test_bad_iterations_are_refused(project_root):
    proc = subprocess.run(
        [sys.executable, 'tools/demo_glid.py', '--finetune-iters', '0'],
        cwd=project_root,
        capture_output=True,
        text=True)
    assert proc.returncode != 0
    assert '--finetune-iters must be >= 1' in proc.stderr


def test_table4_initialisations(project_root, tmp_path):
    """--table4 fine-tunes from random, backbone, backbone + BiFPN and all
    pre-trained weights (GLID Table 4), each from its converted
    checkpoint."""
    work_dir = tmp_path / 'table4'
    proc = subprocess.run([
        sys.executable, 'tools/demo_glid.py', '--work-dir',
        str(work_dir), '--pretrain-iters', '2', '--finetune-iters', '2',
        '--table4'
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    res = json.loads((work_dir / 'results.json').read_text())
    assert list(res['finetune']) == [
        'random init', 'backbone', 'backbone + BiFPN', 'pre-trained init'
    ]
    logs = {
        mode: (work_dir / f'convert{suffix}.log').read_text()
        for mode, suffix in [('backbone', '_backbone'),
                             ('backbone+neck', '_backbone_neck'),
                             ('all', '')]
    }
    # fewer parts loaded -> more keys left missing
    missing = {
        mode: int(log.split('missing: ')[1].split()[0])
        for mode, log in logs.items()
    }
    assert missing['backbone'] > missing['backbone+neck'] > missing['all']
