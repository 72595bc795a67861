"""The semantic target of a generic segmentation sample: a label map from its instance masks."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class SemanticSegTarget(BaseTransform):
    """``gt_seg_map`` (H, W) uint8/int32: the label (``gt_bboxes_labels``, the phrase index = the class index at
    evaluation) of the instance covering each pixel, ``ignore_index`` where none does (COCO's unlabeled pixels
    and crowd regions, which panoptic PNGs mark as crowd segments and X-SAM leaves out of the targets);
    packed as ``gt_sem_seg`` for a semantic metric.

    Instances of a panoptic annotation do not overlap; if they do, the later one wins. Put it after
    ``LoadPanopticSegments`` / ``LoadXSAMAnnotations``; at evaluation after the resize, so the map keeps the
    original image size.

    Args:
        ignore_index (int): value of unlabeled pixels. Defaults to 255.
    """

    def __init__(self, ignore_index: int = 255) -> None:
        self.ignore_index = ignore_index

    def transform(self, results: dict) -> dict:
        masks, labels = results.get('gt_masks'), results.get('gt_bboxes_labels')
        if masks is None or labels is None:
            raise KeyError(f"{results.get('img_path')}: SemanticSegTarget needs gt_masks and gt_bboxes_labels (put "
                           'LoadPanopticSegments or LoadXSAMAnnotations before it)')
        labels = np.asarray(labels)
        if len(labels) and int(labels.max()) >= self.ignore_index:
            raise ValueError(f"{results.get('img_path')}: label {int(labels.max())} collides with ignore_index "
                             f'{self.ignore_index}')
        dtype = np.uint8 if self.ignore_index < 256 else np.int32
        target = np.full((masks.height, masks.width), self.ignore_index, dtype)
        for mask, label in zip(masks.masks, labels):
            target[mask.astype(bool)] = label
        results['gt_seg_map'] = target
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ignore_index={self.ignore_index})'
