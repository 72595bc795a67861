# Visual grounded segmentation with mask prompts; see tiny_shapes_vgdseg_point.py.
_base_ = ['./tiny_shapes_vgdseg_point.py']
prompt_type = 'mask'
test_dataloader = dict(dataset=dict(prompt_type=prompt_type))
test_evaluator = dict(prefix='vgd_' + prompt_type)
