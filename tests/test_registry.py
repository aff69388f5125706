"""The registry decision of glid_mm/registry.py, tested once for all."""
import pytest
import torch.nn as nn
from mmengine.config import Config
from mmengine.registry import DefaultScope, init_default_scope

import glid_mm  # noqa: F401
from glid_mm.registry import MODELS, TOOLBOXES, build_model

NAME = 'GlidMMRegistryProbe'


class _Probe(nn.Module):
    """Builds a nested loss by plain name, as our components do."""

    def __init__(self, loss=dict(type='CrossEntropyLoss')):
        super().__init__()
        self.loss = build_model(loss)


@pytest.fixture(scope='module')
def probe():
    MODELS.register_module(name=NAME)(_Probe)
    yield _Probe
    for registry in MODELS.registries().values():
        registry._module_dict.pop(NAME, None)


def _loss_module_root(scope):
    return {
        'mmdet': 'mmdet.',
        'mmseg': 'mmseg.',
        'mmpose': 'mmpose.',
        'mmpretrain': 'mmpretrain.'
    }[scope]


@pytest.mark.parametrize('scope', TOOLBOXES)
def test_plain_and_scoped_names_resolve(probe, scope):
    registry = MODELS.registries()[scope]
    assert registry.get(NAME) is probe
    assert registry.get(f'{scope}.{NAME}') is probe


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_nested_build_resolves_in_current_scope(probe, scope):
    """A nested ``type`` resolves in the toolbox whose config builds us."""
    init_default_scope(scope)
    try:
        model = MODELS.registries()[scope].build(dict(type=NAME))
    finally:
        DefaultScope._instance_dict.pop(scope, None)
    assert type(model.loss).__module__.startswith(_loss_module_root(scope))


def test_custom_imports_in_stock_config(probe, tmp_path):
    """A stock mmdet config + custom_imports builds glid_mm components."""
    cfg_file = tmp_path / 'stock_plus_glid.py'
    cfg_file.write_text(
        "_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\n"
        "custom_imports = dict(imports=['glid_mm'], "
        'allow_failed_imports=False)\n')
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == 'RetinaNet'
    assert cfg.default_scope == 'mmdet'
    from mmdet.registry import MODELS as MMDET_MODELS
    init_default_scope('mmdet')
    assert isinstance(MMDET_MODELS.build(dict(type=f'mmdet.{NAME}')), probe)
    assert isinstance(MMDET_MODELS.build(dict(type=NAME)), probe)


def test_unknown_scope_is_an_error():
    with pytest.raises(ValueError, match="unknown toolbox scope.*'mmfoo'"):
        MODELS.registries(['mmdet', 'mmfoo'])


HIDE_AND_IMPORT = r'''
import importlib.abc, importlib.util, sys
hidden = sys.argv[1]


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == hidden or name.startswith(hidden + '.'):
            raise ModuleNotFoundError(f'No module named {name!r}', name=name)
        return None


sys.meta_path.insert(0, Hide())
real_find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a, **k: None if (
    name == hidden or name.startswith(hidden + '.')) else real_find_spec(
        name, *a, **k)
from importlib import metadata
real_version = metadata.version


def version(dist):
    if dist in (hidden, 'mmsegmentation' if hidden == 'mmseg' else None):
        raise metadata.PackageNotFoundError(dist)
    return real_version(dist)


metadata.version = version
import glid_mm
from glid_mm.registry import MODELS, installed_toolboxes
assert hidden not in installed_toolboxes(), installed_toolboxes()
assert hidden not in sys.modules, 'the hidden toolbox was imported'
names = {s: sorted(k for k in r._module_dict)
         for s, r in MODELS.registries().items()}
print(sorted(names))
print(sorted(installed_toolboxes()))
print('BiFPN' in names['mmdet' if hidden != 'mmdet' else 'mmseg'])
'''


@pytest.mark.slow
@pytest.mark.parametrize('hidden', TOOLBOXES)
def test_import_with_one_toolbox_missing(hidden, tmp_path):
    """``import glid_mm`` works with any three of the four toolboxes; the
    parts of the missing one are skipped, the rest registered."""
    import subprocess
    import sys
    script = tmp_path / 'hide.py'
    script.write_text(HIDE_AND_IMPORT)
    out = subprocess.run([sys.executable, str(script), hidden],
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    scopes, installed, bifpn = out.stdout.strip().splitlines()[-3:]
    expected = [s for s in TOOLBOXES if s != hidden]
    if hidden == 'mmdet':  # mmpose 1.3 imports mmdet (registry._NEEDS)
        expected.remove('mmpose')
    assert eval(scopes) == eval(installed) == sorted(expected)
    assert bifpn == 'True'


def test_build_nested_rule():
    """Explicit scope, then home, then the current scope (registry.py)."""
    from mmdet.models.losses import CrossEntropyLoss as DetCE
    from mmseg.models.losses import CrossEntropyLoss as SegCE

    from glid_mm.registry import build_nested
    ce = dict(type='CrossEntropyLoss')
    with DefaultScope.overwrite_default_scope('mmseg'):
        assert isinstance(build_nested(ce), SegCE)  # current scope
        assert isinstance(build_nested(ce, home='mmdet'), DetCE)  # home
        assert isinstance(
            build_nested(dict(type='mmdet.CrossEntropyLoss'), home='mmseg'),
            DetCE)  # explicit scope wins
        # a name the home toolbox lacks resolves in the current scope
        assert type(build_nested(dict(type='SigLoss'),
                                 home='mmdet')).__name__ == 'SigLoss'
    with pytest.raises(KeyError, match='NoSuchLoss.*mmdet, mmseg'):
        with DefaultScope.overwrite_default_scope('mmseg'):
            build_nested(dict(type='NoSuchLoss'), home='mmdet')
    with pytest.raises(TypeError, match='needs a "type"'):
        build_nested(dict(loss_weight=1.0))


def test_readme_lists_every_registered_component(project_root):
    """The README's "Where things are" table names each registered glid_mm
    class with the file it lives in."""
    import inspect
    import os.path as osp

    from mmengine import registry as root

    from glid_mm.registry import _toolbox_registries
    with open(osp.join(project_root, 'README.md'), encoding='utf-8') as f:
        rows = [line for line in f if line.startswith('| ')]
    kinds = ('MODELS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'HOOKS', 'LOOPS',
             'DATA_SAMPLERS', 'MODEL_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS',
             'TOKENIZER', 'RUNNERS')
    missing = []
    for kind in kinds:
        registries = list(_toolbox_registries(kind).values())
        if hasattr(root, kind):
            registries.append(getattr(root, kind))
        for registry in registries:
            for name, cls in registry._module_dict.items():
                if not getattr(cls, '__module__', '').startswith('glid_mm.'):
                    continue
                path = osp.relpath(inspect.getfile(cls), project_root)
                if not any(f'`{name}`' in r and f'`{path}`' in r
                           for r in rows):
                    missing.append(f'{name} ({path})')
    assert not missing, f'README table lacks {sorted(set(missing))}'


# Which toolbox gets which model component, and why: backbones, necks and
# the query decoder are generic parts any toolbox's model can hold; heads,
# whole models and losses go to the toolbox whose base classes, data
# samples and metrics they use.
ALL = frozenset(TOOLBOXES)
WHERE = {
    'GLIDSwinTransformer': (ALL, 'backbone'),
    'LegoResNet': (ALL, 'backbone'),
    'LegoSwinTransformer': (ALL, 'backbone'),
    'SharedBackboneSlot': (ALL, 'the backbone slot of a GPPF task model of '
                           'any toolbox'),
    'BiFPN': (ALL, 'neck (FPN interface)'),
    'GLIDDecoder': (ALL, 'model-level query decoder of every GLID model'),
    'GLIDQueries': (ALL, "the decoder's queries"),
    'GLIDMaskPredictor': ({'mmdet', 'mmseg'}, 'mask classification head '
                          'of the mmdet and mmseg GLID heads'),
    'GPPFMultiTaskModel': ({'mmdet', 'mmseg', 'mmpretrain'}, 'its task '
                           'models come from any toolbox; the model itself '
                           'is tested in these three scopes'),
    'GLIDDETR': ({'mmdet'}, 'mmdet DETR detector'),
    'GLIDDETRHead': ({'mmdet'}, 'mmdet DETR head'),
    'GLIDMaskFormer': ({'mmdet'}, 'mmdet Mask2Former'),
    'GLIDMultiTaskMaskFormer': ({'mmdet'}, 'mmdet Mask2Former'),
    'GLIDMaskHead': ({'mmdet'}, 'mmdet Mask2Former head'),
    'GLIDEncoderDecoder': ({'mmseg'}, 'mmseg segmentor'),
    'GLIDMaskSegHead': ({'mmseg'}, 'mmseg decode head'),
    'GLIDDepthEstimator': ({'mmseg'}, 'mmseg depth estimator'),
    'GLIDDepthHead': ({'mmseg'}, 'mmseg depth head'),
    'SigLoss': ({'mmseg'}, "mmseg depth head's loss"),
    'GLIDTopdownPoseEstimator': ({'mmpose'}, 'mmpose top-down estimator'),
    'GLIDPoseHead': ({'mmpose'}, 'mmpose head (codec, metric)'),
    'GLID': ({'mmpretrain'}, 'mmpretrain self-supervised algorithm'),
    'GLIDPretrainHead': ({'mmpretrain'}, 'mmpretrain pre-training head'),
    'M3I': ({'mmpretrain'}, 'mmpretrain self-supervised algorithm'),
    'M3IDecoder': ({'mmpretrain'}, "M3I's target decoder"),
    'M3IAttentionPoolHead': ({'mmpretrain'}, "M3I's category head"),
    'M3IMixer': ({'mmpretrain'}, "M3I's input mixer"),
    'LiTDecoder': ({'mmpretrain'}, 'mmpretrain multimodal model'),
    'LiTTextDecoder': ({'mmpretrain'}, 'text decoder of LiTDecoder'),
}


def test_each_model_component_is_in_the_toolboxes_that_can_use_it():
    from glid_mm.registry import _toolbox_registries
    found = {}
    for toolbox, registry in _toolbox_registries('MODELS').items():
        for name, cls in registry._module_dict.items():
            if getattr(cls, '__module__', '').startswith('glid_mm.'):
                found.setdefault(name, set()).add(toolbox)
    assert set(found) == set(WHERE), 'update WHERE with the reason'
    wrong = {
        name: (sorted(found[name]), sorted(toolboxes), why)
        for name, (toolboxes, why) in WHERE.items()
        if found[name] != set(toolboxes)
    }
    assert not wrong, wrong


def test_lego_backbone_in_a_stock_mmpose_model(tmp_path):
    """The mmpose stock top-down model with GPPF's lego backbone builds
    and runs (it was not in mmpose's registry)."""
    import torch
    path = tmp_path / 'pose_lego.py'
    path.write_text("_base_ = 'mmpose::body_2d_keypoint/topdown_heatmap/"
                    "coco/td-hm_res50_8xb64-210e_coco-256x192.py'\n")
    cfg = Config.fromfile(str(path))
    cfg.model.backbone = dict(
        type='LegoResNet',
        task_names=['pose'],
        depth=18,
        num_units=2,
        base_channels=16,
        stem_channels=16,
        out_indices=(3, ))
    cfg.model.head.in_channels = 128
    with DefaultScope.overwrite_default_scope('mmpose'):
        from mmpose.registry import MODELS as POSE_MODELS
        model = POSE_MODELS.build(cfg.model)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64), None, mode='tensor')
    assert out.shape == (1, 17, 16, 16)  # heatmaps at 1/4
