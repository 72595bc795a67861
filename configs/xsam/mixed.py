# X-SAM stage 3: mixed fine-tuning on the 11-source mix, 16 GPUs x 4 images, 1 epoch (reference §3). Every
# module trains (SigLIP2 and SAM at lr x 0.1); each global batch comes from one source.
#   tools/dist_train.sh configs/xsam/mixed.py 16
# Initialisation (reference §6): the stage-1 checkpoint (SAM, connector, decoder), then the stage-2 one (the
# dual projectors), in that order; the LLM and SigLIP2 come from their hub weights (name_or_path).
_base_ = [
    '../_base_/models/xsam_phi3_siglip2_sam_l.py',
    '../_base_/datasets/xsam_mixed.py',
    '../_base_/schedules/xsam_mixed_1e.py',
    '../_base_/default_runtime.py',
]
stage1_checkpoint = 'work_dirs/seg_finetune/epoch_36.pth'  # configs/xsam/seg_finetune.py
stage2_checkpoint = 'work_dirs/align_pretrain/epoch_1.pth'  # configs/xsam/align_pretrain.py

# Keys match by name (XSAM keeps the stage-1 names backbone/neck/panoptic_head); mmengine's Pretrained init
# loads with strict=False, so the stage-1 linear class head, absent from the LLM-conditioned head, is skipped.
model = dict(init_cfg=[
    dict(type='Pretrained', checkpoint=stage1_checkpoint),
    dict(type='Pretrained', checkpoint=stage2_checkpoint),
])

# checkpoints every 2000 iterations, 2 kept (reference); under DeepSpeed each is a folder with the optimizer
# states, resumable with `--resume`
default_hooks = dict(
    checkpoint=dict(by_epoch=False, interval=2000, max_keep_ckpts=2),
    logger=dict(interval=10))
# Saves the SourceGroupedSampler's position in checkpoints so that a resume continues the epoch where it
# stopped (it works with EpochBasedTrainLoop; ResumableIterBasedTrainLoop is for iteration-based loops, so
# the loop stays epoch-based). Caveat: mmengine 0.10.7's DeepSpeedStrategy does not call the
# before_save_checkpoint / after_load_checkpoint hooks, so under DeepSpeed the hook is inactive and a
# mid-epoch resume restarts the epoch (mmengine's behaviour); it takes effect with the plain Runner.
# GlobalBatchCheckHook stops at the start when an optimizer step is not one same-source global batch.
custom_hooks = [dict(type='SamplerStateHook'), dict(type='GlobalBatchCheckHook')]
# The recipe's same-source global batch. On 16 GPUs x 4 it is one step; on 8 GPUs the sampler spreads each
# group over 2 steps and GlobalBatchCheckHook asks for strategy.gradient_accumulation_steps=2; a process
# count that does not divide 64 / 4 = 16 is refused when the sampler is built, naming the numbers.
train_dataloader = dict(sampler=dict(global_batch_size=64))
# Only for the plain Runner (DDP; e.g. `runner_type` removed): image-conversation batches leave the decoder
# without gradients. DeepSpeed ZeRO-2 (the default here) handles unused parameters itself.
find_unused_parameters = True
