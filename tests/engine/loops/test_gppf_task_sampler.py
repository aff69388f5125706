"""TaskSampler: per-process task draws from App. D.1-style weights."""
from collections import Counter

import pytest

from glid_mm.engine.loops import TaskSampler

WEIGHTS = dict(cls=4.0, det=2.5, seg=1.0)  # App. D.1: IN21K, COCO, ADE20K


def test_frequencies_follow_weights():
    sampler = TaskSampler(WEIGHTS, seed=0, rank=0)
    counts = Counter(sampler.sample(i) for i in range(6000))
    for task, weight in WEIGHTS.items():
        assert counts[task] / 6000 == pytest.approx(weight / 7.5, abs=0.02)


def test_reproducible_and_own_stream_per_rank():
    a, b = TaskSampler(WEIGHTS, 3, 0), TaskSampler(WEIGHTS, 3, 0)
    assert [a.sample(i) for i in range(50)] == [b.sample(i) for i in range(50)]
    other = TaskSampler(WEIGHTS, 3, 1)
    assert [a.sample(i)
            for i in range(50)] != [other.sample(i) for i in range(50)]
    assert [a.sample(i, rank=1)
            for i in range(50)] == [other.sample(i) for i in range(50)]
    # resuming at iteration 30 draws what an uninterrupted run draws
    assert TaskSampler(WEIGHTS, 3, 0).sample(30) == a.sample(30)


def test_per_iteration_sampling_shares_the_task():
    """Table 1's per-batch task sampling: every process runs the same task
    in an iteration, the tasks still follow the weights over iterations."""
    samplers = [
        TaskSampler(WEIGHTS, 3, rank, per_process=False) for rank in range(4)
    ]
    draws = [[s.sample(i) for i in range(3000)] for s in samplers]
    assert all(d == draws[0] for d in draws)
    counts = Counter(draws[0])
    for task, weight in WEIGHTS.items():
        assert counts[task] / 3000 == pytest.approx(weight / 7.5, abs=0.03)
    per_process = [TaskSampler(WEIGHTS, 3, r) for r in range(4)]
    assert len({tuple(s.sample(i) for i in range(50))
                for s in per_process}) == 4


@pytest.mark.parametrize('weights, match', [
    (dict(), 'non-empty'),
    (dict(det=0.0), "'det' must be a finite number > 0"),
    (dict(det=-1), "'det'"),
    (dict(det=float('nan')), "'det'"),
    (dict(det='a'), "'det'"),
])
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        TaskSampler(weights, seed=0, rank=0)


def test_bad_seed_or_rank():
    with pytest.raises(ValueError, match='seed and rank'):
        TaskSampler(WEIGHTS, seed=-1, rank=0)
