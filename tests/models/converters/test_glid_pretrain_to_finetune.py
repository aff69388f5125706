import pytest
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import glid_mm  # noqa: F401
from glid_mm.models.converters.glid_pretrain_to_finetune import \
    convert_pretrain_to_finetune
from glid_mm.utils.load_check import (by_part, dry_run_report,
                                      format_load_report, part_of)

PRE = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'
SEM = 'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'


def _build(root, path):
    cfg = Config.fromfile(f'{root}/{path}')
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def pretrain_state(project_root):
    return _build(project_root, PRE).state_dict()


def test_part_of():
    assert part_of('decoder.queries.cls_token') == 'queries'
    assert part_of('decoder.layers.0.ffn.w') == 'decoder'
    assert part_of('decode_head.predictor.fc.weight') == 'head'
    assert part_of('panoptic_head.x') == 'head'
    assert part_of('data_preprocessor.mean') == 'other'


def test_all_loads_with_only_the_new_head_and_query_embed_missing(
        project_root, pretrain_state):
    kept, dropped = convert_pretrain_to_finetune(pretrain_state, 'all')
    assert all(
        k.startswith(('head.',
                      'pyramid_mask_tokens.')) or k.endswith('mask_token')
        for k in dropped)
    assert sum(k.startswith('pyramid_mask_tokens.') for k in dropped) == 4
    assert any(k.startswith('head.') for k in dropped)
    report = dry_run_report(_build(project_root, SEM), kept)
    assert by_part(report['missing']) == {
        'queries': ['decoder.queries.query_embed'],
        'head':
        ['decode_head.predictor.fc.weight', 'decode_head.predictor.fc.bias']
    }
    assert report['unexpected'] == [] and report['mismatch'] == []
    assert set(by_part(
        report['loaded'])) == {'backbone', 'neck', 'decoder', 'queries'}
    text = format_load_report(report, max_keys=None).splitlines()
    weights = [k for k in kept if not k.endswith('.num_batches_tracked')]
    assert text[0] == (f'{len(weights)} loaded, 0 resized, 0 computed by the '
                       'model, 0 shape mismatches, 3 missing, 0 unexpected')
    assert text[-1] == ('  head: 2 missing (decode_head.predictor.fc.weight, '
                        'decode_head.predictor.fc.bias)')


@pytest.mark.parametrize('mode,parts',
                         [('backbone', {'backbone'}),
                          ('backbone+neck', {'backbone', 'neck'})])
def test_table4_modes(pretrain_state, mode, parts):
    kept, _ = convert_pretrain_to_finetune(pretrain_state, mode)
    assert {part_of(k) for k in kept} == parts


def test_bad_input(pretrain_state):
    with pytest.raises(ValueError, match="'decoder_only'"):
        convert_pretrain_to_finetune(pretrain_state, 'decoder_only')
    with pytest.raises(KeyError, match='GLID pre-training checkpoint'):
        convert_pretrain_to_finetune({'conv.weight': 1}, 'all')


def test_resized_position_tables_are_reported_as_loaded(project_root):
    """Window 3 in pre-training, 4 in fine-tuning (as Swin-B's 6 -> 7):
    mmpretrain's load hook interpolates the relative-position tables, so
    they load (reported as resized), not missing."""
    cfg = Config.fromfile(f'{project_root}/{PRE}')
    cfg.model.backbone.stage_cfgs.block_cfgs.window_size = 3
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        state = MODELS.build(cfg.model).state_dict()
    kept, _ = convert_pretrain_to_finetune(state, 'all')
    cfg = Config.fromfile(f'{project_root}/{SEM}')
    cfg.model.backbone.window_size = 4
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    report = dry_run_report(model, kept)
    tables = [
        k for k in model.state_dict()
        if k.endswith('relative_position_bias_table')
    ]
    assert tables
    resized = by_part(report['resized'])['backbone']
    assert [k for k, _, _ in resized] == tables
    assert all(c[0] == 25 and m[0] == 49 for _, c, m in resized)
    assert all(k in report['loaded'] for k in tables)
    assert not any('relative_position' in k for k in report['missing'])
    # dropped by the hook, recomputed by the model for its window
    assert len(by_part(report['model_computed'])['backbone']) == len(tables)
    assert report['mismatch'] == []
    assert ': checkpoint (25, ' in format_load_report(report)
