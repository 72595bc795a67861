"""Snapshots of the process's random generators, storable in checkpoints loaded with ``weights_only=True``.

A snapshot is a dict of plain Python values and tensors (no numpy objects, no tuples of arrays)::

    python: list       random.getstate() with its tuple turned into a list
    numpy:  dict       keys (624,) int64 tensor, pos, has_gauss, cached_gaussian
    torch:  tensor     torch.get_rng_state(), (5056,) uint8
    cuda:   list       torch.cuda.get_rng_state_all() when CUDA is initialised, else absent
"""
import random
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


def get_rng_state() -> dict:
    """Snapshot ``random``, numpy's global generator, torch's CPU generator and the CUDA generators."""
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(python=[version, list(internal), gauss],
                 numpy=dict(name=str(name), keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                            has_gauss=int(has_gauss), cached_gaussian=float(cached)),
                 torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore a :func:`get_rng_state` snapshot (CUDA states only when the snapshot and this process have them).

    Raises ``KeyError`` naming the missing part when the snapshot is incomplete.
    """
    missing = {'python', 'numpy', 'torch'} - set(state)
    if missing:
        raise KeyError(f'RNG snapshot lacks {sorted(missing)}')
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    np_state = state['numpy']
    np.random.set_state((np_state['name'], np_state['keys'].numpy().astype(np.uint32), np_state['pos'],
                         np_state['has_gauss'], np_state['cached_gaussian']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        cuda_states = state['cuda']
        if len(cuda_states) != torch.cuda.device_count():
            raise ValueError(f'RNG snapshot holds {len(cuda_states)} CUDA generator states, this process sees '
                             f'{torch.cuda.device_count()} devices')
        torch.cuda.set_rng_state_all(cuda_states)


@contextmanager
def preserve_rng_state() -> Iterator[None]:
    """Run a block (e.g. a validation pass) without moving any generator of the process."""
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
