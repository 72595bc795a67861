"""Visual prompts given by a user (points, scribbles, boxes, masks) -> the binary masks the model reads.

X-SAM reads every visual prompt as a binary mask on the image (reference §1.7): a point is a filled disc,
a scribble a thick polyline, a box a filled rectangle, a mask the mask itself. The disc radius and the
scribble width follow the official COCO-VGD sizes (10 px and 5 px on ~640 px images), scaled to the image
(:func:`mmxsam.datasets.utils.visual_prompts.scale_prompt_params`), so a user's click looks like the
prompts the model was trained on.

A spec is one of (coordinates in pixels of the image the prompt is drawn on, ``x`` to the right):

* ``dict(type='point', xy=(x, y))``
* ``dict(type='scribble', points=[(x0, y0), (x1, y1), ...])`` (two or more points)
* ``dict(type='box', xyxy=(x1, y1, x2, y2))``
* ``dict(type='mask', mask=array_or_png_path)`` (non-zero = prompt), or a bare (H, W) array.

Anything outside the image, an empty mask or an unknown type raises a ``ValueError`` that names the prompt.
"""
from typing import Sequence, Tuple, Union

import cv2
import numpy as np

from ..datasets.utils.visual_prompts import scale_prompt_params

PROMPT_SPEC_TYPES = ('point', 'scribble', 'box', 'mask')
PromptSpec = Union[dict, np.ndarray]


def _coords(spec: dict, key: str, count: int, name: str) -> np.ndarray:
    if key not in spec:
        raise ValueError(f'{name}: a {spec["type"]} prompt needs {key!r}, got keys {sorted(spec)}')
    try:
        values = np.asarray(spec[key], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f'{name}: {key} must be numbers, got {spec[key]!r}') from err
    if count > 0 and values.shape != (count, ):
        raise ValueError(f'{name}: {key} must be {count} numbers, got {spec[key]!r}')
    if count == 0 and (values.ndim != 2 or values.shape[1] != 2 or len(values) < 2):
        raise ValueError(f'{name}: {key} must be two or more (x, y) pairs, got {spec[key]!r}')
    if not np.isfinite(values).all():
        raise ValueError(f'{name}: {key} must be finite, got {spec[key]!r}')
    return values


def _check_inside(xy: np.ndarray, shape: Tuple[int, int], name: str) -> None:
    """``xy`` (N, 2) pixel coordinates must lie in the image of ``shape`` (H, W)."""
    h, w = shape
    outside = (xy[:, 0] < 0) | (xy[:, 0] > w - 1) | (xy[:, 1] < 0) | (xy[:, 1] > h - 1)
    if outside.any():
        bad = xy[outside][0]
        raise ValueError(f'{name}: ({bad[0]:g}, {bad[1]:g}) is outside the {w}x{h} image '
                         f'(x in [0, {w - 1}], y in [0, {h - 1}])')


def _load_mask(mask, shape: Tuple[int, int], name: str) -> np.ndarray:
    if isinstance(mask, str):
        path = mask
        mask = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if mask is None:
            raise ValueError(f'{name}: cannot read the mask image {path!r}')
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (1, 3, 4):  # an RGB(A) drawing: any non-zero channel
        mask = mask.any(axis=-1)
    if mask.ndim != 2:
        raise ValueError(f'{name}: a mask prompt must be an (H, W) array, got shape {mask.shape}')
    if mask.shape != tuple(shape):
        raise ValueError(f'{name}: the mask is {mask.shape[1]}x{mask.shape[0]} but the image is '
                         f'{shape[1]}x{shape[0]}; draw it at the image size')
    return mask != 0


def render_visual_prompt(spec: PromptSpec, shape: Tuple[int, int], name: str = 'visual prompt') -> np.ndarray:
    """One spec (see the module docstring) drawn on an image of ``shape`` (H, W) -> bool mask (H, W).

    Raises:
        ValueError: unknown type, missing/malformed coordinates, a point/box/scribble outside the image, a
            box with no area, a mask of another size, or a mask with no pixel set; the message starts
            with ``name``.
    """
    h, w = int(shape[0]), int(shape[1])
    if isinstance(spec, np.ndarray):
        spec = dict(type='mask', mask=spec)
    if not isinstance(spec, dict) or 'type' not in spec:
        raise ValueError(f'{name}: expected a dict with a "type" in {PROMPT_SPEC_TYPES} or an (H, W) mask '
                         f'array, got {type(spec).__name__}')
    kind = spec['type']
    if kind not in PROMPT_SPEC_TYPES:
        raise ValueError(f'{name}: unknown prompt type {kind!r}; expected one of {PROMPT_SPEC_TYPES}')
    sizes = scale_prompt_params((h, w))
    canvas = np.zeros((h, w), np.uint8)
    if kind == 'point':
        xy = _coords(spec, 'xy', 2, name)
        _check_inside(xy[None], (h, w), name)
        cv2.circle(canvas, (int(round(xy[0])), int(round(xy[1]))), int(sizes['point_radius']), 1, thickness=-1)
    elif kind == 'scribble':
        points = _coords(spec, 'points', 0, name)
        _check_inside(points, (h, w), name)
        cv2.polylines(canvas, [np.round(points).astype(np.int32)], isClosed=False, color=1,
                      thickness=2 * int(sizes['scribble_radius']) + 1)
    elif kind == 'box':
        x1, y1, x2, y2 = _coords(spec, 'xyxy', 4, name)
        _check_inside(np.array([[x1, y1], [x2, y2]]), (h, w), name)
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f'{name}: box {spec["xyxy"]!r} has no area (need x1 < x2 and y1 < y2)')
        canvas[int(np.floor(y1)):int(np.ceil(y2)) + 1, int(np.floor(x1)):int(np.ceil(x2)) + 1] = 1
    else:
        if 'mask' not in spec:
            raise ValueError(f'{name}: a mask prompt needs "mask" (an array or a PNG path)')
        canvas = _load_mask(spec['mask'], (h, w), name).astype(np.uint8)
    mask = canvas.astype(bool)
    if not mask.any():
        raise ValueError(f'{name}: the {kind} prompt covers no pixel of the image')
    return mask


def render_visual_prompts(specs: Sequence[PromptSpec], shape: Tuple[int, int], owner: str = '') -> list:
    """Every spec of ``specs`` drawn at ``shape`` (H, W): a list of bool (H, W) masks; errors name
    ``owner`` and the prompt's index."""
    prefix = f'{owner}: ' if owner else ''
    return [render_visual_prompt(s, shape, f'{prefix}visual prompt {k}') for k, s in enumerate(specs)]
