"""One task's question and answer templates, and how a sample draws from them.

Templates are plain strings with named fields in braces (``{categories}``, ``{phrase}``, ``{sent}``,
``{regions}``, ``{caption}``, ``{explanation}``). Only ``{identifier}`` is a field: any other brace is
literal text, filled values are never re-scanned (a caption that contains ``{phrase}`` stays as is), and
a field the template needs but the caller did not give raises a ``KeyError`` that names both.

Drawing: with ``rng=None`` the first template is used (evaluation: deterministic); otherwise
``rng.randint(n)`` picks one (numpy's global generator module ``np.random`` or a ``RandomState``, so
``np.random.seed`` makes training draws reproducible), or ``rng.integers(n)`` for a ``np.random.Generator``.
"""
import re
from dataclasses import dataclass
from typing import FrozenSet, Optional, Sequence, Tuple

import numpy as np

__all__ = ['TaskPrompts', 'fill_template', 'template_fields', 'draw_index']

#: A field is ``{identifier}``; everything else (``{}``, ``{ x }``, ``{0}``, lone braces) is literal.
_FIELD = re.compile(r'\{([A-Za-z_][A-Za-z0-9_]*)\}')


def template_fields(template: str) -> FrozenSet[str]:
    """The names of the fields a template needs: ``'Segment {phrase}.'`` -> ``{'phrase'}``."""
    return frozenset(_FIELD.findall(template))


def fill_template(template: str, owner: Optional[str] = None, **fields) -> str:
    """Replace every ``{name}`` of ``template`` by ``str(fields[name])``; unused fields are ignored.

    Raises:
        KeyError: a field of the template is missing from ``fields`` (the message names the template,
            its owner, e.g. the task, when given, and the field).
    """

    def _sub(match: 're.Match') -> str:
        name = match.group(1)
        if name not in fields:
            where = f' of {owner!r}' if owner else ''
            raise KeyError(f'template {template!r}{where} needs the field {name!r}; '
                           f'given: {sorted(fields)}')
        return str(fields[name])

    return _FIELD.sub(_sub, template)


def draw_index(n: int, rng=None) -> int:
    """Index of the template to use among ``n``: 0 when ``rng`` is None, else a uniform draw from ``rng``
    (``np.random`` module or ``RandomState``: ``randint(n)``; ``np.random.Generator``: ``integers(n)``)."""
    if n < 1:
        raise ValueError(f'cannot draw from {n} templates')
    if rng is None:
        return 0
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(n))
    if rng is np.random or isinstance(rng, np.random.RandomState):
        return int(rng.randint(n))
    raise TypeError('rng must be None, the np.random module, a np.random.RandomState or a '
                    f'np.random.Generator, got {type(rng).__name__}')


@dataclass(frozen=True)
class TaskPrompts:
    """The templates of one task (``genseg``, ``refseg``, ...), kept in the official order.

    Args:
        name: the name it is registered under (see :func:`~.templates.get_task_prompts`).
        questions: question templates; all of them need the same fields.
        answers: answer templates; all of them need the same fields.

    Lists are accepted and stored as tuples. Example::

        >>> tp = TaskPrompts('demo', ('Segment {phrase}.', 'Where is {phrase}?'), ('<SEG>.',))
        >>> tp.pick_question(phrase='<p>dog</p>')   # rng=None: the first template
        'Segment <p>dog</p>.'
        >>> tp.question_fields
        frozenset({'phrase'})
    """

    name: str
    questions: Tuple[str, ...]
    answers: Tuple[str, ...]

    def __post_init__(self) -> None:
        for kind in ('questions', 'answers'):
            templates = getattr(self, kind)
            if isinstance(templates, str) or not isinstance(templates, Sequence):
                raise TypeError(f'{self.name}: {kind} must be a sequence of strings, got {type(templates).__name__}')
            templates = tuple(templates)
            if not templates:
                raise ValueError(f'{self.name}: no {kind}')
            if not all(isinstance(t, str) for t in templates):
                raise TypeError(f'{self.name}: every one of {kind} must be a string')
            fields = {template_fields(t) for t in templates}
            if len(fields) > 1:
                raise ValueError(f'{self.name}: {kind} need different fields {sorted(map(sorted, fields))}; '
                                 'all templates of one list must take the same fields')
            object.__setattr__(self, kind, templates)

    @property
    def question_fields(self) -> FrozenSet[str]:
        """The fields every question template needs."""
        return template_fields(self.questions[0])

    @property
    def answer_fields(self) -> FrozenSet[str]:
        """The fields every answer template needs."""
        return template_fields(self.answers[0])

    def pick_question(self, rng=None, **fields) -> str:
        """A filled question: the first template if ``rng`` is None, else one drawn from ``rng``."""
        template = self.questions[draw_index(len(self.questions), rng)]
        return fill_template(template, owner=f'{self.name} questions', **fields)

    def pick_answer(self, rng=None, **fields) -> str:
        """A filled answer: the first template if ``rng`` is None, else one drawn from ``rng``."""
        template = self.answers[draw_index(len(self.answers), rng)]
        return fill_template(template, owner=f'{self.name} answers', **fields)
