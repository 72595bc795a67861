# X-SAM stage 3 (mixed fine-tuning) schedule, reference §3 and Tab. 11: every module trains; AdamW lr 4e-5,
# betas (0.9, 0.999), weight decay 0.05 on every parameter (no norm/bias exclusion), the dual encoders
# (SigLIP2 `vision_encoder`, SAM `backbone`) at lr x 0.1 = 4e-6, gradient clipping 1.0, 1 epoch: linear
# warm-up from a factor of 1e-5 over the first 3 % of the iterations, then cosine annealing to 0 (epochs
# converted to iterations). Global batch 64 = 4 images/GPU x 16 GPUs, no accumulation. DeepSpeed ZeRO-2
# in bf16, as the reference (`--deepspeed deepspeed_zero2`); see xsam_align_pretrain_1e.py for how
# clipping and accumulation map onto DeepSpeed.
max_epochs = 1
warmup_ratio = 0.03
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    bf16=dict(enabled=True),
    zero_optimization=dict(
        stage=2,
        allgather_partitions=True,
        allgather_bucket_size=1e9,
        reduce_scatter=True,
        reduce_bucket_size=1e9,
        overlap_comm=True,
        contiguous_gradients=True),
    gradient_clipping=1.0,
    gradient_accumulation_steps=1,
    inputs_to_half=['inputs', 'encoder_inputs'])  # the preprocessor's float32 images -> bf16
optim_wrapper = dict(
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=4e-5, betas=(0.9, 0.999), weight_decay=0.05, eps=1e-8),
    # custom keys match parameter names by substring: `backbone.*` (SAM-L) and `vision_encoder.*` (SigLIP2)
    paramwise_cfg=dict(custom_keys={
        'vision_encoder': dict(lr_mult=0.1),
        'backbone': dict(lr_mult=0.1)
    }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=True, begin=0, end=warmup_ratio * max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# the paper's global batch (16 GPUs x 4 images, no accumulation)
auto_scale_lr = dict(enable=False, base_batch_size=64)
