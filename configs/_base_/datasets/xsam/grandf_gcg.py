# Grounded conversation generation (task gcgseg), GLaMM's GranD-f files: GranDf_HA_GCG (grandf layout:
# {file_name, caption, groundings: {phrase: {token_positives, rle_masks}}}), RefCOCOg-GCG (refs sentences
# located in the caption), OpenPSG-GCG (psg, like grandf) and Flickr30k-GCG (COCO-style with
# tokens_positive and sam_mask); evaluation: val_test/{val,test}_gcg_coco_{mask,caption}_gt.json
# (generation: no answer given).
_gcg = dict(type='XSAMGCGSegDataset', data_root='data/gcgseg_data/grand_f/')
grandf_gcg_train = dict(_gcg, source_name='grandf_gcg', ann_format='grandf',
                        ann_file='annotations/train/GranDf_HA_GCG_train.json',
                        data_prefix=dict(img_path='images/GranDf_HA_images/train/'))
refcocog_gcg_train = dict(_gcg, source_name='refcocog_gcg', ann_format='refcocog',
                          ann_file='annotations/train/RefCOCOg_GCG_train.json',
                          data_prefix=dict(img_path='images/coco2014/train2014/'))
psg_gcg_train = dict(_gcg, source_name='psg_gcg', ann_format='psg', ann_file='annotations/train/OpenPsgGCG_train.json',
                     data_prefix=dict(img_path='images/coco2017/'))
flickr_gcg_train = dict(_gcg, source_name='flickr_gcg', ann_format='flickr',
                        ann_file='annotations/train/flickr_mergedGT_GCG_train.json',
                        data_prefix=dict(img_path='images/flickr30k/images/train/'))
grandf_gcg_val, grandf_gcg_test = (
    dict(_gcg, source_name=f'gcg_{s}', ann_format='val_test', ann_file=f'annotations/val_test/{s}_gcg_coco_mask_gt.json',
         caption_ann_file=f'annotations/val_test/{s}_gcg_coco_caption_gt.json',
         data_prefix=dict(img_path='images/GranDf_HA_images/val_test/'), test_mode=True) for s in ('val', 'test'))
