"""Splice visual tokens into the LLM's input embeddings (reference §1.5-1.7).

The data pipeline tokenises a conversation into compact ids in which ``<image>`` is one placeholder
(:data:`IMAGE_TOKEN_INDEX`, -200) and every ``<region>`` one placeholder (:data:`REGION_TOKEN_INDEX`,
-300). The LLM sees ``inputs_embeds`` in which

* the ``<image>`` placeholder became the sample's image tokens (X-SAM: 729 SigLIP + 1024 SAM = 1753),
* the ``k``-th ``<region>`` placeholder became the ``k``-th region feature (one token),
* every other id its text embedding.

:func:`merge_multimodal_inputs` does this for a batch and also returns the *expanded* id sequence that
is aligned one to one with the LLM's hidden states (what :mod:`.condition_pooling` reads): image-token
positions carry -200, region positions -300, padding :data:`PAD_INDEX` (which matches no token).
"""
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from ..language.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX, REGION_TOKEN_INDEX

#: id of padding positions in the expanded ids (never a real token, never a placeholder).
PAD_INDEX = -1
PADDING_SIDES = ('right', 'left')


def merge_multimodal_inputs(input_ids: Sequence[Tensor],
                            embed_tokens: Callable[[Tensor], Tensor],
                            image_tokens: Sequence[Optional[Tensor]],
                            region_tokens: Optional[Sequence[Optional[Tensor]]] = None,
                            labels: Optional[Sequence[Tensor]] = None,
                            padding_side: str = 'right',
                            max_length: Optional[int] = None,
                            names: Optional[Sequence[str]] = None) -> Dict[str, Optional[Tensor]]:
    """Build the LLM inputs of a batch.

    Args:
        input_ids: ``B`` compact id tensors ``(L_b,)`` with at most one -200 and any number of -300.
        embed_tokens: the LLM's token embedding, ids ``(N,)`` -> ``(N, H)``.
        image_tokens: per sample ``(N_b, H)`` visual tokens, or None for a sample without an image (its
            ids must then hold no -200).
        region_tokens: per sample ``(R_b, H)`` region features, one per -300 in order (None: no region).
        labels: per sample ``(L_b,)`` LM labels aligned with ``input_ids`` (-100 unsupervised); visual
            positions get -100.
        padding_side: ``'right'`` (training, teacher forcing) or ``'left'`` (batched generation).
        max_length: the LLM's context; a longer expanded sequence is an error naming the sample.
        names: per-sample names for error messages (image path ...).

    Returns:
        dict: ``inputs_embeds`` ``(B, T, H)`` (zeros at padding), ``attention_mask`` ``(B, T)`` long,
        ``expanded_ids`` ``(B, T)`` long (-200 / -300 at visual positions, :data:`PAD_INDEX` at
        padding), ``labels`` ``(B, T)`` long or None, ``lengths`` ``(B,)`` long, the unpadded lengths.

    Raises:
        ValueError: more than one ``<image>``, an ``<image>`` without image tokens, a count of
            ``<region>`` placeholders different from the number of region features, an over-long
            sequence; the message names the sample.
    """
    if padding_side not in PADDING_SIDES:
        raise ValueError(f'padding_side must be one of {PADDING_SIDES}, got {padding_side!r}')
    batch_size = len(input_ids)
    if batch_size == 0:
        raise ValueError('merge_multimodal_inputs needs at least one sample')
    if len(image_tokens) != batch_size:
        raise ValueError(f'{len(image_tokens)} image token sets for {batch_size} samples')
    region_tokens = [None] * batch_size if region_tokens is None else list(region_tokens)
    if len(region_tokens) != batch_size:
        raise ValueError(f'{len(region_tokens)} region feature sets for {batch_size} samples')
    names = [f'sample {b}' for b in range(batch_size)] if names is None else list(names)

    # every text token of the batch through the embedding at once: (sum L_b, H)
    flat_ids = torch.cat(list(input_ids))
    text_embeds = embed_tokens(flat_ids.clamp_min(0)).split([len(i) for i in input_ids])

    embeds, ids, labs = [], [], []
    for b in range(batch_size):  # per sample: the number and position of visual tokens differ
        sample_ids = input_ids[b]
        is_image = sample_ids == IMAGE_TOKEN_INDEX
        is_region = sample_ids == REGION_TOKEN_INDEX
        num_images, num_regions = int(is_image.sum()), int(is_region.sum())
        if num_images > 1:
            raise ValueError(f'{names[b]}: {num_images} <image> placeholders, expected at most one')
        if num_images and image_tokens[b] is None:
            raise ValueError(f'{names[b]}: the prompt has an <image> placeholder but the sample has no image')
        regions = region_tokens[b]
        num_features = 0 if regions is None else regions.shape[0]
        if num_regions != num_features:
            raise ValueError(f'{names[b]}: {num_regions} <region> placeholder(s) but {num_features} visual '
                             'prompt mask(s); every <region> needs exactly one prompt mask')
        sample_embeds = text_embeds[b]
        if num_regions:
            sample_embeds = sample_embeds.index_put((is_region.nonzero(as_tuple=True)[0], ),
                                                    regions.to(sample_embeds.dtype))
        sample_labels = None if labels is None else labels[b]
        if num_images:
            pos = int(is_image.nonzero()[0])
            vis = image_tokens[b].to(sample_embeds.dtype)  # (N_b, H)
            n = vis.shape[0]
            sample_embeds = torch.cat([sample_embeds[:pos], vis, sample_embeds[pos + 1:]])
            sample_ids = torch.cat([sample_ids[:pos], sample_ids.new_full((n, ), IMAGE_TOKEN_INDEX),
                                    sample_ids[pos + 1:]])
            if sample_labels is not None:
                sample_labels = torch.cat([sample_labels[:pos], sample_labels.new_full((n, ), IGNORE_INDEX),
                                           sample_labels[pos + 1:]])
        if sample_labels is not None:
            # a placeholder is never a target
            sample_labels = sample_labels.masked_fill(sample_ids < 0, IGNORE_INDEX)
        if max_length is not None and sample_ids.shape[0] > max_length:
            raise ValueError(f'{names[b]}: {sample_ids.shape[0]} tokens with the visual tokens, more than the '
                             f"LLM's context of {max_length}; lower the pipeline's max_length")
        embeds.append(sample_embeds)
        ids.append(sample_ids)
        labs.append(sample_labels)

    lengths = torch.tensor([len(i) for i in ids], device=flat_ids.device)
    total = int(lengths.max())
    hidden = embeds[0].shape[-1]
    out_embeds = embeds[0].new_zeros(batch_size, total, hidden)
    out_ids = flat_ids.new_full((batch_size, total), PAD_INDEX)
    out_mask = flat_ids.new_zeros(batch_size, total)
    out_labels = None if labels is None else flat_ids.new_full((batch_size, total), IGNORE_INDEX)
    for b in range(batch_size):
        n = len(ids[b])
        sl = slice(0, n) if padding_side == 'right' else slice(total - n, total)
        out_embeds[b, sl] = embeds[b]
        out_ids[b, sl] = ids[b]
        out_mask[b, sl] = 1
        if out_labels is not None:
            out_labels[b, sl] = labs[b]
    return dict(inputs_embeds=out_embeds, attention_mask=out_mask, expanded_ids=out_ids, labels=out_labels,
                lengths=lengths)


def split_prompt(input_ids: Tensor, labels: Tensor) -> Tensor:
    """The prompt of a teacher-forced sample: its ids before the last supervised answer.

    The last answer is the last run of supervised positions (``labels != -100``; Phi-3: the answer text
    and its ``<|end|>``). A sample with no supervised position is already a prompt (returned whole).

    Args:
        input_ids: ``(L,)`` compact ids. labels: ``(L,)`` LM labels.

    Returns:
        Tensor: ``(P,)`` the prompt ids, ``P <= L``.
    """
    supervised = (labels != IGNORE_INDEX).nonzero(as_tuple=True)[0]
    if supervised.numel() == 0:
        return input_ids
    last = int(supervised[-1])
    unsupervised_before = (labels[:last] == IGNORE_INDEX).nonzero(as_tuple=True)[0]
    start = int(unsupervised_before[-1]) + 1 if unsupervised_before.numel() else 0
    return input_ids[:start]


def strip_generated(sequences: Tensor, stop_token_ids: Sequence[int]) -> List[Tensor]:
    """Generated ids ``(B, T)`` -> ``B`` tensors ending before the first stop token (stop and padding cut)."""
    out = []
    stops = torch.tensor(list(stop_token_ids), device=sequences.device)
    for row in sequences:
        hit = torch.isin(row, stops).nonzero(as_tuple=True)[0]
        out.append(row[:int(hit[0])] if hit.numel() else row)
    return out


def sanitize_phrase_tags(ids: Tensor, p_start_id: int, p_end_id: int) -> Tuple[Tensor, int]:
    """Drop the phrase tags that break ``<p>..</p>`` pairing from generated ids.

    A generated answer may hold a ``</p>`` with no open phrase, a ``<p>`` inside an open phrase or a ``<p>``
    never closed; the conditions need well-formed spans. Scanning left to right, such tags are removed (an
    unclosed ``<p>`` at the end is removed too); every other token stays.

    Args:
        ids: ``(T,)`` generated ids. p_start_id, p_end_id: the tag ids.

    Returns:
        tuple: the cleaned ids ``(T',)`` and the number of tags removed.
    """
    keep = torch.ones_like(ids, dtype=torch.bool)
    open_at = -1
    for i, token in enumerate(ids.tolist()):  # generated answers are short; a plain scan is clearest
        if token == p_start_id:
            if open_at >= 0:
                keep[i] = False  # nested
            else:
                open_at = i
        elif token == p_end_id:
            if open_at < 0:
                keep[i] = False  # nothing to close
            else:
                open_at = -1
    if open_at >= 0:
        keep[open_at] = False  # never closed
    return ids[keep], int((~keep).sum())
