# Generic segmentation of the tiny X-SAM (stage 3) on the synthetic val split: panoptic PQ, instance mask AP
# (thing classes) and semantic mIoU, every category listed in id order (fixed prompt), teacher forcing.
#   python tools/test.py configs/xsam/eval/tiny_shapes_genseg.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
data_root = 'data/shapes/'
test_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=1,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='XSAMGenericSegDataset', data_root=data_root, ann_file='annotations/panoptic_val.json',
        data_prefix=dict(img='images/', seg='annotations/panoptic_val/'), test_mode=True,
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='XSAMResize', scale=_base_.img_scale, keep_ratio=True),
            dict(type='LoadPanopticSegments'),  # after the resize: targets at the original size
            dict(type='SemanticSegTarget'),
            _base_.pack,
        ]))
test_evaluator = [
    dict(type='CocoPanopticMetric', ann_file=data_root + 'annotations/panoptic_val.json',
         seg_prefix=data_root + 'annotations/panoptic_val/'),
    dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json', metric=['segm']),
    dict(type='XSAMSemSegMetric'),
]
