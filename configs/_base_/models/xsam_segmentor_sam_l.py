# X-SAM stage-1 segmentor (reference §1.1-1.3): SAM ViT-L encoder -> pixel-shuffle connector ->
# Mask2Former-style decoder with a linear 133 + 1 class head (COCO panoptic), mask features at stride 8.
num_things_classes = 80
num_stuff_classes = 53
num_classes = num_things_classes + num_stuff_classes
decoder_dims = 256

model = dict(
    type='XSAMSegmentor',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # SAM's ImageNet normalisation; every image (<= 1024 after the pipeline) is padded bottom/right
        # to exactly 1024x1024, the encoder's fixed 64x64 token grid
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=1024,
        pad_mask=True,
        mask_pad_value=0,
        pad_seg=True,
        seg_pad_value=255),
    backbone=dict(
        type='SAMViTBackbone',
        name_or_path='facebook/sam-vit-large',
        attn_implementation='eager',
        # hidden states of blocks 12, 18, 24 feed the connector (reference §1.1)
        out_indices=(12, 18, 24),
        with_cp=False),
    neck=dict(
        type='XSAMSegConnector',
        in_channels=1024,
        hidden_channels=512,
        out_channels=[512, 1024, 2048],
        scales=[2.0, 1.0, 0.5],
        # the official channel order, so released checkpoints load without permutation
        channel_order='xsam'),
    panoptic_head=dict(
        type='XSAMMask2FormerHead',
        cls_mode='linear',
        in_channels=[512, 1024, 2048],
        strides=[8, 16, 32],
        feat_channels=decoder_dims,
        out_channels=decoder_dims,
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        num_queries=200,
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type='XSAMPixelDecoder',
            num_outs=3,
            norm_cfg=dict(type='GN', num_groups=32),
            act_cfg=dict(type='ReLU'),
            encoder=dict(
                num_layers=6,
                layer_cfg=dict(
                    self_attn_cfg=dict(embed_dims=decoder_dims, num_heads=8, num_levels=3, num_points=4,
                                       dropout=0.0, batch_first=True),
                    ffn_cfg=dict(embed_dims=decoder_dims, feedforward_channels=1024, num_fcs=2, ffn_drop=0.0,
                                 act_cfg=dict(type='ReLU', inplace=True)))),
            positional_encoding=dict(num_feats=decoder_dims // 2, normalize=True)),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=decoder_dims // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=9,  # 9 masked-attention layers -> 10 predictions (deep supervision)
            layer_cfg=dict(
                self_attn_cfg=dict(embed_dims=decoder_dims, num_heads=8, dropout=0.0, batch_first=True),
                cross_attn_cfg=dict(embed_dims=decoder_dims, num_heads=8, dropout=0.0, batch_first=True),
                ffn_cfg=dict(embed_dims=decoder_dims, feedforward_channels=2048, num_fcs=2, ffn_drop=0.0,
                             act_cfg=dict(type='ReLU', inplace=True))),
            init_cfg=None),
        loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=2.0, reduction='mean',
                      class_weight=[1.0] * num_classes + [0.1]),
        loss_mask=dict(type='CrossEntropyLoss', use_sigmoid=True, reduction='mean', loss_weight=5.0),
        loss_dice=dict(type='DiceLoss', use_sigmoid=True, activate=True, reduction='mean', naive_dice=True, eps=1.0,
                       loss_weight=5.0)),
    panoptic_fusion_head=dict(
        type='XSAMFusionHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=num_stuff_classes,
        loss_panoptic=None,
        init_cfg=None),
    train_cfg=dict(
        num_points=12544,
        oversample_ratio=3.0,
        importance_sample_ratio=0.75,
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='CrossEntropyLossCost', weight=5.0, use_sigmoid=True),
                dict(type='DiceCost', weight=5.0, pred_act=True, eps=1.0)
            ]),
        sampler=dict(type='MaskPseudoSampler')),
    # X-SAM's post-processing (reference §5; XSAMFusionHead documents each key, all default to mmdet's)
    test_cfg=dict(
        panoptic_on=True,
        semantic_on=True,
        instance_on=True,
        object_mask_thr=0.5,  # the stage-1 eval value (stage 3 uses 0.0)
        iou_thr=0.8,
        mask_thr=0.5,
        filter_low_score=False,
        fg_only_label=True,
        score_weighted_area=True,
        strict_iou_thr=True,
        max_per_image=None,  # top-Q (query, class) pairs
        # instance AP is over thing classes (the COCO instances JSON; Tab. 16's AP^Th)
        instance_things_only=True,
        instance_score_thr=0.0),
    init_cfg=None)
