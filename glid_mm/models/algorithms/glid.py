"""GLID pre-training: masked image modelling posed as query-to-answer."""
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model.weight_init import trunc_normal_
from mmpretrain.models.selfsup.base import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import Tensor

from glid_mm.models.heads.glid_pretrain_head import patchify, unpatchify
from glid_mm.registry import MODELS, build_nested


@MODELS.register_module(scopes=('mmpretrain', ))
class GLID(BaseSelfSupervisor):
    """GLID: generalist encoder-decoder pre-training (Sec. 3.1, Fig. 3).

    ``P = H(Dec(Q, Enc(x)))`` (eq. 1) with ``Q = [CLS, M_1 .. M_N]``: the
    Swin encoder processes only the visible tokens (Sec. 3.1, "following
    MAE"; ``GLIDSwinTransformer(mask_mode='visible')``, or the SimMIM-style
    mask-token encoder as an ablation), the BiFPN neck fuses its four
    stages, the query decoder decodes one mask query per masked
    patch (mask token + that patch's sine position) plus ``[CLS]`` at index
    0, and the linear head maps each mask query's state to its patch's
    pixels, scored by the MSE of eq. 2. ``[CLS]`` is dropped before the head
    (out of the loss) but the mask queries attend to it, so it receives
    gradient (Sec. 3.1). Only the last decoder block is supervised.

    Masked positions in the pyramid (visible-token encoder): the encoder
    returns its four maps with zeros where units are masked; before the
    Bi-FPN each level's masked positions get a learnable embedding
    ``pyramid_mask_tokens[i]`` (``[1, C_i, 1, 1]``, trunc-normal 0.02). Why:
    the Bi-FPN's convolutions and the decoder's cross-attention need a value
    at every position of the full 1/4..1/32 grid, and the paper gives none;
    a learned token is what MAE's decoder puts at masked positions, it
    carries no pixel of a masked patch (tested), lets the model tell
    "masked" from "dark", and costs ``sum(C_i)`` parameters that are
    dropped for fine-tuning, where nothing is masked. The queries still
    carry each masked patch's position, so where to reconstruct comes from
    the query, not from the filled map.

    State-dict layout (used by the pre-train -> fine-tune conversion):
    ``backbone.*`` (encoder; ``backbone.mask_token`` in mask-token mode
    only), ``pyramid_mask_tokens.*`` (visible-token mode only),
    ``neck.*`` (BiFPN), ``decoder.*`` with ``decoder.queries.*``
    (``cls_token``; ``mask_token`` pre-training only), ``head.*``
    (pre-training head, dropped when fine-tuning).

    Args:
        backbone (dict): Encoder, e.g. :class:`GLIDSwinTransformer` with
            ``out_indices=(0, 1, 2, 3)``.
        neck (dict): :class:`BiFPN`.
        decoder (dict): :class:`GLIDDecoder` with ``with_mask_token=True``.
        head (dict): :class:`GLIDPretrainHead`; its ``patch_size`` is the
            mask patch size of the data pipeline's ``GLIDMaskGenerator``.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialisation config.

    Shapes:
        inputs: ``[B, 3, H, W]``; ``data_samples[i].mask``: ``[H/p, W/p]``,
        1 = masked, the same count ``N`` in every image.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 decoder: dict,
                 head: dict,
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not isinstance(decoder, nn.Module):
            decoder = build_nested(decoder, home='mmpretrain')
        self.decoder = decoder
        if not getattr(self.decoder.queries, 'with_mask_token', False):
            raise ValueError('GLID pre-training needs decoder.with_mask_token'
                             '=True (the [M] queries of Sec. 3.1)')
        in_ch = self.head.predictor.in_features
        if in_ch != self.decoder.embed_dims:
            raise ValueError(f'head.in_channels={in_ch} must equal '
                             f'decoder.embed_dims={self.decoder.embed_dims}')
        stride = self.backbone.patch_embed.projection.stride[0]
        if self.head.patch_size % stride:
            raise ValueError(f'head.patch_size={self.head.patch_size} must '
                             f'be a multiple of the encoder patch {stride}')
        self.visible_only = (
            getattr(self.backbone, 'mask_mode', 'mask_token') == 'visible')
        if self.visible_only:
            total = self.backbone.total_stride
            if self.head.patch_size % total:
                raise ValueError(
                    f'head.patch_size={self.head.patch_size} (the mask unit) '
                    'must be a multiple of the encoder\'s total stride '
                    f'{total} px for visible-token encoding; use a '
                    f"{total} px mask unit or backbone.mask_mode='mask_token'")
            # learnable stand-ins for the masked positions of each encoder
            # level, as MAE's decoder fills masked positions with its mask
            # token (see the class docstring)
            self.pyramid_mask_tokens = nn.ParameterList([
                nn.Parameter(
                    torch.zeros(1, self.backbone.num_features[i], 1, 1))
                for i in self.backbone.out_indices
            ])

    def init_weights(self) -> None:
        super().init_weights()
        if self.visible_only:
            for token in self.pyramid_mask_tokens:
                trunc_normal_(token, std=.02)

    def fill_masked(self, feats: Tuple[Tensor, ...],
                    mask: Tensor) -> Tuple[Tensor, ...]:
        """Put each level's mask embedding at the masked positions.

        Args:
            feats: the visible-token encoder's maps ``[B, C_i, H_i, W_i]``,
                zero at masked positions.
            mask: ``[B, U_h, U_w]`` unit mask, True = masked.
        """
        if len(feats) != len(self.pyramid_mask_tokens):
            raise ValueError(f'{len(feats)} encoder levels but '
                             f'{len(self.pyramid_mask_tokens)} mask '
                             'embeddings (backbone.out_indices)')
        out = []
        for feat, token in zip(feats, self.pyramid_mask_tokens):
            s = feat.shape[-1] // mask.shape[-1]
            m = mask.repeat_interleave(s, 1).repeat_interleave(s, 2)
            out.append(torch.where(m[:, None], token.to(feat.dtype), feat))
        return tuple(out)

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Unmasked encoder + BiFPN features, fine to coarse."""
        return self.neck(self.backbone(inputs))

    def mask_queries(self, mask: Tensor) -> Tuple[Tensor, Tensor]:
        """Queries ``[B, 1 + N, C]`` and masked-patch indices ``[B, N]``.

        Args:
            mask (Tensor): ``[B, h, w]`` patch mask, True = masked.
        """
        B, h, w = mask.shape
        flat = mask.flatten(1).bool()
        counts = flat.sum(1)
        if (counts != counts[0]).any() or counts[0] == 0:
            raise ValueError('every image of a batch needs the same, '
                             'non-zero number of masked patches (one query '
                             f'each), got {counts.tolist()}')
        idx = flat.nonzero()[:, 1].view(B, int(counts[0]))
        pos = self.decoder.grid_pos_embed(h, w, device=mask.device)
        queries = self.decoder.queries.pretrain_queries(pos[idx])
        return queries, idx

    def _encode_decode(self,
                       inputs: Tensor,
                       mask: Tensor,
                       return_attn: bool = False):
        B, _, H, W = inputs.shape
        p = self.head.patch_size
        if mask.shape != (B, H // p, W // p) or H % p or W % p:
            raise ValueError(f'mask must be [B, H/{p}, W/{p}] = '
                             f'{[B, H // p, W // p]} for inputs '
                             f'{list(inputs.shape)}, got {list(mask.shape)}')
        feats = self.backbone(inputs, mask)
        if self.visible_only:
            feats = self.fill_masked(feats, mask)
        feats = self.neck(feats)
        queries, idx = self.mask_queries(mask)
        out = self.decoder(feats, queries, return_attn=return_attn)
        pred = self.head(out['query_states'][-1][:, 1:])  # [CLS] left out
        return pred, idx, out

    def loss(self, inputs: Tensor, data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Eq. 2 on the masked patches."""
        mask = torch.stack([ds.mask for ds in data_samples]).bool()
        pred, idx, _ = self._encode_decode(inputs, mask)
        return dict(loss=self.head.loss(pred, inputs, idx))

    @torch.no_grad()
    def reconstruct(self,
                    inputs: Tensor,
                    mask: Tensor,
                    return_attn: bool = False) -> Dict[str, Tensor]:
        """Reconstruction for pictures, in the normalised input space.

        Returns:
            dict: ``pred`` ``[B, 3, H, W]`` (input pixels on visible patches,
            predictions on masked ones; with ``norm_pix`` each predicted patch
            is mapped back with the input patch's own mean / std),
            ``pixel_mask`` ``[B, 1, H, W]`` (1 = masked) and, with
            ``return_attn``, the decoder's ``attn_maps``.
        """
        mask = mask.bool()
        pred, idx, out = self._encode_decode(inputs, mask, return_attn)
        p = self.head.patch_size
        patches = patchify(inputs, p)
        if self.head.norm_pix:
            target = torch.gather(
                patches, 1, idx[..., None].expand(-1, -1, patches.shape[-1]))
            mean = target.mean(-1, keepdim=True)
            std = (target.var(-1, keepdim=True) + 1e-6)**.5
            pred = pred * std + mean
        patches = patches.scatter(
            1, idx[..., None].expand(-1, -1, patches.shape[-1]), pred)
        hw = mask.shape[1:]
        result = dict(
            pred=unpatchify(patches, p, hw, inputs.shape[1]),
            pixel_mask=mask[:, None].float().repeat_interleave(
                p, 2).repeat_interleave(p, 3))
        if return_attn:
            result['attn_maps'] = out['attn_maps']
        return result
