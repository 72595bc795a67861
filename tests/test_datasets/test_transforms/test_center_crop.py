import numpy as np
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

import mmxsam  # noqa: F401


def test_center_crop_crops_everything_at_the_center():
    h, w = 60, 100
    img = np.arange(h * w * 3, dtype=np.float32).reshape(h, w, 3)
    masks = np.zeros((1, h, w), np.uint8)
    masks[0, 20:40, 40:60] = 1  # a square at the centre
    seg = np.tile(np.arange(w, dtype=np.uint8)[None], (h, 1))
    results = dict(img=img, img_shape=(h, w), ori_shape=(h, w),
                   gt_bboxes=HorizontalBoxes(np.array([[40, 20, 60, 40]], np.float32)),
                   gt_bboxes_labels=np.array([0]), gt_ignore_flags=np.array([False]),
                   gt_masks=BitmapMasks(masks, h, w), gt_seg_map=seg)
    t = TRANSFORMS.build(dict(type='CenterCropDet', crop_size=(50, 40), crop_type='absolute', recompute_bbox=True,
                              allow_negative_crop=True))
    out = t(results)
    # crop_size is (w, h) as in mmdet; offsets: (60 - 40) // 2 = 10 rows, (100 - 50) // 2 = 25 columns
    np.testing.assert_array_equal(out['img'], img[10:50, 25:75])
    np.testing.assert_array_equal(out['gt_seg_map'], seg[10:50, 25:75])
    np.testing.assert_array_equal(out['gt_masks'].masks[0], masks[0, 10:50, 25:75])
    np.testing.assert_allclose(out['gt_bboxes'].tensor.numpy(), [[15, 10, 35, 30]])


def test_center_crop_is_deterministic_and_keeps_small_images():
    t = TRANSFORMS.build(dict(type='CenterCropDet', crop_size=(128, 128), crop_type='absolute',
                              allow_negative_crop=True))
    img = np.random.rand(64, 80, 3).astype(np.float32)
    out = t(dict(img=img.copy(), img_shape=(64, 80)))
    np.testing.assert_array_equal(out['img'], img)  # smaller than the crop: nothing is cut
