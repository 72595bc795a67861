# Interactive segmentation, COCO-Interactive val with point prompts (Tab. 2 / 17): mIoU (= gIoU) and cIoU,
# one sample per instance, one <region>. The mask is chosen among the queries scoring >= 0.5 (or the best) by
# agreement with the prompt: model.test_cfg.interactive_select='box_iou' is the official rule (box IoU of
# mask and prompt); 'mask_iou' is offered as an alternative. interactive_{scribble,box,mask}.py change the
# prompt type.
_base_ = ['./refcoco_val.py']
test_split = _base_.coco_interactive_val_point
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(prefix=test_split.source_name)
model = dict(test_cfg=dict(interactive_select='box_iou', interactive_score_thr=0.5))
