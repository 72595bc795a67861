"""X-SAM's built-in question/answer templates, registered by task name.

The wording and order are the official X-SAM ones (``xsam/dataset/map_fns/dataset_map_fns/*_seg_map_fn.py``),
typos and repeated entries included, so that drawing by index matches the official lists. Names and the
fields each task takes (see :class:`~.task_prompts.TaskPrompts`):

==================  =====  ==================  =======  =================  ==========================
name                #Q     question fields     #A       answer fields      official source
==================  =====  ==================  =======  =================  ==========================
``genseg``          6      ``categories``      5        --                 MASK_QUESTION/ANSWER_LIST
``genseg_caption``  6      ``categories``      4        ``caption``        MASK_CAPTION_* (unused)
``ovseg``           6      ``categories``      5        --                 = genseg (ov_seg_map_fn)
``refseg``          10     ``phrase``          5        --                 SEG_QUESTIONS, ANSWER_LIST
``reaseg_short``    5      ``sent``            5        --                 SHORT_QUESTIONS
``reaseg_long``     5      ``sent``            5        --                 LONG_QUESTIONS
``reaseg_explain``  5      ``sent``            5        ``explanation``    EXPLANATORY_QUESTIONS,
                                                                           ANSWER_LIST_WITH_EXPLANATION
``gcgseg``          6      --                  4        ``caption``        QUESTION_LIST, ANSWER_LIST
``vgdseg``          6      ``regions``         5        --                 vgd_seg_map_fn
``intseg``          6      ``regions``         5        --                 = vgdseg (inter_seg_map_fn)
==================  =====  ==================  =======  =================  ==========================

How the official code fills them (what a data set must reproduce):

* Every answer ends with exactly one ``<SEG>`` (one per turn); questions never contain it.
* ``{categories}`` = ``format_phrases(names)``: ``<p>name</p>, <p>name</p>, ...``, names cleaned (lower
  case, ``-merged``/``-other``/``-stuff`` removed, other hyphens to spaces).
* ``{phrase}`` (refseg) = ``<p>sentence</p>`` with the sentence stripped and lower-cased. One turn per
  referred sentence; training puts all of an image's sentences in one multi-turn conversation.
* ``{sent}`` (reaseg) = ``<p>sentence</p>`` with the sentence stripped (case kept). ``reaseg_long`` when
  the record's ``is_sentence`` is true, else ``reaseg_short``; both answer from the refseg-like list. In
  training, when an explanation exists, each turn switches with probability 0.5 to ``reaseg_explain``,
  whose answers are ``'{explanation} '`` + one of ``<SEG>.``, ``It is <SEG>.``, ``And <SEG>.``,
  ``And it is <SEG>.``, ``And the segmentation mask is <SEG>.`` (explanation first, then the suffix).
* ``gcgseg`` answers are ``'{caption} '`` + one of ``<SEG>.``, ``And <SEG>.``,
  ``The segmentation mask is <SEG>.``, ``And the segmentation mask is <SEG>.``; ``{caption}`` is the
  lower-cased caption with every grounded span wrapped as ``<p>span</p>`` *followed by one space* (the
  official code inserts it even where the caption already has one), then stripped. The ``<p>..</p>`` spans
  are in the answer, not the question. GCG evaluation generates: the answer is empty.
* ``{regions}`` = ``format_regions(n)``: ``<p><region></p>, <p><region></p>, ...``, one per visual prompt.
* ``genseg_caption`` (caption + masks) is defined officially but no caption file is configured, so it is
  never used by default. Its answers officially read ``{seg_token}``; here ``<SEG>`` is written in.
* Image conversation (LLaVA) carries its own turns: no templates here.
"""
from typing import Dict, List

from mmxsam.models.language.constants import SEG_TOKEN

from .task_prompts import TaskPrompts

__all__ = [
    'GENSEG_QUESTIONS', 'GENSEG_ANSWERS', 'GENSEG_CAPTION_QUESTIONS', 'GENSEG_CAPTION_ANSWERS', 'REFSEG_QUESTIONS',
    'REFSEG_ANSWERS', 'REASEG_SHORT_QUESTIONS', 'REASEG_LONG_QUESTIONS', 'REASEG_EXPLAIN_QUESTIONS',
    'REASEG_ANSWERS', 'REASEG_EXPLAIN_ANSWERS', 'GCGSEG_QUESTIONS', 'GCGSEG_ANSWERS', 'VGDSEG_QUESTIONS',
    'VGDSEG_ANSWERS', 'TASK_PROMPTS', 'register_task_prompts', 'get_task_prompts', 'list_task_prompts'
]

# ---------------------------------------------------------------------------------------------------------------
# Generic segmentation (also open-vocabulary segmentation): generic_seg_map_fn.py
GENSEG_QUESTIONS = (
    'Can you segment the image based on the following categories: {categories}? '
    'Please output the segmentation masks.',
    'Can you generate segmentation masks for this image based on the specified categories: {categories}? '
    'Please generate the segmentation masks.',
    'Can you provide segmentation masks for this image based on these categories: {categories}? '
    'Please provide the segmentation masks.',
    'Could you create segmentation masks for this image according to the specified categories: {categories}? '
    'Please create the segmentation masks.',
    'Could you output segmentation masks for this image that highlight the following categories: {categories}? '
    'Please output the segmentation masks.',
    'Could you provide segmentation masks for this image according to the specified categories: {categories}? '
    'Please respond with the segmentation masks.',
)
GENSEG_ANSWERS = (
    f'{SEG_TOKEN}.',
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Sure, it is {SEG_TOKEN}.',
    f'Sure, the segmentation result is {SEG_TOKEN}.',
)
GENSEG_CAPTION_QUESTIONS = (
    'Can you segment the image based on the following categories: {categories}? '
    'Please first describe the image briefly, then respond with segmentation masks.',
    'Can you generate segmentation masks for this image based on the specified categories: {categories}? '
    'Please first briefly describe the contents of the image, then respond with segmentation masks.',
    'Can you provide segmentation masks for this image based on these categories: {categories}? '
    'Please first give me a brief description of the image, then output segmentation masks.',
    'Could you create segmentation masks for this image according to the specified categories: {categories}? '
    'Please first give me a brief description of this picture, then respond with segmentation masks.',
    'Could you output segmentation masks for this image that highlight the following categories: {categories}? '
    'Please first provide me with a brief description of this photo, then respond with segmentation masks.',
    # The official sixth variant ends its first sentence with '.' rather than '?'.
    'Could you provide segmentation masks for this image according to the specified categories: {categories}. '
    'Please first describe the image briefly, then respond with segmentation masks.',
)
GENSEG_CAPTION_ANSWERS = (
    f'{{caption}} {SEG_TOKEN}.',
    f'{{caption}} And it is {SEG_TOKEN}.',
    f'{{caption}} And {SEG_TOKEN}.',
    f'{{caption}} And the segmentation result is {SEG_TOKEN}.',
)

# ---------------------------------------------------------------------------------------------------------------
# Referring segmentation: refer_seg_map_fn.py (entries 8-10 repeat earlier ones almost or exactly).
REFSEG_QUESTIONS = (
    'Please identify and segment the {phrase} in this image.',
    'Please segment {phrase} in this image.',
    'What is {phrase} in this image? Please output the corresponding segmentation mask.',
    'Can you segment {phrase} in this image? Please generate the segmentation mask.',
    'Could you provide a segmentation mask for the {phrase} in this image? Please provide the segmentation mask.',
    'Where is the {phrase} in this picture? Please output the segmentation masks.',
    'Can you highlight the {phrase} in this image with a segmentation mask? Please output the segmentation mask.',
    'Could you provide a segmentation mask for the {phrase} in this image? '
    'Please respond with the segmentation mask.',
    'Where is the {phrase} in this picture? Please output the corresponding segmentation mask.',
    'Can you highlight the {phrase} in this image with a segmentation mask? Please output the segmentation mask.',
)
REFSEG_ANSWERS = (
    f'{SEG_TOKEN}.',
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Sure, it is {SEG_TOKEN}.',
    f'Sure, the segmentation mask is {SEG_TOKEN}.',
)

# ---------------------------------------------------------------------------------------------------------------
# Reasoning segmentation: reason_seg_map_fn.py (explanatory entries 2 and 4 are identical).
REASEG_SHORT_QUESTIONS = (
    'Can you segment {sent} in this image? Please output the segmentation mask.',
    'Can you give the segmentation mask for {sent} in this image? Please respond with the segmentation mask.',
    'Can you highlight {sent} and output the corresponding segmentation mask? '
    'Please provide the segmentation mask.',
    'What is {sent} in this image? Please output the corresponding segmentation mask.',
    'What is {sent} in this image? Please generate a segmentation mask for this image.',
)
REASEG_LONG_QUESTIONS = (
    '{sent} Please output the corresponding segmentation mask.',
    '{sent} Please generate a segmentation mask for this image.',
    '{sent} Please extract the segmentation mask.',
    '{sent} Please return the segmentation predictions as masks.',
    '{sent} Please segment the image.',
)
REASEG_EXPLAIN_QUESTIONS = (
    '{sent} Please explain why and output the corresponding segmentation mask.',
    '{sent} Please explain the reason and output the corresponding segmentation mask.',
    '{sent} Please give some explanation and output the corresponding segmentation mask.',
    '{sent} Please explain the reason and output the corresponding segmentation mask.',
    '{sent} Please give detailed explanation and output the corresponding segmentation mask.',
)
REASEG_ANSWERS = (
    f'{SEG_TOKEN}.',
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Sure, it is {SEG_TOKEN}.',
    f'Sure, the segmentation mask is {SEG_TOKEN}.',
)
#: Official ``explain + ' ' + suffix`` with the suffixes of ANSWER_LIST_WITH_EXPLANATION.
REASEG_EXPLAIN_ANSWERS = (
    f'{{explanation}} {SEG_TOKEN}.',
    f'{{explanation}} It is {SEG_TOKEN}.',
    f'{{explanation}} And {SEG_TOKEN}.',
    f'{{explanation}} And it is {SEG_TOKEN}.',
    f'{{explanation}} And the segmentation mask is {SEG_TOKEN}.',
)

# ---------------------------------------------------------------------------------------------------------------
# Grounded conversation generation: gcg_seg_map_fn.py (wording kept as published, e.g. 'the this image').
GCGSEG_QUESTIONS = (
    'Could you please give me a brief description of the image? '
    'Please respond with interleaved segmentation masks for the corresponding parts of the answer.',
    'Can you provide a brief description of the this image? '
    'Please output interleaved segmentation masks for the corresponding phrases.',
    'Please briefly describe the contents of the image. '
    'Please respond with interleaved segmentation masks for the corresponding parts of the answer.',
    'Could you give a brief explanation of what can be found within this picture? '
    'Please output interleaved segmentation masks for the corresponding phrases.',
    'Could you give me an brief explanation of this picture? '
    'Please respond with interleaved segmentation masks for the corresponding phrases.',
    'Could you provide me with a briefly analysis of this photo? '
    'Please output interleaved segmentation masks for the corresponding parts of the answer.',
)
#: Official ``tagged_caption.strip() + ' ' + suffix``.
GCGSEG_ANSWERS = (
    f'{{caption}} {SEG_TOKEN}.',
    f'{{caption}} And {SEG_TOKEN}.',
    f'{{caption}} The segmentation mask is {SEG_TOKEN}.',
    f'{{caption}} And the segmentation mask is {SEG_TOKEN}.',
)

# ---------------------------------------------------------------------------------------------------------------
# Visual grounded segmentation (also interactive segmentation): vgd_seg_map_fn.py
VGDSEG_QUESTIONS = (
    'Can you segment the image based on the following regions: {regions}? '
    'Please output the corresponding segmentation mask.',
    'Can you generate segmentation masks for this image based on the specified regions: {regions}? '
    'Please generate the segmentation masks.',
    'Can you provide segmentation masks for this image based on these regions: {regions}? '
    'Please provide the segmentation masks.',
    'Could you create segmentation masks for this image according to the specified regions: {regions}? '
    'Please create the segmentation masks.',
    'Could you output segmentation masks for this image that highlight the following regions: {regions}? '
    'Please output the segmentation masks.',
    'Could you provide segmentation masks for this image according to the specified regions: {regions}? '
    'Please respond with the segmentation masks.',
)
VGDSEG_ANSWERS = (
    f'{SEG_TOKEN}.',
    f'It is {SEG_TOKEN}.',
    f'Sure, {SEG_TOKEN}.',
    f'Sure, it is {SEG_TOKEN}.',
    f'Sure, the segmentation result is {SEG_TOKEN}.',
)

# ---------------------------------------------------------------------------------------------------------------
#: name -> TaskPrompts. Add to it with :func:`register_task_prompts`, read it with :func:`get_task_prompts`.
TASK_PROMPTS: Dict[str, TaskPrompts] = {}


def register_task_prompts(task_prompts: TaskPrompts, force: bool = False) -> TaskPrompts:
    """Register ``task_prompts`` under its ``name`` and return it.

    Raises:
        KeyError: the name is taken and ``force`` is False.
    """
    if not isinstance(task_prompts, TaskPrompts):
        raise TypeError(f'expected a TaskPrompts, got {type(task_prompts).__name__}')
    if task_prompts.name in TASK_PROMPTS and not force:
        raise KeyError(f'task prompts {task_prompts.name!r} are already registered (pass force=True to replace)')
    TASK_PROMPTS[task_prompts.name] = task_prompts
    return task_prompts


def get_task_prompts(name: str) -> TaskPrompts:
    """The TaskPrompts registered as ``name``.

    Raises:
        KeyError: no such name (the message lists the registered ones).
    """
    try:
        return TASK_PROMPTS[name]
    except KeyError:
        raise KeyError(f'unknown task prompts {name!r}; registered: {list_task_prompts()}') from None


def list_task_prompts() -> List[str]:
    """The registered names, sorted."""
    return sorted(TASK_PROMPTS)


for _tp in (
        TaskPrompts('genseg', GENSEG_QUESTIONS, GENSEG_ANSWERS),
        TaskPrompts('genseg_caption', GENSEG_CAPTION_QUESTIONS, GENSEG_CAPTION_ANSWERS),
        TaskPrompts('ovseg', GENSEG_QUESTIONS, GENSEG_ANSWERS),
        TaskPrompts('refseg', REFSEG_QUESTIONS, REFSEG_ANSWERS),
        TaskPrompts('reaseg_short', REASEG_SHORT_QUESTIONS, REASEG_ANSWERS),
        TaskPrompts('reaseg_long', REASEG_LONG_QUESTIONS, REASEG_ANSWERS),
        TaskPrompts('reaseg_explain', REASEG_EXPLAIN_QUESTIONS, REASEG_EXPLAIN_ANSWERS),
        TaskPrompts('gcgseg', GCGSEG_QUESTIONS, GCGSEG_ANSWERS),
        TaskPrompts('vgdseg', VGDSEG_QUESTIONS, VGDSEG_ANSWERS),
        TaskPrompts('intseg', VGDSEG_QUESTIONS, VGDSEG_ANSWERS),
):
    register_task_prompts(_tp)
del _tp
