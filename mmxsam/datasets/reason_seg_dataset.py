"""Reasoning segmentation (LISA's ReasonSeg and the bundled ``reason_seg``): labelme JSONs next to their images.

Files (LISA's layout)::

    <folder>/<name>.jpg + <name>.json    labelme: text (list of queries), is_sentence, shapes, imagePath, ..
    explanatory/train.json              optional: [{image: <name>.jpg, query, outputs: <explanation>}, ..]

``<folder>`` is ``data_prefix['img']`` (e.g. ``'ReasonSeg/train'``). A JSON's image is ``<name>`` with the
extension of its ``imagePath`` (else ``imagePath`` itself, else ``.jpg``/``.jpeg``/``.png``).

Masks are rasterised as LISA (``utils/data_processing.get_mask_from_json``) and X-SAM do, so the
evaluation ground truth is the benchmark's: shapes labelled ``flag`` are skipped; every other shape is
filled with OpenCV (points truncated to int, outline + fill); shapes are painted from the largest to the
smallest, shapes whose label contains ``ignore`` with the ignore value and all others (``target``) with 1.
The target is the pixels left at 1 (one instance: all target polygons are one object), the ignore mask
the pixels left at ignore (pixels excluded from evaluation). Both are stored as compressed RLE.

Samples (reference §4 "Reaseg"):

* **Training**: one record per image; every query of the image is one turn (in file order), each
  answered with one ``<SEG>``, all pointing at the same target (instance ``i`` has label ``i``). Queries
  use the ``reaseg_long`` templates when ``is_sentence`` is true, else ``reaseg_short``; the query text is
  stripped and wrapped as ``<p>query</p>`` (the official ``cond_type='phrase'`` format, case kept), and
  ``phrases`` holds the stripped queries. When the image has an explanation (``explain_file``), each turn
  independently switches with probability ``explain_prob`` (0.5, as the official code: its own
  ``explain_ratio`` argument is ignored there, honoured here) to the ``reaseg_explain`` question and the
  answer ``'<explanation> ' + suffix``.
* **Evaluation**: one record per query, label 0, ``split`` = ``'long'`` (``is_sentence``) or ``'short'``,
  for :class:`~mmxsam.evaluation.ReferSegMetric`; ``query_type`` selects the official test subsets
  (``'all'``, ``'sentence'`` = long, ``'phrase'`` = short).

Bad input (unreadable JSON, missing image, image size disagreeing with ``imageHeight``/``imageWidth``, no
query, a polygon with < 3 points or an unsupported shape type, no target shape or an empty target) raises
a ``ValueError`` naming the file, or with ``skip_invalid=True`` drops the JSON; drops are counted per
reason in :attr:`skip_counts` and shapes per kind (``target``/``ignore``/``flag``) in :attr:`shape_counts`.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np
from mmdet.registry import DATASETS
from mmengine.logging import print_log
from mmengine.utils import is_abs
from PIL import Image

from .prompts import build_turns, format_phrase, get_task_prompts
from .utils.annotation_io import load_json, require_keys
from .utils.mask_codec import encode_mask
from .xsam_base_dataset import XSAMBaseDataset

SKIP_REASONS = ('unreadable_json', 'missing_image', 'size_mismatch', 'no_text', 'invalid_shape', 'no_target')
QUERY_TYPES = ('all', 'sentence', 'phrase')
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png')
_IGNORE_VALUE = 255
_EXIF_ORIENTATION = 0x0112


class _Invalid(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def image_size(path: str) -> Tuple[int, int]:
    """``(height, width)`` of an image as it is displayed (EXIF orientation applied, as OpenCV and labelme
    load it), read from the header only."""
    with Image.open(path) as im:
        width, height = im.size
        if im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
            width, height = height, width
    return height, width


def shape_points(shape: dict) -> np.ndarray:
    """A labelme shape's polygon as an ``(N, 2)`` int32 array (LISA's truncation); rectangles give 4 corners.

    Raises:
        _Invalid: fewer than 3 points, or a shape type that has no area (line, point, circle...).
    """
    kind = shape.get('shape_type') or 'polygon'
    pts = np.asarray(shape.get('points', []), dtype=np.float64).reshape(-1, 2)
    if kind == 'rectangle' and len(pts) == 2:
        (x0, y0), (x1, y1) = pts
        pts = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
    elif kind != 'polygon':
        raise _Invalid('invalid_shape', f'shape {shape.get("label")!r} has unsupported shape_type {kind!r}')
    if len(pts) < 3:
        raise _Invalid('invalid_shape', f'polygon {shape.get("label")!r} has {len(pts)} points (< 3)')
    return pts.astype(np.int32)


def rasterize_labelme(shapes: List[dict], height: int, width: int) -> Tuple[np.ndarray, np.ndarray, Dict[str, int]]:
    """LISA's ``get_mask_from_json``: ``(target, ignore, counts)``, two bool ``(H, W)`` masks and the number
    of target / ignore / flag shapes."""
    counts = dict(target=0, ignore=0, flag=0)
    painted = []
    for shape in shapes:
        label = str(shape.get('label', '')).lower()
        if label == 'flag':
            counts['flag'] += 1
            continue
        value = _IGNORE_VALUE if 'ignore' in label else 1
        counts['ignore' if value == _IGNORE_VALUE else 'target'] += 1
        pts = shape_points(shape)[None]
        alone = np.zeros((height, width), np.uint8)
        cv2.polylines(alone, pts, True, 1, 1)
        cv2.fillPoly(alone, pts, 1)
        painted.append((int(alone.sum()), pts, value))
    canvas = np.zeros((height, width), np.uint8)
    for _, pts, value in sorted(painted, key=lambda p: p[0], reverse=True):  # largest first, stable
        cv2.polylines(canvas, pts, True, value, 1)
        cv2.fillPoly(canvas, pts, value)
    return canvas == 1, canvas == _IGNORE_VALUE, counts


@DATASETS.register_module()
class XSAMReasonSegDataset(XSAMBaseDataset):
    """Reasoning segmentation from a folder of labelme JSONs (see the module docstring).

    Args:
        data_prefix (dict): ``img``: the folder holding the images and their JSONs (relative to ``data_root``).
        explain_file (str, optional): LISA's explanatory JSON (relative to ``data_root``); training only.
        explain_prob (float): per-turn probability of the explanatory variant when an explanation exists.
            Defaults to 0.5.
        query_type (str): ``'all'``, ``'sentence'`` (only ``is_sentence`` JSONs) or ``'phrase'`` (only the
            others). Defaults to ``'all'``.
        skip_invalid (bool): drop (and count) invalid JSONs instead of raising. Defaults to False.
        **kwargs: :class:`XSAMBaseDataset` (``prompt_mode``, ``source_name``) and mmengine's ``BaseDataset``.
    """

    TASK = 'reaseg'

    def __init__(self,
                 *args,
                 explain_file: Optional[str] = None,
                 explain_prob: float = 0.5,
                 query_type: str = 'all',
                 skip_invalid: bool = False,
                 **kwargs) -> None:
        if query_type not in QUERY_TYPES:
            raise ValueError(f'query_type must be one of {QUERY_TYPES}, got {query_type!r}')
        if not 0.0 <= explain_prob <= 1.0:
            raise ValueError(f'explain_prob must be in [0, 1], got {explain_prob}')
        self.explain_file = explain_file
        self.explain_prob = explain_prob
        self.query_type = query_type
        self.skip_invalid = skip_invalid
        self.skip_counts: Dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        self.shape_counts: Dict[str, int] = dict(target=0, ignore=0, flag=0)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------------------------------------ loading
    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.explain_file and not is_abs(self.explain_file) and self.data_root:
            self.explain_file = osp.join(self.data_root, self.explain_file)

    def _load_explanations(self) -> Dict[str, str]:
        if not self.explain_file:
            return {}
        items = load_json(self.explain_file, key='explain_file', expect=list, what='explanatory JSON')
        for k, item in enumerate(items):
            require_keys(item, ('image', ), f'{self.explain_file}: item #{k}')
        return {osp.basename(item['image']): item['outputs'] for item in items if item.get('outputs')}

    @staticmethod
    def _find_image(json_path: str, image_path_field: Optional[str]) -> Optional[str]:
        folder, stem = osp.dirname(json_path), osp.splitext(osp.basename(json_path))[0]
        candidates = []
        if image_path_field:
            name = osp.basename(str(image_path_field).replace('\\', '/'))
            candidates += [stem + osp.splitext(name)[1], name]
        candidates += [stem + ext for ext in IMAGE_EXTENSIONS]
        for name in candidates:
            if name and osp.isfile(osp.join(folder, name)):
                return osp.join(folder, name)
        return None

    def _parse(self, json_path: str) -> dict:
        """One labelme JSON -> the image-level record (raises :class:`_Invalid`)."""
        try:
            with open(json_path, encoding='utf-8') as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise _Invalid('unreadable_json', f'cannot read the JSON: {e}') from None
        img_path = self._find_image(json_path, data.get('imagePath'))
        if img_path is None:
            raise _Invalid('missing_image', f'no image next to it (imagePath={data.get("imagePath")!r})')
        height, width = image_size(img_path)
        declared = (data.get('imageHeight'), data.get('imageWidth'))
        if None not in declared and declared != (height, width):
            raise _Invalid('size_mismatch', f'imageHeight/imageWidth {data.get("imageHeight")}x'
                           f'{data.get("imageWidth")} differ from the image {img_path} ({height}x{width})')
        questions = data.get('text') or []
        questions = [questions] if isinstance(questions, str) else [q for q in questions if str(q).strip()]
        if not questions:
            raise _Invalid('no_text', 'no query in "text"')
        target, ignore, counts = rasterize_labelme(data.get('shapes') or [], height, width)
        if counts['target'] == 0:
            raise _Invalid('no_target', f'no target shape (shapes: {counts})')
        if not target.any():
            raise _Invalid('no_target', 'the target region is empty (covered by ignore shapes or degenerate)')
        for k, v in counts.items():
            self.shape_counts[k] += v
        return dict(img_path=img_path, img_id=osp.splitext(osp.basename(img_path))[0], height=height, width=width,
                    is_sentence=bool(data.get('is_sentence', False)), questions=[str(q) for q in questions],
                    target=encode_mask(target), ignore_mask=encode_mask(ignore) if ignore.any() else None)

    def load_data_list(self) -> List[dict]:
        self.skip_counts = dict.fromkeys(SKIP_REASONS, 0)
        self.shape_counts = dict(target=0, ignore=0, flag=0)
        folder = self.data_prefix.get('img', '')
        if not osp.isdir(folder):
            raise FileNotFoundError(f'{type(self).__name__}: the labelme folder {folder!r} does not exist')
        explanations = self._load_explanations()
        data_list = []
        for name in sorted(os.listdir(folder)):
            if not name.endswith('.json'):
                continue
            json_path = osp.join(folder, name)
            try:
                rec = self._parse(json_path)
            except _Invalid as e:
                if not self.skip_invalid:
                    raise ValueError(f'{json_path}: {e} (pass skip_invalid=True to drop such files)') from None
                self.skip_counts[e.reason] += 1
                continue
            if self.query_type == 'sentence' and not rec['is_sentence']:
                continue
            if self.query_type == 'phrase' and rec['is_sentence']:
                continue
            target = rec.pop('target')
            rec.update(split='long' if rec['is_sentence'] else 'short',
                       explanation=explanations.get(osp.basename(rec['img_path'])))
            if self.test_mode:  # one record per query
                for i, q in enumerate(rec['questions']):
                    data_list.append(dict(rec, questions=[q], query_idx=i,
                                          instances=[dict(mask=target, label=0, ignore_flag=0)]))
            else:
                data_list.append(dict(rec, instances=[dict(mask=target, label=i, ignore_flag=0)
                                                      for i in range(len(rec['questions']))]))
        skipped = {k: v for k, v in self.skip_counts.items() if v}
        if skipped:
            print_log(f'{type(self).__name__}({folder}): skipped invalid files {skipped}', logger='current', level=30)
        return data_list

    # ------------------------------------------------------------------------------------------------ prompts
    def build_conversation(self, info: dict, rng) -> dict:
        """One turn per query (file order): ``conversations`` and ``phrases`` (the stripped queries)."""
        plain = get_task_prompts('reaseg_long' if info['is_sentence'] else 'reaseg_short')
        explain = get_task_prompts('reaseg_explain')
        explanation = (info.get('explanation') or '').strip()
        phrases, pairs = [], []
        for query in info['questions']:
            sent = query.strip()
            phrases.append(sent)
            if explanation and rng is not None and rng.random() < self.explain_prob:
                pairs.append((explain.pick_question(rng, sent=format_phrase(sent)),
                              explain.pick_answer(rng, explanation=explanation)))
            else:
                pairs.append((plain.pick_question(rng, sent=format_phrase(sent)), plain.pick_answer(rng)))
        info.update(phrases=phrases, conversations=build_turns(pairs))
        return info
