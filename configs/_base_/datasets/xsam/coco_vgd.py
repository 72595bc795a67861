# COCO visual grounded segmentation (task vgdseg) and COCO-Interactive (task intseg, evaluation only): COCO
# instances with per-annotation `visual_prompts` {point, scribble, box, mask} as RLE (the official VGD JSON
# layout; tools/dataset_converters/generate_coco_vgd.py makes it from instances_*.json, or use the released
# vgdseg_annotations). Evaluation fixes the prompt type: one data set per type.
coco_vgd_train = dict(
    type='XSAMVGDSegDataset', source_name='coco_vgd', data_root='data/vgdseg_data/coco_vgd/',
    ann_file='annotations/coco_vgdseg_train.json', data_prefix=dict(img='coco2017/train2017/'))
coco_vgd_val_point, coco_vgd_val_scribble, coco_vgd_val_box, coco_vgd_val_mask = (
    dict(type='XSAMVGDSegDataset', source_name=f'coco_vgd_val_{p}', data_root='data/vgdseg_data/coco_vgd/',
         ann_file='annotations/coco_vgdseg_val.json', data_prefix=dict(img='coco2017/val2017/'), prompt_type=p,
         test_mode=True) for p in ('point', 'scribble', 'box', 'mask'))
coco_interactive_val_point, coco_interactive_val_scribble, coco_interactive_val_box, coco_interactive_val_mask = (
    dict(type='XSAMInteractiveSegDataset', source_name=f'coco_interactive_val_{p}',
         data_root='data/intseg_data/coco_interactive/', ann_file='intseg_val.json',
         data_prefix=dict(img='coco2017/val2017/'), prompt_type=p, test_mode=True)
    for p in ('point', 'scribble', 'box', 'mask'))
