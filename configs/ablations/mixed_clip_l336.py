# Tab. 19 ablation: CLIP ViT-L/14-336 as the image encoder (width 1024, 24 x 24 = 576 patch tokens, the class
# token dropped; penultimate layer as LLaVA), 336 px input with CLIP's mean/std and bicubic resize.
#   tools/dist_train.sh configs/ablations/mixed_clip_l336.py 16
# The text budget stays 2319 tokens (the data are those of configs/xsam/mixed.py; 576 + 1024 + 2319 < 4096).
# Needs its own stage 2 (configs/xsam/align_pretrain.py with the same model changes and
# --work-dir work_dirs/align_pretrain_clip_l336): the SigLIP2 run's vision projector expects 1152 channels.
_base_ = ['../xsam/mixed.py']
model = dict(
    data_preprocessor=dict(encoder_size=336, encoder_interpolation='bicubic',
                           encoder_mean=(122.770938, 116.7460125, 104.09373615),  # CLIP's, x 255
                           encoder_std=(68.5005327, 66.6321579, 70.3231125)),
    vision_encoder=dict(name_or_path='openai/clip-vit-large-patch14-336', select_feature='patch'),
    vision_projector=dict(in_channels=1024),
    init_cfg=[dict(type='Pretrained', checkpoint=_base_.stage1_checkpoint),
              dict(type='Pretrained', checkpoint='work_dirs/align_pretrain_clip_l336/epoch_1.pth')])
