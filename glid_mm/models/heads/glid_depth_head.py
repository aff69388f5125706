"""GLID's depth head: adaptive bins from the query states (Sec. 3.2)."""
from typing import Dict, List, Optional

import torch
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import Tensor

from glid_mm.models.decoders.glid_decoded import GLIDDecoded, check_query_feat
from glid_mm.models.heads.glid_mask_predictor import top_layer
from glid_mm.registry import MODELS, build_nested


@MODELS.register_module(scopes=('mmseg', ))
class GLIDDepthHead(BaseDecodeHead):
    """Depth by bins from GLID query states (Sec. 3.2, eq. 5-7).

    GLID Sec. 3.2 "Depth estimation", following AdaBins / BinsFormer: ONE
    linear layer ``fc: R^{C_q} -> R^{1 + C_f}`` maps each query state to a
    bin length ``l_i`` (first output) and a bin embedding ``z_i`` (the other
    ``C_f``). Over the ``M`` bins of an image:

    - ``l = softmax(l_1..l_M)`` (lengths normalised to sum 1; BinsFormer's
      ``norm='softmax'``), and the centres are eq. 5,
      ``c_i = d_min + (d_max - d_min) (l_i / 2 + sum_{j<i} l_j)``, strictly
      inside ``(d_min, d_max)`` and increasing in ``i``;
    - ``P^d = softmax_i(<f^b, z_i>)`` per pixel of the neck's 1/4-scale map
      ``f^b`` (eq. 6);
    - ``d = sum_i c_i p_i^d`` (eq. 7), a convex combination of the centres,
      so ``d_min < d < d_max`` by construction; bilinear upsampling to the
      input size keeps that.

    Loss: the SI log loss (Sec. 3.2, "Scale Invariant (SI) regression loss
    [14]") on EVERY decoder block's depth, upsampled to the ground truth's
    size (BinsFormer supervises every decoder layer); keys ``loss_depth``
    (last block) and ``d{i}.loss_depth`` (block ``i``), as the mask heads.
    The default is BinsFormer's ``SigLoss`` (``var(g) + 0.15 mean(g)^2``,
    x10; see :class:`glid_mm.models.losses.SigLoss` for why mmseg's
    ``SiLogLoss`` is not the same formula); ``loss_decode=dict(
    type='SiLogLoss')`` selects mmseg's. Pixels with ground truth 0 (no
    measurement, also the data preprocessor's padding when its
    ``seg_pad_val=0``) are ignored by both.

    Inference uses the last block only; mmseg's ``predict_by_feat``
    upsamples to the (padded) input size and :class:`DepthEstimator` crops
    the padding and resizes to the original image.

    Use it inside :class:`GLIDDepthEstimator`, which owns the decoder (built
    with this head's ``num_queries``) and passes ``x = GLIDDecoded(feats,
    query_states)``.

    Measured size at the paper's widths (``C_q = 512``, ``C_f = 256``):
    ``512 * 257 + 257 = 131,841`` parameters vs 1.3 M in supp. Table 3
    (``test_glid_depth_head.py::test_head_size_of_nyu_config``). One linear
    layer to a length and a 256-d embedding cannot reach 1.3 M; the paper
    does not give the head's shape, we follow its text (one top linear
    layer) and report the difference.

    Args:
        min_depth (float): ``d_min`` of eq. 5, metres, > 0. Defaults to
            1e-3 (BinsFormer's NYU value).
        max_depth (float): ``d_max`` of eq. 5, metres. Defaults to 10.0
            (NYU).
        num_queries (int): Bins / queries ``M``. Defaults to 64 (Sec. 4,
            "64 queries following the practice in BinsFormer").
        in_channels (int): Query width ``C_q`` (decoder ``embed_dims``).
            Defaults to 512.
        feat_channels (int): Channels ``C_f`` of ``f^b`` (the neck width).
            Defaults to 256.
        feat_level (int): Index of ``f^b`` among the neck outputs. Defaults
            to 0 (the 1/4-scale map).
        align_corners (bool): For the bilinear resizes. Defaults to False.
        loss_decode (dict): Loss config, resolved in mmseg's registry,
            called as ``loss(pred [B, 1, H, W], gt [B, 1, H, W])``, with a
            ``loss_name``. Defaults to ``dict(type='SigLoss',
            loss_weight=10.0)`` (BinsFormer).
        mlp_layers (int): 1 = one linear layer giving the bin length and
            the bin embedding (default, the paper's text); ``n > 1`` =
            BinsFormer's separate bin-length and bin-embedding MLPs of
            ``n`` layers of width ``C_q`` (:func:`top_layer`; 1,182,465
            parameters at ``n = 3``, within 10% of Table 3's 1.3 M).
            Defaults to 1.
        init_cfg (dict, optional): Defaults to None (PyTorch's
            ``nn.Linear`` init).

    Shapes:
        x.query_states: ``[L, B, M, C_q]``; ``x.feats[feat_level]``:
        ``[B, C_f, H / 4, W / 4]``.
        forward returns every block's depth ``[L, B, 1, H / 4, W / 4]``.
    """

    num_classes = 1
    out_channels = 1
    input_transform = None

    def __init__(self,
                 min_depth: float = 1e-3,
                 max_depth: float = 10.0,
                 num_queries: int = 64,
                 in_channels: int = 512,
                 feat_channels: int = 256,
                 feat_level: int = 0,
                 align_corners: bool = False,
                 loss_decode: dict = dict(type='SigLoss', loss_weight=10.0),
                 mlp_layers: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        # BaseDecodeHead.__init__ would add an unused conv_seg and its own
        # loss handling: only BaseModule's init runs (as mmseg's
        # VPDDepthHead does).
        super(BaseDecodeHead, self).__init__(init_cfg=init_cfg)
        for name, value in (('num_queries', num_queries),
                            ('in_channels', in_channels), ('feat_channels',
                                                           feat_channels)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name} must be a positive int, got {value!r}')
        if not isinstance(feat_level, int) or feat_level < 0:
            raise ValueError(
                f'feat_level must be an int >= 0, got {feat_level!r}')
        if not 0 < min_depth < max_depth:
            raise ValueError('need 0 < min_depth < max_depth, got '
                             f'min_depth={min_depth}, max_depth={max_depth}')
        if not isinstance(loss_decode, dict) or 'type' not in loss_decode:
            raise TypeError('loss_decode must be a config dict with a '
                            f'"type", got {loss_decode!r}')
        self.min_depth = float(min_depth)
        self.max_depth = float(max_depth)
        self.num_queries = num_queries
        self.in_channels = in_channels
        self.feat_channels = feat_channels
        self.feat_level = feat_level
        self.align_corners = align_corners
        # eq. 5-6: one bin length + one C_f-d bin embedding per query
        self.mlp_layers = mlp_layers
        if mlp_layers == 1:
            self.fc = top_layer(in_channels, 1 + feat_channels)
        else:
            self.bin_length = top_layer(in_channels, 1, mlp_layers)
            self.bin_embed = top_layer(in_channels, feat_channels, mlp_layers)
        self.loss_decode = build_nested(loss_decode, home='mmseg')

    def bin_centers(self, lengths: Tensor) -> Tensor:
        """Eq. 5: bin centres from normalised lengths.

        Args:
            lengths (Tensor): ``[..., M]``, non-negative, summing to 1.

        Returns:
            Tensor: ``[..., M]`` centres in ``[d_min, d_max]``.
        """
        before = lengths.cumsum(-1) - lengths  # sum_{j<i} l_j
        return self.min_depth + (self.max_depth - self.min_depth) * (
            lengths / 2 + before)

    def forward_bins(self, query_states: Tensor,
                     feat: Tensor) -> Dict[str, Tensor]:
        """Eq. 5-7 for query states of any leading shape.

        Args:
            query_states (Tensor): ``[..., B, M, C_q]``.
            feat (Tensor): ``f^b``, ``[B, C_f, h, w]``.

        Returns:
            dict: ``centers [..., B, M]``, ``probs [..., B, M, h, w]``
            (softmax over ``M``) and ``depth [..., B, 1, h, w]``.
        """
        check_query_feat(query_states, feat, self.num_queries,
                         self.in_channels, self.feat_channels, 'num_queries')
        if self.mlp_layers == 1:
            out = self.fc(query_states)
            length_logits, embed = out[..., 0], out[..., 1:]
        else:
            length_logits = self.bin_length(query_states)[..., 0]
            embed = self.bin_embed(query_states)
        lengths = length_logits.softmax(dim=-1)
        centers = self.bin_centers(lengths)
        logits = torch.einsum('...bmc,bchw->...bmhw', embed, feat)
        probs = logits.softmax(dim=-3)
        depth = torch.einsum('...bm,...bmhw->...bhw', centers, probs)
        return dict(centers=centers, probs=probs, depth=depth.unsqueeze(-3))

    def _split(self, x: GLIDDecoded):
        if not isinstance(x, GLIDDecoded):
            raise TypeError('GLIDDepthHead takes GLIDDecoded(feats, '
                            'query_states) from GLIDDepthEstimator, got '
                            f'{type(x).__name__}')
        if len(x.feats) <= self.feat_level:
            raise ValueError(f'feat_level={self.feat_level} but the neck '
                             f'gave {len(x.feats)} levels')
        return x.query_states, x.feats[self.feat_level]

    def forward(self, x: GLIDDecoded) -> Tensor:
        """Every decoder block's depth, ``[L, B, 1, H / 4, W / 4]``."""
        query_states, feat = self._split(x)
        return self.forward_bins(query_states, feat)['depth']

    def predict(self, inputs: GLIDDecoded, batch_img_metas: List[dict],
                test_cfg: dict) -> Tensor:
        """Last block's depth at the (padded) input size, ``[B, 1, H, W]``."""
        query_states, feat = self._split(inputs)
        depth = self.forward_bins(query_states[-1], feat)['depth']
        return self.predict_by_feat(depth, batch_img_metas)

    def loss_by_feat(self, depths: Tensor,
                     batch_data_samples: List) -> Dict[str, Tensor]:
        """SI loss of every block's depth against ``gt_depth_map``.

        Args:
            depths (Tensor): ``[L, B, 1, h, w]`` from :meth:`forward`.
            batch_data_samples (list[SegDataSample]): With ``gt_depth_map``
                ``[1, H, W]`` (metres, 0 = invalid), all of one size (the
                data preprocessor pads them).
        """
        gt = torch.stack([s.gt_depth_map.data
                          for s in batch_data_samples]).to(depths)
        name = self.loss_decode.loss_name
        losses = dict()
        num_layers = depths.shape[0]
        for i, depth in enumerate(depths):
            depth = resize(
                depth,
                size=gt.shape[-2:],
                mode='bilinear',
                align_corners=self.align_corners)
            key = name if i == num_layers - 1 else f'd{i}.{name}'
            losses[key] = self.loss_decode(depth, gt)
        return losses
