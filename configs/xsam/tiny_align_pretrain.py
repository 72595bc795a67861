# X-SAM stage 2 (alignment pre-training) at tiny size on the synthetic shapes captions (CPU, minutes):
#   python tools/train.py configs/xsam/tiny_seg_finetune.py     # stage 1 first: its SAM encoder is loaded
#   python tools/train.py configs/xsam/tiny_align_pretrain.py
# Same modules and recipe as align_pretrain.py with small numbers: the decoder is dropped, the LLM,
# SigLIP and SAM are frozen and only the two projectors train (AdamW lr 1e-3, wd 0, clip 1.0, 3 % linear
# warm-up then cosine to 0; SigLIP input padded to a square).
_base_ = [
    '../_base_/models/xsam_tiny.py',
    '../_base_/datasets/shapes_llava_pretrain.py',
    '../_base_/default_runtime.py',
]
stage1_checkpoint = 'last://work_dirs/tiny_seg_finetune'

model = dict(
    data_preprocessor=dict(pad_to_square=True),
    llm=dict(freeze=True),
    vision_encoder=dict(frozen=True),
    backbone=dict(frozen=True, out_indices=(5, )),  # only block -2, for the seg projector
    neck=None,
    panoptic_head=None,
    panoptic_fusion_head=None,
    llm_projector=None,
    region_sampler=None,
    neck_in_indices=(),
    seg_projector_in_index=0,
    init_cfg=[dict(type='Pretrained', checkpoint=stage1_checkpoint)])

max_iters = 400
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.03 * max_iters)),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=int(0.03 * max_iters), end=max_iters, eta_min=0.0),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
