"""Build a runner the way ``tools/train.py`` / ``tools/test.py`` do, and
run it with the preflight checks (:mod:`glid_mm.utils.preflight`), turning
registry and unpickling errors into messages that say what to do."""
from typing import Callable, Optional

from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from glid_mm.engine.cpu_distributed import init_cpu_process_group
from glid_mm.utils.errors import (explain_registry_error,
                                  explain_unpickling_error)


def build_runner(cfg):
    """The runner of ``cfg`` (``runner_type`` honoured), after the CPU
    process group is set up where there is no GPU."""
    init_cpu_process_group(cfg)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def run_checked(cfg, action: str, check: Optional[Callable] = None):
    """Build the runner, ``check`` it, run ``action``; explain failures."""
    try:
        runner = build_runner(cfg)
        if check is not None:
            check(runner, cfg)
        return runner, getattr(runner, action)()
    except KeyError as exc:
        better = explain_registry_error(exc)
        if better is None:
            raise
        raise better from exc
    except Exception as exc:
        better = explain_unpickling_error(exc, cfg.get('load_from'))
        if better is None:
            raise
        raise better from exc
