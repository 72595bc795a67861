# Tab. 9 ablation: an MLP segmentation connector instead of the convolutional one.
_base_ = ['../xsam/seg_finetune.py']
model = dict(neck=dict(_delete_=True, type='XSAMMLPConnector', in_channels=1024, out_channels=[512, 1024, 2048],
                       scales=[2.0, 1.0, 0.5], channel_order='xsam'))
