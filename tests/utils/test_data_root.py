import pytest
from mmengine.config import Config

from glid_mm.utils import check_data_roots


def _cfg(train_root, val_root):
    return Config(
        dict(
            train_dataloader=dict(
                dataset=dict(
                    type='ConcatDataset',
                    datasets=[
                        dict(data_root=train_root),
                        dict(data_root=val_root)
                    ])),
            val_dataloader=dict(dataset=dict(data_root=val_root))))


def test_existing_roots_pass(data_root):
    check_data_roots(_cfg(data_root, data_root))


def test_missing_root_names_key_and_path(data_root, tmp_path):
    missing = str(tmp_path / 'no_such_data')
    with pytest.raises(FileNotFoundError) as err:
        check_data_roots(_cfg(data_root, missing))
    msg = str(err.value)
    assert 'train_dataloader.dataset.datasets[1].data_root' in msg
    assert 'val_dataloader.dataset.data_root' in msg
    assert missing in msg
    assert 'GLID_MM_DATA' in msg
    assert 'datasets[0]' not in msg  # the existing root is not reported
