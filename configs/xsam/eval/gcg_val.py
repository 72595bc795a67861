# Grounded conversation generation, GranD-f val (Tab. 2 / 15): generated answers (greedy, up to 512 tokens),
# mask AP50 (class-agnostic COCOeval) and mIoU (GLaMM's greedy one-to-one matching), METEOR and CIDEr of the
# caption (pycocoevalcap, Java); each mask keeps its phrase. gcg_test.py: the test split.
#   tools/dist_test.sh configs/xsam/eval/gcg_val.py CKPT 8
_base_ = ['./refcoco_val.py']
test_split = _base_.grandf_gcg_val
test_dataloader = dict(dataset=dict(test_split, _delete_=True,
                                    pipeline=[dict(type='LoadImageFromFile'), _base_.resize, _base_.pack]))
test_evaluator = dict(_delete_=True, type='GCGMetric', prefix='gcg_val',
                      mask_ann_file=test_split.data_root + test_split.ann_file,
                      caption_ann_file=test_split.data_root + test_split.caption_ann_file)
