"""Tokenize a templated conversation into ``input_ids`` and LM ``labels``.

Rules (X-SAM = xtuner ``encode_fn`` with ``phi3_chat``; see :mod:`.chat_template` for the layout):

* BOS (when the template wants one and the tokenizer has one) only at the very start, label -100.
* The prompt of every turn (system block, user template, question, placeholders, assistant prefix)
  is label -100.
* The answer plus the template suffix (``answer<|end|>`` for phi3) is supervised: labels equal ids.
* The separator after the suffix (``\\n`` for phi3) is -100.
* ``<image>``/``<region>`` in user text become one id each, :data:`IMAGE_TOKEN_INDEX` (-200) and
  :data:`REGION_TOKEN_INDEX` (-300), and are never passed to the tokenizer. They are not allowed
  in answers (a negative id cannot be a target).
* Labels are *not* shifted: HF causal LMs shift them inside ``forward``.

Tokenization follows xtuner: the prompt text between placeholders is tokenized as one string (the
template's text together with the question), the answer + suffix as one string, the separator on
its own. ``<SEG>``, ``<p>``, ``</p>`` must be single tokens of the tokenizer (:func:`add_xsam_tokens`).

Truncation (``max_length``; placeholders count as one token each, the MLLM config accounts for the
visual tokens an ``<image>`` expands into, as X-SAM's ``max_length = 4096 - 729 - 1024``): only
*question text* tokens are dropped, earliest turn first and, within a turn, from the end of the
question backwards. Never dropped: BOS, template/system tokens, placeholders, ``<SEG>``, whole
``<p>...</p>`` phrases (tags and the text between them), answers, suffixes and separators. If that
cannot make the conversation fit, :class:`ValueError` names the lengths.
"""
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from .chat_template import ChatTemplateLike, Turn, check_turns, get_chat_template
from .constants import (IGNORE_INDEX, PHRASE_END_TOKEN, PHRASE_START_TOKEN, PLACEHOLDER_INDEX,
                        SEG_TOKEN, XSAM_SPECIAL_TOKENS)

_MARKERS = re.compile('(' + '|'.join(
    re.escape(t) for t in (*PLACEHOLDER_INDEX, SEG_TOKEN, PHRASE_START_TOKEN, PHRASE_END_TOKEN)) + ')')

# Kinds of text runs in a prompt.
_TEMPLATE, _FREE, _KEPT = 0, 1, 2  # template text, droppable question text, protected question text


def add_xsam_tokens(tokenizer) -> List[int]:
    """Add ``<SEG>``, ``<p>``, ``</p>`` to ``tokenizer`` (in place) as special tokens.

    Idempotent (tokens already present keep their ids). Returns their ids, in
    :data:`XSAM_SPECIAL_TOKENS` order. The model's embeddings must then have at least
    ``len(tokenizer)`` rows (``HFCausalLM`` resizes them).
    """
    tokenizer.add_tokens(list(XSAM_SPECIAL_TOKENS), special_tokens=True)
    return [tokenizer.convert_tokens_to_ids(t) for t in XSAM_SPECIAL_TOKENS]


def build_tokenizer(cfg: Union[Mapping, object], add_special_tokens: bool = True):
    """Build a tokenizer from ``dict(name_or_path=..., **AutoTokenizer kwargs)`` (or take a tokenizer
    instance as is) and add X-SAM's tokens to it (:func:`add_xsam_tokens`).

    The data pipeline and ``HFCausalLM`` both build their tokenizer through this function, so token
    ids agree.
    """
    if isinstance(cfg, Mapping):
        kwargs = dict(cfg)
        name_or_path = kwargs.pop('name_or_path', None)
        if not isinstance(name_or_path, str):
            raise ValueError(f"tokenizer config needs 'name_or_path' (a hub id or folder), got {cfg!r}")
        from transformers import AutoTokenizer
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    elif hasattr(cfg, 'convert_tokens_to_ids') and hasattr(cfg, 'add_tokens'):
        tokenizer = cfg
    else:
        raise TypeError(f'tokenizer must be a dict(name_or_path=...) or a tokenizer, '
                        f'got {type(cfg).__name__}')
    if add_special_tokens:
        add_xsam_tokens(tokenizer)
    return tokenizer


def _encode(tokenizer, text: str) -> List[int]:
    return tokenizer.encode(text, add_special_tokens=False) if text else []


def _tokenize_runs(tokenizer, runs: Sequence[Tuple[str, int]]) -> Tuple[List[int], List[bool]]:
    """Tokenize consecutive text runs as one string; return ids and, per id, whether it lies wholly
    inside a ``_FREE`` run (droppable). Slow tokenizers (no offsets) tokenize run by run."""
    text = ''.join(t for t, _ in runs)
    if not text:
        return [], []
    if not getattr(tokenizer, 'is_fast', False):
        ids, free = [], []
        for t, kind in runs:
            piece = _encode(tokenizer, t)
            ids += piece
            free += [kind == _FREE] * len(piece)
        return ids, free
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    free_chars = [False] * len(text)
    pos = 0
    for t, kind in runs:
        if kind == _FREE:
            free_chars[pos:pos + len(t)] = [True] * len(t)
        pos += len(t)
    free = [end > start and all(free_chars[start:end]) for start, end in enc['offset_mapping']]
    return list(enc['input_ids']), free


def _check_marker_tokens(tokenizer, texts: Sequence[str]) -> None:
    """``<SEG>``, ``<p>``, ``</p>`` present in ``texts`` must each be one token."""
    present = {m for t in texts for m in (SEG_TOKEN, PHRASE_START_TOKEN, PHRASE_END_TOKEN) if m in t}
    for marker in sorted(present):
        if len(_encode(tokenizer, marker)) != 1:
            raise ValueError(f'{marker!r} is not a single token of the tokenizer; add X-SAM tokens '
                             f'first (add_xsam_tokens(tokenizer) or build_tokenizer(...))')


def _encode_prompt(tokenizer, before: str, question: str,
                   after: str) -> Tuple[List[int], List[bool]]:
    """``before + question + after`` -> ids (placeholders as negative ids) and droppable flags."""
    segments: List[List[Tuple[str, int]]] = [[]]  # text runs between placeholders
    placeholders: List[int] = []
    segments[-1].append((before, _TEMPLATE))
    depth = 0  # inside <p>...</p>
    for piece in _MARKERS.split(question):
        if not piece:
            continue
        if piece in PLACEHOLDER_INDEX:
            placeholders.append(PLACEHOLDER_INDEX[piece])
            segments.append([])
            continue
        if piece == PHRASE_START_TOKEN:
            depth += 1
            kind = _KEPT
        elif piece == PHRASE_END_TOKEN:
            depth = max(depth - 1, 0)
            kind = _KEPT
        elif piece == SEG_TOKEN or depth > 0:
            kind = _KEPT
        else:
            kind = _FREE
        segments[-1].append((piece, kind))
    segments[-1].append((after, _TEMPLATE))

    ids, free = _tokenize_runs(tokenizer, segments[0])
    for placeholder, runs in zip(placeholders, segments[1:]):
        seg_ids, seg_free = _tokenize_runs(tokenizer, runs)
        ids += [placeholder] + seg_ids
        free += [False] + seg_free
    return ids, free


def encode_conversation(tokenizer,
                        template: ChatTemplateLike,
                        turns: Sequence[Turn],
                        max_length: Optional[int] = None,
                        system: Optional[str] = None) -> Dict[str, Union[List[int], int]]:
    """Encode a LLaVA-style conversation with a chat template.

    Args:
        tokenizer: a HF tokenizer holding X-SAM's tokens when the text uses them.
        template (str | dict | ChatTemplate): see :func:`~.chat_template.get_chat_template`.
        turns (list[tuple[str, str | None]]): (user text, assistant text) pairs; the last assistant
            text may be ``None`` (a generation prompt: the ids end with the assistant prefix).
            X-SAM's first user text is ``'<image>\\n' + question``.
        max_length (int, optional): the most tokens (placeholders count one each); longer
            conversations lose question text, see the module docstring.
        system (str, optional): system text (``None``: the template's ``default_system``).

    Returns:
        dict: ``input_ids`` (list[int], length L, placeholders negative), ``labels`` (list[int],
        length L, -100 where not supervised, not shifted) and ``num_truncated`` (int, question tokens
        dropped).

    Raises:
        ValueError: a placeholder in an answer, a marker token missing from the tokenizer, or a
            conversation that cannot be cut to ``max_length`` (message names both lengths).
    """
    template = get_chat_template(template)
    turns = check_turns(turns)
    if max_length is not None and (isinstance(max_length, bool) or not isinstance(max_length, int)
                                   or max_length < 1):
        raise ValueError(f'max_length must be a positive int or None, got {max_length!r}')
    for i, (_, answer) in enumerate(turns):
        if answer is not None and any(p in answer for p in PLACEHOLDER_INDEX):
            raise ValueError(f'turns[{i}][1] (assistant text) contains a placeholder '
                             f'{list(PLACEHOLDER_INDEX)}: placeholders are only allowed in user text')
    _check_marker_tokens(tokenizer, [t for turn in turns for t in turn if t is not None])

    input_ids: List[int] = []
    labels: List[int] = []
    droppable: List[Tuple[int, int]] = []  # (turn, position) of droppable question tokens

    bos = tokenizer.bos_token_id
    if template.add_bos and bos is not None:
        input_ids.append(bos)
        labels.append(IGNORE_INDEX)
    before, after = template.user_parts()
    sep_ids = _encode(tokenizer, template.sep)
    for i, (question, answer) in enumerate(turns):
        head = template.system_block(system) + before if i == 0 else before
        ids, free = _encode_prompt(tokenizer, head, question, after)
        droppable += [(i, len(input_ids) + j) for j, f in enumerate(free) if f]
        input_ids += ids
        labels += [IGNORE_INDEX] * len(ids)
        if answer is None:
            continue
        out_ids = _encode(tokenizer, answer + template.suffix)
        input_ids += out_ids
        labels += out_ids
        input_ids += sep_ids
        labels += [IGNORE_INDEX] * len(sep_ids)

    num_truncated = 0
    if max_length is not None and len(input_ids) > max_length:
        overflow = len(input_ids) - max_length
        if overflow > len(droppable):
            raise ValueError(
                f'conversation has {len(input_ids)} tokens but max_length={max_length}; at most '
                f'{len(droppable)} question tokens can be dropped (placeholders, <SEG>, <p>...</p> '
                f'phrases, template tokens and answers are never cut), {overflow} would be needed')
        # earliest turn first; within a turn, from the end of the question backwards
        droppable.sort(key=lambda tp: (tp[0], -tp[1]))
        drop = {pos for _, pos in droppable[:overflow]}
        input_ids = [t for j, t in enumerate(input_ids) if j not in drop]
        labels = [t for j, t in enumerate(labels) if j not in drop]
        num_truncated = overflow
    return dict(input_ids=input_ids, labels=labels, num_truncated=num_truncated)
