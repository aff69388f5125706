"""GLID queries: eq. 3 identity, pre-training layout, errors."""
import pytest
import torch

from glid_mm.models.layers import GLIDQueries


def test_finetune_queries_equal_cls_at_step_0():
    q = GLIDQueries(16, num_queries=5)
    q.init_weights()
    out = q.finetune_queries(3)
    assert out.shape == (3, 5, 16)
    assert q.cls_token.abs().sum() > 0
    assert torch.equal(out, q.cls_token.expand(3, 5, 16))
    assert torch.equal(q.query_embed, torch.zeros(5, 16))


def test_finetune_queries_separate_after_an_update():
    q = GLIDQueries(8, num_queries=3)
    target = torch.arange(3.)[None, :, None].expand(1, 3, 8)
    loss = (q.finetune_queries(1) - target).square().sum()
    loss.backward()
    assert q.cls_token.grad.abs().sum() > 0
    g = q.query_embed.grad
    assert not torch.allclose(g[0], g[1])


def test_pretrain_queries_layout():
    q = GLIDQueries(8, with_mask_token=True)
    pos = torch.randn(2, 4, 8)
    out = q.pretrain_queries(pos)
    assert out.shape == (2, 5, 8)
    assert torch.equal(out[:, 0], q.cls_token.expand(2, 8))
    assert torch.allclose(out[:, 1:], q.mask_token + pos)


def test_same_names_in_both_modes():
    pre = set(GLIDQueries(8, with_mask_token=True).state_dict())
    ft = set(GLIDQueries(8, num_queries=4).state_dict())
    assert pre == {'cls_token', 'mask_token'}
    assert ft == {'cls_token', 'query_embed'}
    assert pre & ft == {'cls_token'}


def test_errors():
    with pytest.raises(ValueError, match='num_queries > 0'):
        GLIDQueries(8)
    with pytest.raises(ValueError, match='num_queries must be >= 0'):
        GLIDQueries(8, num_queries=-1)
    with pytest.raises(ValueError, match='embed_dims'):
        GLIDQueries(0, num_queries=2)
    with pytest.raises(RuntimeError, match='no mask token'):
        GLIDQueries(8, num_queries=2).pretrain_queries(torch.zeros(1, 2, 8))
    with pytest.raises(RuntimeError, match='num_queries=0'):
        GLIDQueries(8, with_mask_token=True).finetune_queries(1)
    with pytest.raises(ValueError, match=r'pos_embed must be \[B, N, 8\]'):
        GLIDQueries(
            8, with_mask_token=True).pretrain_queries(torch.zeros(1, 2, 4))
