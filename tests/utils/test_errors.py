import pickle

import pytest
import torch
from mmengine.registry import init_default_scope

import glid_mm  # noqa: F401
from glid_mm.utils.errors import (explain_registry_error,
                                  explain_unpickling_error)


def test_unknown_type_lists_close_names():
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    with pytest.raises(KeyError) as err:
        MODELS.build(dict(type='RetinaNett'))
    better = explain_registry_error(err.value)
    assert better is not None
    msg = str(better)
    assert "'RetinaNett'" in msg and 'RetinaNet' in msg.split('Close')[1]
    assert explain_registry_error(KeyError('some other key')) is None


class _Evil:

    def __reduce__(self):
        return (print, ('pwned', ))


def test_code_needing_checkpoint_is_refused_with_explanation(tmp_path):
    path = str(tmp_path / 'evil.pth')
    torch.save(dict(state_dict={}, extra=_Evil()), path)
    with pytest.raises(pickle.UnpicklingError) as err:
        torch.load(path, weights_only=True)
    better = explain_unpickling_error(err.value, path)
    msg = str(better)
    assert path in msg and 'builtins.print' in msg
    assert 'never loads with weights_only=False' in msg
    assert explain_unpickling_error(ValueError('x'), path) is None
