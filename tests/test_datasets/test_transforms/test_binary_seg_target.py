"""BinarySegTarget: union of the target masks, ignore pixels marked, packed as gt_sem_seg."""
import numpy as np
import pytest
from mmdet.structures.mask import BitmapMasks

from mmxsam.datasets.transforms import BinarySegTarget


def test_union_and_ignore():
    masks = np.zeros((2, 4, 5), np.uint8)
    masks[0, 0, 0] = 1
    masks[1, 3, 4] = 1
    ignore = np.zeros((1, 4, 5), np.uint8)
    ignore[0, 2, :] = 1
    out = BinarySegTarget()(dict(gt_masks=BitmapMasks(masks, 4, 5), gt_ignore_mask=BitmapMasks(ignore, 4, 5)))
    target = out['gt_seg_map']
    assert target.dtype == np.uint8 and target.shape == (4, 5)
    assert target[0, 0] == 1 and target[3, 4] == 1 and (target[2] == 255).all()
    assert target.sum() == 2 + 255 * 5


def test_no_instance_is_an_empty_target_and_missing_masks_an_error():
    out = BinarySegTarget(ignore_index=7)(dict(gt_masks=BitmapMasks(np.zeros((0, 3, 3), np.uint8), 3, 3)))
    assert not out['gt_seg_map'].any()
    with pytest.raises(KeyError, match='a.jpg: BinarySegTarget needs gt_masks'):
        BinarySegTarget()(dict(img_path='a.jpg'))


def test_semantic_target_labels_and_unlabeled():
    from mmxsam.datasets.transforms import SemanticSegTarget
    masks = np.zeros((2, 3, 4), np.uint8)
    masks[0, 0, :2] = 1
    masks[1, 2, 3] = 1
    out = SemanticSegTarget()(dict(gt_masks=BitmapMasks(masks, 3, 4), gt_bboxes_labels=np.array([4, 0])))
    target = out['gt_seg_map']
    assert target[0, 0] == 4 and target[0, 1] == 4 and target[2, 3] == 0
    assert (target == 255).sum() == 12 - 3
    with pytest.raises(ValueError, match='collides with ignore_index'):
        SemanticSegTarget(ignore_index=4)(dict(gt_masks=BitmapMasks(masks, 3, 4), gt_bboxes_labels=np.array([4, 0])))
    with pytest.raises(KeyError, match='needs gt_masks and gt_bboxes_labels'):
        SemanticSegTarget()(dict(img_path='x.jpg'))
