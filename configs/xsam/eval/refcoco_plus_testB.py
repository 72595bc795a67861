# Referring segmentation, refcoco+_testB (Tab. 2 / 13); protocol in refcoco_val.py.
_base_ = ['./refcoco_val.py']
test_split = _base_.refcoco_plus_testB
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(prefix=test_split.source_name)
