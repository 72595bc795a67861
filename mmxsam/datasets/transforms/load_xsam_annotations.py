"""Decode a task record's masks into mmdet's memory-lean structures.

Records (:mod:`mmxsam.datasets.xsam_base_dataset`) keep masks as COCO segmentations (RLE or polygons);
this transform decodes them at the image's own size into ``uint8`` :class:`BitmapMasks` (one byte per
pixel; never int64, and padding happens later, in the data preprocessor):

* ``gt_masks`` (N, H, W), ``gt_bboxes`` (N, 4, from the masks), ``gt_bboxes_labels`` (N,) and
  ``gt_ignore_flags`` (N,) from ``instances``;
* ``gt_vprompt_masks`` (K, H, W) from ``vprompts`` (one per ``<region>``);
* ``gt_ignore_mask`` (1, H, W) from ``ignore_mask`` (pixels excluded from evaluation), if present.
"""
from typing import List, Optional, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from ..utils.mask_codec import decode_mask


def _decode_all(segms: List, height: int, width: int, what: str, record: str) -> np.ndarray:
    out = np.zeros((len(segms), height, width), dtype=np.uint8)
    for k, segm in enumerate(segms):
        try:
            out[k] = decode_mask(segm, height, width)
        except (ValueError, TypeError) as e:
            raise ValueError(f'{record}: {what} {k} cannot be decoded: {e}') from e
    return out


def record_size_and_name(results: dict) -> Tuple[int, int, str]:
    """The record's image size ``(height, width)`` (the loaded image's if present) and a name for messages."""
    if 'ori_shape' in results:
        height, width = results['ori_shape'][:2]
    else:
        height, width = results['height'], results['width']
    return height, width, f"{results.get('img_path') or 'record'} (img_id={results.get('img_id')})"


def set_instance_targets(results: dict, masks: np.ndarray, instances: List[dict]) -> None:
    """``gt_masks`` (uint8 BitmapMasks), ``gt_bboxes`` (from the masks), ``gt_bboxes_labels`` and
    ``gt_ignore_flags`` from ``masks`` (N, H, W) and the matching ``instances`` (same order)."""
    height, width = masks.shape[1:]
    results['gt_masks'] = BitmapMasks(masks, height, width)
    results['gt_bboxes'] = HorizontalBoxes(results['gt_masks'].get_bboxes(dst_type='hbox').tensor)
    results['gt_bboxes_labels'] = np.array([inst['label'] for inst in instances], dtype=np.int64)
    results['gt_ignore_flags'] = np.array([bool(inst.get('ignore_flag', 0)) for inst in instances], dtype=bool)


@TRANSFORMS.register_module()
class LoadXSAMAnnotations(BaseTransform):
    """Args:
        with_vprompts (bool): decode ``vprompts``. Defaults to True.
        check_empty (bool): raise if an instance or visual-prompt mask is empty (a record that would pair a
            phrase with nothing). Defaults to True.
    """

    def __init__(self, with_vprompts: bool = True, check_empty: bool = True) -> None:
        self.with_vprompts = with_vprompts
        self.check_empty = check_empty

    def transform(self, results: dict) -> Optional[dict]:
        height, width, record = record_size_and_name(results)
        instances = results.get('instances', [])
        masks = _decode_all([inst['mask'] for inst in instances], height, width, 'instance', record)
        if self.check_empty and len(masks) and not masks.reshape(len(masks), -1).any(1).all():
            empty = [k for k in range(len(masks)) if not masks[k].any()]
            raise ValueError(f'{record}: instance masks {empty} are empty')
        set_instance_targets(results, masks, instances)
        if self.with_vprompts and results.get('vprompts'):
            vp = _decode_all(results['vprompts'], height, width, 'visual prompt', record)
            if self.check_empty and not vp.reshape(len(vp), -1).any(1).all():
                raise ValueError(f'{record}: visual prompts {[k for k in range(len(vp)) if not vp[k].any()]} are empty')
            results['gt_vprompt_masks'] = BitmapMasks(vp, height, width)
        if results.get('ignore_mask') is not None:
            ign = _decode_all([results['ignore_mask']], height, width, 'ignore mask', record)
            results['gt_ignore_mask'] = BitmapMasks(ign, height, width)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(with_vprompts={self.with_vprompts}, check_empty={self.check_empty})'
