# Generic segmentation, COCO panoptic val2017 (Tab. 2 / 12): PQ (CocoPanopticMetric), instance mask AP over
# the thing classes (CocoMetric segm) and semantic mIoU (XSAMSemSegMetric: a confusion matrix, true pixel
# accuracy), all 133 categories listed in id order (fixed prompt), teacher forcing; X-SAM's stage-3
# post-processing (threshold 0.0, overlap 0.8; model.test_cfg).
#   tools/dist_test.sh configs/xsam/eval/coco_panoptic.py CKPT 8
_base_ = ['./refcoco_val.py']
test_split = _base_.coco_panoptic_val
test_dataloader = dict(dataset=dict(test_split, _delete_=True, pipeline=[
    dict(type='LoadImageFromFile'), _base_.resize, dict(type='LoadPanopticSegments'),
    dict(type='SemanticSegTarget'), _base_.pack]))
test_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=test_split.data_root + test_split.ann_file,
         seg_prefix=test_split.data_root + test_split.data_prefix.seg),
    dict(type='CocoMetric', ann_file=test_split.data_root + 'annotations/instances_val2017.json', metric=['segm']),
    dict(type='XSAMSemSegMetric'),
]
