"""GumbelTemperatureHook: App. D.1's linear 5.0 -> 0.01 schedule, held."""
from types import SimpleNamespace

import pytest
import torch.nn as nn
from mmengine.logging import MessageHub

import glid_mm  # noqa: F401
from glid_mm.engine import GumbelTemperatureHook
from glid_mm.models.backbones.gppf_lego_resnet import LegoResNet


def test_schedule_values():
    hook = GumbelTemperatureHook(start=5.0, end=0.01, decay_iters=450000)
    assert hook.temperature(0) == 5.0
    assert hook.temperature(225000) == pytest.approx(2.505)
    assert hook.temperature(450000) == pytest.approx(0.01)
    assert hook.temperature(499999) == pytest.approx(0.01)  # held
    # strictly decreasing until decay_iters
    values = [hook.temperature(i) for i in range(0, 450001, 50000)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_sets_every_lego_backbone_and_logs():
    lego = [
        LegoResNet(
            task_names=('a', ),
            stem_channels=4,
            base_channels=2,
            num_stages=1,
            out_indices=(0, )) for _ in range(2)
    ]
    model = nn.ModuleDict(dict(x=lego[0], y=nn.Sequential(lego[1])))
    hub = MessageHub.get_instance('test_gumbel_temperature_hook')
    runner = SimpleNamespace(model=model, iter=5, message_hub=hub)
    hook = GumbelTemperatureHook(start=4.0, end=1.0, decay_iters=10)
    hook.before_train(runner)
    hook.before_train_iter(runner, batch_idx=5)
    assert [m.temperature for m in lego] == [2.5, 2.5]
    assert hub.get_scalar('train/gumbel_tau').current() == 2.5
    runner.iter = 20
    hook.before_train_iter(runner, batch_idx=20)
    assert lego[0].temperature == 1.0


def test_model_without_gumbel_modules():
    runner = SimpleNamespace(model=nn.Linear(2, 2))
    with pytest.raises(TypeError, match='no module with set_temperature'):
        GumbelTemperatureHook().before_train(runner)


@pytest.mark.parametrize('kwargs, match', [
    (dict(start=0.0), 'start'),
    (dict(end=-0.1), 'end'),
    (dict(start=float('inf')), 'start'),
    (dict(decay_iters=0), 'decay_iters'),
    (dict(decay_iters=1.5), 'decay_iters'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GumbelTemperatureHook(**kwargs)


def test_warns_when_the_schedule_replaces_the_model_temperature():
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('test_gumbel_warning')
    records = []

    class Keep:
        level = 0

        def handle(self, record):
            records.append(record.getMessage())

    handler = Keep()
    logger.handlers.append(handler)
    try:
        lego = LegoResNet(
            task_names=('a', ),
            stem_channels=4,
            base_channels=2,
            num_stages=1,
            out_indices=(0, ),
            temperature=2.0)
        runner = SimpleNamespace(model=lego)
        GumbelTemperatureHook(start=5.0).before_train(runner)
        assert any('temperature [2.0] is replaced' in m for m in records)
        records.clear()
        lego.set_temperature(5.0)
        GumbelTemperatureHook(start=5.0).before_train(runner)
        assert not any('is replaced' in m for m in records)
    finally:
        logger.handlers.remove(handler)
