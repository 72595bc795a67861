# Cross-image VGD, COCO-VGD val with mask prompts; see vgd_cross_point.py.
_base_ = ['./vgd_mask.py']
test_dataloader = dict(batch_size=4)
test_evaluator = dict(prefix='coco_vgd_cross_val_mask')
model = dict(test_cfg=dict(vgd_prompt_source='cross_image'))
