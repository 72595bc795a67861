# Visual grounded segmentation of the tiny X-SAM (stage 3) on the synthetic VGD val split with point
# prompts: COCOeval segm AP / AP50 with the prompt slots mapped back to category ids. Prompts come from the
# sample's own image (single-image VGD). tiny_shapes_vgdseg_{scribble,box,mask}.py change the prompt type.
#   python tools/test.py configs/xsam/eval/tiny_shapes_vgdseg_point.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['../tiny_mixed.py']
prompt_type = 'point'
test_dataloader = dict(
    dataset=dict(_delete_=True, type='XSAMVGDSegDataset', data_root='data/shapes/', ann_file='vgd/vgd_val.json',
                 data_prefix=dict(img='images/'), prompt_type=prompt_type, test_mode=True,
                 pipeline=_base_.refer_test_pipeline))
test_evaluator = dict(_delete_=True, type='VGDMetric', ann_file='data/shapes/vgd/vgd_val.json',
                      prefix='vgd_' + prompt_type)
