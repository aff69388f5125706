import pytest
import torch

from glid_mm.models.heads.m3i_attention_pool_head import M3IAttentionPoolHead


def _head(**kwargs):
    cfg = dict(in_channels=16, num_classes=3, num_heads=2)
    cfg.update(kwargs)
    import glid_mm  # noqa: F401  (mmpretrain losses registered)
    head = M3IAttentionPoolHead(**cfg)
    head.init_weights()
    return head


def test_shapes_and_pooling_depends_on_tokens():
    torch.manual_seed(0)
    head = _head()
    tokens = torch.randn(4, 5, 16)
    assert head.pool(tokens).shape == (4, 16)
    logits = head(tokens)
    assert logits.shape == (4, 3)
    assert not torch.allclose(logits, head(tokens.flip(0)))
    # attention pooling is a set function: token order does not matter
    assert torch.allclose(logits, head(tokens.flip(1)), atol=1e-5)


def test_loss_skips_unlabelled_rows():
    torch.manual_seed(0)
    head = _head()
    tokens = torch.randn(4, 5, 16)
    labels = torch.tensor([0, -1, 2, -1])
    loss = head.loss(tokens, labels)
    ref = torch.nn.functional.cross_entropy(
        head(tokens)[[0, 2]], torch.tensor([0, 2]))
    assert torch.allclose(loss, ref)
    none = head.loss(tokens, torch.full((4, ), -1))
    assert none.item() == 0.
    none.backward()
    assert all(p.grad is not None for p in head.parameters())


def test_bad_arguments_and_labels():
    with pytest.raises(ValueError, match='divisible by num_heads'):
        _head(in_channels=10, num_heads=3)
    with pytest.raises(ValueError, match='num_classes'):
        _head(num_classes=0)
    head = _head()
    with pytest.raises(ValueError, match='out of range'):
        head.loss(torch.randn(2, 3, 16), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r'\[B, V, 16\]'):
        head(torch.randn(2, 16))
