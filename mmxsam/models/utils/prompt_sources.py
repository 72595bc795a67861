"""Where each visual-grounded (VGD) prompt slot takes its prompt from: its own image or another image of
the batch (reference §1.7; the paper's single- and cross-image VGD, Fig. 11-12).

A VGD sample lists ``K`` slots, slot ``k`` standing for COCO category ``categories[k]``; its own prompt for
slot ``k`` is a mask on its own image. The model may instead read slot ``k``'s region feature from another
sample ``j`` of the batch that has a slot ``k'`` of the same category, i.e. from image ``j``'s prompt.

Modes:

* ``'same_image'``: every slot keeps its own prompt (single-image VGD; the default at evaluation).
* ``'cross_image'``: the prompt comes from the first *other* sample (in batch order after ``b``, cyclically)
  with the category; a slot no other sample can serve keeps its own prompt and is counted as a fallback.
  Deterministic for a fixed batch composition (evaluation: fixed batch size, no shuffling).
* ``'batch'``: a uniformly drawn slot of the category among all samples of the batch, the sample's own
  included (the official training behaviour).
"""
from typing import List, Optional, Sequence, Tuple

import torch

PROMPT_SOURCES = ('same_image', 'cross_image', 'batch')


def prompt_sources(categories: Sequence[Optional[Sequence[int]]], mode: str,
                   generator: Optional[torch.Generator] = None) -> Tuple[List[List[Tuple[int, int]]], int]:
    """The (sample, slot) whose prompt every slot uses.

    Args:
        categories: per sample, the category of each slot, or None for a sample that does not take part
            (another task: its slots keep their own prompts).
        mode: one of :data:`PROMPT_SOURCES`.
        generator: random source of ``'batch'`` (default: torch's global generator).

    Returns:
        tuple: ``sources[b][k] = (j, k')`` for every slot of every sample with categories (an empty list for
        the others), and the number of ``'cross_image'`` fallbacks to the own prompt.
    """
    if mode not in PROMPT_SOURCES:
        raise ValueError(f'the VGD prompt source must be one of {PROMPT_SOURCES}, got {mode!r}')
    index = {}  # category -> [(j, k'), ...] in batch order
    for j, cats in enumerate(categories):
        for k, c in enumerate(cats or ()):
            index.setdefault(int(c), []).append((j, k))
    num = len(categories)
    sources: List[List[Tuple[int, int]]] = []
    fallbacks = 0
    for b, cats in enumerate(categories):
        row = []
        for k, c in enumerate(cats or ()):
            if mode == 'same_image':
                row.append((b, k))
            elif mode == 'cross_image':
                others = [s for s in index[int(c)] if s[0] != b]
                if others:  # the nearest other sample after b, cyclically
                    row.append(min(others, key=lambda s: ((s[0] - b) % num, s[1])))
                else:
                    row.append((b, k))
                    fallbacks += 1
            else:
                options = index[int(c)]
                pick = int(torch.randint(len(options), (1, ), generator=generator)) if len(options) > 1 else 0
                row.append(options[pick])
        sources.append(row)
    return sources, fallbacks
