"""User visual-prompt specs -> binary masks: shapes and sizes as the official COCO-VGD prompts."""
import numpy as np
import pytest

from mmxsam.apis import render_visual_prompt, render_visual_prompts


def test_point_is_a_disc_scaled_to_the_image():
    mask = render_visual_prompt(dict(type='point', xy=(30, 20)), (64, 64))  # radius 10 * 64 / 640 -> 1
    assert mask[20, 30] and mask.sum() == 5  # a radius-1 disc: the centre and its 4 neighbours
    big = render_visual_prompt(dict(type='point', xy=(320, 200)), (640, 640))  # radius 10
    assert big[200, 330] and not big[200, 331] and abs(big.sum() - np.pi * 100) < 20


def test_box_scribble_mask():
    box = render_visual_prompt(dict(type='box', xyxy=(2, 3, 9, 5)), (16, 16))
    assert box.sum() == 8 * 3 and box[3:6, 2:10].all()
    scribble = render_visual_prompt(dict(type='scribble', points=[(0, 0), (15, 0), (15, 15)]), (16, 16))
    assert scribble[0, :].all() and scribble[:, 15].all() and not scribble[8, 4]
    drawn = np.zeros((16, 16, 3), np.uint8)
    drawn[4:6, 4:6, 2] = 255  # a red drawing: any non-zero channel counts
    assert render_visual_prompt(dict(type='mask', mask=drawn), (16, 16)).sum() == 4
    assert render_visual_prompt(drawn[..., 2], (16, 16)).sum() == 4  # a bare array is a mask


def test_mask_from_png(tmp_path):
    import cv2
    mask = np.zeros((8, 8), np.uint8)
    mask[1:3, 1:4] = 255
    cv2.imwrite(str(tmp_path / 'm.png'), mask)
    assert render_visual_prompt(dict(type='mask', mask=str(tmp_path / 'm.png')), (8, 8)).sum() == 6
    with pytest.raises(ValueError, match="cannot read the mask image '.*nope.png'"):
        render_visual_prompt(dict(type='mask', mask=str(tmp_path / 'nope.png')), (8, 8))


@pytest.mark.parametrize('spec, message', [
    (dict(type='point', xy=(8, 2)), r'\(8, 2\) is outside the 8x4 image'),
    (dict(type='point', xy=(1, -1)), 'is outside'),
    (dict(type='point', xy=(1, 2, 3)), 'xy must be 2 numbers'),
    (dict(type='point', xy=('a', 1)), 'xy must be numbers'),
    (dict(type='point'), "needs 'xy'"),
    (dict(type='scribble', points=[(1, 1)]), 'two or more'),
    (dict(type='box', xyxy=(1, 1, 1, 3)), 'has no area'),
    (dict(type='mask', mask=np.zeros((4, 8))), 'covers no pixel'),
    (dict(type='mask', mask=np.ones((8, 4))), 'the mask is 4x8 but the image is 8x4'),
    (dict(type='mask'), 'needs "mask"'),
    (dict(type='polygon'), "unknown prompt type 'polygon'"),
    ('point', 'expected a dict'),
])
def test_bad_specs_name_the_prompt(spec, message):
    with pytest.raises(ValueError, match='req 3: visual prompt 1: .*' + message):
        render_visual_prompts([dict(type='point', xy=(1, 1)), spec], (4, 8), 'req 3')
