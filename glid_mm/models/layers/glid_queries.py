"""GLID's decoder queries: one parameter set for pre-training and fine-tuning.

Pre-training (GLID Sec. 3.1): ``Q = [CLS, M_1, ..., M_N]``, one mask token
per masked patch plus that patch's positional embedding. Fine-tuning
(Sec. 3.2, eq. 3): ``q_i = [CLS] + e_i`` for ``M`` task queries with
zero-initialised learnable ``e_i``, so every fine-tuning query equals the
pre-trained ``[CLS]`` at step 0.

Parameter names are the same in both modes (``cls_token``, ``mask_token``,
``query_embed``): a pre-training checkpoint's ``cls_token`` loads into every
fine-tuning model; ``mask_token`` exists only with ``with_mask_token=True``
(pre-training) and ``query_embed`` only with ``num_queries > 0``.
"""
import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.model.weight_init import trunc_normal_
from torch import Tensor

from glid_mm.registry import MODELS


@MODELS.register_module()
class GLIDQueries(BaseModule):
    """Learnable ``[CLS]`` token, mask token and task embeddings of GLID.

    Args:
        embed_dims (int): Query width ``C`` (the decoder width, 512 in the
            paper, Sec. 4 "Pre-training").
        num_queries (int): Number ``M`` of fine-tuning queries (eq. 3); 0 for
            a pre-training model. Defaults to 0.
        with_mask_token (bool): Whether to hold the pre-training mask token
            ``[M]``. Defaults to False.
        init_std (float): Std of the truncated-normal init of ``cls_token``
            and ``mask_token`` (as BERT / MAE tokens). Defaults to 0.02.
        init_cfg (dict, optional): Initialisation config. Defaults to None.

    Parameters:
        cls_token: ``[1, C]``.
        mask_token: ``[1, C]`` (only with ``with_mask_token``).
        query_embed: ``[M, C]``, zeros at init (only with ``num_queries``).
    """

    def __init__(self,
                 embed_dims: int,
                 num_queries: int = 0,
                 with_mask_token: bool = False,
                 init_std: float = 0.02,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if embed_dims <= 0:
            raise ValueError(f'embed_dims must be positive, got {embed_dims}')
        if num_queries < 0:
            raise ValueError(f'num_queries must be >= 0, got {num_queries}')
        if num_queries == 0 and not with_mask_token:
            raise ValueError('GLIDQueries needs num_queries > 0 (fine-tuning) '
                             'or with_mask_token=True (pre-training)')
        self.embed_dims = embed_dims
        self.num_queries = num_queries
        self.with_mask_token = with_mask_token
        self.init_std = init_std
        self.cls_token = nn.Parameter(torch.zeros(1, embed_dims))
        if with_mask_token:
            self.mask_token = nn.Parameter(torch.zeros(1, embed_dims))
        if num_queries > 0:
            # e_i of eq. 3, zero-initialised "to be compatible with the
            # pre-trained weights"
            self.query_embed = nn.Parameter(
                torch.zeros(num_queries, embed_dims))
        self._reset_parameters()

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            self._reset_parameters()

    def _reset_parameters(self) -> None:
        trunc_normal_(self.cls_token, std=self.init_std)
        if self.with_mask_token:
            trunc_normal_(self.mask_token, std=self.init_std)
        if self.num_queries > 0:
            nn.init.zeros_(self.query_embed)

    def finetune_queries(self, batch_size: int) -> Tensor:
        """Fine-tuning queries ``q_i = [CLS] + e_i`` (eq. 3).

        Returns:
            Tensor: ``[B, M, C]``.
        """
        if self.num_queries == 0:
            raise RuntimeError('this GLIDQueries has num_queries=0 (a '
                               'pre-training model); pass queries explicitly')
        q = self.cls_token + self.query_embed
        return q.unsqueeze(0).expand(batch_size, -1, -1)

    def pretrain_queries(self, pos_embed: Tensor) -> Tensor:
        """Pre-training queries ``[CLS, M_1 .. M_N]`` (Sec. 3.1).

        Args:
            pos_embed (Tensor): Positional embeddings of the masked patches,
                ``[B, N, C]``.

        Returns:
            Tensor: ``[B, 1 + N, C]``; index 0 is ``[CLS]``.
        """
        if not self.with_mask_token:
            raise RuntimeError('this GLIDQueries has no mask token (a '
                               'fine-tuning model); build it with '
                               'with_mask_token=True for pre-training')
        if pos_embed.dim() != 3 or pos_embed.shape[-1] != self.embed_dims:
            raise ValueError(f'pos_embed must be [B, N, {self.embed_dims}], '
                             f'got {tuple(pos_embed.shape)}')
        B = pos_embed.shape[0]
        masks = self.mask_token.unsqueeze(0) + pos_embed
        cls = self.cls_token.unsqueeze(0).expand(B, -1, -1)
        return torch.cat([cls, masks], dim=1)
