# ADE20K panoptic val (task ovseg, evaluation only): ade20k_panoptic_val.json + PNGs in the COCO panoptic
# format (made by the official prepare_ade20k_*.py scripts); a category is prompted by its first synonym.
ade20k_panoptic_val = dict(
    type='XSAMOVSegDataset', source_name='ade20k_panoptic_val', data_root='data/ovseg_data/ade20k/',
    ann_file='ade20k_panoptic_val.json', data_prefix=dict(img='images/validation/', seg='ade20k_panoptic_val/'),
    test_mode=True)
