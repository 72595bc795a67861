"""Config handling of tools/train.py and tools/test.py."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmxsam.utils.cli import adapt_dist_backend, apply_resume, enable_amp, enable_auto_scale_lr, load_cli_config


@pytest.fixture
def cfg_file(tmp_path):
    p = tmp_path / 'my_exp.py'
    p.write_text("env_cfg = dict(dist_cfg=dict(backend='nccl'))\n"
                 "optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))\n"
                 "auto_scale_lr = dict(enable=False, base_batch_size=16)\n"
                 "a = dict(b=1)\n")
    return str(p)


def test_work_dir_priority(cfg_file, tmp_path):
    assert load_cli_config(cfg_file).work_dir == osp.join('./work_dirs', 'my_exp')
    assert load_cli_config(cfg_file, work_dir=str(tmp_path / 'w')).work_dir == str(tmp_path / 'w')


def test_cfg_options_merge(cfg_file):
    cfg = load_cli_config(cfg_file, cfg_options={'a.b': 2, 'a.c': 'x'})
    assert cfg.a == dict(b=2, c='x')


def test_missing_config_is_named():
    with pytest.raises(FileNotFoundError, match='config file not found: nope.py'):
        load_cli_config('nope.py')


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU fallback')
def test_nccl_falls_back_to_gloo_without_cuda(cfg_file):
    assert load_cli_config(cfg_file, launcher='none').env_cfg.dist_cfg.backend == 'nccl'
    assert load_cli_config(cfg_file, launcher='pytorch').env_cfg.dist_cfg.backend == 'gloo'
    cfg = Config(dict(launcher='pytorch'))
    adapt_dist_backend(cfg)
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    # DDP on CPU modules needs device_ids=None; a user's wrapper keeps its own settings
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel' and cfg.model_wrapper_cfg.device_ids is None
    cfg = Config(dict(launcher='pytorch', model_wrapper_cfg=dict(type='MMDistributedDataParallel',
                                                                  find_unused_parameters=True)))
    adapt_dist_backend(cfg)
    assert cfg.model_wrapper_cfg.device_ids is None and cfg.model_wrapper_cfg.find_unused_parameters is True
    with pytest.raises(RuntimeError, match='--launcher slurm needs CUDA'):
        adapt_dist_backend(Config(dict(launcher='slurm')))


@pytest.mark.skipif(torch.cuda.is_available(), reason='checks the CPU error')
def test_amp_without_cuda_is_a_clear_error(cfg_file):
    with pytest.raises(RuntimeError, match='--amp needs a CUDA device'):
        enable_amp(load_cli_config(cfg_file))


def test_amp_with_deepspeed_strategy_sets_bf16():
    cfg = Config(dict(runner_type='FlexibleRunner', strategy=dict(type='DeepSpeedStrategy', fp16=dict(enabled=True))))
    enable_amp(cfg)
    assert cfg.strategy.bf16 == dict(enabled=True) and 'fp16' not in cfg.strategy


def test_auto_scale_lr(cfg_file):
    cfg = load_cli_config(cfg_file)
    enable_auto_scale_lr(cfg)
    assert cfg.auto_scale_lr.enable is True
    with pytest.raises(RuntimeError, match='auto_scale_lr'):
        enable_auto_scale_lr(Config(dict()))


def test_resume_modes(cfg_file, tmp_path):
    cfg = load_cli_config(cfg_file)
    apply_resume(cfg, 'auto')
    assert cfg.resume is True and cfg.load_from is None
    ckpt = tmp_path / 'iter_2.pth'
    ckpt.write_bytes(b'')
    apply_resume(cfg, str(ckpt))
    assert cfg.load_from == str(ckpt)
    with pytest.raises(FileNotFoundError, match='--resume checkpoint not found'):
        apply_resume(cfg, str(tmp_path / 'missing.pth'))
