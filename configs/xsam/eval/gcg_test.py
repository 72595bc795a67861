# Grounded conversation generation, GranD-f test; see gcg_val.py.
_base_ = ['./gcg_val.py']
test_split = _base_.grandf_gcg_test
test_dataloader = dict(dataset=dict(test_split, _delete_=True,
                                    pipeline=[dict(type='LoadImageFromFile'), _base_.resize, _base_.pack]))
test_evaluator = dict(prefix='gcg_test', mask_ann_file=test_split.data_root + test_split.ann_file,
                      caption_ann_file=test_split.data_root + test_split.caption_ann_file)
