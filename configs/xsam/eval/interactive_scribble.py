# Interactive segmentation, COCO-Interactive val with scribble prompts; see interactive_point.py.
_base_ = ['./interactive_point.py']
test_split = _base_.coco_interactive_val_scribble
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(prefix=test_split.source_name)
