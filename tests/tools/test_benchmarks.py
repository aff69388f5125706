"""tools/benchmark/ suite: CPU smoke of every script at nano sizes, the
shared writer / timer / FLOP pieces, and 'not run' rows for peers that
cannot run a setting."""
import importlib.util
import json
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch
import torch.nn as nn

from glid_tools.benchmark import (NOT_RUN, NotRunnable, count_flops,
                                  dense_bf16_peak_tflops, make_result,
                                  param_counts, peak_memory, run_row, time_fn,
                                  write_results)
from glid_tools.benchmark.inference import NO_BF16, explain_failure
from glid_tools.benchmark.measure import part_times
from glid_tools.benchmark.models import parse_peer_config, resolve_config
from glid_tools.benchmark.pretrain_step import mfu
from glid_tools.benchmark.report import markdown_table

# a module-scoped training run feeds every test here
pytestmark = pytest.mark.slow

NANO = ['--arch', 'nano', '--device', 'cpu', '--iters', '1', '--warmup', '0']
CARAFE = 'CARAFE=mmdet::carafe/faster-rcnn_r50_fpn-carafe_1x_coco.py'


def _env():
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')


def _load(path):
    with open(path) as f:
        return json.load(f)


def _script(project_root, name):
    """Import tools/benchmark/<name>.py as a module (its main(argv))."""
    path = osp.join(project_root, 'tools', 'benchmark', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'bench_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(result):
    return {row['model']: row for row in result['rows']}


@pytest.fixture(scope='module')
def run_all_out(project_root, tmp_path_factory):
    """tools/benchmark/run_all.py once, as a subprocess, at nano size."""
    out = tmp_path_factory.mktemp('bench')
    cmd = [
        sys.executable, 'tools/benchmark/run_all.py', *NANO, '--out-dir',
        str(out), '--complexity-configs', 'glid_swin-nano_*', '--strict'
    ]
    proc = subprocess.run(
        cmd,
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_run_all_writes_every_table(run_all_out):
    for name in ('glid_pretrain_step', 'glid_panoptic_inference',
                 'glid_detection_inference', 'side_costs', 'model_complexity',
                 'benchmark_suite'):
        assert (run_all_out / f'{name}.json').is_file(), name
        assert (run_all_out / f'{name}.md').stat().st_size > 200, name
    suite = _load(run_all_out / 'benchmark_suite.json')
    assert suite['failed_benchmarks'] == {}
    assert len(suite['results']) == 5
    for key in ('device', 'torch', 'mmcv', 'mmdet', 'mmpretrain',
                'mmcv_ops_cuda', 'cpu_cores_usable'):
        assert key in suite['environment'], key
    md = (run_all_out / 'benchmark_suite.md').read_text()
    assert '## GLID pre-training step vs SimMIM' in md
    assert '| GLID |' in md and '| Mask2Former |' in md


def test_pretrain_rows(run_all_out):
    result = _load(run_all_out / 'glid_pretrain_step.json')
    assert result['settings']['dtype'] == 'fp32'
    rows = _rows(result)
    assert set(rows) == {'GLID', 'GLID mask-token', 'SimMIM'}
    for row in rows.values():
        assert row['status'] == 'ok', row
        for key in ('step_ms', 'images_per_s', 'fwd_gflops_per_image',
                    'params_m', 'achieved_tflops', 'encoder_ms', 'decoder_ms',
                    'head_ms', 'backward_ms', 'optimizer_ms'):
            assert row[key] > 0, (row['model'], key)
        assert row.get('mfu_percent') is None  # CPU: no peak, no MFU
    assert rows['GLID']['fpn_ms'] > 0 and 'fpn_ms' not in rows['SimMIM']
    # the visible-token encoder does fewer FLOPs than the mask-token one
    assert (rows['GLID']['fwd_gflops_per_image']
            < rows['GLID mask-token']['fwd_gflops_per_image'])
    _check_speed_vs_glid(rows, 'step_ms', result['settings']['batch_size'])
    assert rows['GLID']['role'] == 'glid_mm'
    assert rows['SimMIM']['role'] == 'peer'


def _check_speed_vs_glid(rows, ms_key, batch_size):
    """``relative_speed`` of every row (GLID's peers included) is its
    images/s over GLID's, and images/s is the batch over the mean time in
    ``ms_key``."""
    glid = rows['GLID']['images_per_s']
    for name, row in rows.items():
        assert row['images_per_s'] == pytest.approx(
            1e3 * batch_size / row[ms_key], rel=1e-9), name
        assert row['relative_speed'] == pytest.approx(
            row['images_per_s'] / glid, rel=1e-9), name


def test_inference_rows(run_all_out):
    pan = _load(run_all_out / 'glid_panoptic_inference.json')
    det = _load(run_all_out / 'glid_detection_inference.json')
    assert set(_rows(pan)) == {'GLID', 'Mask2Former'}
    assert set(_rows(det)) == {'GLID', 'DINO', 'DETR'}
    assert _rows(det)['GLID']['queries'] == 300
    assert _rows(pan)['GLID']['queries'] == 200
    for result in (pan, det):
        assert result['settings']['img_size'] == '128x128'
        for row in result['rows']:
            assert row['status'] == 'ok', row
            assert row['latency_ms'] > 0 and row['images_per_s'] > 0
            parts = sum(row[f'gflops_{p}']
                        for p in ('encoder', 'fpn', 'decoder', 'head'))
            assert 0 < parts <= row['gflops_per_image'] * (1 + 1e-6)
            assert row['ms_encoder'] > 0 and row['ms_decoder'] > 0
        _check_speed_vs_glid(
            _rows(result), 'latency_ms', result['settings']['batch_size'])


def test_side_costs_and_complexity_rows(run_all_out):
    side = _load(run_all_out / 'side_costs.json')
    groups = {row['group'] for row in side['rows']}
    assert groups == {'LiT decoding', 'GPPF lego memory', 'GPPF SIMT overhead'}
    assert all(row['status'] == 'ok' for row in side['rows'])
    by_name = {row['measurement']: row for row in side['rows']}
    assert by_name['KV cache speed-up']['value'] > 0
    assert by_name['lego soft: step']['value'] > 0
    cx = _load(run_all_out / 'model_complexity.json')
    (row, ) = cx['rows']
    assert row['config'] == 'glid_swin-nano_1xb16-300i_bundled-128px.py'
    assert row['status'] == 'ok' and row['input'] == '128x128'
    parts = ('encoder', 'fpn', 'decoder', 'head')
    assert sum(row[f'params_{p}_m']
               for p in parts) + row['params_other_m'] == pytest.approx(
                   row['params_m'])
    assert row['gflops_fpn'] > 0 and row['gflops_decoder'] > 0


def test_peer_that_cannot_run_gives_not_run_row(project_root, tmp_path):
    """A CUDA-op-only peer on CPU and a missing config: 'not run' rows,
    exit status 0 even with --strict (only our models fail a run)."""
    cmd = [
        sys.executable, 'tools/benchmark/glid_detection_inference.py', *NANO,
        '--peers', '--extra-peer', CARAFE, '--extra-peer',
        'Missing=mmdet::no_such/config.py', '--no-flops', '--strict',
        '--out-dir',
        str(tmp_path)
    ]
    proc = subprocess.run(
        cmd,
        cwd=project_root,
        capture_output=True,
        text=True,
        timeout=300,
        env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = _rows(_load(tmp_path / 'glid_detection_inference.json'))
    assert set(rows) == {'GLID', 'CARAFE', 'Missing'}
    assert rows['GLID']['status'] == 'ok'
    assert rows['CARAFE']['status'].startswith(NOT_RUN)
    assert 'CUDA kernels only' in rows['CARAFE']['status']
    assert rows['Missing']['status'].startswith(NOT_RUN + 'FileNotFound')
    md = (tmp_path / 'glid_detection_inference.md').read_text()
    assert '| CARAFE |' in md and 'not run: uses an mmcv op' in md


def test_scripts_main_in_process(project_root, tmp_path):
    torch.set_num_threads(1)
    pre = _script(project_root, 'glid_pretrain_step')
    assert pre.main(NANO + ['--no-flops', '--out-dir', str(tmp_path)]) == 0
    rows = _rows(_load(tmp_path / 'glid_pretrain_step.json'))
    assert rows['GLID']['status'] == 'ok'
    assert 'fwd_gflops_per_image' not in rows['GLID']
    pan = _script(project_root, 'glid_panoptic_inference')
    argv = NANO + [
        '--img-size', '64', '96', '--no-flops', '--out-dir',
        str(tmp_path)
    ]
    assert pan.main(argv) == 0
    result = _load(tmp_path / 'glid_panoptic_inference.json')
    assert result['settings']['img_size'] == '64x96'
    cx = _script(project_root, 'model_complexity')
    argv = [
        '--configs', 'glid-semseg_swin-nano*', '--no-peers', '--out-dir',
        str(tmp_path)
    ]
    assert cx.main(argv) == 0
    (row, ) = _load(tmp_path / 'model_complexity.json')['rows']
    assert row['task'] == 'semseg' and row['input'] == '128x160'
    with pytest.raises(SystemExit):
        pre.main(['--arch', 'huge'])


def test_m3i_pretrain_step_vs_mae(project_root, tmp_path):
    """Issue 8's benchmark at nano size on the CPU: both rows run from
    their configs' own pipelines; M3I's FLOPs come from the eager counter
    when the tracer cannot follow it."""
    torch.set_num_threads(1)
    m3i = _script(project_root, 'm3i_pretrain_step')
    assert m3i.main(NANO + ['--out-dir', str(tmp_path)]) == 0
    result = _load(tmp_path / 'm3i_pretrain_step.json')
    rows = _rows(result)
    assert set(rows) == {'M3I', 'MAE'}
    for row in rows.values():
        assert row['status'] == 'ok', row
        assert row['images_per_s'] > 0 and row['fwd_gflops_per_image'] > 0
    assert result['settings']['img_size'] == 64
    md = (tmp_path / 'm3i_pretrain_step.md').read_text()
    assert '| M3I |' in md and '| MAE |' in md


def test_run_row_and_markdown():
    ok = run_row(dict(model='a', role='peer'), lambda: dict(x=1.5))
    assert ok == dict(model='a', role='peer', x=1.5, status='ok')

    def fail():
        raise NotRunnable('needs a GPU')

    bad = run_row(dict(model='b', role='peer'), fail, explain=lambda e: 'hint')
    assert bad['status'] == NOT_RUN + 'hint (needs a GPU)'
    cols = [('model', 'model', ''), ('x', 'x', '.2f'), ('y', 'y', '.1f')]
    lines = markdown_table(cols, [ok, bad])
    assert lines[2] == '| a | 1.50 | - |'
    assert lines[3] == '| b | not run: hint (needs a GPU) | - |'
    with pytest.raises(ValueError, match='columns'):
        make_result('n', 't', 'd', {}, {}, [('a', 'b')], [])
    with pytest.raises(KeyError, match='rows'):
        write_results(
            dict(
                name='n',
                title='t',
                description='d',
                environment={},
                settings={},
                columns=[]), '.')


def test_explain_failure_names_the_bf16_kernel():
    from mmcv.ops import MultiScaleDeformableAttention
    model = nn.Sequential(
        MultiScaleDeformableAttention(embed_dims=32, num_heads=4))
    exc = RuntimeError('"ms_deform_attn_forward_cuda" not implemented for '
                       "'BFloat16'")
    assert explain_failure(exc, model, torch.device('cuda'), 'bf16') == NO_BF16
    assert explain_failure(exc, model, torch.device('cuda'), 'fp32') is None
    assert explain_failure(
        RuntimeError('other'), model, torch.device('cpu'), 'bf16') is None


def test_peak_table_and_mfu():
    assert dense_bf16_peak_tflops('NVIDIA H100 80GB HBM3')[0] == 989.0
    assert dense_bf16_peak_tflops('NVIDIA H100 PCIe')[0] == 756.0
    assert dense_bf16_peak_tflops('NVIDIA H200')[0] == 989.0
    assert dense_bf16_peak_tflops('NVIDIA A100-SXM4-80GB')[0] == 312.0
    tflops, note = dense_bf16_peak_tflops('NVIDIA GeForce GTX 1080')
    assert tflops is None and 'MFU left empty' in note
    # 1e12 multiply-adds forward -> 6e12 FLOPs per step in 1 s at 100 T
    assert mfu(1e12, 1.0, 100.0) == pytest.approx(6.0)
    assert mfu(1e12, 1.0, None) is None


def test_flops_and_params_per_part():
    model = nn.Sequential()
    model.add_module('backbone', nn.Linear(8, 16))
    model.add_module('head', nn.Sequential(nn.Linear(16, 4)))
    model.head.add_module('inner', nn.Linear(4, 2))
    parts = dict(
        encoder=('backbone', ), head=('head', ), decoder=('head.inner', ))
    params = param_counts(model, parts)
    assert params['encoder'] == 8 * 16 + 16
    assert params['decoder'] == 4 * 2 + 2
    assert params['head'] == 16 * 4 + 4
    assert params['other'] == 0
    flops = count_flops(model, lambda m, x: m(x), (torch.randn(3, 8), ), parts)
    assert flops['total'] == 3 * (8 * 16 + 16 * 4 + 4 * 2)
    assert flops['parts']['decoder'] == 3 * 4 * 2
    assert flops['parts']['head'] == 3 * 16 * 4
    with pytest.raises(KeyError, match='no module'):
        param_counts(model, dict(encoder=('neck', )))
    with pytest.raises(ValueError, match='two parts'):
        param_counts(model, dict(a=('backbone', ), b=('backbone', )))


def test_time_and_memory():
    x = torch.randn(256, 256)
    timing = time_fn(lambda: x @ x, 'cpu', warmup=0, iters=2)
    assert timing['iters'] == 2 and timing['min_s'] <= timing['mean_s']
    with pytest.raises(ValueError, match='iters'):
        time_fn(lambda: None, 'cpu', iters=0)
    with pytest.raises(ValueError, match='warmup'):
        time_fn(lambda: None, 'cpu', warmup=-1)
    mem = peak_memory(lambda: torch.ones(16 * 2**20 // 4).sum(), 'cpu')
    if mem is not None:  # Linux: the 16 MiB tensor is counted
        assert 15 * 2**20 <= mem < 64 * 2**20


class _Sleep(nn.Module):

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds

    def forward(self, x):
        time.sleep(self.seconds)
        return x


class _Head(nn.Module):

    def __init__(self):
        super().__init__()
        self.dec = nn.ModuleList([_Sleep(0.01), _Sleep(0.01)])
        self.own = _Sleep(0.005)

    def forward(self, x):
        for layer in self.dec:  # called one by one, as mmdet's heads do
            x = layer(x)
        return self.own(x)


def test_part_times_are_exclusive():
    model = nn.Module()
    model.backbone = _Sleep(0.02)
    model.head = _Head()

    def run():  # head.forward called explicitly, as mmdet does
        time.sleep(0.004)
        return model.head.forward(model.backbone(torch.zeros(1)))

    parts = dict(
        encoder=('backbone', ), decoder=('head.dec', ), head=('head', ))
    times = part_times(model, run, parts, 'cpu', iters=2)
    assert set(times) == {'encoder', 'decoder', 'head', 'rest'}
    assert times['encoder'] >= 0.02 and times['decoder'] >= 0.02
    assert 0.005 <= times['head'] < times['decoder']
    assert times['rest'] >= 0.004
    assert 'forward' not in vars(model.head)  # the routing is undone
    assert not model.head._forward_hooks  # hooks removed


def test_config_resolution():
    assert resolve_config('mmdet::detr/detr_r50_8xb2-150e_coco.py').endswith(
        osp.join('.mim', 'configs', 'detr', 'detr_r50_8xb2-150e_coco.py'))
    with pytest.raises(FileNotFoundError):
        resolve_config('configs/glid/no_such_config.py')
    with pytest.raises(ValueError, match='NAME=CONFIG'):
        parse_peer_config('no-equals-sign')


@pytest.mark.gpu
def test_gpu_pretrain_bf16_has_mfu_and_memory(project_root, tmp_path):
    pre = _script(project_root, 'glid_pretrain_step')
    argv = [
        '--arch', 'nano', '--device', 'cuda', '--dtype', 'bf16', '--iters',
        '2', '--warmup', '1', '--out-dir',
        str(tmp_path)
    ]
    assert pre.main(argv) == 0
    result = _load(tmp_path / 'glid_pretrain_step.json')
    row = _rows(result)['GLID']
    assert row['status'] == 'ok' and row['peak_memory_mib'] > 0
    if result['environment']['gpu_dense_bf16_peak_tflops']:
        assert row['mfu_percent'] > 0


@pytest.mark.gpu
def test_gpu_mask2former_bf16_row(project_root, tmp_path):
    """Under bf16 on CUDA Mask2Former either runs or says why (mmcv's
    deformable attention kernel has no bf16) and gets an fp16 row."""
    pan = _script(project_root, 'glid_panoptic_inference')
    argv = [
        '--arch', 'nano', '--device', 'cuda', '--dtype', 'bf16', '--iters',
        '2', '--warmup', '1', '--out-dir',
        str(tmp_path)
    ]
    assert pan.main(argv) == 0
    rows = _rows(_load(tmp_path / 'glid_panoptic_inference.json'))
    assert rows['GLID']['status'] == 'ok'
    m2f = rows['Mask2Former']['status']
    if 'without its CUDA ops' in m2f:  # setup_env.sh without --cuda
        pytest.skip(m2f)
    assert m2f == 'ok' or (NO_BF16 in m2f
                           and rows['Mask2Former (fp16)']['status'] == 'ok')


def test_generalist_simt_cost_configs(project_root, tmp_path):
    """The two runs of tools/benchmark/generalist_simt_cost.py: the SIMT
    run is the generalist with every task's loader and a weight, all but
    one at 1e-6; the DDP run is that task's single-task config; both with
    batch 2, the same optimizer, no validation or checkpoint within the
    run."""
    from mmengine.config import Config

    from glid_mm.utils.gppf_task_configs import resolve_task_configs
    from glid_tools import load_script
    from glid_tools.study_generalist import TASKS
    bench = load_script('benchmark/generalist_simt_cost')
    paths = bench._configs('seg', 7, str(tmp_path))
    simt = resolve_task_configs(Config.fromfile(paths['simt']))
    ddp = Config.fromfile(paths['ddp'])
    assert simt.model.type == 'GPPFMultiTaskModel'
    assert simt.model_wrapper_cfg.type == 'SIMTDistributedWrapper'
    weights = simt.train_cfg.task_weights
    assert weights == {t: 1.0 if t == 'seg' else 1e-6 for t in TASKS}
    assert set(simt.train_dataloader) == set(TASKS)
    assert ddp.model.type != 'GPPFMultiTaskModel'
    assert ddp.get('model_wrapper_cfg') is None  # mmengine's DDP
    assert ddp.train_dataloader.batch_size == 2
    assert simt.train_dataloader.seg.batch_size == 2
    for cfg in (simt, ddp):
        assert cfg.train_cfg.max_iters == 7
        assert cfg.train_cfg.val_interval > 7
        assert cfg.default_hooks.checkpoint.interval > 7
        assert cfg.optim_wrapper.optimizer.lr == 5e-4
        assert cfg.optim_wrapper.clip_grad.max_norm == 0.1
