from glid_mm.engine.runner.checked_run import build_runner, run_checked
from glid_mm.engine.runner.task_config_runner import TaskConfigRunner

__all__ = ['TaskConfigRunner', 'build_runner', 'run_checked']
