# Tab. 9 ablation: a single-scale connector (SAM's last block at stride 16 only); the decoder sees one level.
_base_ = ['../xsam/seg_finetune.py']
model = dict(
    backbone=dict(out_indices=(24, )),
    neck=dict(_delete_=True, type='XSAMSingleScaleConnector', in_channels=1024, hidden_channels=512,
              out_channels=1024, scale=1.0),
    panoptic_head=dict(
        in_channels=[1024], strides=[16], num_transformer_feat_level=1,
        pixel_decoder=dict(num_outs=1, strides=[16], encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=1))))))
