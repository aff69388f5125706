"""M3I Pre-training: mixed inputs, several targets, one stage (Sec. 3.4)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from mmpretrain.models.selfsup import BaseSelfSupervisor, MAEViT
from mmpretrain.models.utils import CosineEMA
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from glid_mm.models.layers.m3i_geometry import (boxes_from_samples,
                                                gather_tokens, grid_coords,
                                                relative_patch_coords)
from glid_mm.models.losses.m3i_losses import (contrastive_loss,
                                              dense_feature_loss)
from glid_mm.registry import MODELS, build_nested

LOSS_GROUPS = ('intra', 'inter', 'cls', 'text')


@MODELS.register_module(scopes=('mmpretrain', ))
class M3I(BaseSelfSupervisor):
    """M3I Pre-training (Su et al., CVPR 2023), ViT version.

    Two inputs, four targets (Sec. 3.4, Fig. 2). For a mini-batch of input
    views ``x`` and target views ``y`` (one of each per image, from
    :class:`~glid_mm.datasets.transforms.M3ITwoViews`):

    1. ``mixer`` mixes ``x[k]`` with ``x[j]``, ``j = sigma(k)``, patch-wise;
       the encoder (a stock mmpretrain ``MAEViT``, no token dropping) sees
       the mixed image. Its tokens are split by the mix mask into image
       ``k``'s visible tokens and image ``j``'s.
    2. Target encoder: a momentum copy of the encoder (mmpretrain
       ``CosineEMA``; SiameseIM's momentum 0.995 rising to 1 on a cosine
       schedule) gives layer-normalised dense features of the views.
    3. Targets, one loss each, summed with ``loss_weights`` (eq. 4):

       * ``intra``: image ``k`` predicts the features of the view it shows
         (its target view ``y[k]`` by default, see ``target_views``) at
         its hidden patches (same view, Tab. 2 (e) MIM_feat);
       * ``inter``: image ``j`` predicts the features of its *target* view
         ``y[j]``, the decoder queries sitting at ``y[j]``'s patch centres
         relative to ``x[j]``'s top-left origin (Tab. 2 (k) SiameseIM_feat);
       * ``cls``: both images predict their class through attention pooling
         over their own tokens and a linear classifier (samples without a
         ``gt_label`` are skipped); the two images' losses are summed, as
         eq. 4 sums every target;
       * ``text`` (optional): both images predict their caption's embedding
         from a jointly trained text encoder (symmetric InfoNCE). No text
         encoder ships with glid_mm (none is available offline): enabling
         this group requires ``text_encoder`` and ``text_head``.

    ``mixer=None`` is Tab. 3's "w/o mix": one masked input (MAEViT's own
    random masking at ``backbone.mask_ratio``, tokens dropped as in
    SiameseIM) predicting the inter-view target and the class; ``intra`` is
    then MIM on the same view and may also be switched on.

    Choices the paper leaves open: the image-target decoder is shared by the
    intra- and inter-view groups (the paper names one 4-layer decoder); the
    encoder attends across the two images of a mixed input (the paper
    encodes ``f(I_mix)`` with a plain ViT); targets are the momentum
    encoder's last-layer patch tokens (SiameseIM adds a projector; M3I names
    only "the momentum input image backbone"). Targets follow Sec. 3.3 by
    default (``target_views='shared'``: the first image of a mix shows its
    target view, so one momentum forward per image serves both dense
    groups); ``'separate'`` keeps both images on their input views at the
    cost of a second momentum forward on ``x`` (``2B`` per step).

    Args:
        backbone (dict): ``MAEViT`` config (``out_type='raw'``); its
            ``mask_ratio`` only with ``mixer=None`` (refused otherwise: it
            would do nothing).
        neck (dict, optional): :class:`M3IDecoder` for the image targets;
            required iff ``intra`` or ``inter`` is on.
        head (dict, optional): :class:`M3IAttentionPoolHead` for the class
            target; required iff ``cls`` is on.
        mixer (dict, optional): :class:`M3IMixer` config; None = w/o mix.
            Defaults to ``dict(type='M3IMixer')``.
        loss_weights (dict): Weight per group in ``('intra', 'inter', 'cls',
            'text')``; 0 or absent switches a group off. Defaults to
            ``dict(intra=1., inter=1., cls=1.)``.
        momentum (float): Start EMA momentum (weight of the old value).
            Defaults to 0.995 (SiameseIM).
        end_momentum (float): Final momentum of the cosine schedule.
            Defaults to 1.0 (SiameseIM).
        neg_weight (float): UniGrad negative term of the dense loss.
            Defaults to 0.02 (SiameseIM).
        text_encoder (dict, optional): Module mapping ``List[str]`` to
            ``[B, D]``; required iff ``text`` is on.
        text_head (dict, optional): :class:`M3IAttentionPoolHead` with
            ``num_classes=D``; required iff ``text`` is on.
        text_key (str): Data-sample field holding the caption. Defaults to
            ``'gt_caption'``.
        target_views (str): With the mixer: ``'shared'`` (Sec. 3.3: the
            first image of a mix shows its target view ``y_k`` and predicts
            it, the partner shows its input view ``x_j`` and predicts
            ``y_j``; one momentum forward per image, ``N`` per batch) or
            ``'separate'`` (both images show their input views ``x``; the
            intra target is the momentum encoding of ``x_k``, so ``2N``
            target forwards). Defaults to ``'shared'``.
        data_preprocessor (dict, optional): Defaults to
            ``SelfSupDataPreprocessor``.
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 mixer: Optional[dict] = dict(type='M3IMixer'),
                 loss_weights: Dict[str,
                                    float] = dict(intra=1., inter=1., cls=1.),
                 momentum: float = 0.995,
                 end_momentum: float = 1.0,
                 neg_weight: float = 0.02,
                 text_encoder: Optional[dict] = None,
                 text_head: Optional[dict] = None,
                 text_key: str = 'gt_caption',
                 target_views: str = 'shared',
                 data_preprocessor: Optional[Union[dict, nn.Module]] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        weights = self._check_weights(loss_weights)
        if target_views not in ('shared', 'separate'):
            raise ValueError("M3I: target_views must be 'shared' or "
                             f"'separate', got {target_views!r}")
        if mixer is not None and isinstance(backbone, dict) and \
                'mask_ratio' in backbone:
            raise ValueError(
                f'M3I: backbone.mask_ratio={backbone["mask_ratio"]!r} has no '
                'effect with the mixer (the mix mask hides the tokens, '
                'mixer.mix_ratio sets the split): remove it, or set '
                'mixer=None for the w/o-mix variant that masks in the '
                'encoder')
        self._check_parts(
            weights,
            neck=neck,
            head=head,
            text_encoder=text_encoder,
            text_head=text_head)
        for name, value in (('momentum', momentum), ('end_momentum',
                                                     end_momentum)):
            if not 0. <= float(value) <= 1.:
                raise ValueError(f'M3I: {name} must lie in [0, 1], got '
                                 f'{name}={value!r}')
        if float(neg_weight) < 0:
            raise ValueError(f'M3I: neg_weight must be >= 0, got '
                             f'neg_weight={neg_weight!r}')
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if not isinstance(self.backbone, MAEViT):
            raise TypeError('M3I: backbone must be an mmpretrain MAEViT '
                            f'(got {type(self.backbone).__name__})')
        if self.backbone.out_type != 'raw':
            raise ValueError("M3I: backbone.out_type must be 'raw', got "
                             f'{self.backbone.out_type!r}')
        channels = self.backbone.embed_dims
        for name, part in (('neck', self.neck), ('head', self.head)):
            if part is not None and part.in_channels != channels:
                raise ValueError(f'M3I: {name}.in_channels='
                                 f'{part.in_channels} must equal the '
                                 f'backbone width {channels}')
        self.loss_weights = weights
        self.target_views = target_views
        self.neg_weight = float(neg_weight)
        self.grid = tuple(self.backbone.patch_resolution)
        self.mixer = None
        if mixer is not None:
            self.mixer = build_nested(mixer, home='mmpretrain')
            enc_patch = self.backbone.patch_embed.init_input_size[0] // \
                self.grid[0]
            if self.mixer.patch_size % enc_patch:
                raise ValueError(
                    f'M3I: mixer.patch_size={self.mixer.patch_size} must be '
                    f'a multiple of the encoder patch size {enc_patch}')
            self._token_per_patch = self.mixer.patch_size // enc_patch
        # momentum target encoder (SiameseIM: 0.995 -> 1, cosine);
        # CosineEMA's momentum is the weight of the *new* value.
        self.target_generator = CosineEMA(
            self.backbone,
            momentum=1. - float(momentum),
            end_momentum=1. - float(end_momentum))
        self.text_key = text_key
        self.text_encoder = self.text_head = None
        if weights.get('text', 0.) > 0:
            self.text_encoder = build_nested(text_encoder, home='mmpretrain')
            self.text_head = build_nested(text_head, home='mmpretrain')
            if self.text_head.in_channels != channels:
                raise ValueError(f'M3I: text_head.in_channels='
                                 f'{self.text_head.in_channels} must equal '
                                 f'the backbone width {channels}')
            self.logit_scale = nn.Parameter(torch.tensor(math.log(
                1 / 0.07)))  # CLIP's initial value

    @staticmethod
    def _check_weights(loss_weights: Dict[str, float]) -> Dict[str, float]:
        if not isinstance(loss_weights, dict):
            raise TypeError('M3I: loss_weights must be a dict keyed by '
                            f'{LOSS_GROUPS}, got {loss_weights!r}')
        unknown = sorted(set(loss_weights) - set(LOSS_GROUPS))
        if unknown:
            raise ValueError(f'M3I: unknown loss_weights key(s) {unknown}; '
                             f'known: {LOSS_GROUPS}')
        weights = {k: float(v) for k, v in loss_weights.items()}
        bad = {k: v for k, v in weights.items() if v < 0}
        if bad:
            raise ValueError(f'M3I: loss_weights must be >= 0, got {bad}')
        if not any(v > 0 for v in weights.values()):
            raise ValueError('M3I: every loss weight is 0; switch on at least '
                             f'one of {LOSS_GROUPS}')
        return weights

    @staticmethod
    def _check_parts(weights, **parts) -> None:
        on = {k for k, v in weights.items() if v > 0}
        needs = dict(
            neck=bool(on & {'intra', 'inter'}),
            head='cls' in on,
            text_encoder='text' in on,
            text_head='text' in on)
        groups = dict(
            neck="'intra'/'inter'",
            head="'cls'",
            text_encoder="'text'",
            text_head="'text'")
        for name, needed in needs.items():
            if needed and parts[name] is None:
                extra = ' (no text encoder ships with glid_mm; pass your ' \
                    'own module config)' if name.startswith('text') else ''
                raise ValueError(f'M3I: loss group {groups[name]} is on but '
                                 f'{name}=None{extra}')
            if not needed and parts[name] is not None:
                raise ValueError(f'M3I: {name} is given but loss group '
                                 f'{groups[name]} is off (weight 0); remove '
                                 f'{name} or give the group a weight')

    def extract_feat(self, inputs: Tensor) -> Tuple[Tensor]:
        """Encoder features of unmasked images, ``([B, 1 + L, C], )``."""
        return self.backbone(inputs, mask=None)

    def _on(self, group: str) -> bool:
        return self.loss_weights.get(group, 0.) > 0

    def _update_target(self) -> None:
        if MessageHub.get_current_instance().get_info('max_iters') is None:
            raise RuntimeError(
                "M3I: the momentum schedule needs MessageHub info "
                "'max_iters' (set by the runner's RuntimeInfoHook; outside "
                "a runner call MessageHub.get_current_instance()."
                "update_info('max_iters', N))")
        self.target_generator.update_parameters(self.backbone)

    @torch.no_grad()
    def _targets(self, images: Tensor) -> Tensor:
        """Layer-normalised momentum features ``[B, L, C]``."""
        feats = self.target_generator(images, mask=None)[0][:, 1:]
        return F.layer_norm(feats.float(), feats.shape[-1:])

    def _encode(self, x: Tensor, partners: Optional[Tensor] = None):
        """Encode; split tokens into per-image visible sets (``partners``:
        the views the partner images contribute to a mix, default ``x``).

        Returns the class token ``[B, 1, C]``, a list of views ``(tokens
        [B, V, C], positions [B, V], image index [B])``, the positions
        hidden from image ``k`` ``[B, K]`` and ``sigma [B]``.
        """
        B = x.size(0)
        arange = torch.arange(B, device=x.device)
        if self.mixer is None:  # w/o mix: MAEViT drops masked tokens
            tokens, _, ids_restore = self.backbone(x, mask=True)
            keep = tokens.size(1) - 1
            order = ids_restore.argsort(dim=1)
            own_idx, hidden_idx = order[:, :keep], order[:, keep:]
            views = [(tokens[:, 1:], own_idx, arange)]
            return tokens[:, :1], views, hidden_idx, arange
        mixed, mask, sigma = self.mixer(x, partners=partners)
        t = self._token_per_patch
        mask = mask.repeat_interleave(t, 1).repeat_interleave(t, 2)
        mask = mask.flatten(1)  # [B, L], True = from sigma(k)
        tokens = self.backbone(mixed, mask=None)[0]
        order = mask.int().argsort(dim=1, stable=True)
        n_own = int((~mask[0]).sum())
        own_idx, hidden_idx = order[:, :n_own], order[:, n_own:]
        patches = tokens[:, 1:]
        views = [(gather_tokens(patches, own_idx), own_idx, arange),
                 (gather_tokens(patches, hidden_idx), hidden_idx, sigma)]
        return tokens[:, :1], views, hidden_idx, sigma

    def _labels(self, data_samples: Sequence[DataSample], device) -> Tensor:
        labels = [
            int(s.gt_label[0]) if 'gt_label' in s and len(s.gt_label) else -1
            for s in data_samples
        ]
        return torch.tensor(labels, dtype=torch.long, device=device)

    def loss(self, inputs: List[Tensor],
             data_samples: List[DataSample]) -> Dict[str, Tensor]:
        """Eq. (4): weighted sum of the groups' prediction losses.

        Args:
            inputs (list[Tensor]): ``[x, y]``, input and target views
                ``[B, 3, H, W]`` each.
            data_samples (list[DataSample]): with ``m3i_boxes``,
                ``m3i_flips`` and optionally ``gt_label`` / the caption.

        Returns:
            dict: ``loss_<group>`` (weighted) for every group that is on.
        """
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError('M3I: inputs must be [input views, target '
                             'views] (pipeline M3ITwoViews), got '
                             f'{type(inputs).__name__} of length '
                             f'{len(inputs)}')
        x, y = inputs
        self._update_target()
        shared = self.target_views == 'shared' and self.mixer is not None
        if shared:
            # Sec. 3.3: the first image shows its target view (x_k = y_k)
            # and predicts it (intra), its partner shows its input view
            # and predicts its target view (inter): N target forwards
            cls_token, views, hidden_idx, sigma = self._encode(y, partners=x)
            need = [y] if self._on('intra') or self._on('inter') else []
        else:
            cls_token, views, hidden_idx, sigma = self._encode(x)
            need = [v for v, g in ((x, 'intra'), (y, 'inter')) if self._on(g)]
        grid = grid_coords(self.grid, device=x.device)  # [L, 2]
        # one momentum forward for the views the active groups need
        targets = self._targets(torch.cat(need)).split(x.size(0)) \
            if need else ()
        losses = {}
        if self._on('intra'):
            own, own_idx, _ = views[0]
            pred = self.neck(own, grid[own_idx], grid[hidden_idx],
                             torch.ones(x.size(0), 2, device=x.device),
                             cls_token)
            target = gather_tokens(targets[0], hidden_idx)
            losses['loss_intra'] = self.loss_weights['intra'] * \
                dense_feature_loss(pred, target, self.neg_weight)
        if self._on('inter'):
            boxes, flips = boxes_from_samples(data_samples, x.device)
            coords, scales = relative_patch_coords(boxes[:, 0], flips[:, 0],
                                                   boxes[:, 1], flips[:, 1],
                                                   self.grid)
            tokens, idx, image = views[-1]  # partner view (own if w/o mix)
            pred = self.neck(tokens, grid[idx], coords[image], scales[image],
                             cls_token)
            target = targets[-1][image]
            losses['loss_inter'] = self.loss_weights['inter'] * \
                dense_feature_loss(pred, target, self.neg_weight)
        if self._on('cls'):
            labels = self._labels(data_samples, x.device)
            # eq. 4 sums the targets of every input image: each image of
            # the mix (its own view's tokens) adds its category loss, not
            # their mean
            loss = sum(
                self.head.loss(tokens, labels[image])
                for tokens, _, image in views)
            losses['loss_cls'] = self.loss_weights['cls'] * loss
        if self._on('text'):
            losses['loss_text'] = self.loss_weights['text'] * \
                self._text_loss(views, data_samples)
        return losses

    def _text_loss(self, views, data_samples: Sequence[DataSample]) -> Tensor:
        texts = []
        for i, sample in enumerate(data_samples):
            if self.text_key not in sample:
                raise KeyError(f"M3I: the 'text' group needs a "
                               f"'{self.text_key}' caption in every data "
                               f'sample; sample {i} has none')
            texts.append(sample.get(self.text_key))
        text_emb = self.text_encoder(texts)  # [B, D]
        # summed over the mixed images, as every target of eq. 4
        return sum(
            contrastive_loss(
                self.text_head(tokens), text_emb[image], self.logit_scale)
            for tokens, _, image in views)
