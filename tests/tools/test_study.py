"""tools/study.py: the study's bookkeeping (plan, subset, resume,
aggregation, paired statistics) and one tiny end-to-end run. No test here
asserts which initialisation wins."""
import json
import math
import os
import os.path as osp

import pytest

from glid_tools import study_glid, study_m3i
from glid_tools.study import (Step, cell_stats, fingerprints, paired_stats,
                              plan_table, run_plan, step_state, t95)
from glid_tools.study_report import markdown, summarise


def _cfg_of(plan, name):
    return next(s for s in plan if s.name == name).config


# ------------------------------------------------------------ subsets
def test_subset_indices_is_a_fixed_even_quarter():
    idx = study_glid.subset_indices(367, 0.25)
    assert len(idx) == 91  # floor(0.25 * 367): at most 25 %
    assert idx == sorted(set(idx)) and idx[0] == 0 and idx[-1] < 367
    assert max(b - a for a, b in zip(idx, idx[1:])) <= 5  # spread evenly
    assert study_glid.subset_indices(367, 0.25) == idx  # deterministic
    with pytest.raises(ValueError, match='fraction'):
        study_glid.subset_indices(10, 0.0)


def test_dev_split_holds_out_one_whole_sequence(project_root, data_root):
    frames = study_glid.train_frames(project_root)
    assert len(frames) == 367
    train, dev = study_glid.dev_split(frames)
    assert sorted(train + dev) == list(range(367))
    assert all(frames[i].startswith('0001TP') for i in dev)
    assert not any(frames[i].startswith('0001TP') for i in train)
    with pytest.raises(ValueError, match='0001TP'):
        study_glid.dev_split(['0006R0_1.jpg'])


def test_m3i_dev_split_every_fifth(project_root, data_root):
    n = study_m3i.hymenoptera_train_count(project_root)
    assert n == 243  # counted on disk (the data README says 245)
    train, dev = study_m3i.dev_split(n)
    assert len(dev) == 49 and not set(train) & set(dev)
    assert sorted(train + dev) == list(range(n))


# ------------------------------------------------------------ plan
@pytest.mark.parametrize(
    'preset', ['cpu', 'gpu'], ids=['cpu-preset', 'gpu-preset'])
def test_glid_plan_cells_seeds_and_pairing(project_root, data_root, tmp_path,
                                           preset):
    runs = str(tmp_path / 'runs')
    plan = study_glid.build_plan('glid-camvid', project_root, preset, 3, runs)
    p = study_glid.PRESETS[preset]
    assert p['pretrain_long'] >= 8 * p['pretrain_short']
    fts = [s for s in plan if s.name.startswith('ft_')]
    tests = [s for s in plan if s.kind == 'test']
    assert len(fts) == len(tests) == 5 * 3
    cells = {(s.meta['init'], s.meta['labels']) for s in tests}
    assert cells == set(study_glid.CELLS['glid-camvid'])
    subset = study_glid.subset_indices(367, 0.25)
    for s in fts:
        cfg = s.config
        assert f'randomness = dict(seed={s.meta["seed"]})' in cfg
        if s.meta['labels'] == 'subset':
            assert f'indices={subset!r}' in cfg
        else:
            assert 'indices=None' in cfg
        if s.meta['init'] == 'random':
            assert 'load_from = None' in cfg and not s.deps
        else:
            assert s.deps == [f'init_{s.meta["init"]}']
            assert f'init_{s.meta["init"]}' in cfg
    # pairs differ only in the initialisation (and its lr multiplier)
    a = _cfg_of(plan, 'ft_random_all_s1').splitlines()
    b = _cfg_of(plan, 'ft_long_all_s1').splitlines()
    differ = [x for x, y in zip(a, b) if x != y]
    assert all(x.startswith(('load_from', 'optim_wrapper')) for x in differ)
    # each test evaluates its own fine-tuning's last checkpoint
    n = p['finetune_iters']
    for t in tests:
        ft = t.deps[0]
        assert f'{{runs}}/{ft}/iter_{n}.pth' in t.args


def test_cpu_presets_fit_their_budgets(project_root, data_root, tmp_path):
    runs = str(tmp_path)
    glid = study_glid.build_plan('glid-camvid', project_root, 'cpu', 3, runs)
    assert sum(s.est_s for s in glid) <= 100 * 60
    t4 = study_glid.build_plan('glid-table4', project_root, 'cpu', 3, runs)
    shared = {s.name for s in glid}
    assert sum(s.est_s for s in t4 if s.name not in shared) <= 45 * 60
    # Table 4 reuses glid-camvid's subset runs: same names, same plan
    fg, ft = fingerprints(glid), fingerprints(t4)
    for name in ('pretrain_long', 'ft_random_subset_s0',
                 'test_long_subset_s2'):
        assert fg[name] == ft[name]


def test_dev_plan_never_touches_val(project_root, data_root, tmp_path):
    plan = study_glid.build_plan(
        'glid-camvid', project_root, 'cpu', 3, str(tmp_path), dev=True)
    assert not [s for s in plan if s.kind == 'test']
    devs = [s for s in plan if s.name.startswith('dev_')]
    assert len(devs) == 4
    for s in devs:
        assert "img_path='images/train'" in s.config
        assert 'images/val' not in s.config
    m3i = study_m3i.build_plan(
        'm3i-hymenoptera', project_root, 'cpu', 3, str(tmp_path), dev=True)
    assert all("data_prefix='train'" in s.config for s in m3i
               if '_probe_' in s.name)


def test_only_selects_cells_and_refuses_unknown(project_root, data_root,
                                                tmp_path):
    plan = study_glid.build_plan(
        'glid-camvid',
        project_root,
        'tiny',
        2,
        str(tmp_path),
        only=['random/all'])
    assert {s.name
            for s in plan} == {
                'ft_random_all_s0', 'test_random_all_s0', 'ft_random_all_s1',
                'test_random_all_s1'
            }
    with pytest.raises(ValueError, match='unknown cells'):
        study_glid.build_plan(
            'glid-camvid',
            project_root,
            'tiny',
            2,
            str(tmp_path),
            only=['random/half'])


def test_dry_run_prints_the_plan_and_runs_nothing(project_root, data_root,
                                                  tmp_path, capsys):
    from glid_tools import load_script
    study = load_script('study')
    assert study.main(
        ['m3i-hymenoptera', '--dry-run', '--work-dir',
         str(tmp_path)]) == {}
    out = capsys.readouterr().out
    assert 'm3i_probe_random_s2' in out and 'min in all' in out
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------ resume
def _writer(name, deps=(), text='x'):
    """A step that appends ``text`` to ``{run}/out.txt``."""
    return Step(
        name=name,
        kind='convert',
        deps=list(deps),
        args=[
            '-c', 'import sys; open(sys.argv[1], "a")'
            f'.write({text!r})', '{run}/out.txt'
        ])


def _out(runs, name):
    with open(osp.join(runs, name, 'out.txt')) as f:
        return f.read()


def test_resume_skips_done_and_reruns_what_changed(tmp_path, project_root):
    runs = str(tmp_path / 'runs')
    plan = [_writer('a'), _writer('b', ['a']), _writer('c')]
    recs = run_plan(plan, project_root, runs, progress=False, poll_s=0.05)
    assert set(recs) == {'a', 'b', 'c'}
    # second call: nothing reruns (each file still holds one 'x')
    run_plan(plan, project_root, runs, progress=False, poll_s=0.05)
    assert [_out(runs, n) for n in 'abc'] == ['x', 'x', 'x']
    # a changed upstream step reruns itself and what depends on it
    plan2 = [_writer('a', text='y'), _writer('b', ['a']), _writer('c')]
    assert [
        step_state(s, osp.join(runs, s.name), f)
        for s, f in zip(plan2,
                        fingerprints(plan2).values())
    ] == ['stale', 'stale', 'done']
    run_plan(plan2, project_root, runs, progress=False, poll_s=0.05)
    assert [_out(runs, n) for n in 'abc'] == ['y', 'x', 'x']
    assert 'stale' not in plan_table(plan2, runs)


def test_interrupted_step_reruns_and_failure_names_the_log(
        tmp_path, project_root):
    runs = str(tmp_path / 'runs')
    plan = [_writer('a'), _writer('b', ['a'])]
    run_plan(plan, project_root, runs, progress=False, poll_s=0.05)
    os.remove(osp.join(runs, 'b', 'done.json'))  # killed before it ended
    assert step_state(plan[1], osp.join(runs, 'b'),
                      fingerprints(plan)['b']) == 'partial'
    run_plan(plan, project_root, runs, progress=False, poll_s=0.05)
    assert _out(runs, 'b') == 'x'  # started clean, not appended
    bad = plan + [
        Step(
            name='c',
            kind='convert',
            deps=['b'],
            args=['-c', 'raise SystemExit("broken step")'])
    ]
    with pytest.raises(RuntimeError, match='(?s)step c failed.*broken step'):
        run_plan(bad, project_root, runs, progress=False, poll_s=0.05)
    assert step_state(bad[1], osp.join(runs, 'b'),
                      fingerprints(bad)['b']) == 'done'


def test_plan_checks_order_and_names():
    with pytest.raises(ValueError, match='not earlier'):
        fingerprints([_writer('b', ['a']), _writer('a')])
    with pytest.raises(ValueError, match='repeat'):
        fingerprints([_writer('a'), _writer('a')])


# ------------------------------------------------------------ statistics
def test_paired_stats_by_hand():
    a = {0: 18.0, 1: 19.0, 2: 17.0, 3: 20.0}  # seed 3 has no pair
    b = {0: 17.0, 1: 17.5, 2: 17.0}
    p = paired_stats(a, b)
    assert p['seeds'] == [0, 1, 2] and p['diffs'] == [1.0, 1.5, 0.0]
    assert p['mean'] == pytest.approx(2.5 / 3)
    std = math.sqrt(((1 - 2.5 / 3)**2 + (1.5 - 2.5 / 3)**2 + (2.5 / 3)**2) / 2)
    assert p['std'] == pytest.approx(std)
    assert p['se'] == pytest.approx(std / math.sqrt(3))
    assert p['ci95'][1] - p['mean'] == pytest.approx(4.303 * std / 3**.5)
    assert p['positive'] == 2
    assert math.isnan(cell_stats([1.0])['std'])
    assert t95(2) == 4.303 and t95(11) == 2.228 and t95(100) == 1.96


def test_summarise_a_hand_made_results_file(tmp_path):
    """Records as run_plan returns them, read back from a JSON file."""
    vals = {
        ('random', 'all'): [17.0, 18.0, 16.0],
        ('long', 'all'): [18.0, 18.5, 17.5],
        ('random', 'subset'): [12.0, 11.0, 13.0],
        ('long', 'subset'): [14.0, 14.0, 12.0]
    }
    recs = {}
    for (init, labels), vs in vals.items():
        for seed, v in enumerate(vs):
            recs[f'test_{init}_{labels}_s{seed}'] = dict(
                wall_s=1.0,
                meta=dict(init=init, labels=labels, seed=seed),
                metrics=dict(mIoU=v, aAcc=50.0 + seed))
    recs['ft_random_all_s0'] = dict(wall_s=5.0, meta={}, losses={'1': 2.0})
    path = tmp_path / 'records.json'
    path.write_text(json.dumps(recs))
    recs = json.loads(path.read_text())
    s = summarise(list(vals), recs, 'mIoU', extra_metrics=('aAcc', ))
    assert s['cells']['random/all']['mean'] == pytest.approx(17.0)
    assert s['cells']['random/all']['std'] == pytest.approx(1.0)
    assert s['cells']['long/all']['extra']['aAcc']['mean'] == 51.0
    assert set(s['paired']) == {
        'long/all - random/all', 'long/subset - random/subset'
    }
    sub = s['paired']['long/subset - random/subset']
    assert sub['diffs'] == [2.0, 3.0, -1.0] and sub['positive'] == 2
    md = markdown(s, study_glid.INIT_LABELS, {'all': 'all', 'subset': '25%'})
    assert '| GLID pre-trained (long) | 25% | 14.00 | 14.00 | 12.00 |' in md
    assert '2 of 3' in md
    with pytest.raises(KeyError, match="'mIoU'"):
        summarise(
            list(vals), {
                'x':
                dict(
                    metrics={}, meta=dict(init='random', labels='all', seed=0))
            }, 'mIoU')


# ------------------------------------------------------------ end to end
@pytest.mark.slow
def test_tiny_study_end_to_end(project_root, data_root, tmp_path):
    """2 seeds, 2 cells, a few iterations through tools/train.py and
    tools/test.py; a second call reuses every run."""
    from glid_tools import load_script
    study = load_script('study')
    argv = [
        'glid-camvid', '--preset', 'tiny', '--seeds', '2', '--only',
        'random/all', 'long/all', '--jobs', '2', '--no-progress', '--work-dir',
        str(tmp_path)
    ]
    data = study.main(argv)
    cells = data['summary']['cells']
    for key in ('random/all', 'long/all'):
        assert cells[key]['n'] == 2
        assert all(0 <= v <= 100 for v in cells[key]['per_seed'].values())
    assert data['summary']['paired']['long/all - random/all']['n'] == 2
    out = tmp_path / 'glid-camvid'
    assert (out / 'study.png').stat().st_size > 0
    md = (out / 'results.md').read_text()
    assert 'Paired differences' in md and 'tools/study.py' in md
    assert data['pretraining']
    # every run is reused by a second call
    again = study.main(argv)
    assert again['summary'] == data['summary']


# ------------------------------------------------------ glid-generalist
def _generalist_plan(project_root, tmp_path, **kwargs):
    from glid_tools.study_generalist import build_plan
    return build_plan('glid-generalist', project_root, 'cpu', 2, str(tmp_path),
                      **kwargs)


def test_generalist_plan_equal_task_batches(project_root, tmp_path):
    """Per seed one 2-process generalist run of N iterations and four
    single-task runs of N / 2: the same number of task batches of 2."""
    from mmengine.config import Config
    steps = _generalist_plan(project_root, tmp_path)
    assert len(steps) == 10
    gen = [s for s in steps if s.meta['model'] == 'generalist']
    single = [s for s in steps if s.meta['model'] == 'single']
    assert [s.meta['seed'] for s in gen] == [0, 1]
    assert sorted({s.meta['task']
                   for s in single}) == ['depth', 'det', 'pose', 'seg']
    n = gen[0].iters
    assert '--nproc_per_node' in gen[0].args and \
        gen[0].args[gen[0].args.index('--nproc_per_node') + 1] == '2'
    assert all(s.iters == n // 2 for s in single)
    assert 2 * n == sum(s.iters for s in single if s.meta['seed'] == 0)
    # every config parses and keeps seed, schedule and batch
    for step in steps[:5]:
        path = tmp_path / f'{step.name}.py'
        path.write_text(step.config)
        cfg = Config.fromfile(str(path))
        assert cfg.randomness.seed == step.meta['seed']
        assert cfg.train_cfg.max_iters == step.iters
        assert cfg.param_scheduler[-1].end == step.iters
        assert cfg.optim_wrapper.optimizer.lr == 5e-4
        if step.meta['model'] == 'single':
            assert cfg.train_dataloader.batch_size == 2
            assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    with pytest.raises(SystemExit, match='--only'):
        _generalist_plan(project_root, tmp_path, only=['cls'])
    with pytest.raises(SystemExit, match='no --dev'):
        _generalist_plan(project_root, tmp_path, dev=True)


def test_generalist_report_pairs_by_seed(project_root, tmp_path):
    """Hand-made final validations: per-task values side by side, paired
    differences by seed, 'better' following each metric's direction."""
    from glid_tools.study_generalist import report
    steps = _generalist_plan(project_root, tmp_path)
    gen = {
        0: {
            'det/coco/bbox_mAP': 0.2,
            'det/coco/bbox_mAP_50': 0.4,
            'seg/mIoU': 30.0,
            'depth/rmse': 1.0,
            'depth/abs_rel': 0.3,
            'depth/d1': 0.5,
            'pose/coco/AP': 0.1
        },
        1: {
            'det/coco/bbox_mAP': 0.3,
            'det/coco/bbox_mAP_50': 0.5,
            'seg/mIoU': 34.0,
            'depth/rmse': 1.2,
            'depth/abs_rel': 0.3,
            'depth/d1': 0.5,
            'pose/coco/AP': 0.1
        }
    }
    single = {
        'det': {
            'coco/bbox_mAP': [0.1, 0.1],
            'coco/bbox_mAP_50': [0.2, 0.2]
        },
        'seg': {
            'mIoU': [31.0, 33.0]
        },
        'depth': {
            'rmse': [1.1, 1.4],
            'abs_rel': [0.3, 0.3],
            'd1': [0.5, 0.5]
        },
        'pose': {
            'coco/AP': [0.1, 0.1]
        },
    }
    records = {}
    for step in steps:
        seed = step.meta['seed']
        if step.meta['model'] == 'generalist':
            val = gen[seed]
        else:
            val = {k: v[seed] for k, v in single[step.meta['task']].items()}
        records[step.name] = dict(val=[val], wall_s=1.0, meta=step.meta)
    md, data = report('glid-generalist', project_root, 'cpu', steps, records,
                      str(tmp_path))
    seg = data['paired']['seg']
    assert seg['diffs'] == pytest.approx([-1.0, 1.0])
    assert data['paired']['det']['mean'] == pytest.approx(0.15)
    # rmse: lower is better, the generalist is lower on both seeds
    assert data['paired']['depth']['diffs'] == pytest.approx([-0.1, -0.2])
    rows = {line.split(' |')[0]: line for line in md.splitlines()}
    assert rows['| depth (rmse, lower is better)'].endswith('| 2 of 2 |')
    assert rows['| seg (mIoU, higher is better)'].endswith('| 1 of 2 |')
    assert rows['| pose (coco/AP, higher is better)'].endswith('| 0 of 2 |')
    assert data['values']['seg']['single'] == {'0': 31.0, '1': 33.0}
