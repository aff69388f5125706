from types import SimpleNamespace

import pytest
import torch
from mmengine.registry import HOOKS
from mmengine.structures import BaseDataElement

from glid_mm.engine.hooks import FiniteLossHook


def _runner(it=6):
    return SimpleNamespace(iter=it)


def _batch(task=None):
    meta = {} if task is None else dict(task=task)
    return dict(data_samples=[BaseDataElement(metainfo=meta)])


def test_finite_losses_pass():
    hook = FiniteLossHook()
    hook.after_train_iter(_runner(), 0, _batch(),
                          dict(loss=torch.tensor(1.), loss_cls=0.5, acc=1.))


def test_nan_names_iteration_task_and_term():
    hook = HOOKS.build(dict(type='FiniteLossHook'))
    outputs = dict(
        loss=torch.tensor(float('nan')),
        loss_cls=torch.tensor(0.3),
        loss_bbox=torch.tensor(float('inf')),
        **{'decode.loss_ce': torch.tensor(float('nan'))},
        acc=torch.tensor(float('nan')))  # not a loss: not reported
    with pytest.raises(FloatingPointError) as err:
        hook.after_train_iter(_runner(6), 0, _batch('det'), outputs)
    msg = str(err.value)
    assert 'iteration 7' in msg and '(task det)' in msg
    assert 'loss_bbox=inf' in msg and 'loss=nan' in msg
    assert 'decode.loss_ce=nan' in msg
    assert 'loss_cls' not in msg and 'acc' not in msg


def test_opt_out_and_bad_interval():
    hook = FiniteLossHook(enabled=False)
    hook.after_train_iter(_runner(), 0, _batch(),
                          dict(loss=torch.tensor(float('nan'))))
    with pytest.raises(ValueError, match='interval'):
        FiniteLossHook(interval=0)
