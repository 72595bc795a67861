# Interactive segmentation of the tiny X-SAM (stage 3) on the synthetic val split with point prompts: one
# sample per instance, one <region>; mIoU (= gIoU) and cIoU. The mask is chosen among the confident queries
# by agreement with the prompt (model.test_cfg.interactive_select: 'box_iou' as the official code, or
# 'mask_iou'). tiny_shapes_intseg_{scribble,box,mask}.py change the prompt type.
#   python tools/test.py configs/xsam/eval/tiny_shapes_intseg_point.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
prompt_type = 'point'
test_dataloader = dict(
    dataset=dict(_delete_=True, type='XSAMInteractiveSegDataset', data_root='data/shapes/',
                 ann_file='vgd/vgd_val.json', data_prefix=dict(img='images/'), prompt_type=prompt_type,
                 test_mode=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(type='ReferSegMetric', prefix='interactive_' + prompt_type)
model = dict(test_cfg=dict(interactive_select='box_iou', interactive_score_thr=0.5))
