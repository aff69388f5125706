"""Where glid_mm's components live in the OpenMMLab registries.

Registration (decided once, tested in ``tests/test_registry.py``): glid_mm
has no registry scope of its own. Every component is registered into the
registry of each *installed* toolbox that uses it (``mmdet``, ``mmseg``,
``mmpose``, ``mmpretrain``), as mmdet's own plug-ins do. Why: mmengine
builds nested components in the registry of the scope that is current when
the outer one is built, so a component dropped into a stock mmdet config
must itself live in mmdet's registry. With ``custom_imports=dict(
imports=['glid_mm'], allow_failed_imports=False)`` a stock config then
builds our components by plain name (``type='BiFPN'``) and by the toolbox's
scope-qualified name (``type='mmdet.BiFPN'``). Runtime pieces that are not
toolbox specific (hooks, loops, wrappers, samplers) go to mmengine's root
registries, which every toolbox registry falls back to.

``import glid_mm`` needs mmengine, mmcv and any subset of the four
toolboxes: a module that needs a toolbox that is not installed is not
imported (see :func:`available`), and its components are not registered.

Nested builds, one rule (:func:`build_nested`, used by every component that
builds a sub-component from a config):

1. ``type='scope.Name'`` is built in that toolbox's registry;
2. otherwise in the component's *home* toolbox, the one whose interface its
   code calls (mmdet for the mask head's assigner and losses, mmseg for the
   depth head's loss, mmpretrain for the pre-training heads' losses, ...),
   so that a plain ``type='CrossEntropyLoss'`` means the loss the code was
   written against even when the model is built under another toolbox's
   default scope;
3. if the home registry does not know the name (or the component has no
   home, e.g. a backbone slot), in the registry of the current default
   scope, so that a user's own registered types resolve as their toolbox
   would resolve them; outside any scope, mmdet's.
"""
import copy
import importlib.util
from typing import Callable, Dict, Iterable, Optional, Sequence

from mmengine.registry import DefaultScope, Registry

TOOLBOXES = ('mmdet', 'mmseg', 'mmpose', 'mmpretrain')

#: toolboxes that import another at import time: mmpose 1.3's
#: ``mmpose.models`` imports mmdet (RTMO head), so mmpose without mmdet
#: cannot build models
_NEEDS = dict(mmpose=('mmdet', ))


def available(*toolboxes: str) -> bool:
    """Whether every toolbox of ``toolboxes`` is installed (importable,
    with the toolboxes it imports itself)."""
    unknown = [t for t in toolboxes if t not in TOOLBOXES]
    if unknown:
        raise ValueError(f'unknown toolbox(es) {unknown}; known: {TOOLBOXES}')
    return all(
        importlib.util.find_spec(t) is not None and all(
            importlib.util.find_spec(n) is not None for n in _NEEDS.get(t, ()))
        for t in toolboxes)


def installed_toolboxes() -> tuple:
    """The toolboxes of :data:`TOOLBOXES` that are installed."""
    return tuple(t for t in TOOLBOXES if available(t))


def _toolbox_registries(kind: str) -> Dict[str, Registry]:
    """``{scope: registry}`` of the registries named ``kind`` of the
    installed toolboxes (``MODELS``, ``DATASETS``, ...)."""
    out = {}
    for scope in installed_toolboxes():
        module = importlib.import_module(f'{scope}.registry')
        if hasattr(module, kind):
            out[scope] = getattr(module, kind)
    return out


class MultiScopeRegistry:
    """Registers one class into the same-kind registry of several toolboxes.

    Args:
        kind (str): Registry name in the toolboxes' ``registry`` modules,
            e.g. ``'MODELS'``, ``'DATASETS'``, ``'METRICS'``.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def registries(
            self,
            scopes: Optional[Iterable[str]] = None) -> Dict[str, Registry]:
        """The registries of ``scopes`` (default: all four) that exist."""
        scopes = TOOLBOXES if scopes is None else tuple(scopes)
        unknown = [s for s in scopes if s not in TOOLBOXES]
        if unknown:
            raise ValueError(f'unknown toolbox scope(s) {unknown}; '
                             f'known: {TOOLBOXES}')
        available_ = _toolbox_registries(self.kind)
        return {s: available_[s] for s in scopes if s in available_}

    def register_module(self,
                        name: Optional[str] = None,
                        scopes: Optional[Sequence[str]] = None,
                        force: bool = False) -> Callable:
        """Decorator registering a class in every installed scope of
        ``scopes`` (default: all four)."""

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


def current_scope(default: str = 'mmdet') -> str:
    """The current default scope's name, ``default`` outside any scope."""
    current = DefaultScope.get_current_instance()
    return current.scope_name if current is not None else default


def build_nested(cfg,
                 kind: str = 'MODELS',
                 home: Optional[str] = None,
                 default_args: Optional[dict] = None):
    """Build a sub-component from ``cfg`` by the rule in this module's
    docstring (explicit scope, then ``home``, then the current scope).

    Args:
        cfg (dict | nn.Module | None): The config; a built object or None is
            returned unchanged.
        kind (str): Registry name (``'MODELS'``, ``'TASK_UTILS'``,
            ``'TRANSFORMS'``, ``'DATASETS'``, ``'TOKENIZER'``).
        home (str, optional): The toolbox whose interface the caller uses.
        default_args (dict, optional): Passed to ``Registry.build``.
    """
    if not isinstance(cfg, dict):
        return cfg
    if 'type' not in cfg:
        raise TypeError(f'a config to build needs a "type", got {cfg!r}')
    registries = _toolbox_registries(kind)
    if not registries:
        from mmengine import registry as root
        registries = {'mmengine': getattr(root, kind)}
    cfg = copy.deepcopy(cfg)
    type_ = cfg['type']
    scope = cfg.get('_scope_')
    if scope is None and isinstance(type_, str) and '.' in type_:
        prefix = type_.split('.', 1)[0]
        if prefix in registries:
            scope = prefix
    if scope is not None:
        order = [scope]
    else:
        order = [s for s in (home, current_scope()) if s is not None]
    if home is not None and home not in registries:
        raise ImportError(f'building {type_!r} needs {home}, which is not '
                          'installed')
    current = current_scope()
    for name in order:
        registry = registries.get(name)
        if registry is None:
            continue
        if not isinstance(type_, str) or scope is not None or \
                registry.get(type_) is not None:
            if name != current and scope is None:
                # mmengine builds in the *current* scope's registry, whatever
                # registry ``build`` is called on: switch scope explicitly
                # (nested builds of the built object then resolve there too)
                cfg['_scope_'] = name
            return registry.build(cfg, default_args=default_args)
    searched = [s for s in order if s in registries]
    raise KeyError(f'{type_!r} is not registered in the {kind} registry of '
                   f'{", ".join(searched)} (searched in that order; see '
                   'glid_mm.registry for the rule)')


def build_model(cfg: dict, default_scope: str = 'mmdet'):
    """Build ``cfg`` from the MODELS registry of the current toolbox scope
    (``default_scope``'s outside any scope): :func:`build_nested` with no
    home."""
    if DefaultScope.get_current_instance() is None:
        return build_nested(cfg, 'MODELS', home=default_scope)
    return build_nested(cfg, 'MODELS')
