"""Head outputs that encode the ground truth, for tests of the inference
path and the metrics (a plain module: test modules import it by path)."""
import torch
import torch.nn.functional as F


def ground_truth_outputs(head, task, samples, batch_shape, shuffle=False):
    """``(cls [B, M, K + 1], masks [B, M, H, W])`` as a GLIDMaskHead's
    ``predict`` returns them, encoding ``task``'s ground truth: one query
    per segment (class logit 20 at its label, mask logits +-20), the rest
    "no object"; masks at the padded input size, resized like the image.
    ``shuffle`` shifts every class (right masks, wrong classes: what a
    broken model gives). ``task``: ``'instance'`` (thing instances),
    ``'semantic'`` (one segment per class of ``gt_sem_seg``) or
    ``'panoptic'`` (things + stuff classes from ``gt_sem_seg``)."""
    K, M = head.num_classes, head.num_queries
    cls = torch.full((len(samples), M, K + 1), -20.)
    cls[..., K] = 20.
    masks = torch.full((len(samples), M) + tuple(batch_shape), -20.)
    for b, sample in enumerate(samples):
        segments = []
        if task in ('instance', 'panoptic'):
            things = sample.gt_instances
            bitmaps = things.masks.to_ndarray()  # bitmap or polygon masks
            segments += [(int(label), torch.as_tensor(mask).bool())
                         for label, mask in zip(things.labels, bitmaps)]
        if task != 'instance':
            sem = sample.gt_sem_seg.sem_seg[0]
            first = head.num_things_classes if task == 'panoptic' else 0
            for label in sem.unique().tolist():
                if first <= label < K:
                    segments.append((label, sem == label))
        labels = [label for label, _ in segments]
        if shuffle:
            labels = [(label + 7) % K for label in labels]
        h, w = sample.img_shape
        for q, ((_, mask), label) in enumerate(zip(segments, labels)):
            cls[b, q, label], cls[b, q, K] = 20., -20.
            small = F.interpolate(
                mask[None, None].float(), (h, w), mode='nearest')[0, 0] > 0.5
            masks[b, q, :h, :w] = torch.where(small, 20., -20.)
    return cls, masks
