# RefCOCO / RefCOCO+ (refs(unc).p) and RefCOCOg (refs(umd).p) with their instances.json (task refseg): the
# refer API layout: a pickled list of refs {ref_id, ann_id, image_id, split, sentences: [{sent}]} and COCO
# train2014 instances (polygons). Training: one multi-turn sample per image and sentence combination
# (expand_combinations, the official epoch length); evaluation: one sample per sentence.
_refer = dict(type='XSAMReferSegDataset', data_root='data/refseg_data/', data_prefix=dict(img='images/train2014/'))
refcoco_train = dict(_refer, source_name='refcoco', refer_file='refcoco/refs(unc).p',
                     ann_file='refcoco/instances.json', split='train', expand_combinations=True)
refcoco_plus_train = dict(_refer, source_name='refcoco+', refer_file='refcoco+/refs(unc).p',
                          ann_file='refcoco+/instances.json', split='train', expand_combinations=True)
refcocog_train = dict(_refer, source_name='refcocog', refer_file='refcocog/refs(umd).p',
                      ann_file='refcocog/instances.json', split='train', expand_combinations=True)
refcoco_val, refcoco_testA, refcoco_testB = (
    dict(_refer, source_name=f'refcoco_{s}', refer_file='refcoco/refs(unc).p', ann_file='refcoco/instances.json',
         split=s, test_mode=True) for s in ('val', 'testA', 'testB'))
refcoco_plus_val, refcoco_plus_testA, refcoco_plus_testB = (
    dict(_refer, source_name=f'refcoco+_{s}', refer_file='refcoco+/refs(unc).p',
         ann_file='refcoco+/instances.json', split=s, test_mode=True) for s in ('val', 'testA', 'testB'))
refcocog_val, refcocog_test = (
    dict(_refer, source_name=f'refcocog_{s}', refer_file='refcocog/refs(umd).p',
         ann_file='refcocog/instances.json', split=s, test_mode=True) for s in ('val', 'test'))
