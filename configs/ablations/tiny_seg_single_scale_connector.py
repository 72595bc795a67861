# seg_single_scale_connector.py at tiny size on the synthetic data.
_base_ = ['../xsam/tiny_seg_finetune.py']
model = dict(
    backbone=dict(out_indices=(6, )),
    neck=dict(_delete_=True, type='XSAMSingleScaleConnector', in_channels=96, hidden_channels=32, out_channels=64,
              scale=1.0),
    panoptic_head=dict(
        in_channels=[64], strides=[8], num_transformer_feat_level=1,
        pixel_decoder=dict(num_outs=1, strides=[8], encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=1))))))
