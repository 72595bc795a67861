"""Check at the start of training that every optimizer step sees one same-source global batch.

``SourceGroupedSampler`` draws each group of ``G = world_size x batch_size x mega_batch_mult`` samples from
one source, spread over ``mega_batch_mult`` consecutive steps; the optimizer steps every
``accumulation`` iterations (``optim_wrapper.accumulative_counts``, DeepSpeed's
``gradient_accumulation_steps``). When the two differ an optimizer step either mixes sources
(``accumulation > mega_batch_mult``) or is smaller than the recipe's global batch
(``accumulation < mega_batch_mult``); X-SAM's stage 3 wants them equal. This hook raises ``ValueError``
naming the numbers and the settings to change, before the first iteration.
"""
import logging
from typing import Optional

from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper

from ..runner.loops import train_sampler_of


def optimizer_accumulation(runner) -> Optional[int]:
    """Iterations per optimizer step: DeepSpeed's ``gradient_accumulation_steps`` or the ``OptimWrapper``'s
    ``accumulative_counts``; ``None`` when neither can be read (e.g. an ``OptimWrapperDict``)."""
    strategy = getattr(runner, 'strategy', None)
    config = getattr(strategy, 'config', None)
    if isinstance(config, dict) and 'gradient_accumulation_steps' in config:
        return int(config['gradient_accumulation_steps'])
    wrapper = getattr(runner, 'optim_wrapper', None)
    if isinstance(wrapper, OptimWrapper):
        return int(wrapper._accumulative_counts)
    return None


@HOOKS.register_module()
class GlobalBatchCheckHook(Hook):
    """Raise before training when the optimizer's accumulation differs from the sampler's ``mega_batch_mult``.

    Enable with ``custom_hooks = [dict(type='GlobalBatchCheckHook')]``. Samplers without
    ``mega_batch_mult`` (anything but ``SourceGroupedSampler``) are not checked (logged).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        sampler = train_sampler_of(runner.train_dataloader)
        if not hasattr(sampler, 'mega_batch_mult'):
            print_log(f'GlobalBatchCheckHook: the train sampler ({type(sampler).__name__}) has no same-source '
                      'groups; nothing to check', logger='current', level=logging.INFO)
            return
        accumulation = optimizer_accumulation(runner)
        if accumulation is None:
            print_log('GlobalBatchCheckHook: cannot read the optimizer\'s accumulation; not checked',
                      logger='current', level=logging.WARNING)
            return
        w, b, m = sampler.world_size, sampler.batch_size, sampler.mega_batch_mult
        if accumulation != m:
            wanted = f' (global_batch_size={sampler.global_batch_size})' if getattr(
                sampler, 'global_batch_size', None) else ''
            raise ValueError(
                f'GlobalBatchCheckHook: one optimizer step takes world_size {w} x batch_size {b} x accumulation '
                f'{accumulation} = {w * b * accumulation} samples, but SourceGroupedSampler draws same-source '
                f'groups of world_size {w} x batch_size {b} x mega_batch_mult {m} = {w * b * m}{wanted}. Set '
                f'optim_wrapper.accumulative_counts={m} (DeepSpeed: strategy.gradient_accumulation_steps={m}) '
                f'or change the sampler.')
        print_log(f'GlobalBatchCheckHook: every optimizer step is one same-source global batch of {w * b * m} '
                  f'samples ({w} processes x {b} x {m} accumulation steps)', logger='current', level=logging.INFO)
