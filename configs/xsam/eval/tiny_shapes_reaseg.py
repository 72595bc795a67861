# Reasoning segmentation of the tiny X-SAM (stage 3) on the synthetic ReasonSeg-style val split: gIoU / cIoU
# overall and per query type (long = sentence, short = phrase), ignore regions excluded.
#   python tools/test.py configs/xsam/eval/tiny_shapes_reaseg.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
test_dataloader = dict(
    dataset=dict(_delete_=True, type='XSAMReasonSegDataset', data_root='data/shapes/',
                 data_prefix=dict(img='reason_seg/val'), test_mode=True,
                 pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(type='ReferSegMetric', prefix='reason')
