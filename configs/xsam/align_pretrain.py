# X-SAM stage 2: alignment pre-training on LLaVA-558K, 16 GPUs x 4 images x accumulation 4, 1 epoch
# (reference §3). Only the dual projectors train: the LLM (Phi-3-mini), the image encoder (SigLIP2) and the
# segmentation encoder (SAM-L, from the stage-1 checkpoint) are frozen, and the decoder is dropped.
#   tools/dist_train.sh configs/xsam/align_pretrain.py 16
# Needs the stage-1 checkpoint (tools/dist_train.sh configs/xsam/seg_finetune.py 16). Writes
# work_dirs/align_pretrain/epoch_1.pth: the projectors' weights only (exclude_frozen_parameters in the
# schedule, save_optimizer=False below: a plain state-dict file that configs/xsam/mixed.py loads; a DeepSpeed
# checkpoint with optimizer states would be a folder that `Pretrained` cannot read).
_base_ = [
    '../_base_/models/xsam_phi3_siglip2_sam_l.py',
    '../_base_/datasets/llava_pretrain.py',
    '../_base_/schedules/xsam_align_pretrain_1e.py',
    '../_base_/default_runtime.py',
]
# mmengine's name for the last stage-1 checkpoint (36 epochs, saved every 2)
stage1_checkpoint = 'work_dirs/seg_finetune/epoch_36.pth'

model = dict(
    # stage 2 pads the image-encoder input to a square (reference §1.4)
    data_preprocessor=dict(pad_to_square=True),
    llm=dict(freeze=True),
    vision_encoder=dict(frozen=True),
    # only SAM block 23 (index -2, the seg projector's input) is needed; later blocks never run
    backbone=dict(out_indices=(23, ), frozen=True),
    seg_projector_in_index=0,
    neck_in_indices=(),
    # no decoder in this stage (the reference's drop_decoder=True): no connector, head, post-processing,
    # LLM-to-decoder projector or region sampler
    neck=None,
    panoptic_head=None,
    panoptic_fusion_head=None,
    llm_projector=None,
    region_sampler=None,
    frozen_modules=('llm', 'vision_encoder', 'backbone'),
    # SAM weights from stage 1; keys match by name (backbone.*; the stage-1 neck/panoptic_head keys are
    # unused here). mmengine's Pretrained init loads with strict=False.
    init_cfg=[dict(type='Pretrained', checkpoint=stage1_checkpoint)])

default_hooks = dict(
    checkpoint=dict(by_epoch=True, interval=1, save_optimizer=False),
    logger=dict(interval=10))
