"""LiTTextDecoder: shapes, causality, KV cache, arguments, gradients."""
import pytest
import torch

from glid_mm.models.decoders.lit_text_decoder import LiTTextDecoder

ARCH = dict(embed_dims=32, num_heads=4, ffn_dims=64, num_layers=2)


def _dec(**kw):
    torch.manual_seed(0)
    d = LiTTextDecoder(**dict(
        dict(
            vocab_size=40,
            memory_dims=24,
            arch=ARCH,
            max_length=16,
            drop_rate=0.), **kw))
    d.init_weights()
    return d.eval()


def test_shapes_and_presets():
    d = _dec()
    out = d(torch.randint(0, 40, (2, 7)), torch.randn(2, 5, 24))
    assert out.shape == (2, 7, 40)
    assert d(
        torch.randint(0, 40, (2, 7)), torch.randn(2, 5, 24),
        last_only=True).shape == (2, 1, 40)
    for arch, layers in [('tiny', 2), ('small', 6), ('base', 12)]:
        assert LiTTextDecoder(40, 24, arch=arch).num_layers == layers
    assert LiTTextDecoder(40, 24, arch='base', num_layers=1).num_layers == 1


def test_causal_and_memory_dependence():
    d = _dec()
    tok, mem = torch.randint(0, 40, (1, 8)), torch.randn(1, 5, 24)
    out = d(tok, mem)
    tok2 = tok.clone()
    tok2[0, 5] = (tok[0, 5] + 1) % 40
    out2 = d(tok2, mem)
    assert torch.allclose(out[:, :5], out2[:, :5], atol=1e-6)
    assert not torch.allclose(out[:, 5:], out2[:, 5:])
    assert not torch.allclose(out, d(tok, mem + 1.))


def test_incremental_cache_matches_full_pass():
    d = _dec()
    tok, mem = torch.randint(0, 40, (2, 9)), torch.randn(2, 5, 24)
    full = d(tok, mem)
    cache = d.init_cache()
    steps = [d(tok[:, :4], mem, cache=cache)]
    steps += [d(tok[:, i:i + 1], mem, cache=cache) for i in range(4, 9)]
    assert cache['length'] == 9
    assert torch.allclose(full, torch.cat(steps, 1), atol=1e-5)


def test_memory_mask_hides_tokens():
    d = _dec()
    tok, mem = torch.randint(0, 40, (1, 4)), torch.randn(1, 5, 24)
    mask = torch.tensor([[False, False, False, True, True]])
    mem2 = mem.clone()
    mem2[:, 3:] += 5.
    assert torch.allclose(
        d(tok, mem, memory_mask=mask),
        d(tok, mem2, memory_mask=mask),
        atol=1e-5)


def test_every_parameter_gets_a_gradient():
    d = _dec(drop_rate=0.1).train()
    d(torch.randint(0, 40, (2, 6)), torch.randn(2, 5, 24)).sum().backward()
    missing = [n for n, p in d.named_parameters() if p.grad is None]
    assert not missing


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match='arch'):
        LiTTextDecoder(40, 24, arch='huge')
    with pytest.raises(ValueError, match='misses'):
        LiTTextDecoder(40, 24, arch=dict(embed_dims=32))
    with pytest.raises(ValueError, match='divisible'):
        LiTTextDecoder(40, 24, arch=dict(ARCH, num_heads=5))
    with pytest.raises(ValueError, match='num_layers'):
        LiTTextDecoder(40, 24, arch='tiny', num_layers=0)
    with pytest.raises(ValueError, match='drop_rate'):
        LiTTextDecoder(40, 24, drop_rate=1.5)
    with pytest.raises(ValueError, match='vocab_size'):
        LiTTextDecoder(1, 24)
    d = _dec()
    with pytest.raises(ValueError, match='memory_dims'):
        d(torch.zeros(1, 3, dtype=torch.long), torch.randn(1, 5, 7))
    with pytest.raises(ValueError, match='max_length'):
        d(torch.zeros(1, 17, dtype=torch.long), torch.randn(1, 5, 24))
    with pytest.raises(ValueError, match='key_padding_mask'):
        d(torch.zeros(1, 3, dtype=torch.long),
          torch.randn(1, 5, 24),
          key_padding_mask=torch.zeros(1, 2, dtype=torch.bool))
