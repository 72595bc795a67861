"""Panoptic / instance / semantic post-processing of Mask2Former-style outputs, with X-SAM's rules."""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from mmdet.evaluation.functional import INSTANCE_OFFSET
from mmdet.models.seg_heads.panoptic_fusion_heads import MaskFormerFusionHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.bbox import bbox_overlaps
from mmdet.structures.mask import mask2bbox
from mmdet.utils import OptConfigType, OptMultiConfig
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData, PixelData
from torch import Tensor


@MODELS.register_module()
class XSAMFusionHead(MaskFormerFusionHead):
    """MaskFormer fusion head with semantic inference and X-SAM's panoptic/instance rules.

    Input, per image: class logits ``mask_cls`` (Q, C + 1), the last column the
    background ("no object") class, and mask logits ``mask_pred`` (Q, H, W).
    Outputs follow mmdet's conventions so mmdet's metrics read them unchanged:

    - panoptic: ``PixelData(sem_seg=(1, H, W) int32)``, ``class + k * INSTANCE_OFFSET``
      for the k-th thing (k >= 1), ``class`` for stuff (merged per class), ``C`` for
      VOID (-> ``CocoPanopticMetric``);
    - instance: ``InstanceData`` with ``masks`` (N, H, W) bool, ``labels`` (N,),
      ``scores`` (N,), ``bboxes`` (N, 4) (-> ``CocoMetric(metric='segm')``);
    - semantic: ``PixelData(sem_seg=(1, H, W) int64)``, values in ``[0, C)``
      (-> mmdet's ``SemSegMetric``; mmdet's own fusion head raises on it).

    Every rule is selected by a ``test_cfg`` key whose default reproduces mmdet's
    ``MaskFormerFusionHead`` exactly; X-SAM's values (xsam-reference.md §5 and
    the official ``genseg_process_fn.py`` / ``utils/process.py``) are::

        test_cfg = dict(
            panoptic_on=True, instance_on=True, semantic_on=True,
            # panoptic (HF-style "compute_segments")
            object_mask_thr=0.5,        # 0.0 in the stage-3 eval, 0.5 in the S1 eval / demo
            iou_thr=0.8, mask_thr=0.5, filter_low_score=False,
            fg_only_label=True, score_weighted_area=True, strict_iou_thr=True,
            # instance
            max_per_image=None,         # top-Q (query, class) pairs
            instance_things_only=False, instance_score_thr=0.0)

    Panoptic keys (reference §5 "Panoptic", steps 1-5):

    - ``object_mask_thr`` (float, 0.8): keep a query if its score > thr.
    - ``fg_only_label`` (bool, False): X-SAM: ``True``. "p = softmax over (classes +
      bg), bg dropped; take the max score and label": score/label are the max over
      the foreground columns only, so a query whose top class is background still
      competes with its best foreground class. mmdet (``False``): max over all
      C + 1 columns and background winners are dropped.
    - ``score_weighted_area`` (bool, False): X-SAM: ``True``. "A segment is valid if
      area(argmax == k) / area(prob_k >= 0.5) > 0.8 ... Note: probs are already
      score-weighted here, unlike detectron2": the denominator thresholds
      ``score_k * sigmoid(mask_k)``; mmdet thresholds ``sigmoid(mask_k)``.
    - ``iou_thr`` (float, 0.8): the area-ratio threshold (both use 0.8).
    - ``strict_iou_thr`` (bool, False): X-SAM: ``True`` (keep if ratio ``> iou_thr``);
      mmdet keeps if ratio ``>= iou_thr``.
    - ``mask_thr`` (float, 0.5): "``mask_threshold`` is 0.5" (mmdet hard-codes 0.5).
    - ``filter_low_score`` (bool, False): mmdet's option to also require
      ``sigmoid(mask_k) >= mask_thr`` for painted pixels; X-SAM: ``False``.

    Common to both: mask probs weighted by score, then argmax over queries (step 3);
    stuff merged per class (step 5).

    Instance keys (reference §5 "Instance"): "Take the top-Q pairs of (query,
    class) from the flattened softmax scores ... score = cls_prob x mean sigmoid
    probability inside the mask" (mask = logit > 0). mmdet scores the same way; it
    differs only in:

    - ``max_per_image`` (int | None, 100): size of the top-k; ``None`` means the
      number of queries Q (X-SAM).
    - ``instance_things_only`` (bool, True): mmdet drops stuff labels; X-SAM
      (``False``) keeps every class (its instance task only lists thing classes).
    - ``instance_score_thr`` (float | None, None): keep ``score >= thr``; X-SAM: 0.0
      at eval (keeps all), 0.5 in the demo.

    Semantic (``semantic_on``, reference §5 "Semantic"): "einsum(softmax_cls[:, :-1],
    sigmoid masks), then argmax" (Mask2Former semantic inference); no keys.

    Args:
        num_things_classes (int): number of thing classes. Defaults to 80.
        num_stuff_classes (int): number of stuff classes. Defaults to 53.
        test_cfg (dict, optional): the keys above plus ``panoptic_on`` (True),
            ``instance_on`` (False), ``semantic_on`` (False). None means all defaults.
        loss_panoptic (dict, optional): unused (no training loss), kept for mmdet
            compatibility.
        init_cfg (dict | list[dict], optional): initialisation config.
    """

    def __init__(self,
                 num_things_classes: int = 80,
                 num_stuff_classes: int = 53,
                 test_cfg: OptConfigType = None,
                 loss_panoptic: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            num_things_classes=num_things_classes,
            num_stuff_classes=num_stuff_classes,
            test_cfg=ConfigDict() if test_cfg is None else test_cfg,
            loss_panoptic=loss_panoptic,
            init_cfg=init_cfg)

    def panoptic_postprocess(self, mask_cls: Tensor, mask_pred: Tensor,
                             num_things_classes: Optional[int] = None) -> PixelData:
        """Panoptic inference for one image.

        Args:
            mask_cls (Tensor): class logits (Q, C + 1), background last. C is the image's class count
                (the head's ``num_classes`` for a closed set; the prompted categories for X-SAM).
            mask_pred (Tensor): mask logits (Q, H, W).
            num_things_classes (int, optional): classes ``[0, num_things_classes)`` are things, the rest
                stuff (one merged segment per class). Defaults to the head's ``num_things_classes``; a sample
                carries its own in its metainfo when its categories are its own (open vocabulary, inferencer).

        Returns:
            PixelData: ``sem_seg`` (1, H, W) int32 with
            ``segment_id = class + instance_id * INSTANCE_OFFSET``; stuff has
            instance id 0, VOID is ``C`` (metainfo ``ignore_index``, which mmdet's
            ``CocoPanopticMetric`` reads). Its metainfo
            ``segment_scores`` maps each segment id to the class probability of
            the query that made it (the best one for a merged stuff segment).
        """
        cfg = self.test_cfg
        num_things = self.num_things_classes if num_things_classes is None else num_things_classes
        object_mask_thr = cfg.get('object_mask_thr', 0.8)
        iou_thr = cfg.get('iou_thr', 0.8)
        mask_thr = cfg.get('mask_thr', 0.5)
        filter_low_score = cfg.get('filter_low_score', False)
        fg_only_label = cfg.get('fg_only_label', False)
        score_weighted_area = cfg.get('score_weighted_area', False)
        strict_iou_thr = cfg.get('strict_iou_thr', False)

        cls_prob = F.softmax(mask_cls, dim=-1)  # (Q, C + 1)
        if fg_only_label:  # X-SAM: background dropped before the max
            scores, labels = cls_prob[:, :-1].max(-1)  # (Q,), (Q,)
        else:  # mmdet: background competes, its winners are dropped below
            scores, labels = cls_prob.max(-1)
        mask_prob = mask_pred.sigmoid()  # (Q, H, W)

        background = mask_cls.shape[-1] - 1  # C: == self.num_classes for a closed-set head; also VOID
        keep = labels.ne(background) & (scores > object_mask_thr)
        cur_scores = scores[keep]  # (K,)
        cur_classes = labels[keep]  # (K,)
        cur_masks = mask_prob[keep]  # (K, H, W)
        cur_prob_masks = cur_scores.view(-1, 1, 1) * cur_masks  # (K, H, W)
        area_probs = cur_prob_masks if score_weighted_area else cur_masks

        h, w = mask_pred.shape[-2:]
        panoptic_seg = torch.full((h, w), background, dtype=torch.int32, device=mask_pred.device)
        segment_scores = {}
        if cur_masks.shape[0] == 0:  # nothing kept: all VOID
            return PixelData(sem_seg=panoptic_seg[None],
                             metainfo=dict(segment_scores=segment_scores, ignore_index=background))

        cur_mask_ids = cur_prob_masks.argmax(0)  # (H, W) winning kept query per pixel
        instance_id = 1
        for k in range(cur_classes.shape[0]):
            pred_class = int(cur_classes[k].item())
            mask = cur_mask_ids == k
            mask_area = mask.sum().item()
            original_area = (area_probs[k] >= mask_thr).sum().item()
            if filter_low_score:
                mask = mask & (cur_masks[k] >= mask_thr)
            if mask_area == 0 or original_area == 0:
                continue
            ratio = mask_area / original_area
            if (ratio <= iou_thr) if strict_iou_thr else (ratio < iou_thr):
                continue  # mostly covered by higher-scored queries
            if pred_class < num_things:
                segment_id = pred_class + instance_id * INSTANCE_OFFSET
                instance_id += 1
            else:  # stuff: every segment of a class shares instance id 0 (merged)
                segment_id = pred_class
            panoptic_seg[mask] = segment_id
            segment_scores[segment_id] = max(segment_scores.get(segment_id, 0.0), float(cur_scores[k]))
        return PixelData(sem_seg=panoptic_seg[None],
                         metainfo=dict(segment_scores=segment_scores, ignore_index=background))

    def semantic_postprocess(self, mask_cls: Tensor, mask_pred: Tensor) -> PixelData:
        """Mask2Former semantic inference for one image (reference §5 "Semantic").

        ``semseg[c] = sum_q softmax(mask_cls)[q, c] * sigmoid(mask_pred)[q]`` over the
        foreground classes, then argmax over c. Every pixel gets a class (no VOID).

        Args:
            mask_cls (Tensor): class logits (Q, C + 1), background last.
            mask_pred (Tensor): mask logits (Q, H, W).

        Returns:
            PixelData: ``sem_seg`` (1, H, W) int64 with values in ``[0, C)``, the
            layout of mmdet's/mmseg's ``pred_sem_seg``.
        """
        cls_prob = F.softmax(mask_cls, dim=-1)[:, :-1]  # (Q, C)
        mask_prob = mask_pred.sigmoid()  # (Q, H, W)
        sem_prob = torch.einsum('qc,qhw->chw', cls_prob, mask_prob)  # (C, H, W)
        return PixelData(sem_seg=sem_prob.argmax(0)[None])  # (1, H, W)

    def instance_postprocess(self, mask_cls: Tensor, mask_pred: Tensor,
                             num_things_classes: Optional[int] = None) -> InstanceData:
        """Instance inference for one image (reference §5 "Instance").

        Top-k (query, class) pairs of the flattened foreground softmax (Q * C,);
        masks are ``mask_pred > 0``; ``score = cls_prob * mean(sigmoid(mask_pred)
        inside the mask)``.

        Args:
            mask_cls (Tensor): class logits (Q, C + 1), background last.
            mask_pred (Tensor): mask logits (Q, H, W).
            num_things_classes (int, optional): as :meth:`panoptic_postprocess` (``instance_things_only``
                keeps classes below it). Defaults to the head's.

        Returns:
            InstanceData: ``masks`` (N, H, W) bool, ``labels`` (N,) int64,
            ``scores`` (N,), ``bboxes`` (N, 4) xyxy from the masks (zeros for an
            empty mask). N <= k; in top-k order (unsorted).
        """
        cfg = self.test_cfg
        max_per_image = cfg.get('max_per_image', 100)
        things_only = cfg.get('instance_things_only', True)
        score_thr = cfg.get('instance_score_thr', None)

        num_queries, num_classes = mask_cls.shape[0], mask_cls.shape[1] - 1
        topk = num_queries if max_per_image is None else max_per_image
        topk = min(topk, num_queries * num_classes)

        scores = F.softmax(mask_cls, dim=-1)[:, :-1]  # (Q, C)
        labels = torch.arange(num_classes, device=mask_cls.device).repeat(num_queries)  # (Q * C,)
        scores_per_image, top_indices = scores.flatten(0, 1).topk(topk, sorted=False)  # (k,)
        labels_per_image = labels[top_indices]
        mask_pred = mask_pred[top_indices // num_classes]  # (k, H, W)

        if things_only:
            is_thing = labels_per_image < (self.num_things_classes if num_things_classes is None
                                           else num_things_classes)
            scores_per_image = scores_per_image[is_thing]
            labels_per_image = labels_per_image[is_thing]
            mask_pred = mask_pred[is_thing]

        mask_binary = (mask_pred > 0).float()  # (N, H, W)
        mask_scores = (mask_pred.sigmoid() * mask_binary).flatten(1).sum(1) / (
            mask_binary.flatten(1).sum(1) + 1e-6)  # (N,) mean prob inside the mask
        det_scores = scores_per_image * mask_scores
        mask_binary = mask_binary.bool()

        if score_thr is not None:
            keep = det_scores >= score_thr
            det_scores, labels_per_image, mask_binary = det_scores[keep], labels_per_image[keep], mask_binary[keep]

        results = InstanceData()
        results.bboxes = mask2bbox(mask_binary)
        results.labels = labels_per_image
        results.scores = det_scores
        results.masks = mask_binary
        return results

    def condition_postprocess(self, mask_cls: Tensor, mask_pred: Tensor) -> InstanceData:
        """One mask per class: the query most probable for it (referring, reasoning, GCG; reference §5).

        For every foreground class ``c`` the query with the highest softmax probability of ``c`` is
        taken and its mask thresholded at ``test_cfg.mask_thr`` (0.5) on the sigmoid.

        Args:
            mask_cls (Tensor): class logits (Q, C + 1), background last.
            mask_pred (Tensor): mask logits (Q, H, W).

        Returns:
            InstanceData: ``masks`` (C, H, W) bool, ``labels`` (C,) = 0..C-1, ``scores`` (C,) the
            chosen queries' probabilities of their class, ``bboxes`` (C, 4) from the masks.
        """
        mask_thr = self.test_cfg.get('mask_thr', 0.5)
        probs = F.softmax(mask_cls.float(), dim=-1)[:, :-1]  # (Q, C)
        scores, query_index = probs.max(0)  # (C,), (C,)
        masks = mask_pred[query_index].sigmoid() > mask_thr  # (C, H, W)
        return InstanceData(masks=masks, labels=torch.arange(masks.shape[0], device=masks.device),
                            scores=scores, bboxes=mask2bbox(masks))

    def interactive_postprocess(self, mask_cls: Tensor, mask_pred: Tensor, prompt: Tensor) -> InstanceData:
        """One mask for one visual prompt (interactive segmentation, reference §5 "Interactive").

        Candidates: the queries whose instance score (softmax probability of the prompt's class times the
        mean sigmoid inside the query's mask, as :meth:`instance_postprocess`) is at least
        ``test_cfg.interactive_score_thr`` (0.5), or the best query if none is. Among them the mask that
        agrees most with the prompt wins, by ``test_cfg.interactive_select``:

        * ``'box_iou'`` (default, the official rule): IoU of the mask's bounding box with the prompt's
          bounding box. Crude for point/scribble prompts (it favours the smallest box around the point).
        * ``'mask_iou'``: IoU of the mask with the prompt mask itself (box and mask prompts cover the object).

        Ties go to the higher score.

        Args:
            mask_cls (Tensor): class logits (Q, 2): the prompt's class, background last.
            mask_pred (Tensor): mask logits (Q, H, W).
            prompt (Tensor): (H, W) bool prompt mask at the same size.

        Returns:
            InstanceData: one ``masks`` (1, H, W) bool, ``labels`` [0], ``scores`` (1,), ``bboxes`` (1, 4).
        """
        cfg = self.test_cfg
        thr = cfg.get('interactive_score_thr', 0.5)
        select = cfg.get('interactive_select', 'box_iou')
        if select not in ('box_iou', 'mask_iou'):
            raise ValueError(f"test_cfg.interactive_select must be 'box_iou' or 'mask_iou', got {select!r}")
        binary = mask_pred > 0  # (Q, H, W)
        probs = F.softmax(mask_cls.float(), dim=-1)[:, 0]  # (Q,)
        mean_inside = (mask_pred.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        scores = probs * mean_inside  # (Q,)
        candidates = (scores >= thr).nonzero(as_tuple=True)[0]
        if candidates.numel() == 0:
            candidates = scores.argmax()[None]
        prompt = prompt.bool()
        if select == 'box_iou':
            boxes = mask2bbox(binary[candidates])  # (N, 4)
            prompt_box = mask2bbox(prompt[None])  # (1, 4)
            agreement = bbox_overlaps(boxes, prompt_box)[:, 0]
        else:
            inter = (binary[candidates] & prompt).flatten(1).sum(1).float()
            union = (binary[candidates] | prompt).flatten(1).sum(1).float()
            agreement = inter / union.clamp_min(1)
        # the best agreement; among equal agreements the higher score
        order = torch.argsort(scores[candidates], descending=True, stable=True)
        best = order[agreement[order].argmax()]
        q = candidates[best]
        masks = binary[q][None]
        return InstanceData(masks=masks, labels=masks.new_zeros(1, dtype=torch.long), scores=scores[q][None],
                            bboxes=mask2bbox(masks))

    @staticmethod
    def crop_to_image(mask_pred: Tensor, meta: dict, rescale: bool) -> Tensor:
        """Mask logits (Q, H_pad, W_pad) -> (Q, h, w) float: padding cropped (``img_shape``), then
        bilinearly resized to ``ori_shape`` when ``rescale``."""
        img_h, img_w = meta['img_shape'][:2]
        mask_pred = mask_pred[:, :img_h, :img_w].float()  # (Q, img_h, img_w)
        if rescale:
            ori_h, ori_w = meta['ori_shape'][:2]
            mask_pred = F.interpolate(
                mask_pred[:, None], size=(ori_h, ori_w), mode='bilinear', align_corners=False)[:, 0]
        return mask_pred

    def predict(self,
                mask_cls_results: Tensor,
                mask_pred_results: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = False,
                **kwargs) -> List[Dict[str, object]]:
        """Post-process a batch; only the last decoder layer's outputs are used.

        Per image: crop the padding (``img_shape``), optionally resize the mask
        logits to ``ori_shape`` (bilinear), then run the enabled post-processings
        in fp32.

        Args:
            mask_cls_results (Tensor): class logits (B, Q, C + 1).
            mask_pred_results (Tensor): mask logits (B, Q, h, w), usually already
                upsampled to ``batch_input_shape`` by the head.
            batch_data_samples (list[DetDataSample]): for ``img_shape``/``ori_shape`` and, when a sample has
                its own thing/stuff split, ``num_things_classes``.
            rescale (bool): resize to the original image size. Defaults to False.
            **kwargs: ignored (mmdet's signature).

        Returns:
            list[dict]: per image, present when enabled: ``'pan_results'``
            (PixelData), ``'ins_results'`` (InstanceData), ``'sem_results'``
            (PixelData).
        """
        panoptic_on = self.test_cfg.get('panoptic_on', True)
        semantic_on = self.test_cfg.get('semantic_on', False)
        instance_on = self.test_cfg.get('instance_on', False)

        results = []
        for mask_cls, mask_pred, data_sample in zip(mask_cls_results, mask_pred_results, batch_data_samples):
            mask_cls = mask_cls.float()  # (Q, C + 1)
            mask_pred = self.crop_to_image(mask_pred, data_sample.metainfo, rescale)
            num_things = data_sample.metainfo.get('num_things_classes')
            result: Dict[str, object] = dict()
            if panoptic_on:
                result['pan_results'] = self.panoptic_postprocess(mask_cls, mask_pred, num_things)
            if instance_on:
                result['ins_results'] = self.instance_postprocess(mask_cls, mask_pred, num_things)
            if semantic_on:
                result['sem_results'] = self.semantic_postprocess(mask_cls, mask_pred)
            results.append(result)
        return results
