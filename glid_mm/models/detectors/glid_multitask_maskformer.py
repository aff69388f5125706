"""GLID multi-task segmentation fine-tuning (Sec. 4, Sec. 5.3, Table 3)."""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmdet.structures.mask import BitmapMasks
from mmengine.config import ConfigDict
from mmengine.dist import get_dist_info
from mmengine.model import ModuleDict
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded
from glid_mm.models.detectors.glid_maskformer import GLIDMaskFormer
from glid_mm.registry import MODELS, build_nested

TASKS = ('semantic', 'instance', 'panoptic')


@MODELS.register_module(scopes=('mmdet', ))
class GLIDMultiTaskMaskFormer(GLIDMaskFormer):
    """One GLID model fine-tuned on several segmentation tasks at once.

    GLID Sec. 4 "Multitask fine-tuning": "Except for the task-specific linear
    head, other parameters are shared. During fine-tuning, the batch samples
    of different tasks are evenly included." Sec. 5.3 / Table 3 use ADE20K's
    panoptic annotations for semantic, instance and panoptic segmentation.

    Shared: encoder, BiFPN, query decoder and its queries ``[CLS] + e_i``
    (one set, ``panoptic_head.num_queries``; the single-task recipes use
    100 / 200 / 200, shared queries cannot differ per task, so all tasks use
    the panoptic head's count). Per task: a :class:`GLIDMaskHead` built from
    ``panoptic_head`` with the task's class split, i.e. its own linear layer
    ``task_heads.<task>.predictor`` plus matching and losses (no other
    parameters), and an mmdet ``MaskFormerFusionHead`` for inference.

    Targets from one panoptic annotation (mmdet's ``LoadPanopticAnnotations``
    gives ``gt_instances`` for things and ``gt_sem_seg`` for every class):

    - ``panoptic``: things as instances + one mask per stuff class (mmdet's
      panoptic Mask2Former targets);
    - ``instance``: the thing instances only, ``num_stuff_classes = 0``;
    - ``semantic``: one mask per class present in ``gt_sem_seg`` (things
      merged per class), ``num_things_classes = 0``.

    Training (``task_assignment``): ``'split'`` (default) gives sample ``i``
    of a batch the task ``tasks[(i + iter) % T]``, so each batch holds the
    tasks evenly (exactly when the batch size is a multiple of ``T``) and
    every image cycles through the tasks over iterations (``iter`` counts
    training batches in the buffer ``task_step``, saved with the checkpoint,
    so a resumed run assigns the same tasks); ``'all'``
    computes every task's loss on every sample. Loss keys are
    ``<task>.<mmdet key>`` (e.g. ``semantic.loss_mask``,
    ``instance.d0.loss_dice``).

    Inference runs every task head on every image and writes
    ``pred_panoptic_seg`` (panoptic), ``pred_instances`` (instance) and
    ``pred_sem_seg`` (semantic; ``PixelData(sem_seg=[1, H, W])`` at the
    original size), so one validation pass feeds mmdet's
    ``CocoPanopticMetric``, ``CocoMetric`` and :class:`DetSemSegIoUMetric`.
    Semantic inference is Mask2Former's (``sum_q softmax(cls_q)[:K] *
    sigmoid(mask_q)``, argmax); written here because mmdet's
    ``MaskFormerFusionHead.semantic_postprocess`` raises
    ``NotImplementedError``.

    Args:
        tasks (Sequence[str]): Subset of ``('semantic', 'instance',
            'panoptic')``, at least one (the task combination of Table 3).
            Defaults to all three.
        task_assignment (str): ``'split'`` or ``'all'`` (see above).
            Defaults to ``'split'``.
        panoptic_head (dict): :class:`GLIDMaskHead` with the dataset's
            panoptic ``num_things_classes`` / ``num_stuff_classes``; the
            template of every task head.
        Other args: as :class:`GLIDMaskFormer` (``test_cfg``'s
            ``panoptic_on`` / ``instance_on`` / ``semantic_on`` are set per
            task head).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 decoder: dict,
                 panoptic_head: dict,
                 tasks: Sequence[str] = TASKS,
                 task_assignment: str = 'split',
                 panoptic_fusion_head: dict = dict(
                     type='MaskFormerFusionHead'),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        tasks = tuple(tasks)
        unknown = [t for t in tasks if t not in TASKS]
        if not tasks or unknown or len(set(tasks)) != len(tasks):
            raise ValueError(f'tasks must be distinct names from {TASKS}, '
                             f'got {tasks!r}')
        if task_assignment not in ('split', 'all'):
            raise ValueError("task_assignment must be 'split' or 'all', got "
                             f'{task_assignment!r}')
        super().__init__(
            backbone=backbone,
            neck=neck,
            decoder=decoder,
            panoptic_head=panoptic_head,
            panoptic_fusion_head=panoptic_fusion_head,
            train_cfg=train_cfg,
            test_cfg=test_cfg,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.tasks = tasks
        self.task_assignment = task_assignment
        things, stuff = self.num_things_classes, self.num_stuff_classes
        if things <= 0 or stuff < 0:
            raise ValueError('panoptic_head needs the panoptic class split, '
                             f'got num_things_classes={things}, '
                             f'num_stuff_classes={stuff}')
        split = dict(
            panoptic=(things, stuff),
            instance=(things, 0),
            semantic=(0, things + stuff))
        # the template head built by MaskFormer is replaced by one per task
        template = ConfigDict(copy.deepcopy(panoptic_head))
        del self.panoptic_head
        del self.panoptic_fusion_head
        heads, fusions = {}, {}
        for task in tasks:
            n_things, n_stuff = split[task]
            head_cfg = copy.deepcopy(template)
            head_cfg.update(
                num_things_classes=n_things,
                num_stuff_classes=n_stuff,
                train_cfg=copy.deepcopy(train_cfg),
                test_cfg=copy.deepcopy(test_cfg))
            heads[task] = build_nested(head_cfg, home='mmdet')
            fusion_test = ConfigDict(copy.deepcopy(test_cfg or {}))
            fusion_test.update(
                panoptic_on=task == 'panoptic',
                instance_on=task == 'instance',
                semantic_on=False)
            fusion_cfg = ConfigDict(copy.deepcopy(panoptic_fusion_head))
            fusion_cfg.update(
                num_things_classes=n_things,
                num_stuff_classes=n_stuff,
                test_cfg=fusion_test)
            fusions[task] = build_nested(fusion_cfg, home='mmdet')
        self.task_heads = ModuleDict(heads)
        self.fusion_heads = ModuleDict(fusions)
        # training batches seen; in the state dict so that a resumed run
        # assigns the same tasks as an uninterrupted one
        self.register_buffer(
            'task_step', torch.zeros((), dtype=torch.long), persistent=True)

    # ------------------------------------------------------------- targets
    @staticmethod
    def _task_sample(sample, task: str):
        """A copy of ``sample`` holding the targets of ``task`` only."""
        out = sample.clone()
        if task == 'instance':
            if 'gt_sem_seg' in out:
                del out.gt_sem_seg
        elif task == 'semantic':
            if 'gt_sem_seg' not in out:
                raise KeyError('the semantic task needs gt_sem_seg in every '
                               'data sample (LoadPanopticAnnotations with '
                               'with_seg=True)')
            h, w = out.gt_sem_seg.sem_seg.shape[-2:]
            empty = InstanceData()
            empty.labels = out.gt_instances.labels.new_zeros((0, ))
            empty.masks = BitmapMasks(np.zeros((0, h, w), np.uint8), h, w)
            out.gt_instances = empty
        return out

    def assign_tasks(self, batch_size: int) -> List[str]:
        """Task of each local sample of the next training batch
        (``'split'`` mode); advances ``task_step``.

        Sample ``i`` of rank ``r`` is sample ``g = r * batch_size + i`` of
        the global batch and gets ``tasks[(g + task_step) % T]``, so the
        tasks are evenly included in the global batch (Sec. 4), whatever
        the per-process batch: at 2 images per process, 2 processes and 3
        tasks the global batch holds 2 / 1 / 1 samples, rotating.
        """
        rank, _ = get_dist_info()
        offset = int(self.task_step) + rank * batch_size
        self.task_step += 1
        T = len(self.tasks)
        return [self.tasks[(i + offset) % T] for i in range(batch_size)]

    # ---------------------------------------------------------------- loss
    def _task_targets(self, task: str, samples: List) -> Tuple[list, list]:
        """Mask2Former targets (``preprocess_gt``) and metas of ``task``."""
        head = self.task_heads[task]
        samples = [self._task_sample(s, task) for s in samples]
        gts = head.preprocess_gt(
            [s.gt_instances for s in samples],
            [s.gt_sem_seg if 'gt_sem_seg' in s else None for s in samples])
        return gts, [s.metainfo for s in samples]

    def _class_weight_sum(self, task: str, gts: list) -> float:
        """Mask2Former's classification normaliser for these targets,
        ``sum_q class_weight[label_q]`` over every query of every image:
        matched queries carry their ground-truth class, the others the
        no-object class (every ground truth is matched when there are at
        most ``num_queries`` of them)."""
        head = self.task_heads[task]
        weight = head.class_weight
        total = 0.
        for gt in gts:
            labels = gt.labels.tolist()
            if len(labels) > head.num_queries and len(
                {weight[c]
                 for c in labels}) > 1:
                raise ValueError(
                    f'{task}: an image has {len(labels)} ground-truth '
                    f'segments for {head.num_queries} queries and the '
                    'class weights differ between their classes, so which '
                    'are matched (and the class-loss normaliser) depends '
                    'on the matching; raise num_queries or use equal '
                    'class weights')
            labels = labels[:head.num_queries]
            total += sum(weight[c] for c in labels) + \
                (head.num_queries - len(labels)) * weight[-1]
        return total

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: List) -> Dict[str, Tensor]:
        """Every task head's Mask2Former losses on its share of the batch.

        Each task's losses are normalised over the task's samples of the
        *global* batch, so that data-parallel training (gradients averaged
        over processes) computes the gradient of one process holding the
        whole global batch. Steps:

        1. :meth:`_assign_samples`: which local samples each task gets;
        2. :meth:`_task_targets`: each present task's Mask2Former targets;
        3. :meth:`_normalisers`: one ``all_reduce`` (the same on every
           process, whatever tasks it holds) of every task's ground-truth
           mask count and class-weight normaliser;
        4. :meth:`_task_losses`: each present task head on its samples,
           its mask and dice losses normalised by the global mask count
           (handed over with :meth:`GLIDMaskHead.given_mask_count`, since
           mmdet's per-head all-reduce would pair different tasks' counts
           across processes, or hang, when processes hold different
           tasks), its class loss rescaled from the local to the global
           normaliser;
        5. a task without samples on this process adds ``0 * sum(params)``
           of its head (``loss_absent_tasks``), so every head is in the
           graph on every process and DDP needs no
           ``find_unused_parameters``.

        Returns:
            dict: ``<task>.<loss key>`` for every task with samples in this
            batch, and ``loss_absent_tasks`` (zero) when some task has none.
        """
        x = self.extract_feat(batch_inputs)
        assigned = self._assign_samples(len(batch_data_samples))
        targets = {
            task: self._task_targets(task,
                                     [batch_data_samples[i] for i in idx])
            for task, idx in assigned.items() if idx
        }
        local, total = self._normalisers(targets, batch_inputs)
        losses = dict()
        for k, task in enumerate(self.tasks):
            if task in targets:
                losses.update(
                    self._task_losses(task, x, assigned[task], targets[task],
                                      local[:, k], total[:, k]))
        absent = [task for task in self.tasks if task not in targets]
        if absent:
            losses['loss_absent_tasks'] = sum(
                p.sum() * 0. for task in absent
                for p in self.task_heads[task].parameters())
        return losses

    def _assign_samples(self, batch_size: int) -> Dict[str, List[int]]:
        """``{task: local sample indices}`` of this training batch."""
        if self.task_assignment == 'all':
            return {t: list(range(batch_size)) for t in self.tasks}
        assigned = {t: [] for t in self.tasks}
        for i, task in enumerate(self.assign_tasks(batch_size)):
            assigned[task].append(i)
        return assigned

    def _normalisers(self, targets: Dict[str, Tuple[list, list]],
                     ref: Tensor) -> Tuple[Tensor, Tensor]:
        """Local and global (summed over processes) normalisers, each
        ``[2, T]`` float64: row 0 the mask count (mmdet's ``avg_factor``:
        positives per image, at least 1 (MaskPseudoSampler's ``num_pos``),
        at most ``num_queries``), row 1 the class-weight sum
        (:meth:`_class_weight_sum`). Zero for a task absent here."""
        counts = ref.new_zeros((2, len(self.tasks)), dtype=torch.float64)
        for k, task in enumerate(self.tasks):
            if task in targets:
                gts = targets[task][0]
                queries = self.task_heads[task].num_queries
                counts[0, k] = float(
                    sum(max(min(len(gt.labels), queries), 1) for gt in gts))
                counts[1, k] = self._class_weight_sum(task, gts)
        local = counts.clone()
        if get_dist_info()[1] > 1:
            dist.all_reduce(counts)
        return local, counts

    def _task_losses(self, task: str, x: GLIDDecoded, index: List[int],
                     targets: Tuple[list, list], local: Tensor,
                     total: Tensor) -> Dict[str, Tensor]:
        """``task``'s head on its samples ``index`` of ``x``, normalised
        over the task's samples of the global batch (``local`` / ``total``:
        its column of :meth:`_normalisers`)."""
        head = self.task_heads[task]
        world = get_dist_info()[1]
        index = torch.as_tensor(index, device=x.query_states.device)
        sub = GLIDDecoded(
            tuple(f.index_select(0, index) for f in x.feats),
            x.query_states.index_select(1, index))
        cls_scores, mask_preds = head(sub)
        per_process = float(total[0]) / world
        with head.given_mask_count(per_process):
            task_losses = head.loss_by_feat(cls_scores, mask_preds, *targets)
        cls_scale = float(local[1]) * world / float(total[1])
        # mmdet clamps the normaliser at 1 per process; one process with the
        # global batch clamps the global count
        mask_scale = 1. / per_process if 0. < per_process < 1. else 1.
        losses = dict()
        for key, value in task_losses.items():
            if key.endswith('loss_cls'):
                value = value * cls_scale
            elif mask_scale != 1.:
                value = value * mask_scale
            losses[f'{task}.{key}'] = value
        return losses

    # ------------------------------------------------------------- predict
    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: List,
                rescale: bool = True) -> List:
        """Every task's prediction for every image (see the class doc)."""
        x = self.extract_feat(batch_inputs)
        for task in self.tasks:
            cls, masks = self.task_heads[task].predict(x, batch_data_samples)
            if task == 'semantic':
                for sample, c, m in zip(batch_data_samples, cls, masks):
                    sample.pred_sem_seg = self.semantic_inference(
                        c, m, sample.metainfo, rescale)
                continue
            results = self.fusion_heads[task].predict(
                cls, masks, batch_data_samples, rescale=rescale)
            self.add_pred_to_datasample(batch_data_samples, results)
        return batch_data_samples

    @staticmethod
    def semantic_inference(mask_cls: Tensor, mask_pred: Tensor, meta: dict,
                           rescale: bool) -> PixelData:
        """Mask2Former semantic inference for one image.

        Args:
            mask_cls (Tensor): ``[M, K + 1]`` class logits.
            mask_pred (Tensor): ``[M, H_pad, W_pad]`` mask logits at the
                (padded) input size.
            meta (dict): ``img_shape`` and, with ``rescale``,
                ``ori_shape``.

        Returns:
            PixelData: ``sem_seg [1, H, W]`` (long class indices).
        """
        h, w = meta['img_shape'][:2]
        mask_pred = mask_pred[:, :h, :w]
        if rescale:
            mask_pred = F.interpolate(
                mask_pred[None],
                size=tuple(meta['ori_shape'][:2]),
                mode='bilinear',
                align_corners=False)[0]
        probs = mask_cls.softmax(-1)[:, :-1]
        seg = torch.einsum('qk,qhw->khw', probs, mask_pred.sigmoid())
        return PixelData(sem_seg=seg.argmax(0, keepdim=True))

    def _forward(self, batch_inputs: Tensor, batch_data_samples=None):
        """Every task head's raw outputs, ``{task: (cls, masks)}``."""
        x = self.extract_feat(batch_inputs)
        return {
            task: head.forward(x, batch_data_samples)
            for task, head in self.task_heads.items()
        }
