# Visual grounded segmentation, COCO-VGD val with scribble prompts; see vgd_point.py.
_base_ = ['./vgd_point.py']
test_split = _base_.coco_vgd_val_scribble
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(prefix=test_split.source_name)
