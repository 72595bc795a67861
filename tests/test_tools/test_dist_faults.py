"""Faults in multi-process runs (tools/dist_train.sh, 2 gloo processes on the CPU) and the start-up checks of
the same-source global batch."""
import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import pytest
from mmengine.optim import OptimWrapper
from torch import nn
from torch.optim import SGD
from torch.utils.data import ConcatDataset, DataLoader

from mmxsam.datasets.samplers import SourceGroupedSampler
from mmxsam.engine.hooks import GlobalBatchCheckHook

TOY_MODULE = '''
import os, signal
import torch
from mmdet.registry import DATASETS, HOOKS, MODELS
from mmengine.hooks import Hook
from mmengine.model import BaseModel


@MODELS.register_module()
class FaultToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.fc(inputs).pow(2).mean())


@DATASETS.register_module()
class FaultToyDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 64

    def __getitem__(self, idx):
        return dict(inputs=torch.full((4,), float(idx)))


@HOOKS.register_module()
class FaultAt(Hook):
    """Rank ``rank`` raises or SIGKILLs itself before iteration ``iteration``; the others go on."""

    def __init__(self, rank, iteration, how):
        self.rank, self.iteration, self.how = rank, iteration, how

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.rank == self.rank and runner.iter == self.iteration:
            if self.how == 'kill':
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f'injected failure on rank {self.rank} at iteration {self.iteration}')
'''

TOY_CONFIG = '''
custom_imports = dict(imports=['mmxsam', 'fault_toy'], allow_failed_imports=False)
default_scope = 'mmdet'
model = dict(type='FaultToyModel')
train_dataloader = dict(batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        dataset=dict(type='FaultToyDataset'), collate_fn=dict(type='default_collate'))
train_cfg = dict(by_epoch=False, max_iters=10 ** 6)  # never ends by itself
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1e-6))
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10 ** 6),
                     logger=dict(type='LoggerHook', interval=1))
custom_hooks = [dict(type='FaultAt', rank=1, iteration=3, how='{how}')]
env_cfg = dict(dist_cfg=dict(backend='nccl'))  # switched to gloo on a machine without CUDA
'''


@pytest.mark.slow
@pytest.mark.parametrize('how', ['raise', 'kill'])
def test_a_failing_rank_ends_the_job_and_is_named(repo_root, tmp_path, how):
    (tmp_path / 'fault_toy.py').write_text(TOY_MODULE)
    (tmp_path / 'toy.py').write_text(TOY_CONFIG.format(how=how))
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(29621 + (how == 'kill')),
               PYTHONPATH=f'{tmp_path}:{os.environ.get("PYTHONPATH", "")}')
    out = subprocess.run(['bash', f'{repo_root}/tools/dist_train.sh', str(tmp_path / 'toy.py'), '2', '--work-dir',
                          str(tmp_path / 'work')], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=180)  # a hang would time out here
    log = out.stdout + out.stderr
    assert out.returncode != 0, log[-3000:]
    root_cause = log[log.index('Root Cause'):]
    assert 'rank      : 1 (local_rank: 1)' in root_cause, log[-3000:]
    if how == 'raise':  # @record in tools/train.py: torchrun's summary carries the exception of rank 1
        assert 'injected failure on rank 1 at iteration 3' in root_cause, log[-3000:]
    else:
        assert 'Signal 9 (SIGKILL)' in root_cause, log[-3000:]
    assert 'dist_train.sh: the job failed' in log


def _concat(*sizes):
    return ConcatDataset([list(range(n)) for n in sizes])


def test_global_batch_not_divisible_by_world_size_is_refused_with_the_numbers():
    with pytest.raises(ValueError, match=r'global batch of 64 samples is not a multiple of world_size 3 x '
                                         r'batch_size 4 = 12 .*divide it at batch_size 4: \[1, 2, 4, 8, 16\]'):
        SourceGroupedSampler(_concat(40, 40), batch_size=4, rank=0, world_size=3, seed=0, global_batch_size=64)
    with pytest.raises(ValueError, match='mega_batch_mult=4 contradicts global_batch_size=64'):
        SourceGroupedSampler(_concat(40, 40), batch_size=4, rank=0, world_size=8, seed=0, global_batch_size=64,
                             mega_batch_mult=4)
    sampler = SourceGroupedSampler(_concat(40, 40), batch_size=4, rank=0, world_size=8, seed=0, global_batch_size=64)
    assert sampler.mega_batch_mult == 2 and sampler.group_size == 64


def _runner(sampler, accumulation=None, deepspeed_accumulation=None):
    loader = DataLoader(sampler.dataset, batch_size=sampler.batch_size, sampler=sampler)
    wrapper = OptimWrapper(SGD(nn.Linear(1, 1).parameters(), lr=0.1), accumulative_counts=accumulation or 1)
    strategy = SimpleNamespace(config=dict(gradient_accumulation_steps=deepspeed_accumulation)) \
        if deepspeed_accumulation else None
    return SimpleNamespace(train_dataloader=loader, optim_wrapper=wrapper, strategy=strategy)


def test_optimizer_accumulation_must_match_the_same_source_groups():
    sampler = SourceGroupedSampler(_concat(40, 40), batch_size=4, rank=0, world_size=8, seed=0, global_batch_size=64)
    with pytest.raises(ValueError, match=r'8 x batch_size 4 x accumulation 1 = 32 samples.*mega_batch_mult 2 = 64 '
                                         r'\(global_batch_size=64\).*accumulative_counts=2.*gradient_accumulation_steps=2'):
        GlobalBatchCheckHook().before_train(_runner(sampler))
    GlobalBatchCheckHook().before_train(_runner(sampler, accumulation=2))
    GlobalBatchCheckHook().before_train(_runner(sampler, deepspeed_accumulation=2))
    with pytest.raises(ValueError, match='accumulation 4'):
        GlobalBatchCheckHook().before_train(_runner(sampler, deepspeed_accumulation=4))
