"""Exact mid-epoch resume of SourceGroupedSampler under mmengine's Runner (SamplerStateHook and
ResumableIterBasedTrainLoop): an interrupted + resumed run trains on exactly the batches of an
uninterrupted one."""
import itertools
import os.path as osp

import pytest
import torch
from mmdet.registry import DATASETS, MODELS
from mmengine.dataset import BaseDataset
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

import mmxsam  # noqa: F401
from mmxsam.engine.hooks import sampler_state_hook as hook_module

B = 2
SIZES = (7, 10)  # G = 2 (world size 1): 4 + 5 = 9 steps per epoch
STEPS = 9
SEEN = []  # per trained batch: the sample uids, in order
LOADS = [0]  # samples loaded by the data sets (fast-forward must not load the skipped ones)
_COUNTER = itertools.count()


@DATASETS.register_module(force=True)
class _ResumeToySource(BaseDataset):
    def __init__(self, name='a', n=4, **kwargs):
        self.name, self.n = name, n
        super().__init__(serialize_data=False, **kwargs)

    def load_data_list(self):
        return [dict(uid=f'{self.name}{i}') for i in range(self.n)]

    def __getitem__(self, idx):
        LOADS[0] += 1
        return super().__getitem__(idx)


@MODELS.register_module(force=True)
class _IdRecorder(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(1, 1)

    def forward(self, *args, **kwargs):  # pragma: no cover - train_step is overridden
        raise NotImplementedError

    def train_step(self, data, optim_wrapper):
        SEEN.append(list(data['uid']))
        loss = self.fc(torch.ones(1, 1)).sum() * 0.0
        optim_wrapper.update_params(loss)
        return dict(loss=loss)


class _Crash(Exception):
    pass


class _CrashAt(Hook):
    priority = 'LOWEST'  # after CheckpointHook (VERY_LOW) saved

    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise _Crash


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    import mmengine.runner.loops as mm_loops
    monkeypatch.setattr(mm_loops.time, 'sleep', lambda s: None)  # _InfiniteDataloaderIterator's 2 s per wrap
    SEEN.clear()
    LOADS[0] = 0
    yield


def _runner(work_dir, train_cfg, sampler=None, interval=None, crash_at=None, with_hook=True, resume=False):
    sampler = sampler or dict(type='SourceGroupedSampler', batch_size=B)
    custom_hooks = [dict(type='SamplerStateHook')] if with_hook else []
    if crash_at is not None:
        custom_hooks.append(_CrashAt(crash_at))
    ckpt = dict(type='CheckpointHook', by_epoch=False, interval=interval or 10 ** 6, save_last=False)
    return Runner(
        model=dict(type='_IdRecorder'),
        work_dir=work_dir,
        experiment_name=f'sampler_resume_{next(_COUNTER)}',
        train_dataloader=dict(
            batch_size=B, num_workers=0, batch_sampler=None, sampler=sampler,
            collate_fn=dict(type='pseudo_collate'),
            dataset=dict(type='ConcatDataset', datasets=[dict(type='_ResumeToySource', name=f's{k}', n=n)
                                                         for k, n in enumerate(SIZES)])),
        train_cfg=train_cfg,
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=ckpt, logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=custom_hooks,
        default_scope='mmdet',
        randomness=dict(seed=7),
        resume=resume,
        log_level='WARNING')


def _interrupted_then_resumed(tmp_path, train_cfg, interval, crash_at, **kwargs):
    """Batches of the crashed run up to its last checkpoint, and of the run resumed from it."""
    work_dir = str(tmp_path / 'interrupted')
    with pytest.raises(_Crash):
        _runner(work_dir, train_cfg, interval=interval, crash_at=crash_at, **kwargs).train()
    last = crash_at // interval * interval
    assert osp.isfile(osp.join(work_dir, f'iter_{last}.pth'))
    before = list(SEEN)
    SEEN.clear()
    LOADS[0] = 0
    _runner(work_dir, train_cfg, resume=True, **kwargs).train()
    return before, last, list(SEEN)


def _uninterrupted(tmp_path, train_cfg, **kwargs):
    _runner(str(tmp_path / 'full'), train_cfg, **kwargs).train()
    full = list(SEEN)
    SEEN.clear()
    return full


@pytest.mark.parametrize('interval,crash_at', [(4, 6), (4, 14), (9, 10)])  # mid epoch 0 / 1, epoch end
def test_epoch_based_resume_continues_the_interrupted_epoch(tmp_path, interval, crash_at):
    train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
    full = _uninterrupted(tmp_path, train_cfg)
    assert len(full) == 2 * STEPS and full[:STEPS] != full[STEPS:]
    before, last, resumed = _interrupted_then_resumed(tmp_path, train_cfg, interval, crash_at)
    assert before == full[:crash_at]
    assert before[:last] + resumed == full  # nothing re-trained, nothing skipped
    assert LOADS[0] == len(resumed) * B
    meta = torch.load(osp.join(tmp_path, 'interrupted', f'iter_{last}.pth'), weights_only=True)['meta']
    epoch, step = divmod(last, STEPS)
    if step == 0:  # saved after the last batch of an epoch (by_epoch=False): that epoch is exhausted
        epoch, step = epoch - 1, STEPS
    assert meta['sampler_state'] == dict(epoch=epoch, position=step * B, seed=7, world_size=1, group_size=B,
                                         total_size=STEPS * B)


@pytest.mark.parametrize('loop,with_hook', [('ResumableIterBasedTrainLoop', True),
                                            ('ResumableIterBasedTrainLoop', False),
                                            ('IterBasedTrainLoop', True)])
def test_iter_based_resume_matches_an_uninterrupted_run(tmp_path, loop, with_hook):
    train_cfg = dict(type=loop, max_iters=2 * STEPS + 3)
    full = _uninterrupted(tmp_path, train_cfg, with_hook=with_hook)
    assert len(full) == 2 * STEPS + 3
    before, last, resumed = _interrupted_then_resumed(tmp_path, train_cfg, 5, 13, with_hook=with_hook)
    assert last == 10 and before == full[:13]
    assert before[:last] + resumed == full
    replayed = 0 if loop == 'ResumableIterBasedTrainLoop' else last  # mmengine loads the skipped batches
    assert LOADS[0] == (len(resumed) + replayed) * B


def test_hook_is_a_no_op_with_default_sampler(tmp_path, monkeypatch):
    logs = []
    monkeypatch.setattr(hook_module, 'print_log', lambda msg, **kw: logs.append(msg))
    train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=2)
    sampler = dict(type='DefaultSampler', shuffle=True)
    full = _uninterrupted(tmp_path, train_cfg, sampler=sampler)
    before, last, resumed = _interrupted_then_resumed(tmp_path, train_cfg, 4, 14, sampler=sampler)
    assert before == full[:14]
    assert resumed == full[STEPS:]  # mmengine's own behaviour: the interrupted epoch restarts
    meta = torch.load(osp.join(tmp_path, 'interrupted', f'iter_{last}.pth'), weights_only=True)['meta']
    assert 'sampler_state' not in meta
    assert len(logs) == 3 and all('DefaultSampler' in m for m in logs)  # once per runner (3 runners)
