"""Decoder items: which ``<SEG>`` segments what against which class set (reference §1.3, §2).

The LLM gives, per sample, phrase conditions ``(K_b, C)`` and ``<SEG>`` embeddings ``(S_b, C)``
(:func:`.condition_pooling.build_conditions`). The decoder runs on *items*; an item is one image's
features, one ``<SEG>`` embedding (added to every content query) and one class set. Tasks pair them in
two ways (:data:`SEG_TASK_MODES`):

* ``'sample'`` (genseg, ovseg, gcgseg, vgdseg, intseg): one item per sample, its single ``<SEG>``, its
  own ``K_b`` phrases as classes; the ground-truth labels index the phrases.
* ``'expression'`` (refseg, reaseg): one item per expression; the ``k``-th ``<SEG>`` goes with the
  ``k``-th phrase. In training the class set is every expression of the local batch (contrastive; the
  target is the item's own index); at test time it is the item's own expression only, so a result never
  depends on which other samples share the batch.

Counts that do not fit are errors in training (never a silent drop: the official code skips such
samples). In prediction, where a generated answer may hold any number of ``<SEG>``, the usable pairs are
kept and the rest are reported in :attr:`SegItems.warnings`.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

#: task -> how its ``<SEG>`` tokens map to decoder items
SEG_TASK_MODES: Dict[str, str] = dict(genseg='sample', ovseg='sample', gcgseg='sample', vgdseg='sample',
                                      intseg='sample', refseg='expression', reaseg='expression')
#: tasks whose answers never segment (LM loss only)
TEXT_TASKS = ('imgconv', )


@dataclass
class SegItems:
    """The decoder batch built from one LLM batch (``N`` items).

    Attributes:
        sample_index (Tensor): ``(N,)`` long, the sample (image features) of each item.
        phrase_index (list[list[int]]): per item, the sample's phrase index of each class column
            (sample mode: ``0..K_b-1``; expression mode: ``[k]``, or every expression's in contrastive
            training, where it indexes ``expressions`` instead).
        conditions (Tensor): ``(N, K_max, C)`` class embeddings, zero-padded.
        condition_mask (Tensor): ``(N, K_max)`` bool, True for real classes.
        seg_embeds (Tensor): ``(N, C)``.
        target_phrase (list[int | None]): expression items: the sample's phrase ``k`` they segment;
            sample items: None (every phrase).
        target_label (list[int | None]): expression items: their class column (``k``'s column); None
            for sample items (labels index the phrases directly).
        warnings (list[str]): dropped ``<SEG>``/phrases (prediction only).
    """
    sample_index: Tensor
    phrase_index: List[List[int]]
    conditions: Tensor
    condition_mask: Tensor
    seg_embeds: Tensor
    target_phrase: List[Optional[int]]
    target_label: List[Optional[int]]
    warnings: List[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.phrase_index)


def _pad_stack(rows: List[Tensor], channels: int, like: Tensor):
    k_max = max((r.shape[0] for r in rows), default=0)
    out = like.new_zeros(len(rows), k_max, channels)
    mask = torch.zeros(len(rows), k_max, dtype=torch.bool, device=like.device)
    for i, r in enumerate(rows):
        out[i, :r.shape[0]] = r
        mask[i, :r.shape[0]] = True
    return out, mask


def build_seg_items(conditions: Tensor,
                    num_phrases: Sequence[int],
                    seg_embeds: Sequence[Tensor],
                    tasks: Sequence[str],
                    names: Sequence[str],
                    training: bool,
                    contrastive: bool = True) -> SegItems:
    """Pair ``<SEG>`` embeddings with class sets, one decoder item at a time.

    Args:
        conditions: ``(B, K_max, C)`` phrase embeddings (``build_conditions``).
        num_phrases: ``K_b`` per sample.
        seg_embeds: ``B`` tensors ``(S_b, C)``.
        tasks: the task of each sample (``imgconv`` samples give no item and must hold no ``<SEG>``).
        names: per-sample names for messages.
        training: strict counts (errors) and contrastive expression classes.
        contrastive: in training, expression items classify against every expression of the batch.

    Returns:
        SegItems (possibly empty: ``len() == 0``).

    Raises:
        ValueError: (training, or any time for an unknown task / a ``<SEG>`` in a text task) a sample
            whose ``<SEG>``/phrase counts do not fit its task; the message names the sample and task.
    """
    channels = conditions.shape[-1]
    sample_index, phrase_index, conds, segs, target_phrase = [], [], [], [], []
    warnings: List[str] = []

    def problem(message: str) -> None:
        if training:
            raise ValueError(message)
        warnings.append(message)

    for b, task in enumerate(tasks):  # per sample: the counts differ
        k, s = int(num_phrases[b]), seg_embeds[b].shape[0]
        where = f'{names[b]} (task {task!r})'
        mode = SEG_TASK_MODES.get(task)
        if mode is None:
            if task in TEXT_TASKS:
                if s:
                    raise ValueError(f'{where}: {s} <SEG> token(s) in a task without segmentation')
                continue
            raise ValueError(f'{where}: unknown task; segmentation tasks are {sorted(SEG_TASK_MODES)}, '
                             f'text-only tasks {list(TEXT_TASKS)}')
        if s == 0:
            problem(f'{where}: no <SEG> token, so nothing to segment')
            continue
        if k == 0:
            problem(f'{where}: {s} <SEG> token(s) but no <p>...</p> condition to classify against')
            continue
        if mode == 'sample':
            if s > 1:
                problem(f'{where}: {s} <SEG> tokens; this task takes exactly one per sample (the first is used)')
            sample_index.append(b)
            phrase_index.append(list(range(k)))
            conds.append(conditions[b, :k])
            segs.append(seg_embeds[b][0])
            target_phrase.append(None)
        else:
            if s != k:
                problem(f'{where}: {s} <SEG> token(s) for {k} expression(s); each expression needs its own '
                        f'<SEG> (the first {min(s, k)} pairs are used)')
            for j in range(min(s, k)):
                sample_index.append(b)
                phrase_index.append([j])
                conds.append(conditions[b, j:j + 1])
                segs.append(seg_embeds[b][j])
                target_phrase.append(j)

    target_label: List[Optional[int]] = [None if t is None else 0 for t in target_phrase]
    expression_items = [i for i, t in enumerate(target_phrase) if t is not None]
    if training and contrastive and expression_items:
        # reference §2: the class set of every expression item is all expressions of the local batch
        stack = torch.cat([conds[i] for i in expression_items])  # (E, C)
        for rank, i in enumerate(expression_items):
            conds[i] = stack
            phrase_index[i] = list(range(len(expression_items)))
            target_label[i] = rank
    cond_tensor, mask = _pad_stack(conds, channels, conditions)
    seg_tensor = torch.stack(segs) if segs else conditions.new_zeros(0, channels)
    return SegItems(sample_index=torch.tensor(sample_index, dtype=torch.long, device=conditions.device),
                    phrase_index=phrase_index, conditions=cond_tensor, condition_mask=mask, seg_embeds=seg_tensor,
                    target_phrase=target_phrase, target_label=target_label, warnings=warnings)
