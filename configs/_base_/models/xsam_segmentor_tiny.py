# X-SAM's stage-1 segmentor at tiny size (same modules as xsam_segmentor_sam_l.py, small numbers):
# a 6-block SAM ViT (96 wide, patch 8) at 128 px, a 32/64/128-channel connector, a 64-d decoder with 20
# queries and 3 layers; 6 thing + 5 stuff classes (the synthetic shapes data). The encoder is built from
# a config (initializer_range 0.02): no pretrained SAM exists at this size.
_base_ = ['./xsam_segmentor_sam_l.py']
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

