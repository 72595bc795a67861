"""Save the train sampler's position in checkpoints and restore it on resume (exact mid-epoch resume).

mmengine (0.10.7) restores ``train_loop._epoch/_iter`` on resume but never the sampler: an
``EpochBasedTrainLoop`` restarts the interrupted epoch from its first batch. With a sampler that has
``state_dict(num_consumed=...)`` / ``load_state_dict`` (:class:`~mmxsam.datasets.samplers.SourceGroupedSampler`)
this hook stores the position reached by *training* (not by the DataLoader, whose workers prefetch) under
``checkpoint['meta']['sampler_state']`` (plain ints, loadable with ``weights_only=True``) and restores it
in ``before_train``, so the resumed epoch yields exactly its remaining batches.
"""
import logging
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner import IterBasedTrainLoop

from ..runner.loops import ResumableIterBasedTrainLoop, sampler_steps_per_epoch, train_sampler_of

META_KEY = 'sampler_state'


@HOOKS.register_module()
class SamplerStateHook(Hook):
    """Checkpoint the train sampler's in-epoch position and restore it after ``Runner.resume``.

    Enable with ``custom_hooks=[dict(type='SamplerStateHook')]`` (train dataloader with
    ``batch_sampler=None``). Per-rank consumed samples are ``batches_done_in_epoch x batch_size``,
    counted from ``runner.iter`` (``checkpoint['meta']['iter']``); the sampler's own counter would
    include what DataLoader workers prefetched.

    - ``EpochBasedTrainLoop``: ``load_state_dict`` in ``before_train``; ``DistSamplerSeedHook`` then
      calls ``set_epoch(runner.epoch)`` with the same epoch, which keeps the position.
    - :class:`~mmxsam.engine.runner.ResumableIterBasedTrainLoop`: the state is loaded too (it carries the
      seed); the loop then fast-forwards the sampler to ``runner.iter`` (same position).
    - mmengine's ``IterBasedTrainLoop`` replays ``runner.iter`` batches from epoch 0 itself: only the
      seed is restored, the position is left to the replay.

    Samplers without ``state_dict`` (mmengine's ``DefaultSampler``, ...) make the hook a no-op (logged once).

    Args:
        strict (bool): Passed to ``load_state_dict``. With ``False`` (default) a state saved under another
            world size / group size / dataset length restarts the saved epoch (warning), as plain
            mmengine would; ``True`` raises ``ValueError``.
    """

    priority = 'LOW'  # before_train_epoch after DistSamplerSeedHook (NORMAL) has called set_epoch

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._loaded_state: Optional[dict] = None
        self._epoch_start_iter: Optional[int] = None  # runner.iter when the current epoch's pass began
        self._epoch_start_step = 0  # batches the pass skipped (resumed mid-epoch)
        self._warned = False

    # ------------------------------------------------------------------ helpers
    def _sampler(self, runner):
        dataloader = runner.train_loop.dataloader
        sampler = train_sampler_of(dataloader)
        if sampler is None or not callable(getattr(sampler, 'state_dict', None)) or not callable(
                getattr(sampler, 'load_state_dict', None)):
            if not self._warned:
                self._warned = True
                name = type(sampler).__name__ if sampler is not None else \
                    f'custom batch sampler {type(dataloader.batch_sampler).__name__}'
                print_log(f'SamplerStateHook: the train sampler ({name}) has no state_dict/load_state_dict '
                          'under a plain BatchSampler; the sampler position is not saved or restored',
                          logger='current', level=logging.INFO)
            return None
        return sampler

    @staticmethod
    def _batch_size(runner, sampler) -> int:
        return runner.train_loop.dataloader.batch_size or sampler.batch_size

    # ------------------------------------------------------------------ hook points
    def before_train(self, runner) -> None:
        state, self._loaded_state = self._loaded_state, None
        self._epoch_start_iter = None
        sampler = self._sampler(runner)
        if sampler is None or state is None or runner.iter == 0:  # load_from (not resume) keeps iter 0
            return
        loop = runner.train_loop
        if isinstance(loop, IterBasedTrainLoop) and not isinstance(loop, ResumableIterBasedTrainLoop):
            sampler.seed = state['seed']  # mmengine replays runner.iter batches from epoch 0 itself
            print_log('SamplerStateHook: IterBasedTrainLoop replays the trained batches; restored the sampler '
                      'seed only (use ResumableIterBasedTrainLoop to skip without loading)', logger='current',
                      level=logging.INFO)
            return
        sampler.load_state_dict(state, strict=self.strict)
        print_log(f'SamplerStateHook: resumed the train sampler at epoch {sampler.epoch}, '
                  f'{len(sampler)} indices left in the epoch', logger='current', level=logging.INFO)

    def before_train_epoch(self, runner) -> None:
        sampler = self._sampler(runner)
        if sampler is None:
            return
        self._epoch_start_iter = runner.iter
        num_samples = getattr(sampler, 'num_samples', len(sampler))
        self._epoch_start_step = (num_samples - len(sampler)) // self._batch_size(runner, sampler)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        sampler = self._sampler(runner)
        if sampler is None:
            return
        meta = checkpoint.setdefault('meta', {})
        done = int(meta.get('iter', runner.iter))  # batches trained so far (set by Runner.save_checkpoint)
        batch_size = self._batch_size(runner, sampler)
        if isinstance(runner.train_loop, IterBasedTrainLoop) or self._epoch_start_iter is None:
            # every sampler epoch is full length; the sampler's epoch is the one of the last trained batch
            in_epoch = done - sampler.epoch * sampler_steps_per_epoch(sampler, batch_size)
        else:
            in_epoch = self._epoch_start_step + done - self._epoch_start_iter
        state = sampler.state_dict(num_consumed=in_epoch * batch_size)
        meta[META_KEY] = dict(state)  # plain ints: loadable with torch.load(weights_only=True)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('meta', {}).get(META_KEY)
        self._loaded_state = dict(state) if state is not None else None
