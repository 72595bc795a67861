# Cross-image VGD of the tiny X-SAM on the synthetic val split with point prompts: each slot's prompt from
# another image of the batch (4 images, data set order) with the same category; see vgd_cross_point.py.
#   python tools/test.py configs/xsam/eval/tiny_shapes_vgdseg_cross_point.py work_dirs/tiny_mixed/iter_1500.pth
_base_ = ['./tiny_shapes_vgdseg_point.py']
test_dataloader = dict(batch_size=4)
test_evaluator = dict(prefix='vgd_cross_point')
model = dict(test_cfg=dict(vgd_prompt_source='cross_image'))
