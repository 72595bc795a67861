# mmdet's stock Mask2Former, shrunk to CPU size, on the bundled synthetic shapes panoptic data.
# A segmentation baseline for X-SAM's stage 1 on the same data, and the smallest end-to-end
# train/resume/test check of the toolchain:
#   python tools/dataset_converters/generate_shapes.py data/shapes
#   python tools/train.py configs/baselines/mask2former_r18_tiny_shapes_panoptic.py
_base_ = 'mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py'
custom_imports = dict(imports=['mmxsam'], allow_failed_imports=False)

image_size = (128, 128)
num_things_classes = 6
num_stuff_classes = 5
num_classes = num_things_classes + num_stuff_classes
embed_dims = 32

model = dict(
    data_preprocessor=dict(batch_augments=[
        dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0, pad_mask=True, mask_pad_value=0,
             pad_seg=True, seg_pad_value=255)
    ]),
    backbone=dict(depth=18, norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False, init_cfg=None),
    panoptic_head=dict(
        in_channels=[64, 128, 256, 512],
        feat_channels=embed_dims,
        out_channels=embed_dims,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=12,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(
                num_layers=1,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=embed_dims, num_heads=2),
                    ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=64))),
            positional_encoding=dict(num_feats=embed_dims // 2)),
        positional_encoding=dict(num_feats=embed_dims // 2),
        transformer_decoder=dict(
            num_layers=2,
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=embed_dims, num_heads=2),
                cross_attn_cfg=dict(embed_dims=embed_dims, num_heads=2),
                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=64))),
        loss_cls=dict(class_weight=[1.0] * num_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=num_stuff_classes),
    train_cfg=dict(num_points=256),
    test_cfg=dict(max_per_image=12))

# ----------------------------------------------------------------------------------------------------
# data: the synthetic shapes in COCO panoptic format (same paths as configs/_base_/datasets/shapes_panoptic.py)
data_root = 'data/shapes/'
metainfo = dict(
    classes=('circle', 'square', 'triangle', 'star', 'hexagon', 'cross', 'sky-other-merged', 'grass-merged',
             'sand', 'water-other', 'wall-other-merged'),
    thing_classes=('circle', 'square', 'triangle', 'star', 'hexagon', 'cross'),
    stuff_classes=('sky-other-merged', 'grass-merged', 'sand', 'water-other', 'wall-other-merged'))
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadPanopticAnnotations', with_bbox=True, with_mask=True, with_seg=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadPanopticAnnotations'),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_train.json',
        data_prefix=dict(img='images/', seg='annotations/panoptic_train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='images/', seg='annotations/panoptic_val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json', metric=['segm']),
]
test_evaluator = val_evaluator

# ----------------------------------------------------------------------------------------------------
# schedule: a short CPU run
max_iters = 2000
param_scheduler = dict(end=max_iters, milestones=[1600, 1800])
train_cfg = dict(max_iters=max_iters, val_interval=500, dynamic_intervals=None)
optim_wrapper = dict(optimizer=dict(lr=4e-4), clip_grad=dict(max_norm=1.0))
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=20),
    checkpoint=dict(interval=500, max_keep_ckpts=2))
log_processor = dict(window_size=20)
auto_scale_lr = dict(enable=False, base_batch_size=2)
randomness = dict(seed=1024)
