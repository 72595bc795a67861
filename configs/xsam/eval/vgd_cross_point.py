# Cross-image VGD, COCO-VGD val with point prompts (Fig. 1 / 12): each slot's prompt is taken from another
# image of the batch with the same category (model.test_cfg.vgd_prompt_source='cross_image'), the objects
# are segmented in the sample's own image; COCOeval segm AP / AP50. Batches of 4 in data set order make the
# pairing deterministic; a slot no other image of its batch can serve keeps its own prompt (counted, logged).
_base_ = ['./vgd_point.py']
test_dataloader = dict(batch_size=4)
test_evaluator = dict(prefix='coco_vgd_cross_val_point')
model = dict(test_cfg=dict(vgd_prompt_source='cross_image'))
