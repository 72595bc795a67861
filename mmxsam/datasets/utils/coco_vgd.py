"""Build X-SAM's COCO-VGD annotation records (four visual prompts per instance) from COCO instances.

Output layout (the released ``vgdseg_annotations``; :func:`~mmxsam.datasets.synthetic.formats.vgd_record`)::

    [dict(image_file=<file_name>, image_id=<id>, image_size=[h, w],
          annotations=[dict(<COCO annotation>, bbox_mode=1,      # 1 = XYWH_ABS
                            visual_prompts=dict(point_visual_prompt=<RLE>, scribble_visual_prompt=<RLE>,
                                                box_visual_prompt=<RLE>, mask_visual_prompt=<RLE>)), ...],
          image_info=dict(file_name=..., image_id=..., height=h, width=w)), ...]

Rules (reference §4 "VGD"; prompt generation in :mod:`.visual_prompts`):

* crowd annotations (``iscrowd=1``) are skipped (counted ``crowd``);
* polygons with fewer than 3 points (or an odd number of coordinates) are dropped from the segmentation;
  an annotation left without any valid polygon is skipped (``invalid_polygon``), one that lost only some
  parts is kept with the valid ones (``dropped_polygons`` counts the parts); an RLE of another size or an
  unreadable segmentation is skipped (``invalid_segmentation``), an empty mask too (``empty_mask``);
* an instance whose point/scribble/box prompt comes out empty (every connected component has area
  <= 5 px) is **kept** with the empty RLE, counted per prompt in ``empty_prompt``: it stays a target and
  :class:`~mmxsam.datasets.XSAMVGDSegDataset` skips the empty prompt as a prompt source;
* an image left without annotations is not written (``images_without_instances``).

Randomness: image ``i`` uses ``np.random.default_rng([seed, image_id])`` (string ids: their CRC32), its
annotations in file order, so the output depends only on ``seed`` and the JSON, not on ``workers``.
"""
import multiprocessing as mp
import zlib
from collections import Counter
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .mask_codec import decode_mask
from .visual_prompts import encode_visual_prompts, generate_visual_prompts, scale_prompt_params

#: ``prompt_params`` value that scales the prompt sizes to each image (``scale_prompt_params((h, w))``).
SCALE_TO_IMAGE = 'scale_to_image'
#: The reference sizes (point radius 10 px, scribble radius 5 px, amplitude 10-20 px).
REFERENCE_PROMPT_PARAMS = dict(point_radius=10, scribble_radius=5, amplitude=(10.0, 20.0))
COUNT_KEYS = ('images', 'images_written', 'images_without_instances', 'instances', 'crowd', 'invalid_polygon',
              'dropped_polygons', 'invalid_segmentation', 'empty_mask', 'empty_prompt')


def _image_seed(image_id) -> int:
    if isinstance(image_id, (int, np.integer)) and not isinstance(image_id, bool) and image_id >= 0:
        return int(image_id)
    return zlib.crc32(str(image_id).encode('utf-8'))


def _clean_segmentation(segm, height: int, width: int, counts: Counter):
    """The segmentation with invalid polygons removed, or None (counted) when nothing valid is left."""
    if isinstance(segm, list) and segm and not isinstance(segm[0], dict):
        valid = [p for p in segm if isinstance(p, (list, tuple)) and len(p) >= 6 and len(p) % 2 == 0]
        if not valid:
            counts['invalid_polygon'] += 1
            return None
        counts['dropped_polygons'] += len(segm) - len(valid)
        segm = [list(p) for p in valid]
    elif isinstance(segm, list) and not segm:
        counts['invalid_polygon'] += 1
        return None
    try:
        mask = decode_mask(segm, height, width)
    except (ValueError, TypeError, KeyError):
        counts['invalid_segmentation'] += 1
        return None
    if not mask.any():
        counts['empty_mask'] += 1
        return None
    return segm, mask


def build_image_record(img: dict, anns: List[dict], seed: int,
                       prompt_params: Union[dict, str, None] = None) -> Tuple[Optional[dict], Counter]:
    """One COCO image and its annotations -> ``(VGD record or None, counts)`` (see the module docstring)."""
    counts = Counter(images=1)
    height, width = int(img['height']), int(img['width'])
    if prompt_params == SCALE_TO_IMAGE:
        params = scale_prompt_params((height, width))
    else:
        params = dict(REFERENCE_PROMPT_PARAMS if prompt_params is None else prompt_params)
    rng = np.random.default_rng([int(seed), _image_seed(img['id'])])
    out = []
    for ann in anns:
        if int(ann.get('iscrowd', 0)):
            counts['crowd'] += 1
            continue
        cleaned = _clean_segmentation(ann.get('segmentation'), height, width, counts)
        if cleaned is None:
            continue
        segm, mask = cleaned
        prompts = generate_visual_prompts(mask, rng, **params)
        counts['empty_prompt'] += sum(1 for v in prompts.values() if not v.any())
        out.append(dict(ann, segmentation=segm, bbox_mode=1, visual_prompts=encode_visual_prompts(prompts)))
    counts['instances'] += len(out)
    if not out:
        counts['images_without_instances'] += 1
        return None, counts
    counts['images_written'] += 1
    record = dict(image_file=img['file_name'], image_id=img['id'], image_size=[height, width], annotations=out,
                  image_info=dict(file_name=img['file_name'], image_id=img['id'], height=height, width=width))
    return record, counts


def _work(args):
    return build_image_record(*args)


def build_vgd_records(coco, seed: int = 0, prompt_params: Union[dict, str, None] = None, workers: int = 1,
                      progress: bool = False, counts: Optional[Dict[str, int]] = None) -> List[dict]:
    """VGD records of every image of a COCO instances set, in ``coco.getImgIds()`` order.

    Args:
        coco: a ``pycocotools.coco.COCO`` (or anything with ``getImgIds``/``loadImgs``/``imgToAnns``).
        seed (int): the generation seed (image ``i`` draws from ``default_rng([seed, image_id])``).
        prompt_params (dict | str | None): keyword arguments of
            :func:`~.visual_prompts.generate_visual_prompts` (``point_radius``, ``scribble_radius``,
            ``amplitude``, ...); None: the reference sizes (10 / 5 px, 10-20 px); ``'scale_to_image'``:
            :func:`~.visual_prompts.scale_prompt_params` of each image (sizes x longer side / 640).
        workers (int): processes (``<= 1``: in this process). The result does not depend on it.
        progress (bool): show a tqdm bar.
        counts (dict, optional): filled in place with the counters of :data:`COUNT_KEYS`.

    Returns:
        list[dict]: one record per image with at least one kept annotation.
    """
    if prompt_params is not None and prompt_params != SCALE_TO_IMAGE and not isinstance(prompt_params, dict):
        raise TypeError(f'prompt_params must be None, a dict or {SCALE_TO_IMAGE!r}, got {prompt_params!r}')
    img_ids = list(coco.getImgIds())
    tasks = ((img, list(coco.imgToAnns.get(img['id'], [])), seed, prompt_params)
             for img in coco.loadImgs(img_ids))
    total = Counter()
    records = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(img_ids), desc='coco-vgd', unit='img')
    pool = None
    try:
        if workers is not None and workers > 1:
            # fork keeps the (large) COCO object shared; results come back in image order
            methods = mp.get_all_start_methods()
            pool = mp.get_context('fork' if 'fork' in methods else None).Pool(int(workers))
            results = pool.imap(_work, tasks, chunksize=8)
        else:
            results = map(_work, tasks)
        for rec, c in results:
            total.update(c)
            if rec is not None:
                records.append(rec)
            if bar is not None:
                bar.update(1)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
        if bar is not None:
            bar.close()
    if counts is not None:
        counts.update({k: int(total.get(k, 0)) for k in COUNT_KEYS})
    return records
