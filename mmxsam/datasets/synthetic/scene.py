"""Sampling and rendering one synthetic scene: coloured shapes on a textured two-region background.

A :class:`Scene` is the single source of truth for one image: every annotation format the generator
writes (panoptic, instances, semantic, referring, reasoning, GCG, VGD, conversations) is derived from
its objects' *visible* masks and attributes, so the formats are mutually consistent by construction.
"""
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .constants import COLOURS, SIZES, STUFF_CATEGORIES, THING_CATEGORIES

SHAPES = tuple(c[1] for c in THING_CATEGORIES)
_KERNEL = np.ones((3, 3), np.uint8)
_THING_ID = {c[1]: c[0] for c in THING_CATEGORIES}


@dataclass
class ShapeObject:
    """One thing instance. ``mask`` is the visible part ``(H, W)`` bool (later objects occlude earlier)."""
    shape: str
    colour: str
    size: str
    center: Tuple[float, float]
    radius: float
    angle: float
    full_mask: np.ndarray
    mask: np.ndarray

    @property
    def category_id(self) -> int:
        return _THING_ID[self.shape]

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def centroid(self) -> Tuple[float, float]:
        ys, xs = np.nonzero(self.mask)
        return float(xs.mean()), float(ys.mean())

    def hpos(self, width: int) -> str:
        cx = self.centroid[0]
        return 'left' if cx < width / 3 else ('right' if cx >= 2 * width / 3 else 'middle')

    def vpos(self, height: int) -> str:
        return 'top' if self.centroid[1] < height / 2 else 'bottom'


@dataclass
class StuffRegion:
    """One background ("stuff") region; ``mask`` is its visible part ``(H, W)`` bool."""
    category_id: int
    name: str
    mask: np.ndarray

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class Scene:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    objects: List[ShapeObject] = field(default_factory=list)
    stuff: List[StuffRegion] = field(default_factory=list)

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


def shape_polygon(shape: str, center: Tuple[float, float], radius: float, angle: float) -> Optional[np.ndarray]:
    """Vertices ``(K, 2)`` of a polygonal shape (``None`` for the circle)."""
    cx, cy = center
    if shape == 'circle':
        return None
    if shape == 'square':
        t = angle + np.pi / 4 + np.arange(4) * np.pi / 2
        r = np.full(4, radius)
    elif shape == 'triangle':
        t = angle - np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        r = np.full(3, radius * 1.15)
    elif shape == 'hexagon':
        t = angle + np.arange(6) * np.pi / 3
        r = np.full(6, radius)
    elif shape == 'star':
        t = angle - np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, radius * 1.2, radius * 0.5)
    elif shape == 'cross':
        w = 0.38 * radius
        pts = np.array([(w, radius), (w, w), (radius, w), (radius, -w), (w, -w), (w, -radius),
                        (-w, -radius), (-w, -w), (-radius, -w), (-radius, w), (-w, w), (-w, radius)])
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return pts @ rot.T + np.array([cx, cy])
    else:
        raise ValueError(f'unknown shape {shape!r}; known: {SHAPES}')
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1)


def rasterize_shape(shape: str, center: Tuple[float, float], radius: float, angle: float,
                    height: int, width: int) -> np.ndarray:
    """Binary ``(height, width)`` mask of one shape (no anti-aliasing, so masks are exact)."""
    canvas = np.zeros((height, width), dtype=np.uint8)
    shift = 4  # sub-pixel precision of cv2's integer drawing API
    scale = 1 << shift
    poly = shape_polygon(shape, center, radius, angle)
    if poly is None:
        cv2.circle(canvas, (int(round(center[0] * scale)), int(round(center[1] * scale))),
                   int(round(radius * scale)), 1, thickness=-1, lineType=cv2.LINE_8, shift=shift)
    else:
        cv2.fillPoly(canvas, [np.round(poly * scale).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=shift)
    return canvas.astype(bool)


def _texture(kind: str, base: Tuple[int, int, int], height: int, width: int,
             rng: np.random.Generator) -> np.ndarray:
    """A ``(H, W, 3)`` float texture for a stuff class."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    unit = max(height, width) / 64.0  # texture periods scale with the image
    img = np.broadcast_to(np.array(base, np.float32), (height, width, 3)).copy()
    if kind == 'smooth':
        img += (yy / height * 25.0)[..., None]
    elif kind == 'streaks':
        img += (14.0 * np.sin(xx / (0.8 * unit) + rng.uniform(0, 6.28)))[..., None]
    elif kind == 'dots':
        dots = rng.random((height, width)) < 0.06
        img[dots] -= 45.0
    elif kind == 'waves':
        img += (18.0 * np.sin(yy / (1.2 * unit) + 0.6 * np.sin(xx / (4 * unit))))[..., None]
    elif kind == 'bricks':
        period = max(2, int(round(6 * unit)))
        row = (yy // period).astype(int)
        mortar = (yy % period < 1) | (((xx + (row % 2) * period) % (2 * period)) < 1)
        img[mortar] -= 50.0
    else:
        raise ValueError(f'unknown texture kind {kind!r}')
    img += rng.normal(0.0, 3.0, size=(height, width, 1)).astype(np.float32)
    return img


def sample_scene(rng: np.random.Generator, image_size: int, min_objects: int, max_objects: int,
                 min_visible: float = 0.5, min_area: int = 12, max_tries: int = 50) -> Scene:
    """Sample and render one scene.

    Background: one or two stuff classes split by a wavy horizontal boundary. Things: between
    ``min_objects`` and ``max_objects`` shapes, each kept only if it is at least ``min_area`` pixels and
    does not hide more than ``1 - min_visible`` of any earlier shape (so every instance stays
    recognisable) and touches no earlier shape of the same colour. Objects that cannot be placed in
    ``max_tries`` attempts are dropped, so crowded settings may give fewer than ``min_objects`` shapes only if
    ``max_tries`` is exhausted; the generator checks the count and resamples such scenes.
    """
    h = w = image_size
    # --- background ("stuff") ------------------------------------------------------------------
    n_stuff = 1 if rng.random() < 0.2 else 2
    stuff_idx = rng.choice(len(STUFF_CATEGORIES), size=n_stuff, replace=False)
    xx = np.arange(w, dtype=np.float32)
    boundary = h * rng.uniform(0.35, 0.65) + h * 0.06 * np.sin(xx / w * 2 * np.pi * rng.uniform(0.5, 1.5)
                                                                 + rng.uniform(0, 2 * np.pi))
    top = np.arange(h, dtype=np.float32)[:, None] < boundary[None, :]
    regions = [np.ones((h, w), bool)] if n_stuff == 1 else [top, ~top]
    image = np.zeros((h, w, 3), np.float32)
    stuff_regions = []
    for idx, region in zip(stuff_idx, regions):
        cid, name, base, kind = STUFF_CATEGORIES[int(idx)]
        image[region] = _texture(kind, base, h, w, rng)[region]
        stuff_regions.append(StuffRegion(category_id=cid, name=name, mask=region.copy()))

    # --- things -----------------------------------------------------------------------------------
    n_obj = int(rng.integers(min_objects, max_objects + 1))
    objects: List[ShapeObject] = []
    for _ in range(n_obj):
        for _try in range(max_tries):
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
            size = list(SIZES)[int(rng.integers(len(SIZES)))]
            radius = SIZES[size] * image_size
            margin = radius * 0.8
            center = (float(rng.uniform(margin, w - margin)), float(rng.uniform(margin, h - margin)))
            angle = float(rng.uniform(0, 2 * np.pi))
            full = rasterize_shape(shape, center, radius, angle, h, w)
            if full.sum() < min_area:
                continue
            # every earlier shape stays mostly visible, and same-coloured shapes never touch (their shared
            # boundary would be invisible in the image)
            ok = all(((o.mask & ~full).sum() >= max(min_area, min_visible * o.full_mask.sum()))
                     and not (o.colour == colour and (cv2.dilate(o.full_mask.astype(np.uint8), _KERNEL) & full).any())
                     for o in objects)
            if not ok:
                continue
            for o in objects:
                o.mask &= ~full
            objects.append(ShapeObject(shape, colour, size, center, radius, angle, full, full.copy()))
            break

    for o in objects:
        shade = 1.0 + 0.12 * (np.linspace(-1, 1, h, dtype=np.float32)[:, None, None])
        colour = np.array(COLOURS[o.colour], np.float32)[None, None, :] * shade
        colour = colour + rng.normal(0.0, 4.0, size=(h, w, 1)).astype(np.float32)
        image[o.full_mask] = np.broadcast_to(colour, (h, w, 3))[o.full_mask]

    occupied = np.zeros((h, w), bool)
    for o in objects:
        occupied |= o.mask
    for s in stuff_regions:
        s.mask &= ~occupied
    stuff_regions = [s for s in stuff_regions if s.area > 0]
    return Scene(image=np.clip(image, 0, 255).astype(np.uint8), objects=objects, stuff=stuff_regions)
