"""Encode/decode COCO-style segmentations (RLE dicts, polygons, lists of RLEs).

Every annotation format X-SAM reads stores masks in one of these forms:

* compressed RLE ``{'size': [h, w], 'counts': str}`` (COCO, VGD prompts, GranD-f ``rle_masks``),
* uncompressed RLE ``{'size': [h, w], 'counts': [int, ...]}`` (COCO crowd annotations),
* polygons ``[[x0, y0, x1, y1, ...], ...]`` (COCO, refer),
* a list of RLE dicts whose union is the mask (GranD-f groundings).
"""
from typing import Any, Dict, List, Union

import numpy as np
from pycocotools import mask as mask_utils

RLE = Dict[str, Any]


def encode_mask(mask: np.ndarray) -> RLE:
    """Encode a binary ``(H, W)`` mask as a JSON-serialisable compressed RLE.

    Returns:
        ``{'size': [H, W], 'counts': str}``.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'encode_mask expects a 2-D (H, W) mask, got shape {mask.shape}')
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    rle['size'] = [int(s) for s in rle['size']]
    return rle


def _to_rles(segm: Union[RLE, List], height: int, width: int) -> List:
    if isinstance(segm, dict):
        if 'counts' not in segm or 'size' not in segm:
            raise ValueError(f'RLE dict needs "size" and "counts", got keys {sorted(segm)}')
        if tuple(segm['size']) != (height, width):
            raise ValueError(f'RLE size {list(segm["size"])} does not match the image size {[height, width]}')
        if isinstance(segm['counts'], list):  # uncompressed RLE
            return [mask_utils.frPyObjects(segm, height, width)]
        counts = segm['counts']
        return [dict(size=list(segm['size']), counts=counts.encode('ascii') if isinstance(counts, str) else counts)]
    if isinstance(segm, list):
        if len(segm) == 0:
            return []
        if all(isinstance(s, dict) for s in segm):  # a list of RLEs: union
            return [r for s in segm for r in _to_rles(s, height, width)]
        polys = [p for p in segm if len(p) >= 6 and len(p) % 2 == 0]
        if len(polys) != len(segm):
            raise ValueError('polygon segmentation has a polygon with fewer than 3 points or an odd number '
                             f'of coordinates: lengths {[len(p) for p in segm]}')
        return mask_utils.frPyObjects(polys, height, width)
    raise TypeError(f'unsupported segmentation type {type(segm).__name__}')


def decode_mask(segm: Union[RLE, List], height: int, width: int) -> np.ndarray:
    """Decode any COCO-style segmentation to a bool ``(height, width)`` mask (union of its parts)."""
    rles = _to_rles(segm, height, width)
    if not rles:
        return np.zeros((height, width), dtype=bool)
    merged = mask_utils.merge(rles) if len(rles) > 1 else rles[0]
    return mask_utils.decode(merged).astype(bool)


def mask_to_polygons(mask: np.ndarray, min_points: int = 3) -> List[List[float]]:
    """Outer contours of a binary mask as COCO polygons ``[[x0, y0, x1, y1, ...], ...]``.

    Used where a format stores polygons (labelme shapes, refer-style annotations). Holes are not
    represented, as in those formats. Vertices are the centres of the boundary pixels (``index + 0.5``
    in COCO's continuous coordinates, where pixel ``i`` spans ``[i, i + 1)``), so rasterising the polygon
    with pycocotools gives back (nearly) the same pixels.
    """
    import cv2
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= min_points:
            polys.append([float(v) + 0.5 for v in c.reshape(-1)])
    return polys


def mask_to_bbox(mask: np.ndarray) -> List[float]:
    """Tight ``[x, y, w, h]`` box (COCO XYWH, pixel-edge convention) of a binary mask; zeros if empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    x0, y0 = float(xs.min()), float(ys.min())
    return [x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0]
