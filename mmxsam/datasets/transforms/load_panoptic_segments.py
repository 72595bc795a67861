"""Decode a COCO panoptic PNG into the masks of a genseg/ovseg record's ``instances``.

Used in place of :class:`~.LoadXSAMAnnotations` for records of :class:`~mmxsam.datasets.XSAMGenericSegDataset`,
whose ``instances`` name a PNG segment (``segment_id``) instead of carrying a COCO segmentation. It gives the
same outputs, in the same memory-lean layout (``uint8``, one byte per pixel, at the image's own size):

* ``gt_masks``: :class:`BitmapMasks` ``(N, H, W)`` uint8, mask ``k`` = the pixels of ``instances[k]``'s segment;
* ``gt_bboxes``: :class:`HorizontalBoxes` ``(N, 4)`` from the masks;
* ``gt_bboxes_labels``: ``(N,)`` int64 = ``instances[k]['label']`` (the index of its phrase);
* ``gt_ignore_flags``: ``(N,)`` bool.

Row ``k`` of every output comes from ``instances[k]``; an instance dropped as invalid is dropped from all of
them (and from ``instances``) together, so labels and masks never shift against each other.
"""
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.fileio import get
from mmengine.logging import print_log

from ..utils.mask_codec import encode_mask
from .load_xsam_annotations import record_size_and_name, set_instance_targets


def rgb2id(png: np.ndarray) -> np.ndarray:
    """COCO panoptic RGB ``(H, W, 3)`` uint8 -> segment ids ``(H, W)`` uint32 (``R + 256 G + 256^2 B``)."""
    png = png.astype(np.uint32)
    return png[..., 0] | (png[..., 1] << 8) | (png[..., 2] << 16)


@TRANSFORMS.register_module()
class LoadPanopticSegments(BaseTransform):
    """Required keys: ``seg_map_path`` (None: no ground truth, e.g. inference), ``instances`` (each with
    ``segment_id``, ``label``, ``ignore_flag``), ``ori_shape`` or ``height``/``width``.

    Added keys: ``gt_masks``, ``gt_bboxes``, ``gt_bboxes_labels``, ``gt_ignore_flags``. Modified: ``instances``
    (invalid ones removed; with ``with_rle`` each gets ``mask``, its compressed RLE, as in the record contract).

    Args:
        with_rle (bool): also store each instance's mask as a COCO RLE in ``instances`` (only needed by
            consumers of the record format; the model uses ``gt_masks``). Defaults to False.
        skip_invalid (bool): a segment id that is not in the PNG is dropped (with its label), counted in
            ``num_skipped`` (this process) and logged; False (default) raises a ``ValueError`` naming the PNG,
            the image id and the segment.
        imdecode_backend (str): ``mmcv.imfrombytes`` backend. Defaults to 'cv2'.
        backend_args (dict, optional): file backend arguments.
    """

    def __init__(self, with_rle: bool = False, skip_invalid: bool = False, imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        self.with_rle = with_rle
        self.skip_invalid = skip_invalid
        self.imdecode_backend = imdecode_backend
        self.backend_args = backend_args
        self.num_skipped = 0

    def _read_ids(self, path: str, where: str) -> np.ndarray:
        try:
            data = get(path, backend_args=self.backend_args)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'{where}: panoptic PNG not found: {path}') from e
        png = mmcv.imfrombytes(data, flag='color', channel_order='rgb', backend=self.imdecode_backend)
        if png is None:
            raise ValueError(f'{where}: cannot decode the panoptic PNG {path}')
        return rgb2id(png)

    def transform(self, results: dict) -> dict:
        height, width, where = record_size_and_name(results)
        instances = results.get('instances', [])
        path = results.get('seg_map_path')
        kept = []
        masks = np.zeros((len(instances) if path is not None else 0, height, width), dtype=np.uint8)
        if path is None:
            if instances:
                raise ValueError(f'{where}: {len(instances)} instances but no seg_map_path to read their masks from')
        else:
            ids = self._read_ids(path, where)
            if ids.shape != (height, width):
                raise ValueError(f'{where}: panoptic PNG {path} is {ids.shape[1]}x{ids.shape[0]} (WxH), '
                                 f'the image is {width}x{height}')
            for inst in instances:
                row = masks[len(kept)]
                np.equal(ids, inst['segment_id'], out=row.view(bool))  # written in place, no temporary
                if not row.any():
                    msg = f"{where}: segment {inst['segment_id']} is not in the panoptic PNG {path}"
                    if not self.skip_invalid:
                        raise ValueError(msg + ' (set skip_invalid=True to drop such segments)')
                    self.num_skipped += 1
                    print_log(f'skipped: {msg}', logger='current', level=logging.WARNING)
                    continue
                if self.with_rle:
                    inst['mask'] = encode_mask(row)
                kept.append(inst)
            if len(kept) < len(masks):
                masks = masks[:len(kept)].copy()
        results['instances'] = kept
        set_instance_targets(results, masks, kept)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(with_rle={self.with_rle}, skip_invalid={self.skip_invalid}, '
                f'imdecode_backend={self.imdecode_backend!r})')
