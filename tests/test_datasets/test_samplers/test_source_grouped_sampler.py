import bisect
import math

import pytest
from mmengine.dataset import BaseDataset
from mmengine.dataset import ConcatDataset as MMEngineConcatDataset
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch.utils.data import DataLoader

import mmxsam  # noqa: F401
from mmxsam.datasets.samplers import SourceGroupedSampler
from mmxsam.datasets.samplers import source_grouped_sampler as sgs_module
from mmxsam.datasets.wrappers import BalancedConcatDataset

B, M = 2, 2  # per-device batch size, gradient-accumulation steps (mega_batch_mult)


class _ToySource(BaseDataset):
    def __init__(self, name: str = 'toy', n: int = 4, **kwargs):
        self.name, self.n = name, n
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        return [dict(source=self.name, i=i) for i in range(self.n)]


def _balanced(sizes=(57, 23, 5)):
    return BalancedConcatDataset([_ToySource(f's{k}', n) for k, n in enumerate(sizes)], oversample_thr=0.1)


def _source_of(dataset, idx):
    return bisect.bisect_right(dataset.cumulative_sizes, idx)


def _ranks(dataset, world_size, seed=0, epoch=0, **kwargs):
    out = []
    for r in range(world_size):
        s = SourceGroupedSampler(dataset, batch_size=B, mega_batch_mult=M, seed=seed, rank=r,
                                 world_size=world_size, **kwargs)
        s.set_epoch(epoch)
        out.append(list(s))
    return out


@pytest.mark.parametrize('world_size', [1, 2, 4, 16])
def test_every_global_batch_is_single_source(world_size):
    ds = _balanced()
    lengths = ds.source_lengths  # [57, 23, 6]: only the 5-sample source is repeated (r = 1.30)
    G = world_size * B * M
    per_rank = _ranks(ds, world_size)
    num_groups = sum(math.ceil(n / G) for n in lengths)
    assert all(len(r) == num_groups * B * M for r in per_rank)
    # rebuild the global order F from F[k * W + r] = rank_r[k]
    flat = [per_rank[k % world_size][k // world_size] for k in range(num_groups * G)]
    assert flat == SourceGroupedSampler(ds, B, M, seed=0, rank=0, world_size=world_size).epoch_indices()
    groups = [flat[g * G:(g + 1) * G] for g in range(num_groups)]
    assert all(len({_source_of(ds, i) for i in grp}) == 1 for grp in groups)
    # the union covers the epoch; only the round-up padding repeats indices
    assert set(flat) == set(range(len(ds)))
    assert len(flat) - len(set(flat)) == sum(math.ceil(n / G) * G - n for n in lengths)
    # step s of every rank draws from group s // M
    for s in range(num_groups * M):
        batches = [r[s * B:(s + 1) * B] for r in per_rank]
        assert all(set(b) <= set(groups[s // M]) for b in batches)
    # every source is visited with its expected number of groups
    counts = [0] * len(lengths)
    for grp in groups:
        counts[_source_of(ds, grp[0])] += 1
    assert counts == [math.ceil(n / G) for n in lengths]


def test_deterministic_across_builds_and_changes_with_epoch():
    ds = _balanced()
    assert _ranks(ds, 2, seed=7) == _ranks(ds, 2, seed=7)
    assert _ranks(ds, 2, seed=7, epoch=0) != _ranks(ds, 2, seed=7, epoch=1)
    assert _ranks(ds, 2, seed=7) != _ranks(ds, 2, seed=8)
    s = SourceGroupedSampler(ds, B, M, seed=7, rank=0, world_size=2)
    first = list(s)
    assert list(s) == first  # same epoch, same order
    s.set_epoch(1)
    assert list(s) != first


def test_resume_mid_epoch_yields_exactly_the_remaining_indices():
    ds = _balanced()
    for rank in range(2):
        s = SourceGroupedSampler(ds, B, M, seed=3, rank=rank, world_size=2)
        s.set_epoch(2)
        full = list(s)
        it = iter(s)
        half = (len(full) // (2 * B)) * B
        consumed = [next(it) for _ in range(half)]
        assert consumed == full[:half]
        state = s.state_dict()
        assert state['epoch'] == 2 and state['position'] == half and state['seed'] == 3

        fresh = SourceGroupedSampler(ds, B, M, seed=99, rank=rank, world_size=2)  # seed comes from the state
        fresh.load_state_dict(state)
        assert len(fresh) == len(full) - half
        fresh.set_epoch(2)  # what DistSamplerSeedHook does after a resume: same epoch keeps the position
        assert list(fresh) == full[half:]
        fresh.set_epoch(3)  # next epoch starts from the beginning again
        reference = SourceGroupedSampler(ds, B, M, seed=3, rank=rank, world_size=2)
        reference.set_epoch(3)
        assert len(fresh) == len(reference) and list(fresh) == list(reference)


def test_fast_forward_matches_an_uninterrupted_run_across_epochs():
    ds = _balanced()
    s = SourceGroupedSampler(ds, B, M, seed=5, rank=1, world_size=2)
    stream = []
    for epoch in range(3):
        s.set_epoch(epoch)
        stream += list(s)
    done = s.steps_per_epoch + 3  # one epoch and three batches
    resumed = SourceGroupedSampler(ds, B, M, seed=5, rank=1, world_size=2)
    resumed.fast_forward(done)
    assert resumed.epoch == 1 and len(resumed) == resumed.num_samples - 3 * B
    rest = list(resumed)
    resumed.set_epoch(2)
    rest += list(resumed)
    assert rest == stream[done * B:]


def test_load_state_dict_checks_the_layout():
    ds = _balanced()
    state = SourceGroupedSampler(ds, B, M, seed=1, rank=0, world_size=2).state_dict(num_consumed=4)
    other = SourceGroupedSampler(ds, B, M, seed=1, rank=0, world_size=4)
    with pytest.raises(ValueError, match='world_size=\\(2, 4\\)'):
        other.load_state_dict(state)
    other.load_state_dict(state, strict=False)  # restarts the saved epoch
    assert len(other) == other.num_samples
    with pytest.raises(ValueError):
        SourceGroupedSampler(ds, B, M, seed=1, rank=0, world_size=2).state_dict(num_consumed=10 ** 6)


def test_two_ranks_through_dataloader_draw_one_source_per_step():
    ds = _balanced()
    world_size = 2
    loaders = [DataLoader(ds, batch_size=B, collate_fn=list,
                          sampler=SourceGroupedSampler(ds, B, M, seed=11, rank=r, world_size=world_size))
               for r in range(world_size)]
    steps = list(zip(*loaders))
    assert len(steps) == len(loaders[0]) == loaders[0].sampler.steps_per_epoch
    for s, rank_batches in enumerate(steps):
        sources = {item['source'] for batch in rank_batches for item in batch}
        assert len(sources) == 1, (s, sources)
        if s % M:  # the M steps of one accumulation window share the group's source
            prev = {item['source'] for item in steps[s - 1][0]}
            assert prev == sources


def test_plain_concat_dataset_and_runner_build_under_mmdet_scope():
    ds = MMEngineConcatDataset([_ToySource('a', 9), _ToySource('b', 30)], lazy_init=True)
    with DefaultScope.overwrite_default_scope('mmdet'):
        loader = Runner.build_dataloader(
            dict(batch_size=B, num_workers=0, dataset=ds,
                 sampler=dict(type='SourceGroupedSampler', batch_size=B, mega_batch_mult=1, world_size=2)),
            seed=123)
    sampler, ds = loader.sampler, loader.dataset  # build_dataloader deep-copies the dataset
    assert ds._fully_initialized  # the sampler ran the lazy wrapper's full_init
    assert isinstance(sampler, SourceGroupedSampler) and sampler.seed == 123  # seed from randomness
    assert sampler.source_ranges == [range(0, 9), range(9, 39)]
    G = 2 * B
    flat = sampler.epoch_indices()
    assert all(len({_source_of(ds, i) for i in flat[k:k + G]}) == 1 for k in range(0, len(flat), G))
    for batch in loader:  # pseudo_collate: a dict of per-sample lists
        assert len(batch['source']) == B and len(set(batch['source'])) == 1


def test_small_source_is_filled_by_repetition_and_warned_once(monkeypatch):
    logs = []
    monkeypatch.setattr(sgs_module, 'print_log', lambda msg, **kw: logs.append(msg))
    ds = MMEngineConcatDataset([_ToySource('big', 40), _ToySource('tiny', 3)])
    s = SourceGroupedSampler(ds, batch_size=2, mega_batch_mult=2, seed=0, rank=0, world_size=4)  # G = 16
    for epoch in range(3):
        s.set_epoch(epoch)
        list(s)
    assert len(logs) == 1 and '1:_ToySource (3)' in logs[0]
    tiny = [g for g in (s.epoch_indices()[k:k + 16] for k in range(0, s.total_size, 16)) if g[0] >= 40]
    assert len(tiny) == 1 and sorted(set(tiny[0])) == [40, 41, 42]
    assert sorted(tiny[0].count(i) for i in (40, 41, 42)) == [5, 5, 6]


def test_bad_inputs():
    with pytest.raises(TypeError, match='needs a dataset made of sources'):
        SourceGroupedSampler(_ToySource('a', 8), batch_size=2, seed=0)
    with pytest.raises(TypeError):
        SourceGroupedSampler(list(range(8)), batch_size=2, seed=0)
    ds = _balanced()
    with pytest.raises(ValueError, match='batch_size'):
        SourceGroupedSampler(ds, batch_size=0, seed=0)
    with pytest.raises(ValueError, match='rank'):
        SourceGroupedSampler(ds, batch_size=2, seed=0, rank=2, world_size=2)
