"""Concatenation of several sources with X-SAM's square-root dataset-balance resampling.

X-SAM's stage-3 mix (reference §3, "Dataset-balance resampling") concatenates eleven sources of very
different sizes (LLaVA-665k next to a few thousand ReasonSeg samples) and up-samples the small ones once,
at build time::

    f_d = n_d / sum_k n_k                     # fraction of the mix that source d holds
    r_d = max(1, sqrt(t / f_d))               # repeat factor, t = ``oversample_thr`` (0.1 in X-SAM)
    L_d = floor(n_d * r_d)                    # length of source d inside the concatenation
    local index i in [0, L_d)  ->  sample i % n_d of source d

Example: sizes 1000 / 100 / 10 (sum 1110) with t = 0.1 give r = 1, sqrt(1.11) = 1.054, sqrt(11.1) = 3.332
and lengths 1000 / 105 / 33.

The concatenated index space is laid out source after source (``cumulative_sizes`` holds the *repeated*
lengths), so :class:`~mmxsam.datasets.samplers.SourceGroupedSampler` can cut global batches from one
source using :attr:`source_indices`.
"""
import bisect
import logging
import math
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

from mmdet.datasets import ConcatDataset
from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset, force_full_init
from mmengine.logging import print_log

from ..samplers.sample_seeds import seeded_rngs


@DATASETS.register_module()
class BalancedConcatDataset(ConcatDataset):
    """mmdet's :class:`ConcatDataset` with square-root repeat factors per source.

    Why a subclass of mmdet's ``ConcatDataset``: it already builds sub-dataset configs in the mmdet scope,
    supports ``lazy_init``, accepts sources whose ``metainfo`` differ (``metainfo`` then becomes the list of
    the sources' metainfo, which a multi-task mix needs) and provides ``get_dataset_source``. Only the
    length bookkeeping (``full_init``) and the index mapping (``_get_ori_dataset_idx``, which also serves
    ``__getitem__``/``get_data_info``) change.

    Args:
        datasets (Sequence[BaseDataset | dict]): The sources, in order; dicts are built from ``DATASETS``.
        oversample_thr (float): ``t`` above; a source holding a fraction ``f_d < t`` of the samples is
            repeated ``sqrt(t / f_d)`` times. Must be > 0. Defaults to 0.1 (X-SAM's ``oversample_ratio``).
        source_names (Sequence[str], optional): Readable names for the log and ``__repr__``; by default
            the class name plus the annotation file's base name.
        lazy_init (bool): Defer loading the sources' annotations to the first access. Defaults to False.
        ignore_keys (str | list[str], optional): ``metainfo`` keys not compared between sources.

    Empty sources are kept in place (so source ``i`` is always the ``i``-th entry of ``datasets``) with
    length 0; they are logged and counted in :attr:`num_skipped_sources`. If every source is empty a
    ``ValueError`` is raised.

    Properties (each one triggers ``full_init`` under ``lazy_init``):
        ori_lengths (list[int]): ``n_d``.
        repeat_factors (list[float]): ``r_d`` (1.0 for an empty source).
        source_lengths (list[int]): ``L_d``; ``len(self) == sum(source_lengths)``.
        source_indices (list[range]): global index range of each source, ``range(start_d, start_d + L_d)``.
        num_skipped_sources (int): number of empty sources.
        source_names (list[str]): readable names.

    Methods: ``source_of(idx)`` (source of a global index), ``get_dataset_source(idx)`` (mmdet's alias).
    """

    def __init__(self,
                 datasets: Sequence[Union[BaseDataset, dict]],
                 oversample_thr: float = 0.1,
                 source_names: Optional[Sequence[str]] = None,
                 lazy_init: bool = False,
                 ignore_keys: Union[str, List[str], None] = None) -> None:
        if not isinstance(oversample_thr, (int, float)) or isinstance(oversample_thr, bool) \
                or not oversample_thr > 0:
            raise ValueError(f'oversample_thr must be a number > 0, got {oversample_thr!r}')
        if len(datasets) == 0:
            raise ValueError('BalancedConcatDataset needs at least one sub-dataset, got none')
        if source_names is not None and len(source_names) != len(datasets):
            raise ValueError(f'source_names has {len(source_names)} entries for {len(datasets)} datasets')
        self.oversample_thr = float(oversample_thr)
        self._source_names_arg = list(source_names) if source_names is not None else None
        datasets = [DATASETS.build(d) if isinstance(d, dict) else d for d in datasets]
        # mmdet 3.3 compares every metainfo key against the first source and fails with a KeyError when
        # the first one lacks a key (e.g. a conversation source first, segmentation sources after): such
        # keys cannot be shared anyway, so they are not compared (metainfo becomes the per-source list).
        ignore = [] if ignore_keys is None else [ignore_keys] if isinstance(ignore_keys, str) else list(ignore_keys)
        first_keys = set(datasets[0].metainfo)
        missing = sorted({k for d in datasets[1:] for k in d.metainfo} - first_keys - set(ignore))
        super().__init__(datasets, lazy_init=lazy_init, ignore_keys=ignore + missing)
        if missing:
            self._metainfo = [d.metainfo for d in self.datasets]

    # ------------------------------------------------------------------ build-time bookkeeping
    @staticmethod
    def _default_name(dataset: BaseDataset, idx: int) -> str:
        ann_file = getattr(dataset, 'ann_file', None)
        name = type(dataset).__name__
        if isinstance(ann_file, str) and ann_file:
            name += f'({osp.basename(ann_file)})'
        return f'{idx}:{name}'

    @property
    def source_names(self) -> List[str]:
        """One readable name per source (given ``source_names`` or ``'<i>:<Class>(<ann file>)'``)."""
        if self._source_names_arg is not None:
            return list(self._source_names_arg)
        return [self._default_name(d, i) for i, d in enumerate(self.datasets)]

    @staticmethod
    def compute_repeat_factors(lengths: Sequence[int], oversample_thr: float) -> List[float]:
        """``r_d = max(1, sqrt(t / f_d))`` with ``f_d = n_d / sum(n)``; 1.0 for empty sources.

        Raises ``ValueError`` when ``t <= 0`` or when every length is 0.
        """
        if not oversample_thr > 0:
            raise ValueError(f'oversample_thr must be > 0, got {oversample_thr!r}')
        total = sum(lengths)
        if total <= 0:
            raise ValueError(f'all {len(lengths)} sub-datasets are empty; nothing to balance')
        factors = []
        for n in lengths:
            if n <= 0:
                factors.append(1.0)
                continue
            freq = n / total
            factors.append(max(1.0, math.sqrt(oversample_thr / freq)))
        return factors

    def full_init(self) -> None:
        """Fully initialise every source, then compute ``r_d``, ``L_d`` and the cumulative sizes."""
        if self._fully_initialized:
            return
        for d in self.datasets:
            d.full_init()
        ori_lengths = [len(d) for d in self.datasets]
        names = self.source_names
        repeat_factors = self.compute_repeat_factors(ori_lengths, self.oversample_thr)
        # the epsilon only absorbs float noise such as sqrt(4) * n evaluating to 2n - 1e-13
        source_lengths = [int(math.floor(n * r + 1e-9)) if n > 0 else 0
                          for n, r in zip(ori_lengths, repeat_factors)]
        self._ori_lengths: List[int] = ori_lengths
        self._repeat_factors: List[float] = repeat_factors
        self._source_lengths: List[int] = source_lengths
        self.cumulative_sizes: List[int] = []
        running = 0
        for length in source_lengths:
            running += length
            self.cumulative_sizes.append(running)
        self._num_skipped_sources = 0
        for i, n in enumerate(ori_lengths):
            if n == 0:
                self._num_skipped_sources += 1
                print_log(f'BalancedConcatDataset: source {names[i]} is empty and is skipped '
                          '(length 0 in the mix)', logger='current', level=logging.WARNING)
        self._fully_initialized = True
        print_log(self._summary(), logger='current', level=logging.INFO)

    # ------------------------------------------------------------------ source information
    @property
    @force_full_init
    def ori_lengths(self) -> List[int]:
        """``n_d``: number of samples of each source before resampling."""
        return list(self._ori_lengths)

    @property
    @force_full_init
    def repeat_factors(self) -> List[float]:
        """``r_d = max(1, sqrt(t / f_d))`` of each source (1.0 for an empty source)."""
        return list(self._repeat_factors)

    @property
    @force_full_init
    def source_lengths(self) -> List[int]:
        """``L_d = floor(n_d * r_d)``: length of each source inside the concatenation."""
        return list(self._source_lengths)

    @property
    @force_full_init
    def num_skipped_sources(self) -> int:
        """Number of empty sources (kept with length 0, logged at build time)."""
        return self._num_skipped_sources

    @property
    @force_full_init
    def source_indices(self) -> List[range]:
        """Global index range of each source: ``[range(0, L_0), range(L_0, L_0 + L_1), ...]``."""
        starts = [0] + self.cumulative_sizes[:-1]
        return [range(s, e) for s, e in zip(starts, self.cumulative_sizes)]

    @force_full_init
    def source_of(self, idx: int) -> int:
        """Index (into ``datasets``) of the source that global index ``idx`` belongs to."""
        return self._get_ori_dataset_idx(idx)[0]

    @force_full_init
    def _get_ori_dataset_idx(self, idx: int) -> Tuple[int, int]:
        """Map a global index to ``(source, sample index)``, wrapping the repeated part modulo ``n_d``."""
        length = self.cumulative_sizes[-1]
        if not -length <= idx < length:
            raise IndexError(f'index {idx} out of range for BalancedConcatDataset of length {length}')
        if idx < 0:
            idx += length
        source = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[source - 1] if source > 0 else 0
        return source, (idx - start) % self._ori_lengths[source]

    loads_seeded_indices = True  # SourceGroupedSampler(sample_seeds=True) may be used with this data set

    def __getitem__(self, idx: int):
        """The sample at global ``idx``; a ``SeededIndex`` (``sample_seed``) draws its randomness from its seed."""
        sample_seed = getattr(idx, 'sample_seed', None)
        if sample_seed is None:
            return super().__getitem__(idx)
        with seeded_rngs(sample_seed):
            return super().__getitem__(int(idx))

    # ------------------------------------------------------------------ display
    def _summary(self) -> str:
        names = self.source_names
        total = sum(self._ori_lengths)
        skipped = self._num_skipped_sources
        lines = [f'BalancedConcatDataset(oversample_thr={self.oversample_thr}): {len(names)} sources, '
                 f'{total} samples -> {self.cumulative_sizes[-1]} after resampling'
                 + (f', {skipped} empty source(s) skipped' if skipped else '')]
        for name, n, r, length in zip(names, self._ori_lengths, self._repeat_factors, self._source_lengths):
            lines.append(f'  {name}: n={n}, f={n / total:.4f}, r={r:.3f}, length={length}')
        return '\n'.join(lines)

    def __repr__(self) -> str:
        if not self._fully_initialized:
            return (f'BalancedConcatDataset(oversample_thr={self.oversample_thr}, '
                    f'{len(self.datasets)} sources, not fully initialized)')
        return self._summary()
