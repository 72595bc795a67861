"""RNG snapshots (mmxsam.engine.runner.rng) and per-sample seeds (SourceGroupedSampler(sample_seeds=True))."""
import pickle
import random

import numpy as np
import pytest
import torch
from mmengine.dataset import BaseDataset

from mmxsam.datasets.samplers import SourceGroupedSampler
from mmxsam.datasets.samplers.sample_seeds import SeededIndex, seed_of, seeded_rngs
from mmxsam.datasets.wrappers import BalancedConcatDataset
from mmxsam.engine.runner.rng import get_rng_state, preserve_rng_state, set_rng_state


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_snapshot_restores_every_generator_and_loads_with_weights_only(tmp_path):
    state = get_rng_state()
    first = _draws()
    torch.save(dict(meta=dict(rng_state=dict(world_size=1, states=[state]))), tmp_path / 'c.pth')
    loaded = torch.load(tmp_path / 'c.pth', weights_only=True)['meta']['rng_state']['states'][0]
    _draws()
    set_rng_state(loaded)
    assert _draws() == first
    with pytest.raises(KeyError, match='numpy'):
        set_rng_state(dict(python=state['python'], torch=state['torch']))


def test_preserve_rng_state_leaves_the_stream_untouched():
    state = get_rng_state()
    expected = _draws()
    set_rng_state(state)
    with preserve_rng_state():
        _draws(), _draws()
    assert _draws() == expected


class _Drawing(BaseDataset):
    """Each sample is a draw from numpy's global generator (as the data sets' prompt choices)."""

    def __init__(self, n):
        self.n = n
        super().__init__(serialize_data=False)

    def load_data_list(self):
        return [dict(i=i) for i in range(self.n)]

    def prepare_data(self, idx):
        return dict(i=idx, draw=int(np.random.randint(1 << 30)))


def test_seeded_index_pickles_and_seeds_are_positional():
    idx = pickle.loads(pickle.dumps(SeededIndex(7, 123)))
    assert idx == 7 and idx.sample_seed == 123
    assert seed_of(1, 0, 5) == seed_of(1, 0, 5) != seed_of(1, 1, 5) != seed_of(1, 0, 6)
    with pytest.raises(ValueError, match='position'):
        seed_of(1, 0, -1)


def test_sampler_sample_seeds_make_draws_independent_of_prior_randomness():
    data = BalancedConcatDataset([_Drawing(6), _Drawing(4)])
    ranks = [SourceGroupedSampler(data, batch_size=2, seed=5, rank=r, world_size=2, sample_seeds=True)
             for r in range(2)]
    order = ranks[0].epoch_indices()
    for r, sampler in enumerate(ranks):
        indices = list(sampler)
        assert [int(i) for i in indices] == order[r::2]
        assert [i.sample_seed for i in indices] == [seed_of(5, 0, p * 2 + r) for p in range(len(indices))]
    indices = list(ranks[0])
    np.random.seed(0)
    a = [data[i]['draw'] for i in indices]
    np.random.seed(1)
    before = np.random.get_state()[1].copy()
    b = [data[i]['draw'] for i in indices]
    assert a == b  # the draws depend on the position only
    assert (np.random.get_state()[1] == before).all()  # and leave the global generator alone
    with seeded_rngs(3):
        plain = data[int(indices[0])]['draw']
    assert plain == data[SeededIndex(int(indices[0]), 3)]['draw']
    # the position inside the epoch counts: a resumed sampler yields the same seeds from there on
    resumed = SourceGroupedSampler(data, batch_size=2, seed=5, rank=0, world_size=2, sample_seeds=True)
    resumed.set_start_index(2)
    assert [(int(i), i.sample_seed) for i in resumed] == [(int(i), i.sample_seed) for i in indices[2:]]


def test_sample_seeds_need_a_dataset_that_loads_them():
    data = torch.utils.data.ConcatDataset([_Drawing(3), _Drawing(3)])
    assert all(type(i) is int for i in SourceGroupedSampler(data, batch_size=1, seed=0, rank=0, world_size=1))
    with pytest.raises(TypeError, match='loads_seeded_indices'):
        SourceGroupedSampler(data, batch_size=1, seed=0, rank=0, world_size=1, sample_seeds=True)
