"""Sampler whose every global batch comes from one source of a concatenated dataset.

X-SAM's stage-3 mix (reference §3, "SourceGroupedSampler") trains on eleven sources at once, but the model
runs one task per device batch, so every *global* batch (all ranks, all accumulation steps) is drawn from a
single sub-dataset. Group size::

    G = world_size (W) x per-device batch_size (b) x mega_batch_mult (m)

Per epoch, seeded by ``seed + epoch`` (one ``torch.Generator``, identical on every rank):

1. shuffle the global indices of each source (its range in the concatenation);
2. cut each shuffled source into consecutive chunks of ``G``; the last, short chunk is completed with the
   source's first shuffled indices, cycling through the source when it holds fewer than ``G`` samples
   (round up). X-SAM picks "a random source that still has >= G samples left" and cuts one chunk at a
   time; because the groups are shuffled afterwards (step 3) that pick order does not change the result's
   distribution, so chunks are cut source by source here;
3. shuffle the groups and flatten them into the global order ``F`` (``len(F) = num_groups * G``).

Interleaving (``F[rank::W]``, as in X-SAM): rank ``r`` yields ``R_r[k] = F[k * W + r]``, so
``len(R_r) = num_groups * b * m`` and ``R_r[k]`` lies in group ``k // (b * m)``. A DataLoader with
``batch_size=b`` on every rank draws at step ``s`` the indices ``R_r[s*b:(s+1)*b]``, all in group
``s // m``; the ``W`` device batches of step ``s`` together are ``F[s*b*W:(s+1)*b*W]``, a contiguous slice
of that group, and the ``m`` steps of one accumulation window ``[g*m, (g+1)*m)`` cover group ``g`` exactly.

Resume: the order is a pure function of ``(seed, epoch)``; a position inside the epoch is restored with
:meth:`fast_forward`, :meth:`set_start_index` or :meth:`load_state_dict` (see :class:`SourceGroupedSampler`
for how mmengine's loops use them).
"""
import logging
import math
from typing import Dict, Iterator, List, Optional, Sized

import torch
from mmdet.registry import DATA_SAMPLERS
from mmengine.dist import get_dist_info, sync_random_seed
from mmengine.logging import print_log
from torch.utils.data import ConcatDataset as TorchConcatDataset
from torch.utils.data import Sampler

from .sample_seeds import SeededIndex, seed_of


@DATA_SAMPLERS.register_module()
class SourceGroupedSampler(Sampler):
    """Yield this rank's indices so that each global batch holds samples of one source only.

    See the module docstring for the algorithm and the exact interleaving rule.

    Args:
        dataset (Sized): A concatenated dataset: :class:`~mmxsam.datasets.wrappers.BalancedConcatDataset`
            (uses its ``source_indices``) or any ``torch.utils.data.ConcatDataset`` (mmengine's and mmdet's
            included; uses ``cumulative_sizes``). Anything else raises ``TypeError``.
        batch_size (int): Per-device batch size ``b``; must equal the DataLoader's ``batch_size``.
        mega_batch_mult (int): ``m``, number of consecutive steps drawn from one group. Set it to the
            optimizer's ``accumulative_counts`` to make every optimizer step single-source (X-SAM: 1).
        seed (int, optional): Base seed; the epoch's order uses ``seed + epoch``. ``None`` draws one with
            ``sync_random_seed`` (identical on all ranks). mmengine's Runner passes ``randomness.seed``.
        rank (int, optional): Overrides ``get_dist_info()`` (tests, custom launchers).
        world_size (int, optional): Overrides ``get_dist_info()``.
        global_batch_size (int, optional): The recipe's same-source global batch (X-SAM stage 3: 64 = 16 GPUs
            x 4). When set, ``mega_batch_mult`` is derived as ``global_batch_size / (world_size x batch_size)``
            and a world size that does not divide it raises ``ValueError`` naming the numbers, at the start
            of training (when the train dataloader is built). Pair it with ``GlobalBatchCheckHook``, which
            checks that the optimizer accumulates over the same ``mega_batch_mult`` steps.
        sample_seeds (bool): Yield :class:`~mmxsam.datasets.samplers.sample_seeds.SeededIndex` indices whose
            ``sample_seed = seed_of(seed, epoch, position in F)``; a dataset that honours them (with
            ``loads_seeded_indices = True``, e.g. ``BalancedConcatDataset``) draws each sample's randomness
            from that seed, so the data do not depend on ``num_workers`` and a resumed run draws exactly what
            an uninterrupted one does. Default ``False`` (plain ints).

    Length: ``len(self) = num_samples - start_index`` with ``num_samples = num_groups * b * m`` and
    ``num_groups = sum_d ceil(L_d / G)`` over the non-empty sources; it does not depend on the epoch.

    A source with fewer than ``G`` samples still yields one group per epoch, filled by repeating its
    (shuffled) samples; this is logged once, as a warning, when the sampler is built.

    Resuming with mmengine (0.10.7). The Runner builds the train loop, hence this sampler and its seed,
    *before* ``load_or_resume``; resuming restores ``train_loop._epoch/_iter`` and the runner's seed but
    never the sampler. ``EpochBasedTrainLoop`` then restarts the interrupted epoch from its first batch
    (``DistSamplerSeedHook`` calls ``set_epoch(runner.epoch)``), so a mid-epoch checkpoint re-trains that
    epoch's first part; ``IterBasedTrainLoop`` replays ``_iter`` batches through ``next()`` (loading every
    sample) while ``_InfiniteDataloaderIterator`` calls ``set_epoch(1), set_epoch(2), ...`` at each wrap,
    which reproduces this sampler's order exactly but slowly. A config therefore sets:

    - ``randomness=dict(seed=S)`` (or ``sampler.seed=S``): a random seed would change the order on resume;
    - ``train_dataloader.batch_sampler=None`` (mmdet bases use ``AspectRatioBatchSampler``, which regroups
      indices) and ``sampler.batch_size == train_dataloader.batch_size``;
    - ``default_hooks.sampler_seed=dict(type='DistSamplerSeedHook')`` for epoch-based loops.

    For an exact mid-epoch resume without replay, call ``sampler.fast_forward(runner.iter)`` once the
    checkpoint is loaded (e.g. in a hook's ``before_train``): with ``EpochBasedTrainLoop`` the following
    ``set_epoch(runner.epoch)`` keeps the start index and the epoch yields only its remaining
    ``len(self)`` indices; with ``IterBasedTrainLoop`` the loop's own replay must be disabled (loop
    subclass) and its ``dataloader_iterator`` rebuilt with ``_epoch = sampler.epoch``. Alternatively store
    ``state_dict(num_consumed=...)`` in ``checkpoint['meta']`` (``before_save_checkpoint``) and call
    :meth:`load_state_dict` after resume; this also carries the seed and checks the world size.
    """

    def __init__(self,
                 dataset: Sized,
                 batch_size: int,
                 mega_batch_mult: int = 1,
                 seed: Optional[int] = None,
                 rank: Optional[int] = None,
                 world_size: Optional[int] = None,
                 sample_seeds: bool = False,
                 global_batch_size: Optional[int] = None) -> None:
        dist_rank, dist_world_size = get_dist_info()
        self.rank = dist_rank if rank is None else rank
        self.world_size = dist_world_size if world_size is None else world_size
        self.global_batch_size = global_batch_size
        if global_batch_size is not None:
            mega_batch_mult = self.mega_batch_mult_for(global_batch_size, self.world_size, batch_size,
                                                       mega_batch_mult)
        for name, value in (('batch_size', batch_size), ('mega_batch_mult', mega_batch_mult),
                            ('world_size', self.world_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.world_size:
            raise ValueError(f'rank must be an int in [0, {self.world_size}), got {self.rank!r}')

        if sample_seeds and not getattr(dataset, 'loads_seeded_indices', False):
            raise TypeError(f'SourceGroupedSampler(sample_seeds=True) needs a dataset that loads each sample under '
                            f'its seed (loads_seeded_indices=True, e.g. BalancedConcatDataset), got '
                            f'{type(dataset).__name__}; wrap the sources in BalancedConcatDataset or set '
                            'sample_seeds=False')
        self.sample_seeds = bool(sample_seeds)
        self.dataset = dataset
        self.batch_size = batch_size
        self.mega_batch_mult = mega_batch_mult
        self.group_size = self.world_size * batch_size * mega_batch_mult  # G
        self.seed = sync_random_seed() if seed is None else seed
        self.epoch = 0

        self.source_ranges: List[range] = self._read_source_ranges(dataset)
        self.source_names: List[str] = self._read_source_names(dataset, len(self.source_ranges))
        lengths = [len(r) for r in self.source_ranges]
        self.num_groups = sum(math.ceil(n / self.group_size) for n in lengths)
        if self.num_groups == 0:
            raise ValueError('SourceGroupedSampler: every source of the dataset is empty')
        self.total_size = self.num_groups * self.group_size  # len(F)
        self.num_samples = self.total_size // self.world_size  # per rank, = num_groups * b * m

        small = [f'{self.source_names[i]} ({n})' for i, n in enumerate(lengths) if 0 < n < self.group_size]
        if small:
            print_log(f'SourceGroupedSampler: {len(small)} source(s) hold fewer samples than one global batch '
                      f'of {self.group_size}; their group is filled by repeating their samples: '
                      + ', '.join(small), logger='current', level=logging.WARNING)

        self._start_index = 0  # per-rank position where the current epoch's pass starts
        self._consumed = 0  # per-rank position reached by the latest iterator (prefetch included)

    @staticmethod
    def mega_batch_mult_for(global_batch_size: int, world_size: int, batch_size: int, mega_batch_mult: int = 1) -> int:
        """``global_batch_size / (world_size x batch_size)``; ``ValueError`` naming the numbers when it is no
        positive integer, or when an explicit ``mega_batch_mult`` (other than the default 1) disagrees."""
        for name, value in (('global_batch_size', global_batch_size), ('world_size', world_size),
                            ('batch_size', batch_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        per_step = world_size * batch_size
        if global_batch_size % per_step:
            divisors = [w for w in range(1, global_batch_size // batch_size + 1)
                        if (global_batch_size // batch_size) % w == 0] if global_batch_size % batch_size == 0 else []
            hint = (f'world sizes that divide it at batch_size {batch_size}: {divisors}' if divisors else
                    f'batch_size {batch_size} does not divide it either')
            raise ValueError(
                f'SourceGroupedSampler: the same-source global batch of {global_batch_size} samples is not a '
                f'multiple of world_size {world_size} x batch_size {batch_size} = {per_step} samples per step; '
                f'{hint}. Change the number of processes, train_dataloader.batch_size (and sampler.batch_size) '
                'or sampler.global_batch_size.')
        derived = global_batch_size // per_step
        if mega_batch_mult not in (1, derived):
            raise ValueError(f'SourceGroupedSampler: mega_batch_mult={mega_batch_mult} contradicts global_batch_size='
                             f'{global_batch_size} with world_size {world_size} x batch_size {batch_size} (which '
                             f'gives {derived}); set only one of them')
        return derived

    # ------------------------------------------------------------------ dataset introspection
    @staticmethod
    def _read_source_ranges(dataset: Sized) -> List[range]:
        """Global index range of each source; ``TypeError`` when the dataset has no source layout."""
        if not (isinstance(dataset, TorchConcatDataset) or hasattr(dataset, 'cumulative_sizes')
                or hasattr(type(dataset), 'source_indices')):
            raise TypeError(
                'SourceGroupedSampler needs a dataset made of sources: a BalancedConcatDataset or a '
                f'ConcatDataset (with `cumulative_sizes`), got {type(dataset).__name__}. Wrap the data '
                "sets in dict(type='BalancedConcatDataset', datasets=[...]) or use DefaultSampler.")
        if getattr(dataset, '_fully_initialized', True) is False:
            dataset.full_init()  # lazy_init wrappers compute their sizes here
        if hasattr(type(dataset), 'source_indices'):
            ranges = [range(r.start, r.stop) for r in dataset.source_indices]
        else:
            cumulative = list(dataset.cumulative_sizes)
            starts = [0] + cumulative[:-1]
            ranges = [range(s, e) for s, e in zip(starts, cumulative)]
        total = len(dataset)
        if not ranges or ranges[0].start != 0 or ranges[-1].stop != total or any(
                a.stop != b.start for a, b in zip(ranges[:-1], ranges[1:])):
            raise ValueError(f'inconsistent source layout {ranges} for a dataset of length {total}')
        return ranges

    @staticmethod
    def _read_source_names(dataset: Sized, num_sources: int) -> List[str]:
        names = getattr(dataset, 'source_names', None)
        if names is not None and len(names) == num_sources:
            return list(names)
        subs = getattr(dataset, 'datasets', None)
        if subs is not None and len(subs) == num_sources:
            return [f'{i}:{type(d).__name__}' for i, d in enumerate(subs)]
        return [str(i) for i in range(num_sources)]

    # ------------------------------------------------------------------ the order
    def _global_groups(self) -> List[torch.Tensor]:
        """This epoch's shuffled groups, each a LongTensor of ``G`` global indices of one source."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        size = self.group_size
        groups: List[torch.Tensor] = []
        for src in self.source_ranges:
            n = len(src)
            if n == 0:
                continue
            perm = torch.randperm(n, generator=g) + src.start  # (n,)
            for k in range(0, n, size):
                chunk = perm[k:k + size]
                if len(chunk) < size:  # round up with the source's first shuffled samples, cycling
                    need = size - len(chunk)
                    chunk = torch.cat([chunk, perm.repeat(math.ceil(need / n))[:need]])
                groups.append(chunk)
        order = torch.randperm(len(groups), generator=g).tolist()
        return [groups[i] for i in order]

    def epoch_indices(self) -> List[int]:
        """The global order ``F`` of the current epoch (all ranks), ``len = num_groups * G``."""
        return torch.cat(self._global_groups()).tolist()

    def rank_indices(self) -> List[int]:
        """This rank's full order for the current epoch: ``F[rank::world_size]``, ``len = num_samples``."""
        flat = torch.cat(self._global_groups())  # (total_size,)
        return flat[self.rank::self.world_size].tolist()

    def __iter__(self) -> Iterator[int]:
        indices = self.rank_indices()[self._start_index:]  # computed now, not at the first next()
        self._consumed = self._start_index
        return self._counting_iter(indices, self._start_index, self.seed, self.epoch)

    def _counting_iter(self, indices: List[int], start: int, seed: int, epoch: int) -> Iterator[int]:
        for position, idx in enumerate(indices, start):
            if self.sample_seeds:  # per-rank position p is position p * W + rank of the global order F
                idx = SeededIndex(idx, seed_of(seed, epoch, position * self.world_size + self.rank))
            self._consumed += 1
            yield idx

    def __len__(self) -> int:
        """Indices this rank yields in the current epoch (``num_samples`` unless resumed mid-epoch)."""
        return self.num_samples - self._start_index

    @property
    def steps_per_epoch(self) -> int:
        """Per-device batches in a full epoch: ``num_groups * mega_batch_mult``."""
        return self.num_samples // self.batch_size

    # ------------------------------------------------------------------ epoch and resume
    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (order seeded by ``seed + epoch``).

        Moving to another epoch clears a resume start index; setting the same epoch again keeps it (the
        loops call ``set_epoch(runner.epoch)`` right after a resume).
        """
        if epoch != self.epoch:
            self._start_index = 0
            self._consumed = 0
        self.epoch = epoch

    def set_start_index(self, start_index: int) -> None:
        """Skip the first ``start_index`` indices of this rank's order in the current epoch.

        ``start_index`` counts per-rank samples (the same on every rank); keep it a multiple of
        ``batch_size`` so that later steps stay aligned with the groups.
        """
        if not isinstance(start_index, int) or not 0 <= start_index <= self.num_samples:
            raise ValueError(f'start_index must be an int in [0, {self.num_samples}], got {start_index!r}')
        if start_index % self.batch_size:
            print_log(f'SourceGroupedSampler: start index {start_index} is not a multiple of batch_size '
                      f'{self.batch_size}; later batches will straddle two groups', logger='current',
                      level=logging.WARNING)
        self._start_index = start_index
        self._consumed = start_index

    def fast_forward(self, num_iters: int) -> None:
        """Position the sampler as if ``num_iters`` per-device batches had been drawn since epoch 0.

        Sets ``epoch = num_iters // steps_per_epoch`` and the start index to
        ``(num_iters % steps_per_epoch) * batch_size``; pass ``runner.iter`` after a resume.
        """
        if not isinstance(num_iters, int) or num_iters < 0:
            raise ValueError(f'num_iters must be a non-negative int, got {num_iters!r}')
        epoch, step = divmod(num_iters, self.steps_per_epoch)
        self.epoch = epoch
        self.set_start_index(step * self.batch_size)

    def state_dict(self, num_consumed: Optional[int] = None) -> Dict[str, int]:
        """Resume state: epoch, per-rank position in the epoch, seed and the layout it is valid for.

        Args:
            num_consumed (int, optional): Per-rank samples already *trained on* in this epoch, e.g.
                ``batches_done_in_epoch * batch_size``. Defaults to the number of indices the latest
                iterator has handed out, which is exact when iterating directly or with
                ``num_workers=0`` but runs ahead of training when DataLoader workers prefetch.
        """
        position = self._consumed if num_consumed is None else num_consumed
        if not isinstance(position, int) or not 0 <= position <= self.num_samples:
            raise ValueError(f'num_consumed must be an int in [0, {self.num_samples}], got {position!r}')
        return dict(epoch=self.epoch, position=position, seed=self.seed, world_size=self.world_size,
                    group_size=self.group_size, total_size=self.total_size)

    def load_state_dict(self, state: Dict[str, int], strict: bool = True) -> None:
        """Restore :meth:`state_dict`: the next iteration yields exactly the rest of that epoch.

        A state saved under another world size, group size or dataset length cannot describe a position
        in this order: ``strict=True`` raises ``ValueError``; ``strict=False`` logs a warning and restarts
        the saved epoch from its beginning.
        """
        missing = {'epoch', 'position', 'seed'} - set(state)
        if missing:
            raise KeyError(f'SourceGroupedSampler state lacks {sorted(missing)}')
        mismatched = {k: (state.get(k), getattr(self, k)) for k in ('world_size', 'group_size', 'total_size')
                      if state.get(k, getattr(self, k)) != getattr(self, k)}
        if mismatched:
            msg = ('SourceGroupedSampler state does not match this sampler (saved, current): '
                   + ', '.join(f'{k}={v}' for k, v in mismatched.items()))
            if strict:
                raise ValueError(msg)
            self.seed = state['seed']
            self.epoch = state['epoch']
            print_log(msg + f'; restarting epoch {self.epoch} from its beginning', logger='current',
                      level=logging.WARNING)
            self.set_start_index(0)
            return
        position = state['position']
        if not isinstance(position, int) or not 0 <= position <= self.num_samples:
            raise ValueError(f'saved position must be an int in [0, {self.num_samples}], got {position!r}')
        self.seed = state['seed']
        self.epoch = state['epoch']
        self.set_start_index(position)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sources={len(self.source_ranges)}, group_size={self.group_size} '
                f'(world_size={self.world_size} x batch_size={self.batch_size} x '
                f'mega_batch_mult={self.mega_batch_mult}), num_groups={self.num_groups}, '
                f'num_samples={self.num_samples}, rank={self.rank}, seed={self.seed}, epoch={self.epoch})')
