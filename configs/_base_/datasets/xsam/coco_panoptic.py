# COCO panoptic 2017 (task genseg): panoptic_{train,val}2017.json + PNG folders (COCO panoptic format: per
# image `segments_info` [{id, category_id, iscrowd, bbox, area}], segment id = R + 256 G + 256^2 B).
# Category names are cleaned (lower case, '-merged/-other/-stuff' dropped); crowd segments are not targets.
# Evaluation lists every category in id order (fixed prompt).
coco_panoptic_train = dict(
    type='XSAMGenericSegDataset', source_name='coco_panoptic', data_root='data/genseg_data/coco2017/',
    ann_file='annotations/panoptic_train2017.json', data_prefix=dict(img='train2017/', seg='panoptic_train2017/'))
coco_panoptic_val = dict(
    type='XSAMGenericSegDataset', source_name='coco_panoptic_val', data_root='data/genseg_data/coco2017/',
    ann_file='annotations/panoptic_val2017.json', data_prefix=dict(img='val2017/', seg='panoptic_val2017/'),
    test_mode=True)
