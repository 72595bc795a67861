"""X-SAM stage-1 segmentor: backbone -> neck -> Mask2Former-style head -> fusion head."""
from mmdet.models.detectors import Mask2Former
from mmdet.registry import MODELS
from mmdet.structures import SampleList


@MODELS.register_module()
class XSAMSegmentor(Mask2Former):
    """The stage-1 (segmentation fine-tuning) model of X-SAM, no LLM involved.

    mmdet's :class:`~mmdet.models.detectors.Mask2Former` with the same constructor
    (``backbone, neck, panoptic_head, panoptic_fusion_head, train_cfg, test_cfg,
    data_preprocessor, init_cfg``); ``train_cfg`` goes to the head (assigner,
    sampler, ``num_points``), ``test_cfg`` to the head and the fusion head. The only
    addition: :meth:`add_pred_to_datasample` also stores the semantic result, which
    mmdet's MaskFormer refuses.

    Data flow (X-SAM full size; tiny configs shrink every number)::

        inputs (B, 3, 1024, 1024)
        -> backbone: SAM ViT hidden states of several blocks, e.g. 3 x (B, 1024, 64, 64)
        -> neck (segmentation connector): tuple of maps at strides 8/16/32,
           (B, 512, 128, 128), (B, 1024, 64, 64), (B, 2048, 32, 32)
           (without a neck the backbone's tuple goes straight to the head)
        -> panoptic_head (``XSAMMask2FormerHead`` / mmdet ``Mask2FormerHead``):
           class logits (B, Q, C + 1), mask logits (B, Q, h, w) (h, w = 1/8 input for
           X-SAM's pixel decoder), upsampled to ``batch_input_shape`` by ``predict``
        -> panoptic_fusion_head (:class:`XSAMFusionHead`), per image, cropped to
           ``img_shape`` and resized to ``ori_shape`` when ``rescale``:
           ``pred_panoptic_seg.sem_seg`` (1, H, W), ``pred_instances`` (masks (N, H, W),
           labels, scores, bboxes) and ``pred_sem_seg.sem_seg`` (1, H, W), each per
           ``test_cfg.panoptic_on / instance_on / semantic_on``.

    ``loss`` returns the head's losses (``loss_cls``, ``loss_mask``, ``loss_dice`` and
    ``d{i}.*`` for the auxiliary decoder layers).
    """

    def add_pred_to_datasample(self, data_samples: SampleList, results_list: list) -> SampleList:
        """Store the fusion head's results in the data samples.

        Args:
            data_samples (list[DetDataSample]): the batch's samples (modified in place).
            results_list (list[dict]): per image, optional ``'pan_results'``
                (PixelData), ``'ins_results'`` (InstanceData), ``'sem_results'``
                (PixelData).

        Returns:
            list[DetDataSample]: with ``pred_panoptic_seg``, ``pred_instances`` and
            ``pred_sem_seg`` set where present.
        """
        for data_sample, pred_results in zip(data_samples, results_list):
            if 'pan_results' in pred_results:
                data_sample.pred_panoptic_seg = pred_results['pan_results']
            if 'ins_results' in pred_results:
                data_sample.pred_instances = pred_results['ins_results']
            if 'sem_results' in pred_results:
                data_sample.pred_sem_seg = pred_results['sem_results']
        return data_samples
