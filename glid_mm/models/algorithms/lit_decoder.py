"""LiT decoder: a multi-task text decoder on an (optionally frozen) encoder.

"A Study of Autoregressive Decoders for Multi-Tasking in Computer Vision":
an image encoder gives a token sequence, a small autoregressive Transformer
decoder cross-attends to it and writes the answer as text, told the task by
a prompt ``task: label`` (Sec. 3, 4.2). Table 1's variants are the
``conditioning`` argument; Sec. 5.7's encoder modes are ``encoder_mode``.
"""
import json
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmpretrain.structures import DataSample

from glid_mm.models.decoders.lit_decoding import (beam_search,
                                                  best_of_n_decode,
                                                  check_sampling_args,
                                                  sample_decode, score_classes)
from glid_mm.registry import MODELS, build_nested

ENCODER_MODES = ('frozen', 'finetune', 'scratch')
CONDITIONINGS = ('task', 'category', 'none')
STRATEGIES = dict(
    greedy=dict(use_cache=True),
    sample=dict(
        temperature=1., top_k=0, top_p=1., seed=0, num_samples=1, alpha=0.),
    beam=dict(num_beams=4, alpha=0.1),
    score=dict(classes=None, chunk_size=64))


@MODELS.register_module(scopes=('mmpretrain', ))
class LiTDecoder(BaseModel):
    """Image encoder + autoregressive text decoder (LiT decoder).

    Args:
        backbone (dict): mmpretrain backbone config (e.g. ``ResNet`` or
            ``VisionTransformer`` with ``out_type='raw'``). A ``[B, C, H, W]``
            map is flattened to ``H*W`` tokens; ``[B, N, C]`` tokens are used
            as they are.
        decoder (dict): :class:`LiTTextDecoder` config without
            ``vocab_size`` and ``max_length`` (filled in here).
        tokenizer (dict): Tokenizer config. Defaults to
            ``dict(type='LiTBPETokenizer')``. Its state is saved in the
            checkpoint (``state_dict()['_extra_state']``).
        encoder_mode (str): ``'frozen'`` (LiT decoder, the default: no
            gradient, the encoder stays in eval mode), ``'finetune'``
            (trained; give it ``lr_mult=0.1`` with ``paramwise_cfg``, App. F)
            or ``'scratch'`` (trained from random init; a ``Pretrained``
            ``init_cfg`` is rejected). Sec. 5.7.
        conditioning (str): ``'task'`` (prompt ``<task> :``, Sec. 4.2),
            ``'category'`` (prompt ``<cls> :`` etc.) or ``'none'``
            (Table 1 rows). Defaults to ``'task'``.
        max_length (int): Longest token sequence incl. ``<bos>`` (Sec. 4: 64).
        label_smoothing (float): Sec. 4.2: 0.1.
        backbone_out_index (int): Which backbone output to use. Default -1.
        decode_cfg (dict, optional): ``{'default': {...}, task: {...}}``, each
            ``dict(strategy=..., **args)`` with strategy ``'greedy'``,
            ``'sample'`` (``temperature``, ``top_k``, ``top_p``, ``seed``;
            ``num_samples`` > 1 keeps the most likely of that many samples,
            length-normalised with ``alpha``, Sec. 5.8 / Fig. 8),
            ``'beam'`` (``num_beams``, ``alpha``) or ``'score'``
            (``classes``; by default the task's training labels). Defaults to
            greedy everywhere (Sec. 5.8 uses beam 4 / alpha 0.1 for
            captioning and OCR).
        data_preprocessor (dict, optional): Defaults to
            ``dict(type='MultiModalDataPreprocessor')`` (normalises images,
            leaves the text fields alone).
        init_cfg (dict, optional): mmengine init config.

    Data samples carry ``task`` and ``task_category`` (str), optionally
    ``question`` (str), and for training ``gt_text`` (str); predictions are
    written to ``pred_text`` (and ``pred_caption`` for mmpretrain's metric).
    """

    def __init__(self,
                 backbone: dict,
                 decoder: dict,
                 tokenizer: dict = dict(type='LiTBPETokenizer'),
                 encoder_mode: str = 'frozen',
                 conditioning: str = 'task',
                 max_length: int = 64,
                 label_smoothing: float = 0.1,
                 backbone_out_index: int = -1,
                 decode_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if encoder_mode not in ENCODER_MODES:
            raise ValueError(f'encoder_mode={encoder_mode!r} is not one of '
                             f'{ENCODER_MODES}')
        if conditioning not in CONDITIONINGS:
            raise ValueError(f'conditioning={conditioning!r} is not one of '
                             f'{CONDITIONINGS}')
        if not 0. <= label_smoothing < 1.:
            raise ValueError(f'label_smoothing must be in [0, 1), got '
                             f'{label_smoothing!r}')
        if not isinstance(max_length, int) or max_length < 4:
            raise ValueError(f'max_length must be an int >= 4, got '
                             f'{max_length!r}')
        if data_preprocessor is None:
            data_preprocessor = dict(type='MultiModalDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = build_nested(
                data_preprocessor, home='mmpretrain')
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        backbone_init = (backbone.get('init_cfg') or {})
        pretrained = isinstance(backbone_init, dict) and \
            backbone_init.get('type') == 'Pretrained'
        if encoder_mode == 'scratch' and pretrained:
            raise ValueError("encoder_mode='scratch' trains the encoder from "
                             'random init, but backbone.init_cfg loads '
                             f'{backbone_init.get("checkpoint")!r}')
        if encoder_mode != 'scratch' and not pretrained:
            print_log(
                f"LiTDecoder: encoder_mode='{encoder_mode}' but the backbone "
                'has no Pretrained init_cfg: the encoder starts random '
                'unless load_from provides it',
                logger='current')
        self.encoder_mode = encoder_mode
        self.conditioning = conditioning
        self.max_length = max_length
        self.label_smoothing = label_smoothing
        self.backbone_out_index = backbone_out_index
        self.tokenizer = build_nested(
            tokenizer, 'TOKENIZER', home='mmpretrain')
        self.backbone = build_nested(backbone, home='mmpretrain')
        decoder = dict(decoder)
        for key, val in dict(
                vocab_size=self.tokenizer.vocab_size,
                max_length=max_length).items():
            if decoder.setdefault(key, val) != val:
                raise ValueError(f'decoder.{key}={decoder[key]} conflicts '
                                 f'with {val} set by the LiTDecoder')
        self.decoder = build_nested(decoder, home='mmpretrain')
        self.decode_cfg = self._check_decode_cfg(decode_cfg or {})
        if encoder_mode == 'frozen':
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    # ------------------------------------------------------------ settings
    @staticmethod
    def _check_decode_cfg(decode_cfg: dict) -> Dict[str, dict]:
        out = {'default': dict(strategy='greedy', use_cache=True)}
        for task, cfg in decode_cfg.items():
            cfg = dict(cfg)
            strategy = cfg.pop('strategy', None)
            if strategy not in STRATEGIES:
                raise ValueError(f'decode_cfg[{task!r}].strategy={strategy!r}'
                                 f' is not one of {sorted(STRATEGIES)}')
            unknown = set(cfg) - set(STRATEGIES[strategy])
            if unknown:
                raise ValueError(f'decode_cfg[{task!r}] has keys '
                                 f'{sorted(unknown)} that {strategy!r} does '
                                 f'not take; allowed: '
                                 f'{sorted(STRATEGIES[strategy])}')
            full = dict(STRATEGIES[strategy], **cfg, strategy=strategy)
            if strategy == 'sample':
                check_sampling_args(full['temperature'], full['top_k'],
                                    full['top_p'])
                if not isinstance(full['num_samples'], int) or \
                        full['num_samples'] < 1 or full['alpha'] < 0:
                    raise ValueError(
                        f'decode_cfg[{task!r}]: num_samples must be an int '
                        f'>= 1 and alpha >= 0, got {full}')
            if strategy == 'beam' and (not isinstance(full['num_beams'], int)
                                       or full['num_beams'] < 1
                                       or full['alpha'] < 0):
                raise ValueError(f'decode_cfg[{task!r}]: num_beams must be '
                                 f'an int >= 1 and alpha >= 0, got {full}')
            out[task] = full
        return out

    def train(self, mode: bool = True) -> 'LiTDecoder':
        """Keep a frozen encoder in eval mode (BN statistics, dropout)."""
        super().train(mode)
        if self.encoder_mode == 'frozen':
            self.backbone.eval()
        return self

    # ---------------------------------------------- tokenizer in checkpoint
    def get_extra_state(self) -> torch.Tensor:
        """Tokenizer state as UTF-8 JSON bytes in a uint8 tensor (survives
        ``weights_to_cpu`` and weights-only ``torch.load``)."""
        if not self.tokenizer.is_trained:
            return torch.zeros(0, dtype=torch.uint8)
        data = json.dumps(self.tokenizer.state_dict()).encode('utf-8')
        return torch.frombuffer(bytearray(data), dtype=torch.uint8).clone()

    def set_extra_state(self, state: torch.Tensor) -> None:
        if state.numel() == 0:
            return
        data = bytes(state.cpu().tolist())
        self.tokenizer.load_state_dict(json.loads(data.decode('utf-8')))

    def train_tokenizer(self, corpus: dict) -> None:
        """Train the tokenizer on ``corpus = dataset.get_text_corpus()``:
        ``dict(texts=[...], tasks={task: category}, labels={task: [...]})``.
        """
        prompts = set(corpus['tasks']) | set(corpus['tasks'].values())
        self.tokenizer.train(corpus['texts'], prompts, corpus.get('labels'))

    # -------------------------------------------------------------- encoder
    def extract_feat(self, images: torch.Tensor) -> torch.Tensor:
        """Image tokens ``[B, N, C]`` from ``images: [B, 3, H, W]``."""
        if self.encoder_mode == 'frozen':
            with torch.no_grad():
                feats = self.backbone(images)
        else:
            feats = self.backbone(images)
        if isinstance(feats, (tuple, list)):
            feats = feats[self.backbone_out_index]
        if feats.dim() == 4:
            return feats.flatten(2).transpose(1, 2)
        if feats.dim() != 3:
            raise ValueError(
                f'backbone output has shape {list(feats.shape)}; need '
                '[B, C, H, W] or [B, N, C] tokens (ViT: out_type="raw")')
        return feats

    # ------------------------------------------------------------- prompts
    def prompt_ids(self, sample: DataSample) -> List[int]:
        """``<bos> [<task|category> :] [question :]`` (Sec. 4.2)."""
        tok = self.tokenizer
        ids = [tok.BOS]
        if self.conditioning != 'none':
            key = 'task' if self.conditioning == 'task' else 'task_category'
            name = sample.get(key)
            if name is None:
                raise KeyError(f"conditioning='{self.conditioning}' needs "
                               f"data samples with '{key}'")
            ids += [tok.prompt_id(name), tok.SEP]
        question = sample.get('question')
        if question:
            room = max(0, self.max_length - 2 - len(ids) - 1)
            ids += tok.encode(question)[:room] + [tok.SEP]
        return ids

    # ------------------------------------------------------------- forward
    def forward(self,
                images: torch.Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``images: [B, 3, H, W]`` (the key ``MultiModalDataPreprocessor``
        emits); ``mode`` is ``'loss'``, ``'predict'`` or ``'tensor'`` (image
        tokens)."""
        if mode == 'loss':
            return self.loss(images, data_samples)
        if mode == 'predict':
            return self.predict(images, data_samples)
        if mode == 'tensor':
            return self.extract_feat(images)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, images: torch.Tensor,
             data_samples: List[DataSample]) -> Dict[str, torch.Tensor]:
        """Teacher-forced cross-entropy with label smoothing on the label
        tokens and ``<eos>`` (not on the prompt), averaged over tokens."""
        tok = self.tokenizer
        memory = self.extract_feat(images)
        inps, tgts = [], []
        for sample in data_samples:
            prompt = self.prompt_ids(sample)
            label = (tok.encode(sample.gt_text) + [tok.EOS])[:self.max_length -
                                                             len(prompt)]
            seq = prompt + label
            inps.append(seq[:-1])
            tgts.append([-100] * (len(prompt) - 1) + label)
        L = max(len(s) for s in inps)
        inp = memory.new_full((len(inps), L), tok.PAD, dtype=torch.long)
        tgt = memory.new_full((len(inps), L), -100, dtype=torch.long)
        for i, (s, t) in enumerate(zip(inps, tgts)):
            inp[i, :len(s)] = torch.as_tensor(s)
            tgt[i, :len(t)] = torch.as_tensor(t)
        logits = self.decoder(inp, memory)
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(),
            tgt.flatten(),
            ignore_index=-100,
            label_smoothing=self.label_smoothing)
        with torch.no_grad():
            valid = tgt != -100
            acc = (logits.argmax(-1) == tgt)[valid].float().mean()
        return OrderedDict(loss=loss, token_acc=acc)

    @torch.no_grad()
    def predict(self, images: torch.Tensor,
                data_samples: List[DataSample]) -> List[DataSample]:
        """Decode every sample with its task's strategy (``decode_cfg``)."""
        if data_samples is None:
            raise ValueError('LiTDecoder.predict needs data samples that '
                             'name the task (and question, if any)')
        memory = self.extract_feat(images)
        groups: Dict[str, List[int]] = OrderedDict()
        for i, sample in enumerate(data_samples):
            groups.setdefault(sample.get('task', 'default'), []).append(i)
        for task, idx in groups.items():
            cfg = self.decode_cfg.get(task, self.decode_cfg['default'])
            texts = self.decode(
                memory[idx], [self.prompt_ids(data_samples[i]) for i in idx],
                cfg, task)
            for i, text in zip(idx, texts):
                for key in ('pred_text', 'pred_caption'):
                    data_samples[i].set_field(text, key, field_type='metainfo')
        return data_samples

    def decode(self,
               memory: torch.Tensor,
               prompts: Sequence[List[int]],
               cfg: dict,
               task: str = 'default') -> List[str]:
        """Strings for ``memory: [B, N, C]`` and prompts, per ``cfg``."""
        tok = self.tokenizer
        # only <eos>, bytes and merges may be generated (no padding, prompt
        # tokens or ids the tokenizer did not fill)
        allowed = torch.zeros(
            tok.vocab_size, dtype=torch.bool, device=memory.device)
        allowed[tok.byte_offset:tok.num_tokens] = True
        allowed[tok.EOS] = True
        common = dict(
            eos_id=tok.EOS,
            pad_id=tok.PAD,
            max_length=self.max_length,
            allowed=allowed)
        strategy = cfg['strategy']
        if strategy == 'score':
            classes = cfg.get('classes') or tok.labels.get(task)
            if not classes:
                raise ValueError(f"decode_cfg[{task!r}] uses 'score' but no "
                                 'classes are given or remembered for it')
            ll = score_classes(
                self.decoder,
                memory,
                prompts, [tok.encode(c) + [tok.EOS] for c in classes],
                pad_id=tok.PAD,
                chunk_size=cfg['chunk_size'])
            return [classes[j] for j in ll.argmax(1).tolist()]
        if strategy == 'beam':
            ids = beam_search(
                self.decoder,
                memory,
                prompts,
                num_beams=cfg['num_beams'],
                alpha=cfg['alpha'],
                **common)
        elif strategy == 'greedy':
            ids = sample_decode(
                self.decoder,
                memory,
                prompts,
                use_cache=cfg['use_cache'],
                **common)
        else:
            gen = torch.Generator(device=memory.device)
            gen.manual_seed(cfg['seed'])
            ids = best_of_n_decode(
                self.decoder,
                memory,
                prompts,
                num_samples=cfg['num_samples'],
                alpha=cfg['alpha'],
                temperature=cfg['temperature'],
                top_k=cfg['top_k'],
                top_p=cfg['top_p'],
                generator=gen,
                **common)
        return [tok.decode(i) for i in ids]
