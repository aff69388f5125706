"""The nano GLID generalist (issue 23) for tests: its resolved config,
the model, real task batches, and the 2-process SIMT worker (a plain
module: spawned processes import it by name)."""
import copy
import os
import os.path as osp

import torch
import torch.distributed as dist

from glid_test_helpers.dist import ROOT

CONFIG = ('configs/glid/'
          'glid-generalist_swin-nano_2xsimt-40i_coco128-camvid-nyu-cocokpt.py')
#: task -> (toolbox, its single-task config, the generalist's from_config)
TASK_CONFIGS = dict(
    det=('mmdet',
         'configs/glid/glid-det_swin-nano_1xb8-2k_coco128-320x240.py'),
    seg=('mmseg',
         'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'),
    depth=('mmseg',
           'configs/glid/glid-depth_swin-nano_1xb2-300i_nyu-96x128.py'),
    pose=('mmpose',
          'configs/glid/glid-pose_swin-nano_1xb4-60e_coco-samples-256x192.py'))
TASK_OF_RANK = ('det', 'depth')  # iteration 1; iteration 2: depth on both


def resolved_config() -> dict:
    """The generalist config as ``TaskConfigRunner`` resolves it (task
    configs read from the project root)."""
    from glid_mm.utils.gppf_task_configs import resolve_task_configs
    from glid_mm.utils.mim import load_config
    old = os.getcwd()
    os.chdir(ROOT)
    try:
        return resolve_task_configs(load_config(CONFIG).to_dict())
    finally:
        os.chdir(old)


def build(model_cfg: dict, seed: int = 0, **changes):
    """The multi-task model of ``model_cfg`` (with ``changes``), built
    after ``torch.manual_seed(seed)``."""
    from mmengine.registry import MODELS

    import glid_mm  # noqa: F401
    torch.manual_seed(seed)
    cfg = copy.deepcopy(model_cfg)
    cfg.update(changes)
    return MODELS.build(dict(cfg, _scope_='mmdet'))


def task_batch(resolved: dict,
               task: str,
               n: int = 2,
               split: str = 'train_dataloader') -> dict:
    """``n`` samples of ``task`` from its own dataset and pipeline
    (``split``: the dataloader key), collated and stamped with the task,
    as :class:`SIMTTrainLoop` / :class:`MultiTaskValLoop` do."""
    from mmengine.dataset import pseudo_collate
    from mmengine.registry import DATASETS, DefaultScope
    loader = resolved[split][task]
    scope = resolved['model']['tasks'][task]['_scope_']
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope(scope):
        dataset = DATASETS.build(loader['dataset'])
        # the NYU depth set has one frame: it repeats (other random crops)
        data = pseudo_collate([dataset[i % len(dataset)] for i in range(n)])
    for sample in data['data_samples']:
        sample.set_metainfo(dict(task=task))
    return data


def shared_bn_eval(model) -> None:
    """The shared Bi-FPN's BatchNorm layers in eval mode (running
    statistics): gradients then do not depend on the other process's
    batch, so a one-process reference can reproduce them."""
    for m in model.neck.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.eval()


def seed_for(task: str) -> int:
    """Seed set right before a task's forward (drop path, point sampling),
    in the workers and in the reference alike."""
    return 100 + ('det', 'seg', 'depth', 'pose').index(task)


def lateral_bns(model):
    return {
        f'neck.lateral_convs.{i}.bn': conv.bn
        for i, conv in enumerate(model.neck.lateral_convs)
    }


def simt_worker(rank, port, out_dir):
    """Two SIMT phases on the nano generalist, saved as ``rank<r>.pth``.

    1. a training-mode forward of ``TASK_OF_RANK[rank]`` (BN statistics
       of the shared Bi-FPN, CrossTaskSyncBN);
    2. from the same initial state, shared BN in eval mode, two
       ``SIMTDistributedWrapper.train_step`` calls with AdamW: det / depth,
       then depth / depth (the det head is used by nobody);
    3. from the same initial state, one training step with the shared BN
       in training mode (cross-task statistics forward and backward).
    """
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    from mmengine.optim import OptimWrapper

    from glid_mm.engine import SIMTDistributedWrapper
    saved = torch.load(osp.join(out_dir, 'inputs.pth'), weights_only=False)
    batches = saved['batches']
    model = build(saved['model'], seed=rank)  # rank 0's weights broadcast
    wrapper = SIMTDistributedWrapper(model)
    init = copy.deepcopy(model.state_dict())
    result = dict(init={k: v.clone() for k, v in init.items()})

    # phase 1: cross-task BN statistics (the forward's collectives must
    # pair up although the two processes run different tasks)
    task = TASK_OF_RANK[rank]
    model.train()
    torch.manual_seed(seed_for(task))
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batches[task]), True)
        model(**data, mode='loss')
    result['bn'] = {
        name: (bn.running_mean.clone(), bn.running_var.clone())
        for name, bn in lateral_bns(model).items()
    }

    # phase 2: task-averaged gradients and AdamW on used parameters only
    model.load_state_dict(init)
    model.train()
    shared_bn_eval(model)
    optim = OptimWrapper(
        torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05))
    names = {id(p): k for k, p in model.named_parameters()}
    grads = []
    optim.optimizer.register_step_pre_hook(
        lambda *_: grads.append({
            k: None if p.grad is None else p.grad.clone()
            for k, p in model.named_parameters()
        }))
    steps = []
    for task in (TASK_OF_RANK[rank], 'depth'):
        torch.manual_seed(seed_for(task))
        wrapper.train_step(copy.deepcopy(batches[task]), optim)
        state = optim.optimizer.state
        steps.append(
            dict(
                params={
                    k: p.detach().clone()
                    for k, p in model.named_parameters()
                },
                adam={
                    names[id(p)]: (float(s['step']), s['exp_avg'].clone())
                    for p, s in state.items()
                }))
    result.update(grads=grads, steps=steps)

    # phase 3: a full training step with the shared BN in training mode:
    # CrossTaskSyncBN's forward and backward collectives run while the two
    # processes run different tasks' graphs
    model.load_state_dict(init)
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    trained = []
    optim.optimizer.register_step_pre_hook(
        lambda *_: trained.append({
            k: p.grad.clone()
            for k, p in model.named_parameters() if p.grad is not None
        }))
    task = TASK_OF_RANK[rank]
    torch.manual_seed(seed_for(task))
    log_vars = wrapper.train_step(copy.deepcopy(batches[task]), optim)
    result['bn_train'] = dict(
        loss=float(log_vars['loss']),
        grads=trained[0],
        buffers={
            k: v.clone()
            for k, v in model.named_buffers() if k.startswith('neck.')
        })
    torch.save(result, osp.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()
