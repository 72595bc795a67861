"""Iteration-based train loop that resumes mid-epoch without replaying the trained batches.

mmengine's ``IterBasedTrainLoop.run`` skips ``_iter`` batches on resume with ``next()`` on the dataloader
iterator, which loads (and augments) every sample of those batches. A sampler with ``fast_forward(num_iters)``
(:class:`~mmxsam.datasets.samplers.SourceGroupedSampler`) can jump there directly.
"""
import logging
from typing import Optional

from mmdet.registry import LOOPS
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop
from mmengine.runner.loops import _InfiniteDataloaderIterator
from torch.utils.data import BatchSampler

from .rng import preserve_rng_state


def train_sampler_of(dataloader) -> Optional[object]:
    """The index sampler of a DataLoader built with ``batch_size`` (``None`` with a custom batch sampler).

    A custom batch sampler (e.g. mmdet's ``AspectRatioBatchSampler``) regroups the indices, so a position
    counted as ``batches x batch_size`` would not describe it.
    """
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if batch_sampler is not None and type(batch_sampler) is not BatchSampler:
        return None
    return getattr(dataloader, 'sampler', None)


def sampler_steps_per_epoch(sampler, batch_size: int) -> int:
    """Per-device batches in a full (not resumed) epoch of ``sampler``."""
    steps = getattr(sampler, 'steps_per_epoch', None)
    if steps is None:
        steps = getattr(sampler, 'num_samples', len(sampler)) // batch_size
    return steps


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` whose resume fast-forwards the sampler instead of replaying batches.

    Enable with ``train_cfg=dict(type='ResumableIterBasedTrainLoop', max_iters=..., val_interval=...)``.
    On resume (``_iter > 0``) with a sampler that has ``fast_forward`` (under a plain ``BatchSampler``)
    the sampler is positioned at ``_iter`` batches (epoch ``_iter // steps_per_epoch``, start index
    ``(_iter % steps_per_epoch) * batch_size``) and the dataloader iterator is rebuilt with its epoch
    counter at the sampler's epoch, so the next batch and every later epoch wrap
    (``set_epoch(epoch + 1)``) are those of an uninterrupted run. Any other sampler falls back to
    mmengine's replay (logged).

    Two more differences from mmengine 0.10.7's ``IterBasedTrainLoop.run``, both so that a resumed run
    repeats an uninterrupted one exactly:

    - a resume exactly at an epoch boundary positions the sampler at the *end* of the finished epoch, so
      the first batch wraps to the next epoch through the same ``_InfiniteDataloaderIterator`` path (and
      the same random draws) as in the uninterrupted run;
    - validation runs inside :func:`~mmxsam.engine.runner.rng.preserve_rng_state`: evaluating (whose
      DataLoader and model may draw random numbers) never moves the training's random generators.

    After positioning the sampler the loop calls the hook point ``after_sampler_fast_forward`` (used by
    :class:`~mmxsam.engine.hooks.RNGStateHook` to restore the saved generators at that point).
    """

    def fast_forward_sampler(self) -> bool:
        """Position the sampler at ``self._iter`` batches; ``False`` when the sampler cannot."""
        sampler = train_sampler_of(self.dataloader)
        if not callable(getattr(sampler, 'fast_forward', None)):
            return False
        sampler.fast_forward(self._iter)
        if self._iter > 0 and callable(getattr(sampler, 'set_start_index', None)) and sampler.epoch > 0 \
                and len(sampler) == sampler.num_samples:  # exactly at an epoch boundary
            sampler.set_epoch(sampler.epoch - 1)
            sampler.set_start_index(sampler.num_samples)  # empty: the first next() wraps to the next epoch
        self.dataloader_iterator = None  # release the iterator built in __init__ (and its workers)
        iterator = _InfiniteDataloaderIterator(self.dataloader)  # iter() sees the fast-forwarded sampler
        iterator._epoch = sampler.epoch  # the next wrap calls set_epoch(sampler.epoch + 1)
        self.dataloader_iterator = iterator
        print_log(f'Fast-forwarded {type(sampler).__name__} to iteration {self._iter} (epoch {sampler.epoch}, '
                  f'{len(sampler)} indices left in it) without loading the trained batches',
                  logger='current', level=logging.INFO)
        return True

    def run(self) -> None:
        """Launch training."""
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0 and self.fast_forward_sampler():
            self.runner.call_hook('after_sampler_fast_forward')
        elif self._iter > 0:
            print_log(f'{type(train_sampler_of(self.dataloader)).__name__} has no fast_forward (or a custom '
                      f'batch sampler is used): advance dataloader {self._iter} steps to skip data that has '
                      'already been trained', logger='current', level=logging.WARNING)
            for _ in range(self._iter):
                next(self.dataloader_iterator)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()

            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)

            self._decide_current_val_interval()
            if (self.runner.val_loop is not None and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0 or self._iter == self._max_iters)):
                with preserve_rng_state():
                    self.runner.val_loop.run()

        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model
