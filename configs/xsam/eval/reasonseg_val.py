# Reasoning segmentation, LISA ReasonSeg val (Tab. 2 / 14): gIoU and cIoU, overall and per query type
# (long = sentence queries, short = phrase queries), "ignore" regions excluded; protocol in refcoco_val.py.
_base_ = ['./refcoco_val.py']
test_split = _base_.lisa_reasonseg_val
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(prefix=test_split.source_name)
