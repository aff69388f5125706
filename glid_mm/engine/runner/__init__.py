from glid_mm.engine.runner.task_config_runner import TaskConfigRunner

__all__ = ['TaskConfigRunner']
