"""Code shared by the scripts under ``tools/`` (not part of the library).

Benchmark runners and the peer catalogue (:mod:`glid_tools.benchmark`), the
main-job demo (:mod:`glid_tools.glid_demo`), the stack demo, the GPPF
selection plots and GLID's attention maps. The scripts put ``tools/`` on
``sys.path`` (:func:`tools_path` in each script's preamble); tests do the
same in ``tests/conftest.py``. Only ``glid_mm`` is imported from here, never
the other way round.
"""
