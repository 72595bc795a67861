# Interactive segmentation with scribble prompts; see tiny_shapes_intseg_point.py.
_base_ = ['./tiny_shapes_intseg_point.py']
prompt_type = 'scribble'
test_dataloader = dict(dataset=dict(prompt_type=prompt_type))
test_evaluator = dict(prefix='interactive_' + prompt_type)
