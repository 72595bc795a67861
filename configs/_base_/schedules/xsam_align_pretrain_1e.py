# X-SAM stage 2 (alignment pre-training) schedule, reference §3 and Tab. 11: AdamW lr 1e-3, betas
# (0.9, 0.999), no weight decay, gradient clipping 1.0, 1 epoch: linear warm-up from a factor of 1e-5 over
# the first 3 % of the iterations, then cosine annealing to 0 (epochs converted to iterations). Global
# batch 256 = 4 images/GPU x 16 GPUs x gradient accumulation 4. DeepSpeed ZeRO-2 in bf16, as the reference
# (`--deepspeed deepspeed_zero2`).
#
# Under DeepSpeed (mmengine 0.10.7): the optimizer wrapper is `DeepSpeedOptimWrapper`, which takes no
# `clip_grad`/`accumulative_counts`; clipping and accumulation are DeepSpeed's `gradient_clipping` and
# `gradient_accumulation_steps` (the engine scales the loss by 1/4 and steps the optimizer every 4th
# micro-batch). The parameter schedulers still step once per micro-batch, i.e. over the same iteration
# axis as the data, so warm-up and cosine keep their shape in optimizer steps. `train_micro_batch_size_per_gpu`
# is filled in by FlexibleRunner from the dataloader's batch size.
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
    gradient_accumulation_steps=4,
    inputs_to_half=['inputs', 'encoder_inputs'],  # the preprocessor's float32 images -> bf16
    # only the two projectors train: checkpoints hold only their weights (the reference's
    # `exclude_frozen_parameters=True` pytorch_model.bin), which stage 3 loads on top of stage 1
    exclude_frozen_parameters=True)
optim_wrapper = dict(
    type='DeepSpeedOptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0, eps=1e-8))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=True, begin=0, end=warmup_ratio * max_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
# The paper's global batch is 256 = 64 images per micro-step x accumulation 4. mmengine's auto_scale_lr
# compares world_size x per-GPU batch (accumulation not counted) with base_batch_size, so the paper's
# setting (16 GPUs x 4) corresponds to 64 here; a base of 256 would scale the lr by 1/4 on the paper's
# own hardware.
auto_scale_lr = dict(enable=False, base_batch_size=64)
