import copy
import os
import os.path as osp
import uuid

import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA_ROOT = os.environ.get('GLID_MM_DATA',
                           osp.join(ROOT, '..', 'shared', 'data'))


def _cache_toolbox_metafiles():
    """Read each toolbox metafile once per test process.

    ``Config.fromfile`` looks every ``'mmdet::...'`` base up in the
    toolbox's model index first: about 80 YAML metafiles parsed again for
    each such base (about 0.2 s each; the suite reads hundreds of configs
    with such bases). The files do not change during a test run, so the
    tests keep the parsed YAML of each; mmengine's lookup itself is
    unchanged (it only reads through this). Tests only: ``glid_mm`` and
    the tools patch no toolbox global (tests/test_house_rules.py).
    """
    import functools

    from mmengine.config import utils as config_utils
    load = config_utils.load

    @functools.lru_cache(maxsize=None)
    def _cached(path):
        return load(path)

    def cached_load(file, *args, **kwargs):
        if args or kwargs or not isinstance(file, str) or \
                not file.endswith('.yml'):
            return load(file, *args, **kwargs)
        return _cached(file)  # read, never changed, by mmengine

    config_utils.load = cached_load


def pytest_configure(config):
    _cache_toolbox_metafiles()
    config.addinivalue_line('markers',
                            'gpu: needs a CUDA device (skipped without one)')
    config.addinivalue_line(
        'markers', 'slow: takes more than a few seconds on 2 CPU cores '
        '(training runs, several processes, scripts, paper-size models); '
        'the fast lane skips them: bash tools/run_tests.sh -m "not slow"')


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def project_root():
    return ROOT


@pytest.fixture(scope='session')
def data_root():
    if not osp.isdir(DATA_ROOT):
        pytest.fail(f'bundled data not found at {DATA_ROOT} '
                    '(set GLID_MM_DATA)')
    return DATA_ROOT


TINY_CHANNELS = 32


def _worker_threads() -> int:
    """Intra-op threads for this process: the cores shared among
    pytest-xdist's workers (all of them without xdist). Two workers with
    torch's default of one thread per core each oversubscribe the cores:
    measured 5x slower on the GLID tiny pre-training test (72 s vs 14 s) on
    2 cores."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    return max(1, len(os.sched_getaffinity(0)) // max(workers, 1))


if 'PYTEST_XDIST_WORKER' in os.environ:
    torch.set_num_threads(_worker_threads())
    # scripts and spawned processes started by the tests inherit it
    os.environ.setdefault('OMP_NUM_THREADS', str(_worker_threads()))


@pytest.fixture(autouse=True)
def fresh_visualizers():
    """Forget mmengine's visualizer instances after each test. A Runner
    names its visualizer after the config and the current second and
    reuses an existing instance of that name, with that instance's save
    folder: two runners of one config built within a second in one worker
    process (a refused run, then the next test) would write into the first
    test's folder."""
    yield
    from mmengine.visualization import Visualizer

    def clear(cls):
        if '_instance_dict' in vars(cls):
            cls._instance_dict.clear()
        for sub in cls.__subclasses__():
            clear(sub)

    clear(Visualizer)


@pytest.fixture(autouse=True)
def one_torch_thread(request):
    """GPPF and M3I tests use tiny tensors: one intra-op thread (two threads
    on a busy 2-core box were measured 45x slower, 3.2 s vs 0.07 s per tiny
    M3I step). Other model tests keep torch's default."""
    name = request.node.path.name
    if not name.startswith(('test_gppf_', 'test_m3i')):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny_m3i_cfg(**overrides) -> dict:
    """A tiny M3I: 1-layer 32-d ViT, 16 px patches on 32 px images (2x2)."""
    cfg = dict(
        type='M3I',
        backbone=dict(
            type='MAEViT',
            arch=dict(
                embed_dims=TINY_CHANNELS,
                num_layers=1,
                num_heads=2,
                feedforward_channels=64),
            img_size=32,
            patch_size=16),
        neck=dict(
            type='M3IDecoder',
            in_channels=TINY_CHANNELS,
            embed_dims=TINY_CHANNELS,
            num_layers=1,
            num_heads=2),
        head=dict(
            type='M3IAttentionPoolHead',
            in_channels=TINY_CHANNELS,
            num_classes=3,
            num_heads=2),
        mixer=dict(type='M3IMixer', patch_size=16, mix_ratio=0.5),
        loss_weights=dict(intra=1.0, inter=1.0, cls=1.0))
    cfg.update(copy.deepcopy(overrides))
    if cfg['mixer'] is None:  # w/o mix: the encoder masks
        cfg['backbone'] = dict(cfg['backbone'], mask_ratio=0.5)
    return cfg


@pytest.fixture
def mmpretrain_scope():
    """Build under mmpretrain's default scope; a fresh max_iters info."""
    import glid_mm  # noqa: F401

    # a fresh name: get_instance returns an existing hub without making it
    # the current one (id(object()) values are reused)
    name = f'test-m3i-{uuid.uuid4().hex}'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        hub = MessageHub.get_instance(name)
        hub.update_info('max_iters', 100)
        yield hub


def _tiny_batch(batch_size: int = 4, size: int = 32, labels=True, seed=0):
    """Random input/target views with hand-made crop boxes and flips."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, size, size, generator=g)
    y = torch.randn(batch_size, 3, size, size, generator=g)
    samples = []
    for i in range(batch_size):
        s = DataSample()
        s.set_field(
            torch.tensor([[0., 0., 100., 80.], [10. + i, 5., 60., 50.]]),
            'm3i_boxes')
        s.set_field(torch.tensor([i % 2 == 0, False]), 'm3i_flips')
        if labels:
            s.set_gt_label(i % 3)
        samples.append(s)
    return [x, y], samples


@pytest.fixture
def tiny_m3i_cfg():
    """``tiny_m3i_cfg(**overrides)`` -> config dict of a tiny M3I."""
    return _tiny_m3i_cfg


@pytest.fixture
def tiny_batch():
    """``tiny_batch(batch_size=4, ...)`` -> ``([x, y], data_samples)``."""
    return _tiny_batch
