import pytest
import torch

from glid_mm.models.decoders.m3i_decoder import M3IDecoder
from glid_mm.models.layers.m3i_geometry import grid_coords


def _decoder(**kwargs):
    cfg = dict(
        in_channels=12,
        embed_dims=16,
        num_layers=2,
        num_heads=2,
        out_channels=10)
    cfg.update(kwargs)
    dec = M3IDecoder(**cfg)
    dec.init_weights()
    return dec


def test_shapes_and_query_positions_matter():
    torch.manual_seed(0)
    dec = _decoder().eval()
    grid = grid_coords(3)  # 9 positions
    tokens = torch.randn(2, 5, 12)
    token_coords = grid[:5].expand(2, -1, -1)
    query_coords = grid[5:].expand(2, -1, -1)
    scales = torch.ones(2, 2)
    cls = torch.randn(2, 1, 12)
    out = dec(tokens, token_coords, query_coords, scales, cls)
    assert out.shape == (2, 4, 10)
    # queries differ only by position: predictions differ
    assert not torch.allclose(out[:, 0], out[:, 1])
    # moving the queries or changing their scale changes the predictions
    moved = dec(tokens, token_coords, query_coords + 0.5, scales, cls)
    rescaled = dec(tokens, token_coords, query_coords, scales * 2, cls)
    assert not torch.allclose(out, moved)
    assert not torch.allclose(out, rescaled)
    # the visible tokens' positions matter too, and so does the cls token
    assert not torch.allclose(
        out, dec(tokens, token_coords.flip(1), query_coords, scales, cls))
    assert dec(tokens, token_coords, query_coords, scales).shape == (2, 4, 10)


def test_every_parameter_gets_a_gradient():
    dec = _decoder()
    grid = grid_coords(2)
    out = dec(
        torch.randn(2, 2, 12), grid[:2].expand(2, -1, -1),
        grid[2:].expand(2, -1, -1), torch.ones(2, 2), torch.randn(2, 1, 12))
    out.sum().backward()
    for name, p in dec.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_out_channels_default_and_init():
    dec = _decoder(out_channels=None)
    assert dec.pred.out_features == 12
    assert 0 < dec.mask_token.std() < 0.1


@pytest.mark.parametrize('kwargs,match', [
    (dict(embed_dims=18), 'multiple of 4'),
    (dict(embed_dims=20, num_heads=3), 'divisible by num_heads'),
    (dict(num_layers=0), 'num_layers'),
    (dict(in_channels=-1), 'in_channels'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M3IDecoder(**kwargs)


def test_bad_tokens():
    dec = _decoder()
    grid = grid_coords(2)
    with pytest.raises(ValueError, match=r'tokens must be \[B, V, 12\]'):
        dec(
            torch.randn(2, 2, 8), grid[:2][None], grid[2:][None],
            torch.ones(2, 2))
