import os
import os.path as osp

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA_ROOT = os.environ.get('GLID_MM_DATA', osp.join(ROOT, '..', 'shared',
                                                    'data'))


def pytest_configure(config):
    config.addinivalue_line('markers',
                            'gpu: needs a CUDA device (skipped without one)')


def pytest_collection_modifyitems(config, items):
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA device')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope='session')
def project_root():
    return ROOT


@pytest.fixture(scope='session')
def data_root():
    if not osp.isdir(DATA_ROOT):
        pytest.fail(f'bundled data not found at {DATA_ROOT} '
                    '(set GLID_MM_DATA)')
    return DATA_ROOT
