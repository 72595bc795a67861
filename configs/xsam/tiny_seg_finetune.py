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
    '../_base_/models/xsam_segmentor_sam_l.py',
    '../_base_/datasets/shapes_panoptic.py',
    '../_base_/schedules/xsam_seg_finetune_36e.py',
    '../_base_/default_runtime.py',
]
data_root = 'data/shapes/'
image_size = 128
num_things_classes = 6
num_stuff_classes = 5
num_classes = num_things_classes + num_stuff_classes
sam_dims = 96
decoder_dims = 64

model = dict(
    data_preprocessor=dict(pad_size_divisor=image_size),
    backbone=dict(
        _delete_=True,
        type='SAMViTBackbone',
        config=dict(hidden_size=sam_dims, num_hidden_layers=6, num_attention_heads=4, mlp_dim=4 * sam_dims,
                    image_size=image_size, patch_size=8, window_size=4, global_attn_indexes=[1, 3, 5],
                    output_channels=32, initializer_range=0.02),
        attn_implementation='eager',
        out_indices=(2, 4, 6)),  # 1/2, 3/4 and all of the blocks, as 12/18/24 of SAM-L's 24
    neck=dict(in_channels=sam_dims, hidden_channels=32, out_channels=[32, 64, 128]),
    panoptic_head=dict(
        in_channels=[32, 64, 128],
        strides=[4, 8, 16],  # patch 8 at 128 px: the connector gives strides 4/8/16
        feat_channels=decoder_dims,
        out_channels=decoder_dims,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=20,
        pixel_decoder=dict(
            strides=[4, 8, 16],
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(
                num_layers=2,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=decoder_dims, num_heads=4),
                    ffn_cfg=dict(embed_dims=decoder_dims, feedforward_channels=128))),
            positional_encoding=dict(num_feats=decoder_dims // 2)),
        positional_encoding=dict(num_feats=decoder_dims // 2),
        transformer_decoder=dict(
            num_layers=3,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=decoder_dims, num_heads=4),
                cross_attn_cfg=dict(embed_dims=decoder_dims, num_heads=4),
                ffn_cfg=dict(embed_dims=decoder_dims, feedforward_channels=256))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    train_cfg=dict(num_points=1024),
    test_cfg=dict(max_per_image=None))

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
