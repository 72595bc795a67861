# Tab. 9 ablation: mmdet's Swin-B (ImageNet-22k) instead of SAM; its stride-8/16/32 stages replace the
# connector's maps (a ChannelMapper brings each to 512 channels); the decoder is unchanged.
_base_ = ['../xsam/seg_finetune.py']
model = dict(
    backbone=dict(
        _delete_=True, type='SwinTransformer', pretrain_img_size=384, embed_dims=128, depths=[2, 2, 18, 2],
        num_heads=[4, 8, 16, 32], window_size=12, drop_path_rate=0.3, out_indices=(1, 2, 3), with_cp=False,
        convert_weights=True,
        init_cfg=dict(type='Pretrained', checkpoint='https://github.com/SwinTransformer/storage/releases/download/'
                      'v1.0.0/swin_base_patch4_window12_384_22k.pth')),
    neck=dict(_delete_=True, type='ChannelMapper', in_channels=[256, 512, 1024], kernel_size=1,
              out_channels=512, num_outs=3),
    panoptic_head=dict(in_channels=[512, 512, 512]))
