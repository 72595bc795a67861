"""Grounded conversation generation (GCG): a caption whose phrases are grounded by masks.

Annotation formats (``ann_format``), as published with GLaMM's GranD-f and read by X-SAM:

* ``'grandf'`` (GranD-f; also PSG-GCG, alias ``'psg'``): a list of ``{image_id, file_name, caption,
  height?, width?, groundings: {phrase: {token_positives: [start, end], rle_masks: [RLE, ...]}}}``.
* ``'refcocog'`` (RefCOCOg-GCG): a list of one-key dicts ``{key: {img_file_name, caption, image_id?,
  height?, width?, refs: [{sentence, segmentation}, ...]}}``; each sentence is located in the caption
  (its first occurrence).
* ``'flickr'`` (Flickr30k-GCG): COCO-style ``{images: [{id, file_name, caption, height?, width?}],
  annotations: [{image_id, tokens_positive: [[start, end], ...], sam_mask: RLE}]}``.
* ``'val_test'``: the evaluation ground truth ``{val,test}_gcg_coco_mask_gt.json`` (COCO-style images and
  class-agnostic masks) with its ``..._caption_gt.json``; only the images are read. Both paths go to the
  metainfo (``mask_gt_file``, ``caption_gt_file``) for the GCG metric.

Spans (official rules, with the fixes noted):

* Captions are stripped of quotes/blanks and lower-cased; character offsets follow the stripping (the
  official code strips without shifting the offsets).
* A span must lie in the caption with ``start < end``; for GranD-f/PSG the phrase must occur in the caption,
  for RefCOCOg the sentence is looked up. Spans are sorted by ``(start, end)`` and an overlapping one is
  dropped (the earlier kept). Touching spans (``end == next start``) do not overlap (the official code also
  drops those).
* Annotations sharing one span are one phrase whose mask is the union of theirs (the official code keeps the
  first annotation only).
* A phrase whose mask is malformed (wrong size, bad polygon) or empty is dropped.
* Phrase ``i`` (``phrases[i] = caption[start:end]``) gets label ``i``, in order of appearance.

Every dropped phrase and image is counted (:attr:`XSAMGCGSegDataset.skipped_phrases`,
:attr:`~XSAMGCGSegDataset.skipped_images`) and logged when loading.

Conversation: the question is a ``gcgseg`` template. In training the answer is the caption with each span
wrapped as ``<p>span</p>`` followed by one space (the official ``tag_caption``), stripped, then one answer
suffix with a single ``<SEG>`` (``'... <SEG>.'``). **Generation mode** (evaluation): the record's answer is
``None``: ``conversations = [{'from': 'human', 'value': '<image>\\n' + question}, {'from': 'gpt', 'value':
None}]``. A ``None`` assistant value means "to be generated": the conversation encoder then ends the ids
with the assistant prefix (``<|assistant|>\\n``) and supervises nothing; the model generates the caption,
its ``<p>..</p>`` phrases and ``<SEG>``.
"""
import io
import logging
import os.path as osp
from collections import Counter, OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.fileio import exists, get, join_path, load
from mmengine.logging import print_log
from mmengine.utils import is_abs
from mmdet.registry import DATASETS
from pycocotools import mask as mask_utils

from .prompts import build_turns, format_phrase, get_task_prompts
from .utils.annotation_io import load_json
from .xsam_base_dataset import XSAMBaseDataset

ANN_FORMATS = ('grandf', 'psg', 'refcocog', 'flickr', 'val_test')


class _BadRecord(ValueError):
    """A record that does not follow ``ann_format`` (raised, never skipped)."""


def normalize_caption(raw: str) -> Tuple[str, int]:
    """``(caption, lead)``: ``raw`` stripped of blanks and quotes and lower-cased, and the number of
    characters cut from its front (offsets into ``raw`` minus ``lead`` index ``caption``). Characters
    whose lower case is longer than one character keep their case, so offsets stay valid."""
    stripped = raw.strip().strip('"').strip()
    lead = raw.find(stripped) if stripped else 0
    return ''.join(c.lower() if len(c.lower()) == 1 else c for c in stripped), lead


def normalize_phrase(phrase: str) -> str:
    return phrase.strip().strip('"').strip().lower()


def tag_caption(caption: str, spans: Sequence[Sequence[int]]) -> str:
    """The official ``tag_caption``: each span becomes ``<p>span</p>`` followed by one space (even where
    the caption already has one), then the whole is stripped. ``spans`` must not overlap."""
    for start, end in sorted(spans, key=lambda s: s[0], reverse=True):
        caption = f'{caption[:start]}{format_phrase(caption[start:end])} {caption[end:]}'
    return caption.strip()


def _as_span(value) -> Optional[Tuple[int, int]]:
    """``[start, end]`` or ``[[start, end], ...]`` (first used) -> ``(start, end)``; None if malformed."""
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        value = value[0]
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        return None
    return int(value[0]), int(value[1])


def _as_parts(segm) -> List:
    """A COCO segmentation as a list of parts: RLE dicts and single polygons (flat coordinate lists)."""
    if isinstance(segm, dict):
        return [segm]
    if isinstance(segm, (list, tuple)):
        parts = []
        for p in segm:
            if isinstance(p, dict):
                parts.append(p)
            elif isinstance(p, (list, tuple)) and p and isinstance(p[0], (list, tuple, dict)):
                parts += _as_parts(p)
            else:
                parts.append(p)
        return parts
    return [segm]


def _part_area(part, height: int, width: int) -> Optional[int]:
    """Pixel area of one part, or None if it is malformed or sized differently from the image."""
    try:
        if isinstance(part, dict):
            if list(part.get('size', ())) != [height, width] or 'counts' not in part:
                return None
            counts = part['counts']
            if isinstance(counts, list):
                rle = mask_utils.frPyObjects(dict(part), height, width)
            else:
                rle = dict(size=[height, width], counts=counts.encode('ascii') if isinstance(counts, str) else counts)
            return int(mask_utils.area(rle))
        if (isinstance(part, (list, tuple)) and len(part) >= 6 and len(part) % 2 == 0
                and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in part)):
            return int(mask_utils.area(mask_utils.frPyObjects([list(part)], height, width))[0])
    except (TypeError, ValueError, UnicodeError):
        return None
    return None


def _union(parts: List, height: int, width: int):
    """One COCO segmentation for the union of the parts: an RLE dict, a list of RLE dicts or polygons."""
    if len(parts) == 1 and isinstance(parts[0], dict):
        return parts[0]
    if all(isinstance(p, dict) for p in parts):
        return list(parts)
    if not any(isinstance(p, dict) for p in parts):
        return [list(p) for p in parts]
    polys = [list(p) for p in parts if not isinstance(p, dict)]
    rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    rle = dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))
    return [p for p in parts if isinstance(p, dict)] + [rle]


@DATASETS.register_module()
class XSAMGCGSegDataset(XSAMBaseDataset):
    """Grounded conversation generation (task ``gcgseg``).

    Args:
        ann_format (str): ``'grandf'``, ``'psg'`` (same layout), ``'refcocog'``, ``'flickr'`` or
            ``'val_test'``; see the module docstring. Defaults to ``'grandf'``.
        caption_ann_file (str, optional): ``'val_test'`` only: the caption ground truth. Defaults to the
            mask file's name with ``mask_gt`` replaced by ``caption_gt``, when that file exists. Relative
            paths are joined with ``data_root``.
        generation_mode (bool, optional): records without answers (the model generates). Defaults to
            ``test_mode or ann_format == 'val_test'``. ``'val_test'`` has no answers, so it requires it.
        skip_empty (bool): skip (and count) images left without a valid phrase; False raises instead.
            Defaults to True.
        min_caption_words (int): Flickr only, as the official parser: captions with fewer
            space-separated words are skipped. Defaults to 3.
        *args, **kwargs: as :class:`~mmxsam.datasets.XSAMBaseDataset`.

    Records: ``img_path``, ``img_id``, ``height``, ``width``, ``caption`` (lower-cased), ``spans``
    (``[[start, end], ...]`` into ``caption``, sorted, disjoint), ``phrases`` (``caption[start:end]``),
    ``instances`` (``[dict(mask=<COCO segmentation, union of the phrase's masks>, label=i,
    ignore_flag=0)]``, instance ``i`` grounds phrase ``i``). ``'val_test'`` records have ``caption=None``
    and no spans, phrases or instances (the metric reads the ground-truth files).

    Attributes:
        skipped_phrases (Counter): ``phrase_not_found``, ``invalid_span``, ``invalid_mask``,
            ``empty_mask``, ``overlapping_span``.
        skipped_images (Counter): ``no_phrase``, ``short_caption``.
        stats (Counter): ``images``, ``phrases``, ``merged_duplicates`` (annotations merged into the
            phrase of an identical span), ``span_text_mismatch`` (GranD-f/PSG spans whose text differs from
            their phrase key; kept, the span text is the phrase).
    """

    TASK = 'gcgseg'

    def __init__(self,
                 *args,
                 ann_format: str = 'grandf',
                 caption_ann_file: Optional[str] = None,
                 generation_mode: Optional[bool] = None,
                 skip_empty: bool = True,
                 min_caption_words: int = 3,
                 **kwargs) -> None:
        if ann_format not in ANN_FORMATS:
            raise ValueError(f'ann_format must be one of {ANN_FORMATS}, got {ann_format!r}')
        if generation_mode is None:
            generation_mode = bool(kwargs.get('test_mode', False)) or ann_format == 'val_test'
        if ann_format == 'val_test' and not generation_mode:
            raise ValueError("ann_format='val_test' holds no answers: it needs generation_mode=True")
        self.ann_format = ann_format
        self.caption_ann_file = caption_ann_file
        self.generation_mode = generation_mode
        self.skip_empty = skip_empty
        self.min_caption_words = min_caption_words
        self.skipped_phrases: Counter = Counter()
        self.skipped_images: Counter = Counter()
        self.stats: Counter = Counter()
        self.prompts = get_task_prompts(self.TASK)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------------------------------- paths
    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.ann_format != 'val_test':
            return
        cap = self.caption_ann_file
        if cap is None:
            head, tail = osp.split(self.ann_file)
            derived = osp.join(head, tail.replace('mask_gt', 'caption_gt'))
            if derived != self.ann_file and exists(derived, backend_args=self.backend_args):
                cap = derived
            else:
                print_log(f'{self.source_name}: no caption ground truth next to {self.ann_file}; pass '
                          'caption_ann_file for caption metrics', logger='current', level=logging.WARNING)
        elif not is_abs(cap) and self.data_root:
            cap = join_path(self.data_root, cap)
        self.caption_ann_file = cap
        self._metainfo.update(mask_gt_file=self.ann_file, caption_gt_file=cap)

    def _img_path(self, file_name: str) -> str:
        return osp.join(self.data_prefix.get('img_path', ''), file_name)

    def _image_size(self, height, width, parts: Sequence, file_name: str) -> Tuple[int, int]:
        """The given size, else the size of the first RLE, else the image file's header."""
        if height is not None and width is not None:
            return int(height), int(width)
        for p in parts:
            if isinstance(p, dict) and len(p.get('size', ())) == 2:
                return int(p['size'][0]), int(p['size'][1])
        from PIL import Image
        with Image.open(io.BytesIO(get(self._img_path(file_name), backend_args=self.backend_args))) as im:
            return im.height, im.width

    # ------------------------------------------------------------------------------------------- loading
    def load_data_list(self) -> List[dict]:
        data = (load_json(self.ann_file, self.backend_args) if self.ann_file.endswith('.json')
                else load(self.ann_file, backend_args=self.backend_args))
        self.skipped_phrases, self.skipped_images, self.stats = Counter(), Counter(), Counter()
        parse = dict(grandf=self._parse_grandf, psg=self._parse_grandf, refcocog=self._parse_refcocog,
                     flickr=self._parse_flickr, val_test=self._parse_val_test)[self.ann_format]
        data_list = parse(data)
        self.stats['images'] = len(data_list)
        self.stats['phrases'] = sum(len(r['phrases']) for r in data_list)
        print_log(f'{self.source_name} ({self.TASK}, {self.ann_format}): {len(data_list)} images, '
                  f'{self.stats["phrases"]} phrases from {self.ann_file}; skipped images '
                  f'{dict(self.skipped_images)}, skipped phrases {dict(self.skipped_phrases)}, '
                  f'merged duplicate spans {self.stats["merged_duplicates"]}', logger='current')
        return data_list

    @staticmethod
    def _require(record, keys: Sequence[str], where: str) -> None:
        if not isinstance(record, dict):
            raise _BadRecord(f'{where}: expected a dict, got {type(record).__name__}')
        missing = [k for k in keys if k not in record]
        if missing:
            raise _BadRecord(f'{where}: missing {missing} (keys: {sorted(record)})')

    def _parse_grandf(self, data) -> List[dict]:
        if not isinstance(data, list):
            raise _BadRecord(f'{self.ann_file}: a GranD-f/PSG file holds a list of records, got {type(data).__name__}')
        out = []
        for k, rec in enumerate(data):
            self._require(rec, ('caption', 'file_name', 'groundings'), f'{self.ann_file} record #{k}')
            caption, lead = normalize_caption(rec['caption'])
            candidates = []
            if not isinstance(rec['groundings'], dict):
                raise _BadRecord(f'{self.ann_file} record #{k}: "groundings" must be a dict {{phrase: grounding}}')
            for phrase, g in rec['groundings'].items():
                phrase = normalize_phrase(phrase)
                if not phrase or phrase not in caption:
                    self.skipped_phrases['phrase_not_found'] += 1
                    continue
                if not isinstance(g, dict):
                    raise _BadRecord(f'{self.ann_file} record #{k}: grounding of {phrase!r} must be a dict '
                                     '{token_positives, rle_masks}')
                span = _as_span(g.get('token_positives'))
                span = None if span is None else (span[0] - lead, span[1] - lead)
                if span is not None and caption[span[0]:span[1]] != phrase:
                    self.stats['span_text_mismatch'] += 1
                candidates.append((span, _as_parts(g.get('rle_masks'))))
            out.append(self._finish(caption, candidates, rec.get('image_id', k), rec['file_name'],
                                    rec.get('height'), rec.get('width')))
        return [r for r in out if r is not None]

    def _parse_refcocog(self, data) -> List[dict]:
        if not isinstance(data, list):
            raise _BadRecord(f'{self.ann_file}: a RefCOCOg-GCG file holds a list of records, got {type(data).__name__}')
        out = []
        for k, item in enumerate(data):
            if not isinstance(item, dict) or len(item) != 1:
                raise _BadRecord(f'{self.ann_file} record #{k}: expected a one-key dict {{key: record}}')
            rec = next(iter(item.values()))
            self._require(rec, ('caption', 'img_file_name', 'refs'), f'{self.ann_file} record #{k}')
            caption, _ = normalize_caption(rec['caption'])
            candidates = []
            for ref in rec['refs']:
                phrase = normalize_phrase(ref.get('sentence', ''))
                start = caption.find(phrase) if phrase else -1
                if start < 0:
                    self.skipped_phrases['phrase_not_found'] += 1
                    continue
                candidates.append(((start, start + len(phrase)), _as_parts(ref.get('segmentation'))))
            out.append(self._finish(caption, candidates, rec.get('image_id', k), rec['img_file_name'],
                                    rec.get('height'), rec.get('width')))
        return [r for r in out if r is not None]

    def _parse_flickr(self, data) -> List[dict]:
        self._require(data, ('images', 'annotations'), self.ann_file)
        anns_of: Dict = {}
        for ann in data['annotations']:
            anns_of.setdefault(ann['image_id'], []).append(ann)
        out = []
        for k, img in enumerate(data['images']):
            self._require(img, ('id', 'file_name', 'caption'), f'{self.ann_file} image #{k}')
            caption, lead = normalize_caption(img['caption'])
            if len(caption.split(' ')) < self.min_caption_words:
                self.skipped_images['short_caption'] += 1
                continue
            candidates = []
            for ann in anns_of.get(img['id'], []):
                span = _as_span(ann.get('tokens_positive'))
                span = None if span is None else (span[0] - lead, span[1] - lead)
                candidates.append((span, _as_parts(ann.get('sam_mask', ann.get('segmentation')))))
            out.append(self._finish(caption, candidates, img['id'], img['file_name'], img.get('height'),
                                    img.get('width')))
        return [r for r in out if r is not None]

    def _parse_val_test(self, data) -> List[dict]:
        self._require(data, ('images', ), self.ann_file)
        out = []
        for k, img in enumerate(data['images']):
            self._require(img, ('id', ), f'{self.ann_file} image #{k}')
            file_name = img.get('file_name') or f'{img["id"]}.jpg'  # the official code always uses id + .jpg
            height, width = self._image_size(img.get('height'), img.get('width'), (), file_name)
            out.append(dict(img_path=self._img_path(file_name), img_id=img['id'], height=height, width=width,
                            caption=None, spans=[], phrases=[], instances=[]))
        return out

    def _finish(self, caption: str, candidates: List[Tuple[Optional[Tuple[int, int]], List]], img_id,
                file_name: str, height, width) -> Optional[dict]:
        """Validate, merge and order one image's ``(span, mask parts)`` candidates into a record."""
        merged: 'OrderedDict[Tuple[int, int], List]' = OrderedDict()
        for span, parts in candidates:
            if span is None or not 0 <= span[0] < span[1] <= len(caption):
                self.skipped_phrases['invalid_span'] += 1
                continue
            if span in merged:
                self.stats['merged_duplicates'] += 1
                merged[span] += parts
            else:
                merged[span] = list(parts)
        height, width = self._image_size(height, width, [p for ps in merged.values() for p in ps], file_name)
        valid = []
        for span, parts in merged.items():
            areas = [_part_area(p, height, width) for p in parts]
            if not parts or any(a is None for a in areas):
                self.skipped_phrases['invalid_mask'] += 1
            elif sum(areas) == 0:
                self.skipped_phrases['empty_mask'] += 1
            else:
                valid.append((span, parts))
        kept, last_end = [], -1
        for span, parts in sorted(valid, key=lambda sp: sp[0]):
            if span[0] < last_end:
                self.skipped_phrases['overlapping_span'] += 1
                continue
            kept.append((span, parts))
            last_end = span[1]
        if not kept:
            if not self.skip_empty:
                raise ValueError(f'{self.ann_file}: image {img_id!r} ({file_name}) has no valid grounded phrase '
                                 '(pass skip_empty=True to skip such images)')
            self.skipped_images['no_phrase'] += 1
            return None
        return dict(img_path=self._img_path(file_name), img_id=img_id, height=height, width=width,
                    caption=caption, spans=[list(s) for s, _ in kept],
                    phrases=[caption[s:e] for (s, e), _ in kept],
                    instances=[dict(mask=_union(parts, height, width), label=i, ignore_flag=0)
                               for i, (_, parts) in enumerate(kept)])

    # ------------------------------------------------------------------------------------ conversation
    def build_conversation(self, info: dict, rng) -> dict:
        """Question from the ``gcgseg`` templates; the tagged caption + one ``<SEG>`` as the answer, or
        ``None`` in generation mode (see the module docstring)."""
        question = self.prompts.pick_question(rng)
        if self.generation_mode:
            answer = None
        else:
            answer = self.prompts.pick_answer(rng, caption=tag_caption(info['caption'], info['spans']))
        info['conversations'] = build_turns([(question, answer)])
        return info
