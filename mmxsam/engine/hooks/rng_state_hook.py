"""Save every rank's random generators in checkpoints and restore them on resume (same losses after a resume).

mmengine (0.10.7) re-seeds a resumed run with ``randomness.seed``: model-side draws (Mask2Former's point
sampling, dropout, visual-prompt points) then restart from the run's first state and a resumed run's losses
differ from an uninterrupted one's. This hook stores each rank's :func:`~mmxsam.engine.runner.rng.get_rng_state`
under ``checkpoint['meta']['rng_state'] = dict(world_size=W, states=[rank 0, ..., rank W-1])`` and restores
this rank's entry on resume.

With :class:`~mmxsam.engine.runner.ResumableIterBasedTrainLoop` the states are restored right after the loop
has positioned the sampler (hook point ``after_sampler_fast_forward``), i.e. at the point of the run where
they were taken; with other loops in ``before_train``. Data-side randomness lives in DataLoader workers and is
made position-dependent by ``SourceGroupedSampler(sample_seeds=True)``; both together give, on the CPU, a
resumed run with exactly the losses of an uninterrupted one (``tests/test_engine/test_exact_resume.py``).
"""
import logging
from typing import List, Optional

from mmdet.registry import HOOKS
from mmengine.dist import all_gather_object, get_dist_info
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from ..runner.loops import ResumableIterBasedTrainLoop
from ..runner.rng import get_rng_state, set_rng_state

META_KEY = 'rng_state'


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Checkpoint all ranks' RNG states; restore this rank's on resume.

    Checkpoints are written by rank 0 only (``Runner.save_checkpoint`` is ``master_only``), so the states
    of the other ranks are gathered (a collective, on every rank) in ``after_train_iter`` /
    ``after_train_epoch`` whenever the run's ``CheckpointHook`` is about to save, i.e. before it runs
    (priority ``LOW`` < ``VERY_LOW``). A checkpoint saved at any other moment stores rank 0's state only; on
    resume the other ranks then keep their seeded state (warning). Under ``FlexibleRunner`` strategies that
    do not call ``before_save_checkpoint`` / ``after_load_checkpoint`` (mmengine 0.10.7's DeepSpeed) the hook
    does nothing.

    Enable with ``custom_hooks = [dict(type='RNGStateHook')]``.
    """

    priority = 'LOW'

    def __init__(self) -> None:
        self._gathered: Optional[tuple] = None  # ((runner.iter, runner.epoch) when gathered, [state per rank])
        self._pending: Optional[dict] = None  # this rank's state, loaded and not restored yet

    # ------------------------------------------------------------------ saving
    @staticmethod
    def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
        hooks = [h for h in runner.hooks if isinstance(h, CheckpointHook)]
        return hooks[0] if hooks else None

    def _gather(self, runner) -> None:
        self._gathered = ((runner.iter, runner.epoch), all_gather_object(get_rng_state()))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        ckpt = self._checkpoint_hook(runner)
        if ckpt is None or ckpt.by_epoch or ckpt.interval <= 0:
            return
        if ckpt.every_n_train_iters(runner, ckpt.interval, ckpt.save_begin) or (
                ckpt.save_last and ckpt.is_last_train_iter(runner)):
            self._gather(runner)

    def after_train_epoch(self, runner) -> None:
        ckpt = self._checkpoint_hook(runner)
        if ckpt is not None and ckpt.by_epoch and ckpt.interval > 0:
            self._gather(runner)  # once per epoch: cheap, and exact whatever the epoch-save rule

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        rank, world_size = get_dist_info()
        gathered, self._gathered = self._gathered, None
        if gathered is not None and gathered[0] == (runner.iter, runner.epoch):  # gathered for this save
            states: List[dict] = list(gathered[1])
        else:
            states = [get_rng_state()]
            if world_size > 1:
                print_log(f'RNGStateHook: checkpoint at iteration {runner.iter} saved outside CheckpointHook\'s '
                          'schedule; only rank 0\'s RNG state is stored', logger='current', level=logging.WARNING)
        checkpoint.setdefault('meta', {})[META_KEY] = dict(world_size=len(states), states=states)

    # ------------------------------------------------------------------ loading
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('meta', {}).get(META_KEY)
        self._pending = None
        if saved is None:
            return
        rank, world_size = get_dist_info()
        states = saved['states']
        if rank >= len(states):
            print_log(f'RNGStateHook: the checkpoint holds RNG states of {len(states)} rank(s), saved with world '
                      f'size {saved["world_size"]}; rank {rank} of {world_size} keeps its seeded state',
                      logger='current', level=logging.WARNING)
            return
        if saved['world_size'] != world_size and rank == 0:
            print_log(f'RNGStateHook: RNG states saved with world size {saved["world_size"]}, resuming with '
                      f'{world_size}; the random stream will differ from an uninterrupted run',
                      logger='current', level=logging.WARNING)
        self._pending = states[rank]

    def _restore(self) -> None:
        state, self._pending = self._pending, None
        if state is not None:
            set_rng_state(state)
            print_log('RNGStateHook: restored the random generators saved in the checkpoint', logger='current',
                      level=logging.INFO)

    def before_train(self, runner) -> None:
        if not isinstance(runner.train_loop, ResumableIterBasedTrainLoop):
            self._restore()

    def after_sampler_fast_forward(self, runner) -> None:
        """Called by ``ResumableIterBasedTrainLoop`` once the sampler and the data iterator are in place."""
        self._restore()
