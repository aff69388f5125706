"""Split a multi-task checkpoint (GLID generalist, GPPF SIMT) into one
checkpoint per task.

    python tools/model_converters/multi_task_split.py SRC OUT_DIR \
        [--tasks det seg ...] [--config MULTI_TASK_CONFIG]

Writes ``OUT_DIR/<task>.pth`` for every task of SRC (or those named):
the shared parts under their single-task names and the task's own parts
without their ``tasks.<task>.`` prefix
(:func:`glid_mm.models.converters.multi_task_split.split_multi_task`).
With ``--config`` (the multi-task config SRC was trained with), each
checkpoint is loaded into the model of the task's single-task config (its
``model.tasks.<task>.from_config``) and the load report is printed; any
missing, unexpected or mismatched key is an error. Each toolbox's own
``tools/test.py`` then evaluates a task with its single-task config::

    python $(python -c "import mmdet, os; print(os.path.dirname(
        mmdet.__file__))")/.mim/tools/test.py DET_CONFIG OUT_DIR/det.pth
"""
import argparse
import json
import os
import os.path as osp

import torch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='multi-task checkpoint')
    parser.add_argument('out_dir', help='folder for <task>.pth')
    parser.add_argument(
        '--tasks', nargs='+', help='tasks to export (default: all)')
    parser.add_argument(
        '--config',
        help='the multi-task config: check that each task checkpoint '
        'loads into its single-task config')
    return parser.parse_args()


def single_task_config(config: str, task: str) -> str:
    """Path of ``task``'s single-task config in a multi-task config
    (``model.tasks.<task>.from_config``)."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    tasks = cfg.model.get('tasks', {})
    if task not in tasks:
        raise SystemExit(f'{config}: model.tasks has no task {task!r} '
                         f'(tasks: {list(tasks)})')
    ref = tasks[task].get('from_config') if isinstance(tasks[task],
                                                       dict) else None
    if not ref:
        raise SystemExit(f'{config}: model.tasks.{task} names no '
                         'from_config (single-task config) to check against')
    return ref


def check(task_config: str, state: dict, src: str) -> dict:
    """Load ``state`` into the model of ``task_config``; the report."""
    from mmengine.config import Config, ConfigDict
    from mmengine.registry import MODELS, init_default_scope

    from glid_mm.utils.gppf_task_configs import single_task_model
    from glid_mm.utils.load_check import (CheckpointMismatchError, by_part,
                                          load_and_report)
    cfg = Config.fromfile(task_config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    # a ConfigDict as under a runner (mmseg reads test_cfg.mode)
    model = MODELS.build(ConfigDict(single_task_model(cfg)))
    try:
        loading = load_and_report(model, state, src)
    except CheckpointMismatchError as err:
        raise SystemExit(f'{task_config}: {err}')
    return dict(
        config=task_config,
        loaded=len(loading['loaded']),
        missing={
            part:
            keys[:5] + ([f'... {len(keys) - 5} more'] if len(keys) > 5 else [])
            for part, keys in by_part(loading['missing']).items()
        },
        unexpected=loading['unexpected'][:10])


def main():
    args = parse_args()
    import glid_mm  # noqa: F401  (safe checkpoint loading, registries)
    from glid_mm.models.converters.multi_task_split import (multi_task_names,
                                                            split_multi_task)
    ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt)
    tasks = args.tasks or multi_task_names(state)
    os.makedirs(args.out_dir, exist_ok=True)
    summary, failed = {}, []
    for task in tasks:
        try:
            part = split_multi_task(state, task)
        except KeyError as err:
            raise SystemExit(f'{args.src}: {err.args[0]}')
        dst = osp.join(args.out_dir, f'{task}.pth')
        torch.save(
            dict(
                state_dict=part,
                meta=dict(converted_from=osp.basename(args.src), task=task)),
            dst)
        summary[task] = dict(saved=dst, keys=len(part))
        if args.config:
            report = check(
                single_task_config(args.config, task), part, args.src)
            summary[task].update(report)
            if report['missing'] or report['unexpected']:
                failed.append(task)
    print(json.dumps(summary, indent=1))
    if failed:
        raise SystemExit(f'tasks {failed} do not load into their '
                         'single-task configs: see the report above')


if __name__ == '__main__':
    main()
