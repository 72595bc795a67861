# Reasoning segmentation, LISA ReasonSeg test (all queries; per-split long / short numbers are reported too).
_base_ = ['./reasonseg_val.py']
test_split = _base_.lisa_reasonseg_test
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(prefix=test_split.source_name)
