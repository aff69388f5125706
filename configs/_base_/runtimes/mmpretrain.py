# glid_mm's runtime on top of mmpretrain's: glid_mm configs behave the same
# under glid_mm's tools/train.py and mmpretrain's own tools/train.py.
_base_ = 'mmpretrain::_base_/default_runtime.py'

custom_imports = dict(imports=['glid_mm'], allow_failed_imports=False)
# A config that sets its own custom_hooks lists these two again (a list
# replaces the inherited one); tests/configs/test_all_configs.py checks it.
custom_hooks = [
    # stop at the first NaN/Inf loss term, naming the iteration and task
    dict(type='FiniteLossHook'),
    # checkpoints written to a temporary file, then renamed
    dict(type='AtomicCheckpointHook'),
]
