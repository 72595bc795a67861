"""Condition and ``<SEG>`` embeddings read off the LLM's hidden states (reference §1.6 and §2).

X-SAM turns the LLM output into the decoder's class set and query prior:

* **condition embeddings**: every token from ``<p>`` to ``</p>`` *inclusive* belongs to its phrase;
  the (projected) hidden states are averaged over each phrase span, one vector per phrase;
* **``<SEG>`` embedding**: the (projected) hidden state at each ``<SEG>`` position.

All functions here are pure and vectorised (no Python loop over tokens or samples).

Conventions the caller must follow:

* **Expanded ids.** The LLM does not see ``input_ids``: it sees ``inputs_embeds`` in which the single
  ``<image>`` placeholder became many visual tokens (729 SigLIP + 1024 SAM at full size) and every
  ``<region>`` placeholder one region feature. These functions take the *expanded* id sequence,
  aligned one to one with the hidden states: each visual token position carries
  :data:`IMAGE_TOKEN_INDEX` (-200), a ``<region>`` position keeps :data:`REGION_TOKEN_INDEX` (-300),
  padding keeps the pad id. Visual-token positions never belong to a phrase (the reference gives them
  condition id -1); a ``<region>`` inside ``<p>…</p>`` stays in that span.
* **Projected hidden states.** The reference projects every token with ``llm_projector`` (a
  Linear-GELU-Linear, so it does not commute with the mean) and *then* averages. Pass hidden states
  already projected to the decoder width, ``(…, L, C_dec)``.
* **Alignment.** ``hidden[..., i, :]`` is the state computed with token ``i`` as input (HF
  ``hidden_states[-1]``; no shift). In generation the hidden states of ``prompt + generated`` cover
  ``sequences[:, :-1]`` (the last generated token is never fed back), so pair them with those ids.
* **Padding.** Batched ids may be left- or right-padded: pad positions match neither ``<p>``, ``</p>``
  nor ``<SEG>`` and are ignored. Conditions are padded to the batch maximum ``K_max`` with zero
  vectors and ``condition_mask`` False, the head's ``(B, N, C)`` / ``(B, N)`` format.
* **Missing phrases.** A sample with ``<SEG>`` but no phrase gets ``num_phrases == 0`` (all its
  ``condition_mask`` slots False). Whether that is an error depends on the task; the caller decides.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from ..language.constants import IMAGE_TOKEN_INDEX


def _first_positions(flags: Tensor, limit: int = 5) -> List[Tuple[int, int]]:
    """(sample, position) of the first ``limit`` True entries of a (B, L) bool tensor."""
    return [tuple(p) for p in flags.nonzero()[:limit].tolist()]


def _format_positions(positions: List[Tuple[int, int]], batched: bool) -> str:
    if batched:
        return ', '.join(f'sample {b} position {i}' for b, i in positions)
    return ', '.join(f'position {i}' for _, i in positions)


def _batched_phrase_spans(input_ids: Tensor, p_start_id: int, p_end_id: int,
                          exclude_ids: Sequence[int], batched: bool) -> Tensor:
    """Span ids of (B, L) ids; see :func:`phrase_spans`. ``batched`` only changes error messages."""
    if p_start_id == p_end_id:
        raise ValueError(f'p_start_id and p_end_id must differ, both are {p_start_id}')
    is_start = input_ids == p_start_id  # (B, L)
    is_end = input_ids == p_end_id  # (B, L)
    depth = (is_start.long() - is_end.long()).cumsum(dim=-1)  # (B, L) open phrases after token i
    if bool((depth < 0).any()):
        negative = depth < 0  # (B, L); its first True in a row is an unmatched </p>
        bad = negative & (negative.long().cumsum(dim=-1) == 1)
        raise ValueError('unbalanced phrase tags: `</p>` without an open `<p>` at '
                         + _format_positions(_first_positions(bad), batched))
    if bool((depth > 1).any()):
        bad = is_start & (depth > 1)
        raise ValueError('nested phrase tags: `<p>` while another `<p>` is still open at '
                         + _format_positions(_first_positions(bad), batched))
    final_depth = depth[..., -1] if depth.shape[-1] else depth.new_zeros(depth.shape[:-1])  # (B,)
    unclosed_rows = final_depth != 0  # (B,)
    if bool(unclosed_rows.any()):
        # the last <p> of a row that ends inside a phrase is the unclosed one
        last_start = is_start & (is_start.long().flip(-1).cumsum(-1).flip(-1) == 1)
        bad = last_start & unclosed_rows[..., None]
        raise ValueError('unbalanced phrase tags: `<p>` never closed by `</p>`, opened at '
                         + _format_positions(_first_positions(bad), batched))
    # inside a span, inclusive: depth is 1 on <p> and the tokens after it, 0 on </p> (closing it)
    in_span = (depth + is_end.long()) == 1  # (B, L)
    for exclude_id in exclude_ids:
        in_span &= input_ids != exclude_id
    phrase_index = is_start.long().cumsum(dim=-1) - 1  # (B, L) index of the latest <p>
    return torch.where(in_span, phrase_index, torch.full_like(phrase_index, -1))


def phrase_spans(input_ids: Tensor, p_start_id: int, p_end_id: int,
                 exclude_ids: Sequence[int] = (IMAGE_TOKEN_INDEX, )) -> Tensor:
    """Phrase index of every token: ``<p>`` … ``</p>`` inclusive, in order of appearance.

    Args:
        input_ids (Tensor): ``(L,)`` *expanded* ids (see the module docstring).
        p_start_id (int): id of ``<p>``.
        p_end_id (int): id of ``</p>``.
        exclude_ids (Sequence[int]): ids that never belong to a phrase even inside one. Defaults to
            ``(IMAGE_TOKEN_INDEX,)`` (visual tokens, as in the reference). ``<region>`` (-300) is not
            excluded: it stays in its span.

    Returns:
        Tensor: ``(L,)`` long, the phrase index ``0..K-1`` of tokens inside a span, ``-1`` elsewhere.

    Raises:
        ValueError: on a ``</p>`` without an open ``<p>``, a ``<p>`` inside an open phrase (nesting),
            or a ``<p>`` never closed; the message names the positions.
    """
    if input_ids.dim() != 1:
        raise ValueError(f'input_ids must be (L,), got {tuple(input_ids.shape)}; use build_conditions for batches')
    return _batched_phrase_spans(input_ids[None], p_start_id, p_end_id, exclude_ids, batched=False)[0]


def pool_phrases(hidden: Tensor, span_ids: Tensor, num_phrases: Optional[int] = None) -> Tensor:
    """Mean of the hidden states over each phrase span.

    Args:
        hidden (Tensor): ``(L, C)`` projected hidden states.
        span_ids (Tensor): ``(L,)`` from :func:`phrase_spans` (``-1`` outside spans).
        num_phrases (int, optional): number of rows ``K`` of the output. Defaults to
            ``span_ids.max() + 1`` (0 when there is no span).

    Returns:
        Tensor: ``(K, C)`` in ``hidden.dtype`` (summed in float32); a phrase with no token is zero.
    """
    if hidden.dim() != 2 or span_ids.shape != hidden.shape[:1]:
        raise ValueError(f'hidden must be (L, C) and span_ids (L,), got {tuple(hidden.shape)} and '
                         f'{tuple(span_ids.shape)}')
    if num_phrases is None:
        num_phrases = int(span_ids.max().item()) + 1 if span_ids.numel() else 0
    valid = span_ids >= 0  # (L,)
    index = span_ids[valid]  # (T,)
    sums = hidden.new_zeros(num_phrases, hidden.shape[-1], dtype=torch.float32)
    sums = sums.index_add(0, index, hidden[valid].float())  # (K, C)
    counts = torch.bincount(index, minlength=num_phrases)[:num_phrases]  # (K,)
    return (sums / counts.clamp_min(1)[:, None]).to(hidden.dtype)


def seg_positions(input_ids: Tensor, seg_token_id: int) -> Tensor:
    """Positions of the ``<SEG>`` tokens of one ``(L,)`` id sequence, ascending: ``(S,)`` long."""
    if input_ids.dim() != 1:
        raise ValueError(f'input_ids must be (L,), got {tuple(input_ids.shape)}')
    return (input_ids == seg_token_id).nonzero(as_tuple=True)[0]


def gather_seg_embeds(hidden: Tensor, input_ids: Tensor, seg_token_id: int) -> Tensor:
    """Hidden states at the ``<SEG>`` positions: ``hidden (L, C)``, ``input_ids (L,)`` -> ``(S, C)``."""
    if hidden.dim() != 2 or input_ids.shape != hidden.shape[:1]:
        raise ValueError(f'hidden must be (L, C) and input_ids (L,), got {tuple(hidden.shape)} and '
                         f'{tuple(input_ids.shape)}')
    return hidden[seg_positions(input_ids, seg_token_id)]


def build_conditions(hidden: Tensor, input_ids: Tensor, p_start_id: int, p_end_id: int, seg_token_id: int,
                     exclude_ids: Sequence[int] = (IMAGE_TOKEN_INDEX, )
                     ) -> Dict[str, Union[Tensor, List[Tensor], List[int]]]:
    """Conditions and ``<SEG>`` embeddings of a batch, in the head's input format.

    Args:
        hidden (Tensor): ``(B, L, C)`` projected hidden states.
        input_ids (Tensor): ``(B, L)`` *expanded* ids aligned with ``hidden`` (see the module docstring).
        p_start_id, p_end_id, seg_token_id (int): ids of ``<p>``, ``</p>``, ``<SEG>``.
        exclude_ids (Sequence[int]): see :func:`phrase_spans`.

    Returns:
        dict:

        - ``conditions`` (Tensor): ``(B, K_max, C)``, phrase means, zero in padded slots;
          ``K_max = max(num_phrases)`` (0 when no sample has a phrase).
        - ``condition_mask`` (Tensor): ``(B, K_max)`` bool, True for real phrases.
        - ``seg_embeds`` (list[Tensor]): ``B`` tensors ``(S_b, C)``, one row per ``<SEG>`` in order.
          The head takes one ``(C,)`` per decoder item; mapping several ``<SEG>`` (e.g. one per
          referring expression) to decoder items is the caller's job.
        - ``num_phrases`` (list[int]): ``K_b`` per sample (0: no phrase; the caller decides whether
          the task allows that).

    Raises:
        ValueError: on bad shapes or unbalanced/nested tags (the message names sample and positions).
    """
    if hidden.dim() != 3 or input_ids.shape != hidden.shape[:2]:
        raise ValueError(f'hidden must be (B, L, C) and input_ids (B, L), got {tuple(hidden.shape)} and '
                         f'{tuple(input_ids.shape)}')
    batch_size, _, channels = hidden.shape
    span_ids = _batched_phrase_spans(input_ids, p_start_id, p_end_id, exclude_ids, batched=True)  # (B, L)
    num_phrases = (input_ids == p_start_id).sum(dim=-1)  # (B,)
    k_max = int(num_phrases.max().item()) if batch_size else 0

    # phrase means, all samples at once: flat slot b * K_max + k
    valid = span_ids >= 0  # (B, L)
    batch_index = torch.arange(batch_size, device=hidden.device)[:, None].expand_as(span_ids)  # (B, L)
    slot = (batch_index * k_max + span_ids)[valid]  # (T,)
    sums = hidden.new_zeros(batch_size * k_max, channels, dtype=torch.float32)
    sums = sums.index_add(0, slot, hidden[valid].float())  # (B * K_max, C)
    counts = torch.bincount(slot, minlength=batch_size * k_max)  # (B * K_max,)
    conditions = (sums / counts.clamp_min(1)[:, None]).to(hidden.dtype).view(batch_size, k_max, channels)
    condition_mask = torch.arange(k_max, device=hidden.device)[None] < num_phrases[:, None]  # (B, K_max)

    # <SEG> embeddings, split per sample
    is_seg = input_ids == seg_token_id  # (B, L)
    seg_embeds = list(hidden[is_seg].split(is_seg.sum(dim=-1).tolist(), dim=0))  # B x (S_b, C)
    return dict(conditions=conditions, condition_mask=condition_mask, seg_embeds=seg_embeds,
                num_phrases=num_phrases.tolist())


def contrastive_conditions(per_item_conditions: List[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
    """Class set of referring / reasoning segmentation: every expression of the local batch.

    Reference §2: each expression is its own decoder item; every item classifies against *all*
    expressions of the per-GPU batch (plus the head's background), and its target is its own index.

    Args:
        per_item_conditions (list[Tensor]): ``B`` tensors ``(1, C)`` (or ``(C,)``), the single phrase
            embedding of each expression, in decoder-item order.

    Returns:
        tuple:

        - conditions (Tensor): ``(B, B, C)``; row ``b`` is the same stack of all ``B`` expressions
          (an expanded view; do not write to it in place).
        - condition_mask (Tensor): ``(B, B)`` bool, all True.
        - labels (Tensor): ``(B,)`` long, ``labels[b] = b``; use ``gt_instances.labels = labels[b:b+1]``
          for item ``b``.

    Raises:
        ValueError: on an empty list or an item that is not exactly one ``C``-vector (e.g. 0 or 2
            phrases in one expression), naming the item.
    """
    if len(per_item_conditions) == 0:
        raise ValueError('contrastive_conditions needs at least one expression')
    rows = []
    for index, cond in enumerate(per_item_conditions):  # one check per item (not per token)
        if cond.dim() == 1:
            cond = cond[None]
        if cond.dim() != 2 or cond.shape[0] != 1:
            raise ValueError(f'item {index}: expected one condition (1, C), got {tuple(cond.shape)}; '
                             'a referring/reasoning expression must contain exactly one <p>...</p>')
        rows.append(cond)
    stacked = torch.cat(rows, dim=0)  # (B, C); raises on mismatched C
    batch_size = stacked.shape[0]
    conditions = stacked[None].expand(batch_size, -1, -1)  # (B, B, C)
    condition_mask = torch.ones(batch_size, batch_size, dtype=torch.bool, device=stacked.device)
    labels = torch.arange(batch_size, device=stacked.device)
    return conditions, condition_mask, labels
