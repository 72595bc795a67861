# Visual grounded segmentation, COCO-VGD val with point prompts (Tab. 2 / 17): COCOeval segm AP / AP50, the
# prompt slots mapped back to COCO category ids, prompts from the sample's own image (the official VGD eval
# is single-image too). vgd_{scribble,box,mask}.py change the prompt type.
_base_ = ['./refcoco_val.py']
test_split = _base_.coco_vgd_val_point
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(_delete_=True, type='VGDMetric', ann_file=test_split.data_root + test_split.ann_file,
                      prefix=test_split.source_name)
