# X-SAM stage 1 at tiny size on the bundled synthetic shapes data (CPU, minutes):
#   python tools/dataset_converters/generate_shapes.py data/shapes
#   python tools/train.py configs/xsam/tiny_seg_finetune.py
#   python tools/test.py configs/xsam/tiny_seg_finetune.py work_dirs/tiny_seg_finetune/iter_3000.pth
# Same modules and recipe as seg_finetune.py (AdamW, wd 0.05 on everything, clip 0.01, 3 % linear warm-up,
# lr / 10 at 2/3 and 5/6 of training, large-scale jitter with a center crop), with small numbers. Two
# deliberate differences, both because no pretrained SAM exists at this size: the encoder is built from a
# config (initializer_range 0.02) and trains at the full learning rate (lr_mult 1.0, not 0.1), and the
# learning rate is 4e-4 instead of 1e-4.
_base_ = [
    '../_base_/models/xsam_segmentor_tiny.py',
    '../_base_/datasets/shapes_panoptic.py',
    '../_base_/schedules/xsam_seg_finetune_36e.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/shapes/'
image_size = 128
# data: the synthetic shapes (COCO panoptic layout) with large-scale jitter at 128 px
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomResize', scale=(image_size, image_size), ratio_range=(0.5, 1.5), keep_ratio=True),
    dict(type='CenterCropDet', crop_size=(image_size, image_size), crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=2, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(num_workers=1)
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json', metric=['segm']),
    dict(type='SemSegMetric'),
]
test_evaluator = val_evaluator

# schedule: the stage-1 recipe in iterations
max_iters = 3000
optim_wrapper = dict(optimizer=dict(lr=4e-4), paramwise_cfg=dict(custom_keys={'backbone': dict(lr_mult=1.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-5, by_epoch=False, begin=0, end=int(0.03 * max_iters)),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[2000, 2500], gamma=0.1),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(by_epoch=False, interval=1000, max_keep_ckpts=1,
                                                               save_best=None))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=4)
