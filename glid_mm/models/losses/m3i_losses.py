"""Loss functions of M3I's target groups (Sec. 3.1-3.4, eq. 3-4)."""
import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce, get_world_size
from torch import Tensor


def dense_feature_loss(pred: Tensor,
                       target: Tensor,
                       neg_weight: float = 0.) -> Tensor:
    """Gaussian (L2) prediction term for dense feature targets.

    Eq. (3) with a Gaussian ``P_hat`` is an L2 loss. As in Siamese Image
    Modeling the target features are layer-normalised without affine
    parameters (done by the caller) and the loss is SiameseIM's
    ``compute_unigrad_loss``: ``(pos + neg_weight * neg) / C`` with
    ``pos = mean ||pred - target||^2`` and, when ``neg_weight > 0``, the
    UniGrad negative term ``neg = mean(pred^T Cov(target) pred)`` whose
    ``C x C`` target correlation is averaged over all processes (SiameseIM
    uses ``neg_weight = 0.02``).

    Args:
        pred (Tensor): ``[B, Q, C]`` predictions.
        target (Tensor): ``[B, Q, C]`` targets (no gradient).
        neg_weight (float): Weight of the negative term. Defaults to 0.

    Returns:
        Tensor: scalar loss.
    """
    if pred.shape != target.shape:
        raise ValueError(f'dense_feature_loss: pred {tuple(pred.shape)} and '
                         f'target {tuple(target.shape)} differ')
    channels = pred.size(-1)
    pred = pred.float().reshape(-1, channels)
    target = target.detach().float().reshape(-1, channels)
    loss = ((pred - target)**2).sum(-1).mean()
    if neg_weight:
        corr = target.T @ target / target.size(0)
        if get_world_size() > 1:
            all_reduce(corr, op='mean')
        loss = loss + neg_weight * ((pred @ corr) * pred).sum(-1).mean()
    return loss / channels


def contrastive_loss(image_emb: Tensor, text_emb: Tensor,
                     logit_scale: Tensor) -> Tensor:
    """Symmetric InfoNCE (Boltzmann ``P_hat`` of eq. 3, as CLIP).

    Args:
        image_emb (Tensor): ``[B, D]`` image embeddings.
        text_emb (Tensor): ``[B, D]`` text embeddings of the same images.
        logit_scale (Tensor): scalar log inverse temperature.

    Returns:
        Tensor: scalar loss (negatives are the other texts of the batch).
    """
    if image_emb.shape != text_emb.shape:
        raise ValueError(f'contrastive_loss: image {tuple(image_emb.shape)} '
                         f'and text {tuple(text_emb.shape)} embeddings differ')
    image_emb = F.normalize(image_emb.float(), dim=-1)
    text_emb = F.normalize(text_emb.float(), dim=-1)
    logits = logit_scale.exp().clamp(max=100.) * image_emb @ text_emb.T
    labels = torch.arange(logits.size(0), device=logits.device)
    return (F.cross_entropy(logits, labels) +
            F.cross_entropy(logits.T, labels)) / 2
