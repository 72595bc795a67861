# X-SAM stage 3 with PyTorch FSDP (mmengine FSDPStrategy, FULL_SHARD, bf16 compute, fp32 gradient reduction).
#   tools/dist_train.sh configs/xsam/mixed_fsdp.py 16
# Checkpoints are one full .pth (state_dict_cfg='full', gathered on rank 0), loadable by init_cfg/load_from.
_base_ = './mixed.py'
strategy = dict(
    _delete_=True,
    type='FSDPStrategy',
    model_wrapper=dict(
        # one FSDP unit per block of >= 10M parameters (Phi-3 decoder layers, SigLIP2 / SAM-L blocks)
        auto_wrap_policy=dict(type='torch.distributed.fsdp.wrap.size_based_auto_wrap_policy',
                              min_num_params=int(1e7)),
        sharding_strategy='FULL_SHARD',
        # frozen (never-run) and trainable parameters share flat parameters; the optimizer's per-module
        # learning rates (paramwise_cfg) need the original parameter names
        use_orig_params=True,
        mixed_precision=dict(param_dtype='bfloat16', reduce_dtype='float32', buffer_dtype='float32')),
    state_dict_cfg='full')
# ShardedOptimWrapper: clipping by the norm of the whole (sharded) gradient, as the recipe's clip 1.0 means
optim_wrapper = dict(
    _delete_=True,
    type='ShardedOptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-5, betas=(0.9, 0.999), weight_decay=0.05, eps=1e-8),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(custom_keys={'vision_encoder': dict(lr_mult=0.1), 'backbone': dict(lr_mult=0.1)}))
model = dict(backbone=dict(with_cp=True))  # activation checkpointing in SAM-L too (LLM, SigLIP2: mixed.py)
