"""Referring segmentation (RefCOCO / RefCOCO+ / RefCOCOg and the bundled ``refshapes``) in the refer layout.

Files (the refer API's layout, ``data_root/<dataset>/``)::

    refs(<splitBy>).p   pickled list of refs: {ref_id, ann_id, image_id, split, sentences: [{sent, sent_id, ..}], ..}
    instances.json      COCO instances (``images`` with file_name/height/width, ``annotations`` with polygons/RLE)

Images are COCO's (``train2014`` for RefCOCO*), found under ``data_prefix['img']``.

Samples (reference §4 "Refseg"):

* **Training** (``test_mode=False``): one record per image, holding every object referred to in the image by a
  ref of ``split``. Each object (a COCO annotation; refs that share one are merged) keeps its candidate
  sentences (stripped, lower-cased, de-duplicated, sorted, as the official code). At every read
  :meth:`build_conversation` draws one *sentence combination* (one sentence per object) and a random object
  order, and asks one question per object: a multi-turn chat with one ``<SEG>`` per turn.

  The official data set enumerates the cartesian product of the objects' sentence lists, in
  ``itertools.product`` order (the last object varies fastest), truncated to ``K = min(total sentences,
  product size)`` combinations, and makes one sample per combination, built once. Here the draw is
  ``k ~ U{0..K-1}`` and combination ``k`` is decoded from that order, so every read samples exactly the
  official distribution of combinations (per image). With ``expand_combinations=True`` the image instead
  yields ``K`` records, record ``k`` pinned to combination ``k``: the official epoch length (e.g. ~120k
  samples for RefCOCO train rather than ~17k images), which matters when mixing sources by size. The
  object order is always drawn per read (the official code shuffles once at build time).

* **Evaluation** (``test_mode=True``): one record per sentence of every ref of ``split`` (all of them, no
  de-duplication: the standard refer protocol's sample count), one turn, label 0. Records carry
  ``split`` (e.g. ``'val'``, ``'testA'``) for :class:`~mmxsam.evaluation.ReferSegMetric`; ``sample_idx``
  (set by mmengine to the data set index) is unique per sentence.

With ``rng=None`` (``prompt_mode='fixed'``, the default in ``test_mode``) the first template, the first
combination and the objects' file order are used.

Masks stay COCO segmentations in the record (decoded by ``LoadXSAMAnnotations`` in the pipeline): bool
masks at COCO size are ~300 kB each, i.e. tens of GB for RefCOCO's ~120k sentences, while polygons are a
few hundred bytes. They are validated once at load time through their RLE area (no full decode).

Bad input (a ref whose ``ann_id`` or ``image_id`` is not in ``instances.json``, a polygon with fewer than 3
points, an RLE of the wrong size, an empty mask, a ref without sentences) raises a ``ValueError`` naming
the ref, or with ``skip_invalid=True`` drops the ref; drops are counted per reason in
:attr:`skip_counts` and logged.
"""
import os.path as osp
import pickle
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from mmdet.registry import DATASETS
from mmengine.logging import print_log
from mmengine.utils import is_abs
from pycocotools import mask as mask_utils

from .prompts import build_turns, draw_index, format_phrase, get_task_prompts
from .utils.annotation_io import load_json, require_keys
from .utils.mask_codec import _to_rles
from .xsam_base_dataset import XSAMBaseDataset

SKIP_REASONS = ('missing_image', 'missing_ann', 'invalid_segmentation', 'empty_mask', 'no_sentence')


class _RefusedGlobal(pickle.UnpicklingError):
    """A refs pickle that needs a global (i.e. code): refused."""


class _BuiltinsOnlyUnpickler(pickle.Unpickler):
    """The refer pickles hold only dicts, lists, strings and numbers: refuse anything that imports code."""

    def find_class(self, module, name):
        raise _RefusedGlobal(f'refusing to load {module}.{name}: a refer refs file holds only builtin '
                             'types (dict, list, str, int, float)')


def load_refs(path: str) -> List[dict]:
    """Read a refer ``refs(<splitBy>).p`` (Python 2 or 3 pickle) without executing code."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'refer refs file not found: {path} (set by `refer_file`)')
    with open(path, 'rb') as f:
        try:
            refs = _BuiltinsOnlyUnpickler(f, encoding='latin1').load()
        except _RefusedGlobal as e:
            raise pickle.UnpicklingError(f'{path}: {e}') from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:  # truncated, not a pickle
            raise ValueError(f'{path}: not a readable refer refs pickle ({type(e).__name__}: {e})') from None
    if not isinstance(refs, list):
        raise ValueError(f'{path}: expected a list of refs, got {type(refs).__name__}')
    return refs


def segmentation_area(segm, height: int, width: int) -> int:
    """Pixel area of a COCO segmentation at ``(height, width)`` from its RLE (no full decode).

    Raises:
        ValueError / TypeError: as :func:`~mmxsam.datasets.utils.decode_mask` (polygon with < 3 points or
            an odd number of coordinates, RLE of another size, unsupported type).
    """
    rles = _to_rles(segm, height, width)
    if not rles:
        return 0
    return int(mask_utils.area(mask_utils.merge(rles) if len(rles) > 1 else rles[0]))


def _check_segmentation(segm, height: int, width: int) -> Optional[tuple]:
    """None if ``segm`` decodes to a non-empty mask, else ``(skip reason, message)``."""
    try:
        area = segmentation_area(segm, height, width)
    except (ValueError, TypeError) as e:
        return 'invalid_segmentation', f'invalid segmentation: {e}'
    return None if area > 0 else ('empty_mask', 'the mask is empty')


def combination(sizes: Sequence[int], k: int) -> List[int]:
    """The ``k``-th element of ``itertools.product(*map(range, sizes))`` (last position varies fastest)."""
    out = [0] * len(sizes)
    for i in range(len(sizes) - 1, -1, -1):
        k, out[i] = divmod(k, sizes[i])
    return out


def num_combinations(sizes: Sequence[int]) -> int:
    """Official truncation: ``min(sum(sizes), prod(sizes))`` combinations of one sentence per object."""
    total, prod = sum(sizes), 1
    for s in sizes:
        prod = min(prod * s, total)  # capped: the product of many lists is astronomically large
    return min(total, prod)


@DATASETS.register_module()
class XSAMReferSegDataset(XSAMBaseDataset):
    """Referring segmentation from the refer layout (see the module docstring).

    Args:
        refer_file (str): ``refs(<splitBy>).p``, relative to ``data_root`` unless absolute, e.g.
            ``'refcoco/refs(unc).p'``.
        ann_file (str): the matching ``instances.json`` (relative to ``data_root``).
        split (str): refs of this split are used: ``'train'``, ``'val'``, ``'test'``, ``'testA'``, ``'testB'``.
        data_prefix (dict): ``img``: the image folder (relative to ``data_root``).
        skip_invalid (bool): drop (and count) invalid refs instead of raising. Defaults to False.
        expand_combinations (bool): training only: one record per sentence combination (the official
            epoch length) instead of one per image. Defaults to False.
        max_turns (int, optional): training only: keep at most this many objects (turns) per sample,
            the first ones of the drawn order (the official ``num_class``, 10000). Defaults to None (all).
        **kwargs: :class:`XSAMBaseDataset` (``prompt_mode``, ``source_name``) and mmengine's ``BaseDataset``.
    """

    TASK = 'refseg'

    def __init__(self,
                 *args,
                 refer_file: str,
                 split: str,
                 skip_invalid: bool = False,
                 expand_combinations: bool = False,
                 max_turns: Optional[int] = None,
                 **kwargs) -> None:
        if max_turns is not None and max_turns < 1:
            raise ValueError(f'max_turns must be None or >= 1, got {max_turns}')
        self.refer_file = refer_file
        self.split = split
        self.skip_invalid = skip_invalid
        self.expand_combinations = expand_combinations
        self.max_turns = max_turns
        self.skip_counts: Dict[str, int] = dict.fromkeys(SKIP_REASONS, 0)
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------------------------------------ loading
    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.refer_file and not is_abs(self.refer_file) and self.data_root:
            self.refer_file = osp.join(self.data_root, self.refer_file)

    def _invalid(self, reason: str, message: str) -> None:
        if not self.skip_invalid:
            raise ValueError(f'{self.refer_file}: {message} (pass skip_invalid=True to drop such refs)')
        self.skip_counts[reason] += 1

    def _load_objects(self) -> 'OrderedDict[int, dict]':
        """image_id -> dict(image=<COCO image>, objects=[dict(ann, sentences, ref_ids)]) for ``split``."""
        if not self.ann_file:
            raise ValueError(f'{type(self).__name__} needs ann_file: the instances.json next to {self.refer_file}')
        all_refs = load_refs(self.refer_file)
        refs = [r for r in all_refs if r.get('split') == self.split]
        if not refs:
            splits = sorted({str(r.get('split')) for r in all_refs})
            raise ValueError(f'{self.refer_file}: no ref of split {self.split!r}; its splits are {splits}')
        del all_refs
        coco = load_json(self.ann_file, expect=dict, what='COCO instances JSON')
        require_keys(coco, ('images', 'annotations'), f'{self.ann_file} (COCO instances JSON)')
        for k, img in enumerate(coco['images']):
            require_keys(img, ('id', 'file_name', 'height', 'width'), f'{self.ann_file}: images[{k}]')
        for k, ref in enumerate(refs):
            require_keys(ref, ('ann_id', 'image_id'), f'{self.refer_file}: ref #{k} (ref_id={ref.get("ref_id")})')
        images = {img['id']: img for img in coco['images']}
        needed = {r['ann_id'] for r in refs}
        anns, ann_order = {}, {}
        for pos, ann in enumerate(coco['annotations']):
            require_keys(ann, ('id', 'segmentation'), f'{self.ann_file}: annotations[{pos}]')
            if ann['id'] in needed:
                anns[ann['id']] = ann
                ann_order[ann['id']] = pos
        del coco

        per_image: Dict[int, dict] = {}
        checked: Dict[int, Optional[tuple]] = {}  # ann_id -> None (valid) or (reason, message)
        for ref in refs:
            name = f"ref_id={ref.get('ref_id')} (ann_id={ref.get('ann_id')}, image_id={ref.get('image_id')})"
            img = images.get(ref['image_id'])
            if img is None:
                self._invalid('missing_image', f'{name}: image_id not in the images of {self.ann_file}')
                continue
            ann = anns.get(ref['ann_id'])
            if ann is None:
                self._invalid('missing_ann', f'{name}: ann_id not in the annotations of {self.ann_file}')
                continue
            if ann['id'] not in checked:
                checked[ann['id']] = _check_segmentation(ann['segmentation'], img['height'], img['width'])
            if checked[ann['id']] is not None:
                reason, message = checked[ann['id']]
                self._invalid(reason, f'{name}: {message}')
                continue
            sentences = [s.get('sent', s.get('raw', '')).strip().lower() for s in ref.get('sentences', [])]
            sent_ids = [s.get('sent_id') for s, t in zip(ref.get('sentences', []), sentences) if t]
            sentences = [t for t in sentences if t]
            if not sentences:
                self._invalid('no_sentence', f'{name}: the ref has no sentence')
                continue
            entry = per_image.setdefault(img['id'], dict(image=img, objects={}))
            obj = entry['objects'].setdefault(ann['id'], dict(ann=ann, sentences=[], sent_ids=[], ref_ids=[]))
            obj['sentences'] += sentences
            obj['sent_ids'] += sent_ids
            obj['ref_ids'].append(ref.get('ref_id'))

        out: 'OrderedDict[int, dict]' = OrderedDict()
        for img_id in sorted(per_image):
            entry = per_image[img_id]
            entry['objects'] = sorted(entry['objects'].values(), key=lambda o: ann_order[o['ann']['id']])
            out[img_id] = entry
        return out

    def load_data_list(self) -> List[dict]:
        self.skip_counts = dict.fromkeys(SKIP_REASONS, 0)
        per_image = self._load_objects()
        img_dir = self.data_prefix.get('img', '')
        data_list = []
        for img_id, entry in per_image.items():
            img = entry['image']
            base = dict(img_path=osp.join(img_dir, img['file_name']), img_id=img_id, height=img['height'],
                        width=img['width'], split=self.split)
            if self.test_mode:  # one record per sentence, in ref order
                for obj in entry['objects']:
                    for sent, sent_id in zip(obj['sentences'], obj['sent_ids']):
                        data_list.append(dict(base, sent_id=sent_id, instances=[
                            dict(mask=obj['ann']['segmentation'], label=0, ignore_flag=0, ann_id=obj['ann']['id'],
                                 ref_ids=obj['ref_ids'], sentences=[sent])]))
                continue
            instances = [dict(mask=o['ann']['segmentation'], label=i, ignore_flag=0, ann_id=o['ann']['id'],
                              ref_ids=o['ref_ids'], sentences=sorted(set(o['sentences'])))
                         for i, o in enumerate(entry['objects'])]
            if self.expand_combinations:
                n = num_combinations([len(inst['sentences']) for inst in instances])
                data_list += [dict(base, instances=instances, combination=k) for k in range(n)]
            else:
                data_list.append(dict(base, instances=instances))
        skipped = {k: v for k, v in self.skip_counts.items() if v}
        if skipped:
            print_log(f'{type(self).__name__}({self.refer_file}, split={self.split}): skipped invalid refs '
                      f'{skipped}', logger='current', level=30)
        return data_list

    # ------------------------------------------------------------------------------------------------ prompts
    def build_conversation(self, info: dict, rng) -> dict:
        """Draw one sentence per object and the object order; one question/answer turn per object.

        Sets ``conversations``, ``phrases`` (the chosen sentences, in turn order) and ``instances``
        (reordered to the turns, ``label`` = turn index), so phrase ``i``, turn ``i``'s ``<SEG>`` and
        instance ``i`` refer to the same object.
        """
        objects = info.pop('instances')
        sizes = [len(o['sentences']) for o in objects]
        if 'combination' in info:
            k = info.pop('combination')
        else:
            k = draw_index(num_combinations(sizes), rng)
        chosen = combination(sizes, k)
        order = list(range(len(objects)))
        if rng is not None and len(objects) > 1:  # np.random, a RandomState or a Generator
            order = [int(j) for j in rng.permutation(len(objects))]
        if self.max_turns is not None:
            order = order[:self.max_turns]

        prompts = get_task_prompts(self.TASK)
        phrases, instances, pairs = [], [], []
        for turn, j in enumerate(order):
            obj = objects[j]
            sent = obj['sentences'][chosen[j]]
            phrases.append(sent)
            instances.append(dict(mask=obj['mask'], label=turn, ignore_flag=obj.get('ignore_flag', 0),
                                  ann_id=obj['ann_id']))
            pairs.append((prompts.pick_question(rng, phrase=format_phrase(sent)), prompts.pick_answer(rng)))
        info.update(phrases=phrases, instances=instances, conversations=build_turns(pairs))
        return info

