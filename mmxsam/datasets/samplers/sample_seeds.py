"""Per-sample random streams: a sample's random draws depend on its place in the epoch, not on the process.

Training data sets draw prompts, templates and visual prompts from numpy's global generator (and mmcv /
mmdet transforms from ``random``/``numpy``/``torch``). In DataLoader workers that generator is seeded once
per worker (mmengine: ``num_workers * rank + worker_id + seed``) and then advances with every sample the
worker loads, so the draws for a given batch depend on the worker count and on everything that worker
loaded before: a run resumed from a checkpoint restarts the workers and draws differently from an
uninterrupted one.

With ``SourceGroupedSampler(sample_seeds=True)`` every index the sampler yields is a :class:`SeededIndex`
carrying ``seed_of(seed, epoch, position)`` (``position`` = place in the epoch's global order ``F``), and
:class:`~mmxsam.datasets.wrappers.BalancedConcatDataset` loads it inside :func:`seeded_rngs`: numpy's,
``random``'s and torch's CPU generators are seeded with it for that sample and restored afterwards. The
draws then are a pure function of ``(seed, epoch, position)``: independent of ``num_workers`` and identical
after a resume.
"""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


class SeededIndex(int):
    """A dataset index (an ``int``) that carries the seed for its sample's random draws (``sample_seed``)."""

    def __new__(cls, index: int, sample_seed: int) -> 'SeededIndex':
        obj = super().__new__(cls, index)
        obj.sample_seed = int(sample_seed)
        return obj

    def __reduce__(self):  # DataLoader workers receive indices pickled
        return SeededIndex, (int(self), self.sample_seed)

    def __repr__(self) -> str:
        return f'SeededIndex({int(self)}, sample_seed={self.sample_seed})'


def seed_of(seed: int, epoch: int, position: int) -> int:
    """32-bit seed for the sample at global ``position`` of ``epoch`` in a run seeded with ``seed``."""
    for name, value in (('seed', seed), ('epoch', epoch), ('position', position)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
            raise ValueError(f'{name} must be a non-negative int for per-sample seeds, got {value!r}')
    return int(np.random.SeedSequence([int(seed), int(epoch), int(position)]).generate_state(1)[0])


@contextmanager
def seeded_rngs(sample_seed: int) -> Iterator[None]:
    """Seed numpy's global, ``random``'s and torch's CPU generators with ``sample_seed``; restore them after.

    CUDA generators are left alone (data loading runs on the CPU).
    """
    np_state, py_state = np.random.get_state(), random.getstate()
    torch_state = torch.random.get_rng_state()
    np.random.seed(sample_seed)
    random.seed(sample_seed)
    torch.random.default_generator.manual_seed(sample_seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch.random.set_rng_state(torch_state)
