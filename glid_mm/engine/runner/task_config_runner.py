"""A runner that reads the task configs a multi-task config names, once.

GPPF multi-task configs name standard single-task configs by path
(``dict(from_config=<path>, **changes)`` under ``model.tasks`` and the
per-task dataloaders / evaluators; :mod:`glid_mm.utils.gppf_task_configs`).
:class:`TaskConfigRunner` replaces every such reference by the part of the
task config it stands for when the runner is built, so that the model, the
SIMT train loop and the multi-task val / test loops receive plain dicts and
never read a file themselves. A config selects it with::

    runner_type = 'TaskConfigRunner'

which ``tools/train.py`` / ``tools/test.py`` and the toolboxes' own
``train.py`` honour (they build ``RUNNERS.build(cfg)`` when the config
has ``runner_type``). A config without references runs as under mmengine's
``Runner``.
"""
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

from glid_mm.utils.gppf_task_configs import resolve_task_configs


@RUNNERS.register_module()
class TaskConfigRunner(Runner):
    """mmengine's :class:`~mmengine.runner.Runner`, built from a config
    whose task-config references are resolved first
    (:func:`~glid_mm.utils.gppf_task_configs.resolve_task_configs`; the
    config passed in is left as it is, ``runner.cfg`` is the resolved
    one)."""

    @classmethod
    def from_cfg(cls, cfg) -> 'TaskConfigRunner':
        return super().from_cfg(resolve_task_configs(cfg))
