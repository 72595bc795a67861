"""Grounded conversation generation (GCG): caption quality and phrase-mask quality (GLaMM protocol).

One *sample* is one image of the GCG evaluation split (``{val,test}_gcg_coco_mask_gt.json`` with its
``..._caption_gt.json``; see :class:`~mmxsam.datasets.XSAMGCGSegDataset`, ``ann_format='val_test'``). The
model generates an answer such as ``"<p>a red circle</p> is next to <p>the sky</p>. And <SEG>."`` and one
mask per ``<p>..</p>`` phrase (``pred_instances``, ``labels`` = phrase index in order of appearance).

Per sample, :meth:`GCGMetric.process` keeps only small things, on the CPU: the image id, the cleaned
caption, the decoded phrases and the masks as compressed RLE, each mask with its phrase index **and phrase
text** (the alignment that GLaMM's evaluator loses, its issue #30, is kept and reported). Never a full mask.

Caption cleaning (X-SAM's ``get_gcg_caption``): the generated text is split on ``'.'``, every piece is
stripped and pieces containing ``<SEG>`` are dropped, the rest is joined with ``'. '``, every ``<...>`` tag is
removed (``<p>``, ``</p>``, ``<|end|>``, ...), whitespace is collapsed and quotes ``'`` stripped. X-SAM also
returns ``''`` when the output has no ``<SEG>`` at all; that is optional here
(``drop_caption_without_seg``, default False: a caption is scored as a caption even if the model forgot
``<SEG>``). Phrases: the text after the k-th ``<p>`` up to its ``</p>`` (tags removed, whitespace
collapsed), k = 0, 1, ... -- the same counting the model uses for its phrase conditions and labels.

Metrics (all in percent; :meth:`GCGMetric.compute_metrics`), over **every image of the ground truth**:
an image without a prediction is scored as an empty prediction (caption ``''``, no mask) and logged;
predictions for image ids that are in neither ground-truth file are counted, logged and left out.

* ``METEOR``, ``CIDEr``: pycocoevalcap's ``PTBTokenizer`` (Java; lower-cases, strips punctuation), then
  ``Meteor`` (Java, METEOR 1.5) and ``Cider`` (CIDEr-D; its IDF comes from the references of the evaluated
  images, so the image set matters), against all captions of an image in the caption ground truth.
* ``AP50``, ``AP``: pycocotools ``COCOeval(..., 'segm')``, class-agnostic: every ground-truth annotation and
  every predicted mask has ``category_id`` 1 and every prediction score 1.0 (GLaMM). With equal scores
  COCOeval's greedy matching visits predictions in the order given: images in ground-truth order, masks
  in phrase order. No prediction at all gives AP 0 (COCOeval's precision for a class with ground truth
  but no detection); no ground-truth mask at all gives NaN (COCOeval's -1).
* ``mIoU`` -- exactly GLaMM's ``compute_miou`` / ``evaluate_mask_miou`` (``eval/gcg/evaluate.py``):

  1. per image, the IoU matrix of predicted (rows) x ground-truth (columns) masks, plain mask IoU
     (``iscrowd`` ignored);
  2. greedy one-to-one matching: while the matrix is non-empty and its maximum is > 0, take the largest
     entry (``np.argmax``: ties go to the first in row-major order, i.e. lowest prediction index, then
     lowest ground-truth index), record its IoU, delete its row and column;
  3. the image's score is the **mean IoU of its matched pairs**, 0.0 if nothing was matched (no
     prediction, no ground truth, or no overlap). Unmatched predictions and unmatched ground-truth masks
     do not lower it;
  4. ``mIoU`` = mean of the image scores over all ground-truth images (GLaMM iterates over the images of
     the caption ground truth; here those of the mask ground truth, normally the same set).

  IoU uses pycocotools ``mask.iou`` on the RLEs (the exact ratio ``I / U``, as GLaMM's numpy version;
  ``U == 0``, i.e. an empty prediction against an empty ground-truth mask, gives 0 instead of GLaMM's NaN).
* ``mIoU_strict`` (not in GLaMM): the same matching, but an image scores ``sum(matched IoU) / max(P, G)``
  (``P`` predictions, ``G`` ground-truth masks), so unmatched masks on either side count as IoU 0;
  ``P == G == 0`` scores 1.0.

Differences from the official evaluators (GLaMM ``eval/gcg/evaluate.py``, X-SAM ``GCGSegEvaluator``):
phrase text stays attached to each mask (``outfile_prefix`` writes it); the image set is the ground truth
(X-SAM restricts AP and mIoU to the images with at least one predicted mask, which ignores images where
the model segmented nothing, and captions to the predicted images); no intermediate JSON files, no ``bert-base-uncased`` download
(the optional text-similarity "recall" is not implemented); missing, unknown and duplicate predictions
are counted and logged. X-SAM paints the phrase masks into one label map (later phrases overwrite earlier
ones, empty ones vanish, then sorts them by area); ``mask_mode='label_map'`` does the same, the default
``'per_phrase'`` scores each phrase's own mask (GLaMM).

Distributed evaluation. mmengine's ``BaseMetric.evaluate`` gathers the results of all ranks and truncates
them to ``len(dataset)`` (dropping ``DefaultSampler`` padding). Results whose image id was already seen are
dropped as well (first kept), counted and logged. Everything is then ordered by the ground truth and the
means use :func:`math.fsum`, so 1 and N processes give identical numbers.
"""
import contextlib
import importlib
import io
import logging
import math
import re
import shutil
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.fileio import dump, load
from mmengine.logging import print_log
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .metric_utils import format_table
from .metric_utils import get_field as _get

SEG_TOKEN = '<SEG>'
CAPTION_METRICS = ('METEOR', 'CIDEr')
MASK_MODES = ('per_phrase', 'label_map')
_TAG = re.compile(r'<.*?>')

# One processed sample: (img_id, caption, phrases, masks); masks: [(label, phrase or None, score, rle)],
# rle = {'size': [H, W], 'counts': str}.
MaskResult = Tuple[int, Optional[str], float, Dict[str, Any]]
SampleResult = Tuple[Any, str, List[str], List[MaskResult]]

_INSTALL_HINT = ('pip install pycocoevalcap==1.2 (tools/setup_env.sh installs it), or pass caption_metrics=() '
                 'to skip METEOR/CIDEr')


def _as_id(value: Any) -> Any:
    """Image ids as plain Python values (tensors and numpy scalars are unwrapped)."""
    if isinstance(value, torch.Tensor):
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _normalize_ws(text: str) -> str:
    return ' '.join(text.split())


def clean_caption(text: Optional[str], seg_token: str = SEG_TOKEN, drop_without_seg: bool = False) -> str:
    """The caption of a generated GCG answer (X-SAM's ``get_gcg_caption``; see the module docstring).

    Args:
        text (str, optional): The generated answer, special tokens kept. ``None`` gives ``''``.
        seg_token (str): The segmentation token. Defaults to ``'<SEG>'``.
        drop_without_seg (bool): Return ``''`` when ``text`` has no ``seg_token`` (X-SAM). Defaults to False.

    Returns:
        str: e.g. ``"<p>A cat</p> sits on <p>a mat</p>. And <SEG>."`` -> ``"A cat sits on a mat."``.
    """
    if not text:
        return ''
    if drop_without_seg and seg_token not in text:
        return ''
    pieces = [piece.strip() for piece in text.split('.') if seg_token not in piece]
    caption = _TAG.sub('', '. '.join(pieces))
    return _normalize_ws(caption).strip("'").strip()


def extract_phrases(text: Optional[str]) -> List[str]:
    """The phrases of a generated answer: the text after the k-th ``<p>`` up to its ``</p>`` (or up to the
    next ``<p>`` / the end if it is never closed), tags removed and whitespace collapsed. Phrase ``k`` is
    the phrase of mask label ``k``."""
    if not text:
        return []
    phrases = []
    for match in re.finditer(re.escape('<p>'), text):
        start = match.end()
        ends = [i for i in (text.find('</p>', start), text.find('<p>', start)) if i >= 0]
        phrases.append(_normalize_ws(_TAG.sub('', text[start:min(ends) if ends else len(text)])))
    return phrases


def greedy_iou_matching(iou: np.ndarray) -> List[Tuple[int, int, float]]:
    """GLaMM's one-to-one matching of an IoU matrix (rows: predictions, columns: ground truth).

    While the remaining matrix is non-empty and its maximum is > 0, take the largest remaining entry
    (ties: first in row-major order over the remaining rows and columns, as ``np.argmax`` after GLaMM's
    ``np.delete``), then remove its row and column.

    Returns:
        list[tuple[int, int, float]]: ``(row, column, iou)`` of the matched pairs, in matching order.
    """
    iou = np.array(iou, dtype=np.float64, copy=True)
    if iou.ndim != 2:
        raise ValueError(f'expected a 2-D IoU matrix, got shape {iou.shape}')
    pairs = []
    # removed rows/columns are set to -inf: the relative order of the remaining ones, hence argmax
    # tie-breaking, is the same as after deleting them
    while iou.size and np.max(iou) > 0:
        row, col = np.unravel_index(np.argmax(iou), iou.shape)
        pairs.append((int(row), int(col), float(iou[row, col])))
        iou[row, :] = -np.inf
        iou[:, col] = -np.inf
    return pairs


def _rle_of_segmentation(segm: Any, height: Optional[int], width: Optional[int], where: str) -> Dict[str, Any]:
    """A COCO segmentation (compressed/uncompressed RLE, polygons, or a list of RLEs) as one compressed RLE."""
    if isinstance(segm, dict):
        if 'counts' not in segm or 'size' not in segm:
            raise ValueError(f'{where}: RLE segmentation needs "size" and "counts"')
        h, w = (int(s) for s in segm['size'])
        if isinstance(segm['counts'], list):
            rle = mask_utils.frPyObjects(segm, h, w)
        else:
            counts = segm['counts']
            rle = dict(size=[h, w], counts=counts.encode('ascii') if isinstance(counts, str) else counts)
    elif isinstance(segm, (list, tuple)) and segm:
        if all(isinstance(p, dict) for p in segm):
            rles = [_rle_of_segmentation(p, height, width, where) for p in segm]
            rle = mask_utils.merge([dict(size=r['size'], counts=r['counts'].encode('ascii')) for r in rles])
        else:
            if height is None or width is None:
                raise ValueError(f'{where}: polygon segmentation needs the image height and width')
            rle = mask_utils.merge(mask_utils.frPyObjects([list(p) for p in segm], height, width))
    else:
        raise ValueError(f'{where}: unsupported segmentation {type(segm).__name__}')
    counts = rle['counts']
    return dict(size=[int(s) for s in rle['size']],
                counts=counts.decode('ascii') if isinstance(counts, bytes) else counts)


def _import_caption_scorers():
    """``(PTBTokenizer, Meteor, Cider)`` classes, or ImportError naming what to install."""
    try:
        ptb = importlib.import_module('pycocoevalcap.tokenizer.ptbtokenizer').PTBTokenizer
        meteor = importlib.import_module('pycocoevalcap.meteor.meteor').Meteor
        cider = importlib.import_module('pycocoevalcap.cider.cider').Cider
    except ImportError as e:
        raise ImportError(f'GCGMetric: METEOR/CIDEr need pycocoevalcap ({e}); {_INSTALL_HINT}') from e
    return ptb, meteor, cider


def _check_java() -> None:
    if shutil.which('java') is None:
        raise RuntimeError("GCGMetric: METEOR/CIDEr need a Java runtime ('java' on PATH) for pycocoevalcap's "
                           'PTBTokenizer and METEOR 1.5, e.g. `apt-get install default-jre-headless`; or pass '
                           'caption_metrics=() to skip them')


@METRICS.register_module()
class GCGMetric(BaseMetric):
    """METEOR, CIDEr, mask AP50/AP and mIoU of grounded conversation generation (GLaMM protocol).

    Input contract (one data sample per image; dicts as mmengine's ``Evaluator`` passes them, or data
    elements):

    - metainfo ``img_id``: the image's id in the ground-truth files (same type: GranD-f uses strings).
    - ``pred_text`` (str): the generated answer with special tokens (``<p>``, ``</p>``, ``<SEG>``). Missing
      raises ``KeyError`` (the model must run in generation mode).
    - ``pred_instances`` (optional; missing = no mask): ``masks`` ``(K, H, W)`` bool (or 0/1) at the original
      image size, ``labels`` ``(K,)`` phrase index of each mask (default ``0..K-1``), ``scores`` ``(K,)``
      (kept for ``outfile_prefix``; AP uses 1.0).

    Output (before mmengine adds ``prefix + '/'``), in percent: ``METEOR``, ``CIDEr`` (unless
    ``caption_metrics`` leaves them out), ``AP50``, ``mIoU``, ``AP``, ``mIoU_strict``; with the default prefix
    ``gcg/METEOR``, ... A results table and the counts (images, missing/unknown/duplicate predictions, masks
    without a phrase, phrases without a mask) are logged; the counts are in :attr:`stats` after
    :meth:`compute_metrics`. No results at all gives a warning and NaN everywhere. See the module docstring
    for the protocol.

    Args:
        mask_ann_file (str, optional): ``{val,test}_gcg_coco_mask_gt.json``. Defaults to the dataset
            metainfo's ``mask_gt_file`` (set by ``XSAMGCGSegDataset`` with ``ann_format='val_test'``).
        caption_ann_file (str, optional): ``{val,test}_gcg_coco_caption_gt.json``. Defaults to the dataset
            metainfo's ``caption_gt_file``.
        caption_metrics (Sequence[str]): subset of ``('METEOR', 'CIDEr')``. They need pycocoevalcap and Java
            (checked here, so a missing one fails before inference: ImportError/RuntimeError naming what to
            install). ``()`` skips captions. Defaults to both.
        mask_mode (str): ``'per_phrase'`` (each phrase's mask as predicted, GLaMM) or ``'label_map'``
            (X-SAM: paint the masks into one label map in phrase order, later ones overwriting earlier
            ones, drop empty ones, order by area, largest first). Defaults to ``'per_phrase'``.
        drop_caption_without_seg (bool): score the caption as ``''`` when the answer has no ``<SEG>``
            (X-SAM). Defaults to False.
        seg_token (str): Defaults to ``'<SEG>'``.
        outfile_prefix (str, optional): if set, write ``{outfile_prefix}.gcg_predictions.json``: per image
            ``image_id``, ``caption``, ``phrases`` and ``masks`` (``label``, ``phrase``, ``score``,
            ``segmentation`` RLE). Defaults to None.
        backend_args (dict, optional): mmengine file backend arguments for the ground-truth files.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        collect_dir (str, optional): shared directory for ``collect_device='cpu'``. Defaults to None.
        prefix (str, optional): metric name prefix; ``None`` uses ``'gcg'``.
    """

    default_prefix: Optional[str] = 'gcg'

    def __init__(self,
                 mask_ann_file: Optional[str] = None,
                 caption_ann_file: Optional[str] = None,
                 caption_metrics: Sequence[str] = CAPTION_METRICS,
                 mask_mode: str = 'per_phrase',
                 drop_caption_without_seg: bool = False,
                 seg_token: str = SEG_TOKEN,
                 outfile_prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if isinstance(caption_metrics, str):
            caption_metrics = (caption_metrics, )
        unknown = [m for m in caption_metrics if m not in CAPTION_METRICS]
        if unknown:
            raise ValueError(f'caption_metrics must be a subset of {CAPTION_METRICS}, got {list(caption_metrics)}')
        if mask_mode not in MASK_MODES:
            raise ValueError(f'mask_mode must be one of {MASK_MODES}, got {mask_mode!r}')
        self.caption_metrics = tuple(m for m in CAPTION_METRICS if m in caption_metrics)
        if self.caption_metrics:
            _import_caption_scorers()
            _check_java()
        self.mask_ann_file = mask_ann_file
        self.caption_ann_file = caption_ann_file
        self.mask_mode = mask_mode
        self.drop_caption_without_seg = drop_caption_without_seg
        self.seg_token = seg_token
        self.outfile_prefix = outfile_prefix
        self.backend_args = backend_args
        self.stats: Dict[str, int] = {}
        self._gt_cache: Dict[Tuple[str, Optional[str]], dict] = {}

    # ------------------------------------------------------------------------------------------------
    # per batch
    # ------------------------------------------------------------------------------------------------
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append ``(img_id, caption, phrases, masks)`` of every sample; masks as RLE with phrase index and
        phrase text (see :data:`SampleResult`)."""
        for data_sample in data_samples:
            img_id = _as_id(_get(data_sample, 'img_id'))
            if img_id is None:
                raise KeyError('GCGMetric needs metainfo `img_id` (the image id of the GCG ground truth) in '
                               'every data sample')
            text = _get(data_sample, 'pred_text')
            if text is None:
                raise KeyError(f'img_id={img_id!r}: GCGMetric needs `pred_text` (the generated answer); run the '
                               "model in generation mode (test_cfg.mode='generation')")
            caption = clean_caption(text, self.seg_token, self.drop_caption_without_seg)
            phrases = extract_phrases(text)
            masks = self._encode_masks(_get(data_sample, 'pred_instances'), phrases, img_id)
            self.results.append((img_id, caption, phrases, masks))

    def _encode_masks(self, instances: Any, phrases: List[str], img_id: Any) -> List[MaskResult]:
        masks = _get(instances, 'masks')
        if masks is None:
            return []
        if hasattr(masks, 'to_ndarray'):  # mmdet BitmapMasks
            masks = masks.to_ndarray()
        if isinstance(masks, torch.Tensor):
            masks = masks.detach().cpu().numpy()
        masks = np.asarray(masks)
        if masks.ndim != 3:
            raise ValueError(f'img_id={img_id!r}: pred_instances.masks must be (K, H, W), got shape {masks.shape}')
        if masks.dtype != bool:
            bad = (masks != 0) & (masks != 1)
            if bad.any():
                raise ValueError(f'img_id={img_id!r}: pred_instances.masks must be binary, found values '
                                 f'{np.unique(masks[bad])[:5].tolist()}; threshold them before evaluation')
            masks = masks.astype(bool)
        num = masks.shape[0]
        labels = _get(instances, 'labels')
        labels = np.arange(num) if labels is None else np.asarray(
            labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).reshape(-1).astype(np.int64)
        scores = _get(instances, 'scores')
        scores = np.ones(num) if scores is None else np.asarray(
            scores.detach().cpu().float() if isinstance(scores, torch.Tensor) else scores).reshape(-1)
        if len(labels) != num or len(scores) != num:
            raise ValueError(f'img_id={img_id!r}: {num} masks but {len(labels)} labels and {len(scores)} scores')
        order = np.argsort(labels, kind='stable')  # phrase order
        masks, labels, scores = masks[order], labels[order], scores[order]
        if self.mask_mode == 'label_map' and num:
            painted = np.full(masks.shape[1:], -1, dtype=np.int64)
            for k in range(num):  # later phrases overwrite earlier ones
                painted[masks[k]] = k
            masks = painted[None] == np.arange(num)[:, None, None]
            areas = masks.reshape(num, -1).sum(1)
            keep = [k for k in np.argsort(-areas, kind='stable') if areas[k] > 0]
            masks, labels, scores = masks[keep], labels[keep], scores[keep]
        if not len(masks):
            return []
        rles = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
        out = []
        for rle, label, score in zip(rles, labels.tolist(), scores.tolist()):
            phrase = phrases[label] if 0 <= label < len(phrases) else None
            out.append((int(label), phrase, float(score),
                        dict(size=[int(s) for s in rle['size']], counts=rle['counts'].decode('ascii'))))
        return out

    # ------------------------------------------------------------------------------------------------
    # whole data set (rank 0)
    # ------------------------------------------------------------------------------------------------
    def compute_metrics(self, results: List[SampleResult]) -> Dict[str, float]:
        """METEOR, CIDEr, AP50, mIoU, AP, mIoU_strict (percent) over all ground-truth images."""
        names = list(self.caption_metrics) + ['AP50', 'mIoU', 'AP', 'mIoU_strict']
        if not results:
            print_log(f'{self.__class__.__name__}: no results to evaluate (empty data set, or the model returned '
                      f'no samples); {", ".join(names)} are NaN.', logger='current', level=logging.WARNING)
            self.stats = {}
            return OrderedDict((n, float('nan')) for n in names)

        gt = self._load_gt()
        preds = self._drop_duplicates(results)
        known = set(gt['mask_img_ids']) | set(gt['caption_img_ids'])
        unknown = [i for i in preds if i not in known]
        if unknown:
            print_log(f'{self.__class__.__name__}: {len(unknown)} prediction(s) for image ids that are in neither '
                      f'ground-truth file were left out, e.g. {unknown[:5]!r}', logger='current',
                      level=logging.WARNING)
        missing = [i for i in gt['mask_img_ids'] if i not in preds]
        if missing:
            print_log(f'{self.__class__.__name__}: {len(missing)} of {len(gt["mask_img_ids"])} ground-truth images '
                      f'have no prediction and are scored as empty (no caption, no mask), e.g. {missing[:5]!r}',
                      logger='current', level=logging.WARNING)

        metrics: Dict[str, float] = OrderedDict()
        if self.caption_metrics:
            metrics.update(self._caption_scores(gt, preds))
        ap50, ap = self._mask_ap(gt, preds)
        miou, miou_strict = self._miou(gt, preds)
        metrics.update(AP50=ap50, mIoU=miou, AP=ap, mIoU_strict=miou_strict)

        evaluated = [preds[i] for i in preds if i in known]
        masks = [m for r in evaluated for m in r[3]]
        self.stats = dict(
            gt_images=len(gt['mask_img_ids']), predicted_images=len(evaluated), missing_images=len(missing),
            unknown_images=len(unknown), duplicates=self._num_dup, conflicting_duplicates=self._num_conflict,
            masks=len(masks), masks_without_phrase=sum(m[1] is None for m in masks),
            phrases_without_mask=sum(len(set(range(len(r[2]))) - {m[0] for m in r[3]}) for r in evaluated),
            images_without_caption_gt=(len([i for i in gt['mask_img_ids'] if not gt['captions'].get(i)])
                                       if self.caption_metrics else 0))
        if self.stats['masks_without_phrase']:
            print_log(f'{self.__class__.__name__}: {self.stats["masks_without_phrase"]} mask(s) have a label with no '
                      '<p>..</p> phrase in the generated text', logger='current', level=logging.WARNING)
        if self.outfile_prefix:
            self._dump(evaluated)

        rows = [(name, f'{value:.2f}') for name, value in metrics.items()]
        rows += [(name, str(value)) for name, value in self.stats.items()]
        print_log(f'{self.__class__.__name__} (prefix {self.prefix!r}):\n{format_table(("metric", "value"), rows)}',
                  logger='current')
        return metrics

    def _drop_duplicates(self, results: Sequence[SampleResult]) -> Dict[Any, SampleResult]:
        """First result of every image id; repeats (sampler padding) are counted and logged."""
        seen: Dict[Any, SampleResult] = {}
        self._num_dup, self._num_conflict = 0, 0
        for result in results:
            first = seen.get(result[0])
            if first is None:
                seen[result[0]] = result
                continue
            self._num_dup += 1
            self._num_conflict += int(first[1:] != result[1:])
        if self._num_dup:
            print_log(f'{self.__class__.__name__}: dropped {self._num_dup} repeated result(s) with an already seen '
                      f'img_id (sampler padding); {len(seen)} unique images remain.', logger='current',
                      level=logging.WARNING)
        if self._num_conflict:
            print_log(f'{self.__class__.__name__}: {self._num_conflict} of the dropped repeats differ from the first '
                      'result of their img_id; img_id must be unique per sample.', logger='current',
                      level=logging.WARNING)
        return seen

    # ------------------------------------------------------------------------------------------------
    # ground truth
    # ------------------------------------------------------------------------------------------------
    def _gt_paths(self) -> Tuple[str, Optional[str]]:
        meta = self.dataset_meta or {}
        mask_file = self.mask_ann_file or meta.get('mask_gt_file')
        caption_file = self.caption_ann_file or meta.get('caption_gt_file')
        if not mask_file:
            raise ValueError('GCGMetric needs mask_ann_file (or a dataset whose metainfo has mask_gt_file)')
        if self.caption_metrics and not caption_file:
            raise ValueError('GCGMetric needs caption_ann_file for METEOR/CIDEr (or a dataset whose metainfo has '
                             'caption_gt_file); pass caption_metrics=() to skip captions')
        return mask_file, caption_file if self.caption_metrics else None

    def _load_gt(self) -> dict:
        key = self._gt_paths()
        if key not in self._gt_cache:
            self._gt_cache = {key: self._read_gt(*key)}
        return self._gt_cache[key]

    def _read_gt(self, mask_file: str, caption_file: Optional[str]) -> dict:
        data = load(mask_file, backend_args=self.backend_args)
        if not isinstance(data, dict) or 'images' not in data or 'annotations' not in data:
            raise ValueError(f'{mask_file}: expected a COCO-style dict with "images" and "annotations"')
        images = []
        for k, img in enumerate(data['images']):
            if 'id' not in img:
                raise ValueError(f'{mask_file}: image #{k} has no "id"')
            images.append(dict(img))
        image_of = {img['id']: img for img in images}
        size_of = {img['id']: (img.get('height'), img.get('width')) for img in images}
        anns = []
        for k, ann in enumerate(data['annotations']):
            if ann.get('image_id') not in size_of:
                raise ValueError(f'{mask_file}: annotation #{k} refers to unknown image {ann.get("image_id")!r}')
            h, w = size_of[ann['image_id']]
            rle = _rle_of_segmentation(ann.get('segmentation'), h, w, f'{mask_file}: annotation #{k}')
            if h is None or w is None:  # sizes for COCO (annToRLE) and the prediction-size check
                image_of[ann['image_id']]['height'], image_of[ann['image_id']]['width'] = rle['size']
                size_of[ann['image_id']] = tuple(rle['size'])
            anns.append(dict(id=ann.get('id', k + 1), image_id=ann['image_id'], category_id=1, segmentation=rle,
                             area=float(ann['area']) if 'area' in ann else float(mask_utils.area(_bytes_rle(rle))),
                             bbox=ann['bbox'] if 'bbox' in ann else mask_utils.toBbox(_bytes_rle(rle)).tolist(),
                             iscrowd=int(ann.get('iscrowd', 0))))
        if len({a['id'] for a in anns}) != len(anns):  # COCO needs unique annotation ids
            for k, a in enumerate(anns):
                a['id'] = k + 1
        coco = COCO()
        coco.dataset = dict(images=images, annotations=anns, categories=[dict(id=1, name='object')])
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
        gt = dict(coco=coco, mask_img_ids=[img['id'] for img in images], sizes=size_of,
                  gt_rles={i: [a['segmentation'] for a in coco.imgToAnns[i]] for i in size_of},
                  captions={}, caption_img_ids=[])
        if caption_file:
            cap = load(caption_file, backend_args=self.backend_args)
            if not isinstance(cap, dict) or 'annotations' not in cap:
                raise ValueError(f'{caption_file}: expected a COCO-caption dict with "annotations"')
            order = [img['id'] for img in cap.get('images', [])]
            captions: Dict[Any, List[str]] = {}
            for k, ann in enumerate(cap['annotations']):
                if 'image_id' not in ann or not isinstance(ann.get('caption'), str):
                    raise ValueError(f'{caption_file}: annotation #{k} needs "image_id" and a string "caption"')
                captions.setdefault(ann['image_id'], []).append(ann['caption'])
            gt['captions'] = captions
            gt['caption_img_ids'] = [i for i in dict.fromkeys(order + list(captions))]
        return gt

    # ------------------------------------------------------------------------------------------------
    # metrics
    # ------------------------------------------------------------------------------------------------
    def _pred_rles(self, gt: dict, preds: Dict[Any, SampleResult], img_id: Any) -> List[Dict[str, Any]]:
        """Predicted RLEs of one ground-truth image (empty if none), checked against the image size."""
        result = preds.get(img_id)
        if result is None:
            return []
        size = gt['sizes'].get(img_id)
        rles = [m[3] for m in result[3]]
        for rle in rles:
            if size and None not in size and list(rle['size']) != [int(size[0]), int(size[1])]:
                raise ValueError(f'img_id={img_id!r}: predicted mask size {tuple(rle["size"])} differs from the '
                                 f'ground-truth image size {tuple(size)}; masks must be at the original size')
        return rles

    def _mask_ap(self, gt: dict, preds: Dict[Any, SampleResult]) -> Tuple[float, float]:
        coco_gt: COCO = gt['coco']
        dets = [dict(image_id=img_id, category_id=1, segmentation=dict(rle), score=1.0)
                for img_id in gt['mask_img_ids'] for rle in self._pred_rles(gt, preds, img_id)]
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            if dets:
                coco_dt = coco_gt.loadRes(dets)
            else:  # loadRes cannot take an empty list; COCOeval then gives precision 0 (AP 0)
                coco_dt = COCO()
                coco_dt.dataset = dict(images=list(coco_gt.dataset['images']), annotations=[],
                                       categories=list(coco_gt.dataset['categories']))
                coco_dt.createIndex()
            coco_eval = COCOeval(coco_gt, coco_dt, 'segm')
            coco_eval.params.catIds = [1]
            coco_eval.params.imgIds = list(gt['mask_img_ids'])
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        print_log(f'{self.__class__.__name__}: COCOeval segm (class-agnostic, score 1.0):\n'
                  + '\n'.join(line for line in log.getvalue().splitlines() if line.startswith(' Average')),
                  logger='current')
        ap, ap50 = float(coco_eval.stats[0]), float(coco_eval.stats[1])
        return tuple(100.0 * v if v >= 0 else float('nan') for v in (ap50, ap))

    def _miou(self, gt: dict, preds: Dict[Any, SampleResult]) -> Tuple[float, float]:
        glamm, strict = [], []
        for img_id in gt['mask_img_ids']:
            gt_rles = [_bytes_rle(r) for r in gt['gt_rles'][img_id]]
            dt_rles = [_bytes_rle(r) for r in self._pred_rles(gt, preds, img_id)]
            if dt_rles and gt_rles:
                iou = np.asarray(mask_utils.iou(dt_rles, gt_rles, [0] * len(gt_rles)), dtype=np.float64)
                iou = iou.reshape(len(dt_rles), len(gt_rles))
            else:
                iou = np.zeros((len(dt_rles), len(gt_rles)))
            matched = [p[2] for p in greedy_iou_matching(iou)]
            glamm.append(math.fsum(matched) / len(matched) if matched else 0.0)
            denom = max(len(dt_rles), len(gt_rles))
            strict.append(math.fsum(matched) / denom if denom else 1.0)
        if not glamm:
            return float('nan'), float('nan')
        return 100.0 * math.fsum(glamm) / len(glamm), 100.0 * math.fsum(strict) / len(strict)

    def _caption_scores(self, gt: dict, preds: Dict[Any, SampleResult]) -> Dict[str, float]:
        ptb_cls, meteor_cls, cider_cls = _import_caption_scorers()
        _check_java()
        img_ids = [i for i in gt['caption_img_ids'] if gt['captions'].get(i)]
        skipped = len(gt['caption_img_ids']) - len(img_ids)
        if skipped:
            print_log(f'{self.__class__.__name__}: {skipped} caption ground-truth image(s) have no caption and are '
                      'left out of METEOR/CIDEr', logger='current', level=logging.WARNING)
        if not img_ids:
            return OrderedDict((m, float('nan')) for m in self.caption_metrics)
        # one tokenizer run (one JVM) for references and predictions; one line per caption, so newlines and
        # other line breaks are collapsed first (whitespace does not change the PTB tokens)
        to_tokenize = OrderedDict()
        for i, img_id in enumerate(img_ids):
            to_tokenize[('gt', i)] = [dict(caption=_normalize_ws(c)) for c in gt['captions'][img_id]]
            caption = preds[img_id][1] if img_id in preds else ''
            to_tokenize[('res', i)] = [dict(caption=_normalize_ws(caption))]
        tokens = ptb_cls().tokenize(to_tokenize)
        if any(len(tokens.get(k, ())) != len(v) for k, v in to_tokenize.items()):
            raise RuntimeError('GCGMetric: PTBTokenizer returned a different number of captions than it was given')
        refs = OrderedDict((i, tokens[('gt', i)]) for i in range(len(img_ids)))
        hyps = OrderedDict((i, tokens[('res', i)]) for i in range(len(img_ids)))
        out: Dict[str, float] = OrderedDict()
        if 'METEOR' in self.caption_metrics:
            try:
                meteor = meteor_cls()
            except OSError as e:
                raise RuntimeError(f'GCGMetric: could not start METEOR (java -jar meteor-1.5.jar): {e}') from e
            try:
                score, _ = meteor.compute_score(refs, hyps)
            except ValueError as e:  # the JVM died (e.g. not enough memory for -Xmx2G) and returned no number
                raise RuntimeError(f'GCGMetric: METEOR (java -jar meteor-1.5.jar -Xmx2G) gave no score: {e}') from e
            finally:
                del meteor
            out['METEOR'] = 100.0 * float(score)
        if 'CIDEr' in self.caption_metrics:
            score, _ = cider_cls().compute_score(refs, hyps)
            out['CIDEr'] = 100.0 * float(score)
        return out

    def _dump(self, evaluated: List[SampleResult]) -> None:
        path = f'{self.outfile_prefix}.gcg_predictions.json'
        dump([dict(image_id=img_id, caption=caption, phrases=phrases,
                   masks=[dict(label=label, phrase=phrase, score=score, segmentation=rle)
                          for label, phrase, score, rle in masks])
              for img_id, caption, phrases, masks in evaluated], path)
        print_log(f'{self.__class__.__name__}: predictions (masks with their phrases) written to {path}',
                  logger='current')


def _bytes_rle(rle: Dict[str, Any]) -> Dict[str, Any]:
    counts = rle['counts']
    return dict(size=list(rle['size']), counts=counts.encode('ascii') if isinstance(counts, str) else counts)
