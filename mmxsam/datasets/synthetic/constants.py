"""Vocabulary of the bundled synthetic "shapes" data set.

Category ids are deliberately non-contiguous (things 1-6, stuff 101-105) and stuff names carry COCO's
``-merged``/``-other`` suffixes, so readers exercise the same id mapping and name cleaning as on COCO.
"""
from typing import Dict, List, Tuple

# (id, name, number of corners, RGB colour used in panoptic visualisations)
THING_CATEGORIES: List[Tuple[int, str, int]] = [
    (1, 'circle', 0),
    (2, 'square', 4),
    (3, 'triangle', 3),
    (4, 'star', 10),
    (5, 'hexagon', 6),
    (6, 'cross', 12),
]
# (id, name, base RGB colour, texture kind)
STUFF_CATEGORIES: List[Tuple[int, str, Tuple[int, int, int], str]] = [
    (101, 'sky-other-merged', (150, 200, 240), 'smooth'),
    (102, 'grass-merged', (95, 140, 75), 'streaks'),
    (103, 'sand', (205, 185, 140), 'dots'),
    (104, 'water-other', (60, 105, 150), 'waves'),
    (105, 'wall-other-merged', (165, 155, 145), 'bricks'),
]
# Saturated object colours (name -> RGB), distinct from the desaturated stuff colours.
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (220, 40, 40),
    'green': (30, 200, 60),
    'blue': (40, 70, 230),
    'yellow': (240, 215, 30),
    'purple': (150, 50, 210),
    'orange': (250, 135, 20),
}
# Everyday things of each colour, for reasoning questions ("the shape coloured like a ripe tomato").
COLOUR_METAPHORS: Dict[str, str] = {
    'red': 'a ripe tomato',
    'green': 'a fresh lime',
    'blue': 'a sapphire',
    'yellow': 'a banana',
    'purple': 'a plum',
    'orange': 'a pumpkin',
}
# size class -> radius as a fraction of the image side
SIZES: Dict[str, float] = {'small': 0.075, 'medium': 0.115, 'large': 0.16}

NUMBER_WORDS = ('no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
                'eleven', 'twelve')

THING_IDS = [c[0] for c in THING_CATEGORIES]
STUFF_IDS = [c[0] for c in STUFF_CATEGORIES]
CATEGORY_NAMES: Dict[int, str] = {c[0]: c[1] for c in THING_CATEGORIES}
CATEGORY_NAMES.update({c[0]: c[1] for c in STUFF_CATEGORIES})
CORNERS: Dict[str, int] = {c[1]: c[2] for c in THING_CATEGORIES}


def clean_category_name(name: str) -> str:
    """X-SAM's name cleaning: ``-merged``/``-other``/``-stuff`` removed, other hyphens become spaces, lower case
    (``sky-other-merged`` -> ``sky``, ``wall-brick`` -> ``wall brick``)."""
    name = name.lower()
    for suffix in ('-merged', '-other', '-stuff'):
        name = name.replace(suffix, '')
    return name.replace('-', ' ').strip()


def _palette() -> Dict[int, Tuple[int, int, int]]:
    pal = {cid: COLOURS[list(COLOURS)[i % len(COLOURS)]] for i, cid in enumerate(THING_IDS)}
    pal.update({c[0]: c[2] for c in STUFF_CATEGORIES})
    return pal


PALETTE: Dict[int, Tuple[int, int, int]] = _palette()

# ``metainfo`` for mmdet's CocoPanopticDataset / CocoDataset on the shapes data (raw names, as in the JSON).
SHAPES_PANOPTIC_METAINFO = dict(
    classes=tuple(CATEGORY_NAMES[i] for i in THING_IDS + STUFF_IDS),
    thing_classes=tuple(CATEGORY_NAMES[i] for i in THING_IDS),
    stuff_classes=tuple(CATEGORY_NAMES[i] for i in STUFF_IDS),
    palette=[PALETTE[i] for i in THING_IDS + STUFF_IDS],
)
SHAPES_INSTANCE_METAINFO = dict(
    classes=tuple(CATEGORY_NAMES[i] for i in THING_IDS),
    palette=[PALETTE[i] for i in THING_IDS],
)
