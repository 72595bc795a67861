# Grounded conversation generation of the tiny X-SAM (stage 3) on the synthetic GCG val split, in generation
# mode (no answer is given): mask AP50 (class-agnostic) and mIoU (GLaMM's greedy matching), METEOR and CIDEr
# of the caption (pycocoevalcap; needs Java). Each mask keeps its phrase (the official evaluator drops it).
#   python tools/test.py configs/xsam/eval/tiny_shapes_gcgseg.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
gt_root = 'data/shapes/gcg/val_test/'
test_dataloader = dict(
    dataset=dict(_delete_=True, type='XSAMGCGSegDataset', data_root='data/shapes/', ann_format='val_test',
                 ann_file='gcg/val_test/val_gcg_coco_mask_gt.json',
                 caption_ann_file='gcg/val_test/val_gcg_coco_caption_gt.json', data_prefix=dict(img_path='images/'),
                 test_mode=True, pipeline=[dict(type='LoadImageFromFile'),
                                           dict(type='XSAMResize', scale=_base_.img_scale, keep_ratio=True),
                                           _base_.pack]))
test_evaluator = dict(type='GCGMetric', mask_ann_file=gt_root + 'val_gcg_coco_mask_gt.json',
                      caption_ann_file=gt_root + 'val_gcg_coco_caption_gt.json')
