# X-SAM stage 1: segmentor fine-tune on COCO panoptic, 16 GPUs x 4 images, 36 epochs (reference §3).
#   tools/dist_train.sh configs/xsam/seg_finetune.py 16
_base_ = [
    '../_base_/models/xsam_segmentor_sam_l.py',
    '../_base_/datasets/coco_panoptic_lsj_1024.py',
    '../_base_/schedules/xsam_seg_finetune_36e.py',
    '../_base_/default_runtime.py',
]
default_hooks = dict(checkpoint=dict(interval=2, max_keep_ckpts=2, save_best='auto'), logger=dict(interval=10))
