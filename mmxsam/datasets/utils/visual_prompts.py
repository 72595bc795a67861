"""Visual prompts (point, scribble, box, mask) for COCO-VGD, generated from a binary instance mask.

X-SAM's COCO-VGD annotations carry, per instance, four binary prompt masks stored as RLE under the
keys ``point_visual_prompt``, ``scribble_visual_prompt``, ``box_visual_prompt`` and
``mask_visual_prompt``. This module re-implements the official generation rules (our own code):

* The instance mask is split into 8-connected components; only components with ``area > min_area``
  get a point, scribble or box. The prompt is the union over those components.
* **point**: centroid plus a random offset (angle ``U(0, 2*pi)``, length ``U(0, 0.5 * min(h, w))`` of
  the component's box), truncated to a pixel and clipped to the box, retried until it falls inside
  the component (``max_retries`` tries), then drawn as a filled disc of ``radius`` px. *Fallback*
  (ours; the official code drops the component): the component pixel farthest from its boundary
  (max Euclidean distance transform, first in raster order).
* **scribble**: the component's box is rescaled about the centroid by independent height/width
  factors ``U(0.5, 1.2)``, clipped to the image, retried until its IoU with the original box is
  >= 0.5 (*fallback*, ours: the original box). A line joins a random corner to the opposite corner;
  its rows are displaced by ``A * sin(2*pi*f*t + phase)`` (``t`` in [0, 1] along the line,
  ``A ~ U(amplitude)``, ``f ~ U(frequency)``, ``phase ~ U(0, 2*pi)``), clipped to the image (not to
  the object) and dilated by a disc of ``radius`` px. We sample the curve densely (steps <= 1 px),
  so the stroke has no gaps.
* **box**: the component's tight box rescaled about its centre by ``U(0.9, 1.1)`` (one factor for
  both sides), rounded, clipped to the image and *filled*.
* **mask**: the whole GT mask (no component filtering) blurred with a Gaussian (``sigma`` = 2) and
  thresholded at the blurred image's mean (``> mean``).

An empty mask, or one whose components all have ``area <= min_area``, gives all-False point,
scribble and box prompts (and an all-False mask prompt if the mask is empty): callers should count
and skip such instances. All randomness comes from the ``numpy.random.Generator`` passed in, so the
output is deterministic given its seed. Pixel sizes are for ~640 px COCO images; use
:func:`scale_prompt_params` for other image sizes.
"""
import math
from numbers import Integral, Real
from typing import Dict, List, NamedTuple, Sequence, Tuple, Union

import cv2
import numpy as np
from scipy import ndimage

from .mask_codec import RLE, encode_mask

PROMPT_TYPES = ('point', 'scribble', 'box', 'mask')
Range = Tuple[float, float]
_BATCH = 64  # retries are drawn in vectorised batches of this size


class _Component(NamedTuple):
    y0: int  # tight box, exclusive end: rows y0:y1, cols x0:x1
    x0: int
    y1: int
    x1: int
    cy: float  # centroid (row, col)
    cx: float
    crop: np.ndarray  # bool (y1 - y0, x1 - x0): the component inside its box


# ----------------------------------------------------------------------------- validation
def _check_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f'mask must be a 2-D (H, W) array, got shape {mask.shape}')
    if not (mask.dtype == bool or np.issubdtype(mask.dtype, np.number)):
        raise TypeError(f'mask must be bool or numeric, got dtype {mask.dtype}')
    return mask != 0


def _check_rng(rng: np.random.Generator) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f'rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}')


def _check_number(name: str, value: float, low: float = 0.0, integer: bool = False) -> None:
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f'{name} must be {"an integer" if integer else "a number"}, got {value!r}')
    if value < low:
        raise ValueError(f'{name} must be >= {low}, got {value!r}')


def _check_range(name: str, value: Sequence[float], low: float = 0.0) -> Range:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f'{name} must be a (low, high) pair, got {value!r}')
    for v in value:
        _check_number(name, v, low)
    if value[0] > value[1]:
        raise ValueError(f'{name} is an empty range: low {value[0]} > high {value[1]}')
    return float(value[0]), float(value[1])


# ----------------------------------------------------------------------------- helpers
def _components(mask: np.ndarray, min_area: int) -> List[_Component]:
    """8-connected components of a bool ``(H, W)`` mask with ``area > min_area``, in label order."""
    labels, num = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    areas = np.bincount(labels.ravel(), minlength=num + 1)
    comps = []
    for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None or areas[idx] <= min_area:
            continue
        crop = labels[sl] == idx
        ys, xs = np.nonzero(crop)
        comps.append(_Component(sl[0].start, sl[1].start, sl[0].stop, sl[1].stop,
                                sl[0].start + ys.mean(), sl[1].start + xs.mean(), crop))
    return comps


def _dilate_disc(seeds: np.ndarray, radius: float) -> np.ndarray:
    """Union of filled discs (pixel centres within ``radius``) around every True pixel of ``seeds``."""
    r = int(math.floor(radius))
    if r == 0 or not seeds.any():
        return seeds
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    kernel = ((yy ** 2 + xx ** 2) <= radius ** 2).astype(np.uint8)
    return cv2.dilate(seeds.astype(np.uint8), kernel).astype(bool)


def _box_iou(a: np.ndarray, b: Sequence[float]) -> np.ndarray:
    """IoU of boxes ``a`` (N, 4) with one box ``b``, all ``(y0, x0, y1, x1)`` with exclusive ends."""
    ih = np.clip(np.minimum(a[:, 2], b[2]) - np.maximum(a[:, 0], b[0]), 0, None)
    iw = np.clip(np.minimum(a[:, 3], b[3]) - np.maximum(a[:, 1], b[1]), 0, None)
    inter = ih * iw
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[2] - b[0]) * (b[3] - b[1])
    return inter / np.maximum(area_a + area_b - inter, 1e-9)


def _point_seed(c: _Component, rng: np.random.Generator, max_retries: int) -> Tuple[int, int]:
    """A pixel (row, col) inside component ``c``: random near the centroid, else the deepest pixel."""
    reach = 0.5 * min(c.y1 - c.y0, c.x1 - c.x0)
    for start in range(0, max_retries, _BATCH):
        n = min(_BATCH, max_retries - start)
        angle = rng.uniform(0.0, 2 * np.pi, n)
        length = rng.uniform(0.0, reach, n)
        ys = np.clip(np.floor(c.cy + length * np.sin(angle)).astype(int), c.y0, c.y1 - 1)
        xs = np.clip(np.floor(c.cx + length * np.cos(angle)).astype(int), c.x0, c.x1 - 1)
        hit = np.flatnonzero(c.crop[ys - c.y0, xs - c.x0])
        if hit.size:
            return int(ys[hit[0]]), int(xs[hit[0]])
    depth = ndimage.distance_transform_edt(np.pad(c.crop, 1))[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return c.y0 + int(y), c.x0 + int(x)


def _scribble_box(c: _Component, shape: Tuple[int, int], rng: np.random.Generator,
                  max_retries: int) -> Tuple[int, int, int, int]:
    """Jittered ``(y0, x0, y1, x1)`` box (exclusive ends) with IoU >= 0.5 to the tight box."""
    orig = (c.y0, c.x0, c.y1, c.x1)
    h, w = c.y1 - c.y0, c.x1 - c.x0
    for start in range(0, max_retries, _BATCH):
        n = min(_BATCH, max_retries - start)
        s = rng.uniform(0.5, 1.2, (n, 2))
        boxes = np.stack([np.trunc(c.cy - h * s[:, 0] / 2), np.trunc(c.cx - w * s[:, 1] / 2),
                          np.trunc(c.cy + h * s[:, 0] / 2), np.trunc(c.cx + w * s[:, 1] / 2)], axis=1)
        boxes = np.clip(boxes, 0, [shape[0], shape[1], shape[0], shape[1]])
        ok = np.flatnonzero((_box_iou(boxes, orig) >= 0.5) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        if ok.size:
            return tuple(int(v) for v in boxes[ok[0]])
    return orig


# ----------------------------------------------------------------------------- prompts
def _points(mask: np.ndarray, comps: List[_Component], rng: np.random.Generator, radius: float,
            max_retries: int) -> np.ndarray:
    seeds = np.zeros(mask.shape, dtype=bool)
    for c in comps:
        seeds[_point_seed(c, rng, max_retries)] = True
    return _dilate_disc(seeds, radius)


def _scribbles(mask: np.ndarray, comps: List[_Component], rng: np.random.Generator, radius: float,
               amplitude: Range, frequency: Range, max_retries: int) -> np.ndarray:
    height, width = mask.shape
    seeds = np.zeros(mask.shape, dtype=bool)
    for c in comps:
        y0, x0, y1, x1 = _scribble_box(c, mask.shape, rng, max_retries)
        corners = [(y0, x0), (y0, x1 - 1), (y1 - 1, x1 - 1), (y1 - 1, x0)]
        k = int(rng.integers(4))
        (ra, ca), (rb, cb) = corners[k], corners[(k + 2) % 4]  # opposite corner
        amp, freq = rng.uniform(*amplitude), rng.uniform(*frequency)
        phase = rng.uniform(0.0, 2 * np.pi)
        n = int(math.ceil(max(abs(cb - ca), abs(rb - ra) + 2 * np.pi * freq * amp))) + 1
        t = np.linspace(0.0, 1.0, n)
        rows = ra + t * (rb - ra) + amp * np.sin(2 * np.pi * freq * t + phase)
        cols = ca + t * (cb - ca)
        rows = np.clip(np.rint(rows).astype(int), 0, height - 1)
        seeds[rows, np.clip(np.rint(cols).astype(int), 0, width - 1)] = True
    return _dilate_disc(seeds, radius)


def _boxes(mask: np.ndarray, comps: List[_Component], rng: np.random.Generator, scale: Range) -> np.ndarray:
    height, width = mask.shape
    out = np.zeros(mask.shape, dtype=bool)
    for c in comps:
        s = rng.uniform(*scale)
        dy, dx = (c.y1 - c.y0) * (s - 1) / 2, (c.x1 - c.x0) * (s - 1) / 2
        y0, x0 = max(0, int(round(c.y0 - dy))), max(0, int(round(c.x0 - dx)))
        y1, x1 = min(height, int(round(c.y1 + dy))), min(width, int(round(c.x1 + dx)))
        out[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)] = True
    return out


def point_prompt(mask: np.ndarray, rng: np.random.Generator, radius: float = 10, min_area: int = 5,
                 max_retries: int = 1000) -> np.ndarray:
    """Point prompt: a disc of ``radius`` px on each component of ``mask`` (H, W) -> bool (H, W)."""
    mask = _check_mask(mask)
    _check_rng(rng)
    _check_number('radius', radius)
    _check_number('min_area', min_area, integer=True)
    _check_number('max_retries', max_retries, integer=True)
    return _points(mask, _components(mask, min_area), rng, radius, max_retries)


def scribble_prompt(mask: np.ndarray, rng: np.random.Generator, radius: float = 5,
                    amplitude: Range = (10., 20.), frequency: Range = (0.2, 1.0), min_area: int = 5,
                    max_retries: int = 1000) -> np.ndarray:
    """Scribble prompt: a sine-wavy diagonal of each component's jittered box, ``radius`` px thick.

    ``mask`` (H, W) -> bool (H, W).
    """
    mask = _check_mask(mask)
    _check_rng(rng)
    _check_number('radius', radius)
    amplitude, frequency = _check_range('amplitude', amplitude), _check_range('frequency', frequency)
    _check_number('min_area', min_area, integer=True)
    _check_number('max_retries', max_retries, integer=True)
    return _scribbles(mask, _components(mask, min_area), rng, radius, amplitude, frequency, max_retries)


def box_prompt(mask: np.ndarray, rng: np.random.Generator, scale: Range = (0.9, 1.1), min_area: int = 5) -> np.ndarray:
    """Box prompt: each component's filled box, rescaled by ``U(scale)``; ``mask`` (H, W) -> bool (H, W)."""
    mask = _check_mask(mask)
    _check_rng(rng)
    scale = _check_range('scale', scale, low=1e-6)
    _check_number('min_area', min_area, integer=True)
    return _boxes(mask, _components(mask, min_area), rng, scale)


def mask_prompt(mask: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Mask prompt: Gaussian-blurred ``mask`` (H, W) thresholded at its mean -> bool (H, W).

    A full (all-True) mask is returned as is (its blur is constant, so ``> mean`` is ill-defined).
    """
    mask = _check_mask(mask)
    _check_number('sigma', sigma)
    if mask.all():
        return mask.copy()
    blurred = ndimage.gaussian_filter(mask.astype(np.float64), sigma=float(sigma))
    return blurred > blurred.mean()


def generate_visual_prompts(mask: np.ndarray, rng: np.random.Generator, point_radius: float = 10,
                            scribble_radius: float = 5, amplitude: Range = (10., 20.), min_area: int = 5,
                            max_retries: int = 1000) -> Dict[str, np.ndarray]:
    """All four prompts of one instance ``mask`` (H, W), keyed as in the official JSON.

    Returns:
        ``{'point_visual_prompt', 'scribble_visual_prompt', 'box_visual_prompt',
        'mask_visual_prompt'}`` -> bool (H, W) arrays. The rng is consumed in the order point,
        scribble, box (same result as calling the three functions in turn with one rng).
    """
    mask = _check_mask(mask)
    _check_rng(rng)
    _check_number('point_radius', point_radius)
    _check_number('scribble_radius', scribble_radius)
    amplitude = _check_range('amplitude', amplitude)
    _check_number('min_area', min_area, integer=True)
    _check_number('max_retries', max_retries, integer=True)
    comps = _components(mask, min_area)
    return {
        'point_visual_prompt': _points(mask, comps, rng, point_radius, max_retries),
        'scribble_visual_prompt': _scribbles(mask, comps, rng, scribble_radius, amplitude, (0.2, 1.0), max_retries),
        'box_visual_prompt': _boxes(mask, comps, rng, (0.9, 1.1)),
        'mask_visual_prompt': mask_prompt(mask),
    }


def encode_visual_prompts(prompts: Dict[str, np.ndarray]) -> Dict[str, RLE]:
    """Encode each prompt mask as a compressed COCO RLE (``mask_codec.encode_mask``); keys unchanged."""
    return {key: encode_mask(value) for key, value in prompts.items()}


def scale_prompt_params(image_size: Union[int, Sequence[int]], ref_size: int = 640) -> Dict[str, object]:
    """Pixel sizes of the prompts scaled to an image of ``image_size`` (int, or (H, W): its longer side).

    The official values (point radius 10, scribble radius 5, amplitude 10-20 px) are meant for COCO
    images (longer side ~``ref_size`` = 640) and are scaled by ``size / ref_size``, with a floor of
    1 px (radii are rounded to whole pixels). Returns keyword arguments for
    :func:`generate_visual_prompts`, e.g. 128 -> ``point_radius=2, scribble_radius=1, amplitude=(2.0, 4.0)``.
    """
    size = max(image_size) if isinstance(image_size, (tuple, list)) else image_size
    _check_number('image_size', size, low=1, integer=True)
    _check_number('ref_size', ref_size, low=1, integer=True)
    f = size / ref_size
    return dict(point_radius=max(1, int(round(10 * f))), scribble_radius=max(1, int(round(5 * f))),
                amplitude=(max(1.0, 10.0 * f), max(1.0, 20.0 * f)))
