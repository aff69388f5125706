"""tools/test.py --show-dir: the toolbox's visualization hook paints the
test images of the GLID nano configs (random-init checkpoints, 2 images)."""
import os.path as osp
import time
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import build_model
from glid_mm.utils.mim import load_config
from glid_tools import load_script

TEST = load_script('test')

GLID = 'configs/glid/'
CONFIGS = {
    'det': GLID + 'glid-det_swin-nano_1xb8-2k_coco128-320x240.py',
    'insseg': GLID + 'glid-insseg_swin-nano_1xb8-2k_coco128-320x240.py',
    'panseg':
    GLID + 'glid-panseg_swin-nano_1xb2-500i_coco-panoptic-samples-320x240.py',
    'semseg': GLID + 'glid-semseg_swin-nano_1xb8-2k_camvid-128x160.py',
    'depth': GLID + 'glid-depth_swin-nano_1xb2-300i_redwood-96x128.py',
    'pose': GLID + 'glid-pose_swin-nano_1xb4-60e_coco-samples-256x192.py',
    'probe':
    'configs/m3i/m3i-probe_vit-tiny-p16_1xb32-30e_hymenoptera-64px.py',
}
IMAGE_EXTS = ('.jpg', '.jpeg', '.png')


def random_checkpoint(config: str, path: str) -> str:
    """A checkpoint of the config's model with random weights, as
    ``tools/test.py`` loads it (``load_from``)."""
    cfg = load_config(config)
    init_default_scope(cfg.default_scope)
    torch.manual_seed(0)
    model = build_model(cfg.model)
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def images_under(folder: str) -> list:
    import os
    found = []
    for root, _, files in os.walk(folder):
        found += [
            osp.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTS)
        ]
    return sorted(found)


@pytest.fixture
def in_project(project_root, data_root, monkeypatch):
    monkeypatch.chdir(project_root)
    monkeypatch.setenv('GLID_MM_DATA', data_root)
    return project_root


def run_test_tool(config, tmp_path, show_dir='vis', extra=()):
    ckpt = random_checkpoint(config, str(tmp_path / 'random.pth'))
    work_dir = str(tmp_path / 'work')
    # a fresh visualizer per run: Visualizer is a per-name singleton and the
    # configs all name theirs 'visualizer' (one process runs several tests)
    name = f'visualizer_{uuid.uuid4().hex[:8]}'
    start = time.time()
    TEST.main([
        config, ckpt, '--work-dir', work_dir, '--show-dir', show_dir, *extra,
        '--cfg-options', 'test_dataloader.dataset.indices=2',
        f'visualizer.name={name}'
    ])
    return work_dir, time.time() - start


@pytest.mark.slow
@pytest.mark.parametrize('task', ['det', 'insseg', 'panseg', 'pose'])
def test_show_dir_mmdet_mmpose(task, in_project, tmp_path):
    """Det/pose hooks put a relative DIR under WORK_DIR/<timestamp>/DIR,
    one painted image per test image."""
    work_dir, _ = run_test_tool(CONFIGS[task], tmp_path)
    images = images_under(work_dir)
    assert images, f'no painted image under {work_dir}'
    assert all(osp.basename(osp.dirname(p)) == 'vis' for p in images), images
    # WORK_DIR/<timestamp>/vis
    assert {osp.dirname(osp.dirname(osp.dirname(p)))
            for p in images} == {work_dir}
    assert len(images) == 2  # 2 images (det) / 2 person instances (pose)


@pytest.mark.slow
@pytest.mark.parametrize('task', ['semseg', 'depth'])
def test_show_dir_mmseg(task, in_project, data_root, tmp_path):
    """mmseg: the visualizer's save_dir; images land in
    WORK_DIR/DIR/vis_data/vis_image; depth maps are drawn too."""
    work_dir, _ = run_test_tool(CONFIGS[task], tmp_path)
    folder = osp.join(work_dir, 'vis', 'vis_data', 'vis_image')
    images = images_under(folder)
    assert len(images) == 2, images_under(work_dir)
    if task == 'depth':
        import mmcv

        # the hook's window name: test_<image name>, then _<step>.png
        name = osp.basename(images[0])[len('test_'):].rsplit('_', 1)[0]
        src = mmcv.imread(
            osp.join(data_root, 'depth', 'redwood', 'images', name))
        h, w = src.shape[:2]
        # SegLocalVisualizer draws pred_depth_map (and gt_depth_map) below
        # the image: [image; gt depth] | [image; pred depth]
        assert mmcv.imread(images[0]).shape[:2] == (2 * h, 2 * w)


@pytest.mark.slow
def test_show_dir_mmpretrain_absolute(in_project, tmp_path):
    """mmpretrain's VisualizationHook: out_dir; an absolute DIR as is."""
    out = str(tmp_path / 'painted')
    run_test_tool(CONFIGS['probe'], tmp_path, show_dir=out)
    assert len(images_under(out)) == 2


def test_visualization_cfg_per_toolbox(tmp_path):
    """The hook arguments each toolbox's own tools/test.py sets."""

    def cfg_for(scope, hook=None):
        cfg = Config(
            dict(
                default_scope=scope,
                work_dir=str(tmp_path),
                default_hooks=dict(visualization=hook) if hook else {},
                visualizer=dict(type='Visualizer'),
                test_evaluator=dict(type='Metric')))
        TEST._with_visualization(cfg, True, 'vis', 0.5)
        return cfg

    det = cfg_for('mmdet', dict(type='DetVisualizationHook'))
    assert det.default_hooks.visualization == dict(
        type='DetVisualizationHook',
        draw=True,
        test_out_dir='vis',
        interval=1,
        show=True,
        wait_time=0.5)
    seg = cfg_for('mmseg')  # glid_mm's mmseg configs have no hook
    assert seg.default_hooks.visualization == dict(
        type='mmseg.SegVisualizationHook',
        draw=True,
        interval=1,
        show=True,
        wait_time=0.5)
    assert seg.visualizer.save_dir == osp.join(str(tmp_path), 'vis')
    pose = cfg_for('mmpose', dict(type='PoseVisualizationHook', enable=False))
    assert pose.default_hooks.visualization.enable is True
    assert pose.default_hooks.visualization.out_dir == 'vis'
    cls = cfg_for('mmpretrain', dict(type='VisualizationHook', enable=False))
    assert cls.default_hooks.visualization.enable is True
    assert cls.default_hooks.visualization.out_dir == osp.join(
        str(tmp_path), 'vis')
    with pytest.raises(ValueError, match='unknown visualization hook'):
        cfg_for('mmdet', dict(type='MyHook'))
    cfg = Config(
        dict(
            default_scope='mmdet',
            test_evaluator=dict(
                det=dict(type='CocoMetric'), seg=dict(type='IoUMetric'))))
    with pytest.raises(ValueError, match='multi-task'):
        TEST._with_visualization(cfg, False, 'vis', 2)


def test_show_options_parse():
    args = TEST.parse_args(
        ['c.py', 'k.pth', '--show', '--show-dir', 'v', '--wait-time', '1'])
    assert args.show and args.show_dir == 'v' and args.wait_time == 1
    assert args.interval == 1
    args = TEST.parse_args(['c.py', 'k.pth'])
    assert not args.show and args.show_dir is None
