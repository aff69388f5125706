import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import glid_mm  # noqa: F401  (registers the safe globals and the reducer)
from glid_mm.utils.checkpoint import (_reduce_history_buffer,
                                      checkpoint_safe_globals)


def _message_hub_state():
    hub = MessageHub.get_instance('test_checkpoint_hub')
    for i in range(5):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 5)
    hub.update_info('np_value', np.float64(0.5))
    return hub.state_dict()


def _save(obj, path):
    torch.save(obj, path)
    return path


def test_history_buffer_state_has_no_statistics_methods():
    buf = HistoryBuffer()
    buf.update(3.0)
    buf.statistics('mean')
    pickle.dumps(buf)  # default __getstate__ would add statistics_methods
    _, args, state = _reduce_history_buffer(buf)
    assert args == (HistoryBuffer, )
    assert 'statistics_methods' not in state
    assert set(state) == {'max_length', '_log_history', '_count_history'}


def test_mmengine_checkpoint_loads_weights_only(tmp_path):
    ckpt = dict(
        meta=dict(epoch=1, iter=5, seed=0),
        state_dict={'w': torch.ones(2)},
        message_hub=_message_hub_state())
    path = _save(ckpt, tmp_path / 'ckpt.pth')
    assert torch.serialization.get_unsafe_globals_in_checkpoint(
        str(path)) == []
    loaded = torch.load(path, weights_only=True)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert isinstance(buf, HistoryBuffer)
    np.testing.assert_allclose(buf.data[0], [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
    # statistics methods are restored by HistoryBuffer.__setstate__
    assert buf.mean(window_size=2) == pytest.approx((1 / 4 + 1 / 5) / 2)
    assert buf.current() == pytest.approx(0.2)
    assert loaded['message_hub']['runtime_info']['np_value'] == 0.5


class _MMEnginePickling:
    """A pickle module that ignores copyreg, i.e. pickles HistoryBuffer the
    way stock mmengine does (through its ``__getstate__``)."""

    class Pickler(pickle.Pickler):
        dispatch_table = {}


def test_getattr_is_never_allowlisted(tmp_path):
    """Without our reducer the file would need builtins.getattr, which we
    never allow-list: the stock pickling must still be refused."""
    import builtins
    assert builtins.getattr not in checkpoint_safe_globals()
    buf = HistoryBuffer()
    buf.update(1.0)
    path = tmp_path / 'stock.pth'
    torch.save(dict(buf=buf), path, pickle_module=_MMEnginePickling)
    assert 'builtins.getattr' in \
        torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    with pytest.raises(pickle.UnpicklingError, match='getattr'):
        torch.load(path, weights_only=True)
