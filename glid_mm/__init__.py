"""glid_mm: GLID, GPPF, LiT decoder and M3I for the OpenMMLab toolboxes.

``import glid_mm`` (or ``custom_imports=dict(imports=['glid_mm'])`` in any
mmdet / mmseg / mmpose / mmpretrain config):

1. checks the installed OpenMMLab stack and mmcv's compiled ops
   (:mod:`glid_mm.utils.version_guard`), raising one clear message;
2. makes mmengine checkpoints load with torch's weights-only unpickler
   (:mod:`glid_mm.utils.checkpoint`);
3. registers every glid_mm component into the registries of the toolboxes
   that use it (:mod:`glid_mm.registry`);
4. lets mmengine resolve ``glid_mm::<family>/<config>.py`` config paths
   (:mod:`glid_mm.utils.mim`).
"""
from glid_mm.utils.version_guard import check_environment
from glid_mm.version import __version__

check_environment()

from glid_mm.utils.checkpoint import setup_safe_checkpoints  # noqa: E402

setup_safe_checkpoints()

from glid_mm import datasets, engine, evaluation, models  # noqa: E402,F401
from glid_mm.utils.mim import register_config_package  # noqa: E402

# ``_base_ = 'glid_mm::glid/...'`` resolves against the installed configs
register_config_package()

__all__ = ['__version__', 'check_environment']
