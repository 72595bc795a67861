# X-SAM stage 3 with plain DDP (mmengine Runner + MMDistributedDataParallel) and bf16 autocast
# (AmpOptimWrapper): every GPU holds the whole model and its AdamW states (~16 bytes per parameter, about
# 74 GB at 4.6B parameters), so this is for smaller LLMs / ablations or GPUs with more memory. Exact
# mid-epoch resume works here (SamplerStateHook, RNGStateHook), unlike under DeepSpeed.
#   tools/dist_train.sh configs/xsam/mixed_ddp.py 16
_base_ = './mixed.py'
runner_type = 'Runner'
strategy = None
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=4e-5, betas=(0.9, 0.999), weight_decay=0.05, eps=1e-8),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(custom_keys={'vision_encoder': dict(lr_mult=0.1), 'backbone': dict(lr_mult=0.1)}))
# image-conversation batches leave the decoder without gradients (find_unused_parameters=True in mixed.py)
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True, broadcast_buffers=False)
custom_hooks = [dict(type='SamplerStateHook'), dict(type='RNGStateHook'), dict(type='GlobalBatchCheckHook')]
