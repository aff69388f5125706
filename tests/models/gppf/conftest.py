import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The CPU is shared: one intra-op thread keeps these tests fast."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
