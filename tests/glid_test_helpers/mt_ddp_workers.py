"""Workers of test_glid_multitask_ddp.py (a plain module: spawned processes
import it by name)."""
import copy
import os
import os.path as osp

import torch

CFG = 'configs/glid/glid-mtseg_swin-nano_1xb3-500i_coco-panoptic-samples-' \
      '320x240.py'
ITERS = 3
# images of each rank's batch (indices into the 2 bundled samples)
RANK_IMAGES = ((0, 1), (1, 0))


def fixed_rand(*size, **kwargs):
    """``torch.rand`` stand-in that depends only on the last two indices.

    Mask2Former draws random point coordinates per batch (matching and
    loss); with it, the points of a mask no longer depend on which other
    masks share the batch, so one process holding the global batch and two
    processes holding halves sample the same points."""
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = tuple(size[0])
    size = tuple(int(s) for s in size)
    rows, cols = size[-2], size[-1]
    base = torch.arange(
        rows * cols,
        dtype=torch.float64).mul(0.6180339887498949).remainder(1.0).view(
            rows, cols)
    out = base.to(kwargs.get('dtype') or torch.float32)
    return out.expand(size).contiguous().to(kwargs.get('device', 'cpu'))


def build(project_root, data_root):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import glid_mm  # noqa: F401
    from glid_mm.registry import build_model
    cfg = Config.fromfile(osp.join(project_root, CFG))
    root = osp.join(data_root, 'coco_panoptic') + '/'
    cfg.val_dataloader.dataset.data_root = root
    cfg.val_dataloader.dataset.pipeline[1].scale = (160, 120)
    cfg.model.backbone.drop_path_rate = 0.0
    cfg.model.decoder.drop_path_rate = 0.0
    # batch statistics would differ between halves and the whole batch
    cfg.model.neck.norm_cfg = dict(type='GN', num_groups=8)
    init_default_scope('mmdet')
    # point sampling by uncertainty picks the top-k of nearly equal values,
    # which float rounding of a batch of 2 vs 4 can flip: fixed points only
    cfg.model.train_cfg.importance_sample_ratio = 0.
    torch.manual_seed(0)
    model = build_model(cfg.model)
    from mmdet.registry import DATASETS
    dataset_cfg = copy.deepcopy(cfg.val_dataloader.dataset)
    load, resize, annotations, pack = dataset_cfg.pipeline
    dataset_cfg.pipeline = [load, annotations, resize, pack]
    dataset_cfg.test_mode = False
    return model, DATASETS.build(dataset_cfg)


def step_grads(model, forward, batch):
    """Loss and backward of one batch: gradients and loss keys."""
    module = getattr(model, 'module', model)
    data = module.data_preprocessor(batch, training=True)
    losses = forward(data)
    loss, _ = module.parse_losses(losses)
    loss.backward()
    grads = {
        k: p.grad.detach().clone()
        for k, p in module.named_parameters() if p.grad is not None
    }
    module.zero_grad(set_to_none=True)
    return grads, sorted(losses)


def worker(rank, port, out_dir, project_root, data_root):
    torch.set_num_threads(1)
    import torch.distributed as dist
    from mmengine.dataset import pseudo_collate
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    torch.rand = fixed_rand
    from glid_mm.engine import GlooDistributedDataParallel
    model, dataset = build(project_root, data_root)
    model.train()
    ddp = GlooDistributedDataParallel(module=model, broadcast_buffers=False)
    result = []
    for _ in range(ITERS):
        batch = pseudo_collate([dataset[i] for i in RANK_IMAGES[rank]])
        tasks = model.assign_tasks(len(RANK_IMAGES[rank]))
        model.task_step -= 1  # assign_tasks advanced it: peek only
        grads, keys = step_grads(ddp, lambda data: ddp(**data, mode='loss'),
                                 batch)
        result.append(dict(grads=grads, tasks=tasks, keys=keys))
    torch.save(result, os.path.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def reference(project_root, data_root):
    """One process holding the global batch (rank 0's images, then rank
    1's) for the same iterations."""
    from mmengine.dataset import pseudo_collate
    rand = torch.rand
    torch.rand = fixed_rand
    try:
        model, dataset = build(project_root, data_root)
        model.train()
        result = []
        for _ in range(ITERS):
            batch = pseudo_collate(
                [dataset[i] for images in RANK_IMAGES for i in images])
            tasks = model.assign_tasks(4)
            model.task_step -= 1
            grads, keys = step_grads(model,
                                     lambda data: model(**data, mode='loss'),
                                     batch)
            result.append(dict(grads=grads, tasks=tasks, keys=keys))
        return result
    finally:
        torch.rand = rand
