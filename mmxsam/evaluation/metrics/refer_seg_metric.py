"""cIoU / gIoU for referring and reasoning segmentation (RefCOCO/+/g, ReasonSeg, shapes).

One *sample* is one referring expression (or one ReasonSeg query) with one binary target mask. Per sample
the metric counts, on the CPU, the intersection ``I`` and the union ``U`` of the binary prediction and the
ground truth, leaving out the ground truth's ignore pixels (ReasonSeg "ignore" regions, value 255) from
both. Only ``(sample_idx, split, I, U)`` is kept per sample, never a mask, so memory stays O(#samples) and
the cross-rank gather moves a few bytes per sample. Then::

    cIoU = 100 * sum_s I_s / sum_s U_s              (cumulative IoU, large objects weigh more)
    gIoU = 100 * mean_s IoU_s,  IoU_s = I_s / U_s   (per-sample mean), IoU_s = 1.0 when U_s == 0

Empty-target convention. A sample whose ground truth and prediction are both empty (``U == 0``; after
removing ignore pixels) scores IoU 1.0 in gIoU. That is what both references do: LISA's ``validate``
(``train_ds.py``: ``acc_iou += intersection_i / (union_i + 1e-5); acc_iou[union_i == 0] += 1.0  #
no-object target``) and X-SAM's ``IouStat.update`` (``xsam/evaluation/utils/iou.py``:
``np.where(union > 0, intersection / union, 1.0)``), which X-SAM's RefSeg/ReaSeg evaluators use. Unlike
LISA, no ``1e-5`` is added to the denominator (X-SAM's exact ratio). If every sample of a group has
``U == 0``, cIoU is 0/0; it is reported as 100.0, as X-SAM's ``IouStat.average`` does (LISA's
``I / (U + 1e-10)`` would give 0.0) -- the group is perfectly segmented, consistent with its gIoU of 100.

Distributed evaluation (reference §8, weaknesses 1 and 2). mmengine's ``BaseMetric.evaluate`` gathers the
results of *all* ranks (``collect_results``, on ``collect_device``) and truncates them to ``size =
len(dataset)``, which drops the samples that ``DefaultSampler(round_up=True)`` repeated to even out the
ranks. Results whose ``sample_idx`` was already seen are dropped as well (first one kept), counted and
logged, so a sampler that pads differently (e.g. torch's ``DistributedSampler``) cannot count a sample
twice. Per-sample IoUs are summed with :func:`math.fsum` and the counts are integers, so the numbers do not
depend on the order in which ranks' results arrive: 1 and N processes give identical metrics.
"""
import logging
import math
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from .metric_utils import format_table
from .metric_utils import get_field as _get

# One processed sample: (sample_idx, split or None, intersection, union).
SampleResult = Tuple[Any, Optional[str], int, int]


def _as_cpu_tensor(mask: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(mask)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f'expected a torch.Tensor or np.ndarray mask, got {type(mask).__name__}')
    return mask.detach().cpu()


def _squeeze_mask(mask: torch.Tensor) -> torch.Tensor:
    """``(1, H, W)`` or ``(H, W)`` -> ``(H, W)``; anything else is returned unchanged (caught by the shape check)."""
    if mask.dim() == 3 and mask.shape[0] == 1:
        return mask[0]
    return mask


@METRICS.register_module()
class ReferSegMetric(BaseMetric):
    """cIoU and gIoU of binary masks, overall and per split, for referring and reasoning segmentation.

    Input contract (what the model's ``predict`` must return; one data sample per expression). Each
    element of ``data_samples`` is a dict (mmengine's ``Evaluator`` calls ``DetDataSample.to_dict()``) or
    a data element with:

    - ``pred_sem_seg.sem_seg``: ``(1, H, W)`` (or ``(H, W)``) binary prediction, values in {0, 1}; dtype
      bool, uint8, int or float holding exactly 0/1. Any other value (e.g. a logit, 0.5, NaN, 255) raises
      ``ValueError``: threshold before returning.
    - ``gt_sem_seg.sem_seg``: ``(1, H, W)`` (or ``(H, W)``) target, values in {0, 1, ``ignore_index``};
      ``ignore_index`` pixels (ReasonSeg's ignore regions) count in neither I nor U, whatever the
      prediction says there. Other values raise ``ValueError``. Prediction and target must have the same
      ``(H, W)`` (the original image size) or ``ValueError`` names the sample and both shapes.
    - metainfo ``sample_idx``: a hashable id unique per expression/query (mmengine's ``BaseDataset`` sets
      it to the dataset index; a dataset with several expressions per image must give each expression its
      own data sample and index). Used to drop padded duplicates.
    - metainfo ``split`` (key set by ``split_key``; optional): the group a sample is reported under, e.g.
      ``'val'``, ``'testA'``, ``'testB'`` for RefCOCO or ``'short'``/``'long'`` for ReasonSeg. Samples
      without it count only in the overall numbers.

    Output (before mmengine adds ``prefix + '/'``): ``cIoU`` and ``gIoU`` over all samples and
    ``<split>/cIoU``, ``<split>/gIoU`` for every split (sorted by name), in percent, as Python floats.
    With the default prefix the keys are ``refer/cIoU``, ``refer/val/cIoU``, ... A table with the sample
    counts is logged through the current mmengine logger. No results at all gives a warning and ``nan``
    for ``cIoU``/``gIoU`` (not 0, not an exception). See the module docstring for the formulas, the
    empty-target convention (IoU 1.0 when ``U == 0``, as in LISA and X-SAM) and distributed behaviour.

    Args:
        ignore_index (int): Target value marking ignored pixels. Defaults to 255.
        split_key (str): Metainfo key holding a sample's split name. Defaults to ``'split'``.
        collect_device (str): ``'cpu'`` or ``'gpu'``, device used to gather results across ranks.
            Defaults to ``'cpu'``.
        collect_dir (str, optional): Shared directory for ``collect_device='cpu'`` gathering; ``None``
            lets mmengine create one. Defaults to None.
        prefix (str, optional): Prefix of the metric names; ``None`` uses ``default_prefix`` (``'refer'``).
            Use e.g. ``'refcoco'`` / ``'reasonseg'`` to tell several evaluators apart.
    """

    default_prefix: Optional[str] = 'refer'

    def __init__(self,
                 ignore_index: int = 255,
                 split_key: str = 'split',
                 collect_device: str = 'cpu',
                 collect_dir: Optional[str] = None,
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if ignore_index in (0, 1):
            raise ValueError(f'ignore_index must differ from the mask values 0 and 1, got {ignore_index}')
        self.ignore_index = ignore_index
        self.split_key = split_key

    # ------------------------------------------------------------------------------------------------
    # per batch
    # ------------------------------------------------------------------------------------------------
    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Append ``(sample_idx, split, I, U)`` of every sample in the batch to ``self.results``.

        Args:
            data_batch (Any): The dataloader batch (unused).
            data_samples (Sequence[dict]): Model outputs with targets, see the class docstring.
        """
        for data_sample in data_samples:
            sample_idx = _get(data_sample, 'sample_idx')
            if sample_idx is None:
                raise KeyError('ReferSegMetric needs metainfo `sample_idx` (a unique id per expression) '
                               'in every data sample')
            if isinstance(sample_idx, torch.Tensor):
                sample_idx = sample_idx.item()
            split = _get(data_sample, self.split_key)
            pred = _get(_get(data_sample, 'pred_sem_seg', {}), 'sem_seg')
            gt = _get(_get(data_sample, 'gt_sem_seg', {}), 'sem_seg')
            if pred is None or gt is None:
                raise KeyError(f'sample_idx={sample_idx!r}: ReferSegMetric needs `pred_sem_seg.sem_seg` '
                               'and `gt_sem_seg.sem_seg`')
            intersection, union = self.intersection_and_union(pred, gt, sample_idx)
            self.results.append((sample_idx, None if split is None else str(split), intersection, union))

    def intersection_and_union(self, pred: Union[torch.Tensor, np.ndarray], gt: Union[torch.Tensor, np.ndarray],
                               sample_idx: Any = None) -> Tuple[int, int]:
        """Count the intersection and union of one binary prediction and its target, on the CPU.

        Args:
            pred: ``(1, H, W)`` or ``(H, W)``, values in {0, 1}.
            gt: ``(1, H, W)`` or ``(H, W)``, values in {0, 1, ignore_index}.
            sample_idx: Only used in error messages.

        Returns:
            tuple[int, int]: ``(I, U)`` pixel counts, ignore pixels excluded from both.
        """
        pred_t, gt_t = _as_cpu_tensor(pred), _as_cpu_tensor(gt)
        pred_hw, gt_hw = _squeeze_mask(pred_t), _squeeze_mask(gt_t)
        if pred_hw.dim() != 2 or pred_hw.shape != gt_hw.shape:
            raise ValueError(f'sample_idx={sample_idx!r}: prediction shape {tuple(pred_t.shape)} does not match '
                             f'ground-truth shape {tuple(gt_t.shape)}; both must be (1, H, W) or (H, W) at the '
                             'same size')
        if pred_hw.dtype != torch.bool:
            bad = (pred_hw != 0) & (pred_hw != 1)  # NaN compares unequal to both: counted as bad
            if bool(bad.any()):
                values = torch.unique(pred_hw[bad])[:5].tolist()
                raise ValueError(f'sample_idx={sample_idx!r}: prediction must be binary {{0, 1}}, found values '
                                 f'{values} (dtype {pred_hw.dtype}); threshold the mask before evaluation')
        bad = (gt_hw != 0) & (gt_hw != 1) & (gt_hw != self.ignore_index)
        if bool(bad.any()):
            values = torch.unique(gt_hw[bad])[:5].tolist()
            raise ValueError(f'sample_idx={sample_idx!r}: ground truth must hold {{0, 1, {self.ignore_index}}}, '
                             f'found values {values}')

        valid = gt_hw != self.ignore_index  # (H, W) bool
        pred_fg = (pred_hw != 0) & valid
        gt_fg = gt_hw == 1
        intersection = int(torch.count_nonzero(pred_fg & gt_fg))
        union = int(torch.count_nonzero(pred_fg | gt_fg))
        return intersection, union

    # ------------------------------------------------------------------------------------------------
    # whole data set (rank 0, after mmengine's collect_results)
    # ------------------------------------------------------------------------------------------------
    def compute_metrics(self, results: List[SampleResult]) -> Dict[str, float]:
        """Compute cIoU/gIoU overall and per split from the gathered per-sample counts.

        Args:
            results (list[tuple]): ``(sample_idx, split, I, U)`` of every sample, all ranks, padding
                already truncated by mmengine.

        Returns:
            dict[str, float]: ``cIoU``, ``gIoU`` and ``<split>/cIoU``, ``<split>/gIoU`` in percent.
        """
        unique = self._drop_duplicates(results)
        if not unique:
            print_log(f'{self.__class__.__name__}: no results to evaluate (empty data set, or the model '
                      'returned no samples); cIoU and gIoU are NaN.', logger='current', level=logging.WARNING)
            return OrderedDict(cIoU=float('nan'), gIoU=float('nan'))

        groups: Dict[str, List[SampleResult]] = {}
        for result in unique:
            if result[1] is not None:
                groups.setdefault(result[1], []).append(result)

        metrics: Dict[str, float] = OrderedDict()
        overall_ciou, overall_giou = self._ciou_giou(unique)
        metrics['cIoU'], metrics['gIoU'] = overall_ciou, overall_giou
        rows = []
        for split in sorted(groups):
            ciou, giou = self._ciou_giou(groups[split])
            metrics[f'{split}/cIoU'], metrics[f'{split}/gIoU'] = ciou, giou
            rows.append((split, len(groups[split]), f'{ciou:.2f}', f'{giou:.2f}'))
        rows.append(('overall', len(unique), f'{overall_ciou:.2f}', f'{overall_giou:.2f}'))
        table = format_table(('split', 'samples', 'cIoU', 'gIoU'), rows)
        print_log(f'{self.__class__.__name__} (prefix {self.prefix!r}):\n{table}', logger='current')
        return metrics

    @staticmethod
    def _ciou_giou(results: Sequence[SampleResult]) -> Tuple[float, float]:
        """(cIoU, gIoU) in percent of a non-empty group; see the module docstring for the ``U == 0`` rules."""
        total_i = sum(r[2] for r in results)
        total_u = sum(r[3] for r in results)
        ciou = 100.0 * total_i / total_u if total_u > 0 else 100.0
        ious = [r[2] / r[3] if r[3] > 0 else 1.0 for r in results]
        giou = 100.0 * math.fsum(ious) / len(ious)
        return ciou, giou

    def _drop_duplicates(self, results: Sequence[SampleResult]) -> List[SampleResult]:
        """Keep the first result of every ``sample_idx``; log how many repeats were dropped."""
        seen: Dict[Any, SampleResult] = {}
        num_dup, num_conflict = 0, 0
        for result in results:
            first = seen.get(result[0])
            if first is None:
                seen[result[0]] = result
                continue
            num_dup += 1
            num_conflict += int(first[1:] != result[1:])
        if num_dup:
            print_log(f'{self.__class__.__name__}: dropped {num_dup} repeated result(s) with an already seen '
                      f'sample_idx (sampler padding); {len(seen)} unique samples remain.', logger='current',
                      level=logging.WARNING)
        if num_conflict:
            print_log(f'{self.__class__.__name__}: {num_conflict} of the dropped repeats differ from the first '
                      'result of their sample_idx; sample_idx must be unique per expression, otherwise distinct '
                      'samples are being discarded.', logger='current', level=logging.WARNING)
        return list(seen.values())
