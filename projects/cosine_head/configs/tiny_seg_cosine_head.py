# The tiny X-SAM segmentor with the plugin's cosine classifier: one registry swap on top of mmxsam's config.
#   python tools/train.py projects/cosine_head/configs/tiny_seg_cosine_head.py
_base_ = ['../../../configs/xsam/tiny_seg_finetune.py']
custom_imports = dict(imports=['mmxsam', 'projects.cosine_head.cosine_head'], allow_failed_imports=False)
model = dict(panoptic_head=dict(type='CosineMask2FormerHead', cosine_scale=10.0))
