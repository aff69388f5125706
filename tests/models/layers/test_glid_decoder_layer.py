"""GLID decoder layer: attention maps do not change the output."""
import torch

from glid_mm.models.layers import GLIDDecoderLayer


def _layer():
    attn = dict(embed_dims=16, num_heads=2, batch_first=True)
    return GLIDDecoderLayer(
        self_attn_cfg=dict(attn),
        cross_attn_cfg=dict(attn),
        ffn_cfg=dict(embed_dims=16, feedforward_channels=32)).eval()


def test_attention_maps_are_a_distribution_and_output_is_unchanged():
    layer = _layer()
    q, mem, pos = torch.randn(2, 3,
                              16), torch.randn(2, 10,
                                               16), torch.randn(2, 10, 16)
    plain = layer(q, key=mem, value=mem, key_pos=pos)
    out, w = layer(q, key=mem, value=mem, key_pos=pos, return_attn=True)
    assert torch.allclose(plain, out, atol=1e-6)
    assert w.shape == (2, 3, 10)
    assert torch.allclose(w.sum(-1), torch.ones(2, 3), atol=1e-5)


def test_cross_attn_mask_is_respected():
    layer = _layer()
    q, mem = torch.randn(1, 2, 16), torch.randn(1, 6, 16)
    mask = torch.zeros(2, 2, 6, dtype=torch.bool)  # [B * heads, Q, K]
    mask[:, :, 3:] = True
    _, w = layer(q, key=mem, value=mem, cross_attn_mask=mask, return_attn=True)
    assert torch.all(w[..., 3:] == 0)
