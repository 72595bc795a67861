"""Helpers shared by the mmxsam metrics: field access on dicts and data elements, the per-sample id,
de-duplication of sampler padding, plain-text tables."""
import logging
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
from mmengine.logging import print_log


def get_field(container: Any, key: str, default: Any = None) -> Any:
    """``container[key]`` for dicts (what mmengine's Evaluator passes) and data elements alike; ``default``
    for a missing key or a None container."""
    if container is None:
        return default
    if isinstance(container, dict):
        return container.get(key, default)
    return getattr(container, key, default)


def sample_index(data_sample: Any, owner: str) -> Any:
    """The sample's ``sample_idx`` metainfo (a Python scalar), or a KeyError naming the metric."""
    idx = get_field(data_sample, 'sample_idx')
    if idx is None:
        raise KeyError(f'{owner} needs metainfo `sample_idx` in every data sample')
    return idx.item() if isinstance(idx, torch.Tensor) else idx


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Plain-text table; the first column left-aligned, the others right-aligned."""
    cells = [tuple(str(c) for c in header)] + [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    sep = '+' + '+'.join('-' * (w + 2) for w in widths) + '+'

    def fmt(row):
        return '| ' + ' | '.join(c.ljust(w) if i == 0 else c.rjust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))) + ' |'

    return '\n'.join([sep, fmt(cells[0]), sep] + [fmt(row) for row in cells[1:]] + [sep])


def drop_duplicate_results(results: Sequence[dict], owner: str) -> List[dict]:
    """Keep the first result (a dict with ``sample_idx``) of every ``sample_idx``; log repeats and conflicts."""
    seen: Dict[Any, dict] = {}
    num_dup = num_conflict = 0
    for result in results:
        first = seen.get(result['sample_idx'])
        if first is None:
            seen[result['sample_idx']] = result
            continue
        num_dup += 1
        num_conflict += int(not _same(first, result))
    if num_dup:
        print_log(f'{owner}: dropped {num_dup} repeated result(s) with an already seen sample_idx (sampler '
                  f'padding); {len(seen)} unique samples remain.', logger='current', level=logging.WARNING)
    if num_conflict:
        print_log(f'{owner}: {num_conflict} of the dropped repeats differ from the first result of their '
                  'sample_idx; sample_idx must be unique per sample, otherwise distinct samples are being '
                  'discarded.', logger='current', level=logging.WARNING)
    return list(seen.values())


def _same(a: Any, b: Any) -> bool:
    """Deep equality for result dicts holding numpy arrays."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def sample_sort_key(value: Any) -> Tuple[int, Any]:
    """Sort ints/floats numerically and anything else by its string (mixed types never compare)."""
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return (0, float(value))
    return (1, str(value))


