# X-SAM stage 1 (segmentor fine-tune) schedule, reference §3: AdamW lr 1e-4, betas (0.9, 0.999), weight
# decay 0.05 on every parameter (no norm/bias exclusion), SAM encoder lr x0.1, gradient clipping 0.01,
# 36 epochs with the lr divided by 10 at epochs 24 and 30, linear warm-up over the first 3 % of iterations
# from a factor of 1e-5. 4 images/GPU x 16 GPUs = 64 images per step (auto_scale_lr base).
max_epochs = 36
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05, eps=1e-8),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1)}),
    clip_grad=dict(max_norm=0.01, norm_type=2))
# 118k COCO images / 64 per step = 1849 iterations per epoch; 3 % of 36 epochs is about 1 epoch
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=True, begin=0, end=1, convert_to_iter_based=True),
    dict(type='MultiStepLR', by_epoch=True, begin=0, end=max_epochs, milestones=[24, 30], gamma=0.1),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=4)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=64)
