"""X-SAM's segmentation decoder as an mmdet head: Mask2Former with linear or LLM-conditioned classes.

Reference §1.3 and §2. The decoder is mmdet's Mask2Former (pixel decoder, masked-attention transformer
decoder, Hungarian matching, CE + BCE + Dice on importance-sampled points, deep supervision over every
decoder prediction). What X-SAM changes, and this class adds:

* **classification modes**

  - ``cls_mode='linear'`` (stage 1): a ``Linear(C, num_classes + 1)`` over a fixed label set plus
    no-object, exactly mmdet's head.
  - ``cls_mode='conditioned'`` (stages 2/3): the classes are a per-sample, variable-length set of
    condition embeddings (LLM phrase embeddings projected to the decoder width) plus a learned
    background embedding as the *last* class::

        logits[b, q, n] = exp(logit_scale) * cos(query[b, q], cond[b, n])     # (B, Q, N_max + 1)

    ``logit_scale`` is learnable, initialised to ``ln(1 / 0.07)``; logits are clamped to [-500, 500];
    padded condition slots get the dtype's minimum (zero probability). The background class is the
    Mask2Former "no-object" class with CE weight ``bg_cls_weight`` (0.1).

* **``<SEG>`` embedding** ``seg_embeds`` (B, C) is added to every content query.
* **fp32 matching**: predictions are cast to float32 before the Hungarian assignment (bf16 costs break
  ``linear_sum_assignment``).
* the background class is always the last logit column, so targets and class weights follow the
  number of classes of each call (fixed in linear mode, ``N_max + 1`` in conditioned mode).

Ground truth in conditioned mode: ``gt_instances.labels`` index the sample's conditions (``0 <= label <
number of valid conditions``); every segment, thing or stuff, is an instance (``gt_sem_seg`` is not
used). A label outside that range raises an error naming the sample.
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import InstanceList, reduce_mean
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData
from torch import Tensor

CLS_MODES = ('linear', 'conditioned')


@MODELS.register_module()
class XSAMMask2FormerHead(Mask2FormerHead):
    """Mask2Former head with X-SAM's classification modes.

    Args:
        cls_mode (str): ``'linear'`` or ``'conditioned'`` (see the module docstring).
        bg_cls_weight (float): CE weight of the background class when no ``loss_cls.class_weight`` is
            given (always in conditioned mode; linear mode uses ``loss_cls.class_weight`` when set, as
            mmdet does). Defaults to 0.1.
        logit_scale_init (float): initial ``logit_scale`` (conditioned mode). Defaults to ``ln(1/0.07)``.
        logit_clamp (float): logits are clamped to ``[-logit_clamp, logit_clamp]``. Defaults to 500.
        **kwargs: :class:`mmdet.models.dense_heads.Mask2FormerHead` arguments. In conditioned mode
            ``num_things_classes``/``num_stuff_classes`` only describe the label space of the
            post-processing and may be 0.

    Shapes: ``x`` is the list of neck maps (finest first); class logits are ``(B, Q, K + 1)`` with
    ``K = num_classes`` (linear) or ``N_max`` (conditioned); mask logits are ``(B, Q, h, w)`` at the
    resolution of the pixel decoder's mask features (stride 8 with :class:`XSAMPixelDecoder`).
    """

    def __init__(self, *args, cls_mode: str = 'linear', bg_cls_weight: float = 0.1,
                 logit_scale_init: float = math.log(1 / 0.07), logit_clamp: float = 500.0, **kwargs) -> None:
        if cls_mode not in CLS_MODES:
            raise ValueError(f'cls_mode must be one of {CLS_MODES}, got {cls_mode!r}')
        # Class weights are applied here (see _class_weight), so loss_cls is built without them.
        loss_cls = dict(kwargs.get('loss_cls') or dict(type='CrossEntropyLoss', use_sigmoid=False,
                                                       loss_weight=2.0, reduction='mean'))
        class_weight = loss_cls.get('class_weight')
        if cls_mode == 'conditioned' and class_weight is not None:
            raise ValueError('cls_mode="conditioned" derives class weights from the number of conditions; '
                             'set loss_cls.class_weight=None and use bg_cls_weight')
        kwargs['loss_cls'] = ConfigDict(loss_cls, class_weight=None)  # mmdet reads .class_weight
        super().__init__(*args, **kwargs)
        self.class_weight = None if class_weight is None else list(class_weight)
        self.cls_mode = cls_mode
        self.bg_cls_weight = bg_cls_weight
        self.logit_clamp = logit_clamp
        if cls_mode == 'conditioned':
            del self.cls_embed  # the classes come from the conditions, not from a fixed table
            self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
            self.bg_embed = nn.Embedding(1, self.decoder_embed_dims)
        elif self.class_weight is not None and len(self.class_weight) != self.num_classes + 1:
            raise ValueError(f'loss_cls.class_weight has {len(self.class_weight)} entries, expected '
                             f'num_classes + 1 = {self.num_classes + 1}')

    # ------------------------------------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------------------------------------
    def _check_conditions(self, batch_size: int, conditions: Optional[Tensor],
                          condition_mask: Optional[Tensor]) -> Optional[Tensor]:
        if self.cls_mode == 'linear':
            if conditions is not None:
                raise ValueError('cls_mode="linear" takes no conditions; use cls_mode="conditioned"')
            return None
        if conditions is None:
            raise ValueError('cls_mode="conditioned" needs `conditions` (B, N, C) for every call')
        if conditions.dim() != 3 or conditions.shape[0] != batch_size \
                or conditions.shape[-1] != self.decoder_embed_dims:
            raise ValueError(f'conditions must be (B={batch_size}, N, C={self.decoder_embed_dims}), '
                             f'got {tuple(conditions.shape)}')
        if condition_mask is None:
            condition_mask = conditions.new_ones(conditions.shape[:2], dtype=torch.bool)
        elif condition_mask.shape != conditions.shape[:2]:
            raise ValueError(f'condition_mask must be {tuple(conditions.shape[:2])}, got {tuple(condition_mask.shape)}')
        return condition_mask.bool()

    def classify(self, decoder_out: Tensor, conditions: Optional[Tensor] = None,
                 condition_mask: Optional[Tensor] = None) -> Tensor:
        """Class logits ``(B, Q, K + 1)`` of post-normed queries ``decoder_out`` ``(B, Q, C)``."""
        if self.cls_mode == 'linear':
            return self.cls_embed(decoder_out)
        bg = self.bg_embed.weight.to(conditions.dtype).expand(conditions.shape[0], 1, -1)
        classes = F.normalize(torch.cat([conditions, bg], dim=1), dim=-1)  # (B, N + 1, C)
        queries = F.normalize(decoder_out, dim=-1)  # (B, Q, C)
        logits = self.logit_scale.exp() * torch.einsum('bqc,bnc->bqn', queries, classes)
        logits = logits.clamp(-self.logit_clamp, self.logit_clamp)
        valid = torch.cat([condition_mask, condition_mask.new_ones(condition_mask.shape[0], 1)], dim=1)
        return logits.masked_fill(~valid[:, None, :], torch.finfo(logits.dtype).min)

    def _forward_head(self, decoder_out: Tensor, mask_feature: Tensor, attn_mask_target_size: Tuple[int, int],
                      conditions: Optional[Tensor] = None,
                      condition_mask: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor]:
        """Class logits ``(B, Q, K+1)``, mask logits ``(B, Q, h, w)``, attention mask ``(B*heads, Q, h'*w')``."""
        decoder_out = self.transformer_decoder.post_norm(decoder_out)
        cls_pred = self.classify(decoder_out, conditions, condition_mask)
        mask_embed = self.mask_embed(decoder_out)
        mask_pred = torch.einsum('bqc,bchw->bqhw', mask_embed, mask_feature)
        attn_mask = F.interpolate(mask_pred, attn_mask_target_size, mode='bilinear', align_corners=False)
        attn_mask = attn_mask.flatten(2).unsqueeze(1).repeat((1, self.num_heads, 1, 1)).flatten(0, 1)
        attn_mask = (attn_mask.sigmoid() < 0.5).detach()
        return cls_pred, mask_pred, attn_mask

    def forward(self, x: List[Tensor], batch_data_samples: SampleList, conditions: Optional[Tensor] = None,
                condition_mask: Optional[Tensor] = None,
                seg_embeds: Optional[Tensor] = None) -> Tuple[List[Tensor], List[Tensor]]:
        """Predictions of every decoder stage (``num_layers + 1`` of them, the first from the raw queries).

        Args:
            x: neck maps, finest first, each ``(B, C_i, H_i, W_i)``.
            batch_data_samples: the batch's data samples (not read here; kept for mmdet's API).
            conditions: ``(B, N, C)`` condition embeddings (conditioned mode), padded to ``N``.
            condition_mask: ``(B, N)`` bool, True for real conditions. None: all real.
            seg_embeds: ``(B, C)`` or ``(B, 1, C)`` ``<SEG>`` embeddings added to every content query.

        Returns:
            ``(cls_pred_list, mask_pred_list)``: lists of ``(B, Q, K + 1)`` and ``(B, Q, h, w)``.
        """
        batch_size = x[0].shape[0]
        condition_mask = self._check_conditions(batch_size, conditions, condition_mask)
        mask_features, multi_scale_memorys = self.pixel_decoder(x)
        # multi_scale_memorys: from low resolution to high resolution
        decoder_inputs, decoder_pos = [], []
        for i in range(self.num_transformer_feat_level):
            memory = multi_scale_memorys[i]
            decoder_input = self.decoder_input_projs[i](memory).flatten(2).permute(0, 2, 1)
            decoder_inputs.append(decoder_input + self.level_embed.weight[i].view(1, 1, -1))
            pad_mask = memory.new_zeros((batch_size, ) + memory.shape[-2:], dtype=torch.bool)
            pos = self.decoder_positional_encoding(pad_mask).flatten(2).permute(0, 2, 1)  # fp32 (mmdet)
            decoder_pos.append(pos.to(decoder_input.dtype))
        query_feat = self.query_feat.weight.unsqueeze(0).repeat((batch_size, 1, 1))  # (B, Q, C)
        query_embed = self.query_embed.weight.unsqueeze(0).repeat((batch_size, 1, 1))
        if seg_embeds is not None:
            seg_embeds = seg_embeds.reshape(batch_size, 1, -1)
            if seg_embeds.shape[-1] != query_feat.shape[-1]:
                raise ValueError(f'seg_embeds must have {query_feat.shape[-1]} channels, got {seg_embeds.shape[-1]}')
            query_feat = query_feat + seg_embeds.to(query_feat.dtype)

        cls_pred, mask_pred, attn_mask = self._forward_head(query_feat, mask_features,
                                                            multi_scale_memorys[0].shape[-2:], conditions,
                                                            condition_mask)
        cls_pred_list, mask_pred_list = [cls_pred], [mask_pred]
        for i in range(self.num_transformer_decoder_layers):
            level_idx = i % self.num_transformer_feat_level
            # a query whose mask is empty everywhere attends everywhere instead
            attn_mask = attn_mask & (attn_mask.sum(-1) != attn_mask.shape[-1]).unsqueeze(-1)
            query_feat = self.transformer_decoder.layers[i](
                query=query_feat, key=decoder_inputs[level_idx], value=decoder_inputs[level_idx],
                query_pos=query_embed, key_pos=decoder_pos[level_idx], cross_attn_mask=attn_mask,
                query_key_padding_mask=None, key_padding_mask=None)
            cls_pred, mask_pred, attn_mask = self._forward_head(
                query_feat, mask_features, multi_scale_memorys[(i + 1) % self.num_transformer_feat_level].shape[-2:],
                conditions, condition_mask)
            cls_pred_list.append(cls_pred)
            mask_pred_list.append(mask_pred)
        return cls_pred_list, mask_pred_list

    # ------------------------------------------------------------------------------------------------
    # targets and losses
    # ------------------------------------------------------------------------------------------------
    def _get_targets_single(self, cls_score: Tensor, mask_pred: Tensor, gt_instances: InstanceData,
                            img_meta: dict) -> Tuple[Tensor, ...]:
        """mmdet's targets with the background at the *last* column and the matching in fp32."""
        gt_labels, gt_masks = gt_instances.labels, gt_instances.masks
        num_queries, bg_index = cls_score.shape
        bg_index -= 1
        with torch.no_grad():
            point_coords = torch.rand((1, self.num_points, 2), device=cls_score.device)
            mask_points_pred = point_sample(mask_pred.float().unsqueeze(1),
                                            point_coords.repeat(num_queries, 1, 1)).squeeze(1)
            gt_points_masks = point_sample(gt_masks.unsqueeze(1).float(),
                                           point_coords.repeat(gt_labels.shape[0], 1, 1)).squeeze(1)
            assign_result = self.assigner.assign(
                pred_instances=InstanceData(scores=cls_score.float(), masks=mask_points_pred),
                gt_instances=InstanceData(labels=gt_labels, masks=gt_points_masks), img_meta=img_meta)
        sampling_result = self.sampler.sample(assign_result=assign_result,
                                              pred_instances=InstanceData(scores=cls_score, masks=mask_pred),
                                              gt_instances=gt_instances)
        pos_inds, neg_inds = sampling_result.pos_inds, sampling_result.neg_inds
        labels = gt_labels.new_full((num_queries, ), bg_index, dtype=torch.long)
        labels[pos_inds] = gt_labels[sampling_result.pos_assigned_gt_inds]
        label_weights = gt_labels.new_ones((num_queries, ))
        mask_targets = gt_masks[sampling_result.pos_assigned_gt_inds]
        mask_weights = mask_pred.new_zeros((num_queries, ))
        mask_weights[pos_inds] = 1.0
        return labels, label_weights, mask_targets, mask_weights, pos_inds, neg_inds, sampling_result

    def _class_weight(self, cls_scores: Tensor) -> Tensor:
        """Per-class CE weights ``(K + 1, )``: the config's (linear) or ``[1] * K + [bg_cls_weight]``."""
        num = cls_scores.shape[-1]
        if self.cls_mode == 'linear' and self.class_weight is not None:
            return cls_scores.new_tensor(self.class_weight)
        weight = cls_scores.new_ones(num)
        weight[-1] = self.bg_cls_weight
        return weight

    def _loss_by_feat_single(self, cls_scores: Tensor, mask_preds: Tensor, batch_gt_instances: InstanceList,
                             batch_img_metas: List[dict]) -> Tuple[Tensor, Tensor, Tensor]:
        """Losses of one decoder stage: class CE, point BCE, point Dice (mmdet's, with dynamic class weights)."""
        num_imgs = cls_scores.size(0)
        labels_list, label_weights_list, mask_targets_list, mask_weights_list, avg_factor = self.get_targets(
            [cls_scores[i] for i in range(num_imgs)], [mask_preds[i] for i in range(num_imgs)],
            batch_gt_instances, batch_img_metas)
        labels = torch.stack(labels_list, dim=0).flatten(0, 1)  # (B * Q, )
        label_weights = torch.stack(label_weights_list, dim=0).flatten(0, 1)
        mask_targets = torch.cat(mask_targets_list, dim=0)  # (num_total_gts, H, W)
        mask_weights = torch.stack(mask_weights_list, dim=0)  # (B, Q)

        cls_scores = cls_scores.flatten(0, 1).float()
        class_weight = self._class_weight(cls_scores)
        # per-class weights as per-sample weights: the same as CE(weight=class_weight), mean over weights
        loss_cls = self.loss_cls(cls_scores, labels, label_weights * class_weight[labels],
                                 avg_factor=class_weight[labels].sum())

        num_total_masks = max(reduce_mean(cls_scores.new_tensor([avg_factor])), 1)
        mask_preds = mask_preds[mask_weights > 0]
        if mask_targets.shape[0] == 0:  # no ground truth in the batch: keep the graph connected
            return loss_cls, mask_preds.sum(), mask_preds.sum()
        with torch.no_grad():
            points_coords = get_uncertain_point_coords_with_randomness(
                mask_preds.unsqueeze(1).float(), None, self.num_points, self.oversample_ratio,
                self.importance_sample_ratio)
            mask_point_targets = point_sample(mask_targets.unsqueeze(1).float(), points_coords).squeeze(1)
        # sampled and scored in fp32 (a bf16 model's logits; bf16 point coordinates would be off by ~4 px at 1024)
        mask_point_preds = point_sample(mask_preds.unsqueeze(1).float(), points_coords).squeeze(1)  # (G, P)
        loss_dice = self.loss_dice(mask_point_preds, mask_point_targets, avg_factor=num_total_masks)
        loss_mask = self.loss_mask(mask_point_preds.reshape(-1), mask_point_targets.reshape(-1),
                                   avg_factor=num_total_masks * self.num_points)
        return loss_cls, loss_mask, loss_dice

    def preprocess_gt(self, batch_gt_instances: InstanceList, batch_gt_semantic_segs: List,
                      condition_mask: Optional[Tensor] = None) -> InstanceList:
        """Linear mode: mmdet's panoptic merge of things and stuff. Conditioned mode: the instances, with
        every label checked against the number of valid conditions of its sample. Masks come out as
        (n, H, W) bool: mmdet's merge returns int64 (8 bytes a pixel, 8 MiB per target at 1024²), and the
        matcher and losses only ever point-sample them as floats."""
        if self.cls_mode == 'linear':
            out = super().preprocess_gt(batch_gt_instances, batch_gt_semantic_segs)
            for inst in out:
                inst.masks = inst.masks.bool()
            return out
        out = []
        for inst in batch_gt_instances:
            labels = inst.labels
            masks = inst.masks
            masks = masks.to_tensor(dtype=torch.bool, device=labels.device) if hasattr(masks, 'to_tensor') \
                else torch.as_tensor(masks, device=labels.device).bool()
            out.append(InstanceData(labels=labels, masks=masks))
        counts = condition_mask.sum(1).tolist()
        for i, (inst, n) in enumerate(zip(out, counts)):
            if inst.labels.numel() and (int(inst.labels.min()) < 0 or int(inst.labels.max()) >= n):
                raise ValueError(f'sample {i}: ground-truth labels {inst.labels.tolist()} must index its {n} '
                                 'conditions (0 <= label < number of conditions)')
        return out

    # ------------------------------------------------------------------------------------------------
    # mmdet entry points with conditions threaded through
    # ------------------------------------------------------------------------------------------------
    def loss(self, x: Tuple[Tensor], batch_data_samples: SampleList, conditions: Optional[Tensor] = None,
             condition_mask: Optional[Tensor] = None, seg_embeds: Optional[Tensor] = None) -> Dict[str, Tensor]:
        batch_img_metas = [s.metainfo for s in batch_data_samples]
        batch_gt_instances = [s.gt_instances for s in batch_data_samples]
        batch_gt_semantic_segs = [s.gt_sem_seg if 'gt_sem_seg' in s else None for s in batch_data_samples]
        all_cls_scores, all_mask_preds = self(x, batch_data_samples, conditions, condition_mask, seg_embeds)
        if self.cls_mode == 'conditioned':
            condition_mask = self._check_conditions(len(batch_data_samples), conditions, condition_mask)
        batch_gt_instances = self.preprocess_gt(batch_gt_instances, batch_gt_semantic_segs, condition_mask)
        return self.loss_by_feat(all_cls_scores, all_mask_preds, batch_gt_instances, batch_img_metas)

    def predict(self, x: Tuple[Tensor], batch_data_samples: SampleList, conditions: Optional[Tensor] = None,
                condition_mask: Optional[Tensor] = None, seg_embeds: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Last-stage class logits ``(B, Q, K + 1)`` and mask logits upsampled to the padded input size."""
        all_cls_scores, all_mask_preds = self(x, batch_data_samples, conditions, condition_mask, seg_embeds)
        img_shape = batch_data_samples[0].metainfo['batch_input_shape']
        mask_pred_results = F.interpolate(all_mask_preds[-1], size=tuple(img_shape), mode='bilinear',
                                          align_corners=False)
        return all_cls_scores[-1], mask_pred_results
