"""Text for the synthetic scenes: referring expressions, reasoning questions, GCG captions, chat.

Every text is *true* of its scene: a referring expression matches exactly one visible object, a
reasoning question has exactly one answer object, a caption's phrases are grounded to the masks of
the objects they name, and a conversation's answers are computed from the scene.
"""
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .constants import COLOUR_METAPHORS, COLOURS, CORNERS, NUMBER_WORDS, clean_category_name
from .scene import SHAPES, Scene, ShapeObject


def _plural(word: str) -> str:
    return word + ('es' if word.endswith(('s', 'x')) else 's')


def _article(word: str) -> str:
    return 'an' if word[0] in 'aeiou' else 'a'


def _count_phrase(n: int, noun: str) -> str:
    word = NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)
    return f'{word} {noun if n == 1 else _plural(noun)}'


# ----------------------------------------------------------------------------------------------------
# referring expressions
# ----------------------------------------------------------------------------------------------------
# Each template: (format string, attributes it constrains). Ordered from least to most specific.
_REF_TEMPLATES: List[Tuple[str, Tuple[str, ...]]] = [
    ('the {shape}', ('shape',)),
    ('the {colour} shape', ('colour',)),
    ('the {colour} {shape}', ('colour', 'shape')),
    ('the {size} {shape}', ('size', 'shape')),
    ('the {shape} {hwhere}', ('shape', 'hpos')),
    ('the {shape} {vwhere}', ('shape', 'vpos')),
    ('the {size} {colour} {shape}', ('size', 'colour', 'shape')),
    ('the {colour} {shape} {hwhere}', ('colour', 'shape', 'hpos')),
    ('the {colour} {shape} {vwhere}', ('colour', 'shape', 'vpos')),
    ('the {size} {colour} {shape} {hwhere}', ('size', 'colour', 'shape', 'hpos')),
]
_ORDINALS = ('leftmost', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth')


_WHERE = {'left': 'on the left', 'middle': 'in the middle', 'right': 'on the right', 'top': 'at the top',
          'bottom': 'at the bottom'}


def object_attributes(obj: ShapeObject, scene: Scene) -> Dict[str, str]:
    """``shape``, ``colour``, ``size``, ``hpos`` (left/middle/right), ``vpos`` (top/bottom) and their phrases."""
    hpos, vpos = obj.hpos(scene.width), obj.vpos(scene.height)
    return dict(shape=obj.shape, colour=obj.colour, size=obj.size, hpos=hpos, vpos=vpos, hwhere=_WHERE[hpos],
                vwhere=_WHERE[vpos])


def referring_expressions(scene: Scene, index: int, rng: np.random.Generator, max_sentences: int = 3) -> List[str]:
    """Up to ``max_sentences`` expressions that each match object ``index`` and no other object."""
    attrs = [object_attributes(o, scene) for o in scene.objects]
    target = attrs[index]
    unique = []
    for template, keys in _REF_TEMPLATES:
        matches = [i for i, a in enumerate(attrs) if all(a[k] == target[k] for k in keys)]
        if matches == [index]:
            unique.append(template.format(**target))
    if not unique:  # identical-looking objects: order them left to right
        same = sorted((i for i, a in enumerate(attrs)
                       if a['colour'] == target['colour'] and a['shape'] == target['shape']),
                      key=lambda i: scene.objects[i].centroid[0])
        rank = same.index(index)
        if rank == len(same) - 1:
            unique.append(f'the rightmost {target["colour"]} {target["shape"]}')
        elif rank == 0:
            unique.append(f'the leftmost {target["colour"]} {target["shape"]}')
        else:
            unique.append(f'the {_ORDINALS[rank]} {target["colour"]} {target["shape"]} from the left')
    if len(unique) > max_sentences:
        picks = sorted(rng.choice(len(unique), size=max_sentences, replace=False).tolist())
        unique = [unique[i] for i in picks]
    return unique


# ----------------------------------------------------------------------------------------------------
# reasoning questions (ReasonSeg style)
# ----------------------------------------------------------------------------------------------------
def _unique_by(scene: Scene, key: Callable[[ShapeObject], object], value: object) -> Optional[int]:
    hits = [i for i, o in enumerate(scene.objects) if key(o) == value]
    return hits[0] if len(hits) == 1 else None


def reasoning_queries(scene: Scene) -> List[Dict]:
    """All reasoning queries that have exactly one answer object in ``scene``.

    Returns:
        dicts with ``target`` (object index), ``sentence`` (a full question, ``is_sentence`` style),
        ``phrase`` (a short noun phrase) and ``explanation``.
    """
    out = []
    for obj_idx, obj in enumerate(scene.objects):
        if _unique_by(scene, lambda o: o.shape, obj.shape) == obj_idx:
            n = CORNERS[obj.shape]
            corners = 'no corners' if n == 0 else f'{NUMBER_WORDS[n]} corners'
            out.append(dict(target=obj_idx,
                            sentence=f'Which shape in this picture has {corners}?',
                            phrase=f'the shape with {corners}',
                            explanation=f'{_article(obj.shape).capitalize()} {obj.shape} has {corners}.'))
        if _unique_by(scene, lambda o: o.colour, obj.colour) == obj_idx:
            thing = COLOUR_METAPHORS[obj.colour]
            out.append(dict(target=obj_idx,
                            sentence=f'Which object in the image has the same colour as {thing}?',
                            phrase=f'the shape coloured like {thing}',
                            explanation=(f'{thing[0].upper() + thing[1:]} is {obj.colour}, '
                                         f'and the {obj.shape} is {obj.colour}.')))
    if len(scene.objects) >= 2:
        areas = np.array([o.area for o in scene.objects])
        order = np.argsort(-areas)
        if areas[order[0]] >= 1.5 * areas[order[1]]:
            big = scene.objects[int(order[0])]
            out.append(dict(target=int(order[0]),
                            sentence=('If you had to pick the shape that covers the most of the picture, '
                                      'which one would it be?'),
                            phrase='the biggest shape in the picture',
                            explanation=f'The {big.colour} {big.shape} is clearly larger than every other shape.'))
        xs = np.array([o.centroid[0] for o in scene.objects])
        order = np.argsort(xs)
        if xs[order[1]] - xs[order[0]] >= 0.15 * scene.width:
            left = scene.objects[int(order[0])]
            out.append(dict(target=int(order[0]),
                            sentence=('Which shape would you reach first if you walked in from the left edge '
                                      'of the image?'),
                            phrase='the shape closest to the left edge',
                            explanation=f'The {left.colour} {left.shape} is the leftmost shape.'))
    return out


# ----------------------------------------------------------------------------------------------------
# grounded captions (GranD-f style)
# ----------------------------------------------------------------------------------------------------
def grounded_caption(scene: Scene) -> Tuple[str, List[Dict]]:
    """A caption whose phrases name groups of same-looking objects and the background regions.

    Returns:
        ``(caption, groundings)``; each grounding has ``phrase``, ``span`` ``[start, end)`` (character
        offsets into ``caption``) and ``mask`` (bool ``(H, W)``, union of the grounded regions).
    """
    groups: 'OrderedDict[Tuple[str, str], List[int]]' = OrderedDict()
    for i in sorted(range(len(scene.objects)), key=lambda i: scene.objects[i].centroid[0]):
        o = scene.objects[i]
        groups.setdefault((o.colour, o.shape), []).append(i)
    pieces: List[Tuple[str, np.ndarray]] = []
    for (colour, shape), idx in groups.items():
        n = len(idx)
        phrase = f'{_article(colour)} {colour} {shape}' if n == 1 else _count_phrase(n, f'{colour} {shape}')
        mask = np.zeros((scene.height, scene.width), bool)
        for i in idx:
            mask |= scene.objects[i].mask
        pieces.append((phrase, mask))
    stuff_pieces = [(f'the {clean_category_name(s.name)}', s.mask) for s in scene.stuff]

    caption = 'A picture of '
    groundings: List[Dict] = []

    def _append(text: str, mask: Optional[np.ndarray]) -> None:
        nonlocal caption
        if mask is not None:
            groundings.append(dict(phrase=text, span=[len(caption), len(caption) + len(text)], mask=mask))
        caption += text

    def _append_list(items: Sequence[Tuple[str, np.ndarray]]) -> None:
        for k, (text, mask) in enumerate(items):
            if k > 0:
                _append(' and ' if k == len(items) - 1 else ', ', None)
            _append(text, mask)

    if pieces:
        _append_list(pieces)
        _append(' in front of ', None)
    _append_list(stuff_pieces)
    _append('.', None)
    return caption, groundings


def plain_caption(scene: Scene) -> str:
    return grounded_caption(scene)[0]


# ----------------------------------------------------------------------------------------------------
# conversations (LLaVA style)
# ----------------------------------------------------------------------------------------------------
def conversation_turns(scene: Scene, rng: np.random.Generator, max_turns: int = 3) -> List[Tuple[str, str]]:
    """Question/answer pairs about ``scene`` (counting, colours, background, presence)."""
    n = len(scene.objects)
    counts = {s: sum(o.shape == s for o in scene.objects) for s in SHAPES}
    candidates: List[Tuple[str, str]] = [
        ('How many shapes are there in the image?',
         f'There {"is" if n == 1 else "are"} {_count_phrase(n, "shape")}.'),
        ('What is in the background of the image?',
         'The background shows ' + ' and '.join(f'{clean_category_name(s.name)}' for s in scene.stuff) + '.'),
    ]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    c = counts[shape]
    candidates.append((f'How many {_plural(shape)} are there in the image?',
                       f'There {"is" if c == 1 else "are"} {_count_phrase(c, shape)}.'))
    for s, k in counts.items():
        if k == 1:
            obj = next(o for o in scene.objects if o.shape == s)
            candidates.append((f'What colour is the {s}?', f'The {s} is {obj.colour}.'))
            break
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    present = any(o.colour == colour and o.shape == shape for o in scene.objects)
    candidates.append((f'Is there a {colour} {shape} in the image?', 'Yes.' if present else 'No.'))
    k = min(max_turns, len(candidates))
    picks = sorted(rng.choice(len(candidates), size=k, replace=False).tolist())
    return [candidates[i] for i in picks]


def text_only_turns(rng: np.random.Generator) -> List[Tuple[str, str]]:
    """A pure-text exchange (LLaVA-665K has such samples: no image)."""
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    n = CORNERS[shape]
    return [(f'How many corners does a {shape} have?',
             f'{_article(shape).capitalize()} {shape} has {"no" if n == 0 else NUMBER_WORDS[n]} corners.')]
