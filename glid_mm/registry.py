"""Where glid_mm's components live in the OpenMMLab registries.

Decision (made once, tested in ``tests/test_registry.py``): glid_mm has no
registry scope of its own. Every component is registered into the registry
of each toolbox that uses it (``mmdet``, ``mmseg``, ``mmpose``,
``mmpretrain``), as mmdet's own plug-ins do. Why: mmengine builds nested
components in the registry of the scope that is current when the outer one
is built, so a component dropped into a stock mmdet config must itself live
in mmdet's registry for its nested ``type=`` strings (mmdet losses,
assigners, ...) to resolve there. With ``custom_imports=dict(
imports=['glid_mm'], allow_failed_imports=False)`` a stock config then
builds our components by plain name (``type='BiFPN'``) and by the toolbox's
scope-qualified name (``type='mmdet.BiFPN'``).

Runtime pieces that are not toolbox specific (hooks, loops) go to mmengine's
root registries, which every toolbox registry falls back to.

Nested builds inside our components go through :func:`build_model`, which
resolves a ``type`` in the toolbox scope current at build time.
"""
from typing import Callable, Dict, Iterable, Optional, Sequence

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

TOOLBOXES = ('mmdet', 'mmseg', 'mmpose', 'mmpretrain')


def _toolbox_registries(kind: str) -> Dict[str, Registry]:
    from mmdet import registry as mmdet_registry
    from mmpose import registry as mmpose_registry
    from mmpretrain import registry as mmpretrain_registry
    from mmseg import registry as mmseg_registry
    modules = dict(
        mmdet=mmdet_registry,
        mmseg=mmseg_registry,
        mmpose=mmpose_registry,
        mmpretrain=mmpretrain_registry)
    return {
        scope: getattr(module, kind)
        for scope, module in modules.items() if hasattr(module, kind)
    }


class MultiScopeRegistry:
    """Registers one class into the same-kind registry of several toolboxes.

    Args:
        kind (str): Registry name in the toolboxes' ``registry`` modules,
            e.g. ``'MODELS'``, ``'DATASETS'``, ``'METRICS'``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def registries(self, scopes: Optional[Iterable[str]] = None
                   ) -> Dict[str, Registry]:
        available = _toolbox_registries(self.kind)
        scopes = TOOLBOXES if scopes is None else tuple(scopes)
        unknown = [s for s in scopes if s not in TOOLBOXES]
        if unknown:
            raise ValueError(f'unknown toolbox scope(s) {unknown}; '
                             f'known: {TOOLBOXES}')
        return {s: available[s] for s in scopes if s in available}

    def register_module(self,
                        name: Optional[str] = None,
                        scopes: Optional[Sequence[str]] = None,
                        force: bool = False) -> Callable:
        """Decorator registering a class in every scope of ``scopes``."""

        def _register(cls):
            for registry in self.registries(scopes).values():
                registry.register_module(name=name, force=force, module=cls)
            return cls

        return _register

    def __repr__(self) -> str:
        return f'MultiScopeRegistry({self.kind!r})'


MODELS = MultiScopeRegistry('MODELS')
DATASETS = MultiScopeRegistry('DATASETS')
TRANSFORMS = MultiScopeRegistry('TRANSFORMS')
METRICS = MultiScopeRegistry('METRICS')
TASK_UTILS = MultiScopeRegistry('TASK_UTILS')


def build_model(cfg: dict, default_scope: str = 'mmdet'):
    """Build ``cfg`` from the MODELS registry of the current toolbox scope.

    Inside a runner (or any ``DefaultScope``) the registry of that scope is
    used, so a nested ``type`` resolves exactly as the stock toolbox would
    resolve it; outside any scope (plain Python use) ``default_scope``'s.
    """
    from mmengine.registry import DefaultScope
    current = DefaultScope.get_current_instance()
    scope = current.scope_name if current is not None else default_scope
    registries = _toolbox_registries('MODELS')
    registry = registries.get(scope, MMENGINE_MODELS)
    return registry.build(cfg)
