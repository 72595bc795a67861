"""Prompt templates of X-SAM's tasks and the helpers that turn them into conversations.

Typical use in a data set's ``build_conversation`` (``rng`` is ``np.random`` in training, None at evaluation)::

    tp = get_task_prompts('refseg')
    pairs = [(tp.pick_question(rng, phrase=format_phrase(s.lower())), tp.pick_answer(rng)) for s in sents]
    info['conversations'] = build_turns(pairs)
"""
from .formatting import build_turns, format_phrase, format_phrases, format_regions, with_image
from .task_prompts import TaskPrompts, draw_index, fill_template, template_fields
from .templates import (GCGSEG_ANSWERS, GCGSEG_QUESTIONS, GENSEG_ANSWERS, GENSEG_CAPTION_ANSWERS,
                        GENSEG_CAPTION_QUESTIONS, GENSEG_QUESTIONS, REASEG_ANSWERS, REASEG_EXPLAIN_ANSWERS,
                        REASEG_EXPLAIN_QUESTIONS, REASEG_LONG_QUESTIONS, REASEG_SHORT_QUESTIONS, REFSEG_ANSWERS,
                        REFSEG_QUESTIONS, TASK_PROMPTS, VGDSEG_ANSWERS, VGDSEG_QUESTIONS, get_task_prompts,
                        list_task_prompts, register_task_prompts)

__all__ = [
    'TaskPrompts', 'draw_index', 'fill_template', 'template_fields', 'build_turns', 'format_phrase',
    'format_phrases', 'format_regions', 'with_image', 'TASK_PROMPTS', 'get_task_prompts', 'list_task_prompts',
    'register_task_prompts', 'GENSEG_QUESTIONS', 'GENSEG_ANSWERS', 'GENSEG_CAPTION_QUESTIONS',
    'GENSEG_CAPTION_ANSWERS', 'REFSEG_QUESTIONS', 'REFSEG_ANSWERS', 'REASEG_SHORT_QUESTIONS',
    'REASEG_LONG_QUESTIONS', 'REASEG_EXPLAIN_QUESTIONS', 'REASEG_ANSWERS', 'REASEG_EXPLAIN_ANSWERS',
    'GCGSEG_QUESTIONS', 'GCGSEG_ANSWERS', 'VGDSEG_QUESTIONS', 'VGDSEG_ANSWERS'
]
