"""A GLID pre-training encoder (window 6 at 192 px) loads into the
fine-tuning encoder (window 7): mmpretrain resizes the relative position
tables in its load hook, which needs scipy < 1.14 (requirements/runtime.txt).
"""
import torch

import glid_mm  # noqa: F401
from glid_mm.registry import build_model


def _swin(window):
    return dict(
        type='mmpretrain.SwinTransformer',
        arch=dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 4, 8]),
        stage_cfgs=dict(block_cfgs=dict(window_size=window)),
        out_indices=(0, 1, 2, 3),
        pad_small_map=True)


def test_window6_checkpoint_loads_into_window7_model():
    torch.manual_seed(0)
    pre = build_model(dict(_swin(6), type='GLIDSwinTransformer'))
    fine = build_model(_swin(7))
    key = 'stages.0.blocks.0.attn.w_msa.relative_position_bias_table'
    state = {
        k: v
        for k, v in pre.state_dict().items() if 'mask_token' not in k
    }
    assert state[key].shape == ((2 * 6 - 1)**2, 1)
    with torch.no_grad():
        state[key].copy_(torch.linspace(-1, 1, state[key].numel())[:, None])
    result = fine.load_state_dict(state, strict=False)
    # the hook drops the old window's index buffers; the model keeps its own
    assert all(
        k.endswith('relative_position_index') for k in result.missing_keys)
    assert not result.unexpected_keys
    table = fine.state_dict()[key]
    assert table.shape == ((2 * 7 - 1)**2, 1)
    # an interpolation of the ramp, not a fresh init
    assert table.min() >= -1.01 and table.max() <= 1.01
    assert table.std() > 0.3
    x = torch.randn(1, 3, 64, 64)
    assert [f.shape[1] for f in fine(x)] == [32, 64, 128, 256]
