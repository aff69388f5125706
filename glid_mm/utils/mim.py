"""``_base_ = 'glid_mm::<family>/<config>.py'`` with mmengine's configs.

mmengine resolves ``pkg::path`` against an installed package's ``.mim``
folder (``glid_mm/.mim/configs``, ``glid_mm/.mim/model-index.yml``, which
``setup.py`` ships in the wheel). Two things keep it from working for a
package outside OpenMMLab, both handled here without changing mmengine:

1. ``mmengine.config.utils._get_package_and_cfg_path`` asserts that the
   prefix is a key of ``MODULE2PACKAGE`` (``{import name: distribution
   name}``, a fixed table of OpenMMLab projects).
   :func:`register_config_package` adds ``'glid_mm': 'glid_mm'`` (import
   name == distribution name; editable installs: see below); it must run
   before ``Config.fromfile``
   (``import glid_mm`` first), since ``custom_imports`` are imported only
   after the ``_base_`` files are read.
2. mmengine writes ``_scope_='glid_mm'`` (the prefix) into every dict with
   a ``type`` that comes from a ``glid_mm::`` file (the model, datasets,
   hooks, metrics, ...). glid_mm has no registry scope of its own (see
   :mod:`glid_mm.registry`): under that scope mmengine warns and falls back
   to the root registries, where toolbox types such as
   ``SegDataPreProcessor`` are missing. :func:`drop_package_scope` removes
   these tags, so the config builds under its ``default_scope`` exactly as
   when it is loaded by path. :func:`load_config` does both.

Editable installs: with a PEP 660 editable install (``pip install -e .``,
the project's own set-up) mmengine 0.10.7's ``get_installed_path``
answers ``site-packages/glid_mm``, where the package is not (the
dist-info is there, the code is in the checkout). There
:func:`register_config_package` maps ``glid_mm`` to the name of one of
its modules, which no distribution has: ``get_installed_path`` then falls
back (as documented) to ``importlib.util.find_spec``, i.e. to the folder
of the imported package, whose ``.mim`` holds the links ``setup.py``
makes in editable mode.
"""
#: import name and distribution name of this package
PACKAGE = 'glid_mm'
#: a module directly in the package folder; its name is no distribution's
_LOCATOR = 'glid_mm.version'


def _mmengine_package_name() -> str:
    """What mmengine's ``get_installed_path`` must be given to answer the
    folder of the imported ``glid_mm``: the distribution name where the
    distribution holds that folder (a regular install, or none found),
    :data:`_LOCATOR` otherwise (an editable install)."""
    import importlib.metadata
    import os.path as osp

    # the glid_mm folder (this file is glid_mm/utils/mim.py)
    here = osp.realpath(osp.dirname(osp.dirname(osp.abspath(__file__))))
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return PACKAGE  # mmengine falls back to find_spec by itself
    if osp.realpath(str(dist.locate_file(PACKAGE))) == here:
        return PACKAGE
    return _LOCATOR


def register_config_package() -> None:
    """Let mmengine resolve ``glid_mm::`` config paths against the
    imported package's ``.mim`` folder (idempotent)."""
    from mmengine.config.utils import MODULE2PACKAGE

    MODULE2PACKAGE[PACKAGE] = _mmengine_package_name()


def drop_package_scope(cfg, scope: str = PACKAGE):
    """Remove every ``_scope_`` equal to ``scope`` from ``cfg`` (a
    :class:`mmengine.Config`, dict or list, changed in place); returns
    ``cfg``."""
    from mmengine.config import Config

    node = cfg._cfg_dict if isinstance(cfg, Config) else cfg
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get('_scope_') == scope:
                item.pop('_scope_')
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return cfg


def load_config(filename: str, **kwargs):
    """``Config.fromfile(filename, **kwargs)`` with ``glid_mm::`` bases
    resolved against the installed package and their scope tags
    dropped (:func:`register_config_package`, :func:`drop_package_scope`).
    """
    from mmengine.config import Config

    register_config_package()
    return drop_package_scope(Config.fromfile(filename, **kwargs))
