"""Code shared by the scripts under ``tools/`` (not part of the library).

Benchmark runners and the peer catalogue (:mod:`glid_tools.benchmark`), the
main-job demo (:mod:`glid_tools.glid_demo`), the multi-seed studies of
``tools/study.py`` (:mod:`glid_tools.study`, ``study_glid``,
``study_m3i``, ``study_report``), the stack demo, the GPPF selection plots
and GLID's attention maps. Installed with the project (``setup.py`` maps
the package ``glid_tools`` to ``tools/glid_tools``; an editable install
serves this folder), so scripts and tests ``import glid_tools`` without
touching ``sys.path``. Only ``glid_mm`` is imported from here, never the
other way round.
"""
import importlib.util
import os.path as osp
import sys

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_script(name: str):
    """``tools/<name>.py`` as a module (its ``main(argv)``, ``parse_args``
    ...), for tests and for scripts that drive another script."""
    module_name = 'glid_mm_tools.' + name.replace('/', '.')
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(
        module_name, osp.join(TOOLS, name + '.py'))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
