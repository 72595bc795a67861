# Referring segmentation, RefCOCO val (Tab. 2 / 13): cIoU and gIoU, one sample per expression, the fixed
# first prompt template, teacher forcing (the reference's protocol; `--cfg-options model.test_cfg.mode=
# generation` makes the model write its answer and <SEG>). Batch size 1 as the reference; results do not
# depend on it. The other referring splits inherit this file and change the data set.
#   tools/dist_test.sh configs/xsam/eval/refcoco_val.py CKPT 8
_base_ = ['../mixed.py']
test_split = _base_.refcoco_val
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(test_split, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(_delete_=True, type='ReferSegMetric', prefix=test_split.source_name)
