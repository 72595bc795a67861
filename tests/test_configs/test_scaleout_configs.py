"""Stage-3 strategy variants (configs/xsam/mixed_{zero3,fsdp,ddp}.py): they inherit mixed.py's recipe and only
change the parallelism; FlexibleRunner builds them (without a model) and the sharded gradient clipping of the
FSDP variant clips by the whole gradient's norm."""
import os.path as osp

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.registry import RUNNERS

import mmxsam  # noqa: F401
from mmxsam.engine.optimizers import sharded_clip_grad_norm_

VARIANTS = ('mixed_zero3', 'mixed_fsdp', 'mixed_ddp')
RECIPE_LR_MULT = {'vision_encoder': dict(lr_mult=0.1), 'backbone': dict(lr_mult=0.1)}


def load(repo_root, name):
    return Config.fromfile(osp.join(repo_root, 'configs/xsam', f'{name}.py'))


@pytest.mark.parametrize('name', VARIANTS)
def test_variants_keep_the_stage3_recipe(repo_root, name):
    cfg, base = load(repo_root, name), load(repo_root, 'mixed')
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay, tuple(opt.betas)) == ('AdamW', 4e-5, 0.05, (0.9, 0.999))
    assert cfg.optim_wrapper.paramwise_cfg.custom_keys == RECIPE_LR_MULT
    for key in ('train_dataloader', 'param_scheduler', 'train_cfg', 'auto_scale_lr', 'default_hooks'):
        assert cfg[key] == base[key], key
    assert cfg.model.init_cfg == base.model.init_cfg
    assert cfg.train_dataloader.sampler.global_batch_size == 64
    assert cfg.model.llm.gradient_checkpointing is True and cfg.model.vision_encoder.with_cp is True
    assert 'GlobalBatchCheckHook' in [h['type'] for h in cfg.custom_hooks]


def test_zero3_partitions_parameters_in_bf16(repo_root, tmp_path, monkeypatch):
    from mmengine._strategy import deepspeed as ds_strategy
    monkeypatch.setattr(ds_strategy, 'register_deepspeed_optimizers', lambda: [])  # see test_xsam_configs
    cfg = load(repo_root, 'mixed_zero3')
    cfg.work_dir, cfg.launcher = str(tmp_path), 'none'
    assert cfg.model.backbone.with_cp is True
    runner = RUNNERS.build(cfg)
    config = runner.strategy.config
    zero = config['zero_optimization']
    assert zero['stage'] == 3 and zero['stage3_gather_16bit_weights_on_model_save'] is True
    assert 'allgather_partitions' not in zero  # ZeRO-2 keys dropped (_delete_)
    assert config['bf16'] == dict(enabled=True) and config['gradient_clipping'] == 1.0
    assert config['gradient_accumulation_steps'] == 1 and config['train_micro_batch_size_per_gpu'] == 4
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'


def test_fsdp_shards_fully_with_bf16_compute_and_sharded_clipping(repo_root, tmp_path):
    from torch.distributed.fsdp import StateDictType
    cfg = load(repo_root, 'mixed_fsdp')
    cfg.work_dir, cfg.launcher = str(tmp_path), 'none'
    runner = RUNNERS.build(cfg)
    strategy = runner.strategy
    assert type(strategy).__name__ == 'FSDPStrategy'
    assert strategy.state_dict_type == StateDictType.FULL_STATE_DICT
    wrapper = strategy.model_wrapper
    assert wrapper['sharding_strategy'] == 'FULL_SHARD' and wrapper['use_orig_params'] is True
    assert wrapper['mixed_precision'] == dict(param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32')
    assert wrapper['auto_wrap_policy']['min_num_params'] == 10 ** 7
    assert cfg.optim_wrapper.type == 'ShardedOptimWrapper'
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=1.0, norm_type=2)
    assert 'inputs_to_half' not in cfg.strategy  # a DeepSpeed-only key


def test_ddp_variant_is_a_plain_runner_with_bf16_amp(repo_root):
    cfg = load(repo_root, 'mixed_ddp')
    assert cfg.runner_type == 'Runner' and cfg.strategy is None
    ow = cfg.optim_wrapper
    assert ow.type == 'AmpOptimWrapper' and ow.dtype == 'bfloat16' and ow.clip_grad == dict(max_norm=1.0, norm_type=2)
    assert cfg.model_wrapper_cfg == dict(type='MMDistributedDataParallel', find_unused_parameters=True,
                                         broadcast_buffers=False)
    assert [h['type'] for h in cfg.custom_hooks] == ['SamplerStateHook', 'RNGStateHook', 'GlobalBatchCheckHook']


def _clip_worker(rank, world_size, port, full_grads, results):
    torch_dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    try:
        # each parameter split into disjoint shards, one per rank (as FSDP FULL_SHARD with use_orig_params)
        params = []
        for g in full_grads:
            shard = torch.nn.Parameter(torch.zeros(g.numel()).chunk(world_size)[rank].clone())
            shard.grad = g.flatten().chunk(world_size)[rank].clone()
            params.append(shard)
        norm = sharded_clip_grad_norm_(params, max_norm=1.0)
        results[rank] = (float(norm), [p.grad.clone() for p in params])
    finally:
        torch_dist.destroy_process_group()


def test_sharded_clipping_equals_clipping_the_whole_gradient():
    torch.manual_seed(0)
    full_grads = [torch.randn(7, 3), torch.randn(10)]  # global norm ~5 > 1: clipping happens
    expected = [g.clone() for g in full_grads]
    whole = [torch.nn.Parameter(torch.zeros_like(g)) for g in expected]
    for p, g in zip(whole, expected):
        p.grad = g
    expected_norm = float(torch.nn.utils.clip_grad_norm_(whole, max_norm=1.0))
    results = mp.Manager().dict()
    # fork: the workers need no re-import of the test module (spawn would take ~20 s here)
    mp.start_processes(_clip_worker, args=(2, 29631, full_grads, results), nprocs=2, join=True, start_method='fork')
    for rank in range(2):
        norm, grads = results[rank]
        assert norm == pytest.approx(expected_norm, rel=1e-6)
        for g, p in zip(grads, whole):
            assert torch.allclose(g, p.grad.flatten().chunk(2)[rank], atol=1e-7)
    with pytest.raises(ValueError, match='norm_type'):
        sharded_clip_grad_norm_([], max_norm=1.0, norm_type=0.5)
