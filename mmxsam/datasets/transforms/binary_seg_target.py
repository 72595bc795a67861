"""The binary target of a referring / reasoning sample as a semantic map (what ``ReferSegMetric`` reads)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BinarySegTarget(BaseTransform):
    """``gt_seg_map`` (H, W) uint8: 1 inside the union of ``gt_masks``, 0 elsewhere, ``ignore_index`` where
    ``gt_ignore_mask`` is set (ReasonSeg "ignore" shapes); packed by ``PackXSAMInputs`` as ``gt_sem_seg``.

    Evaluation keeps targets at the original image size (the model's predictions are rescaled to it), so
    put ``LoadXSAMAnnotations`` and this transform *after* the resize, as mmdet's test pipelines do::

        [LoadImageFromFile, XSAMResize, LoadXSAMAnnotations, BinarySegTarget, PackXSAMInputs]

    A sample without instances gets an all-zero target (an empty ground truth, scored by the metric's
    empty-target rule).

    Args:
        ignore_index (int): value of ignored pixels. Defaults to 255.
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        masks = results.get('gt_masks')
        if masks is None:
            raise KeyError(f"{results.get('img_path')}: BinarySegTarget needs gt_masks (put LoadXSAMAnnotations "
                           'before it)')
        height, width = masks.height, masks.width
        target = np.zeros((height, width), np.uint8)
        if len(masks):
            target[masks.masks.any(0)] = 1
        ignore = results.get('gt_ignore_mask')
        if ignore is not None and len(ignore):
            target[ignore.masks[0].astype(bool)] = self.ignore_index
        results['gt_seg_map'] = target
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ignore_index={self.ignore_index})'
