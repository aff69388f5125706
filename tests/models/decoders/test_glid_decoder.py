"""GLIDDecoder: round robin, shapes, queries, drop path, init, errors."""
import math

import pytest
import torch

from glid_mm.models.decoders import GLIDDecoder

IN, C = 16, 32


def _feats(batch=2, size=32):
    return [
        torch.randn(batch, IN, size // 2**i, size // 2**i) for i in range(4)
    ]


def _decoder(**kwargs):
    cfg = dict(
        in_channels=IN,
        embed_dims=C,
        num_layers=6,
        num_heads=4,
        feedforward_channels=64,
        num_queries=5)
    cfg.update(kwargs)
    dec = GLIDDecoder(**cfg)
    dec.init_weights()
    return dec


def test_round_robin_coarse_to_fine_and_shapes():
    dec = _decoder().eval()
    out = dec(_feats(), return_attn=True)
    assert out['query_states'].shape == (6, 2, 5, C)
    assert out['attn_levels'] == [3, 2, 1, 3, 2, 1]
    sizes = [m.shape[-2:] for m in out['attn_maps']]
    assert sizes == [(4, 4), (8, 8), (16, 16)] * 2
    assert all(m.shape[:2] == (2, 5) for m in out['attn_maps'])
    plain = dec(_feats())
    assert 'attn_maps' not in plain


def test_fine_tuning_queries_start_identical():
    """eq. 3 at step 0: every query is [CLS], hence every state is equal."""
    dec = _decoder().eval()
    states = dec(_feats())['query_states']
    assert torch.allclose(
        states, states[:, :, :1].expand_as(states), atol=1e-5)


def test_explicit_queries_and_every_parameter_gets_gradient():
    dec = _decoder(num_queries=0, with_mask_token=True, num_layers=3)
    pos = torch.randn(2, 7, C)
    q = dec.queries.pretrain_queries(pos)
    out = dec(_feats(), q)['query_states']
    assert out.shape == (3, 2, 8, C)
    out[-1, :, 1:].square().mean().backward()  # [CLS] out of the loss
    dead = [
        n for n, p in dec.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert dead == []


def test_grid_pos_embed_matches_memory_positions():
    dec = _decoder()
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mem_pos = dec.positional_encoding(mask).flatten(2).transpose(1, 2)[0]
    assert torch.allclose(dec.grid_pos_embed(4, 4), mem_pos)
    # cell centres: a 2x2 grid's first cell sits at 1/4 of the image
    y = dec.grid_pos_embed(2, 2)[0, 0]
    assert torch.isclose(y, torch.sin(torch.tensor(0.25 * 2 * math.pi)))


def test_drop_path_schedule_and_stochasticity():
    dec = _decoder(drop_path_rate=0.2)
    probs = [layer.ffn.dropout_layer.drop_prob for layer in dec.layers]
    assert probs[0] == 0 and math.isclose(probs[-1], 0.2, rel_tol=1e-6)
    assert probs == sorted(probs)
    feats = _feats()
    torch.manual_seed(0)
    a = dec.train()(feats)['query_states']
    b = dec(feats)['query_states']
    assert not torch.allclose(a, b)
    dec.eval()
    assert torch.equal(dec(feats)['query_states'], dec(feats)['query_states'])


def test_xavier_uniform_init_of_blocks():
    dec = _decoder()
    w = dec.layers[0].ffn.layers[1].weight  # Linear(64 -> 32)
    bound = math.sqrt(6 / (64 + 32))
    assert w.abs().max() <= bound
    assert w.abs().max() > 0.5 * bound  # not a trunc-normal(0.02)


def test_cross_attn_mask_fn():
    dec = _decoder(num_layers=3).eval()
    calls = []

    def fn(i, queries, shape):
        calls.append((i, tuple(queries.shape), shape))
        m = torch.zeros(2 * 4, 5, shape[0] * shape[1], dtype=torch.bool)
        m[:, 0] = True  # query 0 blocked everywhere -> unblocked
        m[:, 1:, 1:] = True  # others may only see cell 0
        return m

    out = dec(_feats(), cross_attn_mask_fn=fn, return_attn=True)
    assert [c[0] for c in calls] == [0, 1, 2]
    assert calls[0][2] == (4, 4)
    w = out['attn_maps'][0].flatten(2)
    assert torch.allclose(w[:, 1:, 0], torch.ones(2, 4))
    assert w[:, 0].min() > 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_layers=2), r'num_layers=2 < len\(feat_levels\)=3'),
    (dict(embed_dims=30), 'divisible'),
    (dict(num_heads=0), 'num_heads must be positive'),
    (dict(drop_path_rate=1.0), 'drop_path_rate'),
    (dict(feat_levels=()), 'feat_levels'),
    (dict(feat_levels=(0, -1)), 'feat_levels'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _decoder(**kwargs)


def test_bad_inputs():
    dec = _decoder()
    with pytest.raises(ValueError, match='needs at least 4 feature levels'):
        dec(_feats()[:3])
    feats = _feats()
    feats[2] = torch.randn(2, 8, 8, 8)
    with pytest.raises(ValueError, match='feature level 2 must be'):
        dec(feats)
    with pytest.raises(ValueError, match=r'queries must be \[2, Q, 32\]'):
        dec(_feats(), torch.randn(2, 3, 16))
    with pytest.raises(RuntimeError, match='num_queries=0'):
        _decoder(num_queries=0, with_mask_token=True)(_feats())
