# X-SAM stage 3 with DeepSpeed ZeRO-3 (bf16): parameters, gradients and optimizer states partitioned over the
# processes, for GPUs that cannot hold the 4.6B parameters' ZeRO-2 share. Same recipe as mixed.py otherwise.
#   tools/dist_train.sh configs/xsam/mixed_zero3.py 16
# Checkpoints are DeepSpeed folders (iter_N.pth/); tools/model_converters/deepspeed_to_pth.py makes one .pth.
_base_ = './mixed.py'
strategy = dict(
    zero_optimization=dict(
        _delete_=True,
        stage=3,
        overlap_comm=True,
        contiguous_gradients=True,
        reduce_bucket_size=5e8,
        stage3_prefetch_bucket_size=5e8,
        stage3_param_persistence_threshold=1e6,
        stage3_max_live_parameters=1e9,
        stage3_max_reuse_distance=1e9,
        # lets mmengine write a consolidated 16-bit state dict (save_optimizer=False checkpoints)
        stage3_gather_16bit_weights_on_model_save=True))
# activation checkpointing everywhere (the LLM and SigLIP2 already checkpoint in mixed.py; SAM-L too here)
model = dict(backbone=dict(with_cp=True))
