"""Checkpoints written atomically (write to a temporary file, then rename)."""
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class AtomicCheckpointHook(Hook):
    """Make the runner's ``CheckpointHook`` write through the
    ``atomic_local`` file backend (:mod:`glid_mm.engine.atomic_backend`).

    A run killed while saving (pre-emption, out of disk) then never leaves a
    truncated ``epoch_N.pth`` / ``last_checkpoint`` that ``--resume`` would
    pick up. It acts only on a ``CheckpointHook`` that names no backend
    (no ``backend_args`` / ``file_client_args``) and writes to a local
    ``out_dir``; one that names its own backend keeps it. It is a hook and
    not a ``default_hooks.checkpoint.backend_args`` entry so that one line in
    ``custom_hooks`` (``configs/_base_/runtimes/``) covers every toolbox's
    runtime, wherever its ``default_hooks`` come from.

    Args:
        enabled (bool): ``False`` leaves the checkpoint hook untouched.
            Defaults to True.
    """

    priority = 'VERY_HIGH'  # before CheckpointHook (VERY_LOW) sets its backend

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled

    def before_train(self, runner) -> None:
        if not self.enabled:
            return
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook) or \
                    hook.backend_args is not None or \
                    hook.file_client_args is not None:
                continue
            out_dir = str(hook.out_dir or runner.work_dir)
            if '://' not in out_dir:
                hook.backend_args = dict(backend='atomic_local')
