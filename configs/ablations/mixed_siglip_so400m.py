# Tab. 19 ablation: SigLIP-so400m-patch14-384 (the first SigLIP) as the image encoder: same width (1152) and
# token count (27 x 27 = 729) as SigLIP2-so400m; its processor resizes bicubically (SigLIP2: bilinear).
#   tools/dist_train.sh configs/ablations/mixed_siglip_so400m.py 16
# Needs its own stage 2 (configs/xsam/align_pretrain.py with the same model changes and
# --work-dir work_dirs/align_pretrain_siglip_so400m): projectors aligned to SigLIP2 features do not transfer.
_base_ = ['../xsam/mixed.py']
model = dict(
    data_preprocessor=dict(encoder_interpolation='bicubic'),
    vision_encoder=dict(name_or_path='google/siglip-so400m-patch14-384'),
    init_cfg=[dict(type='Pretrained', checkpoint=_base_.stage1_checkpoint),
              dict(type='Pretrained', checkpoint='work_dirs/align_pretrain_siglip_so400m/epoch_1.pth')])
