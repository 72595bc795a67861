# Referring segmentation of the tiny X-SAM (stage 3) on the synthetic val expressions: cIoU / gIoU, one
# sample per expression, the fixed first template, teacher forcing (`--cfg-options
# model.test_cfg.mode=generation` lets the model write its answer and <SEG> itself).
#   python tools/test.py configs/xsam/eval/tiny_shapes_refseg.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
test_dataloader = dict(dataset=dict(split='val'))
test_evaluator = dict(type='ReferSegMetric', prefix='refer')
