"""Tests for mmxsam.datasets.utils.visual_prompts (COCO-VGD point/scribble/box/mask prompts)."""
import json
import math

import numpy as np
import pytest

from mmxsam.datasets.utils.mask_codec import decode_mask
from mmxsam.datasets.utils.visual_prompts import (PROMPT_TYPES, box_prompt, encode_visual_prompts,
                                                  generate_visual_prompts, mask_prompt, point_prompt,
                                                  scale_prompt_params, scribble_prompt)

KEYS = {f'{t}_visual_prompt' for t in PROMPT_TYPES}


def disc(shape, center, radius):
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


def l_shape(shape=(128, 128)):
    """Non-convex mask whose centroid lies outside it."""
    m = np.zeros(shape, dtype=bool)
    m[20:100, 20:35] = True
    m[85:100, 20:100] = True
    return m


def bbox(mask):
    ys, xs = np.nonzero(mask)
    return ys.min(), xs.min(), ys.max() + 1, xs.max() + 1  # exclusive ends


def iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- determinism / API
def test_keys_dtypes_and_determinism():
    mask = l_shape()
    a = generate_visual_prompts(mask, rng(3))
    b = generate_visual_prompts(mask, rng(3))
    assert set(a) == KEYS
    for key in KEYS:
        assert a[key].dtype == bool and a[key].shape == mask.shape and a[key].any()
        np.testing.assert_array_equal(a[key], b[key])
    points = {generate_visual_prompts(mask, rng(s))['point_visual_prompt'].tobytes() for s in range(6)}
    assert len(points) > 1  # different seeds move the point


def test_mask_dtypes_give_same_result():
    mask = l_shape()
    ref = generate_visual_prompts(mask, rng(1))
    for m in (mask.astype(np.uint8), mask.astype(np.int32) * 7, mask.astype(np.float32)):
        out = generate_visual_prompts(m, rng(1))
        for key in KEYS:
            np.testing.assert_array_equal(out[key], ref[key])


def test_generate_matches_individual_functions():
    mask = l_shape()
    out = generate_visual_prompts(mask, rng(5), point_radius=4, scribble_radius=2, amplitude=(3., 6.))
    r = rng(5)
    np.testing.assert_array_equal(out['point_visual_prompt'], point_prompt(mask, r, radius=4))
    np.testing.assert_array_equal(out['scribble_visual_prompt'],
                                  scribble_prompt(mask, r, radius=2, amplitude=(3., 6.)))
    np.testing.assert_array_equal(out['box_visual_prompt'], box_prompt(mask, r))
    np.testing.assert_array_equal(out['mask_visual_prompt'], mask_prompt(mask))


# ----------------------------------------------------------------------------- point
def test_point_centre_inside_mask():
    mask = l_shape()
    for seed in range(20):
        p = point_prompt(mask, rng(seed), radius=3)
        ys, xs = np.nonzero(p)
        assert mask[int(round(ys.mean())), int(round(xs.mean()))]


def test_point_is_disc_of_radius():
    mask = np.zeros((300, 300), dtype=bool)
    mask[50:250, 50:250] = True  # disc of radius 10 never reaches the image border
    for radius in (10, 4):
        p = point_prompt(mask, rng(0), radius=radius)
        ys, xs = np.nonzero(p)
        cy, cx = int(round(ys.mean())), int(round(xs.mean()))
        np.testing.assert_array_equal(p, disc(mask.shape, (cy, cx), radius))
        assert abs(p.sum() - math.pi * radius ** 2) / (math.pi * radius ** 2) < 0.1


def test_point_fallback_is_deepest_pixel():
    mask = disc((101, 101), (50, 50), 20)
    p = point_prompt(mask, rng(0), radius=0, max_retries=0)  # no random try: fallback
    assert p.sum() == 1 and p[50, 50]


# ----------------------------------------------------------------------------- box
def test_box_is_filled_and_close_to_tight_box():
    mask = disc((128, 128), (60, 70), 25)
    y0, x0, y1, x1 = bbox(mask)
    tight = np.zeros_like(mask)
    tight[y0:y1, x0:x1] = True
    for seed in range(20):
        b = box_prompt(mask, rng(seed))
        by0, bx0, by1, bx1 = bbox(b)
        assert b.sum() == (by1 - by0) * (bx1 - bx0)  # filled rectangle
        assert iou(b, tight) >= 0.8


def test_box_clipped_to_image():
    mask = np.zeros((50, 50), dtype=bool)
    mask[:, :] = True
    b = box_prompt(mask, rng(0), scale=(1.1, 1.1))
    assert b.all()


# ----------------------------------------------------------------------------- mask
def test_mask_prompt_iou():
    mask = disc((128, 128), (64, 64), 30)  # 60 x 60 disc
    m = mask_prompt(mask)
    assert m.dtype == bool and iou(m, mask) >= 0.8
    assert mask_prompt(np.ones((8, 8), dtype=bool)).all()


# ----------------------------------------------------------------------------- scribble
def test_scribble_near_object_box():
    mask = disc((200, 200), (100, 100), 30)
    y0, x0, y1, x1 = bbox(mask)
    h, w = y1 - y0, x1 - x0
    radius, amp_hi = 5, 20.
    box = np.zeros_like(mask)
    box[y0:y1, x0:x1] = True
    allowed = np.zeros_like(mask)  # 1.2x box about the centre, grown by amplitude + radius (+1 rounding)
    pad_y, pad_x = 0.6 * h + amp_hi + radius + 1, 0.6 * w + amp_hi + radius + 1
    cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
    allowed[int(cy - pad_y):int(math.ceil(cy + pad_y)), int(cx - pad_x):int(math.ceil(cx + pad_x))] = True
    for seed in range(20):
        s = scribble_prompt(mask, rng(seed), radius=radius, amplitude=(10., amp_hi))
        assert s.any() and (s & box).any()
        assert not (s & ~allowed).any()


def test_scribble_is_connected_stroke():
    from scipy import ndimage
    mask = disc((200, 200), (100, 100), 40)
    for seed in range(10):
        s = scribble_prompt(mask, rng(seed), radius=1, amplitude=(10., 20.))
        assert ndimage.label(s, structure=np.ones((3, 3)))[1] == 1


def test_scribble_fallback_uses_original_box():
    mask = disc((101, 101), (50, 50), 20)
    s = scribble_prompt(mask, rng(0), radius=2, amplitude=(0., 0.), max_retries=0)
    y0, x0, y1, x1 = bbox(mask)
    ys, xs = np.nonzero(s)
    assert ys.min() == y0 - 2 and ys.max() == y1 + 1 and xs.min() == x0 - 2 and xs.max() == x1 + 1


# ----------------------------------------------------------------------------- components / empty
def test_two_components_get_prompts_each():
    mask = disc((160, 320), (80, 70), 30) | disc((160, 320), (80, 250), 30)
    left, right = np.zeros_like(mask), np.zeros_like(mask)
    left[:, :160], right[:, 160:] = True, True
    for seed in range(5):
        out = generate_visual_prompts(mask, rng(seed))
        for key in ('point_visual_prompt', 'scribble_visual_prompt', 'box_visual_prompt'):
            assert (out[key] & left & mask).any() and (out[key] & right & mask).any(), key


def test_empty_and_tiny_masks():
    empty = np.zeros((64, 64), dtype=bool)
    out = generate_visual_prompts(empty, rng(0))
    assert set(out) == KEYS and not any(v.any() for v in out.values())
    tiny = empty.copy()
    tiny[10, 10:15] = True  # area 5 <= min_area 5: dropped
    out = generate_visual_prompts(tiny, rng(0))
    for key in ('point_visual_prompt', 'scribble_visual_prompt', 'box_visual_prompt'):
        assert not out[key].any()
    tiny[11, 10] = True  # area 6 > 5: kept
    assert point_prompt(tiny, rng(0)).any()
    assert not point_prompt(tiny, rng(0), min_area=6).any()


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize('call, exc, match', [
    (lambda m, r: point_prompt(m[None], r), ValueError, 'mask must be a 2-D'),
    (lambda m, r: point_prompt(m.astype(str), r), TypeError, 'mask must be bool or numeric'),
    (lambda m, r: point_prompt(m, r, radius=-1), ValueError, 'radius must be >= 0'),
    (lambda m, r: point_prompt(m, np.random.RandomState(0)), TypeError, 'rng must be a numpy.random.Generator'),
    (lambda m, r: point_prompt(m, 0), TypeError, 'rng must be'),
    (lambda m, r: point_prompt(m, r, min_area=-1), ValueError, 'min_area'),
    (lambda m, r: point_prompt(m, r, max_retries=1.5), TypeError, 'max_retries must be an integer'),
    (lambda m, r: scribble_prompt(m, r, radius=-0.5), ValueError, 'radius'),
    (lambda m, r: scribble_prompt(m, r, amplitude=(20., 10.)), ValueError, 'amplitude is an empty range'),
    (lambda m, r: scribble_prompt(m, r, amplitude=(1., 2., 3.)), TypeError, 'amplitude must be a'),
    (lambda m, r: scribble_prompt(m, r, frequency=(1.0, 0.2)), ValueError, 'frequency is an empty range'),
    (lambda m, r: box_prompt(m, r, scale=(1.1, 0.9)), ValueError, 'scale is an empty range'),
    (lambda m, r: box_prompt(m, r, scale=(0., 1.)), ValueError, 'scale must be >='),
    (lambda m, r: mask_prompt(m, sigma=-1), ValueError, 'sigma'),
    (lambda m, r: generate_visual_prompts(m, r, point_radius=-1), ValueError, 'point_radius'),
    (lambda m, r: generate_visual_prompts(m, r, scribble_radius=-1), ValueError, 'scribble_radius'),
    (lambda m, r: generate_visual_prompts(m, r, amplitude=(5., 1.)), ValueError, 'amplitude'),
    (lambda m, r: generate_visual_prompts(np.zeros(5), r), ValueError, 'mask must be a 2-D'),
    (lambda m, r: scale_prompt_params(0), ValueError, 'image_size'),
])
def test_bad_input_raises(call, exc, match):
    with pytest.raises(exc, match=match):
        call(l_shape(), rng(0))


# ----------------------------------------------------------------------------- RLE / scaling / speed
def test_rle_round_trip():
    mask = l_shape((96, 128))
    prompts = generate_visual_prompts(mask, rng(0), **scale_prompt_params(128))
    rles = encode_visual_prompts(prompts)
    assert set(rles) == KEYS
    json.dumps(rles)
    for key, rle in rles.items():
        np.testing.assert_array_equal(decode_mask(rle, 96, 128), prompts[key])


def test_scale_prompt_params():
    assert scale_prompt_params(640) == dict(point_radius=10, scribble_radius=5, amplitude=(10., 20.))
    assert scale_prompt_params((480, 640)) == scale_prompt_params(640)
    assert scale_prompt_params(128) == dict(point_radius=2, scribble_radius=1, amplitude=(2., 4.))
    assert scale_prompt_params(16) == dict(point_radius=1, scribble_radius=1, amplitude=(1., 1.))


def test_coco_sized_multi_component_mask():
    mask = np.zeros((480, 640), dtype=np.uint8)
    for i in range(10):
        mask |= disc(mask.shape, (60 + 36 * i, 40 + 55 * i), 25).astype(np.uint8)
    mask[200:400, 100:300] = 1
    out = generate_visual_prompts(mask, rng(0))
    assert all(v.shape == (480, 640) and v.dtype == bool and v.any() for v in out.values())
