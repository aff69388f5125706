"""Pre-flight checks of tools/train.py and tools/test.py: annotation files
(glid_mm/utils/data_checks.py), multi-task names, and the ``load_from``
checkpoint against the built model (glid_mm/utils/load_check.py).

Real bundled annotation files are copied into ``tmp_path`` and broken
there; real configs point at the copies. About 40 s on one CPU core.
"""
import copy
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.models.converters.glid_pretrain_to_finetune import \
    convert_pretrain_to_finetune
from glid_mm.utils.data_checks import (AnnotationError, annotation_files,
                                       check_annotations, check_tasks)
from glid_mm.utils.gppf_task_configs import resolve_task_configs
from glid_mm.utils.load_check import (CheckpointMismatchError, check_load_from,
                                      dry_run_report)
from glid_mm.utils.preflight import check_built_runner as _check_built_runner
from glid_tools import load_script

DET_CFG = 'configs/stack/mask-rcnn_r18_fpn_1xb2-2it_coco128.py'
PAN_CFG = 'configs/_base_/datasets/coco_panoptic_samples.py'
POSE_CFG = 'configs/stack/td-hm_res18_1xb2-2it_coco-kpt-samples.py'
GPPF_CFG = ('configs/gppf/'
            'gppf_lego-r50-w16-n2_2xsimt-20i_coco128-camvid-hymenoptera.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# (config, bundled folder, annotation file inside it)
DATA = dict(
    det=(DET_CFG, 'coco128', 'annotations/instances.json'),
    pan=(PAN_CFG, 'coco_panoptic', 'panoptic_examples.json'),
    pose=(POSE_CFG, 'pose/coco', 'test_coco.json'))


@pytest.fixture(scope='module')
def configs(project_root):
    return {
        name: Config.fromfile(osp.join(project_root, path))
        for name, (path, _, _) in DATA.items()
    }


def _point(cfg, root):
    """A copy of ``cfg`` whose dataloaders read ``root``."""
    cfg = copy.deepcopy(cfg)
    for key in LOADERS:
        if cfg.get(key):
            cfg[key].dataset.data_root = str(root)
    return cfg


def _broken(name, configs, data_root, tmp_path, edit=None, text=None):
    """``configs[name]`` on a copy of its annotation file, edited by
    ``edit(data)`` or replaced by ``text``; returns (cfg, file)."""
    _, folder, ann = DATA[name]
    root = tmp_path / folder.replace('/', '_')
    dst = root / ann
    dst.parent.mkdir(parents=True, exist_ok=True)
    if text is not None:
        dst.write_bytes(text if isinstance(text, bytes) else text.encode())
    else:
        with open(osp.join(data_root, folder, ann)) as f:
            data = json.load(f)
        edit(data)
        dst.write_text(json.dumps(data))
    return _point(configs[name], root), str(dst)


# ----------------------------------------------------------------------
# annotation files (items 2-5)
# ----------------------------------------------------------------------
@pytest.mark.parametrize('name', sorted(DATA))
def test_bundled_annotations_pass(configs, data_root, name):
    _, folder, _ = DATA[name]
    cfg = _point(configs[name], osp.join(data_root, folder))
    assert check_annotations(cfg) == 1  # one file shared by all loaders
    scopes = {scope for _, _, _, scope in annotation_files(cfg)}
    assert scopes == {'mmpose' if name == 'pose' else 'mmdet'}


def test_invalid_json_names_file_line_and_column(configs, data_root, tmp_path):
    with open(osp.join(data_root, 'coco128/annotations/instances.json')) as f:
        lines = json.dumps(json.load(f), indent=1).splitlines()
    lines[4] = lines[4].replace(':', '', 1)  # line 5 loses its colon
    cfg, path = _broken(
        'det', configs, data_root, tmp_path, text='\n'.join(lines))
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    msg = str(err.value)
    assert path in msg and 'not valid JSON' in msg
    assert 'line 5 column' in msg and "Expecting ':' delimiter" in msg


@pytest.mark.parametrize('text,words', [
    ('', 'the file is empty'),
    ('{"images": [{"id": 1, "file_name": "a.jp', 'Unterminated string'),
    (b'\x89PNG\r\n\x1a\n\x00\x00', 'is not UTF-8'),
])
def test_truncated_empty_or_binary_file(configs, data_root, tmp_path, text,
                                        words):
    cfg, path = _broken('det', configs, data_root, tmp_path, text=text)
    with pytest.raises(AnnotationError, match=words) as err:
        check_annotations(cfg)
    assert path in str(err.value)


def test_missing_coco_keys(configs, data_root, tmp_path):
    cfg, path = _broken('det', configs, data_root, tmp_path,
                        lambda d: d.pop('categories'))
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    msg = str(err.value)
    assert path in msg and "missing COCO key(s) ['categories']" in msg
    assert "'annotations', 'images'" in msg  # what the file has


def test_panoptic_annotation_without_segments_info(configs, data_root,
                                                   tmp_path):

    def edit(data):
        del data['annotations'][1]['segments_info']

    cfg, path = _broken('pan', configs, data_root, tmp_path, edit)
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    image = json.load(open(path))['annotations'][1]['image_id']
    assert path in str(err.value)
    assert f'without segments_info: image id {image}' in str(err.value)


def test_negative_box_names_annotation_image_and_value(configs, data_root,
                                                       tmp_path):
    picked = {}

    def edit(data):
        ann = data['annotations'][7]
        ann['bbox'][2] = -12.5
        data['annotations'][8]['bbox'][3] = 0  # degenerate: mmdet drops it
        picked.update(ann)

    cfg, path = _broken('det', configs, data_root, tmp_path, edit)
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    msg = str(err.value)
    assert path in msg and '1 boxes of negative width/height' in msg
    assert (f'annotation id {picked["id"]} (image id {picked["image_id"]})'
            in msg)
    assert 'w=-12.5' in msg


def test_degenerate_boxes_pass(configs, data_root, tmp_path):

    def edit(data):
        data['annotations'][8]['bbox'][3] = 0

    cfg, _ = _broken('det', configs, data_root, tmp_path, edit)
    assert check_annotations(cfg) == 1


def test_many_problems_are_counted_with_a_few_examples(configs, data_root,
                                                       tmp_path):

    def edit(data):
        for ann in data['annotations'][:40]:
            ann['bbox'][2] = -1

    cfg, _ = _broken('det', configs, data_root, tmp_path, edit)
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    msg = str(err.value)
    assert '40 boxes of negative width/height' in msg
    assert msg.count('annotation id') == 5 and '... and 35 more' in msg


def test_unknown_category_id(configs, data_root, tmp_path):
    picked = {}

    def edit(data):
        ann = data['annotations'][3]
        ann['category_id'] = 999
        picked.update(ann)

    cfg, path = _broken('det', configs, data_root, tmp_path, edit)
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    msg = str(err.value)
    assert path in msg and '1 category ids not in categories' in msg
    assert (f'annotation id {picked["id"]} (image id {picked["image_id"]}): '
            'category_id 999') in msg
    assert 'categories has ids [1, 2, 3' in msg


def test_unknown_category_id_in_panoptic_segment(configs, data_root, tmp_path):

    def edit(data):
        data['annotations'][0]['segments_info'][2]['category_id'] = 4242

    cfg, path = _broken('pan', configs, data_root, tmp_path, edit)
    with pytest.raises(AnnotationError, match='category_id 4242') as err:
        check_annotations(cfg)
    assert path in str(err.value)


@pytest.mark.parametrize('extra,size', [([0, 0, 2], 54), ([0, 0, 2, 1], 55),
                                        (None, 48)])
def test_keypoints_of_the_wrong_length(configs, data_root, tmp_path, extra,
                                       size):
    picked = {}

    def edit(data):
        ann = next(a for a in data['annotations'] if a.get('num_keypoints'))
        ann['keypoints'] = ann['keypoints'][:48] if extra is None else (
            ann['keypoints'] + extra)
        picked.update(ann)

    cfg, path = _broken('pose', configs, data_root, tmp_path, edit)
    with pytest.raises(AnnotationError) as err:
        check_annotations(cfg)
    msg = str(err.value)
    assert path in msg and 'keypoint arrays of the wrong length' in msg
    assert (f'annotation id {picked["id"]} (image id {picked["image_id"]}): '
            f'{size} values, expected 51') in msg


def test_merged_wholebody_keypoints_follow_the_metainfo(configs, data_root):
    """mmpose's merged whole-body file lists 17 names for 133 keypoints:
    with the whole-body metainfo it is fine, with COCO's 17 it is not."""
    cfg = _point(configs['pose'], osp.join(data_root, 'pose/coco'))
    for key in LOADERS:
        cfg[key].dataset.ann_file = 'test_keypoint_partition_metric.json'
    with pytest.raises(AnnotationError, match='399 values, expected 51'):
        check_annotations(cfg)
    for key in LOADERS:
        cfg[key].dataset.metainfo = dict(
            from_file='configs/_base_/datasets/coco_wholebody.py')
    assert check_annotations(cfg) == 1


def test_data_check_false_skips(configs, data_root, tmp_path):
    cfg, _ = _broken('det', configs, data_root, tmp_path, text='{')
    cfg.data_check = False
    assert check_annotations(cfg) == 0


def test_missing_annotation_file(configs, tmp_path):
    cfg = _point(configs['det'], tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        check_annotations(cfg, keys=('train_dataloader', ))
    assert 'train_dataloader.dataset.ann_file' in str(err.value)
    assert str(tmp_path / 'annotations/instances.json') in str(err.value)


def test_concat_dataset_members_are_checked(configs, data_root, tmp_path):
    cfg, path = _broken('det', configs, data_root, tmp_path,
                        lambda d: d['annotations'][0]['bbox'].pop())
    good = _point(configs['det'], osp.join(data_root, 'coco128'))
    cfg.train_dataloader.dataset = dict(
        type='ConcatDataset',
        datasets=[good.train_dataloader.dataset, cfg.val_dataloader.dataset])
    where = [w for w, _, _, _ in annotation_files(cfg, ('train_dataloader', ))]
    assert where == [
        'train_dataloader.dataset.datasets[0].ann_file',
        'train_dataloader.dataset.datasets[1].ann_file'
    ]
    with pytest.raises(AnnotationError, match='not \\[x, y, w, h\\]') as err:
        check_annotations(cfg, keys=('train_dataloader', ))
    assert path in str(err.value)


# ----------------------------------------------------------------------
# multi-task configs (item 10)
# ----------------------------------------------------------------------
@pytest.fixture(scope='module')
def gppf(project_root):
    # the task configs named by path, as the model and loops load them
    return resolve_task_configs(
        Config.fromfile(osp.join(project_root, GPPF_CFG)))


@pytest.mark.slow
def test_gppf_task_loaders_are_checked(gppf, data_root, tmp_path):
    cfg = copy.deepcopy(gppf)
    det = cfg.train_dataloader.det.dataset
    det.data_root = osp.join(data_root, 'coco128')
    found = annotation_files(cfg, ('train_dataloader', ))
    assert [(w, s) for w, _, _, s in found
            ] == [('train_dataloader.det.dataset.ann_file', 'mmdet')]
    assert check_annotations(cfg, ('train_dataloader', )) == 1
    det.data_root = str(tmp_path)
    (tmp_path / 'annotations').mkdir()
    (tmp_path / 'annotations/instances.json').write_text('[1, 2')
    with pytest.raises(AnnotationError, match='instances.json: not valid'):
        check_annotations(cfg, ('train_dataloader', ))


def test_task_without_data_or_weight(gppf):
    check_tasks(gppf)
    cfg = copy.deepcopy(gppf)
    del cfg.train_dataloader['cls']
    with pytest.raises(KeyError) as err:
        check_tasks(cfg)
    msg = str(err.value)
    assert "model.tasks ['cls'] have no train_dataloader entry" in msg
    assert "train_dataloader names ['cls']" not in msg
    cfg = copy.deepcopy(gppf)
    cfg.train_cfg.task_weights = dict(det=1.0, seg=1.0, depth=1.0)
    with pytest.raises(KeyError) as err:
        check_tasks(cfg)
    msg = str(err.value)
    assert "model.tasks ['cls'] have no train_cfg.task_weights entry" in msg
    assert "train_cfg.task_weights names ['depth']" in msg


def test_simt_loop_refuses_weights_without_data():
    """The loop itself (built by the runner) raises as well."""
    from glid_mm.engine.loops import SIMTTrainLoop
    with pytest.raises(KeyError, match='task_weights names'):
        SIMTTrainLoop(
            SimpleNamespace(),
            dataloader=dict(det=dict(batch_size=1), seg=dict(batch_size=1)),
            max_iters=1,
            task_weights=dict(det=1.0, cls=1.0))


# ----------------------------------------------------------------------
# tools/train.py runs the pre-flight (one subprocess)
# ----------------------------------------------------------------------
@pytest.mark.slow
def test_train_tool_stops_on_a_broken_annotation_file(project_root, configs,
                                                      data_root, tmp_path):

    def edit(data):
        data['annotations'][2]['bbox'][3] = -3

    _, path = _broken('det', configs, data_root, tmp_path, edit)
    root = osp.dirname(osp.dirname(path))
    work_dir = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/train.py', DET_CFG, '--work-dir',
        str(work_dir), '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}'
    ],
                          cwd=project_root,
                          capture_output=True,
                          text=True,
                          env=env,
                          timeout=300)
    assert proc.returncode != 0
    assert 'AnnotationError' in proc.stderr
    assert path in proc.stderr and 'negative width/height' in proc.stderr
    assert not work_dir.exists()  # before the runner: no logs, no work dir


# ----------------------------------------------------------------------
# load_from (item 9)
# ----------------------------------------------------------------------
PRETRAIN_CFG = 'configs/glid/glid_swin-nano_1xb16-300i_bundled-128px.py'
SEMSEG_CFG = 'configs/glid/glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py'
FCN_CFG = 'configs/stack/fcn_r18-d8_1xb2-2it_camvid-128x160.py'


def _model(project_root, path, scope, window_size=None):
    from mmengine.registry import MODELS
    cfg = Config.fromfile(osp.join(project_root, path))
    if window_size is not None:  # mmpretrain SwinTransformer's argument
        cfg.model.backbone.pop('stage_cfgs', None)
        cfg.model.backbone.window_size = window_size
    init_default_scope(scope)
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


@pytest.fixture(scope='module')
def models(project_root):
    return dict(
        pretrain=_model(project_root, PRETRAIN_CFG, 'mmpretrain'),
        semseg=_model(project_root, SEMSEG_CFG, 'mmseg'),
        fcn=_model(project_root, FCN_CFG, 'mmseg'))


def test_glid_pretrain_checkpoint_fits_finetuning_model(models, tmp_path):
    ckpt = tmp_path / 'glid_pretrain.pth'
    torch.save(dict(state_dict=models['pretrain'].state_dict(), meta={}), ckpt)
    text = check_load_from(models['semseg'], str(ckpt))
    lines = text.splitlines()
    # 7 pre-training only: the [M] token, the pixel head's weight and bias
    # and the 4 masked-position embeddings of the encoder's pyramid
    n = len(models['pretrain'].state_dict()) - 7
    n -= sum(
        k.endswith('num_batches_tracked')
        for k in models['pretrain'].state_dict())
    assert lines[0] == (f'{n} loaded, 0 resized, 0 computed by the model, '
                        '0 shape mismatches, 3 missing, 7 unexpected')
    backbone = next(x for x in lines if x.startswith('  backbone:'))
    assert backbone.endswith(' loaded'), backbone  # same keys as Swin's
    other = next(x for x in lines if x.startswith('  other:'))
    assert 'unexpected (pyramid_mask_tokens.0' in other
    head = next(x for x in lines if x.startswith('  head:'))
    assert 'missing (decode_head.predictor.fc.weight' in head
    assert 'unexpected (head.predictor.weight' in head
    assert any('decoder.queries.query_embed' in x for x in lines)


def test_backbone_only_checkpoint_fits(models):
    state, _ = convert_pretrain_to_finetune(models['pretrain'].state_dict(),
                                            'backbone')
    text = check_load_from(models['semseg'], dict(state_dict=state))
    assert text.startswith(f'{len(state)} loaded, 0 resized, ')
    assert text.splitlines()[0].endswith(' missing, 0 unexpected')
    parts = [x.split(':')[0].strip() for x in text.splitlines()[1:]]
    assert parts == ['backbone', 'neck', 'decoder', 'queries', 'head']
    assert 'missing (neck.' in text and 'missing (decoder.' in text


def _resize_table(src_size, dst_size, table, num_heads):
    """A stand-in for mmpretrain's ``resize_relative_position_bias_table``,
    whose scipy ``interp2d`` is gone from SciPy >= 1.14: bicubic in torch."""
    grid = table.T.reshape(1, num_heads, src_size, src_size)
    grid = torch.nn.functional.interpolate(
        grid, size=(dst_size, dst_size), mode='bicubic', align_corners=True)
    return grid.reshape(num_heads, -1).T


def test_swin_window_size_change_is_resized_not_mismatched(
        project_root, models, monkeypatch):
    """Pre-training window 2, fine-tuning window 4: the tables differ in
    shape, mmpretrain's load hook resizes them, so they fit."""
    import mmpretrain.models.backbones.swin_transformer as swin
    monkeypatch.setattr(swin, 'resize_relative_position_bias_table',
                        _resize_table)
    model = _model(project_root, SEMSEG_CFG, 'mmseg', window_size=4)
    state = models['pretrain'].state_dict()
    key = 'backbone.stages.0.blocks.0.attn.w_msa.relative_position_bias_table'
    assert state[key].shape != model.state_dict()[key].shape  # 3x3 vs 7x7
    report = dry_run_report(model, state)
    assert report['mismatch'] == []
    assert key in report['loaded']
    assert (key, (9, 1), (49, 1)) in report['resized']
    check_load_from(model, dict(state_dict=state))
    assert state[key].shape == (9, 1)  # the checkpoint was not modified


def test_failing_load_hook_is_named(project_root, models, monkeypatch):
    """A load hook that raises (as mmpretrain's table resize does with
    SciPy >= 1.14) fails the check naming the hook and the module."""
    import mmpretrain.models.backbones.swin_transformer as swin

    def broken(*args):
        raise NotImplementedError('interp2d has been removed')

    monkeypatch.setattr(swin, 'resize_relative_position_bias_table', broken)
    model = _model(project_root, SEMSEG_CFG, 'mmseg', window_size=4)
    with pytest.raises(CheckpointMismatchError) as err:
        check_load_from(
            model,
            dict(state_dict=models['pretrain'].state_dict()),
            name='glid.pth')
    msg = str(err.value)
    assert msg.startswith('load_from=glid.pth: the load-state-dict hook '
                          'SwinTransformer._prepare_relative_position_bias_'
                          'table of backbone (SwinTransformer) fails')
    assert msg.endswith('NotImplementedError: interp2d has been removed')


def test_resnet_checkpoint_into_swin_model_is_refused(models):
    with pytest.raises(CheckpointMismatchError) as err:
        check_load_from(
            models['semseg'],
            dict(state_dict=models['fcn'].state_dict()),
            name='fcn_r18.pth')
    msg = str(err.value)
    assert msg.startswith('load_from=fcn_r18.pth does not fit '
                          'GLIDEncoderDecoder: none of its')
    assert 'Checkpoint vs model:\n0 loaded, 0 resized, ' in msg
    backbone = next(x for x in msg.splitlines() if x.startswith('  backbone:'))
    assert 'missing (backbone.patch_embed.projection.weight' in backbone
    assert 'unexpected (backbone.stem.0.weight' in backbone
    assert 'load_from_check = False' in msg


def test_checkpoint_with_another_backbone_is_refused(models):
    """Neck, decoder and head fit, the backbone is a ResNet: it would stay
    random while mmengine reports a mostly successful load."""
    state = {
        k: v
        for k, v in models['semseg'].state_dict().items()
        if not k.startswith('backbone.')
    }
    state.update({
        k: v
        for k, v in models['fcn'].state_dict().items()
        if k.startswith('backbone.')
    })
    with pytest.raises(
            CheckpointMismatchError,
            match="none of its backbone tensors matches"):
        check_load_from(models['semseg'], dict(state_dict=state))


def test_more_shape_mismatches_than_matches_is_refused(models):
    state = {
        k:
        torch.zeros(v.shape[0] + 1, *v.shape[1:]) if k.startswith(
            ('neck.', 'decoder.')) and v.dim() else v
        for k, v in models['semseg'].state_dict().items()
    }
    with pytest.raises(CheckpointMismatchError) as err:
        check_load_from(models['semseg'], dict(state_dict=state))
    msg = str(err.value)
    assert 'tensors have another shape in the model, more than the' in msg
    assert ('neck.lateral_convs.0.conv.weight: checkpoint (33, 32, 1, 1) '
            'vs model (32, 32, 1, 1)') in msg


def test_weights_under_model_key_or_no_tensors(models):
    with pytest.raises(
            CheckpointMismatchError, match='keeps its tensors under "model"'):
        check_load_from(models['semseg'],
                        dict(model=models['pretrain'].state_dict()))
    with pytest.raises(CheckpointMismatchError, match='holds no tensors'):
        check_load_from(models['semseg'], dict(meta=dict(epoch=3)))


def _runner(model, dataset=(1, ), loaders=None):
    loader = SimpleNamespace(loaders=loaders) if loaders else \
        SimpleNamespace(dataset=list(dataset))
    return SimpleNamespace(
        model=model,
        logger=MMLogger.get_current_instance(),
        train_loop=SimpleNamespace(dataloader=loader))


def test_train_checks_opt_out_resume_and_empty_data(models, tmp_path):
    ckpt = tmp_path / 'fcn.pth'
    torch.save(dict(state_dict=models['fcn'].state_dict()), ckpt)
    runner = _runner(models['semseg'])
    fits = tmp_path / 'glid.pth'
    torch.save(dict(state_dict=models['pretrain'].state_dict()), fits)
    _check_built_runner(runner, Config(dict(load_from=str(fits))))
    cfg = Config(dict(load_from=str(ckpt)))
    with pytest.raises(CheckpointMismatchError):
        _check_built_runner(runner, cfg)
    _check_built_runner(
        runner, Config(dict(load_from=str(ckpt), load_from_check=False)))
    _check_built_runner(runner, Config(dict(load_from=str(ckpt), resume=True)))
    with pytest.raises(
            ValueError,
            match='train_dataloader: the dataset '
            'list has no samples'):
        _check_built_runner(_runner(models['semseg'], dataset=()), Config())
    tasks = dict(
        det=SimpleNamespace(dataset=[1]), cls=SimpleNamespace(dataset=[]))
    with pytest.raises(ValueError, match='train_dataloader.cls: the dataset'):
        _check_built_runner(_runner(models['semseg'], loaders=tasks), Config())


def test_train_refuses_mismatched_load_from_before_training(
        project_root, data_root, models, tmp_path):
    """tools/train.py's main: the runner is built, nothing is trained."""
    ckpt = tmp_path / 'swin.pth'
    torch.save(dict(state_dict=models['semseg'].state_dict()), ckpt)
    root = osp.join(data_root, 'camvid')
    work_dir = tmp_path / 'work'
    with pytest.raises(CheckpointMismatchError, match='does not fit'):
        load_script('train').main([
            osp.join(project_root, FCN_CFG), '--work-dir',
            str(work_dir), '--cfg-options', f'load_from={ckpt}',
            f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}'
        ])
    assert not list(work_dir.glob('*.pth'))
    shutil.rmtree(work_dir, ignore_errors=True)
