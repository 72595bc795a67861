"""COCO ``segm`` AP of visual grounded segmentation (COCO-VGD, ``vgdseg``), one COCOeval per prompt type.

Reference §5 "VGD": instance-style post-processing, labels mapped back to COCO category ids, scored with
COCOeval ``segm`` AP / AP50 separately for each prompt type (point / scribble / box / mask).

Per sample (one image prompted with one prompt type; :class:`~mmxsam.datasets.XSAMVGDSegDataset` in
``test_mode``) the model returns ``pred_instances`` with ``masks`` ``(N, H, W)`` (binary, the original image
size), ``labels`` (the prompt *slot* index ``i``) and ``scores``. :meth:`VGDMetric.process` maps slot ``i``
to the COCO category id ``category_ids[i]`` (the sample's metainfo, set by the data set), drops detections
with a non-finite score or a label outside ``[0, len(category_ids))`` (both counted), and keeps the masks
as compressed RLE only (never a full mask), so a rank holds O(#detections x RLE length).

Ground truth: ``ann_file``, either

* the **COCO-VGD layout** the data set reads (a JSON *list* of ``dict(image_id, image_size=[h, w],
  annotations=[<COCO annotation> + visual_prompts])``; ``visual_prompts`` are ignored), with category ids
  from the annotations (names: ``dataset_meta['category_names']`` when given, else the ids), or
* a plain **COCO instances** JSON (a *dict* with ``images``, ``annotations``, ``categories``), e.g.
  ``instances_val2017.json``.

Either way every annotation of an evaluated image is ground truth, crowd annotations included as COCO
``iscrowd`` ignore regions (exactly as COCOeval on the instances file). Only the *evaluated* images (those
with a sample of the prompt type) are scored: ``COCOeval.params.imgIds`` = those images, so the numbers equal
an independent COCOeval run on the same GT file, the same detections and ``imgIds`` restricted to them.
Categories of an evaluated image that the data set could not prompt (every instance's prompt empty) stay in
the ground truth and count as misses. Annotations missing ``area`` get the mask area; annotation ids are
renumbered ``1..N`` in file order (COCOeval treats id 0 as "unmatched").

Grouping: the prompt type of a sample is its metainfo ``prompt_type_key`` (default ``'vprompt_types'``, the
per-slot list the data set writes; ``PackXSAMInputs`` keeps it): a string, or a list whose values must all
agree (several values -> group ``'mixed'``); missing -> group ``'all'``. A concatenation of the four per-type
evaluation sets therefore gives four independent COCOevals.

Output (percent; before mmengine adds ``prefix + '/'``, default ``vgd``): per group
``<type>/AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl`` (the 12 ``COCOeval.stats``, with
COCOeval's -1 "undefined", e.g. no small objects, reported as NaN), and ``AP`` / ``AP50``: the unweighted
mean over the groups (the group's own numbers when there is one). A group without any detection scores 0
(not NaN) where it has ground truth. No results at all: a warning and ``AP`` / ``AP50`` NaN.

Bad input: a sample whose ``img_id`` is not in ``ann_file`` is excluded and counted (logged as a warning);
two *different* samples of one group on the same image keep the first (warning); a mask size differing from
``ori_shape`` (in :meth:`process`) or from the GT image size (in :meth:`compute_metrics`) raises
``ValueError``. Distributed evaluation as :class:`~mmxsam.evaluation.metrics.refer_seg_metric.ReferSegMetric`
(gathered by mmengine, repeated ``sample_idx`` dropped); detections are ordered by ``sample_idx`` before
COCOeval, so 1 and N processes give identical numbers.
"""
import contextlib
import copy
import io
import json
import logging
import math
from collections import Counter, OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ...datasets.utils.mask_codec import _to_rles
from .metric_utils import drop_duplicate_results, format_table, sample_index, sample_sort_key
from .metric_utils import get_field as _get

NAN = float('nan')
STAT_NAMES = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'AR1', 'AR10', 'AR100', 'ARs', 'ARm', 'ARl')
DEFAULT_GROUP = 'all'
MIXED_GROUP = 'mixed'


def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _segm_area(segm: Any, height: int, width: int) -> float:
    rles = _to_rles(segm, height, width)
    if not rles:
        return 0.0
    return float(mask_utils.area(mask_utils.merge(rles) if len(rles) > 1 else rles[0]))


@contextlib.contextmanager
def _quiet():
    """pycocotools prints; capture it (returned for logging)."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


class _GroundTruth:
    """Compact GT of ``ann_file``: image sizes, annotations per image, categories (no visual prompts)."""

    def __init__(self, raw: Any, ann_file: str, category_names: Optional[Dict[int, str]] = None) -> None:
        self.images: Dict[Any, Tuple[int, int]] = {}
        self.anns: Dict[Any, List[dict]] = {}
        self.skipped = 0
        names: Dict[Any, str] = {}
        if isinstance(raw, list):
            self.layout = 'coco_vgd'
            for rec in raw:
                if 'image_size' in rec:
                    h, w = (int(v) for v in rec['image_size'])
                else:
                    info = rec.get('image_info') or {}
                    h, w = int(info['height']), int(info['width'])
                self._add_image(rec['image_id'], h, w, ann_file)
                for ann in rec.get('annotations') or []:
                    self._add_ann(rec['image_id'], ann)
            for anns in self.anns.values():
                for ann in anns:
                    names.setdefault(ann['category_id'], str(ann['category_id']))
            if category_names:
                names.update({k: str(v) for k, v in category_names.items()})
        elif isinstance(raw, dict) and 'images' in raw and 'annotations' in raw:
            self.layout = 'coco'
            for img in raw['images']:
                self._add_image(img['id'], int(img['height']), int(img['width']), ann_file)
            for ann in raw['annotations']:
                if ann.get('image_id') not in self.images:
                    self.skipped += 1
                    continue
                self._add_ann(ann['image_id'], ann)
            names = {c['id']: str(c.get('name', c['id'])) for c in raw.get('categories') or []}
            for anns in self.anns.values():
                for ann in anns:
                    names.setdefault(ann['category_id'], str(ann['category_id']))
        else:
            raise ValueError(f'{ann_file}: expected the COCO-VGD layout (a list of image records) or a COCO '
                             f'instances dict with "images" and "annotations", got {type(raw).__name__}')
        self.categories = OrderedDict(sorted(names.items(), key=lambda kv: sample_sort_key(kv[0])))
        self._by_str = {str(k): k for k in self.images}

    def _add_image(self, image_id: Any, h: int, w: int, ann_file: str) -> None:
        if image_id in self.images:
            raise ValueError(f'{ann_file}: image id {image_id!r} appears twice')
        self.images[image_id] = (h, w)
        self.anns[image_id] = []

    def _add_ann(self, image_id: Any, ann: dict) -> None:
        if ann.get('category_id') is None or ann.get('segmentation') is None:
            self.skipped += 1
            return
        out = dict(image_id=image_id, category_id=ann['category_id'], segmentation=ann['segmentation'],
                   iscrowd=int(ann.get('iscrowd', 0)))
        if ann.get('area') is not None:
            out['area'] = float(ann['area'])
        else:
            h, w = self.images[image_id]
            out['area'] = _segm_area(ann['segmentation'], h, w)
        self.anns[image_id].append(out)

    def resolve(self, img_id: Any) -> Any:
        """The GT key of a sample's ``img_id`` (exact, else by string), or None."""
        if img_id in self.images:
            return img_id
        return self._by_str.get(str(img_id))

    def coco(self, image_ids: Sequence[Any]) -> COCO:
        """A pycocotools ``COCO`` of the given images (file order of annotations, ids renumbered 1..N)."""
        images, anns = [], []
        for image_id in image_ids:
            h, w = self.images[image_id]
            images.append(dict(id=image_id, height=h, width=w))
            for ann in self.anns[image_id]:
                anns.append(dict(ann, id=len(anns) + 1))
        coco = COCO()
        coco.dataset = dict(images=images, annotations=anns,
                            categories=[dict(id=k, name=v) for k, v in self.categories.items()])
        with _quiet():
            coco.createIndex()
        return coco


@METRICS.register_module()
class VGDMetric(BaseMetric):
    """COCO ``segm`` AP per prompt type for visual grounded segmentation (see the module docstring).

    Input contract: each element of ``data_samples`` (dict or data element) has ``pred_instances`` with
    ``masks`` ``(N, H, W)`` (bool, or 0/1 integers/floats), ``labels`` ``(N,)`` (prompt slot indices) and
    ``scores`` ``(N,)``; metainfo ``sample_idx`` (unique per sample), ``img_id`` (the GT image id),
    ``category_ids`` (COCO category id of every prompt slot) and optionally ``ori_shape`` (checked against
    the mask size) and the ``prompt_type_key`` entry.

    Args:
        ann_file (str): GT file, COCO-VGD layout or COCO instances JSON.
        prompt_type_key (str): metainfo key holding the prompt type (str or per-slot list). Defaults to
            ``'vprompt_types'``.
        backend_args (dict, optional): mmengine file backend arguments for ``ann_file``.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        collect_dir (str, optional): shared directory for CPU gathering. Defaults to None.
        prefix (str, optional): metric-name prefix; None: ``'vgd'``.
    """

    default_prefix: Optional[str] = 'vgd'

    def __init__(self,
                 ann_file: str,
                 prompt_type_key: str = 'vprompt_types',
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.ann_file = ann_file
        self.prompt_type_key = prompt_type_key
        self.backend_args = backend_args
        self._gt: Optional[_GroundTruth] = None

    # ------------------------------------------------------------------------------------------------ per batch
    @staticmethod
    def group_of(value: Any) -> str:
        """Prompt-type group of a metainfo value (str, list of per-slot types, or None)."""
        if value is None:
            return DEFAULT_GROUP
        if isinstance(value, str):
            return value or DEFAULT_GROUP
        if isinstance(value, (list, tuple)):
            types = {str(v) for v in value}
            if not types:
                return DEFAULT_GROUP
            return types.pop() if len(types) == 1 else MIXED_GROUP
        return str(value)

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append ``dict(sample_idx, img_id, group, dets=[(category_id, score, rle)], size, counts)``."""
        for data_sample in data_samples:
            sample_idx = sample_index(data_sample, type(self).__name__)
            img_id = _get(data_sample, 'img_id')
            category_ids = _get(data_sample, 'category_ids')
            pred = _get(data_sample, 'pred_instances')
            if img_id is None or category_ids is None or pred is None:
                raise KeyError(f'sample_idx={sample_idx!r}: {type(self).__name__} needs metainfo `img_id` and '
                               '`category_ids` and `pred_instances` (masks, labels, scores)')
            if isinstance(img_id, torch.Tensor):
                img_id = img_id.item()
            self.results.append(self._encode(sample_idx, img_id, list(category_ids), pred,
                                             _get(data_sample, 'ori_shape'),
                                             self.group_of(_get(data_sample, self.prompt_type_key))))

    def _encode(self, sample_idx: Any, img_id: Any, category_ids: List[Any], pred: Any, ori_shape: Any,
                group: str) -> dict:
        masks, labels, scores = (_get(pred, k) for k in ('masks', 'labels', 'scores'))
        if masks is None or labels is None or scores is None:
            raise KeyError(f'sample_idx={sample_idx!r}: pred_instances needs masks, labels and scores')
        masks, labels, scores = _to_numpy(masks), _to_numpy(labels).reshape(-1), _to_numpy(scores).reshape(-1)
        if masks.ndim != 3 or not len(masks) == len(labels) == len(scores):
            raise ValueError(f'sample_idx={sample_idx!r}: expected masks (N, H, W), labels (N,), scores (N,), got '
                             f'{masks.shape}, {labels.shape}, {scores.shape}')
        size = (int(masks.shape[1]), int(masks.shape[2]))
        if ori_shape is not None and tuple(int(v) for v in ori_shape[:2]) != size:
            raise ValueError(f'sample_idx={sample_idx!r}: mask size {size} differs from ori_shape '
                             f'{tuple(ori_shape[:2])}; predictions must be at the original image size')
        if masks.dtype != bool:
            if masks.size and not bool(((masks == 0) | (masks == 1)).all()):
                raise ValueError(f'sample_idx={sample_idx!r}: masks must be binary (bool or 0/1), got other '
                                 f'{masks.dtype} values; threshold them first')
        scores = scores.astype(np.float64)
        finite = np.isfinite(scores)
        labels_int = labels.astype(np.int64)
        good_label = (labels == labels_int) & (labels_int >= 0) & (labels_int < len(category_ids))
        keep = np.flatnonzero(finite & good_label)
        dets = []
        if len(keep):
            rles = mask_utils.encode(np.asfortranarray(masks[keep].transpose(1, 2, 0).astype(np.uint8)))
            for k, rle in zip(keep, rles):
                dets.append((category_ids[int(labels_int[k])], float(scores[k]), rle['counts'].decode('ascii')))
        return dict(sample_idx=sample_idx, img_id=img_id, group=group, size=size, dets=dets,
                    num_nonfinite=int((~finite).sum()), num_bad_label=int((finite & ~good_label).sum()))

    # ------------------------------------------------------------------------------------------------ evaluation
    def load_ground_truth(self) -> _GroundTruth:
        """Parse ``ann_file`` once (cached on the metric)."""
        if self._gt is None:
            with get_local_path(self.ann_file, backend_args=self.backend_args) as local:
                with open(local) as f:
                    raw = json.load(f)
            meta = self.dataset_meta or {}
            names = None
            if meta.get('category_ids') is not None and meta.get('category_names') is not None:
                names = dict(zip(meta['category_ids'], meta['category_names']))
            self._gt = _GroundTruth(raw, self.ann_file, names)
            del raw
            if self._gt.skipped:
                print_log(f'{type(self).__name__}: {self._gt.skipped} annotation(s) of {self.ann_file} without '
                          'category_id/segmentation or of an unlisted image were ignored.', logger='current',
                          level=logging.WARNING)
        return self._gt

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """One COCOeval ``segm`` per prompt-type group; see the module docstring for the keys."""
        owner = type(self).__name__
        unique = sorted(drop_duplicate_results(results, owner), key=lambda r: sample_sort_key(r['sample_idx']))
        if not unique:
            print_log(f'{owner}: no results to evaluate (empty data set, or the model returned no samples); AP and '
                      'AP50 are NaN.', logger='current', level=logging.WARNING)
            return OrderedDict(AP=NAN, AP50=NAN)
        gt = self.load_ground_truth()

        groups: Dict[str, 'OrderedDict[Any, dict]'] = {}
        counts: Dict[str, Counter] = {}
        for r in unique:
            count = counts.setdefault(r['group'], Counter())
            per_image = groups.setdefault(r['group'], OrderedDict())
            count['samples'] += 1
            key = gt.resolve(r['img_id'])
            if key is None:
                count['unknown_image'] += 1
                continue
            if key in per_image:
                count['repeated_image'] += 1
                continue
            if tuple(r['size']) != gt.images[key]:
                raise ValueError(f'sample_idx={r["sample_idx"]!r}: mask size {tuple(r["size"])} differs from the '
                                 f'size {gt.images[key]} of image {key!r} in {self.ann_file}')
            per_image[key] = r
        self._warn_counts(counts)

        all_images = sorted({k for per_image in groups.values() for k in per_image}, key=sample_sort_key)
        coco_gt = gt.coco(all_images)
        metrics: Dict[str, float] = OrderedDict()
        rows = []
        for group in sorted(groups):
            per_image, count = groups[group], counts[group]
            stats, summary = self._evaluate_group(coco_gt, gt, per_image, count)
            for name, value in zip(STAT_NAMES, stats):
                metrics[f'{group}/{name}'] = value
            rows.append((group, count['samples'], len(per_image), count['images_without_gt'], count['detections'],
                         count['nonfinite_scores'], count['bad_labels'], count['unknown_category'],
                         count['unknown_image'], *(f'{v:.2f}' for v in stats[:3])))
            print_log(f'{owner} group {group!r} ({len(per_image)} images), COCOeval segm:\n{summary}',
                      logger='current')
            dropped = {k: count[k] for k in ('nonfinite_scores', 'bad_labels', 'unknown_category') if count[k]}
            if dropped:
                print_log(f'{owner}: group {group!r}: dropped detections {dropped} (non-finite score, label outside '
                          'the sample\'s category_ids, category not in the GT).', logger='current',
                          level=logging.WARNING)
        aps = [metrics[f'{g}/AP'] for g in sorted(groups)]
        ap50s = [metrics[f'{g}/AP50'] for g in sorted(groups)]
        overall = OrderedDict(AP=math.fsum(aps) / len(aps), AP50=math.fsum(ap50s) / len(ap50s))
        header = ('prompt type', 'samples', 'images', 'no GT', 'dets', 'NaN scores', 'bad labels', 'unknown cat',
                  'unknown img', 'AP', 'AP50', 'AP75')
        print_log(f'{owner} (prefix {self.prefix!r}, {gt.layout} layout {self.ann_file}):\n'
                  f'{format_table(header, rows)}\nmean over prompt types: AP {overall["AP"]:.2f}, '
                  f'AP50 {overall["AP50"]:.2f}', logger='current')
        overall.update(metrics)
        return overall

    def _evaluate_group(self, coco_gt: COCO, gt: _GroundTruth, per_image: 'OrderedDict[Any, dict]',
                        count: Counter) -> Tuple[List[float], str]:
        """COCOeval segm of one group: the 12 stats in percent (NaN for COCOeval's -1) and its printout."""
        image_ids = sorted(per_image, key=sample_sort_key)
        dets = []
        for image_id in image_ids:  # ordered by image then model order: deterministic, rank-independent
            r = per_image[image_id]
            count['nonfinite_scores'] += r['num_nonfinite']
            count['bad_labels'] += r['num_bad_label']
            count['images_without_gt'] += int(not gt.anns[image_id])
            h, w = r['size']
            for category_id, score, counts_str in r['dets']:
                if category_id not in gt.categories:
                    count['unknown_category'] += 1
                    continue
                dets.append(dict(image_id=image_id, category_id=category_id, score=score,
                                 segmentation=dict(size=[h, w], counts=counts_str)))
        count['detections'] += len(dets)
        if not image_ids:
            return [NAN] * len(STAT_NAMES), '(no image to evaluate)'
        with _quiet():
            if dets:
                coco_dt = coco_gt.loadRes(dets)
            else:  # loadRes cannot take an empty list
                coco_dt = COCO()
                coco_dt.dataset = dict(images=copy.deepcopy(coco_gt.dataset['images']), annotations=[],
                                       categories=copy.deepcopy(coco_gt.dataset['categories']))
                coco_dt.createIndex()
            evaluator = COCOeval(coco_gt, coco_dt, iouType='segm')
            evaluator.params.imgIds = image_ids
            evaluator.evaluate()
            evaluator.accumulate()
        with _quiet() as out:  # keep only the 12-line summary for the log
            evaluator.summarize()
        stats = [NAN if v < 0 else 100.0 * float(v) for v in evaluator.stats]
        return stats, out.getvalue().rstrip()

    def _warn_counts(self, counts: Dict[str, Counter]) -> None:
        owner = type(self).__name__
        for group in sorted(counts):
            count = counts[group]
            if count['unknown_image']:
                print_log(f'{owner}: group {group!r}: {count["unknown_image"]} sample(s) whose img_id is not in '
                          f'{self.ann_file} were excluded.', logger='current', level=logging.WARNING)
            if count['repeated_image']:
                print_log(f'{owner}: group {group!r}: {count["repeated_image"]} sample(s) repeat an image already '
                          'evaluated in this group under another sample_idx; only the first was kept.',
                          logger='current', level=logging.WARNING)
