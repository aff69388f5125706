"""Workers of test_simt_wrapper.py (a plain module: spawned processes
import it by name, which pytest's importlib mode does not allow for test
modules)."""
import os

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.optim import OptimWrapper
from mmengine.structures import BaseDataElement

SHAPES = dict(a=(2, 3, 8, 8), b=(3, 3, 12, 12))
TASK_OF_RANK = ('a', 'b')


def make_model():
    from glid_mm.models.algorithms.gppf_multi_task_model import task_of
    from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN

    class ToyTasks(BaseModel):
        """Shared conv + CrossTaskSyncBN; heads a (cls), b (dense), c."""

        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = CrossTaskSyncBN(4)
            self.heads = nn.ModuleDict(
                dict(
                    a=nn.Linear(4, 2), b=nn.Conv2d(4, 2, 1), c=nn.Linear(4,
                                                                         2)))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            task = task_of(data_samples)
            feats = F.relu(self.bn(self.conv(inputs)))
            return dict(loss=head_loss(self.heads, task, feats))

    return ToyTasks()


def head_loss(heads, task, feats):
    target = torch.linspace(-1, 1, feats.shape[0])
    if task == 'a':
        out = heads['a'](feats.mean((2, 3)))
        return ((out - target[:, None])**2).mean()
    out = heads['b'](feats)
    return ((out - target[:, None, None, None])**2).mean()


def batch(task):
    torch.manual_seed(10 + TASK_OF_RANK.index(task))
    samples = [
        BaseDataElement(metainfo=dict(task=task))
        for _ in range(SHAPES[task][0])
    ]
    return dict(inputs=torch.randn(SHAPES[task]), data_samples=samples)


def worker(rank, port, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    import glid_mm  # noqa: F401
    from glid_mm.engine import SIMTDistributedWrapper, task_average_gradients
    torch.manual_seed(rank)  # rank 1 differs until the wrapper broadcasts
    model = SIMTDistributedWrapper(make_model())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1.0))
    grads = {}  # what the optimizer steps with (zero_grad clears it after)
    optim.optimizer.register_step_pre_hook(
        lambda *_: grads.update({
            k: None if v.grad is None else v.grad.clone()
            for k, v in model.module.named_parameters()
        }))
    model.train()
    model.train_step(batch(TASK_OF_RANK[rank]), optim)
    result = dict(
        params={
            k: v.detach().clone()
            for k, v in model.module.named_parameters()
        },
        grads=grads,
        buffers={
            k: v.clone()
            for k, v in model.module.named_buffers()
        })

    # the rule on hand-made gradients: p0 used by both (1 and 3 -> 2),
    # p1 by rank 0 only (5 -> 5, not 2.5), p2 by rank 1 only, p3 by nobody
    ps = [nn.Parameter(torch.zeros(2)) for _ in range(4)]
    if rank == 0:
        ps[0].grad, ps[1].grad = torch.ones(2), torch.full((2, ), 5.)
    else:
        ps[0].grad, ps[2].grad = torch.full((2, ), 3.), torch.full((2, ), 7.)
    counts = task_average_gradients(ps, bucket_size_mb=1e-6)  # 1 per bucket
    result['rule'] = [None if p.grad is None else p.grad.tolist() for p in ps]
    result['counts'] = counts.tolist()
    torch.save(result, os.path.join(out_dir, f'rank{rank}.pth'))
    dist.destroy_process_group()


def lego_worker(rank, port, out_dir):
    """Hard sampling and fixed paths differing between the 2 processes."""
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
    result = {}
    for mode in ('hard', 'fixed'):
        torch.manual_seed(0)
        lego = LegoResNet(
            task_names=('a', 'b'),
            stem_channels=4,
            base_channels=2,
            num_stages=2,
            out_indices=(1, ),
            hard=mode == 'hard',
            fixed_paths=dict(a=[0] * 8, b=[1] *
                             8) if mode == 'fixed' else None,
            norm_cfg=dict(type='CrossTaskSyncBN'))
        lego.train()
        torch.manual_seed(100 + rank)  # own Gumbel draws and inputs
        x = torch.randn(2 + rank, 3, 16 + 8 * rank, 16)
        with lego.using_task(TASK_OF_RANK[rank]):
            out, = lego(x)
        out.mean().backward()
        result[mode] = dict(
            buffers={
                k: v.clone()
                for k, v in lego.named_buffers()
            },
            used={
                k: v.grad is not None
                for k, v in lego.named_parameters()
            })
    torch.save(result, os.path.join(out_dir, f'lego{rank}.pth'))
    dist.destroy_process_group()


def lego_cp_worker(rank, port, out_dir):
    """LegoResNet with and without ``with_cp`` on 2 processes whose tasks
    take different units (soft, hard and fixed-path modes)."""
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet
    result = {}
    for mode in ('soft', 'hard', 'fixed'):
        for with_cp in (False, True):
            torch.manual_seed(0)
            lego = LegoResNet(
                task_names=('a', 'b'),
                stem_channels=4,
                base_channels=2,
                num_stages=2,
                out_indices=(1, ),
                hard=mode == 'hard',
                fixed_paths=dict(a=[0] * 8, b=[1] *
                                 8) if mode == 'fixed' else None,
                norm_cfg=dict(type='CrossTaskSyncBN'),
                with_cp=with_cp)
            lego.train()
            torch.manual_seed(100 + rank)  # own Gumbel draws and inputs
            x = torch.randn(2 + rank, 3, 16 + 8 * rank, 16)
            with lego.using_task(TASK_OF_RANK[rank]):
                out, = lego(x)
            (out * torch.linspace(-1, 2, out.shape[-1])).mean().backward()
            result[(mode, with_cp)] = dict(
                buffers={
                    k: v.clone()
                    for k, v in lego.named_buffers()
                },
                grads={
                    k: None if v.grad is None else v.grad.clone()
                    for k, v in lego.named_parameters()
                })
    torch.save(result, os.path.join(out_dir, f'lego_cp{rank}.pth'))
    dist.destroy_process_group()


def buffer_worker(rank, port, out_dir):
    """Per-task BatchNorm running statistics through
    ``SIMTDistributedWrapper.train_step``: rank 0 runs task a, rank 1 task
    b; head a's BN is used by rank 0 only, the shared plain BN by both."""
    torch.set_num_threads(1)
    dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    import glid_mm  # noqa: F401
    from glid_mm.engine import SIMTDistributedWrapper
    from glid_mm.models.algorithms.gppf_multi_task_model import task_of

    class BNHeads(BaseModel):

        def __init__(self):
            super().__init__()
            self.shared = nn.BatchNorm2d(3)
            self.heads = nn.ModuleDict(
                dict(
                    a=nn.BatchNorm2d(3),
                    b=nn.BatchNorm2d(3),
                    c=nn.BatchNorm2d(3)))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            task = task_of(data_samples)
            return dict(
                loss=self.heads[task](self.shared(inputs)).pow(2).mean())

    torch.manual_seed(0)
    model = SIMTDistributedWrapper(BNHeads())
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.train()
    data = batch(TASK_OF_RANK[rank])
    data['inputs'] = data['inputs'] * (1 + 3 * rank) + rank
    # what this process's own step does to the running statistics
    local = BNHeads()
    local.load_state_dict(model.module.state_dict())
    local.train()
    local(data['inputs'], data['data_samples'])
    model.train_step(data, optim)
    torch.save(
        dict(
            buffers={
                k: v.clone()
                for k, v in model.module.named_buffers()
            },
            local={
                k: v.clone()
                for k, v in local.named_buffers()
            }), os.path.join(out_dir, f'buffers{rank}.pth'))
    dist.destroy_process_group()
