"""Semantic segmentation: mIoU, fwIoU, mAcc and pAcc from a confusion matrix (reference §5 "Semantic").

Per sample the metric counts, on the CPU, the confusion matrix ``M`` of ground truth (rows) against
prediction (columns) over the pixels whose ground truth is not ``ignore_index``. ``M`` has ``C`` rows (the
classes) and ``C + 1`` columns: column ``C`` counts *unlabelled* predictions (the prediction holds
``ignore_index`` there, e.g. a post-processing that leaves pixels void; X-SAM's argmax never does). Only the
non-zero entries of ``M`` are kept per sample (flat indices + counts, at most ``C * (C + 1)`` of them, in
practice a few dozen), never a mask; the matrices of all samples (all ranks, mmengine's gather) are summed
with integer arithmetic, so the numbers do not depend on the order or the number of processes. Then, with
``tp_c = M[c, c]``, ``gt_c = sum_j M[c, j]`` (every labelled GT pixel of class c, unlabelled predictions
included) and ``pred_c = sum_r M[r, c]`` (pixels predicted as c on labelled GT)::

    IoU_c = tp_c / (gt_c + pred_c - tp_c)        Acc_c = tp_c / gt_c
    mIoU  = 100 * mean of IoU_c over the valid classes
    mAcc  = 100 * mean of Acc_c over the valid classes
    fwIoU = 100 * sum_c (gt_c / sum_k gt_k) * IoU_c
    pAcc  = 100 * sum_c tp_c / sum_c gt_c         (true pixel accuracy over all labelled pixels)

**Valid classes** are those with at least one ground-truth pixel (``gt_c > 0``), exactly as detectron2's
``SemSegEvaluator`` (``acc_valid = pos_gt > 0``, ``iou_valid = acc_valid & (union > 0)``), which X-SAM's
semantic evaluator derives from: a class absent from the ground truth of the whole data set is left out of
mIoU/mAcc/fwIoU, whether or not it was predicted (its false positives still lower the IoU/accuracy of the
classes whose pixels they took). Per-class IoU/Acc of invalid classes are NaN in the logged table.

Why not mmdet's ``SemSegMetric``: in mmdet 3.3 its ``aAcc`` is ``total_area_intersect / total_area_label``
computed *per class* and then ``np.nanmean``-ed, i.e. the class-mean accuracy (the same number as ``mAcc``),
not the pixel accuracy (mmseg's ``IoUMetric`` sums both vectors first). ``pAcc`` here is the true pixel
accuracy. mmdet's metric also keeps four ``C``-vectors per sample and has no duplicate handling.

Distributed evaluation: as :class:`~mmxsam.evaluation.metrics.refer_seg_metric.ReferSegMetric`, results are
gathered by mmengine (padding truncated to the data set size) and results whose ``sample_idx`` was already
seen are dropped (first kept), counted and logged.
"""
import logging
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from .metric_utils import drop_duplicate_results, format_table, sample_index
from .metric_utils import get_field as _get

NAN = float('nan')
METRIC_NAMES = ('mIoU', 'fwIoU', 'mAcc', 'pAcc')


def _as_cpu_hw(array: Union[torch.Tensor, np.ndarray], what: str, sample_idx: Any) -> torch.Tensor:
    if isinstance(array, np.ndarray):
        array = torch.from_numpy(array)
    if not isinstance(array, torch.Tensor):
        raise TypeError(f'sample_idx={sample_idx!r}: {what} must be a torch.Tensor or np.ndarray, got '
                        f'{type(array).__name__}')
    array = array.detach().cpu()
    if array.dim() == 3 and array.shape[0] == 1:
        array = array[0]
    return array


@METRICS.register_module()
class XSAMSemSegMetric(BaseMetric):
    """Confusion-matrix semantic segmentation metric: mIoU, fwIoU, mAcc, pAcc (percent).

    Input contract: each element of ``data_samples`` (a dict, as mmengine's ``Evaluator`` passes it, or a
    data element) has

    - ``pred_sem_seg.sem_seg``: ``(1, H, W)`` or ``(H, W)`` integer class map, values in ``[0, C)``;
      ``ignore_index`` is accepted as "no class predicted" (counted as a miss). Other values (negative,
      ``>= C``, non-integral floats) raise ``ValueError``.
    - ``gt_sem_seg.sem_seg``: same shape, values in ``[0, C)`` or ``ignore_index`` (not evaluated); other
      values raise ``ValueError``. Shapes must match (the original image size) or ``ValueError``.
    - metainfo ``sample_idx``: unique per sample (used to drop sampler-padding duplicates).

    Output (before mmengine adds ``prefix + '/'``): ``mIoU``, ``fwIoU``, ``mAcc``, ``pAcc`` in percent (see
    the module docstring for formulas and the valid-class rule). A per-class IoU/Acc table is logged. No
    results, or no labelled ground-truth pixel at all, gives a warning and NaN for all four.

    Args:
        num_classes (int, optional): ``C``. None: ``len(dataset_meta['classes'])`` (set by the runner from
            the data set's metainfo), resolved at the first :meth:`process`.
        ignore_index (int): Ground-truth value of unlabelled pixels. Defaults to 255.
        class_names (Sequence[str], optional): names for the logged table; None: ``dataset_meta['classes']``
            when it has ``C`` entries, else the indices.
        collect_device (str): ``'cpu'`` or ``'gpu'``. Defaults to ``'cpu'``.
        collect_dir (str, optional): shared directory for CPU gathering. Defaults to None.
        prefix (str, optional): metric-name prefix; None: ``'sem_seg'``.
    """

    default_prefix: Optional[str] = 'sem_seg'

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 class_names: Optional[Sequence[str]] = None,
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if num_classes is not None and int(num_classes) < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes!r}')
        self._num_classes = None if num_classes is None else int(num_classes)
        if self._num_classes is not None and 0 <= ignore_index < self._num_classes:
            raise ValueError(f'ignore_index {ignore_index} is a class index (num_classes={self._num_classes})')
        self.ignore_index = int(ignore_index)
        self.class_names = None if class_names is None else [str(n) for n in class_names]

    # ------------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        if self._num_classes is None:
            classes = (self.dataset_meta or {}).get('classes')
            if not classes:
                raise ValueError(f'{type(self).__name__}: pass num_classes, or evaluate a data set whose metainfo '
                                 'has `classes`')
            self._num_classes = len(classes)
            if 0 <= self.ignore_index < self._num_classes:
                raise ValueError(f'ignore_index {self.ignore_index} is a class index '
                                 f'(num_classes={self._num_classes})')
        return self._num_classes

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append ``dict(sample_idx, index, count)`` (the sample's non-zero confusion entries) per sample."""
        for data_sample in data_samples:
            sample_idx = sample_index(data_sample, type(self).__name__)
            pred = _get(_get(data_sample, 'pred_sem_seg', {}), 'sem_seg')
            gt = _get(_get(data_sample, 'gt_sem_seg', {}), 'sem_seg')
            if pred is None or gt is None:
                raise KeyError(f'sample_idx={sample_idx!r}: {type(self).__name__} needs `pred_sem_seg.sem_seg` '
                               'and `gt_sem_seg.sem_seg`')
            matrix = self.confusion_matrix(pred, gt, sample_idx)
            flat = matrix.ravel()
            index = np.flatnonzero(flat)
            self.results.append(dict(sample_idx=sample_idx, index=index.astype(np.int64),
                                     count=flat[index].astype(np.int64)))

    def confusion_matrix(self, pred: Union[torch.Tensor, np.ndarray], gt: Union[torch.Tensor, np.ndarray],
                         sample_idx: Any = None) -> np.ndarray:
        """``(C, C + 1)`` int64 matrix: rows GT class, columns predicted class (column C: unlabelled).

        Args:
            pred: ``(1, H, W)`` or ``(H, W)`` predicted classes.
            gt: ``(1, H, W)`` or ``(H, W)`` GT classes with ``ignore_index``.
            sample_idx: only used in error messages.
        """
        c = self.num_classes
        pred_t, gt_t = _as_cpu_hw(pred, 'prediction', sample_idx), _as_cpu_hw(gt, 'ground truth', sample_idx)
        if pred_t.dim() != 2 or pred_t.shape != gt_t.shape:
            raise ValueError(f'sample_idx={sample_idx!r}: prediction shape {tuple(pred_t.shape)} does not match '
                             f'ground-truth shape {tuple(gt_t.shape)} (after dropping a leading 1); both must be '
                             '(1, H, W) or (H, W) at the same size')
        pred_t, gt_t = self._labels(pred_t, 'prediction', sample_idx), self._labels(gt_t, 'ground truth', sample_idx)
        bad_gt = ((gt_t < 0) | (gt_t >= c)) & (gt_t != self.ignore_index)
        if bool(bad_gt.any()):
            raise ValueError(f'sample_idx={sample_idx!r}: ground truth must hold [0, {c}) or {self.ignore_index}, '
                             f'found values {torch.unique(gt_t[bad_gt])[:5].tolist()}')
        bad_pred = ((pred_t < 0) | (pred_t >= c)) & (pred_t != self.ignore_index)
        if bool(bad_pred.any()):
            raise ValueError(f'sample_idx={sample_idx!r}: prediction must hold [0, {c}) (or {self.ignore_index} for '
                             f'no class), found values {torch.unique(pred_t[bad_pred])[:5].tolist()}')
        valid = gt_t != self.ignore_index
        gt_v = gt_t[valid]
        pred_v = pred_t[valid]
        pred_v = torch.where(pred_v == self.ignore_index, torch.full_like(pred_v, c), pred_v)
        counts = torch.bincount(gt_v * (c + 1) + pred_v, minlength=c * (c + 1))
        return counts.numpy().astype(np.int64).reshape(c, c + 1)

    @staticmethod
    def _labels(array: torch.Tensor, what: str, sample_idx: Any) -> torch.Tensor:
        """Integer labels as int64; floats must be integral (and finite)."""
        if array.dtype == torch.bool:
            return array.long()
        if array.is_floating_point():
            if not bool(torch.isfinite(array).all()) or not bool((array == array.round()).all()):
                raise ValueError(f'sample_idx={sample_idx!r}: {what} must hold integer class indices, got '
                                 f'non-integral {array.dtype} values')
        return array.long()

    # ------------------------------------------------------------------------------------------------
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Sum the confusion entries of all (unique) samples and compute the four metrics."""
        unique = drop_duplicate_results(results, type(self).__name__)
        nan_metrics = OrderedDict((k, NAN) for k in METRIC_NAMES)
        if not unique:
            print_log(f'{type(self).__name__}: no results to evaluate (empty data set, or the model returned no '
                      'samples); mIoU, fwIoU, mAcc and pAcc are NaN.', logger='current', level=logging.WARNING)
            return nan_metrics
        c = self.num_classes
        flat = np.zeros(c * (c + 1), dtype=np.int64)
        for result in unique:
            np.add.at(flat, result['index'], result['count'])
        matrix = flat.reshape(c, c + 1)
        stats = self.metrics_from_confusion(matrix)
        if stats is None:
            print_log(f'{type(self).__name__}: no labelled ground-truth pixel in {len(unique)} samples; all metrics '
                      'are NaN.', logger='current', level=logging.WARNING)
            return nan_metrics
        metrics, iou, acc = stats
        self._log_table(matrix, iou, acc, metrics, len(unique))
        return metrics

    @staticmethod
    def metrics_from_confusion(matrix: np.ndarray) -> Optional[Tuple[Dict[str, float], np.ndarray, np.ndarray]]:
        """``(metrics, per-class IoU, per-class Acc)`` of a ``(C, C + 1)`` matrix; None if it has no GT pixel.

        Per-class values are fractions (NaN for classes without GT pixels); the metrics are percent floats.
        """
        c = matrix.shape[0]
        matrix = matrix.astype(np.float64)
        tp = np.diagonal(matrix[:, :c]).copy()
        pos_gt = matrix.sum(axis=1)  # every labelled GT pixel, unlabelled predictions included
        pos_pred = matrix[:, :c].sum(axis=0)
        total = pos_gt.sum()
        if total == 0:
            return None
        valid = pos_gt > 0  # detectron2: acc_valid (and union > 0 follows)
        iou = np.full(c, np.nan)
        acc = np.full(c, np.nan)
        iou[valid] = tp[valid] / (pos_gt[valid] + pos_pred[valid] - tp[valid])
        acc[valid] = tp[valid] / pos_gt[valid]
        weights = pos_gt / total
        metrics = OrderedDict(
            mIoU=float(100.0 * iou[valid].sum() / valid.sum()),
            fwIoU=float(100.0 * (iou[valid] * weights[valid]).sum()),
            mAcc=float(100.0 * acc[valid].sum() / valid.sum()),
            pAcc=float(100.0 * tp.sum() / total))
        return metrics, iou, acc

    def _log_table(self, matrix: np.ndarray, iou: np.ndarray, acc: np.ndarray, metrics: Dict[str, float],
                   num_samples: int) -> None:
        c = matrix.shape[0]
        names = self.class_names
        if names is None or len(names) != c:
            classes = (self.dataset_meta or {}).get('classes')
            names = [str(n) for n in classes] if classes is not None and len(classes) == c else [str(i) for i in
                                                                                                  range(c)]
        pos_gt = matrix.sum(axis=1)
        rows = [(names[i], int(pos_gt[i]), f'{100 * iou[i]:.2f}', f'{100 * acc[i]:.2f}') for i in range(c)]
        num_valid = int((pos_gt > 0).sum())
        unlabelled = int(matrix[:, c].sum())
        summary = ', '.join(f'{k} {v:.2f}' for k, v in metrics.items())
        print_log(f'{type(self).__name__} (prefix {self.prefix!r}): {num_samples} samples, {num_valid}/{c} classes '
                  f'with GT pixels (the others are left out of the means), {unlabelled} labelled pixels predicted '
                  f'as no class\n{format_table(("class", "GT pixels", "IoU", "Acc"), rows)}\n{summary}',
                  logger='current')
