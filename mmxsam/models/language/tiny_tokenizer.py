"""A tiny, locally trained stand-in for Phi-3-mini's tokenizer.

No model hub is reachable from the test and CI machines, so tests and tiny configs cannot load
``microsoft/Phi-3-mini-4k-instruct``'s tokenizer. :func:`build_tiny_tokenizer` trains a small
byte-level BPE on whatever text is at hand (typically every string in a generated data set's
annotation JSONs, see :func:`iter_json_strings`, plus :data:`EXTRA_CORPUS`) and saves it as a
Hugging Face fast tokenizer, so ``transformers.AutoTokenizer.from_pretrained(save_dir)`` loads it
exactly like the real one.

What it shares with Phi-3-mini's tokenizer:

* the special tokens ``<unk>`` (unk), ``<s>`` (bos), ``<|endoftext|>`` (eos and pad) and the chat
  tokens ``<|user|>``, ``<|assistant|>``, ``<|system|>``, ``<|end|>``, all registered as special
  added tokens, so they are never split;
* the chat template (verbatim Phi-3-mini-4k-instruct): ``<|system|>\\n{c}<|end|>\\n``,
  ``<|user|>\\n{c}<|end|>\\n``, ``<|assistant|>\\n{c}<|end|>\\n`` per turn, then
  ``<|assistant|>\\n`` with ``add_generation_prompt=True`` or ``eos_token`` (``<|endoftext|>``)
  without it;
* ``padding_side='right'``; ``model_input_names`` ``input_ids`` and ``attention_mask`` (no
  ``token_type_ids``, which Phi-3's ``forward`` would reject); no bos/eos is added by ``tokenizer(text)``
  (as Phi-3-mini's ``add_bos_token=False``): callers that want ``<s>`` prepend ``bos_token_id`` themselves.

What it deliberately does not have: X-SAM's own tokens (``<SEG>``, ``<p>``, ``</p>``, ``<image>``,
``<region>``). The LLM wrapper adds those to any tokenizer, real or tiny, and resizes the
embeddings, so the tiny one must come without them, like the real one.

Differences that do not matter for tests: byte-level BPE instead of SentencePiece (every string is
encodable, nothing maps to ``<unk>``), a vocabulary of ``vocab_size`` (default 1024) instead of
32064, special tokens at ids ``0..6`` instead of ``0, 1, 32000..32010``.

Training is deterministic: the same corpus (as a multiset of strings, in any order) gives the
same ``vocab`` and ``merges``.
"""
import json
import os
import re
from typing import TYPE_CHECKING, Any, Iterable, Iterator, List

if TYPE_CHECKING:  # transformers is imported lazily: importing mmxsam should not pay for it
    from transformers import PreTrainedTokenizerFast

UNK_TOKEN = '<unk>'
BOS_TOKEN = '<s>'
EOS_TOKEN = '<|endoftext|>'  # Phi-3-mini: eos_token == pad_token == '<|endoftext|>'
PAD_TOKEN = EOS_TOKEN
CHAT_TOKENS = ('<|user|>', '<|assistant|>', '<|system|>', '<|end|>')
#: Every special token, in id order (ids ``0 .. len(SPECIAL_TOKENS) - 1``).
SPECIAL_TOKENS = (UNK_TOKEN, BOS_TOKEN, EOS_TOKEN) + CHAT_TOKENS

#: 256 byte-level symbols + the special tokens must fit, with room for a few merges.
MIN_VOCAB_SIZE = 300

#: Phi-3-mini-4k-instruct's ``chat_template``, verbatim.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}")

#: Chat/prompt text added to every corpus, so that X-SAM's question/answer templates tokenize into
#: a few tokens even when the annotation JSONs hold only category names and captions.
EXTRA_CORPUS = (
    'Can you segment the image based on the following categories: person, car, tree? '
    'Please output the segmentation masks.',
    'Can you segment the image based on the following regions? Please output the segmentation masks.',
    'Can you segment the object referred to in the image? Please output the segmentation mask.',
    'Please segment the objects in this image based on the visual prompts.',
    'Can you provide a brief description of this image? '
    'Please respond with interleaved segmentation masks for the corresponding phrases.',
    'What is in this image? Please output the segmentation mask.',
    'Sure, it is the segmentation mask.',
    'Sure, they are the segmentation masks.',
    'Sure, the segmentation result is shown in the image.',
    'The image shows a person, a dog, a cat, a car and a tree.',
    'You are a helpful assistant.',
)

_WHITESPACE = re.compile(r'\s')
_FILE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.json')
_MAX_TOKEN_CHARS = 64


def _keep_string(s: str) -> bool:
    """Whether :func:`iter_json_strings` keeps ``s`` (see there)."""
    stripped = s.strip()
    if not stripped:
        return False
    if stripped.lower().endswith(_FILE_SUFFIXES):
        return False
    if len(stripped) > _MAX_TOKEN_CHARS and not _WHITESPACE.search(stripped):
        return False
    return True


def _walk_strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        if _keep_string(obj):
            yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _walk_strings(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from _walk_strings(value)


def iter_json_strings(paths: Iterable[str]) -> Iterator[str]:
    """Yield every string *value* found, recursively, in the JSON files ``paths``, in file order.

    Meant to build a tokenizer corpus from "all the text in a data set's annotation JSONs"
    (captions, category names, referring expressions, questions, answers). Dict keys are not
    yielded (they are schema, not text), nor are numbers, booleans or nulls. Strings that are not
    natural text are skipped:

    * empty or whitespace-only strings;
    * file names: strings ending (case-insensitively) in ``.jpg``, ``.jpeg``, ``.png`` or
      ``.json``;
    * RLE counts and similar blobs: strings longer than 64 characters with no whitespace at all.

    Args:
        paths: JSON file paths, read as UTF-8.

    Raises:
        ValueError: a file is not valid JSON (the message names the file).
    """
    for path in paths:
        with open(path, encoding='utf-8') as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path} is not valid JSON: {e}') from e
        yield from _walk_strings(data)


def build_tiny_tokenizer(corpus: Iterable[str],
                         save_dir: str,
                         vocab_size: int = 1024,
                         min_frequency: int = 1,
                         model_max_length: int = 2048) -> 'PreTrainedTokenizerFast':
    """Train a byte-level BPE on ``corpus``, save it to ``save_dir`` and return it.

    Args:
        corpus: training strings. Order does not matter (they are sorted before training), and
            duplicates count (they weigh merges like any frequency).
        save_dir: output directory (created if missing); afterwards
            ``AutoTokenizer.from_pretrained(save_dir)`` loads the tokenizer.
        vocab_size: the largest vocabulary size, special tokens and the 256 byte symbols included;
            a small corpus runs out of merges first and gives a smaller vocabulary (read
            ``len(tokenizer)``). At least :data:`MIN_VOCAB_SIZE`.
        min_frequency: the least count a pair needs to be merged.
        model_max_length: stored as the tokenizer's ``model_max_length``.

    Returns:
        The saved ``PreTrainedTokenizerFast`` (``padding_side='right'``, Phi-3's special tokens
        and chat template).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < MIN_VOCAB_SIZE:
        raise ValueError(f'vocab_size must be an int >= {MIN_VOCAB_SIZE} (256 byte symbols + '
                         f'{len(SPECIAL_TOKENS)} special tokens + merges), got {vocab_size!r}')
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f'min_frequency must be an int >= 1, got {min_frequency!r}')
    if isinstance(corpus, str):
        raise TypeError('corpus must be an iterable of strings, not a single string')
    texts: List[str] = list(corpus)
    for t in texts:
        if not isinstance(t, str):
            raise TypeError(f'corpus must hold only strings, got a {type(t).__name__}')
    texts.sort()
    if not texts:
        raise ValueError('corpus is empty: nothing to train the tokenizer on')

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        show_progress=False,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer, length=len(texts))

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(CHAT_TOKENS),
        padding_side='right',
        model_input_names=['input_ids', 'attention_mask'],  # as Llama/Phi-3: no token_type_ids
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        chat_template=PHI3_CHAT_TEMPLATE,
    )
    os.makedirs(save_dir, exist_ok=True)
    fast.save_pretrained(save_dir)
    return fast
