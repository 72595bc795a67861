# X-SAM stage 3 (mixed fine-tuning) at tiny size on every task of the synthetic shapes data (CPU):
#   python tools/train.py configs/xsam/tiny_seg_finetune.py    # stage 1
#   python tools/train.py configs/xsam/tiny_align_pretrain.py  # stage 2
#   python tools/train.py configs/xsam/tiny_mixed.py           # stage 3: loads both checkpoints
# Same modules and recipe as mixed.py with small numbers: everything trains, SigLIP and SAM at lr x 0.1,
# AdamW wd 0.05, clip 1.0, 3 % linear warm-up then cosine to 0, the sources balanced (t = 0.1) and every
# batch from one source. One deliberate difference: the tiny LLM starts from random weights (no
# pretrained LLM exists at this size), so the learning rate is 1e-3 instead of 4e-5.
_base_ = [
    '../_base_/models/xsam_tiny.py',
    '../_base_/datasets/shapes_mixed.py',
    '../_base_/default_runtime.py',
]
stage1_checkpoint = 'last://work_dirs/tiny_seg_finetune'
stage2_checkpoint = 'last://work_dirs/tiny_align_pretrain'
model = dict(init_cfg=[dict(type='Pretrained', checkpoint=stage1_checkpoint),
                       dict(type='Pretrained', checkpoint=stage2_checkpoint)])

max_iters = 1500
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=1.0, norm_type=2),
    paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=0.1), 'vision_encoder': dict(lr_mult=0.1)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.03 * max_iters)),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=int(0.03 * max_iters), end=max_iters, eta_min=0.0),
]
# referring cIoU / gIoU on the val expressions at the end of training
train_cfg = dict(type='ResumableIterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# exact mid-run resume (same losses as an uninterrupted run, tests/test_engine/test_exact_resume.py): the
# sampler position and every rank's random generators are saved in the checkpoints, and each sample draws
# its prompts from a seed given by its place in the epoch (not from the DataLoader worker's history)
custom_hooks = [dict(type='SamplerStateHook'), dict(type='RNGStateHook'), dict(type='GlobalBatchCheckHook')]
train_dataloader = dict(sampler=dict(sample_seeds=True))
# multi-process (tools/dist_train.sh, DDP): image-conversation batches leave the decoder without gradients
find_unused_parameters = True
randomness = dict(seed=1024)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2))
# max_keep_ckpts >= 2: mmengine deletes the oldest checkpoint *before* writing the new one, so with 1 a job
# killed while saving would be left without any checkpoint to resume from
log_processor = dict(by_epoch=False)
