"""Optimizer parameter groups where model parts and parameter kinds
combine (a backbone learning-rate multiplier *and* no decay on norms)."""
from typing import List

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch.nn import GroupNorm, LayerNorm
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

_NORMS = (_BatchNorm, _InstanceNorm, GroupNorm, LayerNorm)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class PartwiseOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's ``DefaultOptimWrapperConstructor`` with ``custom_keys``
    resolved per multiplier, and the kind rules applied everywhere.

    mmengine gives a parameter the options of the *longest* custom key
    contained in its name and nothing else: with ``'backbone':
    dict(lr_mult=0.1)`` and ``'relative_position_bias_table':
    dict(decay_mult=0.)``, the backbone's position tables train at the full
    learning rate (the longer key has no ``lr_mult``), and
    ``norm_decay_mult`` skips every parameter a key matched, so backbone
    norms keep their weight decay. The fine-tuning recipes GLID follows
    (supp. Table 7: backbone lr x 0.1; Mask2Former / DETR: no decay on
    norms, position tables, queries and embeddings) want both, which
    mmseg's Swin Mask2Former configs get by listing every backbone norm
    with both multipliers. Here instead:

    - ``lr_mult`` comes from the longest matching key that sets
      ``lr_mult`` (else ``bias_lr_mult`` for non-norm biases, else 1);
    - ``decay_mult`` from the longest matching key that sets
      ``decay_mult`` (else 1), multiplied by the kind rule that mmengine
      would apply to an unmatched parameter (``norm_decay_mult`` for norm
      layers, else ``bias_decay_mult`` for biases, ``dwconv_decay_mult``,
      ``flat_decay_mult`` for other 1-D parameters).

    Other custom-key options are passed to the parameter group as mmengine
    does (from the longest matching key). Deformable-conv options
    (``dcn_offset_lr_mult``) are not supported (refused): use mmengine's
    constructor for models with DCN. Use it with
    ``optim_wrapper = dict(constructor='PartwiseOptimWrapperConstructor',
    ...)``; without keys that overlap it builds what mmengine builds.
    """

    def add_params(self,
                   params: List[dict],
                   module: nn.Module,
                   prefix: str = '',
                   is_dcn_module=None) -> None:
        """mmengine's groups (one per parameter), then learning rate and
        weight decay recomputed by the rule above."""
        if 'dcn_offset_lr_mult' in self.paramwise_cfg:
            raise ValueError(
                'PartwiseOptimWrapperConstructor does not handle '
                'paramwise_cfg.dcn_offset_lr_mult; use mmengine\'s '
                'DefaultOptimWrapperConstructor for it')
        super().add_params(params, module, prefix, is_dcn_module)
        if prefix:
            return  # recursion from the call on the whole model
        owners = {}
        for mod_name, mod in module.named_modules():
            for name, param in mod.named_parameters(recurse=False):
                full = f'{mod_name}.{name}' if mod_name else name
                owners.setdefault(id(param), (full, name, mod, param))
        for group in params:
            if len(group['params']) != 1 or \
                    id(group['params'][0]) not in owners:
                continue
            self._set_multipliers(group, *owners[id(group['params'][0])])

    def _set_multipliers(self, group: dict, full: str, name: str,
                         module: nn.Module, param: nn.Parameter) -> None:
        cfg = self.paramwise_cfg
        keys = cfg.get('custom_keys', {})
        matching = sorted(
            sorted(k for k in keys if k in full), key=len, reverse=True)

        def from_keys(option):
            for key in matching:
                if option in keys[key]:
                    return keys[key][option]
            return None

        is_norm = isinstance(module, _NORMS)
        is_bias = name == 'bias' and not is_norm
        lr_mult = from_keys('lr_mult')
        if lr_mult is None:
            lr_mult = cfg.get('bias_lr_mult') if is_bias else None
        group['lr'] = self.base_lr * (1. if lr_mult is None else lr_mult)
        if 'lr_mult' in group:
            group['lr_mult'] = 1. if lr_mult is None else lr_mult
        if self.base_wd is None:
            return
        decay_mult = from_keys('decay_mult')
        decay_mult = 1. if decay_mult is None else decay_mult
        is_dwconv = isinstance(module, nn.Conv2d) and \
            module.in_channels == module.groups
        if is_norm and cfg.get('norm_decay_mult') is not None:
            decay_mult *= cfg['norm_decay_mult']
        elif is_bias and cfg.get('bias_decay_mult') is not None:
            decay_mult *= cfg['bias_decay_mult']
        elif is_dwconv and cfg.get('dwconv_decay_mult') is not None:
            decay_mult *= cfg['dwconv_decay_mult']
        elif param.ndim == 1 and cfg.get('flat_decay_mult') is not None:
            decay_mult *= cfg['flat_decay_mult']
        group['weight_decay'] = self.base_wd * decay_mult
        if 'decay_mult' in group:
            group['decay_mult'] = decay_mult
