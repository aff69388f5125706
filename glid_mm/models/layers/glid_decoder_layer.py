"""One block of the GLID decoder: cross-attention, self-attention, FFN.

mmdet's :class:`Mask2FormerTransformerDecoderLayer` already has GLID's order
(cross-attention to one feature level, then self-attention among queries,
then FFN, each followed by LayerNorm; GLID Sec. 3.1 "Architecture"). This
subclass adds the option to return the cross-attention weights (for the
query attention pictures of Fig. 4), computed by the same
``nn.MultiheadAttention`` in the same call, so the output is identical with or
without them, and skips the weights when they are not wanted.
"""
from typing import Optional, Tuple

from mmdet.models.layers.transformer.mask2former_layers import \
    Mask2FormerTransformerDecoderLayer
from torch import Tensor


class GLIDDecoderLayer(Mask2FormerTransformerDecoderLayer):
    """Mask2Former decoder layer that can also return cross-attention maps.

    The same parameters and order as mmdet's layer; both attentions are
    called with ``need_weights=False`` unless the maps are asked for, so
    torch takes its fused scaled-dot-product path instead of materialising
    and head-averaging the ``[B, heads, Q, K]`` weights that mmcv's
    ``MultiheadAttention`` wrapper requests and then drops.

    Args: see :class:`mmdet.models.layers.DetrTransformerDecoderLayer`
    (``self_attn_cfg``, ``cross_attn_cfg``, ``ffn_cfg``, ``norm_cfg``); all
    attentions must be ``batch_first``. Drop path goes through each
    sub-layer's ``dropout_layer=dict(type='DropPath', drop_prob=p)``.
    """

    @staticmethod
    def _attend(mha, query: Tensor, key: Tensor, value: Tensor,
                query_pos: Optional[Tensor], key_pos: Optional[Tensor],
                attn_mask: Optional[Tensor],
                key_padding_mask: Optional[Tensor],
                need_weights: bool) -> Tuple[Tensor, Optional[Tensor]]:
        """``mmcv.cnn.bricks.transformer.MultiheadAttention.forward`` (batch
        first, residual from ``query``) with ``need_weights`` chosen;
        returns ``(out [B, Q, C], attn [B, Q, K] averaged over heads or
        None)``."""
        identity = query
        q = query if query_pos is None else query + query_pos
        k = key if key_pos is None else key + key_pos
        out, weights = mha.attn(
            query=q.transpose(0, 1),
            key=k.transpose(0, 1),
            value=value.transpose(0, 1),
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=need_weights,
            average_attn_weights=True)
        out = out.transpose(0, 1)
        return identity + mha.dropout_layer(mha.proj_drop(out)), weights

    def forward(self,
                query: Tensor,
                key: Tensor = None,
                value: Tensor = None,
                query_pos: Tensor = None,
                key_pos: Tensor = None,
                self_attn_mask: Tensor = None,
                cross_attn_mask: Tensor = None,
                key_padding_mask: Tensor = None,
                return_attn: bool = False,
                **kwargs):
        """
        Args:
            query (Tensor): ``[B, Q, C]``.
            key, value (Tensor): memory of one level, ``[B, K, C]``.
            query_pos (Tensor, optional): ``[B, Q, C]``, added to queries in
                both attentions (None in GLID: the positions are already in
                the pre-training queries).
            key_pos (Tensor, optional): ``[B, K, C]``.
            self_attn_mask (Tensor, optional): ``[Q, Q]`` bool, True = not
                allowed.
            cross_attn_mask (Tensor, optional): ``[B * heads, Q, K]`` or
                ``[Q, K]`` bool, True = not allowed.
            key_padding_mask (Tensor, optional): ``[B, K]`` bool.
            return_attn (bool): Also return the cross-attention weights.

        Returns:
            Tensor ``[B, Q, C]``, or ``(Tensor, attn [B, Q, K])`` with
            ``return_attn``.
        """
        if kwargs:
            raise TypeError('GLIDDecoderLayer.forward got unexpected '
                            f'arguments {sorted(kwargs)}')
        query, weights = self._attend(self.cross_attn, query, key, value,
                                      query_pos, key_pos, cross_attn_mask,
                                      key_padding_mask, return_attn)
        query = self.norms[0](query)
        query, _ = self._attend(self.self_attn, query, query, query, query_pos,
                                query_pos, self_attn_mask, None, False)
        query = self.norms[1](query)
        query = self.ffn(query)
        query = self.norms[2](query)
        return (query, weights) if return_attn else query
