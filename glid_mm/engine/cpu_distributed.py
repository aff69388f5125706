"""Multi-process training on a machine without GPUs (gloo).

``tools/train.py`` / ``tools/test.py`` call :func:`init_cpu_process_group`
before the runner is built; on a machine with CUDA (or a one-process run)
it does nothing.
"""


def init_cpu_process_group(cfg) -> None:
    """Distributed launch on a machine without GPUs (gloo, no device ids).

    mmengine 0.10's pytorch launcher calls ``torch.cuda.set_device`` and so
    fails without a GPU, and its default DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``, which DDP refuses for CPU modules. On a
    machine without CUDA this initialises the process group itself (the
    runner finds it initialised and skips its own ``init_dist``) with
    ``gloo``, whatever ``env_cfg.dist_cfg.backend`` says (``nccl`` cannot
    run there; a warning names the switch), and makes the DDP wrapper
    CPU-ready (:func:`cpu_model_wrapper`). So any config launches on CPU
    processes with ``tools/dist_train.sh CONFIG N`` without config
    surgery.
    """
    import datetime
    import warnings

    import torch
    import torch.distributed as dist
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        if cfg.launcher != 'pytorch':
            raise RuntimeError(
                f'--launcher {cfg.launcher} needs GPUs; on a machine '
                'without GPUs use tools/dist_train.sh (--launcher pytorch)')
        env_cfg = cfg.setdefault('env_cfg', {})
        dist_cfg = dict(env_cfg.get('dist_cfg', {}) or {})
        backend = dist_cfg.pop('backend', 'gloo')
        if backend != 'gloo':
            warnings.warn(
                f'env_cfg.dist_cfg.backend={backend!r} needs GPUs and this '
                'machine has none: using "gloo" (CPU processes)')
            env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        timeout = dist_cfg.pop('timeout', None)
        if timeout is not None:
            dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend='gloo', **dist_cfg)
    cpu_model_wrapper(cfg)


def cpu_model_wrapper(cfg) -> None:
    """DDP for CPU processes: :class:`GlooDistributedDataParallel` in place
    of mmengine's default wrapper (``device_ids=None``, SyncBN made
    gloo-capable), with mmengine's defaults (``broadcast_buffers=False``,
    ``find_unused_parameters`` from the config); another DDP subclass named
    by the config gets ``device_ids=None``; other wrappers are kept."""
    from mmengine.registry import MODEL_WRAPPERS
    from torch.nn.parallel import DistributedDataParallel
    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='GlooDistributedDataParallel',
            device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
        return
    from mmengine.model import MMDistributedDataParallel
    wrapper_type = wrapper.get('type', 'MMDistributedDataParallel')
    # mmengine's default wrapper under any spelling: plain, scope-prefixed
    # ('mmdet.MMDistributedDataParallel' resolves to the same class) or the
    # class itself
    if wrapper_type is MMDistributedDataParallel or (
            isinstance(wrapper_type, str)
            and wrapper_type.split('.')[-1] == 'MMDistributedDataParallel'):
        wrapper.type = 'GlooDistributedDataParallel'
        wrapper.device_ids = None
        return
    if isinstance(wrapper_type, str):
        wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
    if isinstance(wrapper_type, type) and \
            issubclass(wrapper_type, DistributedDataParallel):
        wrapper['device_ids'] = None
