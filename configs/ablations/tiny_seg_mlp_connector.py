# seg_mlp_connector.py at tiny size on the synthetic data.
_base_ = ['../xsam/tiny_seg_finetune.py']
model = dict(neck=dict(_delete_=True, type='XSAMMLPConnector', in_channels=96, out_channels=[32, 64, 128],
                       scales=[2.0, 1.0, 0.5], channel_order='xsam'))
