"""tools/train.py and tools/test.py: options as users know them."""
import subprocess
import sys

import pytest

from glid_tools import load_script

TRAIN, TEST = load_script('train'), load_script('test')
build_train_cfg, parse_train_args = TRAIN.build_cfg, TRAIN.parse_args
parse_test_args, main_test = TEST.parse_args, TEST.main

CFG_TEXT = """
_base_ = 'mmpretrain::resnet/resnet18_8xb32_in1k.py'
custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / 'resnet18_probe.py'
    path.write_text(CFG_TEXT)
    return str(path)


def test_defaults_and_cfg_options(config):
    cfg = build_train_cfg(
        parse_train_args(
            [config, '--cfg-options', 'train_dataloader.batch_size=3']))
    assert cfg.work_dir == './work_dirs/resnet18_probe'
    assert cfg.train_dataloader.batch_size == 3
    assert cfg.launcher == 'none'
    assert cfg.default_scope == 'mmpretrain'
    assert not cfg.get('resume', False)


def test_amp_switches_optim_wrapper(config):
    cfg = build_train_cfg(parse_train_args([config, '--amp']))
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'


def test_resume_auto_and_explicit(config, tmp_path):
    cfg = build_train_cfg(parse_train_args([config, '--resume']))
    assert cfg.resume is True and cfg.load_from is None
    ckpt = tmp_path / 'iter_4.pth'
    ckpt.write_bytes(b'')
    cfg = build_train_cfg(parse_train_args([config, '--resume', str(ckpt)]))
    assert cfg.resume is True and cfg.load_from == str(ckpt)
    with pytest.raises(FileNotFoundError, match='no_such.pth'):
        build_train_cfg(
            parse_train_args(
                [config, '--resume',
                 str(tmp_path / 'no_such.pth')]))


def test_auto_scale_lr(config, tmp_path):
    cfg = build_train_cfg(parse_train_args([config, '--auto-scale-lr']))
    assert cfg.auto_scale_lr.enable is True
    bad = tmp_path / 'no_auto_scale.py'
    bad.write_text(CFG_TEXT + '\nauto_scale_lr = None\n')
    with pytest.raises(KeyError, match='base_batch_size'):
        build_train_cfg(parse_train_args([str(bad), '--auto-scale-lr']))


def test_test_tool_checks_checkpoint(config, tmp_path):
    args = parse_test_args([config, 'ckpt.pth', '--out', 'x.pkl'])
    assert args.out == 'x.pkl'
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        main_test([config, str(tmp_path / 'missing.pth')])


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_run_as_scripts(project_root, tool):
    proc = subprocess.run([sys.executable, f'tools/{tool}', '--help'],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    assert '--cfg-options' in proc.stdout
    assert '--launcher' in proc.stdout
    if tool == 'train.py':
        assert '--resume' in proc.stdout and '--amp' in proc.stdout
