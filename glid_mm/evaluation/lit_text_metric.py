"""Per-task metrics for the multi-task LiT decoder (Sec. 4).

Classification, counting, OCR and QA tasks: exact-match accuracy against
the example's reference answer (``gt_texts[0]``: the class name, the
most-voted VQA answer, the text), the paper's metric ("only counting exact
string matches as correct", Sec. 4). For VQA examples that carry annotator
shares (``gt_text_weights``) also the standard VQA accuracy,
``min(#annotators who gave the prediction / 3, 1)``, computed by
mmpretrain's ``VQAAcc`` rule (its answer normalisation, full score at a
share of 0.3 = 3 of 10 annotators). Caption tasks: CIDEr-D and BLEU-4 from
:mod:`glid_mm.evaluation.lit_caption_scores` (offline: ``pycocoevalcap`` is
not installed, so mmpretrain's ``COCOCaption`` cannot run here).
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmpretrain.evaluation import VQAAcc

from glid_mm.evaluation.lit_caption_scores import bleu, cider_d
from glid_mm.registry import METRICS


@METRICS.register_module(scopes=('mmpretrain', ))
class LiTTextMetric(BaseMetric):
    """Exact match per task, VQA accuracy for VQA tasks; CIDEr-D and BLEU-4
    for caption tasks.

    Args:
        caption_tasks (Sequence[str]): Tasks scored with CIDEr-D / BLEU-4
            (by image: examples of one ``img_path`` pool their references).
            Defaults to ``()``.
        strip (bool): Compare after stripping surrounding whitespace.
            Defaults to True.
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): Metric name prefix. Defaults to ``'lit'``.

    Results (percent): ``{task}/accuracy`` (exact match against the
    reference) for every task, ``{task}/vqa_accuracy`` for tasks whose
    examples carry annotator shares, ``{task}/CIDEr`` and
    ``{task}/BLEU-4`` (x100) for caption tasks, and ``mean_accuracy`` (of
    the exact matches) over non-caption tasks.
    """

    default_prefix = 'lit'

    def __init__(self,
                 caption_tasks: Sequence[str] = (),
                 strip: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if isinstance(caption_tasks, str):
            raise TypeError(f'caption_tasks must be a list of task names, '
                            f'got the string {caption_tasks!r}')
        self.caption_tasks = tuple(caption_tasks)
        self.strip = strip

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            for key in ('task', 'pred_text', 'gt_texts'):
                if key not in sample:
                    raise KeyError(
                        f'LiTTextMetric needs {key!r} in the data '
                        'samples (LiTMultiTaskDataset + LiTDecoder)')
            self.results.append(
                dict(
                    task=sample['task'],
                    pred=sample['pred_text'],
                    refs=list(sample['gt_texts']),
                    weights=sample.get('gt_text_weights'),
                    image=sample.get('img_path', len(self.results))))

    def _norm(self, text: str) -> str:
        return text.strip() if self.strip else text

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        by_task = defaultdict(list)
        for r in results:
            by_task[r['task']].append(r)
        metrics, accs = {}, []
        for task, rs in sorted(by_task.items()):
            acc = 100. * sum(
                self._norm(r['pred']) == self._norm(r['refs'][0])
                for r in rs) / len(rs)
            metrics[f'{task}/accuracy'] = acc
            weighted = [r for r in rs if r['weights'] is not None]
            if weighted:
                vqa = VQAAcc()
                vqa.process(None, [
                    dict(
                        pred_answer=r['pred'],
                        gt_answer=r['refs'],
                        gt_answer_weight=r['weights']) for r in weighted
                ])
                metrics[f'{task}/vqa_accuracy'] = vqa.compute_metrics(
                    vqa.results)['acc']
            if task in self.caption_tasks:
                hyps, refs = {}, defaultdict(list)
                for r in rs:
                    hyps.setdefault(r['image'], r['pred'])
                    refs[r['image']] += r['refs']
                keys = list(hyps)
                h = [hyps[k] for k in keys]
                rf = [refs[k] for k in keys]
                metrics[f'{task}/CIDEr'] = 100. * cider_d(h, rf)[0]
                metrics[f'{task}/BLEU-4'] = 100. * bleu(h, rf)[3]
            else:
                accs.append(acc)
        if accs:
            metrics['mean_accuracy'] = sum(accs) / len(accs)
        return metrics
