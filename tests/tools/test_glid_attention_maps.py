"""The Fig. 4 tool: query cross-attention maps of GLID pre-training and
fine-tuning models over a real image (random weights, nano configs)."""
import os.path as osp
import subprocess
import sys

import mmcv
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model
from glid_tools.glid_attention import attention_picture, query_attention

PRETRAIN = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'
SEMSEG = 'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'


@pytest.fixture
def image(data_root):
    folder = osp.join(data_root, 'camvid', 'images', 'val')
    import os
    return osp.join(folder, sorted(os.listdir(folder))[0])


def _model(project_root, path, scope):
    init_default_scope(scope)
    torch.manual_seed(0)
    return build_model(Config.fromfile(osp.join(project_root, path)).model)


class CrossAttentionRecorder:
    """Forward hooks on every decoder block's cross-attention
    (``nn.MultiheadAttention``) that recompute its head-averaged weights
    ``mean_h softmax(q W_q^h (k W_k^h)^T / sqrt(d))`` from the query and
    key it is called with: ``weights[i]`` ``[B, Q, K]`` of block ``i``."""

    def __init__(self, decoder):
        self.weights = []
        self.handles = [
            layer.cross_attn.attn.register_forward_pre_hook(
                self._record, with_kwargs=True) for layer in decoder.layers
        ]

    def _record(self, mha, args, kwargs):
        assert not args and mha.batch_first is False
        assert kwargs['attn_mask'] is None
        assert kwargs['key_padding_mask'] is None
        q, k = kwargs['query'], kwargs['key']  # [Q, B, C], [K, B, C]
        C, h = mha.embed_dim, mha.num_heads
        w, b = mha.in_proj_weight, mha.in_proj_bias

        def heads(x):  # [N, B, C] -> [B, h, N, C / h]
            return x.reshape(x.shape[0], x.shape[1], h,
                             C // h).permute(1, 2, 0, 3)

        qh = heads(q @ w[:C].T + b[:C])
        kh = heads(k @ w[C:2 * C].T + b[C:2 * C])
        logits = qh @ kh.transpose(-1, -2) / (C // h)**0.5
        self.weights.append(logits.softmax(-1).mean(1))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def test_finetune_model_maps_are_distributions(project_root, image):
    model = _model(project_root, SEMSEG, 'mmseg')
    # distinct queries, as after training (zeros at init: equal rows)
    torch.nn.init.normal_(model.decoder.queries.query_embed)
    img = mmcv.imread(image, channel_order='rgb')
    with CrossAttentionRecorder(model.decoder) as rec:
        res = query_attention(model, img, size=(128, 160))
    # block i's map is block i's cross-attention, one row per query,
    # reshaped to its level's grid
    assert len(rec.weights) == len(res['maps'])
    for m, w in zip(res['maps'], rec.weights):
        torch.testing.assert_close(m, w[0].view(m.shape), rtol=1e-4, atol=1e-6)
    assert len(res['maps']) == 3  # one per decoder block
    assert res['levels'] == [3, 2, 1]  # coarse to fine, round robin
    for m, level in zip(res['maps'], res['levels']):
        stride = 2**(level + 2)
        assert m.shape == (100, 128 // stride, 160 // stride)
        torch.testing.assert_close(
            m.flatten(1).sum(1), torch.ones(100), atol=1e-4, rtol=0)


def test_pretrain_model_uses_mask_queries(project_root, image, tmp_path):
    model = _model(project_root, PRETRAIN, 'mmpretrain')
    img = mmcv.imread(image, channel_order='rgb')
    out = tmp_path / 'att.png'
    with CrossAttentionRecorder(model.decoder) as rec:
        res = attention_picture(
            model, img, str(out), size=(128, 128), num_queries=3)
    assert res['maps'][0].shape[0] == 12  # 75 % of the 4x4 unit grid
    # the mask queries' rows of each block's cross-attention ([CLS] first)
    assert len(rec.weights) == len(res['maps'])
    for m, w in zip(res['maps'], rec.weights):
        assert w.shape[1] == 1 + 12
        torch.testing.assert_close(
            m, w[0, 1:].view(m.shape), rtol=1e-4, atol=1e-6)
    assert res['query_names'][0].startswith('mask query')
    assert len(res['queries']) == 3 and out.stat().st_size > 5000
    with pytest.raises(ValueError, match='out of range'):
        attention_picture(model, img, str(out), size=(128, 128), queries=[99])
    with pytest.raises(ValueError, match='multiple of 32'):
        query_attention(model, img, size=(60, 64))


@pytest.mark.slow
def test_tool_runs(project_root, image, tmp_path):
    out = tmp_path / 'att.png'
    proc = subprocess.run([
        sys.executable, 'tools/analysis/glid_attention_maps.py', SEMSEG,
        'none', image, '--out',
        str(out), '--size', '128', '160', '--queries', '0', '7'
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.stat().st_size > 5000 and 'queries [0, 7]' in proc.stdout
