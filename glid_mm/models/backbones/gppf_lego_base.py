"""The task-dynamic part of GPPF's lego backbones (Sec. 3.2, 3.3; eq. 1).

:class:`BaseLegoBackbone` holds what a lego backbone needs besides its
units: per-task controllers, Gumbel-Softmax sampling with a temperature, the
current task, fixed paths, selection probabilities, the evaluation path and
the flags of SIMT's aligned forward. A concrete backbone
(:class:`LegoResNet`, :class:`LegoSwinTransformer`) builds ``self.lego``, an
``nn.ModuleDict`` of :class:`LegoLayer` in forward order, then calls
:meth:`BaseLegoBackbone._init_controllers`, and in ``forward`` runs lego
layer ``l`` as ``run(l, x)`` with ``run = self._lego_runner()``.
"""
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from glid_mm.models.layers.gppf_cross_task_sync_bn import CrossTaskSyncBN


def _check_task_name(name) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f'task names must be Python identifiers (they key '
                         f'parameters), got {name!r}')


class BaseLegoBackbone(BaseModule):
    """Controllers, sampling and task routing of a lego backbone.

    GPPF Sec. 3.2 (Fig. 2a): ``L`` lego layers of ``N`` units each. For each
    task ``t`` and layer ``l`` a controller holds logits whose softmax is
    the selection probability ``p_l^t`` (initialised uniform); they are
    ``controllers[t]: [L, N]`` (state-dict key ``controllers.<t>``).

    - Training: weights ``u_l^t = gumbel_softmax(log p_l^t, tau)`` (eq. 1),
      one draw per layer per forward (:meth:`sample_weights`); soft mixing by
      default, straight-through one-hot samples with ``hard=True``.
    - Evaluation: the most probable unit of each layer (:meth:`path`).
    - Fixed paths (Sec. 3.3): a task in ``fixed_paths`` runs its path in
      training and evaluation (:meth:`fix_path`, :meth:`release_path`).
    - Task: set per forward by ``with backbone.using_task(t):``
      (:class:`GPPFMultiTaskModel` does it), else ``default_task`` or the
      only task (:attr:`current_task`).
    - SIMT with :class:`CrossTaskSyncBN`: in multi-process training every
      unit runs so that all processes call the same BN layers in the same
      order (:meth:`_aligned_forward`), and the SyncBN backward stays local
      when processes differentiate through different units
      (:meth:`_update_sync_backward`).

    Subclasses build ``self.lego`` (``nn.ModuleDict`` of :class:`LegoLayer`
    in forward order), call :meth:`_init_controllers` and implement
    :meth:`_path_state_dict` for :meth:`static_state_dict`.

    Args:
        task_names (Sequence[str]): Tasks with a controller (identifiers).
        num_units (int): Units per lego layer ``N``.
        default_task (str, optional): Task used when none is set.
        temperature (float): Initial Gumbel-Softmax temperature ``tau``.
            In training with :class:`GumbelTemperatureHook` (every GPPF
            config) the hook's schedule replaces it from the first
            iteration (a warning says so when they differ).
        hard (bool): Straight-through hard samples instead of soft mixing.
        init_cfg (dict or list[dict], optional): Passed to ``BaseModule``.
    """

    lego: nn.ModuleDict

    def __init__(self,
                 task_names: Sequence[str],
                 num_units: int,
                 default_task: Optional[str],
                 temperature: float,
                 hard: bool,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if isinstance(task_names, str) or len(task_names) == 0:
            raise ValueError(f'task_names must be a non-empty sequence of '
                             f'names, got {task_names!r}')
        for name in task_names:
            _check_task_name(name)
        if len(set(task_names)) != len(task_names):
            raise ValueError(f'task_names has duplicates: {task_names}')
        if not isinstance(num_units, int) or num_units < 1:
            raise ValueError(f'num_units must be a positive int, got '
                             f'{num_units!r}')
        if default_task is not None and default_task not in task_names:
            raise KeyError(f'default_task {default_task!r} is not in '
                           f'task_names {list(task_names)}')
        self.task_names = tuple(task_names)
        self.default_task = default_task
        self.num_units = num_units
        self.hard = bool(hard)
        self.set_temperature(temperature)
        self._task: Optional[str] = None

    def _init_controllers(
            self, fixed_paths: Optional[Dict[str, Sequence[int]]]) -> None:
        """Create ``controllers`` (zeros, ``[L, N]`` per task) and paths.

        Called by the subclass once ``self.lego`` holds every layer.
        """
        self.controllers = nn.ParameterDict({
            name:
            nn.Parameter(torch.zeros(self.num_layers, self.num_units))
            for name in self.task_names
        })
        self.fixed_paths: Dict[str, Tuple[int, ...]] = {}
        for name, path in (fixed_paths or {}).items():
            self.fix_path(name, path)
        self._has_cross_bn = any(
            isinstance(m, CrossTaskSyncBN) for m in self.modules())
        self._update_sync_backward()

    # ------------------------------------------------------------ tasks
    @property
    def num_layers(self) -> int:
        """Number of lego layers ``L``."""
        return len(self.lego)

    @property
    def layer_names(self) -> List[str]:
        """Lego layer names in forward order (``'stem'``, ...)."""
        return list(self.lego.keys())

    def _check_task(self, task: str) -> None:
        if task not in self.controllers:
            raise KeyError(f'unknown task {task!r}; {type(self).__name__} '
                           f'has controllers for {list(self.task_names)}')

    @property
    def current_task(self) -> str:
        """The task the next forward runs (see the class docstring)."""
        if self._task is not None:
            return self._task
        if self.default_task is not None:
            return self.default_task
        if len(self.task_names) == 1:
            return self.task_names[0]
        raise RuntimeError(
            f'{type(self).__name__} has tasks {list(self.task_names)} and no '
            f'current task: run it inside `with backbone.using_task(name):` '
            f'(as GPPFMultiTaskModel does from data_samples '
            f'metainfo["task"]) or set default_task')

    @contextmanager
    def using_task(self, task: str) -> Iterator[None]:
        """Run the forwards inside the ``with`` block for ``task``."""
        self._check_task(task)
        previous, self._task = self._task, task
        try:
            yield
        finally:
            self._task = previous

    def set_temperature(self, temperature: float) -> None:
        """Set the Gumbel-Softmax temperature ``tau`` (eq. 1), ``> 0``."""
        if not float(temperature) > 0:
            raise ValueError(f'Gumbel temperature must be > 0, got '
                             f'{temperature!r}')
        self.temperature = float(temperature)

    def selection_probs(self, task: str) -> torch.Tensor:
        """``p^t``: ``[L, N]`` softmax of the controller (detached)."""
        self._check_task(task)
        return self.controllers[task].detach().softmax(dim=-1)

    def path(self, task: str) -> List[int]:
        """The unit run per layer in evaluation: fixed path or argmax."""
        self._check_task(task)
        if task in self.fixed_paths:
            return list(self.fixed_paths[task])
        return self.controllers[task].detach().argmax(dim=-1).tolist()

    def fix_path(self,
                 task: str,
                 path: Optional[Sequence[int]] = None) -> List[int]:
        """Fix ``task``'s path (``None``: its current argmax path)."""
        self._check_task(task)
        if path is None:
            path = self.controllers[task].detach().argmax(dim=-1).tolist()
        path = [int(k) for k in path]
        if len(path) != self.num_layers:
            raise ValueError(f'path for task {task!r} has {len(path)} '
                             f'entries; {type(self).__name__} has '
                             f'{self.num_layers} lego layers '
                             f'{self.layer_names}')
        bad = [k for k in path if not 0 <= k < self.num_units]
        if bad:
            raise ValueError(f'path for task {task!r} has unit indices {bad} '
                             f'outside 0..{self.num_units - 1}')
        self.fixed_paths[task] = tuple(path)
        self._update_sync_backward()
        return path

    def release_path(self, task: str) -> None:
        """Let ``task`` select units by its controller again."""
        self._check_task(task)
        self.fixed_paths.pop(task, None)
        self._update_sync_backward()

    def _update_sync_backward(self) -> None:
        """Exact SyncBN backward only when every unit is in every graph.

        Soft mixing puts every unit in every process's autograd graph. With
        hard samples or fixed paths processes differentiate through
        different units, so a per-layer backward all-reduce would pair
        unrelated layers; :class:`CrossTaskSyncBN` then keeps its forward
        statistics cross-process and its backward local.
        """
        exact = not self.hard and not self.fixed_paths
        for module in self.modules():
            if isinstance(module, CrossTaskSyncBN):
                module.sync_backward = exact

    def _aligned_forward(self) -> bool:
        """Run every unit (SIMT with cross-process BN, in training)."""
        return (self.training and self._has_cross_bn and dist.is_available()
                and dist.is_initialized() and dist.get_world_size() > 1)

    def sample_weights(self, task: str) -> torch.Tensor:
        """Eq. 1: ``u^t = gumbel_softmax(log p^t, tau)``, ``[L, N]``.

        One Gumbel draw per layer; rows sum to 1. With ``hard=True`` rows
        are one-hot in value with the soft sample's gradient
        (straight-through). Softmax is shift invariant, so the controller
        logits stand for ``log p`` directly.
        """
        self._check_task(task)
        return F.gumbel_softmax(
            self.controllers[task],
            tau=self.temperature,
            hard=self.hard,
            dim=-1)

    # ------------------------------------------------------------ export
    def static_state_dict(self,
                          task: Optional[str] = None,
                          path: Optional[Sequence[int]] = None) -> dict:
        """The plain (static) backbone's state dict of one path.

        Give ``path`` (one unit index per lego layer) or ``task`` (its
        :meth:`path`); controllers are dropped. The keys are those of the
        subclass's plain counterpart (see :meth:`_path_state_dict`).
        """
        if (task is None) == (path is None):
            raise ValueError('give exactly one of task and path')
        if path is None:
            path = self.path(task)
        return self._path_state_dict(path)

    def _path_state_dict(self, path: Sequence[int]) -> dict:
        raise NotImplementedError(
            f'{type(self).__name__} does not export static paths')

    # ---------------------------------------------------------- forward
    def _lego_runner(self) -> Callable[[int, torch.Tensor], torch.Tensor]:
        """Route one forward pass of :attr:`current_task`.

        Decides once per forward what every lego layer runs (fixed path,
        one Gumbel sample of :meth:`sample_weights` in training, the argmax
        path in evaluation) and returns ``run(l, x)``, which applies lego
        layer ``l`` (index into :attr:`layer_names`) to ``x``; ``x`` and
        the result have whatever shape the layer's units take and return.
        """
        task = self.current_task
        weights, indices = None, None
        if task in self.fixed_paths:
            indices = self.fixed_paths[task]
        elif self.training:
            weights = self.sample_weights(task)
        else:
            indices = self.controllers[task].detach().argmax(-1).tolist()

        run_all = indices is not None and self._aligned_forward()
        layers = list(self.lego.values())

        def run(layer_idx: int, inputs: torch.Tensor) -> torch.Tensor:
            layer = layers[layer_idx]
            if indices is not None:
                return layer(inputs, index=indices[layer_idx], run_all=run_all)
            return layer(inputs, weights=weights[layer_idx], hard=self.hard)

        return run
