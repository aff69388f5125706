"""Modules shared by tests, importable as ``glid_test_helpers.<name>``
(``tests/`` is on ``sys.path`` through pytest's ``pythonpath`` setting in
``setup.cfg``; spawned worker processes inherit it). The name is the
project's own: a bare ``tests`` or ``helpers`` package installed by some
wheel into site-packages would shadow a generic one."""
