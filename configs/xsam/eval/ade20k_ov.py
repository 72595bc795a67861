# Open-vocabulary segmentation, ADE20K val (150 classes; Tab. 2 / 12; no ADE20K training): PQ, instance AP
# (ade20k_instance_val.json, made by the official prepare_ade20k scripts) and semantic mIoU, every class
# prompted by its first synonym; same protocol and post-processing as coco_panoptic.py.
_base_ = ['./coco_panoptic.py', '../../_base_/datasets/xsam/ade20k_panoptic.py']
test_split = _base_.ade20k_panoptic_val
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=[
    dict(type='LoadImageFromFile'), _base_.resize, dict(type='LoadPanopticSegments'),
    dict(type='SemanticSegTarget'), _base_.pack]))
test_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=test_split.data_root + test_split.ann_file,
         seg_prefix=test_split.data_root + test_split.data_prefix.seg),
    dict(type='CocoMetric', ann_file=test_split.data_root + 'ade20k_instance_val.json', metric=['segm']),
    dict(type='XSAMSemSegMetric'),
]
# ADE20K panoptic: 100 thing and 50 stuff classes (the post-processing's label space)
model = dict(panoptic_head=dict(num_things_classes=100, num_stuff_classes=50),
             panoptic_fusion_head=dict(num_things_classes=100, num_stuff_classes=50))
