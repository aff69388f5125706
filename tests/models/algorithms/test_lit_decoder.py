"""LiTDecoder (mmpretrain model): encoder modes, prompts, loss, decoding,
tokenizer in the checkpoint, configs."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import (get_state_dict, load_checkpoint,
                                        save_checkpoint, weights_to_cpu)
from mmpretrain.registry import DATASETS, MODELS
from mmpretrain.structures import DataSample

import glid_mm  # noqa: F401
from glid_mm.engine.hooks.lit_tokenizer_hook import LiTTokenizerHook

pytestmark = pytest.mark.slow  # over a minute in all on 2 CPU cores

CFG_DIR = osp.join('configs', 'lit_decoder')
TINY = 'lit-decoder_resnet18_1xb16-10e_derived-tasks-64px.py'
ALL_CONFIGS = [
    TINY, 'lit-decoder-uncond_resnet18_1xb16-10e_derived-tasks-64px.py',
    'lit-decoder-catcond_resnet18_1xb16-10e_derived-tasks-64px.py',
    'lit-decoder_vit-b16_8xb32-50e_ten-tasks-224px.py',
    'lit-decoder-ft_vit-b16_8xb32-50e_ten-tasks-224px.py',
    'lit-decoder-scratch_vit-b16_8xb32-50e_ten-tasks-224px.py'
]
CORPUS = dict(
    texts=['ants', 'bees', 'person, dog', '0', '1', '2', 'sky, road, car'] * 3,
    tasks=dict(hymenoptera='cls', coco_persons='count', camvid='tags'),
    labels=dict(hymenoptera=['ants', 'bees']))


@pytest.fixture(scope='module', autouse=True)
def scope():
    init_default_scope('mmpretrain')


def _cfg(project_root, name=TINY):
    return Config.fromfile(osp.join(project_root, CFG_DIR, name))


def _model(project_root, train_tokenizer=True, **overrides):
    cfg = _cfg(project_root).model
    cfg.update(overrides)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    if train_tokenizer:
        model.train_tokenizer(CORPUS)
    return model


def _sample(task='hymenoptera', category='cls', text='ants', question=None):
    s = DataSample()
    for key, val in dict(
            task=task,
            task_category=category,
            gt_text=text,
            gt_texts=[text],
            question=question).items():
        s.set_field(val, key, field_type='metainfo')
    return s


def _batch(n=4):
    samples = [
        _sample(),
        _sample(text='bees'),
        _sample('coco_persons', 'count', '2'),
        _sample('camvid', 'tags', 'sky, road', question='what?')
    ]
    g = torch.Generator().manual_seed(n)
    return dict(
        inputs=torch.randint(
            0, 255, (n, 3, 64, 64), generator=g, dtype=torch.uint8),
        data_samples=samples[:n])


@pytest.mark.parametrize('name', ALL_CONFIGS)
def test_configs_build(project_root, name):
    cfg = _cfg(project_root, name)
    model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'LiTDecoder'
    assert model.max_length == 64 and model.label_smoothing == 0.1
    if 'vit-b16' in name:
        assert model.decoder.num_layers == 12
        assert model.decode_cfg['coco'] == dict(
            strategy='beam', num_beams=4, alpha=0.1)
        assert cfg.optim_wrapper.optimizer.lr == 1e-3
        assert cfg.train_cfg.max_epochs == 50
        assert len(cfg.train_dataloader.dataset.tasks) == 10
    assert model.encoder_mode == ('finetune' if '-ft_' in name else 'scratch'
                                  if '-scratch_' in name else 'frozen')


def test_prompts_per_conditioning(project_root):
    tok_ids = {}
    for cond in ('task', 'category', 'none'):
        m = _model(project_root, conditioning=cond)
        t = m.tokenizer
        tok_ids[cond] = m.prompt_ids(_sample(question='what?'))
        assert tok_ids[cond][0] == t.BOS and tok_ids[cond][-1] == t.SEP
    t = m.tokenizer
    assert tok_ids['task'][1:3] == [t.prompt_id('hymenoptera'), t.SEP]
    assert tok_ids['category'][1:3] == [t.prompt_id('cls'), t.SEP]
    assert tok_ids['none'] == [t.BOS] + t.encode('what?') + [t.SEP]


def test_frozen_encoder_unchanged_by_optimizer_step(project_root):
    model = _model(project_root)
    model.train()
    assert not model.backbone.training and model.decoder.training
    assert not any(p.requires_grad for p in model.backbone.parameters())
    before = copy.deepcopy(model.backbone.state_dict())
    dec_before = model.decoder.head.weight.detach().clone()
    optim = build_optim_wrapper(model, _cfg(project_root).optim_wrapper)
    for _ in range(2):
        model.train_step(_batch(), optim)
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN too
    assert not torch.equal(dec_before, model.decoder.head.weight)


def test_finetune_lr_multiplier_and_scratch(project_root):
    model = _model(project_root, encoder_mode='finetune')
    assert all(p.requires_grad for p in model.backbone.parameters())
    ft = _cfg(project_root,
              'lit-decoder-ft_vit-b16_8xb32-50e_ten-tasks-224px.py')
    optim = build_optim_wrapper(model, ft.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optim.optimizer.param_groups:
        name = names[id(group['params'][0])]
        if name.startswith('backbone.'):
            assert group['lr'] == pytest.approx(1e-4)
            # decoupled decay 1e-4 on kernels; none on biases and norms
            # (PartwiseOptimWrapperConstructor keeps the kind rules)
            kernel = group['params'][0].ndim > 1
            assert group['lr'] * group['weight_decay'] == pytest.approx(
                1e-4 if kernel else 0.)
        elif name == 'decoder.head.weight':
            assert group['lr'] == pytest.approx(1e-3)
            assert group['lr'] * group['weight_decay'] == pytest.approx(1e-4)
        elif name.endswith('.bias') or 'embed' in name:
            assert group['weight_decay'] == 0.
    before = model.backbone.conv1.weight.detach().clone()
    model.train_step(_batch(), optim)
    assert not torch.equal(before, model.backbone.conv1.weight)
    with pytest.raises(ValueError, match='scratch'):
        _model(
            project_root,
            encoder_mode='scratch',
            backbone=dict(
                type='ResNet',
                depth=18,
                num_stages=3,
                strides=(1, 2, 2),
                dilations=(1, 1, 1),
                out_indices=(2, ),
                init_cfg=dict(type='Pretrained', checkpoint='x.pth')))


def test_loss_falls_on_derived_tasks(project_root):
    """A few dozen CPU iterations on real derived-task examples."""
    cfg = _cfg(project_root)
    tasks = copy.deepcopy(cfg.train_dataloader.dataset.tasks)
    for name, task in tasks.items():
        task.dataset.pipeline = cfg.test_pipeline
        task.dataset.indices = list(range(5)) + list(range(150, 155)) if \
            name == 'hymenoptera' else 10
    ds = DATASETS.build(dict(type='LiTMultiTaskDataset', tasks=tasks))
    items = [ds[i] for i in range(len(ds))]
    batches = [default_collate(items[i::5]) for i in range(5)]
    model = _model(project_root, train_tokenizer=False)
    model.train_tokenizer(ds.get_text_corpus())
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    model.train()
    losses = [
        model.train_step(batches[i % 5], optim)['loss'].item()
        for i in range(30)
    ]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.7 * first, losses


def test_predict_all_strategies(project_root):
    model = _model(
        project_root,
        max_length=24,
        decode_cfg=dict(
            default=dict(strategy='greedy'),
            hymenoptera=dict(strategy='score'),
            coco_persons=dict(strategy='beam', num_beams=3, alpha=0.1),
            camvid=dict(
                strategy='sample', temperature=0.7, top_k=5, top_p=0.9,
                seed=1)))
    model.eval()
    out = model.val_step(_batch())
    assert [o.pred_text in ('ants', 'bees') for o in out[:2]] == [True] * 2
    assert all(isinstance(o.pred_text, str) for o in out)
    assert out[2].pred_caption == out[2].pred_text
    again = model.val_step(_batch())
    assert [o.pred_text for o in again] == [o.pred_text for o in out]


def test_tokenizer_saved_in_checkpoint(project_root, tmp_path):
    model = _model(project_root, max_length=24).eval()
    path = str(tmp_path / 'lit.pth')
    save_checkpoint({'state_dict': weights_to_cpu(get_state_dict(model))},
                    path)
    fresh = _model(project_root, train_tokenizer=False, max_length=24).eval()
    assert not fresh.tokenizer.is_trained
    load_checkpoint(fresh, path, map_location='cpu', strict=True)
    assert fresh.tokenizer.state_dict() == model.tokenizer.state_dict()
    data = _batch()
    assert [o.pred_text for o in fresh.val_step(copy.deepcopy(data))] == \
        [o.pred_text for o in model.val_step(data)]


def test_tokenizer_hook(project_root):

    class _Loader:

        class dataset:  # noqa: N801

            @staticmethod
            def get_text_corpus():
                return CORPUS

    class _Runner:
        model = _model(project_root, train_tokenizer=False)
        train_dataloader = _Loader()

    hook = LiTTokenizerHook()
    hook.before_train(_Runner)
    merges = list(_Runner.model.tokenizer.merges)
    assert _Runner.model.tokenizer.is_trained and merges
    _Runner.model.tokenizer.merges.append((0, 0))  # must not be retrained
    hook.before_train(_Runner)
    assert _Runner.model.tokenizer.merges[-1] == (0, 0)
    _Runner.train_dataloader = type('L', (), {'dataset': object()})()
    _Runner.model = _model(project_root, train_tokenizer=False)
    with pytest.raises(TypeError, match='get_text_corpus'):
        hook.before_train(_Runner)


def test_bad_arguments_raise(project_root):
    for kw, match in [
        (dict(encoder_mode='half'), 'encoder_mode'),
        (dict(conditioning='topic'), 'conditioning'),
        (dict(label_smoothing=1.), 'label_smoothing'),
        (dict(max_length=2), 'max_length'),
        (dict(decode_cfg=dict(x=dict(strategy='nope'))), 'strategy'),
        (dict(decode_cfg=dict(x=dict(strategy='beam', top_k=3))), 'top_k'),
        (dict(decode_cfg=dict(x=dict(strategy='beam', num_beams=0))),
         'num_beams'),
        (dict(decode_cfg=dict(x=dict(strategy='sample', top_p=2.))), 'top_p')
    ]:
        with pytest.raises(ValueError, match=match):
            _model(project_root, train_tokenizer=False, **kw)
    cfg = _cfg(project_root).model
    cfg.decoder['vocab_size'] = 100
    with pytest.raises(ValueError, match='vocab_size'):
        MODELS.build(cfg)
    model = _model(project_root, train_tokenizer=False)
    with pytest.raises(RuntimeError, match='untrained'):
        model.train_step(
            _batch(),
            build_optim_wrapper(model,
                                _cfg(project_root).optim_wrapper))
    model = _model(project_root)
    with pytest.raises(ValueError, match='data samples'):
        model.predict(torch.zeros(1, 3, 64, 64), None)
    with pytest.raises(KeyError, match='not seen'):
        model.loss(torch.zeros(1, 3, 64, 64), [_sample(task='unknown')])
    model = _model(
        project_root, decode_cfg=dict(camvid=dict(strategy='score')))
    with pytest.raises(ValueError, match='no classes'):
        model.val_step(_batch())
