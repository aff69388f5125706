"""CPU multi-process launch set-up (glid_mm/engine/cpu_distributed.py).

The config surgery of :func:`cpu_model_wrapper` for each wrapper case, and
what :func:`init_cpu_process_group` does before any process group exists:
nothing for ``launcher='none'`` or on a CUDA machine, an error for non
``pytorch`` launchers, and the arguments it would hand to
``torch.distributed.init_process_group`` (recorded, never called: real
multi-process runs are tested with tools/dist_train.sh elsewhere, e.g.
tests/engine/loops/test_multi_task_val_loop.py).
"""
import copy
import datetime

import pytest
import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS
from torch.nn.parallel import DistributedDataParallel

import glid_mm  # noqa: F401  (registers GlooDistributedDataParallel)
from glid_mm.engine import GlooDistributedDataParallel
from glid_mm.engine.cpu_distributed import (cpu_model_wrapper,
                                            init_cpu_process_group)


def _wrapped(**cfg):
    cfg = Config(cfg)
    cpu_model_wrapper(cfg)
    return cfg


# ----------------------------------------------------------------------
# cpu_model_wrapper
# ----------------------------------------------------------------------
@pytest.mark.parametrize('unused', [None, False, True])
def test_no_wrapper_config_gets_gloo_ddp_with_mmengine_defaults(unused):
    cfg = _wrapped() if unused is None else _wrapped(
        find_unused_parameters=unused)
    assert cfg.model_wrapper_cfg == dict(
        type='GlooDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=bool(unused))
    # the name resolves in mmengine's root registry (every scope sees it)
    assert MODEL_WRAPPERS.get(cfg.model_wrapper_cfg.type) is \
        GlooDistributedDataParallel


@pytest.mark.parametrize('type_', [
    'MMDistributedDataParallel', 'mmengine.MMDistributedDataParallel',
    'mmdet.MMDistributedDataParallel', 'mmseg.MMDistributedDataParallel',
    MMDistributedDataParallel, None
])
def test_mmengine_ddp_becomes_gloo_ddp_keeping_its_options(type_):
    wrapper = dict(
        broadcast_buffers=True,
        find_unused_parameters=True,
        detect_anomalous_params=True,
        device_ids=[0])
    if type_ is not None:  # no type: mmengine's runner defaults to MMDDP
        wrapper['type'] = type_
    cfg = _wrapped(model_wrapper_cfg=wrapper)
    assert cfg.model_wrapper_cfg == dict(
        type='GlooDistributedDataParallel',
        broadcast_buffers=True,
        find_unused_parameters=True,
        detect_anomalous_params=True,
        device_ids=None)


def test_find_unused_parameters_at_top_level_does_not_touch_a_wrapper():
    cfg = _wrapped(
        find_unused_parameters=True,
        model_wrapper_cfg=dict(type='MMDistributedDataParallel'))
    assert cfg.model_wrapper_cfg == dict(
        type='GlooDistributedDataParallel', device_ids=None)


@pytest.mark.parametrize('type_', [
    'DistributedDataParallel', 'MMSeparateDistributedDataParallel',
    'GlooDistributedDataParallel', DistributedDataParallel
])
def test_other_ddp_subclasses_keep_their_type_without_device_ids(type_):
    cfg = _wrapped(
        model_wrapper_cfg=dict(
            type=type_, device_ids=[3], broadcast_buffers=False))
    assert cfg.model_wrapper_cfg == dict(
        type=type_, device_ids=None, broadcast_buffers=False)


@pytest.mark.parametrize('type_', [
    'SIMTDistributedWrapper', 'MMFullyShardedDataParallel', 'DataParallel',
    'NotARegisteredWrapper', torch.nn.Module
])
def test_other_wrappers_are_kept_as_they_are(type_):
    wrapper = dict(type=type_, find_unused_parameters=True)
    cfg = _wrapped(model_wrapper_cfg=copy.deepcopy(wrapper))
    assert cfg.model_wrapper_cfg == wrapper
    assert 'device_ids' not in cfg.model_wrapper_cfg


def test_cpu_model_wrapper_is_idempotent():
    once = _wrapped(model_wrapper_cfg=dict(type='MMDistributedDataParallel'))
    twice = copy.deepcopy(once)
    cpu_model_wrapper(twice)
    assert twice.model_wrapper_cfg == once.model_wrapper_cfg
    fresh = _wrapped()
    again = copy.deepcopy(fresh)
    cpu_model_wrapper(again)
    assert again.model_wrapper_cfg == fresh.model_wrapper_cfg


# ----------------------------------------------------------------------
# init_cpu_process_group (no real process group)
# ----------------------------------------------------------------------
@pytest.fixture
def recorded(monkeypatch):
    """No CUDA, no process group yet; init_process_group only recorded."""
    calls = []
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(dist, 'is_initialized', lambda: False)
    monkeypatch.setattr(dist, 'init_process_group',
                        lambda **kwargs: calls.append(kwargs))
    return calls


@pytest.mark.parametrize(
    'cfg',
    [
        dict(launcher='none'),
        dict(
            launcher='none',
            model_wrapper_cfg=dict(type='MMDistributedDataParallel')),
        dict(),  # no launcher: a one-process run
    ])
def test_launcher_none_is_a_no_op(recorded, cfg):
    cfg = Config(cfg)
    before = copy.deepcopy(cfg.to_dict())
    init_cpu_process_group(cfg)
    assert cfg.to_dict() == before
    assert recorded == []


@pytest.mark.parametrize('launcher', ['pytorch', 'slurm'])
def test_cuda_machine_is_left_to_mmengine(recorded, monkeypatch, launcher):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = Config(dict(launcher=launcher))
    init_cpu_process_group(cfg)
    assert 'model_wrapper_cfg' not in cfg and 'env_cfg' not in cfg
    assert recorded == []


@pytest.mark.parametrize('launcher', ['slurm', 'mpi'])
def test_launchers_other_than_pytorch_need_gpus(recorded, launcher):
    with pytest.raises(
            RuntimeError,
            match=f'--launcher {launcher} needs GPUs; .*tools/dist_train.sh'):
        init_cpu_process_group(Config(dict(launcher=launcher)))
    assert recorded == []


def test_pytorch_launcher_inits_gloo_and_wraps_for_cpu(recorded):
    cfg = Config(dict(launcher='pytorch'))
    init_cpu_process_group(cfg)
    assert recorded == [dict(backend='gloo')]
    assert cfg.model_wrapper_cfg.type == 'GlooDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None


def test_nccl_backend_is_switched_to_gloo_with_a_warning(recorded):
    cfg = Config(
        dict(
            launcher='pytorch',
            env_cfg=dict(
                cudnn_benchmark=False,
                dist_cfg=dict(backend='nccl', timeout=90, init_method=None))))
    with pytest.warns(
            UserWarning, match="backend='nccl' needs GPUs.*using \"gloo\""):
        init_cpu_process_group(cfg)
    # mmengine's timeout is in seconds; torch wants a timedelta
    assert recorded == [
        dict(
            backend='gloo',
            timeout=datetime.timedelta(seconds=90),
            init_method=None)
    ]
    # the config now says what runs (the runner logs it)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.env_cfg.dist_cfg.timeout == 90  # the config keeps seconds
    assert cfg.env_cfg.cudnn_benchmark is False


def test_gloo_backend_gives_no_warning(recorded, recwarn):
    cfg = Config(
        dict(launcher='pytorch', env_cfg=dict(dist_cfg=dict(backend='gloo'))))
    init_cpu_process_group(cfg)
    assert not [w for w in recwarn if 'needs GPUs' in str(w.message)]
    assert recorded == [dict(backend='gloo')]


def test_initialised_group_only_gets_the_cpu_wrapper(recorded, monkeypatch):
    """A process group made before (e.g. by a test harness): not made
    again, whatever the launcher; the wrapper config is still fixed."""
    monkeypatch.setattr(dist, 'is_initialized', lambda: True)
    cfg = Config(
        dict(
            launcher='slurm',
            model_wrapper_cfg=dict(
                type='MMDistributedDataParallel', device_ids=[0])))
    init_cpu_process_group(cfg)
    assert recorded == []
    assert cfg.model_wrapper_cfg == dict(
        type='GlooDistributedDataParallel', device_ids=None)
