"""The unified X-SAM model (stages 2 and 3): LLM + image encoder + SAM + dual projectors + decoder.

Fig. 2 and §3 of the paper, reference §1-2. Every part is a registered module built from the config,
so an ablation swaps one ``type``. Data flow for a batch of ``B`` samples (full-size shapes)::

    inputs (B, 3, 1024, 1024)  --backbone (SAM-L)--> hidden states of chosen blocks, (B, 1024, 64, 64) each
        block -2 --seg_projector (pixel shuffle 0.5 + MLP)--> (B, 1024, 3072) SAM tokens (32 x 32 grid)
        blocks 12/18/24 --neck (connector)--> (B, 512, 128²), (B, 1024, 64²), (B, 2048, 32²)
    encoder_inputs (B, 3, 384, 384) --vision_encoder (SigLIP2)--> (B, 729, 1152)
        --vision_projector (MLP)--> (B, 729, 3072)
    input_ids: <image> -> [729 SigLIP tokens, 1024 SAM tokens] (1753 visual tokens);
               <region> -> region_sampler(SAM tokens, prompt mask) (one token each)
    llm (Phi-3) -> LM loss on the answers; last hidden states (B, T, 3072)
        --llm_projector--> (B, T, 256) -> conditions (mean over <p>..</p>) and <SEG> embeddings
    panoptic_head (conditioned Mask2Former) on the connector maps, one decoder item per <SEG>
        (``mmxsam.models.utils.seg_items``) -> class logits vs [conditions, background], mask logits

Without ``panoptic_head`` (stage 2: alignment pre-training) the model is an MLLM with the LM loss only.

``loss``: ``loss_llm`` (HF causal CE over the supervised answer tokens) x ``llm_loss_weight`` plus the
head's losses (``loss_cls``, ``loss_mask``, ``loss_dice``, ``d{i}.*``) x ``seg_loss_weight`` (Eq. 3);
a batch without ``<SEG>`` (image conversation) has the LM loss only.

``predict`` (``test_cfg.mode``): ``'teacher_forcing'`` runs one forward over the given conversation
(the reference's evaluation of every task but GCG); ``'generation'`` generates the last answer greedily
(stopping at the chat template's stop word) and then reads conditions and ``<SEG>`` off the prompt plus
the generated answer. Samples without an answer and tasks in ``test_cfg.generation_tasks`` are always
generated. Batches of any size; results do not depend on the batch (left-padded generation, per-item
class sets at test time, per-sample seeded region sampling).

Outputs per data sample: ``pred_text`` (generated samples), and per task
``pred_panoptic_seg``/``pred_instances``/``pred_sem_seg`` (genseg, ovseg: labels index the prompt's
phrases), ``pred_instances`` (vgdseg: labels index the prompts; refseg, reaseg, gcgseg: one mask per
phrase, the query most probable for it; intseg: the one candidate mask that agrees best with the visual
prompt, ``test_cfg.interactive_select``) and ``pred_sem_seg`` ``(K, H, W)`` uint8 binary masks per
expression (refseg, reaseg; intseg ``(1, H, W)``).
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.logging import print_log
from mmengine.structures import InstanceData, PixelData
from torch import Tensor

from ..language.constants import IGNORE_INDEX
from ..utils.condition_pooling import build_conditions
from ..utils.hf_utils import freeze_modules
from ..utils.multimodal_inputs import (merge_multimodal_inputs, sanitize_phrase_tags, split_prompt,
                                       strip_generated)
from ..utils.prompt_sources import PROMPT_SOURCES, prompt_sources
from ..utils.seg_items import SegItems, build_seg_items

TEST_MODES = ('teacher_forcing', 'generation')


def _sample_name(sample: DetDataSample, index: int) -> str:
    meta = sample.metainfo
    return f"sample {index} ({meta.get('img_path') or 'text, sample_idx=%s' % meta.get('sample_idx')})"


def _vprompt_masks(sample: DetDataSample, device: torch.device) -> Tensor:
    """The sample's visual-prompt masks (``gt_vprompts.masks``: BitmapMasks or an array) as (K, H, W) bool."""
    masks = sample.gt_vprompts.masks
    if hasattr(masks, 'to_tensor'):
        return masks.to_tensor(torch.bool, device)
    return torch.as_tensor(masks, device=device).bool()


@MODELS.register_module()
class XSAM(BaseDetector):
    """X-SAM's multimodal model as an mmdet detector.

    Args:
        llm (dict): the language model, e.g. ``dict(type='HFCausalLM', ...)`` with a tokenizer (its
            ``<SEG>``/``<p>``/``</p>`` ids and stop words are used).
        backbone (dict): the segmentation encoder (``SAMViTBackbone``); its ``out_indices`` feed the
            neck (``neck_in_indices``) and the seg projector (``seg_projector_in_index``).
        vision_encoder (dict, optional): the image encoder (``HFVisionEncoder``), fed
            ``encoder_inputs`` from :class:`XSAMDataPreprocessor`.
        vision_projector (dict, optional): image-encoder tokens -> LLM width (``XSAMMLPProjector``).
        seg_projector (dict, optional): SAM map -> LLM tokens (``XSAMPixelShuffleProjector``).
        region_sampler (dict, optional): ``<region>`` features from the seg projector's tokens
            (``XSAMRegionSampler``); needed for VGD / interactive prompts.
        neck (dict, optional): the segmentation connector (``XSAMSegConnector``); None: the backbone
            maps go to the head as they are.
        panoptic_head (dict, optional): ``XSAMMask2FormerHead`` with ``cls_mode='conditioned'``.
            None: no segmentation (stage 2).
        panoptic_fusion_head (dict, optional): ``XSAMFusionHead`` (post-processing); needed with a head.
        llm_projector (dict, optional): LLM hidden -> decoder width (``XSAMMLPProjector``); needed
            with a head.
        neck_in_indices (Sequence[int], optional): backbone outputs given to the neck/head. Default:
            every output but the seg projector's.
        seg_projector_in_index (int): the backbone output given to the seg projector (SAM block -2).
            Default -1 (the last of ``out_indices``).
        llm_loss_weight (float), seg_loss_weight (float): Eq. 3's weights (1.0 each).
        frozen_modules (Sequence[str]): attributes to freeze (no gradient, eval mode), e.g.
            ``('backbone',)``; the HF wrappers also have their own ``freeze``/``frozen`` switches.
        train_cfg (dict): the head's (assigner, sampler, points) plus ``contrastive`` (bool, default
            True: referring/reasoning items classify against every expression of the batch) and
            ``vgd_prompt_source`` (``'same_image'`` default, ``'batch'``: each VGD slot's prompt drawn
            from any image of the batch with its category, as the official training; see
            ``mmxsam.models.utils.prompt_sources``).
        test_cfg (dict): the fusion head's keys plus ``mode`` (``'teacher_forcing'`` |
            ``'generation'``), ``generation_tasks`` (tasks always generated, default
            ``('imgconv',)``), ``max_new_tokens`` (512), ``region_seed`` (0: per-sample seed of the
            test-time region sampling, ``region_seed + sample_idx``), ``vgd_prompt_source``
            (``'same_image'`` default; ``'cross_image'``: cross-image VGD, each slot prompted from another
            image of the batch), ``interactive_select`` / ``interactive_score_thr`` (intseg). A sample
            whose metainfo has ``prompt_only=True`` is encoded only to lend its visual prompts to the
            other samples of the batch (cross-image inference): it gets no answer and no masks.
        data_preprocessor (dict): ``XSAMDataPreprocessor``.
        init_cfg (dict | list[dict], optional): e.g. a list of ``Pretrained`` checkpoints loaded in
            order (stage 3: the stage-1 then the stage-2 checkpoint; keys match by name).
    """

    def __init__(self,
                 llm: ConfigType,
                 backbone: ConfigType,
                 vision_encoder: OptConfigType = None,
                 vision_projector: OptConfigType = None,
                 seg_projector: OptConfigType = None,
                 region_sampler: OptConfigType = None,
                 neck: OptConfigType = None,
                 panoptic_head: OptConfigType = None,
                 panoptic_fusion_head: OptConfigType = None,
                 llm_projector: OptConfigType = None,
                 neck_in_indices: Optional[Sequence[int]] = None,
                 seg_projector_in_index: int = -1,
                 llm_loss_weight: float = 1.0,
                 seg_loss_weight: float = 1.0,
                 frozen_modules: Sequence[str] = (),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.train_cfg = ConfigDict(train_cfg or {})
        self.test_cfg = ConfigDict(test_cfg or {})
        mode = self.test_cfg.get('mode', 'teacher_forcing')
        if mode not in TEST_MODES:
            raise ValueError(f'test_cfg.mode must be one of {TEST_MODES}, got {mode!r}')
        for name, cfg in (('train_cfg', self.train_cfg), ('test_cfg', self.test_cfg)):
            if cfg.get('vgd_prompt_source', 'same_image') not in PROMPT_SOURCES:
                raise ValueError(f'{name}.vgd_prompt_source must be one of {PROMPT_SOURCES}, got '
                                 f"{cfg.get('vgd_prompt_source')!r}")
        if vision_projector is not None and vision_encoder is None:
            raise ValueError('vision_projector needs a vision_encoder')
        if vision_encoder is not None and vision_projector is None:
            raise ValueError('vision_encoder needs a vision_projector (its tokens must reach the LLM width)')
        if region_sampler is not None and seg_projector is None:
            raise ValueError('region_sampler samples the seg projector tokens: give a seg_projector')
        if panoptic_head is not None and (llm_projector is None or panoptic_fusion_head is None):
            raise ValueError('panoptic_head needs llm_projector (conditions) and panoptic_fusion_head '
                             '(post-processing)')
        if panoptic_head is None and (neck is not None or llm_projector is not None):
            raise ValueError('neck and llm_projector only serve a panoptic_head; drop them or add the head')

        self.llm = MODELS.build(llm)
        if self.llm.tokenizer is None:
            raise ValueError('XSAM needs an llm with a tokenizer (the <SEG>, <p>, </p> ids and stop words)')
        self.backbone = MODELS.build(backbone)
        self.vision_encoder = None if vision_encoder is None else MODELS.build(vision_encoder)
        self.vision_projector = None if vision_projector is None else MODELS.build(vision_projector)
        self.seg_projector = None if seg_projector is None else MODELS.build(seg_projector)
        self.region_sampler = None if region_sampler is None else MODELS.build(region_sampler)
        self.neck = None if neck is None else MODELS.build(neck)
        self.llm_projector = None if llm_projector is None else MODELS.build(llm_projector)
        self.panoptic_head = self.panoptic_fusion_head = None
        if panoptic_head is not None:
            head = copy.deepcopy(panoptic_head)
            head.update(train_cfg=copy.deepcopy(train_cfg), test_cfg=copy.deepcopy(test_cfg))
            if head.get('cls_mode', 'linear') != 'conditioned':
                raise ValueError("the X-SAM model classifies against LLM conditions: set "
                                 "panoptic_head.cls_mode='conditioned'")
            self.panoptic_head = MODELS.build(head)
            fusion = copy.deepcopy(panoptic_fusion_head)
            fusion.update(test_cfg=copy.deepcopy(test_cfg))
            self.panoptic_fusion_head = MODELS.build(fusion)

        num_outs = len(self.backbone.out_indices)
        self.seg_projector_in_index = seg_projector_in_index % num_outs
        if neck_in_indices is None:
            neck_in_indices = [i for i in range(num_outs) if i != self.seg_projector_in_index]
        self.neck_in_indices = [i % num_outs for i in neck_in_indices]
        self.llm_loss_weight = llm_loss_weight
        self.seg_loss_weight = seg_loss_weight
        self.frozen_modules = tuple(frozen_modules)
        for name in self.frozen_modules:
            if getattr(self, name, None) is None:
                raise ValueError(f'frozen_modules: the model has no module {name!r}')
        self._freeze()

    # ------------------------------------------------------------------ construction helpers
    def _freeze(self) -> None:
        freeze_modules(getattr(self, name) for name in self.frozen_modules)

    def train(self, mode: bool = True) -> 'XSAM':
        super().train(mode)
        if mode:
            self._freeze()
        return self

    @property
    def with_decoder(self) -> bool:
        return self.panoptic_head is not None

    # ------------------------------------------------------------------ mmengine entry
    def forward(self, inputs: Tensor, data_samples: Optional[SampleList] = None, mode: str = 'tensor',
                encoder_inputs: Optional[Tensor] = None):
        """mmengine's entry: ``inputs`` (B, 3, S, S) SAM input, ``encoder_inputs`` (B, 3, s, s) image-encoder
        input (both from :class:`XSAMDataPreprocessor`); ``mode`` ``'loss'`` / ``'predict'`` / ``'tensor'``."""
        if mode == 'loss':
            return self.loss(inputs, data_samples, encoder_inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples, encoder_inputs=encoder_inputs)
        if mode == 'tensor':
            return self._forward(inputs, data_samples, encoder_inputs)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, predict and tensor mode')

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """The backbone's maps (B, C, h, w) for ``out_indices``."""
        return self.backbone(batch_inputs)

    # ------------------------------------------------------------------ visual features
    def _encode_images(self, batch_inputs: Tensor, encoder_inputs: Optional[Tensor],
                       samples: SampleList) -> Dict[str, object]:
        """Run the encoders once per batch.

        Returns:
            dict: ``sam`` (tuple of backbone maps), ``image_tokens`` (B entries, ``(N, H)`` or None
            for samples without an image), ``seg_tokens`` ``(B, N2, H)`` or None and ``seg_grid``.
        """
        has_image = [bool(s.metainfo.get('has_image', True)) for s in samples]
        sam = self.extract_feat(batch_inputs)
        parts = []
        if self.vision_encoder is not None:
            if encoder_inputs is None:
                raise ValueError('the model has a vision_encoder but the batch has no encoder_inputs: use '
                                 'XSAMDataPreprocessor with encoder_size set')
            parts.append(self.vision_projector(self.vision_encoder(encoder_inputs)))  # (B, N1, H)
        seg_tokens, seg_grid = None, None
        if self.seg_projector is not None:
            sam_map = sam[self.seg_projector_in_index]  # (B, C, h, w)
            seg_tokens = self.seg_projector(sam_map)  # (B, N2, H)
            seg_grid = self.seg_projector.output_grid(*sam_map.shape[-2:])
            parts.append(seg_tokens)
        if not parts:
            raise ValueError('XSAM needs a vision_projector or a seg_projector to give the LLM image tokens')
        tokens = torch.cat([p.to(parts[0].dtype) for p in parts], dim=1)  # (B, N1 + N2, H)
        image_tokens = [tokens[b] if has_image[b] else None for b in range(len(samples))]
        return dict(sam=sam, image_tokens=image_tokens, seg_tokens=seg_tokens, seg_grid=seg_grid)

    def _padded_prompts(self, sample: DetDataSample, b: int, device: torch.device) -> Optional[Tensor]:
        """The sample's visual-prompt masks (K, H_pad, W_pad) bool on the SAM input grid, or None."""
        if 'gt_vprompts' not in sample or len(sample.gt_vprompts) == 0:
            return None
        if self.region_sampler is None:
            raise ValueError(f'{_sample_name(sample, b)}: visual prompts given but the model has no region_sampler')
        masks = _vprompt_masks(sample, device)
        pad_h, pad_w = sample.metainfo['batch_input_shape']
        img_h, img_w = sample.metainfo.get('img_shape', masks.shape[-2:])[:2]
        if tuple(masks.shape[-2:]) != (img_h, img_w):
            # loaded at the original size (evaluation pipelines load annotations after the resize)
            masks = F.interpolate(masks[None].float(), size=(img_h, img_w), mode='nearest')[0].bool()
        padded = masks.new_zeros((masks.shape[0], pad_h, pad_w))
        padded[:, :masks.shape[1], :masks.shape[2]] = masks[:, :pad_h, :pad_w]
        return padded

    def _region_tokens(self, visual: dict, samples: SampleList) -> List[Optional[Tensor]]:
        """One feature per visual prompt mask (``gt_vprompts.masks``): for VGD samples, read from the image
        that ``train_cfg`` / ``test_cfg`` ``vgd_prompt_source`` names (``mmxsam.models.utils.prompt_sources``:
        ``'same_image'``, ``'cross_image'`` or ``'batch'``), else from the sample's own image."""
        device = visual['seg_tokens'].device if visual['seg_tokens'] is not None else torch.device('cpu')
        padded = [self._padded_prompts(s, b, device) for b, s in enumerate(samples)]
        cfg = self.train_cfg if self.training else self.test_cfg
        mode = cfg.get('vgd_prompt_source', 'same_image')
        categories = [
            list(s.metainfo['category_ids']) if (s.metainfo.get('task') == 'vgdseg' and padded[b] is not None
                                                 and len(s.metainfo.get('category_ids') or ()) == len(padded[b]))
            else None for b, s in enumerate(samples)
        ]
        sources, fallbacks = prompt_sources(categories, mode)
        if fallbacks:
            print_log(f'XSAM: {fallbacks} VGD prompt slot(s) kept their own image\'s prompt (no other image of the '
                      f'batch has their category; vgd_prompt_source={mode!r})', logger='current', level=20)
        out: List[Optional[Tensor]] = []
        for b, sample in enumerate(samples):
            if padded[b] is None or sample.metainfo.get('prompt_only', False):
                out.append(None)  # prompt-only samples lend their prompts and are not run themselves
                continue
            generator = None
            if not self.training:  # deterministic per sample at test time, whatever the batch
                seed = int(self.test_cfg.get('region_seed', 0)) + int(sample.metainfo.get('sample_idx', b))
                generator = torch.Generator().manual_seed(seed)
            pairs = sources[b] or [(b, k) for k in range(len(padded[b]))]
            try:
                if all(j == b for j, _ in pairs):  # the sample's own image: one call for all its prompts
                    masks = padded[b][[k for _, k in pairs]]
                    feats = self.region_sampler(visual['seg_tokens'][b:b + 1], [masks], generator=generator,
                                                grid_size=visual['seg_grid'])[0]
                else:  # prompts read from other images of the batch, one slot at a time
                    feats = torch.cat([
                        self.region_sampler(visual['seg_tokens'][j:j + 1], [padded[j][k:k + 1]], generator=generator,
                                            grid_size=visual['seg_grid'])[0] for j, k in pairs])
            except ValueError as err:
                raise ValueError(f'{_sample_name(sample, b)}: {err}') from err
            out.append(feats)  # (K_b, H)
        return out

    # ------------------------------------------------------------------ LLM
    def _llm_inputs(self, ids: Sequence[Tensor], visual: dict, region_tokens: List[Optional[Tensor]],
                    samples: SampleList, labels: Optional[Sequence[Tensor]] = None,
                    padding_side: str = 'right') -> dict:
        return merge_multimodal_inputs(
            ids, self.llm.get_input_embeddings(), visual['image_tokens'], region_tokens, labels=labels,
            padding_side=padding_side, max_length=getattr(self.llm.config, 'max_position_embeddings', None),
            names=[_sample_name(s, b) for b, s in enumerate(samples)])

    def _conditions(self, hidden: Tensor, expanded_ids: Tensor) -> dict:
        """Projected last hidden states (B, T, H) -> conditions and ``<SEG>`` embeddings (decoder width)."""
        proj_dtype = next(self.llm_projector.parameters()).dtype
        projected = self.llm_projector(hidden.to(proj_dtype))  # (B, T, C)
        return build_conditions(projected, expanded_ids, self.llm.p_start_id, self.llm.p_end_id,
                                self.llm.seg_token_id)

    # ------------------------------------------------------------------ decoder
    def _decoder_inputs(self, visual: dict, items: SegItems) -> List[Tensor]:
        """Neck maps of each item's image: list of (N_items, C_i, h_i, w_i)."""
        maps = [visual['sam'][i] for i in self.neck_in_indices]
        feats = self.neck(maps) if self.neck is not None else maps
        return [f[items.sample_index] for f in feats]

    @staticmethod
    def _item_samples(samples: SampleList, items: SegItems, with_gt: bool) -> SampleList:
        """One data sample per decoder item (metainfo of its image; expression items: their own targets)."""
        out = []
        for i in range(len(items)):
            source = samples[int(items.sample_index[i])]
            item = DetDataSample(metainfo=source.metainfo)
            if with_gt:
                gt = source.gt_instances
                phrase = items.target_phrase[i]
                if phrase is not None:  # expression item: the instances of its phrase, relabelled
                    keep = (gt.labels == phrase).cpu().numpy()
                    gt = InstanceData(labels=gt.labels.new_full((int(keep.sum()), ), items.target_label[i]),
                                      masks=gt.masks[keep])
                item.gt_instances = gt
            out.append(item)
        return out

    def _seg_loss(self, hidden: Tensor, expanded_ids: Tensor, visual: dict, samples: SampleList) -> dict:
        cond = self._conditions(hidden, expanded_ids)
        items = build_seg_items(cond['conditions'], cond['num_phrases'], cond['seg_embeds'],
                                [s.metainfo.get('task') for s in samples],
                                [_sample_name(s, b) for b, s in enumerate(samples)], training=True,
                                contrastive=self.train_cfg.get('contrastive', True))
        if len(items) == 0:
            return {}
        x = self._decoder_inputs(visual, items)
        return self.panoptic_head.loss(x, self._item_samples(samples, items, with_gt=True), items.conditions,
                                       items.condition_mask, items.seg_embeds)

    # ------------------------------------------------------------------ loss
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList,
             encoder_inputs: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """LM loss (+ segmentation losses when the batch has ``<SEG>`` and the model a decoder)."""
        samples = batch_data_samples
        visual = self._encode_images(batch_inputs, encoder_inputs, samples)
        region_tokens = self._region_tokens(visual, samples)
        llm_in = self._llm_inputs([s.input_ids for s in samples], visual, region_tokens, samples,
                                  labels=[s.lm_labels for s in samples])
        out = self.llm(llm_in['inputs_embeds'], llm_in['attention_mask'], labels=llm_in['labels'],
                       output_hidden_states=self.with_decoder)
        if bool((llm_in['labels'] != IGNORE_INDEX).any()):
            loss_llm = out.loss
        else:  # nothing supervised (HF would give nan); keep the graph connected
            loss_llm = out.logits.sum() * 0.0
        losses = dict(loss_llm=loss_llm * self.llm_loss_weight)
        if self.with_decoder:
            seg_losses = self._seg_loss(out.hidden_states[-1], llm_in['expanded_ids'], visual, samples)
            for name, value in seg_losses.items():
                losses[name] = value * self.seg_loss_weight if 'loss' in name else value
        return losses

    # ------------------------------------------------------------------ predict
    def _generation_flags(self, samples: SampleList) -> List[bool]:
        mode = self.test_cfg.get('mode', 'teacher_forcing')
        always = tuple(self.test_cfg.get('generation_tasks', ('imgconv', )))
        return [
            mode == 'generation' or s.metainfo.get('task') in always or not bool((s.lm_labels != IGNORE_INDEX).any())
            for s in samples
        ]

    @torch.no_grad()
    def generate(self, prompts: Sequence[Tensor], visual: dict, region_tokens: List[Optional[Tensor]],
                 samples: SampleList) -> List[Tensor]:
        """Greedy answers of left-padded prompts: ``B`` id tensors (stop word and padding cut)."""
        llm_in = self._llm_inputs(prompts, visual, region_tokens, samples, padding_side='left')
        out = self.llm.generate(llm_in['inputs_embeds'], llm_in['attention_mask'],
                                max_new_tokens=int(self.test_cfg.get('max_new_tokens', 512)))
        return strip_generated(out.sequences, self.llm.stop_token_ids)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList, rescale: bool = True,
                encoder_inputs: Optional[Tensor] = None) -> SampleList:
        samples = batch_data_samples
        visual = self._encode_images(batch_inputs, encoder_inputs, samples)
        region_tokens = self._region_tokens(visual, samples)
        ids = [s.input_ids for s in samples]
        run = [not s.metainfo.get('prompt_only', False) for s in samples]
        flags = self._generation_flags(samples)
        gen_index = [b for b, f in enumerate(flags) if f and run[b]]
        if gen_index:
            prompts = [split_prompt(samples[b].input_ids, samples[b].lm_labels) for b in gen_index]
            sub_visual = dict(visual, image_tokens=[visual['image_tokens'][b] for b in gen_index])
            answers = self.generate(prompts, sub_visual, [region_tokens[b] for b in gen_index],
                                    [samples[b] for b in gen_index])
            for b, prompt, answer in zip(gen_index, prompts, answers):
                answer, removed = sanitize_phrase_tags(answer, self.llm.p_start_id, self.llm.p_end_id)
                if removed:
                    print_log(f'XSAM.predict: {_sample_name(samples[b], b)}: {removed} unpaired <p>/</p> tag(s) '
                              'removed from the generated answer', logger='current', level=30)
                samples[b].pred_text = self.llm.tokenizer.decode(answer.tolist(), skip_special_tokens=False)
                ids[b] = torch.cat([prompt, answer.to(prompt.dtype)])
        if self.with_decoder:
            seg_index = [b for b, s in enumerate(samples) if s.metainfo.get('task') not in ('imgconv', ) and run[b]]
            if seg_index:
                self._predict_masks(seg_index, ids, visual, region_tokens, samples, rescale)
        return samples

    @torch.no_grad()
    def _predict_masks(self, seg_index: List[int], ids: List[Tensor], visual: dict,
                       region_tokens: List[Optional[Tensor]], samples: SampleList, rescale: bool) -> None:
        sub = [samples[b] for b in seg_index]
        sub_visual = dict(visual, image_tokens=[visual['image_tokens'][b] for b in seg_index],
                          sam=tuple(m[seg_index] for m in visual['sam']))
        llm_in = self._llm_inputs([ids[b] for b in seg_index], sub_visual, [region_tokens[b] for b in seg_index],
                                  sub)
        out = self.llm(llm_in['inputs_embeds'], llm_in['attention_mask'], output_hidden_states=True)
        cond = self._conditions(out.hidden_states[-1], llm_in['expanded_ids'])
        items = build_seg_items(cond['conditions'], cond['num_phrases'], cond['seg_embeds'],
                                [s.metainfo.get('task') for s in sub],
                                [_sample_name(s, b) for b, s in zip(seg_index, sub)], training=False)
        for message in items.warnings:
            print_log(f'XSAM.predict: {message}', logger='current', level=30)
        self._add_empty_results(sub, rescale)  # what a sample keeps if it gets no decoder item
        if len(items) == 0:
            return
        x = self._decoder_inputs(sub_visual, items)
        item_samples = self._item_samples(sub, items, with_gt=False)
        cls_all, masks_all = self.panoptic_head.predict(x, item_samples, items.conditions, items.condition_mask,
                                                        items.seg_embeds)
        per_sample: Dict[int, List[Tuple[int, InstanceData]]] = {}
        for i in range(len(items)):
            b = int(items.sample_index[i])
            sample = sub[b]
            k = int(items.condition_mask[i].sum())
            mask_cls = torch.cat([cls_all[i][:, :k], cls_all[i][:, -1:]], dim=-1).float()  # (Q, k + 1)
            mask_pred = self.panoptic_fusion_head.crop_to_image(masks_all[i], sample.metainfo, rescale)
            task = sample.metainfo.get('task')
            if task in ('genseg', 'ovseg'):
                self._add_generic_results(sample, mask_cls, mask_pred)
            elif task == 'vgdseg':
                sample.pred_instances = self.panoptic_fusion_head.instance_postprocess(mask_cls, mask_pred)
            elif task == 'intseg' and 'gt_vprompts' in sample and len(sample.gt_vprompts) == 1:
                prompt = self._prompt_at(sample, mask_pred.shape[-2:])
                result = self.panoptic_fusion_head.interactive_postprocess(mask_cls, mask_pred, prompt)
                sample.pred_instances = result
                sample.pred_sem_seg = PixelData(sem_seg=result.masks.to(torch.uint8))
            else:  # one mask per phrase: refseg / reaseg (one item per expression), gcgseg, intseg
                result = self.panoptic_fusion_head.condition_postprocess(mask_cls, mask_pred)
                phrase = items.target_phrase[i]
                if phrase is not None:  # an expression item: its one mask is the sample's phrase `phrase`
                    result.labels = result.labels.new_full((len(result), ), phrase)
                per_sample.setdefault(b, []).append(result)
        for b, results in per_sample.items():
            merged = InstanceData.cat(results)
            order = merged.labels.argsort(stable=True)
            sub[b].pred_instances = merged[order]
            if sub[b].metainfo.get('task') in ('refseg', 'reaseg'):
                sub[b].pred_sem_seg = PixelData(sem_seg=sub[b].pred_instances.masks.to(torch.uint8))

    @staticmethod
    def _prompt_at(sample: DetDataSample, size: Tuple[int, int]) -> Tensor:
        """The sample's single visual-prompt mask (H, W) bool at ``size`` (the prediction's)."""
        masks = _vprompt_masks(sample, sample.input_ids.device)
        if tuple(masks.shape[-2:]) != tuple(size):  # prompt at img_shape (training pipelines) or ori_shape
            masks = F.interpolate(masks[None].float(), size=tuple(size), mode='nearest')[0].bool()
        return masks[0]

    @staticmethod
    def _add_empty_results(samples: SampleList, rescale: bool) -> None:
        """Empty predictions (no mask) for every sample; replaced for samples that get decoder items. A
        referring/reasoning answer without ``<SEG>`` is thus scored as an empty mask, not skipped."""
        for sample in samples:
            meta = sample.metainfo
            h, w = meta['ori_shape'][:2] if rescale else meta['img_shape'][:2]
            device = sample.input_ids.device
            sample.pred_instances = InstanceData(masks=torch.zeros(0, h, w, dtype=torch.bool, device=device),
                                                 labels=torch.zeros(0, dtype=torch.long, device=device),
                                                 scores=torch.zeros(0, device=device),
                                                 bboxes=torch.zeros(0, 4, device=device))
            if meta.get('task') in ('refseg', 'reaseg', 'intseg'):
                k = max(1, len(meta.get('phrases') or []))
                sample.pred_sem_seg = PixelData(sem_seg=torch.zeros(k, h, w, dtype=torch.uint8, device=device))

    def _add_generic_results(self, sample: DetDataSample, mask_cls: Tensor, mask_pred: Tensor) -> None:
        """Panoptic / instance / semantic results of a genseg or ovseg sample; its metainfo
        ``num_things_classes`` (when set, e.g. by the inferencer) is its own thing/stuff split."""
        cfg = self.panoptic_fusion_head.test_cfg
        num_things = sample.metainfo.get('num_things_classes')
        if cfg.get('panoptic_on', True):
            sample.pred_panoptic_seg = self.panoptic_fusion_head.panoptic_postprocess(mask_cls, mask_pred, num_things)
        if cfg.get('instance_on', False):
            sample.pred_instances = self.panoptic_fusion_head.instance_postprocess(mask_cls, mask_pred, num_things)
        if cfg.get('semantic_on', False):
            sample.pred_sem_seg = self.panoptic_fusion_head.semantic_postprocess(mask_cls, mask_pred)

    # ------------------------------------------------------------------ tensor mode
    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                 encoder_inputs: Optional[Tensor] = None):
        """Teacher-forced forward without post-processing: ``(lm_logits (B, T, V), cls_preds, mask_preds)``,
        the decoder outputs of every layer for the batch's decoder items (empty lists without items)."""
        samples = batch_data_samples
        visual = self._encode_images(batch_inputs, encoder_inputs, samples)
        region_tokens = self._region_tokens(visual, samples)
        llm_in = self._llm_inputs([s.input_ids for s in samples], visual, region_tokens, samples)
        out = self.llm(llm_in['inputs_embeds'], llm_in['attention_mask'], output_hidden_states=self.with_decoder)
        if not self.with_decoder:
            return out.logits, [], []
        cond = self._conditions(out.hidden_states[-1], llm_in['expanded_ids'])
        items = build_seg_items(cond['conditions'], cond['num_phrases'], cond['seg_embeds'],
                                [s.metainfo.get('task') for s in samples],
                                [_sample_name(s, b) for b, s in enumerate(samples)], training=False)
        if len(items) == 0:
            return out.logits, [], []
        x = self._decoder_inputs(visual, items)
        cls_preds, mask_preds = self.panoptic_head(x, self._item_samples(samples, items, False), items.conditions,
                                                   items.condition_mask, items.seg_embeds)
        return out.logits, cls_preds, mask_preds
