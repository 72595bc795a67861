# seg_swin_b.py at tiny size on the synthetic data (a 4-stage Swin with 32-d embeddings, from scratch).
_base_ = ['../xsam/tiny_seg_finetune.py']
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', pretrain_img_size=128, embed_dims=32, depths=[2, 2, 2, 2],
        num_heads=[1, 2, 4, 8], window_size=4, out_indices=(1, 2, 3), init_cfg=None),
    neck=dict(_delete_=True, type='ChannelMapper', in_channels=[64, 128, 256], kernel_size=1, out_channels=64,
              num_outs=3),
    panoptic_head=dict(in_channels=[64, 64, 64], strides=[8, 16, 32], pixel_decoder=dict(strides=[8, 16, 32])))
