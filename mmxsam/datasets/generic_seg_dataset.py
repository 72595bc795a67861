"""Generic (COCO panoptic) and open-vocabulary (ADE20K panoptic) segmentation as X-SAM ``genseg``/``ovseg``.

Input: the COCO panoptic layout (``ann_file`` JSON with ``images``/``annotations``/``categories`` and one
PNG per image whose RGB encodes segment ids, ``id = R + 256 G + 256^2 B``), the same as mmdet's
:class:`~mmdet.datasets.CocoPanopticDataset`; ``data_prefix=dict(img=..., seg=...)``.

Records (see :mod:`.xsam_base_dataset`) are kept lean: the JSON fields only, masks are **not** decoded
when the data set is built. Decoding every PNG up front would take minutes on COCO (118k images) and keep
~1.3M RLE strings in every dataloader worker; the pipeline reads the one PNG a sample needs anyway.
So a stored record holds ``seg_map_path`` and ``segments_info``; :meth:`build_conversation` (run at every
read) samples the category list and writes ``instances`` without masks, and the transform
:class:`~.transforms.LoadPanopticSegments` decodes the PNG into ``gt_masks`` (``uint8`` BitmapMasks at the
image's own size) paired one-to-one with ``gt_bboxes_labels``.

Stored record::

    img_path, img_id, height, width, seg_map_path,
    segments_info = [dict(id=<segment id in the PNG>, category_id=<JSON id>, category=<index in classes>,
                          is_thing=bool, iscrowd=0 | 1), ...]    # all segments, crowd included (mmdet layout)

After :meth:`build_conversation`::

    category_ids = [<JSON id>, ...]            # the sampled category list, in prompt order
    phrases = [<cleaned name>, ...]            # same order; instance labels index it
    instances = [dict(segment_id, category_id, label, ignore_flag=0), ...]   # non-crowd, listed categories
    num_dropped_segments = int                 # non-crowd segments whose category was not listed
    conversations = LLaVA turns (one question listing ``<p>name</p>`` for every phrase, one ``<SEG>`` answer)

Category list (X-SAM ``GenSegDataset._sample_cats`` with ``use_full_cat=use_variant_cat=True``):

* evaluation (``rng`` None, or ``test_mode``): every category, in sorted category-id order, so labels are
  the indices of ``metainfo['classes']`` and mmdet's ``CocoPanopticMetric`` can score the predictions;
* training: with probability ``full_category_prob`` (0.5) every category; otherwise the image's positive
  categories plus a uniformly drawn number of random negatives. The order is always shuffled, and the draw
  is repeated at every read (the official code draws once per data set build). ``max_categories`` (the
  official ``num_class``) caps the list: positives first (a random subset of them if there are more than the
  cap; the segments of the others are dropped and counted), negatives fill the rest. The official
  ``num_class=10000`` behaves as no cap with "all negatives" in practice; here the number of negatives is
  uniform over what fits, so the positives-only branch really varies.
"""
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

from mmdet.datasets.api_wrappers import COCOPanoptic
from mmdet.registry import DATASETS
from mmengine.logging import print_log

from .prompts import build_turns, draw_index, format_phrases, get_task_prompts
from .synthetic.constants import clean_category_name
from .utils.annotation_io import load_json
from .xsam_base_dataset import XSAMBaseDataset

_MAX_LOGGED = 5  # invalid records named one by one in the log, then only counted


@DATASETS.register_module()
class XSAMGenericSegDataset(XSAMBaseDataset):
    """COCO-panoptic-style data set for X-SAM's generic segmentation (``genseg``).

    Args:
        max_categories (int, optional): cap on the number of categories listed in a training prompt (X-SAM's
            ``num_class``). None: no cap. Evaluation always lists every category.
        full_category_prob (float): training probability of listing every category (X-SAM: 0.5); otherwise
            positives plus random negatives. 0 reproduces the [main] branch's ``use_full_cat=False``.
        skip_invalid (bool): an ill-formed annotation (unknown category id, segment id 0 or repeated, an
            annotation whose image is not listed, two annotations for one image) skips its image, counted in
            ``num_skipped`` and logged; False (default) raises a ``ValueError`` naming the file and record.
            Segments missing from the PNG are found when it is read: see ``LoadPanopticSegments``.
        filter_cfg (dict, optional): ``filter_empty_gt`` (default True: skip images without any non-crowd
            segment) and ``min_size`` (skip images whose shorter side is smaller; default 0). Training only,
            as in mmdet: evaluation keeps every image (PQ counts them all).
        data_prefix (dict): ``img`` (image folder) and ``seg`` (panoptic PNG folder; required for training).
        **kwargs: :class:`XSAMBaseDataset` (``prompt_mode``, ``source_name``) and mmdet's ``BaseDetDataset``.

    ``metainfo`` after loading: ``classes``/``thing_classes``/``stuff_classes`` (the JSON names, in sorted
    category-id order, as mmdet's panoptic metric expects), ``class_phrases``/``thing_phrases``/
    ``stuff_phrases`` (the cleaned names), ``category_ids`` and ``palette`` (from the JSON colours). A
    ``metainfo=dict(classes=...)`` given by the user restricts the label space to those JSON names.

    Counters (this process): ``num_skipped`` (``invalid``/``empty``/``small`` images, ``orphan``
    annotations), ``num_crowd_segments`` (excluded from the targets), ``num_excluded_segments`` (outside a
    user-restricted ``classes``) and ``num_dropped_segments`` (not listed in a read's prompt; each record
    also carries its own ``num_dropped_segments``).
    """

    TASK = 'genseg'

    def __init__(self, *args, max_categories: Optional[int] = None, full_category_prob: float = 0.5,
                 skip_invalid: bool = False, filter_cfg: Optional[dict] = None,
                 data_prefix: Optional[dict] = None, **kwargs) -> None:
        data_prefix = dict(img='', seg='') if data_prefix is None else data_prefix
        if max_categories is not None and int(max_categories) < 1:
            raise ValueError(f'max_categories must be None or >= 1, got {max_categories!r}')
        if not 0.0 <= float(full_category_prob) <= 1.0:
            raise ValueError(f'full_category_prob must be in [0, 1], got {full_category_prob!r}')
        if not kwargs.get('test_mode', False) and not data_prefix.get('seg'):
            raise ValueError(f'{type(self).__name__}: training needs data_prefix["seg"] (the panoptic PNG folder); '
                             f'got data_prefix={data_prefix}')
        self.max_categories = None if max_categories is None else int(max_categories)
        self.full_category_prob = float(full_category_prob)
        self.skip_invalid = skip_invalid
        self.num_skipped: Dict[str, int] = dict(invalid=0, empty=0, small=0, orphan=0)
        self.num_crowd_segments = 0
        self.num_excluded_segments = 0
        self.num_dropped_segments = 0
        self.cat_ids: List[int] = []
        self._cat_phrases: Dict[int, str] = {}
        filter_cfg = dict(filter_empty_gt=True) if filter_cfg is None else filter_cfg
        super().__init__(*args, filter_cfg=filter_cfg, data_prefix=data_prefix, **kwargs)

    # ------------------------------------------------------------------ names
    def category_phrase(self, name: str) -> str:
        """The phrase a category is prompted with: X-SAM's cleaning (``sky-other-merged`` -> ``sky``)."""
        return clean_category_name(name)

    # ------------------------------------------------------------------ loading
    def _invalid(self, msg: str) -> None:
        if not self.skip_invalid:
            raise ValueError(f'{msg} (set skip_invalid=True to skip such records)')
        self.num_skipped['invalid'] += 1
        if self.num_skipped['invalid'] <= _MAX_LOGGED:
            print_log(f'{self.source_name}: skipped: {msg}', logger='current', level=logging.WARNING)

    def _load_categories(self, categories: Sequence[dict]) -> None:
        if not categories:
            raise ValueError(f'{self.ann_file}: no categories')
        cats = sorted(categories, key=lambda c: c['id'])
        if [c['id'] for c in cats] != [c['id'] for c in categories]:
            print_log(f'{self.ann_file}: categories are not listed in id order; labels follow sorted ids, '
                      "while mmdet's CocoPanopticMetric(ann_file=...) maps labels in the JSON's order",
                      logger='current', level=logging.WARNING)
        wanted = self._metainfo.get('classes')
        if wanted is not None:
            names = {c['name'] for c in cats}
            unknown = [n for n in wanted if n not in names]
            if unknown:
                raise ValueError(f'{self.ann_file}: metainfo classes {unknown} are not categories of the file')
            cats = [c for c in cats if c['name'] in set(wanted)]
        self.cat_ids = [c['id'] for c in cats]
        self._cat_phrases = {c['id']: self.category_phrase(c['name']) for c in cats}
        self._cat_label = {cid: i for i, cid in enumerate(self.cat_ids)}
        self._cat_isthing = {c['id']: bool(c.get('isthing', 1)) for c in cats}
        phrases = list(self._cat_phrases.values())
        repeated = sorted({p for p in phrases if phrases.count(p) > 1})
        if repeated:
            print_log(f'{self.ann_file}: cleaned category names {repeated} are shared by several categories',
                      logger='current', level=logging.WARNING)
        things = [c for c in cats if self._cat_isthing[c['id']]]
        stuff = [c for c in cats if not self._cat_isthing[c['id']]]
        meta = dict(
            classes=tuple(c['name'] for c in cats),
            thing_classes=tuple(c['name'] for c in things),
            stuff_classes=tuple(c['name'] for c in stuff),
            class_phrases=tuple(self._cat_phrases[c['id']] for c in cats),
            thing_phrases=tuple(self._cat_phrases[c['id']] for c in things),
            stuff_phrases=tuple(self._cat_phrases[c['id']] for c in stuff),
            category_ids=tuple(self.cat_ids))
        if all('color' in c for c in cats):
            meta['palette'] = [tuple(c['color']) for c in cats]
        self._metainfo.update(meta)

    def load_data_list(self) -> List[dict]:
        coco = COCOPanoptic()
        coco.dataset = load_json(self.ann_file, self.backend_args, expect=dict, what='COCO panoptic JSON')
        for key in ('images', 'annotations'):
            if not isinstance(coco.dataset.get(key), list):
                raise ValueError(f'{self.ann_file}: a COCO panoptic JSON needs the "{key}" list, got '
                                 f'{type(coco.dataset.get(key)).__name__} (its keys: {sorted(coco.dataset)})')
        coco.createIndex()
        self._load_categories(coco.dataset.get('categories', []))
        all_cat_ids = {c['id'] for c in coco.dataset['categories']}

        anns_by_img: Dict[int, dict] = {}
        repeated_imgs = set()
        for ann in coco.dataset.get('annotations', []):
            img_id = ann.get('image_id')
            if img_id not in coco.imgs:
                if not self.skip_invalid:
                    raise ValueError(f'{self.ann_file}: an annotation ({ann.get("file_name")}) refers to image_id '
                                     f'{img_id!r}, which is not in "images" (set skip_invalid=True to skip such '
                                     'records)')
                self.num_skipped['orphan'] += 1
                continue
            if img_id in anns_by_img:
                repeated_imgs.add(img_id)
            anns_by_img[img_id] = ann

        data_list = []
        for img_id, img in coco.imgs.items():
            where = f'{self.ann_file}: image {img_id} ({img.get("file_name")})'
            if img_id in repeated_imgs:
                self._invalid(f'{where} has several annotations')
                continue
            record = self.parse_data_info(dict(raw_img_info=img, raw_ann_info=anns_by_img.get(img_id)),
                                          where, all_cat_ids)
            if record is not None:
                data_list.append(record)
        n_seg = sum(len(r['segments_info']) for r in data_list)
        print_log(f'{self.source_name}: {len(data_list)} images, {n_seg} segments ({self.num_crowd_segments} crowd, '
                  f'excluded from the targets), {len(self.cat_ids)} categories; skipped: '
                  f'{self.num_skipped}', logger='current')
        return data_list

    def parse_data_info(self, raw_data_info: dict, where: str = 'record',
                        all_cat_ids: Optional[set] = None) -> Optional[dict]:
        """One image -> a stored record, or None when skipped as invalid (``skip_invalid``)."""
        img, ann = raw_data_info['raw_img_info'], raw_data_info['raw_ann_info']
        seg_name = (ann or {}).get('file_name') or osp.splitext(img['file_name'])[0] + '.png'
        seg_prefix = self.data_prefix.get('seg')
        segments_info, seen = [], set()
        for seg in (ann or {}).get('segments_info', []):
            sid, cid = seg.get('id'), seg.get('category_id')
            if cid not in (all_cat_ids if all_cat_ids is not None else self._cat_label):
                self._invalid(f'{where}: segment {sid} has unknown category_id {cid!r}')
                return None
            if not isinstance(sid, int) or sid <= 0 or sid in seen:
                self._invalid(f'{where}: segment id {sid!r} is ' + ('repeated' if sid in seen else
                                                                    'not a positive integer (0 is VOID)'))
                return None
            seen.add(sid)
            if cid not in self._cat_label:  # outside a user-restricted label space
                self.num_excluded_segments += 1
                continue
            iscrowd = int(seg.get('iscrowd', 0))
            self.num_crowd_segments += iscrowd
            segments_info.append(dict(id=sid, category_id=cid, category=self._cat_label[cid],
                                      is_thing=self._cat_isthing[cid] and not iscrowd, iscrowd=iscrowd))
        return dict(
            img_path=osp.join(self.data_prefix.get('img', ''), img['file_name']),
            img_id=img['id'], height=img['height'], width=img['width'],
            seg_map_path=osp.join(seg_prefix, seg_name) if seg_prefix else None,
            segments_info=segments_info)

    def filter_data(self) -> List[dict]:
        """Training: drop images without non-crowd segments (``filter_empty_gt``) or smaller than ``min_size``."""
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        filter_empty = self.filter_cfg.get('filter_empty_gt', True)
        min_size = self.filter_cfg.get('min_size', 0)
        kept = []
        for rec in self.data_list:
            if filter_empty and not any(not s['iscrowd'] for s in rec['segments_info']):
                self.num_skipped['empty'] += 1
            elif min(rec['width'], rec['height']) < min_size:
                self.num_skipped['small'] += 1
            else:
                kept.append(rec)
        if len(kept) < len(self.data_list):
            print_log(f'{self.source_name}: filtered {len(self.data_list) - len(kept)} images '
                      f'(empty={self.num_skipped["empty"]}, smaller than {min_size}={self.num_skipped["small"]})',
                      logger='current')
        return kept

    def get_cat_ids(self, idx: int) -> List[int]:
        """Labels (indices of ``metainfo['classes']``) of the image's non-crowd segments."""
        return [s['category'] for s in self.get_data_info(idx)['segments_info'] if not s['iscrowd']]

    # ------------------------------------------------------------------ prompts
    def sample_categories(self, positive_ids: Sequence[int], rng=None) -> List[int]:
        """The category list of one read (JSON ids, prompt order); see the module docstring."""
        if rng is None or self.test_mode:
            return list(self.cat_ids)
        pos = sorted(set(positive_ids))
        pos_set = set(pos)
        neg = [c for c in self.cat_ids if c not in pos_set]
        cap = self.max_categories or len(self.cat_ids)
        if len(pos) > cap:
            pos = [pos[i] for i in sorted(rng.permutation(len(pos))[:cap])]
        room = min(cap - len(pos), len(neg))
        if rng.random() < self.full_category_prob:
            n_neg = room
        else:
            low = 0 if pos else min(1, room)  # never an empty list
            n_neg = low + draw_index(room - low + 1, rng)
        chosen = pos + [neg[i] for i in rng.permutation(len(neg))[:n_neg]]
        return [chosen[i] for i in rng.permutation(len(chosen))]

    def build_conversation(self, info: dict, rng) -> dict:
        segments = [s for s in info['segments_info'] if not s['iscrowd']]
        cat_ids = self.sample_categories([s['category_id'] for s in segments], rng)
        label_of = {cid: k for k, cid in enumerate(cat_ids)}
        info['category_ids'] = cat_ids
        info['phrases'] = [self._cat_phrases[cid] for cid in cat_ids]
        info['instances'] = [dict(segment_id=s['id'], category_id=s['category_id'],
                                  label=label_of[s['category_id']], ignore_flag=0)
                             for s in segments if s['category_id'] in label_of]
        info['num_dropped_segments'] = len(segments) - len(info['instances'])
        self.num_dropped_segments += info['num_dropped_segments']
        prompts = get_task_prompts(self.TASK)
        question = prompts.pick_question(rng, categories=format_phrases(info['phrases']))
        info['conversations'] = build_turns([(question, prompts.pick_answer(rng))], has_image=True)
        return info


@DATASETS.register_module()
class XSAMOVSegDataset(XSAMGenericSegDataset):
    """Open-vocabulary segmentation (``ovseg``), e.g. ADE20K panoptic (same COCO panoptic layout).

    Category names with synonyms are prompted with the first one (``'person, individual'`` -> ``person``),
    then cleaned as in :class:`XSAMGenericSegDataset`.
    """

    TASK = 'ovseg'

    def category_phrase(self, name: str) -> str:
        return clean_category_name(name.split(',')[0])
