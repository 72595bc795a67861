"""Small string helpers that build the pieces X-SAM's templates are filled with, and the LLaVA turns.

* a phrase (condition) is ``<p>text</p>``, nothing added inside the tags;
* a visual prompt is ``<p><region></p>``;
* the first human turn of a sample with an image starts with ``'<image>\\n'``.
"""
from typing import Dict, Iterable, List, Sequence, Tuple

from mmxsam.models.language.constants import IMAGE_TOKEN, PHRASE_END_TOKEN, PHRASE_START_TOKEN, REGION_TOKEN

__all__ = ['format_phrase', 'format_phrases', 'format_regions', 'with_image', 'build_turns']


def format_phrase(text: str) -> str:
    """``'dog'`` -> ``'<p>dog</p>'`` (the text is used as given: no spaces added, no stripping)."""
    return f'{PHRASE_START_TOKEN}{text}{PHRASE_END_TOKEN}'


def format_phrases(names: Iterable[str], sep: str = ', ') -> str:
    """``['dog', 'cat']`` -> ``'<p>dog</p>, <p>cat</p>'`` (the ``{categories}`` of genseg).

    Raises:
        ValueError: ``names`` is empty (a prompt without conditions is never valid).
    """
    names = list(names)
    if not names:
        raise ValueError('format_phrases needs at least one name')
    return sep.join(format_phrase(n) for n in names)


def format_regions(n: int, sep: str = ', ') -> str:
    """``2`` -> ``'<p><region></p>, <p><region></p>'`` (the ``{regions}`` of VGD / interactive seg).

    Raises:
        ValueError: ``n < 1``.
    """
    if int(n) != n or n < 1:
        raise ValueError(f'format_regions needs a positive number of regions, got {n!r}')
    return sep.join([format_phrase(REGION_TOKEN)] * int(n))


def with_image(question: str) -> str:
    """``'<image>\\n' + question``.

    As in the official map functions, an ``<image>`` already in the question (LLaVA data sometimes puts it
    last) is moved to the front and the surrounding whitespace stripped, so the result has exactly one
    ``<image>``, at the start.
    """
    return f'{IMAGE_TOKEN}\n' + question.replace(IMAGE_TOKEN, '').strip()


def build_turns(pairs: Iterable[Tuple[str, str]], has_image: bool = True) -> List[Dict[str, str]]:
    """``[(question, answer), ...]`` -> LLaVA conversations
    ``[{'from': 'human', 'value': q0}, {'from': 'gpt', 'value': a0}, ...]``.

    With ``has_image`` the first question goes through :func:`with_image`. Answers may be ``''``
    (generation at evaluation, e.g. GCG).

    Raises:
        ValueError: no pairs, or a pair that is not ``(question, answer)``.
    """
    turns: List[Dict[str, str]] = []
    for i, pair in enumerate(pairs):
        if not isinstance(pair, Sequence) or isinstance(pair, str) or len(pair) != 2:
            raise ValueError(f'turn {i} must be a (question, answer) pair, got {pair!r}')
        question, answer = pair
        if i == 0 and has_image:
            question = with_image(question)
        turns.append({'from': 'human', 'value': question})
        turns.append({'from': 'gpt', 'value': answer})
    if not turns:
        raise ValueError('build_turns needs at least one (question, answer) pair')
    return turns
